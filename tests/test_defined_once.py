"""Units and exit codes have one definition each (units.py, exit_codes.py): a second copy is
how `MS` came to mean nanoseconds per millisecond in one module and `NS` per second in another."""

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
UNIT_NAMES = re.compile(r"(NS|MS|US|NS_PER_\w+|US_PER_\w+|MS_PER_\w+|MIB|MB|KIB|KB)")
EXIT_NAMES = re.compile(r"EXIT_\w+")


def module_constants(path: Path) -> list[tuple[str, str]]:
    """(name, file:line) of every module-level NAME = ... in the file."""
    found = []
    for node in ast.parse(path.read_text(), filename=str(path)).body:
        targets = node.targets if isinstance(node, ast.Assign) else []
        for target in targets:
            names = target.elts if isinstance(target, ast.Tuple) else [target]
            found += [(name.id, f"{path.relative_to(ROOT)}:{node.lineno}")
                      for name in names if isinstance(name, ast.Name)]
    return found


def definitions(pattern: re.Pattern[str], folders=("edge_agent", "tests", "bench")) -> list[str]:
    return sorted(
        f"{name} at {where}"
        for folder in folders
        for path in (ROOT / folder).rglob("*.py")
        for name, where in module_constants(path) if pattern.fullmatch(name)
    )


def test_units_are_defined_only_in_units_py():
    assert definitions(UNIT_NAMES) == [
        "MIB at edge_agent/units.py:10",
        "NS_PER_MS at edge_agent/units.py:9",
        "NS_PER_S at edge_agent/units.py:8",
    ]


def test_exit_codes_are_defined_only_in_exit_codes_py():
    # Tests keep their own literal expectations (a changed code must fail them).
    found = definitions(EXIT_NAMES, folders=("edge_agent",))
    assert found and all(" at edge_agent/exit_codes.py:" in where for where in found), found
