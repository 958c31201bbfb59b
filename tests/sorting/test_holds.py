"""Central's holds: the loop's index (by barcode, by order id, expiry), their store, and what a
hold does to the decision (reason held, the hold lane, central's reason in the inputs)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.sorting.decision import decide
from edge_agent.sorting.hold_store import KEEP_EXPIRED_S, HoldStore
from edge_agent.sorting.holds import MAX_HOLD_DAYS, Hold, HoldError, HoldIndex, holds_from_requests
from edge_agent.sorting.lanes import LaneState
from edge_agent.sorting.manifest import ManifestEntry
from edge_agent.sorting.rules import default_rules, parse_rules

from .helpers import MORNING, parcel

NOW = MORNING.timestamp()
S10 = "RB123456785GB"
RULES = default_rules()
HOLD_LANE_RULES = parse_rules(
    default_rules().model_dump(mode="json", by_alias=True, exclude_none=True)
    | {"hold_lane": "HOLD", "lanes": {
        **{name: lane.model_dump(exclude={"name"}, exclude_none=True)
           for name, lane in RULES.lanes.items()},
        "HOLD": {"bin": 5, "overflow": "EXCEPTION"}}})


def hold(hold_id="H1", barcode: str | None = S10, order_id: str | None = None,
         reason="customs inspection", expires_in_s=3600.0, put_at=NOW) -> Hold:
    return Hold(hold_id, barcode, order_id, reason, NOW + expires_in_s, put_at)


def entry(order_id: str | None = "ORD-7") -> ManifestEntry:
    return ManifestEntry(S10, "CN", "200001", 2.0, None, order_id)


class TestIndex:
    def test_by_barcode_and_by_order_id(self):
        index = HoldIndex([hold("H1"), hold("H2", barcode=None, order_id="ORD-9")])
        assert index.find(S10, None, NOW).hold_id == "H1"
        assert index.find("OTHER", "ORD-9", NOW).hold_id == "H2"
        assert index.find("OTHER", "ORD-1", NOW) is None
        assert index.find(None, None, NOW) is None

    def test_an_expired_hold_stops_applying_at_its_second(self):
        index = HoldIndex([hold(expires_in_s=10)])
        assert index.find(S10, None, NOW + 9.999) is not None
        assert index.find(S10, None, NOW + 10) is None
        assert len(index) == 1  # still in memory until purged: the look-up alone decides
        assert index.purge(NOW + 10) == 1 and len(index) == 0

    def test_lifting_one_of_two_holds_on_a_parcel_leaves_the_other(self):
        index = HoldIndex([hold("H1", expires_in_s=60), hold("H2", expires_in_s=600)])
        assert index.find(S10, None, NOW).hold_id == "H2"  # the one that lasts longest
        assert index.lift("H2") and not index.lift("H2")  # lifting twice is harmless
        assert index.find(S10, None, NOW).hold_id == "H1"
        assert index.lift("H1") and index.find(S10, None, NOW) is None and not index

    def test_putting_the_same_id_again_replaces_it(self):
        index = HoldIndex([hold("H1", barcode="A1")])
        index.put(hold("H1", barcode="B2", reason="order cancelled"))
        assert len(index) == 1 and index.find("A1", None, NOW) is None
        assert index.find("B2", None, NOW).reason == "order cancelled"

    def test_purge_skips_a_replaced_holds_old_expiry(self):
        index = HoldIndex([hold("H1", expires_in_s=10)])
        index.put(hold("H1", expires_in_s=1000))  # moved later: the old heap entry is stale
        assert index.purge(NOW + 20) == 0 and index.find(S10, None, NOW + 20) is not None

    def test_view_counts_active_holds_and_names_the_newest(self):
        index = HoldIndex([hold("H1", put_at=NOW - 5), hold("H2", "X9", put_at=NOW)])
        view = index.view(NOW)
        assert view["active"] == 2 and view["newest"]["hold_id"] == "H2"
        index.lift("H2")
        assert index.view(NOW)["newest"]["hold_id"] == "H1"
        assert HoldIndex().view(NOW) == {"active": 0, "newest": None}

    @given(st.lists(st.tuples(st.sampled_from(["H1", "H2", "H3"]), st.booleans(),
                              st.integers(1, 100)), max_size=30),
           st.integers(0, 120))
    def test_the_index_agrees_with_a_plain_dict(self, operations, at):
        """Any sequence of puts and lifts: the index finds what a plain table of holds says."""
        index, model = HoldIndex(), {}
        for hold_id, is_put, expires_in in operations:
            if is_put:
                index.put(model.setdefault(hold_id, hold(hold_id, expires_in_s=expires_in)))
            else:
                index.lift(hold_id)
                model.pop(hold_id, None)
        index.purge(NOW + at)
        alive = [h for h in model.values() if h.expires_at > NOW + at]
        found = index.find(S10, None, NOW + at)
        assert (found is None) == (not alive)
        assert len(index) == len(alive)


# (case id, rules, hold, manifest entry, lane states, late) -> (lane, rule, reasons)
HELD_CASES = [
    ("held_by_barcode", RULES, hold(), entry(None), {}, False,
     ("EXCEPTION", "held", ("held",))),
    ("held_by_order_id", RULES, hold(barcode=None, order_id="ORD-7"), entry(), {}, False,
     ("EXCEPTION", "held", ("held",))),
    ("held_to_the_hold_lane", HOLD_LANE_RULES, hold(), entry(), {}, False,
     ("HOLD", "held", ("held",))),
    ("hold_lane_full_overflows", HOLD_LANE_RULES, hold(), entry(), {"HOLD": LaneState.FULL},
     False, ("EXCEPTION", "held", ("held", "lane_full_overflow", "lane_unavailable"))),
    ("held_exception_blocked_still_exception", RULES, hold(), entry(),
     {"EXCEPTION": LaneState.BLOCKED}, False, ("EXCEPTION", "held", ("held", "lane_unavailable"))),
    ("late_wins_over_held", RULES, hold(), entry(), {}, True,
     ("EXCEPTION", "decision_late", ("decision_late",))),
    ("no_hold_sorts", RULES, None, entry(), {}, False, ("ZHUHAI", "zhuhai", ())),
]


@pytest.mark.parametrize(("rules", "held", "manifest_entry", "states", "late", "expected"),
                         [case[1:] for case in HELD_CASES], ids=[case[0] for case in HELD_CASES])
def test_a_held_parcel_goes_to_the_hold_lane_with_centrals_reason(
        rules, held, manifest_entry, states, late, expected):
    decision = decide(parcel(late=late), rules, manifest_entry, states, MORNING, hold=held)
    assert (decision.lane, decision.rule, decision.reasons) == expected
    inputs = decision.to_dict()["inputs"]
    if held is not None and not late:
        assert (inputs["hold_id"], inputs["hold_reason"]) == ("H1", "customs inspection")
    if held is None:
        assert "hold_id" not in inputs and "hold_reason" not in inputs  # absent: no hold
    if manifest_entry.order_id is not None:
        assert inputs["order_id"] == "ORD-7"


def test_no_rule_can_route_a_held_parcel():
    """A rule set whose first rule sends everything to SHANGHAI still holds the parcel."""
    text = """version = "everything-to-shanghai"
[lanes.SHANGHAI]
bin = 2
[lanes.EXCEPTION]
bin = 4
[[rules]]
id = "all"
lane = "SHANGHAI"
[default]
lane = "EXCEPTION"
"""
    decision = decide(parcel(), parse_rules(text), entry(), {}, MORNING, hold=hold())
    assert (decision.lane, decision.reasons) == ("EXCEPTION", ("held",))


def test_a_hold_lane_that_is_not_a_lane_is_refused():
    with pytest.raises(Exception, match="hold_lane: unknown lane 'NOWHERE'"):
        parse_rules(RULES.model_dump(mode="json", by_alias=True, exclude_none=True)
                    | {"hold_lane": "NOWHERE"})


@dataclass
class Request:
    hold_id: str
    barcode: str | None
    order_id: str | None
    reason: str
    expires_at: datetime


def request(hold_id="H1", expires_in_s=3600.0) -> Request:
    return Request(hold_id, S10, None, "inspection",
                   MORNING + timedelta(seconds=expires_in_s))


@pytest.mark.parametrize(("requests", "problem"), [
    ([request(expires_in_s=0)], "holds[0].expires_at: 2026-11-20T02:00:00+00:00 is already past"),
    ([request(), request("H2", expires_in_s=-5)], "holds[1].expires_at:"),
    ([request(expires_in_s=(MAX_HOLD_DAYS + 1) * 86400)],
     f"holds[0].expires_at: at most {MAX_HOLD_DAYS} days ahead"),
    ([request("H1"), request("H1")], "holds[1].hold_id: 'H1' is already holds[0]"),
], ids=["expired", "second_expired", "too_far_ahead", "id_twice"])
def test_holds_that_cannot_be_taken_are_named(requests, problem):
    with pytest.raises(HoldError) as refused:
        holds_from_requests(requests, NOW)
    assert any(p.startswith(problem) for p in refused.value.problems), refused.value.problems


class TestStore:
    def test_holds_survive_reopening_and_expired_ones_are_not_loaded(self, tmp_path: Path):
        store = HoldStore.open(tmp_path)
        store.put([hold("H1"), hold("H2", "X9", expires_in_s=5)], NOW)
        store.close()
        store = HoldStore.open(tmp_path)
        assert [h.hold_id for h in store.active(NOW)] == ["H1", "H2"]
        assert [h.hold_id for h in store.active(NOW + 5)] == ["H1"]
        store.close()

    def test_put_again_keeps_the_first_put_time_and_lift_is_idempotent(self, tmp_path: Path):
        store = HoldStore.open(tmp_path)
        store.put([hold("H1", put_at=NOW)], NOW)
        (again,) = store.put([hold("H1", reason="moved", expires_in_s=7200, put_at=NOW + 60)],
                             NOW + 60)
        assert (again.reason, again.put_at, again.expires_at) == ("moved", NOW, NOW + 7200)
        assert store.lift(["H1", "H9"]) == ["H1"]
        assert store.lift(["H1"]) == [] and store.active(NOW) == []
        store.close()

    def test_expired_holds_are_kept_a_week_for_a_clock_that_was_wrong(self, tmp_path: Path):
        store = HoldStore.open(tmp_path)
        store.put([hold("OLD", expires_in_s=-KEEP_EXPIRED_S - 1, put_at=NOW - 9e5),
                   hold("RECENT", "X1", expires_in_s=-86_400)], NOW - 9e5)
        store.put([hold("NEW", "X2")], NOW)  # a write deletes what expired over a week ago
        assert sorted(h.hold_id for h in store.active(NOW - KEEP_EXPIRED_S)) == ["NEW", "RECENT"]
        assert [h.hold_id for h in store.active(NOW)] == ["NEW"]
        store.close()

    def test_read_only_opening_needs_an_existing_store(self, tmp_path: Path):
        assert HoldStore.open_read_only(tmp_path) is None
        HoldStore.open(tmp_path).close()
        store = HoldStore.open_read_only(tmp_path)
        assert store is not None and store.active(NOW) == []
        store.close()
