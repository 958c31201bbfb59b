"""The package's import graph: no circle, and the layers import only downwards.

Read from the source with `ast`, so an import inside a function or under TYPE_CHECKING counts as
much as one at the top: each is a dependency a reader has to follow.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = "edge_agent"
ROOT = Path(__file__).resolve().parents[1] / PACKAGE


def module_name(path: Path, root: Path) -> str:
    parts = path.relative_to(root.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_names(path: Path, module: str) -> set[str]:
    """Every dotted name an import statement of the file could refer to."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([base] if base else [])])
            names.add(base)
            # `from pkg import mod` imports the module pkg.mod when there is one.
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return names


def import_graph(root: Path = ROOT) -> dict[str, set[str]]:
    files = {module_name(path, root): path for path in root.rglob("*.py")}
    return {
        module: {name for name in imported_names(path, module) if name in files and name != module}
        for module, path in files.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import circle, as the modules along it (first repeated at the end), or None."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        stack = [(start, iter(sorted(graph[start])))]
        path.append(start)
        on_path.add(start)
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                stack.pop()
                path.pop()
                on_path.discard(node)
                done.add(node)
            elif child in on_path:
                return [*path[path.index(child):], child]
            elif child not in done:
                stack.append((child, iter(sorted(graph[child]))))
                path.append(child)
                on_path.add(child)
    return None


def test_the_package_has_no_import_circle():
    cycle = find_cycle(import_graph())
    assert cycle is None, "import circle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_names_a_circle_and_passes_a_tree():
    # The check above would pass with a finder that never finds anything: this pins that it does.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_relative_and_type_checking_imports_count(tmp_path):
    package = tmp_path / PACKAGE
    (package / "sync").mkdir(parents=True)
    for name in ("__init__.py", "sync/__init__.py"):
        (package / name).write_text("")
    (package / "sync" / "a.py").write_text("from . import b\n")
    (package / "sync" / "b.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from edge_agent.sync.a import X\n"
    )
    assert find_cycle(import_graph(package)) == [
        "edge_agent.sync.a", "edge_agent.sync.b", "edge_agent.sync.a"]


# (importer's package, packages it must never import): lower layers know nothing of the ones
# above them, and what runs on the line knows nothing of the simulated line.
FORBIDDEN = [
    ("edge_agent.diagnostics", ("edge_agent.cli",)),
    ("edge_agent.runtime", ("edge_agent.simulation", "edge_agent.cli")),
    ("edge_agent.sync", ("edge_agent.simulation", "edge_agent.cli", "edge_agent.runtime")),
    ("edge_agent.sorting", ("edge_agent.simulation", "edge_agent.cli", "edge_agent.runtime",
                            "edge_agent.sync")),
    ("edge_agent.devices", ("edge_agent.simulation", "edge_agent.cli", "edge_agent.runtime",
                            "edge_agent.sync", "edge_agent.sorting")),
]


def within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


@pytest.mark.parametrize(("layer", "forbidden"), FORBIDDEN, ids=[f[0] for f in FORBIDDEN])
def test_a_layer_never_imports_a_layer_above_it(layer, forbidden):
    graph = import_graph()
    wrong = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items() if within(module, layer)
        for target in targets if any(within(target, above) for above in forbidden)
    )
    assert wrong == []
