"""Poll-after-scan: every reply of the scale answers exactly one request, in order."""

from edge_agent.devices.messages import WeightStatus
from tests.sorting.test_pairing import MS, make, scan, summary, weight


def test_no_stable_weight_reply_answers_its_own_parcel_not_the_next():
    pairer = make("poll-after-scan", poll_timeout_ms=800)
    pairer.on_scan(scan("A", 1000))
    pairer.on_scan(scan("B", 1002))
    # The checkweigher could not settle on A (MT-SICS `S I`), then weighed B.
    pairer.on_weight(weight(None, 1001, stable=False, status=WeightStatus.ERROR))
    pairer.on_weight(weight(7.25, 1003))
    assert summary(pairer.ready(1003 * MS)) == [("p1", "A", None, False), ("p2", "B", 7.25, False)]


def test_overload_reply_marks_its_parcel_overloaded():
    pairer = make("poll-after-scan")
    pairer.on_scan(scan("A", 1000))
    pairer.on_weight(weight(None, 1001, stable=False, status=WeightStatus.OVERLOAD))
    [parcel] = pairer.ready(1001 * MS)
    assert (parcel.weight_kg, parcel.weight_status) == (None, "overload")


def test_reading_in_motion_is_not_an_answer():
    pairer = make("poll-after-scan")
    pairer.on_scan(scan("A", 1000))
    pairer.on_weight(weight(3.0, 1001, stable=False))
    assert pairer.ready(1001 * MS) == []
    assert pairer.pending_count() == 1
    pairer.on_weight(weight(3.1, 1002))
    assert summary(pairer.ready(1002 * MS)) == [("p1", "A", 3.1, False)]
    assert pairer.pending_count() == 0
