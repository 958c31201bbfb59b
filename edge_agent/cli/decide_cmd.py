"""`edge-agent decide BARCODE`: dry-run one decision and say why, without any device."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge_agent.errors import EdgeAgentError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "decide", help="dry-run the decision for one barcode and explain it",
        description="The barcode may hold an AIM prefix (]C1...), and <GS> or the GS byte.",
    )
    parser.add_argument("barcode", help="scanned data; an empty string is a no-read")
    parser.add_argument("--weight", type=float, metavar="KG", help="stable measured weight")
    parser.add_argument("--rules", type=Path, metavar="FILE", help="rules TOML (default: embedded)")
    parser.add_argument("--state-dir", type=Path, metavar="DIR",
                        help="look the barcode up in DIR/manifest.sqlite3")
    parser.add_argument("--at", metavar="ISO-8601",
                        help="decision time (no offset: the site's time zone); default now")
    parser.add_argument("--lane", action="append", default=[], metavar="LANE=STATE",
                        help="a lane's state (open, full, blocked); repeatable")
    parser.add_argument("--timezone", default="Asia/Hong_Kong", help="the site's time zone")
    parser.add_argument("--default-country", default="CN",
                        help="country of a GS1 AI 420 postal code")
    parser.add_argument("--json", action="store_true", help="print the decision record as JSON")
    parser.set_defaults(handler=run_decide)


class DecideInputError(EdgeAgentError):
    pass


def _decision_time(text: str | None, timezone: str) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise DecideInputError(f"--at: {text!r} is not an ISO 8601 time") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=ZoneInfo(timezone))


def _lane_states(pairs: list[str]) -> dict:
    from edge_agent.sorting.lanes import LaneState

    states = {}
    for pair in pairs:
        name, _, state = pair.partition("=")
        try:
            states[name] = LaneState(state)
        except ValueError:
            raise DecideInputError(
                f"--lane: {pair!r} must be LANE=open|full|blocked"
            ) from None
    return states


def run_decide(args: argparse.Namespace) -> int:
    from edge_agent.ids import new_id
    from edge_agent.sorting.decision import REASONS, Parcel, decide, identifier_of
    from edge_agent.sorting.rules import default_rules, load_rules

    try:
        ZoneInfo(args.timezone)
    except (KeyError, ValueError):
        raise DecideInputError(f"--timezone: unknown time zone {args.timezone!r}") from None
    if args.weight is not None and not 0 <= args.weight < float("inf"):
        raise DecideInputError(f"--weight: {args.weight} is not a weight in kg")
    rules = load_rules(args.rules) if args.rules else default_rules()
    now = _decision_time(args.at, args.timezone)
    states = _lane_states(args.lane)
    unknown = sorted(set(states) - set(rules.lanes))
    if unknown:
        raise DecideInputError(f"--lane: unknown lane {unknown[0]!r} (rules: {list(rules.lanes)})")
    parcel = Parcel(
        parcel_id=new_id(), barcode=args.barcode or None, symbology=None,
        no_read=not args.barcode, weight_kg=args.weight, weight_stable=args.weight is not None,
        weight_status="ok" if args.weight is not None else None,
        scanned_at=now.astimezone(UTC), scanned_ns=0,
    )
    entry = None
    if args.state_dir is not None:
        entry = _manifest_entry(args.state_dir, identifier_of(parcel).key)
    decision = decide(parcel, rules, entry, states, now,
                      default_country=args.default_country, timezone=args.timezone)
    if args.json:
        print(json.dumps(decision.to_dict()))
        return 0
    inputs = decision.inputs
    print(f"lane {decision.lane} (bin {decision.bin})   rule {decision.rule}   "
          f"rules {decision.rules_version}")
    for reason in decision.reasons:
        print(f"  reason {reason}: {REASONS.get(reason, 'defined by the rules file')}")
    validity = "valid" if inputs.identifier_valid else f"invalid ({inputs.identifier_problem})"
    print(f"identifier: {inputs.identifier_kind}, {validity}")
    print(f"destination: {inputs.country or '?'} {inputs.postal_code or ''} "
          f"{inputs.province or ''} (from {inputs.destination_source or 'nowhere'})")
    weight = "none" if inputs.weight_kg is None else f"{inputs.weight_kg:g} kg"
    declared = inputs.declared_weight_kg
    print(f"weight: {weight}; declared: {'-' if declared is None else f'{declared:g} kg'}; "
          f"service: {inputs.service or '-'}")
    print(f"local time: {inputs.local_time}")
    return 0


def _manifest_entry(state_dir: Path, key: str | None):
    from edge_agent.sorting.manifest import MANIFEST_FILE, Manifest

    if not (state_dir / MANIFEST_FILE).exists():
        raise DecideInputError(f"--state-dir: no manifest at {state_dir / MANIFEST_FILE}")
    with Manifest.open(state_dir) as manifest:
        return manifest.get(key)
