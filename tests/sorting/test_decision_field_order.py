"""decide() builds Decision and DecisionInputs from values in field order (tuple.__new__, for
speed): a field added, removed or moved in either NamedTuple without the same change in decide()
would put every later value under the wrong name. These tests pin the order and check, field by
field, that each value lands under its own name."""

from dataclasses import replace

from edge_agent.sorting.decision import Decision, decide
from edge_agent.sorting.inputs import DecisionInputs
from edge_agent.sorting.lanes import LaneState
from edge_agent.sorting.manifest import ManifestEntry
from edge_agent.sorting.rules import default_rules

from .helpers import MORNING, parcel

DECISION_FIELDS = ("parcel_id", "barcode", "lane", "bin", "rule", "reasons", "rules_version",
                   "decided_at", "inputs")
INPUT_FIELDS = (
    "symbology", "no_read", "identifier_kind", "identifier_valid", "identifier_problem",
    "weight_kg", "weight_stable", "weight_status", "declared_weight_kg",
    "country", "postal_code", "province", "service", "destination_source",
    "lane_states", "local_time", "destination_known", "manifest_hit", "late",
    "weight_pairing", "weight_offset_ms", "clock_synchronised",
    "length_mm", "width_mm", "height_mm", "volume_cm3", "chargeable_weight_kg", "labels",
    "order_id", "hold_id", "hold_reason", "dangerous_goods", "declared_value", "currency",
    "customs_mode", "customs_value", "customs_check",
)


def test_the_field_order_decide_builds_in():
    assert Decision._fields == DECISION_FIELDS
    assert DecisionInputs._fields == INPUT_FIELDS


def test_every_value_lands_under_its_own_name():
    rules = default_rules()
    # Distinct values wherever a field could take another's: a shifted tuple cannot pass.
    dws_parcel = replace(
        parcel("RB123456785GB", 2.5), symbology="code128", weight_pairing="paired",
        weight_offset_ms=12.5, length_mm=400.0, width_mm=300.0, height_mm=200.0,
        labels=("RB123456785GB", "LABEL-2"),
    )
    entry = ManifestEntry("RB123456785GB", "CN", "200001", 2.4, "express", order_id="ORD-9",
                          declared_value=300.0, currency="HKD", customs_mode="personal_postal")
    decision = decide(dws_parcel, rules, entry, {"SHANGHAI": LaneState.FULL}, MORNING)

    assert (decision.parcel_id, decision.barcode) == ("p1", "RB123456785GB")
    assert (decision.lane, decision.bin, decision.rule) == ("ZHUHAI", 1, "zhuhai")
    assert decision.reasons == () and decision.rules_version == rules.version
    assert decision.decided_at == MORNING and isinstance(decision.inputs, DecisionInputs)
    inputs = decision.inputs._asdict()
    volume = 400.0 * 300.0 * 200.0 / 1000
    assert inputs == {
        "symbology": "code128", "no_read": False,
        "identifier_kind": inputs["identifier_kind"], "identifier_valid": True,
        "identifier_problem": None,
        "weight_kg": 2.5, "weight_stable": True, "weight_status": "ok",
        "declared_weight_kg": 2.4,
        "country": "CN", "postal_code": "200001", "province": inputs["province"],
        "service": "express", "destination_source": "manifest",
        "lane_states": rules.complete_states({"SHANGHAI": LaneState.FULL}),
        "local_time": MORNING.astimezone(inputs["local_time"].tzinfo),
        "destination_known": True, "manifest_hit": True, "late": False,
        "weight_pairing": "paired", "weight_offset_ms": 12.5, "clock_synchronised": True,
        "length_mm": 400.0, "width_mm": 300.0, "height_mm": 200.0, "volume_cm3": volume,
        "chargeable_weight_kg": volume / rules.volumetric_divisor_cm3_per_kg,
        "labels": ("RB123456785GB", "LABEL-2"),
        "order_id": "ORD-9", "hold_id": None, "hold_reason": None, "dangerous_goods": None,
        "declared_value": 300.0, "currency": "HKD", "customs_mode": "personal_postal",
        "customs_value": 300.0 * rules.customs.rates["HKD"], "customs_check": "within_limit",
    }
    # The two left to decide() above, named here so that they too are checked by name.
    assert inputs["identifier_kind"] == "s10" and inputs["province"] == "Shanghai"
    assert inputs["local_time"].utcoffset().total_seconds() == 8 * 3600  # Hong Kong
    assert inputs["chargeable_weight_kg"] > inputs["weight_kg"]  # the volumetric one won
