"""The rules file: lanes, ordered rules (first match wins), a default, a version string.

Rules are data, validated when loaded, with problems named by place (`rules[3].when.weight_max_kg:
...`, `lanes.ZHUHAI.overflow: ...`) so a bad file is refused whole and the old rules stay.
Each rule's conditions are compiled once into small predicates so matching costs microseconds.
The condition vocabulary is documented in edge_agent/defaults/rules.toml.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from operator import attrgetter
from pathlib import Path
from typing import Any

from pydantic import Field, PrivateAttr, ValidationError, field_validator, model_validator

from edge_agent.errors import EdgeAgentError
from edge_agent.sorting.destinations import CN_PROVINCES
from edge_agent.sorting.inputs import DecisionInputs
from edge_agent.sorting.lanes import Lane, LaneState
from edge_agent.validation import StrictModel, read_toml

# A stable reason code: lower-case words joined by underscores (consumers group by it).
REASON_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
LANE_NAME_PATTERN = r"^[A-Z][A-Z0-9_]{0,31}$"


class RulesError(EdgeAgentError):
    """A rules file or text is invalid; `problems` names each place and what is wrong."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


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


class Rule(StrictModel):
    id: str = Field(min_length=1, max_length=64)
    lane: str
    reason: str | None = Field(default=None, pattern=REASON_PATTERN)
    when: Conditions = Conditions()


class DefaultRule(StrictModel):
    lane: str
    reason: str | None = Field(default="no_rule_matched", pattern=REASON_PATTERN)


# A rule's condition looks at the decision's recorded inputs (see edge_agent.sorting.inputs).
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


def _compile(when: Conditions) -> tuple[Check, ...]:
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


class RuleSet(StrictModel):
    version: str = Field(min_length=1, max_length=64)
    # Where a parcel goes when nothing else can take it. It is never "unavailable": a parcel must
    # go somewhere, so even a blocked exception lane still receives it (reason lane_unavailable).
    exception_lane: str = "EXCEPTION"
    lanes: dict[str, Lane]
    rules: list[Rule]
    default: DefaultRule
    _compiled: tuple[tuple[Rule, tuple[Check, ...]], ...] = PrivateAttr(default=())
    _all_open: dict[str, LaneState] = PrivateAttr(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _lane_names(cls, data: Any) -> Any:
        # Lanes are keyed by name in the file; copy the key in so each Lane knows its name.
        if isinstance(data, dict) and isinstance(data.get("lanes"), dict):
            lanes = {
                name: {"name": name, **spec} if isinstance(spec, dict) else spec
                for name, spec in data["lanes"].items()
            }
            data = {**data, "lanes": lanes}
        return data

    def model_post_init(self, context: Any) -> None:
        self._compiled = tuple((rule, _compile(rule.when)) for rule in self.rules)
        self._all_open = dict.fromkeys(self.lanes, LaneState.OPEN)

    def complete_states(self, lane_states: Mapping[str, LaneState]) -> dict[str, LaneState]:
        """A copy of `lane_states` naming every lane of this rule set (open unless told)."""
        return {**self.__pydantic_private__["_all_open"], **lane_states}  # type: ignore[index]

    def first_match(self, facts: Facts) -> Rule | None:
        # Read the private dict directly: pydantic's attribute hook costs more than the match.
        compiled = self.__pydantic_private__["_compiled"]  # type: ignore[index]
        for rule, checks in compiled:
            for check in checks:
                if not check(facts):
                    break
            else:
                return rule
        return None


def _cross_check(rule_set: RuleSet) -> list[str]:
    """Problems pydantic cannot see: names that must refer to lanes, unique bins and ids."""
    problems = []
    lanes = rule_set.lanes
    for name, lane in lanes.items():
        if not re.fullmatch(LANE_NAME_PATTERN, name):
            problems.append(f"lanes.{name}: lane names are upper-case letters, digits and _")
        if lane.bin < 1:
            problems.append(f"lanes.{name}.bin: must be 1 or more")
        if lane.overflow is not None and lane.overflow not in lanes:
            problems.append(f"lanes.{name}.overflow: unknown lane {lane.overflow!r}")
    bins: dict[int, str] = {}
    for name, lane in lanes.items():
        if lane.bin in bins:
            problems.append(f"lanes.{name}.bin: bin {lane.bin} is already lane {bins[lane.bin]}")
        bins.setdefault(lane.bin, name)
    for name in lanes:
        seen, current = [name], lanes[name].overflow
        while current is not None and current in lanes:
            if current in seen:
                problems.append(f"lanes.{name}.overflow: overflow loop {' -> '.join(seen)}")
                break
            seen.append(current)
            current = lanes[current].overflow
    if rule_set.exception_lane not in lanes:
        problems.append(f"exception_lane: unknown lane {rule_set.exception_lane!r}")
    if rule_set.default.lane not in lanes:
        problems.append(f"default.lane: unknown lane {rule_set.default.lane!r}")
    ids: dict[str, int] = {}
    for index, rule in enumerate(rule_set.rules):
        where = f"rules[{index}]"
        if rule.id in ids:
            problems.append(f"{where}.id: {rule.id!r} is already rules[{ids[rule.id]}]")
        ids.setdefault(rule.id, index)
        if rule.lane not in lanes:
            problems.append(f"{where}.lane: unknown lane {rule.lane!r}")
        for field_name in ("lane_open", "lane_state"):
            for lane_name in getattr(rule.when, field_name) or ():
                if lane_name not in lanes:
                    problems.append(f"{where}.when.{field_name}: unknown lane {lane_name!r}")
    return problems


def _problems(exc: ValidationError) -> list[str]:
    """`rules[3].when.weight_max_kg: ...`: list positions in brackets, as people count them."""
    problems = []
    for error in exc.errors(include_url=False):
        location = ""
        for part in error["loc"]:
            location += f"[{part}]" if isinstance(part, int) else (f".{part}" if location else part)
        message = error["msg"]
        if error["type"] == "extra_forbidden":
            message = "unknown setting (a typo?)"
        problems.append(f"{location or '(top level)'}: {message}")
    return problems


def parse_rules(data: dict | str, source: str = "rules") -> RuleSet:
    """Validate rules from a dict or TOML text; raises RulesError listing every problem."""
    if isinstance(data, str):
        try:
            data = tomllib.loads(data)
        except tomllib.TOMLDecodeError as exc:
            raise RulesError(source, [f"not valid TOML: {exc}"]) from None
    if not isinstance(data, dict):
        raise RulesError(source, ["(top level): expected a table of settings"])
    try:
        rule_set = RuleSet.model_validate(data)
    except ValidationError as exc:
        raise RulesError(source, _problems(exc)) from None
    problems = _cross_check(rule_set)
    if problems:
        raise RulesError(source, problems)
    return rule_set


def load_rules(path: Path) -> RuleSet:
    try:
        data = read_toml(path)
    except ValueError as exc:
        raise RulesError(str(path), [str(exc)]) from None
    return parse_rules(data, str(path))


def default_rules() -> RuleSet:
    """The rule set shipped in the package (edge_agent/defaults/rules.toml)."""
    text = resources.files("edge_agent.defaults").joinpath("rules.toml").read_text("utf-8")
    return parse_rules(text, "edge_agent/defaults/rules.toml")
