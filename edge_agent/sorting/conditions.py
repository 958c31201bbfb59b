"""Rule conditions: what a rule may test, validated, and compiled once into one fast function.

A rule's conditions look at the decision's recorded inputs (edge_agent.sorting.inputs), so what
a rule matched on is exactly what the decision records. The vocabulary is documented in
edge_agent/defaults/rules.toml.
"""

from __future__ import annotations

import marshal
import types
from collections.abc import Callable, Sequence
from typing import Any, Literal, TypeVar

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
    weight_pairing: list[str] | None = None
    weight_min_kg: float | None = Field(default=None, ge=0)
    weight_max_kg: float | None = Field(default=None, ge=0)
    weight_over_kg: float | None = Field(default=None, ge=0)
    weight_off_declared: DeclaredTolerance | None = None
    dims_known: bool | None = None
    longest_side_over_mm: float | None = Field(default=None, ge=0)
    length_plus_girth_over_mm: float | None = Field(default=None, ge=0)
    chargeable_weight_over_kg: float | None = Field(default=None, ge=0)
    dangerous_goods: list[Literal["lithium_battery", "liquid", "powder", "other"]] | None = None
    dangerous_goods_known: bool | None = None
    customs_mode: list[Literal["personal_postal", "cross_border_ecommerce"]] | None = None
    customs_check: list[Literal["within_limit", "over_limit", "unknown_currency"]] | None = None
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
_DIMS_KNOWN = "(length_mm is not None and width_mm is not None and height_mm is not None)"


def _size_tests(c: Conditions, constant: Callable[[object], str]) -> list[str]:
    """Size and chargeable-weight conditions; like weight ones, they never match the unknown.
    Length plus girth (postal limits) is the longest side plus twice the other two."""
    tests = []
    if c.dims_known is not None:
        tests.append(f"{_DIMS_KNOWN} == {constant(c.dims_known)}")
    if c.longest_side_over_mm is not None:
        tests.append(f"{_DIMS_KNOWN} and max(length_mm, width_mm, height_mm) > "
                     f"{constant(c.longest_side_over_mm)}")
    if c.length_plus_girth_over_mm is not None:
        tests.append(f"{_DIMS_KNOWN} and (max(length_mm, width_mm, height_mm) + 2 * (length_mm "
                     f"+ width_mm + height_mm - max(length_mm, width_mm, height_mm))) > "
                     f"{constant(c.length_plus_girth_over_mm)}")
    if c.chargeable_weight_over_kg is not None:
        tests.append(f"chargeable_weight_kg is not None and chargeable_weight_kg > "
                     f"{constant(c.chargeable_weight_over_kg)}")
    return tests
Result = TypeVar("Result")

# The boolean conditions and the set-membership ones, each testing the input of the same name.
_FLAGS = ("no_read", "identifier_valid", "destination_known", "weight_stable")
_MEMBERS = ("identifier_kind", "identifier_problem", "country", "province", "service",
            "weight_status", "weight_pairing", "customs_mode", "customs_check")


def compile_rules(
    rules: Sequence[tuple[Result, Conditions]], otherwise: Result | None = None,
    unsynchronised_clock: str = "after_cutoff",
) -> Callable[[Facts], Result | None]:
    """One function testing every rule's conditions in order: the result of the first rule
    whose conditions all hold, else `otherwise`. Facts may also be a plain tuple in
    DecisionInputs' field order (unpacked a little faster than the NamedTuple).

    Matching runs on every decision, so the rules become the source of one plain function (a
    chain of `if` tests on local variables, ~1 µs for the default rules instead of ~4 µs calling
    a predicate per condition). Only generated names go into the source: every value from the
    rules file is bound as a constant (`_k0`, `_k1`...), never spliced in as text.

    While the clock is unsynchronised (`clock_synchronised` False) the local time may be hours
    off, so no time condition reads it: `unsynchronised_clock` "after_cutoff" makes every
    `time_from` hold and every `time_before` fail (as after the cutoff), "before_cutoff" the
    reverse.
    """
    after = unsynchronised_clock == "after_cutoff"
    constants: dict[str, object] = {"OPEN": LaneState.OPEN}

    def constant(value: object) -> str:
        name = f"_k{len(constants)}"
        constants[name] = value
        return name

    lines = ["def first_match(facts):", f"    {', '.join(Facts._fields)}, = facts"]
    for result, when in rules:
        tests = " and ".join(f"({test})" for test in _tests(when, constant, after)) or "True"
        lines += [f"    if {tests}:", f"        return {constant(result)}"]
    lines.append(f"    return {constant(otherwise)}")
    source = "\n".join(lines)
    exec(compile(source, "<compiled rules>", "exec"), constants)
    first_match = constants["first_match"]
    first_match.source = source  # type: ignore[attr-defined]  # for whoever debugs a rule set
    return first_match  # type: ignore[return-value]


def portable_match(first_match: Callable) -> tuple[bytes, dict[str, Any], str]:
    """A compiled matching function as data another process of the same interpreter can
    rebuild without compiling again (`rebuilt_match`): its code object in marshal's format,
    its constants and its source. Compiling 500 rules takes ~15 ms in one call that holds the
    interpreter; rebuilding takes microseconds."""
    constants = {name: value for name, value in first_match.__globals__.items()
                 if name.startswith("_k") or name == "OPEN"}
    return (marshal.dumps(first_match.__code__), constants,
            getattr(first_match, "source", ""))


def rebuilt_match(code: bytes, constants: dict[str, Any], source: str) -> Callable:
    """The function `portable_match` described."""
    namespace = dict(constants)
    first_match = types.FunctionType(marshal.loads(code), namespace, "first_match")
    namespace["first_match"] = first_match
    first_match.source = source  # type: ignore[attr-defined]
    return first_match


def _tests(c: Conditions, constant: Callable[[object], str], after: bool) -> list[str]:
    """Each condition given as a Python expression over the inputs' names (cheap flags first).

    A weight condition never matches an unknown weight; lanes missing from the states are open.
    """
    tests = [f"{flag} == {constant(getattr(c, flag))}"
             for flag in _FLAGS if getattr(c, flag) is not None]
    tests += [f"{name} in {constant(frozenset(getattr(c, name)))}"
              for name in _MEMBERS if getattr(c, name) is not None]
    if c.country_not is not None:
        tests.append(f"country not in {constant(frozenset(c.country_not))}")
    if c.postal_prefix is not None:
        tests.append(f"(postal_code or '').startswith({constant(tuple(c.postal_prefix))})")
    for bound, operator in ((c.weight_min_kg, ">="), (c.weight_max_kg, "<="),
                            (c.weight_over_kg, ">")):
        if bound is not None:
            tests.append(f"weight_kg is not None and weight_kg {operator} {constant(bound)}")
    if c.weight_off_declared is not None:
        low = constant(c.weight_off_declared.min_kg)
        fraction = constant(c.weight_off_declared.min_fraction)
        tests.append("weight_kg is not None and declared_weight_kg is not None and "
                     f"abs(weight_kg - declared_weight_kg) > max({low}, {fraction} * "
                     "declared_weight_kg)")
    tests += _size_tests(c, constant)
    if c.dangerous_goods_known is not None:
        tests.append(f"(dangerous_goods is not None) == {constant(c.dangerous_goods_known)}")
    if c.dangerous_goods is not None:  # any of the flags named; never matches the undeclared
        tests.append(f"dangerous_goods is not None and not {constant(frozenset(c.dangerous_goods))}"
                     ".isdisjoint(dangerous_goods)")
    minute = "local_time.hour * 60 + local_time.minute"
    synced = "clock_synchronised is not False"  # None: an old event, recorded without it
    if c.time_before is not None:
        tests.append(f"{minute} < {constant(_minutes(c.time_before))} if {synced} "
                     f"else {not after}")
    if c.time_from is not None:
        tests.append(f"{minute} >= {constant(_minutes(c.time_from))} if {synced} else {after}")
    # Kept apart: a lane named in both must pass both (open and, say, full: never matches).
    wanted = [(lane, LaneState.OPEN) for lane in c.lane_open or ()]
    wanted += list((c.lane_state or {}).items())
    tests += [f"lane_states.get({constant(lane)}, OPEN) == {constant(state)}"
              for lane, state in wanted]
    return tests
