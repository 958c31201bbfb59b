"""Every option says what it does (`--help`), and bash completes commands, options, choices
and paths from the same parser tree."""

from __future__ import annotations

import argparse
import subprocess

from edge_agent.cli.completion_cmd import bash_script
from edge_agent.cli.main import build_parser, subcommand_parsers


def test_every_option_and_subcommand_has_help():
    parser = build_parser()
    missing = []
    for command in [parser, *subcommand_parsers(parser)]:
        for action in command._actions:
            if isinstance(action, argparse._HelpAction | argparse._VersionAction):
                continue
            if isinstance(action, argparse._SubParsersAction):
                missing += [f"{command.prog} {choice.dest}" for choice in action._choices_actions
                            if not choice.help]
            elif not action.help:
                missing.append(f"{command.prog} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


def _complete(script_path, *words: str) -> list[str]:
    quoted = " ".join(f"'{word}'" for word in words)
    probe = (f"source {script_path}; COMP_WORDS=({quoted}); "
             "COMP_CWORD=$(( ${#COMP_WORDS[@]} - 1 )); _edge_agent; "
             'printf "%s\\n" "${COMPREPLY[@]}"')
    done = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True,
                          timeout=30)
    assert done.stderr == ""
    return [line for line in done.stdout.splitlines() if line]


def test_bash_completes_commands_options_choices_and_paths(tmp_path):
    script = tmp_path / "edge-agent.bash"
    script.write_text(bash_script())
    assert _complete(script, "edge-agent", "di") == ["diag"]
    assert _complete(script, "edge-agent", "diag", "wa") == ["watch"]
    assert _complete(script, "edge-agent", "-vv", "diag", "status", "--fo") == ["--follow"]
    assert _complete(script, "edge-agent", "diag", "watch", "--profile", "mt-sics") == [
        "mt-sics", "mt-sics-continuous"]
    assert _complete(script, "edge-agent", "--log-format", "j") == ["json"]
    (tmp_path / "agent.toml").write_text("")
    assert _complete(script, "edge-agent", "manifest", "stats", "--config",
                     str(tmp_path / "ag")) == [str(tmp_path / "agent.toml")]
    assert "completion" in _complete(script, "edge-agent", "")
