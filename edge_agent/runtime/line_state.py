"""What the running agent knows about its line besides the parcels in flight.

Lane states (from the sorter's FULL/CLEAR and from central's lanes.set, persisted so a lane
blocked for maintenance stays blocked across a restart), counters, and a bounded record of
recent latencies and decisions for the status socket and telemetry.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from edge_agent.runtime.latency_window import LatencyWindow
from edge_agent.sorting.decision import Decision
from edge_agent.sorting.lanes import LaneState
from edge_agent.sorting.rules import RuleSet

# Enough latencies for a stable p99.9 over the last few seconds at full rate.
LATENCY_SAMPLES = 20_000
# Decisions shown by `diag status`.
LAST_DECISIONS = 20

LANES_FILE = "lanes.json"


class LaneStates:
    """Current lane states: central's setting, unless the sorter says the bin is full."""

    def __init__(self, state_dir: Path):
        self._path = state_dir / LANES_FILE
        self._set_by_central: dict[str, LaneState] = _read_lane_file(self._path)
        self._full_bins: set[int] = set()
        self._bins: dict[int, str] = {}
        self.snapshot: Mapping[str, LaneState] = {}

    def use_rules(self, rules: RuleSet) -> None:
        self._bins = {lane.bin: name for name, lane in rules.lanes.items()}
        self._refresh()

    def lane_for_bin(self, bin_: int) -> str | None:
        return self._bins.get(bin_)

    def set_by_central(self, lane: str, state: LaneState) -> None:
        if lane not in self._bins.values():
            raise KeyError(lane)
        self._set_by_central[lane] = state
        _write_lane_file(self._path, self._set_by_central)
        self._refresh()

    def set_bin_full(self, bin_: int, full: bool) -> None:
        if full:
            self._full_bins.add(bin_)
        else:
            self._full_bins.discard(bin_)
        self._refresh()

    def _refresh(self) -> None:
        states = {
            name: self._set_by_central.get(name, LaneState.OPEN) for name in self._bins.values()
        }
        for bin_ in self._full_bins:
            name = self._bins.get(bin_)
            if name is not None and states[name] == LaneState.OPEN:
                states[name] = LaneState.FULL
        # Decisions read this mapping; it is replaced whole, never changed in place.
        self.snapshot = states


def _read_lane_file(path: Path) -> dict[str, LaneState]:
    """Lane states central set before a restart; an unreadable file means all open (logged)."""
    try:
        data = json.loads(path.read_text())
        return {str(lane): LaneState(state) for lane, state in data.items()}
    except FileNotFoundError:
        return {}
    except (ValueError, AttributeError, OSError):
        import structlog

        structlog.get_logger(__name__).warning("lanes.file_unreadable", path=str(path))
        return {}


def _write_lane_file(path: Path, states: Mapping[str, LaneState]) -> None:
    atomic_write(path, json.dumps({lane: state.value for lane, state in states.items()}))


def atomic_write(path: Path, text: str) -> None:
    """Write a small file so that a crash leaves either the old or the new content."""
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    with contextlib.suppress(OSError):
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


class LineCounters:
    """Monotonic totals since start, plus bounded recent history."""

    def __init__(self) -> None:
        # The totals every status and telemetry shows, zero before the first parcel.
        self.totals: collections.Counter[str] = collections.Counter(dict.fromkeys(
            ("scans", "weights", "parcels", "acks"), 0))
        self.by_lane: collections.Counter[str] = collections.Counter()
        self.exceptions_by_reason: collections.Counter[str] = collections.Counter()
        self.latencies_us = LatencyWindow(LATENCY_SAMPLES)
        # Kept as they are and formatted only when the status is read (a few times a second),
        # not on the hot path for every parcel.
        self.last_decisions: collections.deque[tuple[Decision, float]] = collections.deque(
            maxlen=LAST_DECISIONS
        )

    def record_decision(self, decision: Decision, latency_us: float, exception_lane: str) -> None:
        self.totals["parcels"] += 1
        self.latencies_us.append(latency_us)
        self.by_lane[decision.lane] += 1
        if decision.lane == exception_lane:
            for reason in decision.reasons or ("unspecified",):
                self.exceptions_by_reason[reason] += 1
        self.last_decisions.append((decision, latency_us))

    def recent_decisions(self) -> list[dict[str, Any]]:
        return [
            {"at": decision.decided_at.isoformat(timespec="milliseconds"),
             "parcel": decision.parcel_id, "barcode": decision.barcode, "lane": decision.lane,
             "bin": decision.bin, "reasons": list(decision.reasons),
             "latency_ms": round(latency_us / 1000, 3)}
            for decision, latency_us in self.last_decisions
        ]

    def latency_percentiles(self) -> dict[str, float | None]:
        return self.latencies_us.percentiles()
