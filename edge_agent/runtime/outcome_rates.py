"""Outcome rates per lane over its recent parcels, with alarms when one crosses its limit.

A sorter that starts missing its divert window (commands too late), a bin whose photo-eye
reports it full, a tracking fault that loses parcels: each shows first as one outcome's share
of a lane's parcels rising. Each lane keeps its last `outcome_window_parcels` outcomes; an
outcome with a limit in `sorter.max_outcome_rates` raises `sorter_<outcome>_rate` for the lane
once the lane has `outcome_min_parcels` in its window and the share passes the limit, and clears
it when the share falls under 80 % of the limit (so a rate hovering at its limit does not flap).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass
from typing import Any

from edge_agent.config import SorterConfig

# A raised alarm clears below this share of its limit (as input health's do).
CLEAR_FRACTION = 0.8


@dataclass(frozen=True)
class RateChange:
    lane: str
    outcome: str
    raised: bool  # False: cleared
    value: float
    limit: float
    parcels: int

    @property
    def alarm(self) -> str:
        return f"sorter_{self.outcome}_rate"

    def message(self) -> str:
        verb = "above" if self.raised else "back under"
        return (f"lane {self.lane}: {self.outcome.replace('_', ' ')} rate {self.value:.3f} "
                f"{verb} its limit {self.limit}")


class _LaneWindow:
    def __init__(self, size: int):
        self.outcomes: deque[str] = deque(maxlen=size)
        self.counts: Counter[str] = Counter()

    def add(self, outcome: str) -> None:
        if len(self.outcomes) == self.outcomes.maxlen:
            self.counts[self.outcomes[0]] -= 1
        self.outcomes.append(outcome)
        self.counts[outcome] += 1


class OutcomeRates:
    def __init__(self, config: SorterConfig):
        self._window = config.outcome_window_parcels
        self._min = config.outcome_min_parcels
        self._limits = dict(config.max_outcome_rates)
        self._lanes: dict[str, _LaneWindow] = {}
        self._active: set[tuple[str, str]] = set()  # (lane, outcome) alarms raised

    def record(self, lane: str, outcome: str) -> list[RateChange]:
        """Count one outcome; the alarms this raised or cleared for the lane."""
        window = self._lanes.get(lane)
        if window is None:
            window = self._lanes[lane] = _LaneWindow(self._window)
        window.add(outcome)
        parcels = len(window.outcomes)
        if parcels < self._min:
            return []
        changes = []
        for name, limit in self._limits.items():
            value = window.counts[name] / parcels
            key = (lane, name)
            if key not in self._active and value > limit:
                self._active.add(key)
                changes.append(RateChange(lane, name, True, value, limit, parcels))
            elif key in self._active and value < CLEAR_FRACTION * limit:
                self._active.discard(key)
                changes.append(RateChange(lane, name, False, value, limit, parcels))
        return changes

    def view(self) -> dict[str, Any]:
        """Per lane: the window's share of each outcome seen, and the alarms raised."""
        lanes = {}
        for lane, window in self._lanes.items():
            parcels = len(window.outcomes)
            lanes[lane] = {"parcels": parcels, "rates": {
                name: round(count / parcels, 4) for name, count in window.counts.items() if count
            }}
        return {"window_parcels": self._window, "lanes": lanes,
                "alarms_active": sorted(f"{lane}:{name}" for lane, name in self._active)}
