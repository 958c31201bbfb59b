"""`edge-agent decide BARCODE`: dry-run one decision and say why, without any device.

With no options it decides as the installed agent would: the manifest, central's holds, rules,
time zone and default country of the state directory and config that state_location.py finds
(--state-dir, --config, /etc/edge-agent/agent.toml); each option overrides one of them. Where
there is no manifest it says so and where it looked, and decides without one.
"""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from edge_agent.cli.state_location import StateLocation, add_location_options, locate
from edge_agent.errors import EdgeAgentError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "decide", help="dry-run the decision for one barcode and explain it",
        description="The barcode may hold an AIM prefix (]C1...), and <GS> or the GS byte.",
    )
    parser.add_argument("barcode", help="scanned data; an empty string is a no-read")
    parser.add_argument("--weight", type=float, metavar="KG", help="stable measured weight")
    parser.add_argument("--dims", metavar="LxWxH",
                        help="measured length, width and height in mm (as a DWS unit sends)")
    parser.add_argument("--label", action="append", default=[], metavar="DATA",
                        help="another label read on the same parcel; repeatable (the decision "
                             "then chooses the label that names the parcel)")
    parser.add_argument("--rules", type=Path, metavar="FILE",
                        help="rules TOML (default: the agent's rules from its config and state "
                             "directory, else the embedded default)")
    add_location_options(parser)
    parser.add_argument("--at", metavar="ISO-8601",
                        help="decision time (no offset: the site's time zone); default now")
    parser.add_argument("--lane", action="append", default=[], metavar="LANE=STATE",
                        help="a lane's state (open, full, blocked); repeatable")
    parser.add_argument("--timezone", metavar="ZONE",
                        help="the site's time zone (default: the config's, else Asia/Hong_Kong)")
    parser.add_argument("--default-country", metavar="CC",
                        help="country of a GS1 AI 420 postal code (default: the config's, else CN)")
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


def _dims(text: str | None) -> tuple[float | None, float | None, float | None]:
    if text is None:
        return None, None, None
    parts = text.lower().split("x")
    try:
        sides = [float(part) for part in parts]
    except ValueError:
        sides = []
    if len(sides) != 3 or not all(0 < side < 100_000 for side in sides):
        raise DecideInputError(f"--dims: {text!r} must be LxWxH in mm, e.g. 400x300x200")
    return sides[0], sides[1], sides[2]


def _rules(args: argparse.Namespace, location: StateLocation):
    from edge_agent.runtime.rules_store import initial_rules
    from edge_agent.sorting.rules import default_rules, load_rules

    if args.rules:
        return load_rules(args.rules)
    if location.config is not None:
        return initial_rules(location.config)[0]
    return default_rules()


def run_decide(args: argparse.Namespace) -> int:
    from edge_agent.ids import new_id
    from edge_agent.safe_text import terminal_safe as safe
    from edge_agent.sorting.decision import REASONS, Parcel, decide, identifier_of

    location = locate(args)
    config = location.config
    if args.timezone is None:
        args.timezone = config.timezone if config is not None else "Asia/Hong_Kong"
    if args.default_country is None:
        args.default_country = config.default_destination_country if config else "CN"
    try:
        ZoneInfo(args.timezone)
    except (KeyError, ValueError):
        raise DecideInputError(f"--timezone: unknown time zone {args.timezone!r}") from None
    if args.weight is not None and not 0 <= args.weight < float("inf"):
        raise DecideInputError(f"--weight: {args.weight} is not a weight in kg")
    rules = _rules(args, location)
    now = _decision_time(args.at, args.timezone)
    states = _lane_states(args.lane)
    unknown = sorted(set(states) - set(rules.lanes))
    if unknown:
        raise DecideInputError(f"--lane: unknown lane {unknown[0]!r} (rules: {list(rules.lanes)})")
    length, width, height = _dims(args.dims)
    labels = tuple(label for label in (args.barcode, *args.label) if label)
    parcel = Parcel(
        parcel_id=new_id(), barcode=args.barcode or None, symbology=None,
        no_read=not args.barcode, weight_kg=args.weight, weight_stable=args.weight is not None,
        weight_status="ok" if args.weight is not None else None,
        scanned_at=now.astimezone(UTC), scanned_ns=0,
        length_mm=length, width_mm=width, height_mm=height,
        labels=labels if len(labels) > 1 else (),
    )
    identifier = None
    if parcel.labels:
        parcel, identifier, entry, manifest_note = _resolve_labels(location, parcel, rules)
    else:
        entry, manifest_note = _manifest_entry(location, identifier_of(parcel).key)
    key = (identifier or identifier_of(parcel)).key
    hold = _hold(location, key, entry.order_id if entry is not None else None, now)
    decision = decide(parcel, rules, entry, states, now, identifier=identifier,
                      default_country=args.default_country, timezone=args.timezone, hold=hold)
    if args.json:
        print(json.dumps(decision.to_dict()))
        return 0
    inputs = decision.inputs
    print(f"lane {safe(decision.lane)} (bin {decision.bin})   rule {safe(decision.rule)}   "
          f"rules {safe(decision.rules_version)}")
    for reason in decision.reasons:
        print(f"  reason {safe(reason)}: {REASONS.get(reason, 'defined by the rules file')}")
    validity = ("valid" if inputs.identifier_valid
                else f"invalid ({safe(str(inputs.identifier_problem))})")
    print(f"barcode: {safe(args.barcode) if args.barcode else '(no read)'}")
    print(f"identifier: {inputs.identifier_kind}, {validity}")
    source = inputs.destination_source or "nowhere: not in the barcode, not in the manifest"
    where = " ".join(safe(part) for part in (inputs.country or "?", inputs.postal_code,
                                             inputs.province) if part)
    print(f"destination: {where} (from {source})")
    print(f"manifest: {manifest_note}")
    weight = "none" if inputs.weight_kg is None else f"{inputs.weight_kg:g} kg"
    declared = inputs.declared_weight_kg
    print(f"weight: {weight}; declared: {'-' if declared is None else f'{declared:g} kg'}; "
          f"service: {safe(inputs.service or '-')}")
    if inputs.chargeable_weight_kg is not None:
        print(f"size: {inputs.length_mm:g} x {inputs.width_mm:g} x {inputs.height_mm:g} mm, "
              f"{inputs.volume_cm3:g} cm³; chargeable weight {inputs.chargeable_weight_kg:g} kg")
    if inputs.labels:
        print("labels read: " + ", ".join(safe(label) for label in inputs.labels))
    _print_declarations(inputs, rules.customs.currency)
    print(f"local time: {inputs.local_time}")
    return 0


def _print_declarations(inputs, currency: str) -> None:
    """Central's hold, dangerous goods and the customs declaration, where there are any."""
    from edge_agent.safe_text import terminal_safe as safe

    if inputs.hold_id is not None:
        print(f"hold: {safe(inputs.hold_id)} from central: {safe(inputs.hold_reason or '')}")
    if inputs.dangerous_goods is not None:
        flags = ", ".join(inputs.dangerous_goods) or "declared none"
        print(f"dangerous goods: {flags}")
    if inputs.declared_value is not None:
        converted = ("?" if inputs.customs_value is None
                     else f"{inputs.customs_value:,.2f} {currency}")
        print(f"customs: declared {inputs.declared_value:,.2f} {safe(inputs.currency or '?')} "
              f"= {converted}, {inputs.customs_mode or 'no customs mode'}: "
              f"{inputs.customs_check or 'no limit applied'}")


def _hold(location: StateLocation, key: str | None, order_id: str | None, now: datetime):
    """The installed agent's hold on this parcel at `now`, if it keeps any."""
    from edge_agent.sorting.hold_store import HoldStore
    from edge_agent.sorting.holds import HoldIndex

    store = HoldStore.open_read_only(location.state_dir)
    if store is None:
        return None
    try:
        active = store.active(now.timestamp())
    finally:
        store.close()
    return HoldIndex(active).find(key, order_id, now.timestamp())


def _resolve_labels(location: StateLocation, parcel, rules):
    """Several labels: the one that names the parcel, looked up in the agent's manifest."""
    from edge_agent.sorting.labels import resolve_labels
    from edge_agent.sorting.manifest import MANIFEST_FILE, Manifest

    path = location.state_dir / MANIFEST_FILE
    manifest = Manifest.open_read_only(location.state_dir)
    if manifest is None:
        if location.why == "--state-dir":
            raise DecideInputError(f"--state-dir: no manifest at {path}")
        resolved = resolve_labels(parcel, lambda key: None, rules.label_priority,
                                  rules.trust_known_label)
        return (*resolved, f"none at {path} ({location.why}); decided without one")
    with manifest:
        resolved = resolve_labels(parcel, manifest.get, rules.label_priority,
                                  rules.trust_known_label)
    return (*resolved, f"{path}: {'found' if resolved[2] is not None else 'not in it'}")


def _manifest_entry(location: StateLocation, key: str | None):
    """(the entry or None, one line saying which manifest was read and what it held)."""
    from edge_agent.sorting.manifest import MANIFEST_FILE, Manifest

    path = location.state_dir / MANIFEST_FILE
    manifest = Manifest.open_read_only(location.state_dir)
    if manifest is None:
        if location.why == "--state-dir":  # asked for by name: a mistake worth stopping on
            raise DecideInputError(f"--state-dir: no manifest at {path}")
        return None, f"none at {path} ({location.why}); decided without one"
    with manifest:
        entry = manifest.get(key)
    return entry, f"{path}: {'found' if entry is not None else 'not in it'}"
