"""Decisions with the default rules: every rule, every exception reason, lane states, contract."""

import json
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.sorting.decision import REASONS, decide
from edge_agent.sorting.holds import Hold
from edge_agent.sorting.lanes import LaneState
from edge_agent.sorting.manifest import ManifestEntry
from edge_agent.sorting.rules import default_rules, parse_rules

from .helpers import EVENING, MORNING, gs1_to, parcel

RULES = default_rules()
SHANGHAI_POSTAL = "200001"
S10 = "RB123456785GB"
FULL, BLOCKED = LaneState.FULL, LaneState.BLOCKED


def entry(country="CN", postal=SHANGHAI_POSTAL, declared=2.0, service=None, barcode=S10):
    return ManifestEntry(barcode, country, postal, declared, service)


# (case id, parcel, manifest entry, lane states, time) -> (lane, bin, rule, reasons)
CASES = [
    ("zhuhai_shanghai", parcel(), entry(), {}, MORNING, ("ZHUHAI", 1, "zhuhai", ())),
    ("zhuhai_zhejiang", parcel(), entry(postal="310000"), {}, MORNING, ("ZHUHAI", 1, "zhuhai", ())),
    ("zhuhai_jiangsu", parcel(), entry(postal="215000"), {}, MORNING, ("ZHUHAI", 1, "zhuhai", ())),
    ("zhuhai_from_barcode", parcel(gs1_to("156", "210000"), 3.0), None, {}, MORNING,
     ("ZHUHAI", 1, "zhuhai", ())),
    ("after_cutoff", parcel(), entry(), {}, EVENING,
     ("SHANGHAI", 2, "zhuhai_after_cutoff", ("after_cutoff",))),
    ("over_route_limit", parcel(weight=31.0), entry(declared=31.0), {}, MORNING,
     ("SHANGHAI", 2, "zhuhai", ("over_route_weight_limit",))),
    ("at_route_limit", parcel(weight=30.0), entry(declared=30.0), {}, MORNING,
     ("ZHUHAI", 1, "zhuhai", ())),
    ("zhuhai_full", parcel(), entry(), {"ZHUHAI": FULL}, MORNING,
     ("SHANGHAI", 2, "zhuhai", ("lane_full_overflow",))),
    ("zhuhai_blocked", parcel(), entry(), {"ZHUHAI": BLOCKED}, MORNING,
     ("SHANGHAI", 2, "zhuhai", ("lane_blocked_overflow",))),
    ("zhuhai_and_overflow_full", parcel(), entry(), {"ZHUHAI": FULL, "SHANGHAI": FULL}, MORNING,
     ("EXCEPTION", 4, "zhuhai", ("lane_full_overflow", "lane_unavailable"))),
    ("other_mainland", parcel(), entry(postal="510000"), {}, MORNING,
     ("SHANGHAI", 2, "mainland_china", ())),
    ("other_mainland_evening", parcel(), entry(postal="100000"), {}, EVENING,
     ("SHANGHAI", 2, "mainland_china", ())),
    ("shanghai_full", parcel(), entry(postal="510000"), {"SHANGHAI": FULL}, MORNING,
     ("EXCEPTION", 4, "mainland_china", ("lane_full_overflow", "lane_unavailable"))),
    ("export_us", parcel(), entry(country="US", postal="10001"), {}, MORNING,
     ("EXPORT", 3, "export", ())),
    ("export_macao_from_barcode", parcel(gs1_to("446", "999078"), 1.0), None, {}, MORNING,
     ("EXPORT", 3, "export", ())),
    ("export_blocked", parcel(), entry(country="JP", postal="1000001"), {"EXPORT": BLOCKED},
     MORNING, ("EXCEPTION", 4, "export", ("lane_blocked_overflow", "lane_unavailable"))),
    ("hong_kong", parcel(), entry(country="HK", postal=None), {}, MORNING,
     ("EXCEPTION", 4, "local_destination", ("local_destination",))),
    ("no_read", parcel(None, no_read=True), None, {}, MORNING,
     ("EXCEPTION", 4, "no_read", ("no_read",))),
    ("bad_s10", parcel("RB123456786US"), entry(barcode="RB123456786US"), {}, MORNING,
     ("EXCEPTION", 4, "invalid_check_digit", ("invalid_check_digit",))),
    ("bad_sscc", parcel("]C1003761303211091034214211562000001"), None, {}, MORNING,
     ("EXCEPTION", 4, "invalid_check_digit", ("invalid_check_digit",))),
    ("malformed", parcel("]C199123"), None, {}, MORNING,
     ("EXCEPTION", 4, "invalid_identifier", ("invalid_identifier",))),
    ("not_in_manifest", parcel(), None, {}, MORNING,
     ("EXCEPTION", 4, "unknown_destination", ("unknown_destination",))),
    ("unknown_cn_postal", parcel(), entry(postal="990000"), {}, MORNING,
     ("EXCEPTION", 4, "unknown_destination", ("unknown_destination",))),
    ("unknown_numeric_country", parcel(gs1_to("999", "12345")), None, {}, MORNING,
     ("EXCEPTION", 4, "unknown_destination", ("unknown_destination",))),
    ("no_weight", parcel(weight=None, stable=False, status=None), entry(), {}, MORNING,
     ("EXCEPTION", 4, "no_stable_weight", ("no_stable_weight",))),
    ("unstable_weight", parcel(stable=False), entry(), {}, MORNING,
     ("EXCEPTION", 4, "no_stable_weight", ("no_stable_weight",))),
    ("weight_ambiguous", parcel(weight=None, stable=False, status=None, pairing="ambiguous"),
     entry(), {}, MORNING, ("EXCEPTION", 4, "weight_ambiguous", ("weight_ambiguous",))),
    ("scale_overload", parcel(weight=None, stable=False, status="overload"), entry(), {},
     MORNING, ("EXCEPTION", 4, "scale_overload", ("overweight",))),
    ("overweight", parcel(weight=50.5), entry(declared=50.5), {}, MORNING,
     ("EXCEPTION", 4, "overweight", ("overweight",))),
    ("mismatch_absolute", parcel(weight=1.25), entry(declared=1.0), {}, MORNING,
     ("EXCEPTION", 4, "weight_mismatch", ("weight_mismatch",))),
    ("within_absolute", parcel(weight=1.19), entry(declared=1.0), {}, MORNING,
     ("ZHUHAI", 1, "zhuhai", ())),
    ("mismatch_relative", parcel(weight=11.1), entry(declared=10.0), {}, MORNING,
     ("EXCEPTION", 4, "weight_mismatch", ("weight_mismatch",))),
    ("within_relative", parcel(weight=10.9), entry(declared=10.0), {}, MORNING,
     ("ZHUHAI", 1, "zhuhai", ())),
    ("late", parcel(late=True), entry(), {}, MORNING,
     ("EXCEPTION", 4, "decision_late", ("decision_late",))),
    ("customs_value_limit", parcel(), ManifestEntry(S10, "CN", SHANGHAI_POSTAL, 2.0, None, None,
                                                    None, 900.0, "CNY", "personal_postal"),
     {}, MORNING, ("EXCEPTION", 4, "customs_value_limit", ("customs_value_limit",))),
    ("unknown_currency", parcel(), ManifestEntry(S10, "CN", SHANGHAI_POSTAL, 2.0, None, None,
                                                 None, 10.0, "XAU", "personal_postal"),
     {}, MORNING, ("EXCEPTION", 4, "unknown_currency", ("unknown_currency",))),
    ("air_restricted", parcel(), ManifestEntry(S10, "CN", SHANGHAI_POSTAL, 2.0, None, None,
                                               "lithium_battery"),
     {}, MORNING, ("EXCEPTION", 4, "zhuhai", ("air_restricted",))),
    ("exception_blocked_still_exception", parcel(None, no_read=True), None,
     {"EXCEPTION": BLOCKED}, MORNING,
     ("EXCEPTION", 4, "no_read", ("no_read", "lane_unavailable"))),
]


@pytest.mark.parametrize(("parcel_in", "manifest_entry", "states", "now", "expected"),
                         [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_default_rules(parcel_in, manifest_entry, states, now, expected):
    decision = decide(parcel_in, RULES, manifest_entry, states, now)
    assert (decision.lane, decision.bin, decision.rule, decision.reasons) == expected


# Rules and reasons whose cases need more than decide()'s arguments: tests of their own (below,
# and in test_labels.py for multiple_labels, which the label choice produces).
OWN_TESTS = {"clock_unsynchronised", "multiple_labels", "held"}  # held: test_holds.py


def test_every_default_rule_and_reason_is_exercised():
    rule_ids = {c[-1][2] for c in CASES} | OWN_TESTS
    assert {rule.id for rule in RULES.rules} <= rule_ids
    reasons = {r for c in CASES for r in c[-1][3]}
    assert reasons == set(REASONS) - {"no_rule_matched"} - OWN_TESTS


class TestDimensions:
    def test_chargeable_weight_is_the_larger_of_actual_and_volumetric(self):
        light_but_big = parcel(weight=2.0)
        light_but_big = light_but_big.__class__(**{
            **{f: getattr(light_but_big, f) for f in light_but_big.__slots__},
            "length_mm": 600.0, "width_mm": 400.0, "height_mm": 300.0})
        inputs = decide(light_but_big, RULES, entry(), {}, MORNING).inputs
        assert inputs.volume_cm3 == 72_000.0
        assert inputs.chargeable_weight_kg == 12.0  # 72,000 cm³ / 6,000 > 2 kg
        heavy_and_small = decide(parcel(weight=20.0), RULES, entry(declared=20.0), {}, MORNING)
        assert heavy_and_small.inputs.chargeable_weight_kg is None  # not measured: unknown

    def test_rules_can_limit_size_and_chargeable_weight(self):
        rules = parse_rules(default_rules_text().replace(
            '[[rules]]\nid = "zhuhai_after_cutoff"',
            '[[rules]]\nid = "too_big_for_air"\nlane = "EXCEPTION"\nreason = "oversize"\n'
            'when = { longest_side_over_mm = 1050, chargeable_weight_over_kg = 30 }\n\n'
            '[[rules]]\nid = "zhuhai_after_cutoff"'))
        base = parcel(weight=5.0)
        fields = {f: getattr(base, f) for f in base.__slots__}
        big = base.__class__(**{**fields, "length_mm": 1200.0, "width_mm": 500.0,
                                "height_mm": 400.0})  # 240,000 cm³: 40 kg chargeable
        small = base.__class__(**{**fields, "length_mm": 300.0, "width_mm": 200.0,
                                  "height_mm": 100.0})
        assert decide(big, rules, entry(declared=5.0), {}, MORNING).rule == "too_big_for_air"
        assert decide(small, rules, entry(declared=5.0), {}, MORNING).rule == "zhuhai"
        assert decide(base, rules, entry(declared=5.0), {}, MORNING).rule == "zhuhai"


class TestUnsynchronisedClock:
    """A Pi boots with a stale clock until NTP answers: time conditions take the safe branch."""

    def test_a_morning_parcel_goes_as_after_the_cutoff_and_says_why(self):
        decision = decide(parcel(), RULES, entry(), {}, MORNING, clock_synchronised=False)
        assert (decision.lane, decision.rule) == ("SHANGHAI", "zhuhai_after_cutoff")
        assert decision.reasons == ("after_cutoff", "clock_unsynchronised")
        assert decision.inputs.clock_synchronised is False

    def test_rules_before_any_time_condition_are_not_marked(self):
        decision = decide(parcel(None, no_read=True), RULES, None, {}, MORNING,
                          clock_synchronised=False)
        assert decision.reasons == ("no_read",)

    def test_a_rule_set_may_choose_the_before_cutoff_branch(self):
        text = default_rules_text().replace('unsynchronised_clock = "after_cutoff"',
                                            'unsynchronised_clock = "before_cutoff"')
        rules = parse_rules(text)
        decision = decide(parcel(), rules, entry(), {}, EVENING, clock_synchronised=False)
        assert (decision.lane, decision.reasons) == ("ZHUHAI", ("clock_unsynchronised",))

    def test_synchronised_or_unknown_reads_the_clock(self):
        for synced in (True, None):
            decision = decide(parcel(), RULES, entry(), {}, MORNING, clock_synchronised=synced)
            assert (decision.lane, decision.reasons) == ("ZHUHAI", ())


def default_rules_text() -> str:
    from importlib import resources

    return resources.files("edge_agent.defaults").joinpath("rules.toml").read_text("utf-8")


def test_barcode_destination_wins_over_manifest():
    # The label says Hangzhou; the manifest says Guangzhou: the label is what the parcel wears.
    barcode = gs1_to("156", "310000")
    decision = decide(parcel(barcode), RULES, entry(postal="510000", barcode=barcode), {}, MORNING)
    assert decision.lane == "ZHUHAI"
    assert decision.inputs.destination_source == "barcode"
    assert decision.inputs.declared_weight_kg == 2.0  # the manifest still gives the declared weight


def test_ai_420_uses_the_default_country():
    decision = decide(parcel("]C1420200001"), RULES, None, {}, MORNING)
    assert (decision.lane, decision.inputs.country, decision.inputs.province) == (
        "ZHUHAI", "CN", "Shanghai")
    other = decide(parcel("]C1420200001"), RULES, None, {}, MORNING, default_country="US")
    assert other.lane == "EXPORT"


def test_cutoff_is_in_the_site_time_zone():
    at_1959 = datetime(2026, 11, 20, 11, 59, tzinfo=UTC)
    at_2000 = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
    assert decide(parcel(), RULES, entry(), {}, at_1959).lane == "ZHUHAI"
    assert decide(parcel(), RULES, entry(), {}, at_2000).lane == "SHANGHAI"
    # The same instant is 12:00 in London: before the cutoff there.
    assert decide(parcel(), RULES, entry(), {}, at_2000, timezone="Europe/London").lane == "ZHUHAI"


def test_default_rule_when_nothing_matches():
    rules = parse_rules({
        "version": "t", "lanes": {"A": {"bin": 1}, "EXCEPTION": {"bin": 9}},
        "rules": [{"id": "never", "lane": "A", "when": {"country": ["ZZ"]}}],
        "default": {"lane": "EXCEPTION"},
    })
    decision = decide(parcel(), rules, entry(), {}, MORNING)
    assert (decision.lane, decision.rule, decision.reasons) == (
        "EXCEPTION", "default", ("no_rule_matched",))


def test_to_dict_is_the_documented_contract():
    decision = decide(parcel(), RULES, entry(service="express"), {"ZHUHAI": FULL}, MORNING)
    record = json.loads(json.dumps(decision.to_dict()))
    assert set(record) >= {"parcel_id", "barcode", "lane", "bin", "rule", "reasons",
                           "rules_version", "decided_at", "inputs"}
    assert set(record["inputs"]) >= {
        "symbology", "no_read", "identifier_kind", "identifier_valid", "identifier_problem",
        "weight_kg", "weight_stable", "weight_status", "declared_weight_kg", "country",
        "postal_code", "province", "service", "destination_source", "lane_states", "local_time"}
    assert record["decided_at"] == "2026-11-20T02:00:00+00:00"
    assert record["inputs"]["local_time"] == "2026-11-20T10:00:00+08:00"
    assert record["inputs"]["lane_states"] == {
        "ZHUHAI": "full", "SHANGHAI": "open", "EXPORT": "open", "EXCEPTION": "open"}
    assert record["inputs"]["service"] == "express"
    assert record["reasons"] == ["lane_full_overflow"]
    assert record["rules_version"] == RULES.version


barcodes = st.one_of(
    st.none(), st.text(max_size=40), st.sampled_from(["RB123456785GB", gs1_to("156", "200001")]))
weights = st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True))
entries = st.one_of(st.none(), st.builds(
    ManifestEntry, barcode=st.just("X1234"), country=st.sampled_from(["CN", "HK", "US", "TW"]),
    postal_code=st.one_of(st.none(), st.from_regex(r"[0-9]{1,8}", fullmatch=True)),
    declared_weight_kg=st.one_of(st.none(), st.floats(0.01, 1000)),
    service=st.one_of(st.none(), st.just("express")),
    order_id=st.one_of(st.none(), st.just("ORD-1")),
    dangerous_goods=st.one_of(st.none(), st.sampled_from(["none", "liquid", "liquid;powder"])),
    declared_value=st.one_of(st.none(), st.floats(0, 1e6)),
    currency=st.one_of(st.none(), st.sampled_from(["CNY", "HKD", "XAU"])),
    customs_mode=st.one_of(st.none(), st.sampled_from(["personal_postal",
                                                       "cross_border_ecommerce"])),
))
lane_maps = st.dictionaries(st.sampled_from(["ZHUHAI", "SHANGHAI", "EXPORT", "EXCEPTION", "X"]),
                            st.sampled_from(list(LaneState)))
moments = st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                       timezones=st.just(UTC))


@given(barcodes, weights, st.booleans(), st.booleans(), st.booleans(), entries, lane_maps, moments)
def test_decide_never_raises_and_is_deterministic(
    barcode, weight, stable, no_read, late, manifest_entry, states, now
):
    p = parcel(barcode, weight, stable=stable, no_read=no_read, late=late)
    first = decide(p, RULES, manifest_entry, states, now)
    again = decide(p, RULES, manifest_entry, states, now)
    assert first == again
    assert first.lane in RULES.lanes and first.bin == RULES.lanes[first.lane].bin
    json.dumps(first.to_dict())  # always serialisable


def test_every_recorded_input_is_in_its_own_field():
    # decide() builds the record from values in field order: a swap would mislabel facts.
    barcode = gs1_to("156", "310000")
    p = parcel(barcode, 2.5, status="ok", pairing="paired")
    p = p.__class__(**{**{f: getattr(p, f) for f in p.__slots__}, "weight_offset_ms": -41.5})
    row = ManifestEntry(barcode="376130321109103420", country="CN", postal_code="200001",
                        declared_weight_kg=2.4, service="express", order_id="ORD-3",
                        dangerous_goods="none", declared_value=100.0, currency="HKD",
                        customs_mode="personal_postal")
    held = Hold("H1", None, "ORD-3", "inspection", MORNING.timestamp() + 60, 0.0)
    decision = decide(p, RULES, row, {"EXPORT": BLOCKED}, MORNING, clock_synchronised=False,
                      hold=held)
    assert decision.inputs._asdict() == {
        "symbology": None, "no_read": False, "identifier_kind": "gs1", "identifier_valid": True,
        "identifier_problem": None, "weight_kg": 2.5, "weight_stable": True,
        "weight_status": "ok", "declared_weight_kg": 2.4, "country": "CN",
        "postal_code": "310000", "province": "Zhejiang", "service": "express",
        "destination_source": "barcode",
        "lane_states": {"ZHUHAI": "open", "SHANGHAI": "open", "EXPORT": "blocked",
                        "EXCEPTION": "open"},
        "local_time": datetime(2026, 11, 20, 10, 0, tzinfo=ZoneInfo("Asia/Hong_Kong")),
        "destination_known": True, "manifest_hit": True, "late": False,
        "weight_pairing": "paired", "weight_offset_ms": -41.5, "clock_synchronised": False,
        "length_mm": None, "width_mm": None, "height_mm": None, "volume_cm3": None,
        "chargeable_weight_kg": None, "labels": None, "order_id": "ORD-3", "hold_id": "H1",
        "hold_reason": "inspection", "dangerous_goods": (), "declared_value": 100.0,
        "currency": "HKD", "customs_mode": "personal_postal", "customs_value": 95.0,
        "customs_check": "within_limit",
    }
    # In the event, what only a DWS unit measures is left out when unknown.
    assert not {"length_mm", "labels", "chargeable_weight_kg"} & set(
        decision.to_dict()["inputs"])
    assert decision.inputs.local_time.utcoffset().total_seconds() == 8 * 3600


def test_lane_states_changed_in_place_are_seen():
    # The completed lane-state view is reused while the states are equal, not while the
    # caller's mapping is the same object.
    states: dict[str, LaneState] = {}
    assert decide(parcel(), RULES, entry(), states, MORNING).lane == "ZHUHAI"
    states["ZHUHAI"] = FULL
    decision = decide(parcel(), RULES, entry(), states, MORNING)
    assert (decision.lane, decision.inputs.lane_states["ZHUHAI"]) == ("SHANGHAI", FULL)
    del states["ZHUHAI"]
    assert decide(parcel(), RULES, entry(), states, MORNING).lane == "ZHUHAI"
