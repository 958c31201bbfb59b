"""`edge-agent replay EVENTS.jsonl --rules FILE`: what new rules would change, lane by lane."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from edge_agent.exit_codes import EXIT_BAD_INPUT, EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "replay", help="re-decide recorded parcels with other rules and show what changes",
    )
    parser.add_argument("events", type=Path, help="JSON Lines of decisions or parcel events")
    parser.add_argument("--rules", type=Path, required=True, metavar="FILE",
                        help="the rule set (TOML) to re-decide the recorded parcels with")
    parser.add_argument("--timezone", default="Asia/Hong_Kong", help="the site's time zone")
    parser.add_argument("--default-country", default="CN",
                        help="country of a GS1 AI 420 postal code")
    parser.add_argument("--json", action="store_true", help="print the comparison as JSON")
    parser.set_defaults(handler=run_replay)


def run_replay(args: argparse.Namespace) -> int:
    from edge_agent.safe_text import terminal_safe
    from edge_agent.sorting.replay import read_records, replay
    from edge_agent.sorting.rules import load_rules

    rules = load_rules(args.rules)
    problems: list[str] = []
    report = replay(read_records(args.events, problems), rules, timezone=args.timezone,
                    default_country=args.default_country, problems=problems)
    if args.json:
        print(json.dumps({
            "parcels": report.parcels,
            "changed": len(report.changes),
            "moves": [{"from": a, "to": b, "parcels": n}
                      for (a, b), n in sorted(report.moves.items())],
            "changes": [{"parcel_id": c.parcel_id, "barcode": c.barcode, "from": c.old_lane,
                         "to": c.new_lane, "old_rule": c.old_rule, "new_rule": c.new_rule,
                         "reasons": list(c.new_reasons)} for c in report.changes],
            "problems": report.problems,
        }))
    else:
        _print_human(report, rules.version)
    for problem in report.problems:
        print(f"{args.events}: {terminal_safe(problem)}", file=sys.stderr)
    return EXIT_BAD_INPUT if report.problems else EXIT_OK


def _print_human(report, version: str) -> None:
    """Lanes, rules, ids and barcodes come from the file (and from scanners before that):
    every one is made terminal-safe."""
    from edge_agent.safe_text import terminal_safe as safe

    print(f"{report.parcels} parcels replayed with rules {safe(version)}; "
          f"{len(report.changes)} would change lane")
    lanes = sorted({lane for pair in report.moves for lane in pair})
    for lane in lanes:
        before = sum(n for (a, _), n in report.moves.items() if a == lane)
        after = sum(n for (_, b), n in report.moves.items() if b == lane)
        print(f"  {safe(lane):<12} {before:>7} -> {after:>7}  ({after - before:+d})")
    for change in report.changes:
        reasons = ",".join(change.new_reasons) or "-"
        print(f"  {safe(change.parcel_id)} {safe(change.barcode or '(no read)')}: "
              f"{safe(change.old_lane)} -> {change.new_lane} "
              f"(rule {safe(change.old_rule)} -> {change.new_rule}; {reasons})")
