"""Pairing by the line's geometry: a parcel's reading settles at a known offset from its scan.

Scanner and scale sit at fixed places on the belt, so a parcel's reading arrives `offset_ms`
after its scan (negative: before it), give or take `window_ms` of jitter. Each scan therefore
owns a window [scan + offset - window, scan + offset + window], and parcels cannot overtake
each other on a belt.

The rule that keeps one fault from spreading: a scan gets a reading only when exactly one
parcel's episode on the scale (edge_agent.sorting.scale_readings) falls in its window, that
episode settled, and no other scan's window holds it. Each scan is
judged on what lies around it, never on what an earlier parcel took, so a missing, extra or
late reading costs the parcel it hit (and its neighbour when their windows overlap), never the
parcels after it. Everything else is a parcel without a weight, with the reason:

- `ambiguous`: two episodes in the window (two readings, or a reading beside a parcel that
  never settled), or one that a neighbour's window holds too;
- `overload` / `unsettled`: the one episode in the window was an overload, or never settled;
- `none`: nothing at all in the window.

A scan is judged once no reading or neighbouring scan that matters can still arrive: at
scan + max(offset + window, 2 × window) (a later scan can share a reading only if it comes
within 2 × window). Scans closer together than that are counted (`scans_too_close`): the
settings cannot tell such parcels apart, and the agent raises an alarm.

Stamps can be late: when the host kept the loop busy, bytes that had waited are stamped when
read (the hub says by how much at most, `stamp_error_ns`). So each scan and reading is an
interval of possible times. A reading is a parcel's only when its whole interval lies inside
the parcel's window for every possible scan time; if it merely may lie in the window, or may
lie in a neighbour's, it is ambiguous. A hiccup then costs the parcels it blurred, never a
neighbour's weight.
"""

from __future__ import annotations

from collections import Counter, deque

from edge_agent.config import PairingConfig
from edge_agent.devices.messages import Scan, Weight
from edge_agent.sorting.pairing_parcels import Waiting, WeightMatch
from edge_agent.sorting.scale_readings import Episode, PlatterEpisodes
from edge_agent.units import NS_PER_MS

# Recent scan times kept to judge whether a reading lies in another scan's window too.
MAX_RECENT_SCANS = 1024


class WindowPairer:
    def __init__(self, config: PairingConfig, counts: Counter[str]):
        self._offset_ns = config.offset_ms * NS_PER_MS
        self._window_ns = config.window_ms * NS_PER_MS
        # When a scan can be judged, counted from the scan (see the module doc).
        self._judge_after_ns = max(self._offset_ns + self._window_ns, 2 * self._window_ns, 0)
        self._episodes = PlatterEpisodes(min_weight_kg=config.min_weight_kg,
                                         gap_ns=config.settle_gap_ms * NS_PER_MS)
        # (earliest, stamp) of recent scans, in stamp order.
        self._recent_scans: deque[tuple[int, int]] = deque(maxlen=MAX_RECENT_SCANS)
        self._counts = counts

    def on_scan(self, scan: Scan, stamp_error_ns: int = 0) -> None:
        stamp = scan.received_ns
        recent = self._recent_scans
        if recent and abs(stamp - recent[-1][1]) < 2 * self._window_ns:
            self._counts["scans_too_close"] += 1
        recent.append((stamp - stamp_error_ns, stamp))
        if len(recent) > 1 and stamp < recent[-2][1]:  # not expected from one port
            self._recent_scans = deque(sorted(recent, key=lambda t: t[1]),
                                       maxlen=MAX_RECENT_SCANS)

    def on_weight(self, weight: Weight, stamp_error_ns: int = 0) -> None:
        self._episodes.add(weight, stamp_error_ns)

    def due_ns(self, waiting: Waiting) -> int:
        # +1: everything stamped up to the window's end must have been handed over.
        return waiting.scan.received_ns + self._judge_after_ns + 1

    def match(self, waiting: Waiting) -> WeightMatch:
        """The reading that is provably this parcel's, or why there is none."""
        scan_ns = waiting.scan.received_ns
        scan_earliest = scan_ns - waiting.stamp_error_ns
        reach_low = self._offset_ns - self._window_ns
        reach_high = self._offset_ns + self._window_ns
        start, end = scan_earliest + reach_low, scan_ns + reach_high  # where it may lie
        candidates = self._episodes.between(start, end)
        if not candidates:
            return WeightMatch.without("none")
        if len(candidates) > 1:
            return WeightMatch.without("ambiguous")
        episode = candidates[0]
        surely_inside = (scan_ns + reach_low <= episode.earliest_ns
                         and episode.received_ns <= scan_earliest + reach_high)
        if not surely_inside or self._claimed_by_another(episode):
            return WeightMatch.without("ambiguous")
        offset_ms = (episode.received_ns - scan_ns) / NS_PER_MS
        if episode.overload:
            return WeightMatch(None, "overload", offset_ms)
        if episode.value_kg is None:
            return WeightMatch(None, "unsettled", offset_ms)
        return WeightMatch(episode.value_kg, "paired", offset_ms)

    def forget_before(self, oldest_waiting_ns: int | None, now_ns: int) -> None:
        """Drop readings and scans no waiting or future scan can need any more."""
        reach = self._window_ns * 2 + abs(self._offset_ns) + self._judge_after_ns
        horizon = now_ns - reach
        if oldest_waiting_ns is not None:
            horizon = min(horizon, oldest_waiting_ns - reach)
        self._episodes.forget_before(horizon)
        while self._recent_scans and self._recent_scans[0][1] < horizon:
            self._recent_scans.popleft()

    def _claimed_by_another(self, episode: Episode) -> bool:
        """Whether another scan's window may also hold `episode`."""
        low = episode.earliest_ns - self._offset_ns - self._window_ns
        high = episode.received_ns - self._offset_ns + self._window_ns
        holders = 0  # the parcel's own scan is one of them
        for earliest, stamp in reversed(self._recent_scans):
            if stamp < low:
                break
            if earliest <= high:
                holders += 1
        return holders > 1
