"""From a scale's frames to settled readings: one reading per time the platter settled.

A streaming scale (MT-SICS `SIR`, Toledo continuous) sends a frame every few milliseconds, and
a parcel that rests on the platter yields a run of stable frames with the same value. Pairing
must see that run as one reading, stamped when it first settled, or a parcel would seem to have
several readings. Motion, a status other than ok, a value that changes, or a silence longer
than `gap_ns` ends a run; the next stable frame starts a new reading.

Frames below `min_weight_kg` are an empty platter, not a parcel: they end a run and are no
reading. Motion and overload frames are remembered (by arrival time) so pairing can say *why*
a parcel has no weight: it never settled, or the scale was overloaded.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from edge_agent.devices.messages import Weight, WeightStatus

# Readings kept; at 50 readings a second this is 20 s, far beyond any pairing window.
MAX_READINGS = 1024
# Motion and overload frames remembered: a streaming scale sends ~50 a second, so 2,048 is
# ~40 s, far beyond any pairing window.
MAX_MARKS = 2048
# Two stable frames whose values differ by more than this (or 0.5 % of the weight) are two
# readings: a platter that settles on a new value holds a new parcel.
SAME_VALUE_KG = 0.005
SAME_VALUE_FRACTION = 0.005


@dataclass(slots=True)
class Reading:
    """A settled weight: the first stable frame of a run and the run's last frame time."""

    received_ns: int  # when the run's first stable frame arrived: the time pairing uses
    value_kg: float
    last_ns: int


class SettledReadings:
    def __init__(self, *, min_weight_kg: float, gap_ns: int):
        self._min_weight_kg = min_weight_kg
        self._gap_ns = gap_ns
        self.readings: deque[Reading] = deque(maxlen=MAX_READINGS)
        self.motion_ns: deque[int] = deque(maxlen=MAX_MARKS)
        self.overload_ns: deque[int] = deque(maxlen=MAX_MARKS)
        # The run the last frame belonged to, if it was stable: kept apart from `readings`, which
        # forgets old entries, so a parcel resting on the platter for long never becomes a
        # second reading when its run's first frame is forgotten.
        self._run: Reading | None = None

    def add(self, weight: Weight) -> None:
        stamp = weight.received_ns
        if weight.status == WeightStatus.OVERLOAD:
            self.overload_ns.append(stamp)
            self._run = None
            return
        value = weight.value_kg
        if weight.status != WeightStatus.OK or value is None or value < self._min_weight_kg:
            self._run = None  # an empty platter or an error frame ends a run
            return
        if not weight.stable:
            self.motion_ns.append(stamp)
            self._run = None
            return
        run = self._run
        if (run is not None and 0 <= stamp - run.last_ns <= self._gap_ns
                and abs(value - run.value_kg) <= max(SAME_VALUE_KG,
                                                     SAME_VALUE_FRACTION * run.value_kg)):
            run.last_ns = stamp
            return
        self._run = Reading(stamp, value, stamp)
        self.readings.append(self._run)

    def between(self, start_ns: int, end_ns: int) -> list[Reading]:
        """Readings that settled within [start_ns, end_ns]."""
        return [r for r in self.readings if start_ns <= r.received_ns <= end_ns]

    @staticmethod
    def any_between(marks: deque[int], start_ns: int, end_ns: int) -> bool:
        return any(start_ns <= mark <= end_ns for mark in reversed(marks))

    def forget_before(self, horizon_ns: int) -> None:
        """Drop what settled before `horizon_ns`: no waiting or future scan can claim it."""
        for marks in (self.readings, self.motion_ns, self.overload_ns):
            while marks and _stamp(marks[0]) < horizon_ns:
                marks.popleft()


def _stamp(mark: Reading | int) -> int:
    return mark.received_ns if isinstance(mark, Reading) else mark
