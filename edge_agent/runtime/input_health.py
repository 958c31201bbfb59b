"""Input health: the rates that predict misroutes, seen by a technician before central sees them.

A dirty scanner window shows as a rising no-read rate, a scale that needs service as parcels that
never settle, traffic the pairing settings cannot separate as ambiguous pairings, and a scale that
drifts as a bias against the weights shippers declared. Each is measured over the last
`window_parcels` parcels; the bias is the median of (measured - declared) / declared, a robust
statistic that a few mis-declared parcels do not move.

An alarm is raised when a rate crosses its limit (once `min_parcels` were seen) and cleared when
it falls back under 80 % of the limit, so a rate hovering at the limit does not flap.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass
from typing import Any

from edge_agent.config import HealthConfig
from edge_agent.sorting.decision import Decision

# A raised alarm clears below this share of its limit.
CLEAR_FRACTION = 0.8


@dataclass(frozen=True)
class HealthAlarm:
    alarm: str  # e.g. "scanner_no_read_rate"
    raised: bool  # False: cleared
    value: float
    limit: float
    samples: int

    def message(self) -> str:
        verb = "above" if self.raised else "back under"
        return f"{self.alarm.replace('_', ' ')} {self.value:.3f} {verb} its limit {self.limit}"


class _Rate:
    def __init__(self, window: int):
        self._flags: deque[bool] = deque(maxlen=window)
        self._hits = 0

    def add(self, hit: bool) -> None:
        if len(self._flags) == self._flags.maxlen and self._flags[0]:
            self._hits -= 1
        self._flags.append(hit)
        self._hits += hit

    def value(self) -> float:
        return self._hits / len(self._flags) if self._flags else 0.0

    def __len__(self) -> int:
        return len(self._flags)


class InputHealth:
    def __init__(self, limits: HealthConfig):
        self._limits = limits
        window = limits.window_parcels
        self._no_read = _Rate(window)
        self._unsettled = _Rate(window)
        self._ambiguous = _Rate(window)
        self._bias: deque[float] = deque(maxlen=window)
        self._active: set[str] = set()

    def record(self, decision: Decision) -> None:
        inputs = decision.inputs
        self._no_read.add(inputs.no_read)
        pairing = inputs.weight_pairing
        self._unsettled.add(pairing == "unsettled")
        self._ambiguous.add(pairing == "ambiguous")
        declared, measured = inputs.declared_weight_kg, inputs.weight_kg
        if declared and measured is not None and declared > 0:
            self._bias.append((measured - declared) / declared)

    def check(self) -> list[HealthAlarm]:
        """The alarms whose state changed since the last check."""
        limits = self._limits
        changes = []
        for alarm, value, limit, samples in self._measures():
            if samples < limits.min_parcels:
                continue
            active = alarm in self._active
            if not active and abs(value) > limit:
                self._active.add(alarm)
                changes.append(HealthAlarm(alarm, True, value, limit, samples))
            elif active and abs(value) < CLEAR_FRACTION * limit:
                self._active.discard(alarm)
                changes.append(HealthAlarm(alarm, False, value, limit, samples))
        return changes

    def view(self) -> dict[str, Any]:
        """For `diag status` and telemetry."""
        out: dict[str, Any] = {
            name: {"value": round(value, 4), "limit": limit, "parcels": samples}
            for name, value, limit, samples in self._measures()
        }
        out["alarms_active"] = sorted(self._active)
        return out

    def _measures(self) -> list[tuple[str, float, float, int]]:
        limits = self._limits
        bias = statistics.median(self._bias) if self._bias else 0.0
        return [
            ("scanner_no_read_rate", self._no_read.value(), limits.max_no_read_rate,
             len(self._no_read)),
            ("scale_unsettled_rate", self._unsettled.value(), limits.max_unsettled_rate,
             len(self._unsettled)),
            ("pairing_ambiguous_rate", self._ambiguous.value(), limits.max_ambiguous_rate,
             len(self._ambiguous)),
            ("scale_bias_fraction", bias, limits.max_scale_bias_fraction, len(self._bias)),
        ]
