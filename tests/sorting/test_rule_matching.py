"""The compiled rule matcher against the condition vocabulary read literally.

Rules are compiled into one generated function for speed; this checks it against a plain
reading of each condition (edge_agent/defaults/rules.toml) on arbitrary rules and inputs.
"""

import pickle
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.sorting.conditions import (
    Conditions,
    compile_rules,
    portable_match,
    rebuilt_match,
)
from edge_agent.sorting.inputs import DecisionInputs
from edge_agent.sorting.lanes import LaneState
from edge_agent.sorting.rules import default_rules

LANES = ["A", "B", "C"]
STATES = list(LaneState)
ZONES = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-3, minutes=-30))]
strings = st.sampled_from([None, "s10", "gs1", "no_data", "CN", "HK", "US", "Shanghai",
                           "Jiangsu", "express", "ok", "overload"])


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"


def _some(values: list) -> st.SearchStrategy:
    return st.lists(st.sampled_from(values), max_size=3)


# Each condition's possible values; a rule gets a few of them, so that rules do match sometimes.
WEIGHT_BOUNDS = st.sampled_from([0.0, 1.0, 10.0, 30.0, 50.0])
weights = st.one_of(st.none(), WEIGHT_BOUNDS, st.sampled_from(
    [0.2, 0.5, 1.1, 1.25, 9.99, 10.01, 10.5, 11.5, 45.0]), st.floats(0, 100))
# Times of day on and either side of the cutoffs the rules may name.
CUTOFFS = [0, 599, 600, 1199, 1200, 1439]
CONDITION_VALUES = {
    "no_read": st.booleans(),
    "identifier_kind": _some(["s10", "gs1", "carrier", "unknown"]),
    "identifier_valid": st.booleans(),
    "identifier_problem": _some(["no_data", "invalid_check_digit", "malformed_identifier"]),
    "destination_known": st.booleans(),
    "country": _some(["CN", "HK", "US"]),
    "country_not": _some(["CN", "HK"]),
    "province": _some(["Shanghai", "Jiangsu", "Guangdong"]),
    "postal_prefix": _some(["2", "20", "2000", "31", ""]),
    "service": _some(["express", "standard"]),
    "weight_stable": st.booleans(),
    "weight_status": _some(["ok", "overload"]),
    "weight_pairing": _some(["paired", "ambiguous", "none"]),
    "dims_known": st.booleans(),
    "longest_side_over_mm": st.sampled_from([0.0, 500.0, 1050.0]),
    "length_plus_girth_over_mm": st.sampled_from([1000.0, 3000.0]),
    "chargeable_weight_over_kg": WEIGHT_BOUNDS,
    "weight_min_kg": WEIGHT_BOUNDS,
    "weight_max_kg": WEIGHT_BOUNDS,
    "weight_over_kg": WEIGHT_BOUNDS,
    "weight_off_declared": st.fixed_dictionaries(
        {"min_kg": st.sampled_from([0.0, 0.2]), "min_fraction": st.sampled_from([0.0, 0.1])}),
    "time_before": st.one_of(st.sampled_from(CUTOFFS), st.integers(0, 1439)).map(_hhmm),
    "time_from": st.one_of(st.sampled_from(CUTOFFS), st.integers(0, 1439)).map(_hhmm),
    "lane_open": _some(LANES),
    "lane_state": st.dictionaries(st.sampled_from(LANES), st.sampled_from(STATES), max_size=2),
}


@st.composite
def conditions(draw: st.DrawFn, max_size: int = 3) -> Conditions:
    names = draw(st.lists(st.sampled_from(sorted(CONDITION_VALUES)), min_size=min(1, max_size),
                          max_size=max_size, unique=True))
    return Conditions(**{name: draw(CONDITION_VALUES[name]) for name in names})


facts = st.builds(
    DecisionInputs,
    symbology=st.none(), no_read=st.booleans(),
    identifier_kind=st.sampled_from(["s10", "gs1", "carrier", "unknown"]),
    identifier_valid=st.booleans(),
    identifier_problem=st.sampled_from([None, "no_data", "invalid_check_digit"]),
    weight_kg=weights, weight_stable=st.booleans(), weight_status=strings,
    declared_weight_kg=weights, country=strings, postal_code=st.sampled_from(
        [None, "", "200001", "2", "310000", "999"]),
    province=strings, service=strings, destination_source=st.sampled_from([None, "manifest"]),
    lane_states=st.dictionaries(st.sampled_from(LANES), st.sampled_from(STATES)),
    local_time=st.one_of(
        st.builds(lambda minute, zone: datetime(2026, 11, 20, minute // 60, minute % 60,
                                                59, tzinfo=zone),
                  st.sampled_from(CUTOFFS), st.sampled_from(ZONES)),
        st.datetimes(timezones=st.sampled_from(ZONES))),
    destination_known=st.booleans(), manifest_hit=st.booleans(), late=st.booleans(),
    weight_pairing=st.sampled_from([None, "paired", "ambiguous", "none"]),
    weight_offset_ms=st.none(), clock_synchronised=st.sampled_from([None, True, False]),
    length_mm=st.one_of(st.none(), st.sampled_from([100.0, 1050.0, 1200.0])),
    width_mm=st.one_of(st.none(), st.sampled_from([100.0, 500.0])),
    height_mm=st.one_of(st.none(), st.sampled_from([50.0, 400.0])),
    volume_cm3=st.none(), chargeable_weight_kg=st.one_of(st.none(), WEIGHT_BOUNDS, weights),
    labels=st.none(),
)


def _minutes(hhmm: str) -> int:
    return int(hhmm[:2]) * 60 + int(hhmm[3:])


def holds(c: Conditions, f: DecisionInputs) -> bool:
    """Every condition given holds: each one read as rules.toml documents it."""
    weight, minute = f.weight_kg, f.local_time.hour * 60 + f.local_time.minute
    sides = (f.length_mm, f.width_mm, f.height_mm)
    results = [
        c.no_read is None or f.no_read == c.no_read,
        c.identifier_valid is None or f.identifier_valid == c.identifier_valid,
        c.destination_known is None or f.destination_known == c.destination_known,
        c.weight_stable is None or f.weight_stable == c.weight_stable,
        c.identifier_kind is None or f.identifier_kind in c.identifier_kind,
        c.identifier_problem is None or f.identifier_problem in c.identifier_problem,
        c.country is None or f.country in c.country,
        c.country_not is None or f.country not in c.country_not,
        c.province is None or f.province in c.province,
        c.service is None or f.service in c.service,
        c.weight_status is None or f.weight_status in c.weight_status,
        c.postal_prefix is None or any((f.postal_code or "").startswith(prefix)
                                       for prefix in c.postal_prefix),
        c.weight_min_kg is None or (weight is not None and weight >= c.weight_min_kg),
        c.weight_max_kg is None or (weight is not None and weight <= c.weight_max_kg),
        c.weight_over_kg is None or (weight is not None and weight > c.weight_over_kg),
        c.weight_pairing is None or f.weight_pairing in c.weight_pairing,
        c.dims_known is None or c.dims_known == (None not in sides),
        c.longest_side_over_mm is None or (None not in sides
                                           and max(sides) > c.longest_side_over_mm),
        c.length_plus_girth_over_mm is None or (
            None not in sides
            and max(sides) + 2 * (sum(sides) - max(sides)) > c.length_plus_girth_over_mm),
        c.chargeable_weight_over_kg is None or (
            f.chargeable_weight_kg is not None
            and f.chargeable_weight_kg > c.chargeable_weight_over_kg),
        # An unsynchronised clock is never read: the default safe branch is "after the cutoff".
        c.time_before is None or (f.clock_synchronised is not False
                                  and minute < _minutes(c.time_before)),
        c.time_from is None or (f.clock_synchronised is False
                                or minute >= _minutes(c.time_from)),
        all(f.lane_states.get(lane, LaneState.OPEN) == LaneState.OPEN
            for lane in c.lane_open or ()),
        all(f.lane_states.get(lane, LaneState.OPEN) == state
            for lane, state in (c.lane_state or {}).items()),
    ]
    off = c.weight_off_declared
    if off is not None:
        declared = f.declared_weight_kg
        results.append(weight is not None and declared is not None and
                       abs(weight - declared) > max(off.min_kg, off.min_fraction * declared))
    return all(results)


@settings(max_examples=300)
@given(conditions(max_size=1), st.lists(facts, min_size=1, max_size=10))
def test_each_condition_compiles_to_its_documented_meaning(when, cases):
    match = compile_rules([("rule", when)])
    for f in cases:
        assert match(f) == ("rule" if holds(when, f) else None)


@settings(max_examples=300)
@given(st.lists(conditions(), max_size=6), st.lists(facts, min_size=1, max_size=5))
def test_compiled_rules_match_the_first_rule_whose_conditions_all_hold(rule_list, cases):
    match = compile_rules([(index, when) for index, when in enumerate(rule_list)])
    for f in cases:
        expected = next((i for i, when in enumerate(rule_list) if holds(when, f)), None)
        assert match(f) == expected


def test_a_lane_named_open_and_full_never_matches():
    match = compile_rules([("r", Conditions(lane_open=["A"], lane_state={"A": LaneState.FULL}))])
    assert match(_inputs({"A": LaneState.FULL})) is None
    assert match(_inputs({})) is None


def test_values_from_the_rules_file_are_constants_not_source_text():
    when = Conditions(service=["x') or True or ('"], postal_prefix=["1\") or True #"])
    match = compile_rules([("r", when)])
    assert match(_inputs({})) is None
    assert "True or" not in match.source


def _inputs(lane_states: dict) -> DecisionInputs:
    return DecisionInputs(None, False, "s10", True, None, 2.0, True, "ok", 2.0, "CN", "200001",
                          "Shanghai", "standard", "manifest", lane_states,
                          datetime(2026, 1, 1, 10, tzinfo=UTC), True, True, False,
                          "paired", -3.0, True, None, None, None, None, None, None)


@given(st.lists(conditions(), max_size=6), st.lists(facts, min_size=1, max_size=5))
def test_a_matcher_rebuilt_in_another_process_matches_as_the_compiled_one(rule_list, cases):
    # The command worker process compiles, the decision loop's process rebuilds: no compile.
    match = compile_rules([(index, when) for index, when in enumerate(rule_list)])
    rebuilt = rebuilt_match(*pickle.loads(pickle.dumps(portable_match(match))))
    assert rebuilt.source == match.source
    for case in cases:
        assert rebuilt(case) == match(case)


def test_a_pickled_rule_set_decides_as_the_original():
    rules = default_rules()
    copy = pickle.loads(pickle.dumps(rules))
    assert copy.model_dump() == rules.model_dump()
    assert copy.clock_dependent_rules == rules.clock_dependent_rules
    for case in (_inputs({}), _inputs({"ZHUHAI": LaneState.FULL})):
        assert copy.outcome(case) == rules.outcome(case)
