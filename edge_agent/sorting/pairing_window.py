"""Pairing by the line's geometry: a parcel's reading settles at a known offset from its scan.

Scanner and scale sit at fixed places on the belt, so a parcel's reading arrives `offset_ms`
after its scan (negative: before it), give or take `window_ms` of jitter. Each scan therefore
owns a window [scan + offset - window, scan + offset + window], and parcels cannot overtake
each other on a belt.

The rule that keeps one fault from spreading: a scan gets a reading only when exactly one
reading settled in its window and that reading lies in no other scan's window. Each scan is
judged on what lies around it, never on what an earlier parcel took, so a missing, extra or
late reading costs the parcel it hit (and its neighbour when their windows overlap), never the
parcels after it. Everything else is a parcel without a weight, with the reason:

- `ambiguous`: two readings in the window, or one that a neighbour's window holds too;
- `overload` / `unsettled`: the scale reported overload, or motion only, in the window;
- `none`: nothing at all in the window.

A scan is judged once no reading or neighbouring scan that matters can still arrive: at
scan + max(offset + window, 2 × window) (a later scan can share a reading only if it comes
within 2 × window). Scans closer together than that are counted (`scans_too_close`): the
settings cannot tell such parcels apart, and the agent raises an alarm.
"""

from __future__ import annotations

from collections import Counter, deque

from edge_agent.config import PairingConfig
from edge_agent.devices.messages import Scan, Weight
from edge_agent.sorting.pairing_parcels import MS, Waiting, WeightMatch
from edge_agent.sorting.scale_readings import SettledReadings

# Recent scan times kept to judge whether a reading lies in another scan's window too.
MAX_RECENT_SCANS = 1024


class WindowPairer:
    def __init__(self, config: PairingConfig, counts: Counter[str]):
        self._offset_ns = config.offset_ms * MS
        self._window_ns = config.window_ms * MS
        # When a scan can be judged, counted from the scan (see the module doc).
        self._judge_after_ns = max(self._offset_ns + self._window_ns, 2 * self._window_ns, 0)
        self._readings = SettledReadings(min_weight_kg=config.min_weight_kg,
                                         gap_ns=config.settle_gap_ms * MS)
        self._recent_scans: deque[int] = deque(maxlen=MAX_RECENT_SCANS)
        self._counts = counts

    def on_scan(self, scan: Scan) -> None:
        stamp = scan.received_ns
        recent = self._recent_scans
        if recent and abs(stamp - recent[-1]) < 2 * self._window_ns:
            self._counts["scans_too_close"] += 1
        if recent and stamp < recent[-1]:  # not expected from one port; keep the order anyway
            recent.append(stamp)
            self._recent_scans = deque(sorted(recent), maxlen=MAX_RECENT_SCANS)
        else:
            recent.append(stamp)

    def on_weight(self, weight: Weight) -> None:
        self._readings.add(weight)

    def due_ns(self, waiting: Waiting) -> int:
        return waiting.scan.received_ns + self._judge_after_ns

    def match(self, waiting: Waiting) -> WeightMatch:
        """The reading that is provably this parcel's, or why there is none."""
        scan_ns = waiting.scan.received_ns
        start = scan_ns + self._offset_ns - self._window_ns
        end = scan_ns + self._offset_ns + self._window_ns
        readings = self._readings
        candidates = readings.between(start, end)
        if len(candidates) > 1:
            return WeightMatch.without("ambiguous")
        if candidates:
            reading = candidates[0]
            if self._claimed_by_another(reading.received_ns):
                return WeightMatch.without("ambiguous")
            return WeightMatch(reading.value_kg, "paired", (reading.received_ns - scan_ns) / MS)
        if readings.any_between(readings.overload_ns, start, end):
            return WeightMatch.without("overload")
        if readings.any_between(readings.motion_ns, start, end):
            return WeightMatch.without("unsettled")
        return WeightMatch.without("none")

    def forget_before(self, oldest_waiting_ns: int | None, now_ns: int) -> None:
        """Drop readings and scans no waiting or future scan can need any more."""
        reach = self._window_ns * 2 + abs(self._offset_ns) + self._judge_after_ns
        horizon = now_ns - reach
        if oldest_waiting_ns is not None:
            horizon = min(horizon, oldest_waiting_ns - reach)
        self._readings.forget_before(horizon)
        while self._recent_scans and self._recent_scans[0] < horizon:
            self._recent_scans.popleft()

    def _claimed_by_another(self, reading_ns: int) -> bool:
        """Whether another scan's window also holds a reading settled at `reading_ns`."""
        low = reading_ns - self._offset_ns - self._window_ns
        high = reading_ns - self._offset_ns + self._window_ns
        holders = 0  # the parcel's own scan is one of them
        for other in reversed(self._recent_scans):
            if other < low:
                break
            if other <= high:
                holders += 1
        return holders > 1
