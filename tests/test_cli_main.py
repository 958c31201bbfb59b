"""The CLI entry: global options, exit codes, and a lean start for the service."""

import subprocess
import sys

import pytest

from edge_agent.cli.main import _command_named, main


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["run", "--config", "x"], "run"),
        (["-vv", "diag", "watch"], "diag"),
        (["--log-format", "json", "config", "check", "f"], "config"),
        (["--version"], None),
        ([], None),
    ],
)
def test_command_named_skips_global_options(argv, command):
    assert _command_named(argv) == command


def test_run_imports_none_of_the_technicians_commands():
    probe = (
        "import sys; from edge_agent.cli.main import build_parser; build_parser('run'); "
        "print(sorted(m for m in sys.modules if m.startswith('edge_agent.cli.')))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "['edge_agent.cli.main', 'edge_agent.cli.run_cmd']"


def test_group_without_subcommand_and_unknown_command(capsys):
    assert main(["config"]) == 2
    assert "check" in capsys.readouterr().out
    with pytest.raises(SystemExit) as exit_info:
        main(["no-such-command"])
    assert exit_info.value.code == 2
