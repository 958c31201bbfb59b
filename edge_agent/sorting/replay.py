"""Replaying recorded decisions against another rule set: what would change, lane by lane.

Input records are `Decision.to_dict()` objects, or MQTT parcel events that carry the same keys
at the top level beside envelope keys (`event_id`, `seq`, `schema`, ...). Each record holds every
input its decision used, so the new decision needs no manifest and no devices.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from edge_agent.errors import EdgeAgentError
from edge_agent.safe_text import cut
from edge_agent.sorting.constraints import NO_DANGEROUS_GOODS
from edge_agent.sorting.decision import Decision, Parcel, decide, identifier_of
from edge_agent.sorting.holds import Hold
from edge_agent.sorting.labels import MULTIPLE_LABELS, MULTIPLE_LABELS_IDENTIFIER
from edge_agent.sorting.lanes import LaneState
from edge_agent.sorting.manifest import ManifestEntry
from edge_agent.sorting.rules import RuleSet

REQUIRED_KEYS = ("parcel_id", "lane", "rule", "decided_at", "inputs")
# A day's file with this many bad lines is not a decision log; stop listing them.
MAX_REPORTED_PROBLEMS = 50


class ReplayError(EdgeAgentError):
    pass


@dataclass(frozen=True, slots=True)
class Change:
    parcel_id: str
    barcode: str | None
    old_lane: str
    new_lane: str
    old_rule: str
    new_rule: str
    new_reasons: tuple[str, ...]


@dataclass
class ReplayReport:
    parcels: int = 0
    # (old lane, new lane) -> parcels; the diagonal is "unchanged".
    moves: Counter[tuple[str, str]] = field(default_factory=Counter)
    changes: list[Change] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def redecide(record: dict, rules: RuleSet, timezone: str, default_country: str) -> Decision:
    """The decision `rules` would make for a recorded decision's inputs."""
    inputs = record["inputs"]
    decided_at = datetime.fromisoformat(record["decided_at"])
    parcel = Parcel(
        parcel_id=record["parcel_id"],
        barcode=record.get("barcode"),
        symbology=inputs.get("symbology"),
        no_read=bool(inputs.get("no_read")),
        weight_kg=inputs.get("weight_kg"),
        weight_stable=bool(inputs.get("weight_stable")),
        weight_status=inputs.get("weight_status"),
        scanned_at=decided_at,
        scanned_ns=0,
        late=bool(inputs.get("late")),
        # Events recorded before these inputs existed lack them: unknown stays unknown (None).
        weight_pairing=inputs.get("weight_pairing"),
        weight_offset_ms=inputs.get("weight_offset_ms"),
        length_mm=inputs.get("length_mm"), width_mm=inputs.get("width_mm"),
        height_mm=inputs.get("height_mm"), volume_cm3=inputs.get("volume_cm3"),
        labels=tuple(inputs.get("labels") or ()),
    )
    entry = None
    if inputs.get("manifest_hit") and inputs.get("country") and record.get("barcode"):
        # Only the fields the decision used were recorded; a barcode-given destination wins over
        # the manifest's anyway, so the recorded country and postal code stand in for it.
        entry = ManifestEntry(
            # The manifest is keyed by the parsed identifier: a GS1 barcode's raw text holds
            # a <GS> and is no valid manifest barcode, its SSCC is.
            barcode=identifier_of(parcel).key,
            country=inputs["country"],
            postal_code=inputs.get("postal_code"),
            declared_weight_kg=inputs.get("declared_weight_kg"),
            service=inputs.get("service"),
            # Recorded since holds, air and customs: absent in older events, so unknown (the
            # declaration, not a verdict: the new rules' rates and limits judge it again).
            order_id=inputs.get("order_id"),
            dangerous_goods=_declared_flags(inputs.get("dangerous_goods")),
            declared_value=inputs.get("declared_value"),
            currency=inputs.get("currency"),
            customs_mode=inputs.get("customs_mode"),
        )
    states = {name: LaneState(state) for name, state in (inputs.get("lane_states") or {}).items()}
    # The labels' choice depended on the manifest of the day, which replay does not have: the
    # recorded identifier stands (for several labels naming different parcels, that verdict).
    identifier = (MULTIPLE_LABELS_IDENTIFIER
                  if inputs.get("identifier_problem") == MULTIPLE_LABELS else None)
    # A hold applied then applies in the replay: it was central's, not the rules', to lift.
    hold = None
    if inputs.get("hold_id") is not None:
        hold = Hold(str(inputs["hold_id"]), record.get("barcode"), inputs.get("order_id"),
                    str(inputs.get("hold_reason") or ""), math.inf, 0.0)
    return decide(parcel, rules, entry, states, decided_at,
                  default_country=default_country, timezone=timezone,
                  clock_synchronised=inputs.get("clock_synchronised"), identifier=identifier,
                  hold=hold)


def _declared_flags(recorded: object) -> object:
    """An event's dangerous-goods flags as the manifest declares them: [] (declared free of
    them) is "none"; absent stays None, not declared."""
    if isinstance(recorded, list) and not recorded:
        return NO_DANGEROUS_GOODS
    return recorded


def read_records(path: Path, problems: list[str]) -> Iterator[tuple[int, dict]]:
    """(line number, record) per decision; a bad line (not UTF-8, not JSON, not a decision)
    becomes a problem naming it, and the others are still replayed."""
    try:
        handle = path.open("rb")
    except OSError as exc:
        raise ReplayError(f"{path}: cannot read: {exc.strerror or exc}") from None
    with handle:
        for number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError as exc:
                _problem(problems, f"line {number}: not UTF-8 text ({exc.reason} at byte "
                                   f"{exc.start + 1} of the line)")
                continue
            except json.JSONDecodeError as exc:
                _problem(problems, f"line {number}: not JSON ({exc.msg})")
                continue
            except RecursionError:  # [[[[... thousands deep: no decision record looks so
                _problem(problems, f"line {number}: not a decision record (JSON nested too "
                                   "deeply)")
                continue
            missing = [k for k in REQUIRED_KEYS if not isinstance(record, dict) or k not in record]
            if missing:
                _problem(problems, f"line {number}: not a decision record (missing {missing[0]})")
                continue
            yield number, record


def replay(
    records: Iterable[tuple[int, dict]], rules: RuleSet, *, timezone: str, default_country: str,
    problems: list[str] | None = None,
) -> ReplayReport:
    report = ReplayReport(problems=problems if problems is not None else [])
    for number, record in records:
        try:
            new = redecide(record, rules, timezone, default_country)
        except (EdgeAgentError, ValueError, TypeError, KeyError, AttributeError) as exc:
            _problem(report.problems, f"line {number}: cannot replay ({cut(str(exc))})")
            continue
        report.parcels += 1
        old_lane = str(record["lane"])
        report.moves[(old_lane, new.lane)] += 1
        if old_lane != new.lane:
            report.changes.append(Change(
                new.parcel_id, new.barcode, old_lane, new.lane, str(record["rule"]), new.rule,
                new.reasons,
            ))
    return report


def _problem(problems: list[str], text: str) -> None:
    if len(problems) < MAX_REPORTED_PROBLEMS:
        problems.append(text)
