"""`edge-agent rules check FILE` and `rules show`: validate a rules file, print the defaults."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("rules", help="check and show sorting rules")
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")
    check = commands.add_parser("check", help="validate a rules file; exit 2 on any problem")
    check.add_argument("file", type=Path, help="the rules TOML to validate")
    check.add_argument("--json", action="store_true", help="print {ok, problems} as JSON")
    check.set_defaults(handler=run_check)
    show = commands.add_parser("show", help="print the embedded default rules file")
    show.set_defaults(handler=run_show)


def run_check(args: argparse.Namespace) -> int:
    from edge_agent.sorting.rules import RulesError, load_rules

    try:
        rules = load_rules(args.file)
    except RulesError as exc:
        problems = exc.problems
    else:
        problems = []
    if args.json:
        print(json.dumps({"file": str(args.file), "ok": not problems, "problems": problems}))
    elif problems:
        for problem in problems:
            print(f"{args.file}: {problem}")
    else:
        print(f"{args.file}: OK (version {rules.version}, {len(rules.lanes)} lanes, "
              f"{len(rules.rules)} rules)")
    return 2 if problems else 0


def run_show(args: argparse.Namespace) -> int:
    from importlib import resources

    print(resources.files("edge_agent.defaults").joinpath("rules.toml").read_text("utf-8"), end="")
    return 0
