"""`replay` with holds, air and customs: events recorded before these fields existed replay as
they were decided (unknown is unknown, not zero), a held parcel stays held, and declarations
are judged again by the new rules' routes, rates and limits, not by the recorded verdict."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.sorting.decision import decide
from edge_agent.sorting.manifest import ManifestEntry
from edge_agent.sorting.replay import redecide
from edge_agent.sorting.rules import default_rules, parse_rules

from .helpers import MORNING, parcel

RULES = default_rules()
ZONE, COUNTRY = "Asia/Hong_Kong", "CN"
S10 = "RB123456785GB"

# A parcel event as the first contract version recorded it: none of the inputs added since
# (pairing, clock, dimensions, labels, order id, holds, air and customs).
OLD_EVENT = {
    "event_id": "0" * 32, "seq": 7, "schema_version": 1,
    "parcel_id": "p-old", "barcode": S10, "lane": "ZHUHAI", "bin": 1, "rule": "zhuhai",
    "reasons": [], "rules_version": "default-1", "decided_at": "2026-11-20T02:00:00+00:00",
    "inputs": {
        "symbology": None, "no_read": False, "identifier_kind": "s10", "identifier_valid": True,
        "identifier_problem": None, "weight_kg": 2.0, "weight_stable": True,
        "weight_status": "ok", "declared_weight_kg": 2.0, "country": "CN",
        "postal_code": "200001", "province": "Shanghai", "service": None,
        "destination_source": "manifest", "lane_states": {}, "local_time":
        "2026-11-20T10:00:00+08:00", "destination_known": True, "manifest_hit": True,
        "late": False,
    },
}


def with_rules(**changes) -> object:
    data = RULES.model_dump(mode="json", by_alias=True, exclude_none=True)
    lanes = {name: {k: v for k, v in lane.items() if k != "name"}
             for name, lane in data["lanes"].items()}
    lanes |= changes.pop("lanes", {})
    return parse_rules(data | {"lanes": lanes} | changes)


def recorded(entry: ManifestEntry, **options) -> dict:
    """An event as the agent records it today, through JSON like everything on the wire."""
    decision = decide(parcel(), RULES, entry, {}, MORNING, **options)
    return json.loads(json.dumps(decision.to_dict()))


def test_an_event_from_before_these_fields_replays_as_it_was_decided():
    again = redecide(OLD_EVENT, RULES, ZONE, COUNTRY)
    assert (again.lane, again.rule, again.reasons) == ("ZHUHAI", "zhuhai", ())
    inputs = again.to_dict()["inputs"]
    for unknown in ("order_id", "hold_id", "dangerous_goods", "declared_value", "currency",
                    "customs_mode", "customs_value", "customs_check"):
        assert unknown not in inputs  # unknown, not zero, not "none", not within a limit


def test_a_held_parcel_stays_held_whatever_the_new_rules():
    from edge_agent.sorting.holds import Hold

    entry = ManifestEntry(S10, "CN", "200001", 2.0)
    hold = Hold("H1", S10, None, "customs inspection", MORNING.timestamp() + 60, 0.0)
    event = recorded(entry, hold=hold)
    assert event["reasons"] == ["held"]
    to_hold_lane = with_rules(hold_lane="HOLD", lanes={"HOLD": {"bin": 5, "flies": False}})
    again = redecide(event, to_hold_lane, ZONE, COUNTRY)
    assert (again.lane, again.reasons) == ("HOLD", ("held",))
    assert again.inputs.hold_reason == "customs inspection"


@pytest.mark.parametrize(("flags", "lane", "reasons"), [
    ("liquid", "ROAD", ("air_restricted",)),
    ("none", "ZHUHAI", ()),  # recorded as [], declared free of dangerous goods
    (None, "ZHUHAI", ()),  # not declared
])
def test_dangerous_goods_are_routed_by_the_new_rules_lanes(flags, lane, reasons):
    event = recorded(ManifestEntry(S10, "CN", "200001", 2.0, dangerous_goods=flags))
    ground = with_rules(lanes={"ROAD": {"bin": 5, "flies": False},
                               "ZHUHAI": {"bin": 1, "weight_limit_kg": 30.0,
                                          "overflow": "SHANGHAI", "flies": True,
                                          "ground_lane": "ROAD"}})
    again = redecide(event, ground, ZONE, COUNTRY)
    assert (again.lane, again.reasons) == (lane, reasons)


def test_a_customs_value_is_judged_again_with_the_new_rates():
    entry = ManifestEntry(S10, "CN", "200001", 2.0, declared_value=850.0, currency="HKD",
                          customs_mode="personal_postal")
    event = recorded(entry)
    assert event["reasons"] == ["customs_value_limit"]  # 850 HKD at 0.95: CNY 807.50
    lower_rate = with_rules(customs={"rates": {"HKD": 0.90}})  # CNY 765
    again = redecide(event, lower_rate, ZONE, COUNTRY)
    assert (again.lane, again.inputs.customs_value, again.inputs.customs_check) == (
        "ZHUHAI", 765.0, "within_limit")
    no_rate = with_rules(customs={"rates": {"USD": 7.4}})
    assert redecide(event, no_rate, ZONE, COUNTRY).reasons == ("unknown_currency",)


def test_the_replay_command_reads_old_and_new_events_side_by_side(tmp_path: Path, capsys):
    entry = ManifestEntry(S10, "CN", "200001", 2.0, dangerous_goods="liquid")
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(OLD_EVENT) + "\n" + json.dumps(recorded(entry)) + "\n")
    rules = tmp_path / "rules.toml"
    rules.write_text((Path(__file__).parents[2] / "edge_agent/defaults/rules.toml").read_text())
    code = main(["replay", str(events), "--rules", str(rules), "--json"])
    out = capsys.readouterr().out
    assert code == 0, out
    report = json.loads(out)
    assert report["parcels"] == 2 and report["changed"] == 0, report


@pytest.mark.parametrize(("field", "value"), [
    ("dangerous_goods", ["batteries"]), ("currency", "yuan!"), ("customs_mode", "post"),
    ("declared_value", "lots"), ("order_id", 7),
])
def test_a_recorded_declaration_that_is_not_valid_is_named_and_the_rest_replays(
        tmp_path: Path, field, value):
    from edge_agent.sorting.replay import read_records, replay

    bad = json.loads(json.dumps(OLD_EVENT))
    bad["inputs"][field] = value
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(bad) + "\n" + json.dumps(OLD_EVENT) + "\n")
    problems: list[str] = []
    report = replay(read_records(events, problems), RULES, timezone=ZONE,
                    default_country=COUNTRY, problems=problems)
    assert report.parcels == 1
    assert len(problems) == 1 and problems[0].startswith("line 1: cannot replay") \
        and field in problems[0], problems
