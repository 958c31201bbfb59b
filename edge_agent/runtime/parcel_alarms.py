"""Alarms about single parcels, batched while a fault repeats.

A missing acknowledgement, a refused lane command or an unreachable sorter concerns one parcel,
but such faults come in runs: a sorter that stops acknowledging at 500 parcels/s would raise
500 alarms a second, doubling what the outbox stores and central receives while the line is
already in trouble (a scanner flood in the fault suite raised 25,669 of them). So the first
occurrence of an alarm is raised at once, and the ones that follow within `REPEAT_PERIOD_S`
are collected and raised together when the period ends: one alarm with their count and the
parcels concerned (the first `MAX_PARCELS_LISTED` of them). Every alarm has the same shape,
whether it covers one parcel or many:

    details = {"count": 3, "parcels": [{"parcel_id": ..., "bin": ...}, ...], "omitted": 0,
               **the details every parcel of the alarm shares (e.g. the ack timeout)}
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

# At most one alarm of a kind per this many seconds while its fault repeats.
REPEAT_PERIOD_S = 1.0
# Parcels listed in one alarm; more are counted in `omitted` (an alarm stays a few KB).
MAX_PARCELS_LISTED = 100

RaiseAlarm = Callable[[str, str, str, dict[str, Any]], None]


@dataclass
class _Batch:
    severity: str
    what: str
    shared: dict[str, Any]
    parcels: list[dict[str, Any]] = field(default_factory=list)
    count: int = 0

    def add(self, parcel: dict[str, Any]) -> None:
        self.count += 1
        if len(self.parcels) < MAX_PARCELS_LISTED:
            self.parcels.append(parcel)

    def message(self) -> str:
        if self.count == 1:
            return f"{self.what}: parcel {self.parcels[0]['parcel_id']}"
        return f"{self.what}: {self.count} parcels"

    def details(self) -> dict[str, Any]:
        return {**self.shared, "count": self.count, "parcels": self.parcels,
                "omitted": self.count - len(self.parcels)}


class ParcelAlarms:
    """Raises per-parcel alarms through `raise_alarm`, at most one per kind per period."""

    def __init__(self, raise_alarm: RaiseAlarm, period_s: float | None = None):
        self._raise_alarm = raise_alarm
        self._period_s = REPEAT_PERIOD_S if period_s is None else period_s
        self._pending: dict[str, _Batch] = {}
        self._quiet_until: dict[str, float] = {}  # alarm name -> end of its current period

    def report(self, alarm: str, severity: str, what: str, parcel: dict[str, Any],
               shared: dict[str, Any], now: float) -> None:
        """One parcel's fault. `what` says what went wrong (the message without the parcel),
        `parcel` what is particular to this parcel, `shared` what every parcel of the run has
        in common (taken from the first)."""
        batch = self._pending.get(alarm)
        if batch is None:
            batch = self._pending[alarm] = _Batch(severity, what, dict(shared))
        batch.add(parcel)
        if now >= self._quiet_until.get(alarm, float("-inf")):
            self._raise(alarm, now)  # the first of a run: at once

    def flush(self, now: float, everything: bool = False) -> None:
        """Raise each batch whose period has ended (every batch with `everything`, at stop)."""
        for alarm in list(self._pending):
            if everything or now >= self._quiet_until[alarm]:
                self._raise(alarm, now)

    def pending(self) -> int:
        """Parcels reported but not raised yet."""
        return sum(batch.count for batch in self._pending.values())

    def _raise(self, alarm: str, now: float) -> None:
        batch = self._pending.pop(alarm)
        self._quiet_until[alarm] = now + self._period_s
        self._raise_alarm(alarm, batch.severity, batch.message(), batch.details())
