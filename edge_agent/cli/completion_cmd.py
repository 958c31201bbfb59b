"""`edge-agent completion bash`: a bash completion script made from the argparse tree itself.

    edge-agent completion bash > /etc/bash_completion.d/edge-agent     # or source it

The script holds, for each command path (`diag`, `diag watch`...), its subcommands and
options; options that take a file or directory complete paths, options with fixed choices
(and --profile, with the profiles found when the script was made) complete those. Made from
the same parser the commands use, so it cannot drift from them; no dependency for it.
"""

from __future__ import annotations

import argparse
import shlex
from pathlib import Path

# Options whose value is a profile name: completed from `edge-agent profiles list`.
PROFILE_OPTIONS = ("--profile",)
# Options whose value is a path though their parser takes it as text (`-` means stdin).
PATH_OPTIONS = ("--file",)
# bash's associative arrays refuse an empty key: the top level has this one.
ROOT = "edge-agent"


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("completion", help="print a shell completion script")
    parser.add_argument("shell", choices=("bash",), help="the shell (bash)")
    parser.set_defaults(handler=run_completion)


def run_completion(args: argparse.Namespace) -> int:
    print(bash_script(), end="")
    return 0


def _tree(parser: argparse.ArgumentParser, path: str, words: dict[str, list[str]],
          files: set[str], choices: dict[str, list[str]]) -> None:
    found: list[str] = []
    for action in parser._actions:  # argparse keeps its tree there; no public way to walk it
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found.append(name)
                _tree(child, f"{path} {name}", words, files, choices)
            continue
        found += [option for option in action.option_strings if option.startswith("--")]
        for option in action.option_strings:
            if (action.type is Path or action.metavar in ("FILE", "DIR", "PATH")
                    or option in PATH_OPTIONS):
                files.add(option)
            elif action.choices and option not in PROFILE_OPTIONS:
                choices[option] = [str(choice) for choice in action.choices]
    words[path] = found


def bash_script() -> str:
    from edge_agent.cli.main import build_parser
    from edge_agent.devices.profiles import available_profiles

    words: dict[str, list[str]] = {}
    files: set[str] = set()
    choices: dict[str, list[str]] = {option: list(available_profiles())
                                     for option in PROFILE_OPTIONS}
    _tree(build_parser(), ROOT, words, files, choices)
    table = "\n".join(f"    [{shlex.quote(path)}]={shlex.quote(' '.join(found))}"
                      for path, found in sorted(words.items()))
    choice_cases = "\n".join(
        f"        {option}) COMPREPLY=($(compgen -W {shlex.quote(' '.join(values))} "
        f'-- "$cur")); return ;;'
        for option, values in sorted(choices.items()))
    file_options = "|".join(sorted(files)) or "--no-such-option"
    return f"""# bash completion for edge-agent (made by: edge-agent completion bash)
declare -gA _edge_agent_words=(
{table}
)

_edge_agent() {{
    local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}"
    local path={ROOT} word i
    # The command path typed so far: the words that name a known (sub)command, in order.
    for ((i = 1; i < COMP_CWORD; i++)); do
        word="${{COMP_WORDS[i]}}"
        if [[ -n "${{_edge_agent_words["$path $word"]+set}}" ]]; then
            path="$path $word"
        fi
    done
    case "$prev" in
        {file_options}) COMPREPLY=($(compgen -f -- "$cur")); return ;;
{choice_cases}
    esac
    COMPREPLY=($(compgen -W "${{_edge_agent_words["$path"]}}" -- "$cur"))
}}
complete -o filenames -F _edge_agent edge-agent
"""
