"""Deciding a parcel's lane: a pure function of parcel, rules, manifest entry, lane states, clock.

`decide()` never raises for any parcel and gives the same decision for the same inputs. The
decision records every input it used (`Decision.inputs`), so any decision can be explained
and replayed against other rules (`edge-agent replay`). `Decision.to_dict()` is the contract
used verbatim in every MQTT parcel event.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple
from zoneinfo import ZoneInfo

from edge_agent.sorting.constraints import dangerous_goods_flags
from edge_agent.sorting.destinations import resolve_destination
from edge_agent.sorting.holds import Hold
from edge_agent.sorting.identifiers import Identifier, IdentifierKind, parse_identifier
from edge_agent.sorting.inputs import DecisionInputs
from edge_agent.sorting.lanes import Lane, LaneState
from edge_agent.sorting.manifest import ManifestEntry
from edge_agent.sorting.rules import RuleSet

# Every reason code the default rules and the lane checks produce, in one place. Rule files may
# add their own codes (lower_snake_case); consumers should group by code, not parse text.
REASONS: dict[str, str] = {
    "no_read": "the scanner could not read a barcode",
    "invalid_check_digit": "the barcode's check digit is wrong (S10, SSCC or GTIN)",
    "invalid_identifier": "the barcode is not a well-formed identifier",
    "unknown_destination": "neither the barcode nor the manifest gives a known destination",
    "no_stable_weight": "no stable weight was paired with the scan in time",
    "weight_mismatch": "measured weight is off the declared one by more than the tolerance",
    "overweight": "heavier than any route takes (or the scale reported overload)",
    "local_destination": "a Hong Kong address: not on any route from this warehouse",
    "after_cutoff": "after the route's daily cutoff: the fallback route takes it",
    "over_route_weight_limit": "heavier than the chosen lane's weight limit: its overflow takes it",
    "lane_full_overflow": "the chosen lane is full: its overflow lane takes it",
    "lane_blocked_overflow": "the chosen lane is blocked: its overflow lane takes it",
    "lane_unavailable": "no lane down the overflow chain can take it (or the exception lane "
    "itself is full or blocked, and receives it anyway)",
    "decision_late": "the parcel was not decided within its deadline (it would miss its divert)",
    "no_rule_matched": "no rule matched: the rule set's default lane",
    "weight_ambiguous": "more than one reading could be this parcel's (or its reading could "
    "be a neighbour's): pairing cannot tell, so it takes none",
    "clock_unsynchronised": "the wall clock was not synchronised: rules that look at the time "
    "took the rule set's safe branch (by default, as after the cutoff)",
    "multiple_labels": "the parcel carries two valid labels that name different parcels",
    "air_restricted": "declared dangerous goods (lithium battery, liquid, powder, other) and the "
    "lane's route flies (or does not say): the lane's ground lane takes it, else the exception "
    "lane",
    "customs_value_limit": "the declared value, converted into the rules' customs currency, is "
    "over the limit of the parcel's customs mode",
    "unknown_currency": "a declared value in a currency the rules have no rate for: its customs "
    "value is not guessed",
    "held": "central holds the parcel (by barcode or order id; its reason is in the inputs' "
    "hold_reason): the rule set's hold lane, else the exception lane",
}
LATE_RULE_ID = "decision_late"
HELD_RULE_ID = "held"


@dataclass(frozen=True, slots=True)
class Parcel:
    parcel_id: str
    barcode: str | None
    symbology: str | None
    no_read: bool
    weight_kg: float | None
    weight_stable: bool
    weight_status: str | None
    scanned_at: datetime  # UTC, wall clock
    scanned_ns: int  # time.monotonic_ns() when the scan's bytes arrived
    # Pairing could not hand the parcel over before its decision deadline.
    late: bool = False
    # How the weight was matched (edge_agent.sorting.pairing_parcels.PAIRING_OUTCOMES) and the
    # reading's time from the scan; None where unknown (a dry run, a replayed old event).
    weight_pairing: str | None = None
    weight_offset_ms: float | None = None
    # What a DWS unit (or a dimensioner) measured, in mm and cm³; None: not measured.
    length_mm: float | None = None
    width_mm: float | None = None
    height_mm: float | None = None
    volume_cm3: float | None = None
    # Every label read on the parcel when there were several (the chosen one is `barcode`).
    labels: tuple[str, ...] = ()


class Decision(NamedTuple):
    """What was decided and why. A NamedTuple, like every record built on each decision: a
    frozen dataclass costs about 0.25 µs per field to make, a tuple a tenth of that."""

    parcel_id: str
    barcode: str | None
    lane: str
    bin: int
    rule: str
    reasons: tuple[str, ...]
    rules_version: str
    decided_at: datetime  # UTC
    inputs: DecisionInputs

    def to_dict(self) -> dict[str, object]:
        """JSON-ready; the payload of the MQTT parcel event and the input of replay."""
        return {
            "parcel_id": self.parcel_id,
            "barcode": self.barcode,
            "lane": self.lane,
            "bin": self.bin,
            "rule": self.rule,
            "reasons": list(self.reasons),
            "rules_version": self.rules_version,
            "decided_at": self.decided_at.isoformat(),
            "inputs": self.inputs.to_dict(),
        }


_NO_READ = Identifier(IdentifierKind.UNKNOWN, False, "no_data", None)
_ZONES: dict[str, ZoneInfo] = {}
# Enum members read through the class cost ~0.1 µs each; the decision reads them as constants.
_OPEN, _FULL, _BLOCKED = LaneState.OPEN, LaneState.FULL, LaneState.BLOCKED
_make = tuple.__new__  # builds a NamedTuple from values in field order, skipping its __new__


def identifier_of(parcel: Parcel) -> Identifier:
    """The parsed barcode of a parcel (cached: the manifest look-up key comes from it too)."""
    if parcel.no_read:
        return _NO_READ
    return parse_identifier(parcel.barcode, parcel.symbology)


def decide(
    parcel: Parcel,
    rules: RuleSet,
    manifest_entry: ManifestEntry | None,
    lane_states: Mapping[str, LaneState],
    now: datetime,
    *,
    default_country: str = "CN",
    timezone: str = "Asia/Hong_Kong",
    identifier: Identifier | None = None,
    clock_synchronised: bool | None = True,
    hold: Hold | None = None,
) -> Decision:
    """The decision for `parcel`. `identifier`, when given, must be `identifier_of(parcel)`:
    a caller that parsed the barcode to look the manifest up passes it to save parsing again.
    `clock_synchronised` False: `now` may be wrong, and time conditions take the rule set's
    safe branch (`RuleSet.unsynchronised_clock`). `hold`: central's hold that applies to the
    parcel now (the caller looked it up): no rule can route a held parcel, it goes to the rule
    set's hold lane (reason held).

    Written for speed (it runs once per parcel, budget 50 µs at p99): records are built from
    values in field order, and the lane-state view is shared while the states do not change.
    """
    if identifier is None:
        identifier = identifier_of(parcel)
    destination = resolve_destination(identifier, manifest_entry, default_country)
    country, postal_code, province, source = destination
    weight = parcel.weight_kg
    stable = parcel.weight_stable
    if weight is not None and not (math.isfinite(weight) and weight >= 0):
        weight, stable = None, False  # a value no scale can give: treat as no weight at all
    if manifest_entry is None:
        declared = service = order_id = None
        declarations: tuple = _UNDECLARED
    else:
        declared, service = manifest_entry.declared_weight_kg, manifest_entry.service
        order_id = manifest_entry.order_id
        declarations = _declarations(manifest_entry, rules)
    states = rules.complete_states(lane_states)
    zone = _ZONES.get(timezone) or _ZONES.setdefault(timezone, ZoneInfo(timezone))
    late = parcel.late
    # The rules look at exactly what the decision records, so a decision explains itself.
    values = (  # in DecisionInputs' field order
        parcel.symbology, parcel.no_read,
        identifier.kind, identifier.valid, identifier.problem,
        weight, stable and weight is not None, parcel.weight_status, declared,
        country, postal_code, province, service, source,
        states, now.astimezone(zone),
        destination.known, manifest_entry is not None, late,
        parcel.weight_pairing, parcel.weight_offset_ms, clock_synchronised,
        *_measured(parcel, weight, rules.volumetric_divisor_cm3_per_kg),
        order_id, *((None, None) if hold is None else (hold.hold_id, hold.reason)),
        *declarations,
    )
    if late:
        rule_id, lane_name, reason = LATE_RULE_ID, rules.exception_lane, "decision_late"
    elif hold is not None:  # checked in code, not by a rule: no rule set can route around it
        rule_id, lane_name, reason = HELD_RULE_ID, rules.hold_lane, "held"
    else:
        rule_id, lane_name, reason = rules.outcome(values)
    reasons = [reason] if reason else []
    if clock_synchronised is False and rule_id in rules.clock_dependent_rules:
        reasons.append("clock_unsynchronised")
    lane = _place(rules, lane_name, weight, states, reasons)
    if declarations[0] and lane.flies is not False:  # dangerous goods: never a flying lane
        lane = _grounded(rules, lane, states, reasons)
    return _make(Decision, (
        parcel.parcel_id, parcel.barcode, lane.name, lane.bin, rule_id,
        tuple(reasons) if len(reasons) < 2 else tuple(dict.fromkeys(reasons)),
        rules.version, now.astimezone(UTC), _make(DecisionInputs, values),
    ))


_UNDECLARED = (None,) * 6


def _declarations(entry: ManifestEntry, rules: RuleSet) -> tuple:
    """(dangerous goods, declared value, currency, customs mode, customs value, customs
    check) in DecisionInputs' order: what the manifest declares for air and customs."""
    value, currency, mode = entry.declared_value, entry.currency, entry.customs_mode
    converted, check = rules.customs.check(value, currency, mode) if value is not None \
        else (None, None)
    return (dangerous_goods_flags(entry.dangerous_goods), value, currency, mode, converted,
            check)


def _grounded(rules: RuleSet, lane: Lane, lane_states: Mapping[str, LaneState],
              reasons: list[str]) -> Lane:
    """A parcel with dangerous goods on a lane that flies (or may): the lane's ground lane
    when it names one and it is open, else the exception lane. The exception and hold lanes
    keep parcels in the warehouse (rules validation refuses them `flies = true`)."""
    if lane.name in (rules.exception_lane, rules.hold_lane):
        return lane
    reasons.append("air_restricted")
    ground = lane.ground_lane
    if ground is not None and lane_states.get(ground, _OPEN) == _OPEN:
        return rules.lanes[ground]
    return rules.lanes[rules.exception_lane]


def _measured(parcel: Parcel, weight: float | None, divisor: float) -> tuple:
    """(length, width, height, volume, chargeable weight, labels) in DecisionInputs' order.

    Chargeable weight = max(actual, volumetric), volumetric = volume / divisor (cm³ per kg);
    unknown when either is (an unmeasured parcel is not "zero cm³").
    """
    length, width, height, volume = (parcel.length_mm, parcel.width_mm, parcel.height_mm,
                                     parcel.volume_cm3)
    if volume is None and length is not None and width is not None and height is not None:
        volume = length * width * height / 1000
    chargeable = None
    if volume is not None and weight is not None and math.isfinite(volume) and volume >= 0:
        chargeable = max(weight, volume / divisor)
    return length, width, height, volume, chargeable, parcel.labels or None


def _place(
    rules: RuleSet,
    lane_name: str,
    weight: float | None,
    lane_states: Mapping[str, LaneState],
    reasons: list[str],
) -> Lane:
    """The lane that takes the parcel: the chosen one, else down its overflow chain.

    A lane's weight limit is checked only against a known weight (the default rules send a
    parcel without a stable weight to EXCEPTION before any route is chosen). The exception
    lane always takes the parcel, even when full or blocked: a parcel must go somewhere.
    """
    lanes = rules.lanes
    exception_name = rules.exception_lane
    if lane_states.get(lane_name) == _OPEN:  # the usual case, answered without the walk below
        lane = lanes[lane_name]
        limit = lane.weight_limit_kg
        if limit is None or weight is None or weight <= limit or lane_name == exception_name:
            return lane
    current: str | None = lane_name
    # Rules validation refuses overflow loops; the bound is a second guard, never reached.
    for _ in range(len(lanes)):
        if current is None or current == exception_name:
            break
        lane = lanes[current]
        state = lane_states.get(current, _OPEN)
        limit = lane.weight_limit_kg
        if limit is not None and weight is not None and weight > limit:
            reasons.append("over_route_weight_limit")
        elif state == _FULL:
            reasons.append("lane_full_overflow")
        elif state == _BLOCKED:
            reasons.append("lane_blocked_overflow")
        else:
            return lane
        current = lane.overflow
    if current != lane_name:  # the chosen lane and its whole overflow chain are unavailable
        reasons.append("lane_unavailable")
    exception = lanes[exception_name]
    if lane_states.get(exception_name, _OPEN) != _OPEN:
        reasons.append("lane_unavailable")
    return exception
