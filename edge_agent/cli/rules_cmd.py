"""`edge-agent rules check FILE` and `rules show`: validate a rules file, print the defaults."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from edge_agent.exit_codes import EXIT_BAD_INPUT, EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    group = subparsers.add_parser("rules", help="check and show sorting rules")
    group.set_defaults(group_parser=group)
    commands = group.add_subparsers(dest="rules_command", metavar="SUBCOMMAND")
    check = commands.add_parser(
        "check", help="validate a rules file against a sorter's bins; exit 2 on any problem",
        description="Validates the file as the agent would take it (rules.apply, SIGHUP, start): "
        "every lane's bin must be one the sorter can address. The sorter is the one in "
        "--config, or --sorter-profile, or else the default profile (generic-divert, bins "
        "1-99).")
    check.add_argument("file", type=Path, help="the rules TOML to validate")
    sorter = check.add_mutually_exclusive_group()
    sorter.add_argument("--config", type=Path, metavar="FILE",
                        help="the agent's config: check against its sorter's profile")
    sorter.add_argument("--sorter-profile", metavar="NAME",
                        help="check against this sorter profile (default: generic-divert)")
    check.add_argument("--json", action="store_true", help="print {ok, problems} as JSON")
    check.set_defaults(handler=run_check)
    show = commands.add_parser("show", help="print the embedded default rules file")
    show.set_defaults(handler=run_show)


def run_check(args: argparse.Namespace) -> int:
    from edge_agent.config import load_config
    from edge_agent.runtime.sorter_reach import (
        DEFAULT_SORTER_PROFILE,
        reach_of_config,
        reach_of_profile,
    )
    from edge_agent.sorting.rules import RulesError, load_rules

    # The sorter first: a wrong --config or profile name is the caller's error (exit 2 from
    # the CLI's handler of EdgeAgentError), not a problem of the rules file.
    if args.config is not None:
        reach = reach_of_config(load_config(args.config))
    else:
        reach = reach_of_profile(args.sorter_profile or DEFAULT_SORTER_PROFILE)
    try:
        rules = load_rules(args.file)
    except RulesError as exc:
        problems = exc.problems
    else:
        problems = reach.problems(rules)
    if args.json:
        print(json.dumps({"file": str(args.file), "ok": not problems, "problems": problems}))
    elif problems:
        for problem in problems:
            print(f"{args.file}: {problem}")
    else:
        print(f"{args.file}: OK (version {rules.version}, {len(rules.lanes)} lanes, "
              f"{len(rules.rules)} rules), every bin within sorter profile {reach.profile!r} "
              f"({reach.lowest_bin}-{reach.highest_bin})")
    return EXIT_BAD_INPUT if problems else EXIT_OK


def run_show(args: argparse.Namespace) -> int:
    from importlib import resources

    print(resources.files("edge_agent.defaults").joinpath("rules.toml").read_text("utf-8"), end="")
    return 0
