"""Per-parcel alarms: the first of a run at once, the rest batched per period, none lost."""

from __future__ import annotations

from edge_agent.runtime.parcel_alarms import MAX_PARCELS_LISTED, ParcelAlarms


def make(period_s: float = 1.0):
    raised: list[tuple[str, str, str, dict]] = []
    alarms = ParcelAlarms(lambda *alarm: raised.append(alarm), period_s=period_s)
    return alarms, raised


def report(alarms: ParcelAlarms, parcel: int, now: float, alarm: str = "sorter_ack_missing"):
    alarms.report(alarm, "warning", "no acknowledgement", {"parcel_id": f"p{parcel}"},
                  {"timeout_ms": 250}, now)


def ids(alarm: tuple) -> list[str]:
    return [p["parcel_id"] for p in alarm[3]["parcels"]]


def test_the_first_is_raised_at_once_and_the_rest_together_when_the_period_ends():
    alarms, raised = make()
    report(alarms, 1, now=10.0)
    assert len(raised) == 1 and raised[0][2] == "no acknowledgement: parcel p1"
    for parcel in range(2, 6):
        report(alarms, parcel, now=10.1 + parcel / 100)
    alarms.flush(now=10.9)
    assert len(raised) == 1 and alarms.pending() == 4
    alarms.flush(now=11.0)
    assert len(raised) == 2 and alarms.pending() == 0
    name, severity, message, details = raised[1]
    assert (name, severity, message) == ("sorter_ack_missing", "warning",
                                         "no acknowledgement: 4 parcels")
    assert details == {"timeout_ms": 250, "count": 4, "omitted": 0,
                       "parcels": [{"parcel_id": f"p{n}"} for n in range(2, 6)]}


def test_after_a_quiet_period_the_next_fault_is_raised_at_once_again():
    alarms, raised = make()
    report(alarms, 1, now=10.0)
    alarms.flush(now=12.0)  # nothing pending: nothing raised
    report(alarms, 2, now=12.5)
    assert [ids(a) for a in raised] == [["p1"], ["p2"]]


def test_a_long_run_lists_the_first_parcels_and_counts_every_one():
    alarms, raised = make()
    total = MAX_PARCELS_LISTED + 50
    for parcel in range(total):
        report(alarms, parcel, now=10.0 + parcel / 1000)
    alarms.flush(now=11.5)
    assert sum(a[3]["count"] for a in raised) == total
    batch = raised[1][3]
    assert batch["count"] == total - 1 and len(batch["parcels"]) == MAX_PARCELS_LISTED
    assert batch["omitted"] == total - 1 - MAX_PARCELS_LISTED
    assert ids(raised[1])[0] == "p1"


def test_kinds_are_batched_separately():
    alarms, raised = make()
    report(alarms, 1, now=10.0)
    report(alarms, 2, now=10.1, alarm="sorter_unreachable")  # another kind: at once
    report(alarms, 3, now=10.2)
    assert [a[0] for a in raised] == ["sorter_ack_missing", "sorter_unreachable"]
    alarms.flush(now=11.0)
    assert [a[0] for a in raised][2:] == ["sorter_ack_missing"] and ids(raised[2]) == ["p3"]


def test_stopping_raises_what_is_pending_so_nothing_is_lost():
    alarms, raised = make()
    report(alarms, 1, now=10.0)
    report(alarms, 2, now=10.1)
    alarms.flush(now=10.2, everything=True)
    assert [ids(a) for a in raised] == [["p1"], ["p2"]] and alarms.pending() == 0
