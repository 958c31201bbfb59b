"""Pairing scans with weights, with explicit timestamps (no clocks, no sleeps).

Window mode: a parcel's reading settles at offset_ms ± window_ms from its scan, and a reading is
a parcel's only when it is the one reading in its window and in no neighbour's window.
"""

import itertools
from datetime import UTC, datetime

import pytest

from edge_agent.config import PairingConfig
from edge_agent.devices.messages import Scan, Weight, WeightStatus
from edge_agent.sorting.pairing import Pairer
from edge_agent.units import NS_PER_MS

WALL = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def make(mode="window", **overrides) -> Pairer:
    ids = (f"p{n}" for n in itertools.count(1))
    config = PairingConfig(mode=mode, **overrides)
    return Pairer(config, new_parcel_id=lambda: next(ids), wall_clock=lambda: WALL)


def scan(data, at_ms, no_read=False):
    return Scan(data=data, no_read=no_read, received_ns=int(at_ms * NS_PER_MS))


def weight(kg, at_ms, stable=True, status=WeightStatus.OK):
    value = None if status == WeightStatus.OVERLOAD else kg
    return Weight(value=value, unit="kg", value_kg=value, stable=stable, status=status,
                  received_ns=int(at_ms * NS_PER_MS))


def summary(parcels):
    return [(p.parcel_id, p.barcode, p.weight_kg, p.weight_pairing) for p in parcels]


class TestWindow:
    def test_the_reading_in_the_window_is_paired_with_its_offset(self):
        pairer = make(offset_ms=-40, window_ms=20)
        pairer.on_weight(weight(2.0, 962))  # settled 38 ms before the scan
        assert pairer.on_scan(scan("A", 1000)) is True
        # Judged once a neighbour sharing the window could have come: after scan + 2 x window.
        assert pairer.next_deadline_ns() == 1040 * NS_PER_MS + 1
        assert pairer.ready(1040 * NS_PER_MS) == []
        [parcel] = pairer.ready(1040 * NS_PER_MS + 1)
        assert (parcel.weight_kg, parcel.weight_stable, parcel.weight_status) == (2.0, True, "ok")
        assert (parcel.weight_pairing, parcel.weight_offset_ms) == ("paired", -38.0)
        assert (parcel.scanned_ns, parcel.scanned_at, parcel.parcel_id) \
            == (1000 * NS_PER_MS, WALL, "p1")
        assert pairer.ready(2000 * NS_PER_MS) == []  # handed over once
        assert pairer.next_deadline_ns() is None

    def test_a_reading_after_the_scan_waits_for_the_window_end(self):
        pairer = make(offset_ms=150, window_ms=30)
        pairer.on_scan(scan("A", 1000))
        assert pairer.next_deadline_ns() == 1180 * NS_PER_MS + 1
        pairer.on_weight(weight(3.0, 1160))
        [parcel] = pairer.ready(1180 * NS_PER_MS + 1)
        assert (parcel.weight_kg, parcel.weight_offset_ms) == (3.0, 160.0)

    def test_a_missing_reading_costs_only_its_own_parcel(self):
        """The defect: one missing reading shifted every later parcel onto its successor's."""
        pairer = make(offset_ms=-1, window_ms=50)
        for n in range(40):
            pairer.on_scan(scan(f"P{n}", 1000 + 200 * n))
            if n != 5:
                pairer.on_weight(weight(1 + n / 100, 999 + 200 * n))
        parcels = pairer.ready(100_000 * NS_PER_MS)
        assert [p.weight_kg for p in parcels] == [
            None if n == 5 else 1 + n / 100 for n in range(40)]
        assert parcels[5].weight_pairing == "none"

    def test_two_readings_in_one_window_are_ambiguous(self):
        pairer = make(window_ms=100)
        pairer.on_scan(scan("A", 1000))
        pairer.on_weight(weight(9.9, 1050))
        pairer.on_weight(weight(2.0, 980))
        [parcel] = pairer.ready(2000 * NS_PER_MS)
        assert (parcel.weight_kg, parcel.weight_pairing) == (None, "ambiguous")

    def test_a_reading_two_windows_hold_goes_to_neither(self):
        pairer = make(window_ms=100)
        pairer.on_scan(scan("A", 1000))
        pairer.on_scan(scan("B", 1150))  # 150 ms apart: both windows hold 1080
        pairer.on_weight(weight(2.0, 1080))
        assert summary(pairer.ready(2000 * NS_PER_MS)) == [
            ("p1", "A", None, "ambiguous"), ("p2", "B", None, "ambiguous")]
        assert pairer.counts["scans_too_close"] == 1

    def test_parcels_far_enough_apart_each_get_their_own(self):
        pairer = make(window_ms=100)
        pairer.on_scan(scan("A", 1000))
        pairer.on_scan(scan("B", 1250))
        pairer.on_weight(weight(2.0, 1060))
        pairer.on_weight(weight(8.0, 1210))
        assert summary(pairer.ready(2000 * NS_PER_MS)) == [
            ("p1", "A", 2.0, "paired"), ("p2", "B", 8.0, "paired")]
        assert pairer.counts["scans_too_close"] == 0

    def test_a_streaming_scale_run_is_one_reading(self):
        pairer = make(offset_ms=-40, window_ms=30)
        pairer.on_weight(weight(0.0, 900))  # empty platter: no reading
        pairer.on_weight(weight(2.4, 930, stable=False))
        for at in range(950, 1100, 10):  # stable for 150 ms: one reading, settled at 950
            pairer.on_weight(weight(2.5, at))
        pairer.on_scan(scan("A", 990))
        [parcel] = pairer.ready(2000 * NS_PER_MS)
        assert (parcel.weight_kg, parcel.weight_offset_ms) == (2.5, -40.0)

    def test_a_value_that_changes_without_motion_is_a_new_reading(self):
        pairer = make(offset_ms=0, window_ms=100)
        pairer.on_weight(weight(2.5, 950))
        pairer.on_weight(weight(7.5, 960))  # another parcel settled: two readings
        pairer.on_scan(scan("A", 990))
        [parcel] = pairer.ready(2000 * NS_PER_MS)
        assert parcel.weight_pairing == "ambiguous"

    def test_a_parcel_resting_long_never_becomes_its_successors_reading(self):
        pairer = make(offset_ms=0, window_ms=50)
        pairer.on_scan(scan("A", 1000))
        for at in range(1000, 4000, 20):  # one parcel left on the platter for 3 s
            pairer.on_weight(weight(2.5, at))
            pairer.ready(at * NS_PER_MS)
        pairer.on_scan(scan("B", 4000))
        [parcel] = pairer.ready(5000 * NS_PER_MS)
        assert (parcel.barcode, parcel.weight_kg, parcel.weight_pairing) == ("B", None, "none")

    def test_motion_only_is_unsettled_and_overload_is_reported(self):
        pairer = make(window_ms=100)
        pairer.on_scan(scan("A", 1000))
        pairer.on_weight(weight(4.0, 1010, stable=False))
        pairer.on_scan(scan("B", 2000))
        pairer.on_weight(weight(None, 2010, stable=False, status=WeightStatus.OVERLOAD))
        a, b = pairer.ready(3000 * NS_PER_MS)
        assert (a.weight_kg, a.weight_pairing, a.weight_status) == (None, "unsettled", None)
        assert (b.weight_kg, b.weight_pairing, b.weight_status) == (None, "overload", "overload")

    def test_below_the_minimum_weight_is_an_empty_platter(self):
        pairer = make(window_ms=100, min_weight_kg=0.05)
        pairer.on_scan(scan("A", 1000))
        pairer.on_weight(weight(0.01, 1010))
        [parcel] = pairer.ready(2000 * NS_PER_MS)
        assert parcel.weight_pairing == "none"

    def test_debounce_repeated_reads_are_one_parcel(self):
        pairer = make(window_ms=100, debounce_ms=1500)
        pairer.on_scan(scan("A", 1000))
        assert pairer.on_scan(scan("A", 1400)) is False  # same label still under the scanner
        pairer.on_scan(scan("A", 2800))  # 1400 ms after the previous read: still the same
        pairer.on_scan(scan("A", 4400))  # 1600 ms later: a new parcel
        pairer.on_scan(scan("B", 4650))
        parcels = pairer.ready(10_000 * NS_PER_MS)
        assert [p.barcode for p in parcels] == ["A", "A", "B"]
        assert pairer.counts["repeated_reads"] == 2

    def test_no_reads_are_each_a_parcel(self):
        pairer = make(window_ms=100)
        pairer.on_scan(scan("", 1000, no_read=True))
        pairer.on_scan(scan("", 1010, no_read=True))
        parcels = pairer.ready(2000 * NS_PER_MS)
        assert [(p.barcode, p.no_read) for p in parcels] == [(None, True), (None, True)]

    def test_late_handover_is_marked(self):
        pairer = make(window_ms=100, decision_deadline_ms=1000)
        pairer.on_scan(scan("A", 1000))
        [parcel] = pairer.ready(2001 * NS_PER_MS)  # the loop stalled past the deadline
        assert parcel.late


class TestPollAfterScan:
    def test_one_request_at_a_time_each_reply_answers_its_own(self):
        pairer = make("poll-after-scan", poll_timeout_ms=200)
        pairer.on_scan(scan("A", 1000))
        assert pairer.next_request(1001 * NS_PER_MS) is True
        assert pairer.next_request(1002 * NS_PER_MS) is False  # A's request is outstanding
        pairer.on_weight(weight(3.0, 1030, stable=False))  # in motion: not an answer
        pairer.on_weight(weight(3.2, 1040))
        # The reply counts as before the next scan only with the reorder margin (2 ms).
        assert pairer.next_deadline_ns() == 1042 * NS_PER_MS
        pairer.on_scan(scan("B", 1050))
        assert pairer.next_request(1051 * NS_PER_MS) is True  # now B's
        pairer.on_weight(weight(5.5, 1080))
        parcels = pairer.ready(1082 * NS_PER_MS)
        assert summary(parcels) == [("p1", "A", 3.2, "paired"), ("p2", "B", 5.5, "paired")]
        assert parcels[0].weight_offset_ms == 40.0

    def test_a_reply_after_the_next_scan_may_be_the_next_parcels(self):
        pairer = make("poll-after-scan", poll_timeout_ms=200)
        pairer.on_scan(scan("A", 1000))
        pairer.next_request(1000 * NS_PER_MS)
        pairer.on_scan(scan("B", 1030))  # B reached the platter before A's reply
        pairer.on_weight(weight(3.2, 1031))
        [a] = pairer.ready(1033 * NS_PER_MS)
        assert (a.weight_kg, a.weight_pairing) == (None, "ambiguous")

    def test_a_reply_within_the_reorder_margin_of_the_next_scan_is_ambiguous(self):
        pairer = make("poll-after-scan", poll_reorder_ms=2.0)
        pairer.on_scan(scan("A", 1000))
        pairer.next_request(1000 * NS_PER_MS)
        pairer.on_weight(weight(3.2, 1040))
        pairer.on_scan(scan("B", 1041))  # read after the reply, but only 1 ms after it
        [a] = pairer.ready(1041 * NS_PER_MS)
        assert a.weight_pairing == "ambiguous"

    def test_a_lost_reply_costs_one_parcel_and_a_late_one_is_discarded(self):
        pairer = make("poll-after-scan", poll_timeout_ms=200, resync_ms=300)
        pairer.on_scan(scan("A", 1000))
        assert pairer.next_request(1000 * NS_PER_MS)
        assert pairer.next_deadline_ns() == 1200 * NS_PER_MS
        [a] = pairer.ready(1200 * NS_PER_MS)
        assert (a.weight_kg, a.weight_pairing) == (None, "no_reply")
        pairer.on_weight(weight(9.9, 1250))  # A's reply, too late: discarded, resync restarts
        pairer.on_scan(scan("B", 1500))
        assert pairer.next_deadline_ns() == 1550 * NS_PER_MS  # resynchronising until 1250 + 300
        assert pairer.next_request(1549 * NS_PER_MS) is False
        assert pairer.next_request(1550 * NS_PER_MS) is True
        pairer.on_weight(weight(4.4, 1590))
        [b] = pairer.ready(1592 * NS_PER_MS)
        assert (b.weight_kg, b.weight_pairing) == (4.4, "paired")
        assert pairer.counts["replies_discarded"] == 1 and pairer.counts["replies_missing"] == 1

    def test_a_reply_nobody_asked_for_is_discarded(self):
        pairer = make("poll-after-scan")
        pairer.on_weight(weight(7.0, 900))
        pairer.on_scan(scan("A", 1000))
        assert pairer.counts["replies_discarded"] == 1

    def test_a_garbled_reply_answers_its_request_without_a_weight(self):
        pairer = make("poll-after-scan", poll_timeout_ms=200)
        pairer.on_scan(scan("A", 1000))
        assert pairer.next_request(1000 * NS_PER_MS)
        pairer.on_garbled(1030 * NS_PER_MS)
        [a] = pairer.ready(1030 * NS_PER_MS)
        assert a.weight_pairing == "reply_corrupt"

    def test_no_stable_weight_and_overload_answer_their_request(self):
        pairer = make("poll-after-scan")
        pairer.on_scan(scan("A", 1000))
        pairer.next_request(1000 * NS_PER_MS)
        pairer.on_weight(weight(None, 1001, stable=False, status=WeightStatus.ERROR))  # `S I`
        pairer.on_scan(scan("B", 1010))
        pairer.next_request(1010 * NS_PER_MS)
        pairer.on_weight(weight(None, 1013, stable=False, status=WeightStatus.OVERLOAD))
        a, b = pairer.ready(1020 * NS_PER_MS)
        assert (a.weight_pairing, b.weight_pairing, b.weight_status) == (
            "unsettled", "overload", "overload")

    def test_a_scale_that_cannot_be_written_to_is_offline(self):
        pairer = make("poll-after-scan", poll_timeout_ms=100)
        pairer.on_scan(scan("A", 1000))
        assert pairer.next_request(1000 * NS_PER_MS)
        pairer.request_failed(1000 * NS_PER_MS)
        pairer.on_scan(scan("B", 1010))
        parcels = pairer.ready(2000 * NS_PER_MS)
        assert [p.weight_pairing for p in parcels] == ["scale_offline", "scale_offline"]

    def test_a_parcel_that_cannot_be_asked_for_in_time_is_scale_busy(self):
        pairer = make("poll-after-scan", poll_timeout_ms=100)
        pairer.on_scan(scan("A", 1000))
        pairer.on_scan(scan("B", 1001))
        assert pairer.next_request(1001 * NS_PER_MS)
        pairer.on_weight(weight(1.0, 1099))
        assert pairer.next_request(1102 * NS_PER_MS) is False  # B scanned 101 ms ago: gone
        a, b = pairer.ready(1200 * NS_PER_MS)
        assert (a.weight_pairing, b.weight_pairing) == ("ambiguous", "scale_busy")


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_processing_order_does_not_change_pairing(order):
    """Scans and weights handed over in any order pair the same, by arrival stamps."""
    messages = [scan("A", 1000), weight(2.0, 1030), scan("B", 1500), weight(6.0, 1540)]
    pairer = make(window_ms=100, offset_ms=30)
    for index in order:
        message = messages[index]
        (pairer.on_scan if isinstance(message, Scan) else pairer.on_weight)(message)
    parcels = pairer.ready(3000 * NS_PER_MS)
    assert sorted((p.barcode, p.weight_kg) for p in parcels) == [("A", 2.0), ("B", 6.0)]


def test_a_window_the_deadline_cannot_wait_for_is_refused():
    with pytest.raises(ValueError, match="decision_deadline_ms"):
        PairingConfig(offset_ms=900, window_ms=200, decision_deadline_ms=1000)
