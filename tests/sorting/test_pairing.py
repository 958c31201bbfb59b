"""Pairing scans with weights by arrival time, with explicit timestamps (no clocks, no sleeps)."""

import itertools
from datetime import UTC, datetime

import pytest

from edge_agent.config import PairingConfig
from edge_agent.devices.messages import Scan, Weight, WeightStatus
from edge_agent.sorting.pairing import Pairer

MS = 1_000_000
WALL = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def make(mode="window", **overrides) -> Pairer:
    ids = (f"p{n}" for n in itertools.count(1))
    config = PairingConfig(mode=mode, **overrides)
    return Pairer(config, new_parcel_id=lambda: next(ids), wall_clock=lambda: WALL)


def scan(data, at_ms, no_read=False):
    return Scan(data=data, no_read=no_read, received_ns=at_ms * MS)


def weight(kg, at_ms, stable=True, status=WeightStatus.OK):
    value = None if status == WeightStatus.OVERLOAD else kg
    return Weight(value=value, unit="kg", value_kg=value, stable=stable, status=status,
                  received_ns=at_ms * MS)


def summary(parcels):
    return [(p.parcel_id, p.barcode, p.weight_kg, p.late) for p in parcels]


class TestWindow:
    def test_nearest_stable_reading_and_early_completion(self):
        pairer = make(window_ms=300)
        assert pairer.on_scan(scan("A", 1000)) is False  # window mode never asks to poll
        pairer.on_weight(weight(9.9, 1250))
        pairer.on_weight(weight(2.0, 1040))
        # Best so far is 40 ms away: ready at 1040, not at the window's end (1300).
        assert pairer.next_deadline_ns() == 1040 * MS
        assert pairer.ready(1039 * MS) == []
        [parcel] = pairer.ready(1040 * MS)
        assert (parcel.weight_kg, parcel.weight_stable, parcel.weight_status) == (2.0, True, "ok")
        assert (parcel.scanned_ns, parcel.scanned_at, parcel.parcel_id) == (1000 * MS, WALL, "p1")
        assert pairer.ready(2000 * MS) == []  # handed over once
        assert pairer.next_deadline_ns() is None

    def test_weight_processed_after_the_scan_but_arrived_before_it(self):
        pairer = make(window_ms=300)
        pairer.on_weight(weight(5.0, 700))  # too early: outside ±300 ms
        pairer.on_scan(scan("A", 1000))
        pairer.on_weight(weight(1.0, 980))  # arrived before the scan, processed after it
        [parcel] = pairer.ready(1020 * MS)
        assert parcel.weight_kg == 1.0

    def test_closer_reading_arriving_later_wins(self):
        pairer = make(window_ms=300)
        pairer.on_scan(scan("A", 1000))
        pairer.on_weight(weight(7.0, 1200))
        assert pairer.ready(1100 * MS) == []
        pairer.on_weight(weight(3.0, 1100))  # closer, and it came before the 1200 deadline
        [parcel] = pairer.ready(1100 * MS)
        assert parcel.weight_kg == 3.0

    def test_no_weight_completes_at_window_end(self):
        pairer = make(window_ms=300)
        pairer.on_scan(scan("A", 1000))
        pairer.on_weight(weight(4.0, 1100, stable=False))  # motion: never paired
        assert pairer.next_deadline_ns() == 1300 * MS
        assert pairer.ready(1299 * MS) == []
        [parcel] = pairer.ready(1300 * MS)
        assert (parcel.weight_kg, parcel.weight_stable, parcel.weight_status) == (None, False, None)

    def test_two_parcels_close_together_each_get_their_own_weight(self):
        pairer = make(window_ms=300)
        pairer.on_scan(scan("A", 1000))
        pairer.on_scan(scan("B", 1150))
        pairer.on_weight(weight(2.0, 1060))
        pairer.on_weight(weight(8.0, 1210))
        ready = pairer.ready(1060 * MS) + pairer.ready(1210 * MS)
        assert summary(ready) == [("p1", "A", 2.0, False), ("p2", "B", 8.0, False)]

    def test_a_weight_pairs_with_at_most_one_parcel(self):
        pairer = make(window_ms=300)
        pairer.on_scan(scan("A", 1000))
        pairer.on_scan(scan("B", 1100))
        pairer.on_weight(weight(2.0, 1050))
        parcels = pairer.ready(1400 * MS)
        assert summary(parcels) == [("p1", "A", 2.0, False), ("p2", "B", None, False)]

    def test_debounce_repeated_reads_are_one_parcel(self):
        pairer = make(window_ms=100, debounce_ms=1500)
        pairer.on_scan(scan("A", 1000))
        pairer.on_scan(scan("A", 1400))  # same label still under the scanner
        pairer.on_scan(scan("A", 2800))  # 1400 ms after the previous read: still the same
        pairer.on_scan(scan("A", 4400))  # 1600 ms later: a new parcel
        pairer.on_scan(scan("B", 4450))
        parcels = pairer.ready(10_000 * MS)
        assert [p.barcode for p in parcels] == ["A", "A", "B"]

    def test_no_reads_are_each_a_parcel(self):
        pairer = make(window_ms=100)
        pairer.on_scan(scan("", 1000, no_read=True))
        pairer.on_scan(scan("", 1010, no_read=True))
        parcels = pairer.ready(2000 * MS)
        assert [(p.barcode, p.no_read) for p in parcels] == [(None, True), (None, True)]

    def test_late_handover_is_marked(self):
        pairer = make(window_ms=300, decision_deadline_ms=1000)
        pairer.on_scan(scan("A", 1000))
        [parcel] = pairer.ready(2001 * MS)  # the loop stalled past the deadline
        assert parcel.late

    def test_overload_is_reported(self):
        pairer = make(window_ms=300)
        pairer.on_scan(scan("A", 1000))
        pairer.on_weight(weight(None, 1100, stable=False, status=WeightStatus.OVERLOAD))
        [parcel] = pairer.ready(1300 * MS)
        assert (parcel.weight_kg, parcel.weight_status) == (None, "overload")


class TestPollAfterScan:
    def test_completes_when_the_stable_reply_arrives(self):
        pairer = make("poll-after-scan", poll_timeout_ms=800)
        assert pairer.on_scan(scan("A", 1000)) is True
        pairer.on_weight(weight(3.0, 1100, stable=False))  # still settling
        assert pairer.ready(1100 * MS) == []
        pairer.on_weight(weight(3.2, 1180))
        [parcel] = pairer.ready(1180 * MS)
        assert parcel.weight_kg == 3.2

    def test_reply_from_before_the_scan_is_ignored(self):
        pairer = make("poll-after-scan", poll_timeout_ms=800)
        pairer.on_scan(scan("A", 1000))
        pairer.on_weight(weight(9.0, 990))  # the previous parcel's reading, processed late
        assert pairer.ready(1000 * MS) == []

    def test_timeout_without_reply(self):
        pairer = make("poll-after-scan", poll_timeout_ms=800)
        pairer.on_scan(scan("A", 1000))
        assert pairer.next_deadline_ns() == 1800 * MS
        [parcel] = pairer.ready(1800 * MS)
        assert parcel.weight_kg is None and not parcel.weight_stable

    def test_replies_go_to_parcels_in_scan_order(self):
        pairer = make("poll-after-scan", poll_timeout_ms=800)
        pairer.on_scan(scan("A", 1000))
        pairer.on_scan(scan("B", 1050))
        pairer.on_weight(weight(1.0, 1100))
        pairer.on_weight(weight(2.0, 1150))
        assert summary(pairer.ready(1150 * MS)) == [
            ("p1", "A", 1.0, False), ("p2", "B", 2.0, False)]


@pytest.mark.parametrize("order", list(itertools.permutations(range(4))))
def test_processing_order_does_not_change_pairing(order):
    """Scans and weights handed over in any order pair the same, by arrival stamps."""
    messages = [scan("A", 1000), weight(2.0, 1030), scan("B", 1500), weight(6.0, 1540)]
    pairer = make(window_ms=300)
    for index in order:
        message = messages[index]
        (pairer.on_scan if isinstance(message, Scan) else pairer.on_weight)(message)
    parcels = pairer.ready(3000 * MS)
    assert sorted((p.barcode, p.weight_kg) for p in parcels) == [("A", 2.0), ("B", 6.0)]
