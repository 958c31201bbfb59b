"""The rules file: lanes, ordered rules (first match wins), a default, a version string.

Rules are data, validated when loaded, with problems named by place (`rules[3].when.weight_max_kg:
...`, `lanes.ZHUHAI.overflow: ...`) so a bad file is refused whole and the old rules stay.
The rules are compiled once into one matching function, so matching costs about a microsecond.
The condition vocabulary is documented in edge_agent/defaults/rules.toml.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Callable, Mapping
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, model_validator

from edge_agent.errors import ProblemsError
from edge_agent.sorting.conditions import (
    Conditions,
    Facts,
    compile_rules,
    portable_match,
    rebuilt_match,
)
from edge_agent.sorting.constraints import CustomsLimits, air_problems
from edge_agent.sorting.lanes import Lane, LaneState
from edge_agent.validation import StrictModel, problems_from, read_toml

# A stable reason code: lower-case words joined by underscores (consumers group by it).
REASON_PATTERN = r"^[a-z][a-z0-9_]{0,47}$"
LANE_NAME_PATTERN = r"^[A-Z][A-Z0-9_]{0,31}$"
# Rules compile into one Python function, one test per condition: the cost of compiling and of
# matching grows with their number. The default set has 8; 500 leave room for any real site
# while keeping a compile (which holds the interpreter) to tens of milliseconds.
MAX_RULES = 500
# More lanes than any sorter's bins (generic-divert has 99).
MAX_LANES = 99


class RulesError(ProblemsError):
    """A rules file or text is invalid; `problems` names each place and what is wrong."""


# What a rule decides: (rule id, lane, reason or None).
Outcome = tuple[str, str, str | None]


class Rule(StrictModel):
    id: str = Field(min_length=1, max_length=64)
    lane: str
    reason: str | None = Field(default=None, pattern=REASON_PATTERN)
    when: Conditions = Conditions()


class DefaultRule(StrictModel):
    lane: str
    reason: str | None = Field(default="no_rule_matched", pattern=REASON_PATTERN)


class RuleSet(StrictModel):
    version: str = Field(min_length=1, max_length=64)
    # Where a parcel goes when nothing else can take it. It is never "unavailable": a parcel must
    # go somewhere, so even a blocked exception lane still receives it (reason lane_unavailable).
    exception_lane: str = "EXCEPTION"
    # Where a parcel central holds goes (reason held); None: the exception lane. No rule can
    # send a held parcel anywhere else.
    hold_lane_name: str | None = Field(default=None, alias="hold_lane")
    lanes: dict[str, Lane]
    rules: list[Rule]
    default: DefaultRule
    # While the wall clock is unsynchronised (a Pi boots with a stale time until NTP answers),
    # time conditions take this safe branch instead of reading the clock.
    unsynchronised_clock: Literal["after_cutoff", "before_cutoff"] = "after_cutoff"
    # Volumetric weight = volume / this (cm³ per kg): IATA's 6,000 for air cargo; express
    # couriers use 5,000, some parcel carriers 4,000.
    volumetric_divisor_cm3_per_kg: float = Field(default=6000.0, gt=0, le=1_000_000)
    # Several labels on one parcel, none known to the manifest: the kind that names it first.
    label_priority: list[Literal["s10", "gs1", "carrier", "unknown"]] = Field(
        default_factory=lambda: ["s10", "gs1", "carrier"], min_length=1)
    # A label the manifest knows beside one it does not: trust the known one (see
    # edge_agent/sorting/labels.py for the risk); by default such a parcel is multiple_labels.
    trust_known_label: bool = False
    # Customs value limits per customs mode, and the exchange rates into their currency.
    customs: CustomsLimits = Field(default_factory=CustomsLimits)
    _outcome: Callable[[Facts], Outcome] = PrivateAttr()
    _all_open: dict[str, LaneState] = PrivateAttr(default_factory=dict)
    _clock_rules: frozenset[str] = PrivateAttr(default=frozenset())
    # The last lane states asked about (a copy) and their completed read-only view: lane states
    # change rarely, so most decisions reuse the view instead of building one.
    _last_states: tuple[dict[str, LaneState], Mapping[str, LaneState]] | None = PrivateAttr(
        default=None)

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
        outcomes = [((rule.id, rule.lane, rule.reason), rule.when) for rule in self.rules]
        self._outcome = compile_rules(
            outcomes, otherwise=("default", self.default.lane, self.default.reason),
            unsynchronised_clock=self.unsynchronised_clock)
        self._all_open = dict.fromkeys(self.lanes, LaneState.OPEN)
        ids: list[str] = []
        for rule in self.rules:
            if ids or rule.when.time_before is not None or rule.when.time_from is not None:
                ids.append(rule.id)
        self._clock_rules = frozenset([*ids, "default"] if ids else [])

    def __getstate__(self) -> dict[Any, Any]:
        # Pickled to cross from the command worker's process to the decision loop's: the
        # compiled function travels as its code object (conditions.portable_match), so the
        # loop's process never compiles (~15 ms holding the interpreter for 500 rules).
        state = super().__getstate__()
        private = dict(state["__pydantic_private__"])
        private["_outcome"] = portable_match(private["_outcome"])
        private["_last_states"] = None
        return {**state, "__pydantic_private__": private}

    def __setstate__(self, state: dict[Any, Any]) -> None:
        private = dict(state["__pydantic_private__"])
        private["_outcome"] = rebuilt_match(*private["_outcome"])
        super().__setstate__({**state, "__pydantic_private__": private})

    @property
    def hold_lane(self) -> str:
        return self.hold_lane_name or self.exception_lane

    @property
    def clock_dependent_rules(self) -> frozenset[str]:
        """Rule ids (and "default") whose match may have depended on a time condition: the rule
        itself, or one before it, tests the time. Such a decision made with an unsynchronised
        clock says so (reason clock_unsynchronised)."""
        return self._clock_rules

    def complete_states(self, lane_states: Mapping[str, LaneState]) -> Mapping[str, LaneState]:
        """`lane_states` naming every lane of this rule set (open unless told), read-only.

        The view is shared by every decision made with the same states; a caller changing its
        mapping in place gets a new view (the states are compared, not only their identity).
        """
        # Read the private dict directly: pydantic's attribute hook costs more than the look-up.
        private = self.__pydantic_private__
        last = private["_last_states"]  # type: ignore[index]
        if last is not None and lane_states == last[0]:
            return last[1]
        given = dict(lane_states)
        view = MappingProxyType({**private["_all_open"], **given})  # type: ignore[index]
        private["_last_states"] = (given, view)  # type: ignore[index]  # one atomic store
        return view

    def outcome(self, facts: Facts) -> Outcome:
        """(rule id, lane, reason) of the first rule whose conditions all hold, else the
        default's ("default", its lane, its reason). Facts may be a plain tuple in
        DecisionInputs' field order."""
        return self.__pydantic_private__["_outcome"](facts)  # type: ignore[index]


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
    if rule_set.hold_lane not in lanes:
        problems.append(f"hold_lane: unknown lane {rule_set.hold_lane!r}")
    problems += air_problems(lanes, rule_set.exception_lane, rule_set.hold_lane)
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
    return problems_from(exc, list_positions=True)


def parse_rules(data: dict | str, source: str = "rules") -> RuleSet:
    """Validate rules from a dict or TOML text; raises RulesError listing every problem."""
    if isinstance(data, str):
        try:
            data = tomllib.loads(data)
        except tomllib.TOMLDecodeError as exc:
            raise RulesError(source, [f"not valid TOML: {exc}"]) from None
    if not isinstance(data, dict):
        raise RulesError(source, ["(top level): expected a table of settings"])
    # Counted before validating: validating them is the cost this bound is for.
    for key, limit in (("rules", MAX_RULES), ("lanes", MAX_LANES)):
        value = data.get(key)
        if isinstance(value, list | dict) and len(value) > limit:
            raise RulesError(source, [f"{key}: at most {limit} (got {len(value)})"])
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
