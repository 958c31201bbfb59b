"""Air and customs constraints: dangerous goods never take a flying lane (ground lane or
EXCEPTION, reason air_restricted), declared values over the limit of their customs mode and
currencies without a rate go to EXCEPTION; limits, rates and routes are data in the rules."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.sorting.constraints import DANGEROUS_GOODS
from edge_agent.sorting.decision import decide
from edge_agent.sorting.holds import Hold
from edge_agent.sorting.lanes import LaneState
from edge_agent.sorting.manifest import Manifest, ManifestEntry, ManifestError
from edge_agent.sorting.rules import RulesError, default_rules, parse_rules

from .helpers import EVENING, MORNING, parcel

RULES = default_rules()
S10 = "RB123456785GB"
SHANGHAI, GUANGZHOU = "200001", "510000"
FULL = LaneState.FULL


def row(postal=SHANGHAI, country="CN", dg=None, value=None, currency=None, mode=None,
        weight=2.0) -> ManifestEntry:
    return ManifestEntry(S10, country, postal, weight, None, None, dg, value, currency, mode)


def with_ground_lane(**zhuhai) -> object:
    """The default rules plus a ROAD lane (flies = false), ZHUHAI naming it as ground lane."""
    data = RULES.model_dump(mode="json", by_alias=True, exclude_none=True)
    lanes = {name: {k: v for k, v in lane.items() if k != "name"}
             for name, lane in data["lanes"].items()}
    lanes["ROAD"] = {"bin": 5, "flies": False}
    lanes["ZHUHAI"] |= {"ground_lane": "ROAD", **zhuhai}
    return parse_rules(data | {"lanes": lanes})


GROUND = with_ground_lane()

# (case id, rules, manifest row, lane states, time) -> (lane, rule, reasons)
CASES = [
    # -- dangerous goods: never a lane whose route flies
    ("lithium_to_zhuhai", RULES, row(dg="lithium_battery"), {}, MORNING,
     ("EXCEPTION", "zhuhai", ("air_restricted",))),
    ("liquid_to_shanghai", RULES, row(GUANGZHOU, dg="liquid"), {}, MORNING,
     ("EXCEPTION", "mainland_china", ("air_restricted",))),
    ("powder_after_cutoff", RULES, row(dg="powder"), {}, EVENING,
     ("EXCEPTION", "zhuhai_after_cutoff", ("after_cutoff", "air_restricted"))),
    ("other_export", RULES, row(None, country="US", dg="other"), {}, MORNING,
     ("EXCEPTION", "export", ("air_restricted",))),
    ("several_flags", RULES, row(dg="liquid;powder"), {}, MORNING,
     ("EXCEPTION", "zhuhai", ("air_restricted",))),
    ("declared_none_sorts", RULES, row(dg="none"), {}, MORNING, ("ZHUHAI", "zhuhai", ())),
    ("undeclared_sorts", RULES, row(), {}, MORNING, ("ZHUHAI", "zhuhai", ())),
    ("ground_lane_takes_it", GROUND, row(dg="lithium_battery"), {}, MORNING,
     ("ROAD", "zhuhai", ("air_restricted",))),
    ("ground_lane_full", GROUND, row(dg="lithium_battery"), {"ROAD": FULL}, MORNING,
     ("EXCEPTION", "zhuhai", ("air_restricted",))),
    ("overflow_onto_a_flying_lane", GROUND, row(dg="liquid"), {"ZHUHAI": FULL}, MORNING,
     ("EXCEPTION", "zhuhai", ("lane_full_overflow", "air_restricted"))),
    ("already_exception_no_extra_reason", RULES, row(dg="liquid", weight=9.0), {}, MORNING,
     ("EXCEPTION", "no_stable_weight", ("no_stable_weight",))),
    # -- customs value limits (into mainland China)
    ("personal_at_limit", RULES, row(value=800, currency="CNY", mode="personal_postal"), {},
     MORNING, ("ZHUHAI", "zhuhai", ())),
    ("personal_over_limit", RULES, row(value=800.01, currency="CNY", mode="personal_postal"),
     {}, MORNING, ("EXCEPTION", "customs_value_limit", ("customs_value_limit",))),
    ("personal_hkd_converted_over", RULES,
     row(value=850, currency="HKD", mode="personal_postal"), {}, MORNING,  # 807.50 CNY
     ("EXCEPTION", "customs_value_limit", ("customs_value_limit",))),
    ("personal_hkd_converted_within", RULES,
     row(value=840, currency="hkd", mode="personal_postal"), {}, MORNING,  # 798 CNY
     ("ZHUHAI", "zhuhai", ())),
    ("ecommerce_within", RULES, row(value=4999, currency="CNY", mode="cross_border_ecommerce"),
     {}, MORNING, ("ZHUHAI", "zhuhai", ())),
    ("ecommerce_over", RULES, row(value=700, currency="USD", mode="cross_border_ecommerce"),
     {}, MORNING, ("EXCEPTION", "customs_value_limit", ("customs_value_limit",))),  # 5,180
    ("unknown_currency", RULES, row(value=5, currency="XAU", mode="personal_postal"), {},
     MORNING, ("EXCEPTION", "unknown_currency", ("unknown_currency",))),
    ("value_without_currency", RULES, row(value=5, mode="personal_postal"), {}, MORNING,
     ("EXCEPTION", "unknown_currency", ("unknown_currency",))),
    ("value_without_mode_not_guessed", RULES, row(value=90_000, currency="CNY"), {}, MORNING,
     ("ZHUHAI", "zhuhai", ())),
    ("export_not_checked", RULES,
     row(None, country="JP", value=9_000, currency="XAU", mode="personal_postal"), {}, MORNING,
     ("EXPORT", "export", ())),
]


@pytest.mark.parametrize(("rules", "entry", "states", "now", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_air_and_customs_constraints(rules, entry, states, now, expected):
    p = parcel(weight=None, stable=False, status=None) if entry.declared_weight_kg == 9.0 \
        else parcel()
    decision = decide(p, rules, entry, states, now)
    assert (decision.lane, decision.rule, decision.reasons) == expected


def test_the_event_carries_the_declarations_and_leaves_out_the_unknown():
    declared = decide(parcel(), RULES, row(dg="powder;liquid", value=850, currency="HKD",
                                           mode="personal_postal"), {}, MORNING)
    inputs = declared.to_dict()["inputs"]
    assert inputs["dangerous_goods"] == ["liquid", "powder"]
    assert (inputs["declared_value"], inputs["currency"], inputs["customs_mode"]) == (
        850.0, "HKD", "personal_postal")
    assert (inputs["customs_value"], inputs["customs_check"]) == (807.5, "over_limit")
    undeclared = decide(parcel(), RULES, row(), {}, MORNING).to_dict()["inputs"]
    assert not {"dangerous_goods", "declared_value", "currency", "customs_mode",
                "customs_value", "customs_check"} & set(undeclared)  # unknown: absent, not 0


def test_limits_and_rates_come_from_the_rules_file():
    data = RULES.model_dump(mode="json", by_alias=True, exclude_none=True)
    stricter = parse_rules(data | {"customs": {"personal_postal": 100, "rates": {"EUR": 8.0}}})
    entry = row(value=20, currency="EUR", mode="personal_postal")  # 160 CNY
    assert decide(parcel(), stricter, entry, {}, MORNING).reasons == ("customs_value_limit",)
    assert decide(parcel(), RULES, entry, {}, MORNING).reasons == ("unknown_currency",)


def test_a_held_parcel_with_dangerous_goods_goes_to_the_hold_lane_only():
    hold = Hold("H1", S10, None, "inspection", MORNING.timestamp() + 60, 0.0)
    decision = decide(parcel(), RULES, row(dg="liquid"), {}, MORNING, hold=hold)
    assert (decision.lane, decision.reasons) == ("EXCEPTION", ("held",))


FLAGS = st.lists(st.sampled_from(DANGEROUS_GOODS), min_size=1, max_size=4, unique=True)
POSTAL = st.sampled_from([SHANGHAI, "310000", GUANGZHOU, "100000", "990000"])
STATES = st.dictionaries(st.sampled_from(["ZHUHAI", "SHANGHAI", "EXPORT", "EXCEPTION", "ROAD"]),
                         st.sampled_from(list(LaneState)), max_size=5)


@given(flags=FLAGS, postal=POSTAL, country=st.sampled_from(["CN", "US", "HK"]),
       weight=st.floats(0.1, 60), states=STATES, evening=st.booleans(),
       rules=st.sampled_from([RULES, GROUND, with_ground_lane(flies=False)]))
def test_no_parcel_with_a_dangerous_goods_flag_ever_gets_a_flying_lane(
        flags, postal, country, weight, states, evening, rules):
    entry = row(postal if country == "CN" else None, country=country, dg=";".join(flags),
                weight=weight)
    decision = decide(parcel(weight=weight), rules, entry, states, EVENING if evening else MORNING)
    lane = rules.lanes[decision.lane]
    assert lane.flies is False or decision.lane == rules.exception_lane, decision


@pytest.mark.parametrize(("change", "problem"), [
    ({"lanes": {"ZHUHAI": {"ground_lane": "NOWHERE"}}}, "lanes.ZHUHAI.ground_lane: unknown lane"),
    ({"lanes": {"ZHUHAI": {"ground_lane": "SHANGHAI"}}},
     "lanes.ZHUHAI.ground_lane: lane SHANGHAI must say flies = false"),
    ({"lanes": {"EXCEPTION": {"flies": True}}}, "lanes.EXCEPTION.flies:"),
    ({"customs": {"rates": {"HKD": -1}}}, "customs.rates:"),
    ({"customs": {"rates": {"hkd": 0.9}}}, "customs.rates:"),
    ({"customs": {"rates": {"CNY": 1.1}}}, "customs:"),
    ({"customs": {"personal_postal": 0}}, "customs.personal_postal:"),
    ({"customs": {"currency": "yuan"}}, "customs.currency:"),
    ({"customs": {"limit": 5}}, "customs.limit: unknown setting"),
], ids=["unknown_ground_lane", "ground_lane_flies", "exception_flies", "negative_rate",
        "lower_case_code", "own_currency_not_one", "zero_limit", "bad_currency", "typo"])
def test_bad_air_and_customs_rules_are_refused_naming_the_place(change, problem):
    data = RULES.model_dump(mode="json", by_alias=True, exclude_none=True)
    lanes = {name: {k: v for k, v in lane.items() if k != "name"}
             for name, lane in data["lanes"].items()}
    for name, fields in change.get("lanes", {}).items():
        lanes[name] |= fields
    with pytest.raises(RulesError) as refused:
        parse_rules(data | {"lanes": lanes} | {k: v for k, v in change.items() if k != "lanes"})
    assert any(p.startswith(problem) for p in refused.value.problems), refused.value.problems


HEADER = "barcode,country,dangerous_goods,declared_value,currency,customs_mode\n"


@pytest.mark.parametrize(("line", "problem"), [
    ("A1,CN,batteries,,,", "line 2: dangerous_goods: 'batteries' is not a flag"),
    ("A1,CN,none;liquid,,,", "line 2: dangerous_goods: 'none' is not a flag"),
    ("A1,CN,,lots,CNY,personal_postal", "line 2: declared_value: 'lots' is not a number"),
    ("A1,CN,,-5,CNY,personal_postal", "line 2: declared_value: '-5' must be 0 to"),
    ("A1,CN,,nan,CNY,personal_postal", "line 2: declared_value:"),
    ("A1,CN,,5,RMB1,personal_postal", "line 2: currency: 'RMB1' must be an ISO 4217 code"),
    ("A1,CN,,5,CNY,postal", "line 2: customs_mode: 'postal' must be one of"),
], ids=["unknown_flag", "none_and_a_flag", "value_not_a_number", "negative_value", "nan",
        "bad_currency", "unknown_mode"])
def test_bad_air_and_customs_columns_are_refused_naming_the_line(tmp_path: Path, line, problem):
    with Manifest.open(tmp_path) as manifest:
        good = tmp_path / "good.csv"
        good.write_text(HEADER + "A1,CN,liquid,100,HKD,personal_postal\n")
        manifest.import_file(good)
        bad = tmp_path / "bad.csv"
        bad.write_text(HEADER + line + "\n")
        with pytest.raises(ManifestError) as refused:
            manifest.import_file(bad)
        assert any(p.startswith(problem) for p in refused.value.problems), refused.value
        kept = manifest.get("A1")  # the last good import stands
        assert (kept.dangerous_goods, kept.declared_value, kept.currency) == (
            "liquid", 100.0, "HKD")


def test_new_columns_import_from_csv_and_json_lines_normalised(tmp_path: Path):
    with Manifest.open(tmp_path) as manifest:
        csv_file = tmp_path / "m.csv"
        csv_file.write_text(HEADER + "A1,CN,Powder|liquid,12.5,hkd,cross_border_ecommerce\n"
                            "A2,CN,none,,,\n")
        manifest.import_file(csv_file)
        assert tuple(manifest.get("A1"))[6:] == ("liquid;powder", 12.5, "HKD",
                                                 "cross_border_ecommerce")
        assert manifest.get("A2").dangerous_goods == "none"
        jsonl = tmp_path / "m.jsonl"
        jsonl.write_text('{"barcode": "A3", "country": "CN", "dangerous_goods": '
                         '["lithium_battery"], "declared_value": 3, "currency": "USD"}\n')
        manifest.import_file(jsonl)
        assert tuple(manifest.get("A3"))[6:] == ("lithium_battery", 3.0, "USD", None)


def test_both_import_paths_store_the_same_declarations(tmp_path: Path):
    """A clean row takes the fast path (one regular expression), a messy one check_fields:
    both must store the same values."""
    with Manifest.open(tmp_path) as manifest:
        path = tmp_path / "m.csv"
        path.write_text(HEADER + "A1,CN,liquid,12.50,HKD,personal_postal\n"
                        "A2,CN, liquid ,12.5,hkd,personal_postal\n"
                        "A3,CN,none,0,CNY,cross_border_ecommerce\n"
                        "A4,CN,None,0.0,cny,cross_border_ecommerce\n")
        manifest.import_file(path)
        assert tuple(manifest.get("A1"))[1:] == tuple(manifest.get("A2"))[1:]
        assert tuple(manifest.get("A3"))[1:] == tuple(manifest.get("A4"))[1:]
        assert tuple(manifest.get("A3"))[6:] == ("none", 0.0, "CNY", "cross_border_ecommerce")
