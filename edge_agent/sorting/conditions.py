"""Rule conditions: what a rule may test, validated, and compiled once into fast predicates.

A rule's conditions look at the decision's recorded inputs (edge_agent.sorting.inputs), so what
a rule matched on is exactly what the decision records. The vocabulary is documented in
edge_agent/defaults/rules.toml.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from operator import attrgetter

from pydantic import Field, field_validator

from edge_agent.sorting.destinations import CN_PROVINCES
from edge_agent.sorting.inputs import DecisionInputs
from edge_agent.sorting.lanes import LaneState
from edge_agent.validation import StrictModel


def _minutes(text: str) -> int:
    hours, _, minutes = text.partition(":")
    if not (len(hours) == 2 and len(minutes) == 2 and hours.isdigit() and minutes.isdigit()):
        raise ValueError(f"time {text!r} must be HH:MM")
    value = int(hours) * 60 + int(minutes)
    if int(hours) > 23 or int(minutes) > 59:
        raise ValueError(f"time {text!r} is not a time of day")
    return value


class DeclaredTolerance(StrictModel):
    """Measured weight is off the declared one by more than max(min_kg, min_fraction * declared)."""

    min_kg: float = Field(ge=0)
    min_fraction: float = Field(ge=0, le=10)


class Conditions(StrictModel):
    """Every condition given must hold. A weight condition never matches an unknown weight."""

    no_read: bool | None = None
    identifier_kind: list[str] | None = None
    identifier_valid: bool | None = None
    identifier_problem: list[str] | None = None
    destination_known: bool | None = None
    country: list[str] | None = None
    country_not: list[str] | None = None
    province: list[str] | None = None
    postal_prefix: list[str] | None = None
    service: list[str] | None = None
    weight_stable: bool | None = None
    weight_status: list[str] | None = None
    weight_min_kg: float | None = Field(default=None, ge=0)
    weight_max_kg: float | None = Field(default=None, ge=0)
    weight_over_kg: float | None = Field(default=None, ge=0)
    weight_off_declared: DeclaredTolerance | None = None
    time_before: str | None = Field(default=None, description="HH:MM local time, exclusive")
    time_from: str | None = Field(default=None, description="HH:MM local time, inclusive")
    lane_open: list[str] | None = None
    lane_state: dict[str, LaneState] | None = None

    @field_validator("time_before", "time_from")
    @classmethod
    def _time_of_day(cls, value: str | None) -> str | None:
        if value is not None:
            _minutes(value)
        return value

    @field_validator("province")
    @classmethod
    def _known_provinces(cls, value: list[str] | None) -> list[str] | None:
        unknown = sorted(set(value or ()) - CN_PROVINCES)
        if unknown:
            raise ValueError(f"unknown province {unknown[0]!r} (known: {sorted(CN_PROVINCES)})")
        return value

    @field_validator("country", "country_not")
    @classmethod
    def _alpha2(cls, value: list[str] | None) -> list[str] | None:
        for code in value or ():
            if len(code) != 2 or not code.isascii() or not code.isupper():
                raise ValueError(f"country {code!r} must be ISO 3166 alpha-2, e.g. 'CN'")
        return value


Facts = DecisionInputs
Check = Callable[[Facts], bool]


def _equals(attribute: str, expected: object) -> Check:
    get = attrgetter(attribute)
    return lambda facts: get(facts) == expected


def _member(attribute: str, allowed: list[str]) -> Check:
    get, allowed_set = attrgetter(attribute), frozenset(allowed)
    return lambda facts: get(facts) in allowed_set


def _weight(test: Callable[[float], bool]) -> Check:
    return lambda facts: facts.weight_kg is not None and test(facts.weight_kg)


def _lanes_in(wanted: Mapping[str, LaneState]) -> Check:
    pairs = tuple(wanted.items())
    return lambda facts: all(facts.lane_states.get(lane, LaneState.OPEN) == state
                             for lane, state in pairs)


def compile_conditions(when: Conditions) -> tuple[Check, ...]:
    """One predicate per condition given, in a fixed order (cheap flags first)."""
    c = when
    checks: list[Check] = []
    for flag in ("no_read", "identifier_valid", "destination_known", "weight_stable"):
        if getattr(c, flag) is not None:
            checks.append(_equals(flag, getattr(c, flag)))
    for attribute in ("identifier_kind", "identifier_problem", "country", "province", "service",
                      "weight_status"):
        if getattr(c, attribute) is not None:
            checks.append(_member(attribute, getattr(c, attribute)))
    if c.country_not is not None:
        excluded = frozenset(c.country_not)
        checks.append(lambda facts: facts.country not in excluded)
    if c.postal_prefix is not None:
        prefixes = tuple(c.postal_prefix)
        checks.append(lambda facts: (facts.postal_code or "").startswith(prefixes))
    if c.weight_min_kg is not None:
        low = c.weight_min_kg
        checks.append(_weight(lambda kg: kg >= low))
    if c.weight_max_kg is not None:
        high = c.weight_max_kg
        checks.append(_weight(lambda kg: kg <= high))
    if c.weight_over_kg is not None:
        over = c.weight_over_kg
        checks.append(_weight(lambda kg: kg > over))
    if c.weight_off_declared is not None:
        tolerance = c.weight_off_declared
        checks.append(lambda facts: _off_declared(facts, tolerance))
    if c.time_before is not None:
        before = _minutes(c.time_before)
        checks.append(lambda facts: _minute_of_day(facts) < before)
    if c.time_from is not None:
        start = _minutes(c.time_from)
        checks.append(lambda facts: _minute_of_day(facts) >= start)
    if c.lane_open is not None:
        checks.append(_lanes_in(dict.fromkeys(c.lane_open, LaneState.OPEN)))
    if c.lane_state is not None:
        checks.append(_lanes_in(c.lane_state))
    return tuple(checks)


def _minute_of_day(facts: Facts) -> int:
    return facts.local_time.hour * 60 + facts.local_time.minute


def _off_declared(facts: Facts, tolerance: DeclaredTolerance) -> bool:
    measured, declared = facts.weight_kg, facts.declared_weight_kg
    if measured is None or declared is None:
        return False
    return abs(measured - declared) > max(tolerance.min_kg, tolerance.min_fraction * declared)
