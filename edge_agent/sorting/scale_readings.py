"""From a scale's frames to platter episodes: one per parcel the scale saw.

A streaming scale (MT-SICS `SIR`, Toledo continuous) sends a frame every few milliseconds: an
empty platter, then a parcel arriving (motion), settling (a run of stable frames with one
value), leaving. Pairing must see that as *one* parcel with one settled reading, and it must
also see a parcel that never settled: a window that holds an unsettled parcel and another
parcel's reading cannot tell which parcel was scanned, so neither reading may be used.

An episode starts at the first non-empty frame after an empty platter (or after a silence
longer than `gap_ns`), or when the platter settles on a new value (another parcel). Its time,
the one pairing compares with the scan, is when it settled, or for one that never did, when it
began. Frames below `min_weight_kg` are an empty platter; frames that could not be read (an
error status) say nothing and are skipped.

A scale that reports once per parcel (a checkweigher's result) makes one episode per report.

A streaming scale is also a clock. Read promptly, it arrives one frame per read; when one read
brings several frames, the host had not read the port since its previous read, for longer than
a frame period: the frames of that read (and any scan read with them) may have arrived at any
time since. The hub cannot always tell (a process the kernel did not run while it waited in
select() looks as if it had been woken on time), so an episode whose time was set by a frame of
such a read may have happened as early as the port's previous read: its `earliest_ns` says so,
and pairing refuses to place it more precisely than that. Without this, two such stalls in a
row (the first holding back one parcel's reading with its scan, the second the next parcel's)
left the first parcel's reading alone in the next parcel's window.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from edge_agent.devices.messages import Weight, WeightStatus

# Episodes kept; at 50 parcels a second this is 20 s, far beyond any pairing window.
MAX_EPISODES = 1024
# Two stable frames whose values differ by more than this (or 0.5 % of the weight) are two
# parcels: a platter that settles on a new value holds a new parcel.
SAME_VALUE_KG = 0.005
SAME_VALUE_FRACTION = 0.005


@dataclass(slots=True)
class Episode:
    """One parcel on the platter, as the scale saw it."""

    received_ns: int  # when it settled (or began, if it never did): the time pairing uses
    earliest_ns: int  # it may have happened this early (stamps are late when the loop was)
    last_ns: int  # its last frame
    value_kg: float | None = None  # the settled weight; None: it never settled
    overload: bool = False

    def same_value(self, value: float) -> bool:
        settled = self.value_kg
        return settled is not None and abs(value - settled) <= max(
            SAME_VALUE_KG, SAME_VALUE_FRACTION * settled)


class PlatterEpisodes:
    def __init__(self, *, min_weight_kg: float, gap_ns: int):
        self._min_weight_kg = min_weight_kg
        self._gap_ns = gap_ns
        self.episodes: deque[Episode] = deque(maxlen=MAX_EPISODES)
        # The episode the last frame belonged to: kept apart from `episodes`, which forgets
        # old entries, so a parcel resting on the platter for long never starts a second one.
        self._current: Episode | None = None
        # The port's reads, told apart by their stamps (the codec stamps every frame of one
        # read alike): the current read, the one before it, how many frames the current one
        # brought, and the episodes whose time a frame of it set (see the module doc).
        self._read_ns: int | None = None
        self._previous_read_ns: int | None = None
        self._frames_in_read = 0
        self._timed_in_read: list[Episode] = []

    def add(self, weight: Weight, stamp_error_ns: int = 0) -> None:
        stamp = weight.received_ns
        self._count_read(stamp)
        current = self._current
        if current is not None and not 0 <= stamp - current.last_ns <= self._gap_ns:
            current = self._current = None  # a silence: whatever was there has gone
        if weight.status == WeightStatus.OVERLOAD:
            if current is None or current.value_kg is not None:
                current = self._start(stamp, stamp_error_ns)
            current.overload = True
            current.last_ns = stamp
            return
        value = weight.value_kg
        if weight.status != WeightStatus.OK or value is None:
            return  # an unreadable frame says nothing about the platter
        if value < self._min_weight_kg:
            self._current = None  # an empty platter ends the episode
            return
        if not weight.stable:
            if current is None:
                current = self._start(stamp, stamp_error_ns)
            current.last_ns = stamp
            return
        if current is None or (current.value_kg is not None and not current.same_value(value)):
            current = self._start(stamp, stamp_error_ns)
        if current.value_kg is None:  # it settles now: that is its time
            current.value_kg = value
            current.received_ns, current.earliest_ns = stamp, stamp - stamp_error_ns
            self._timed(current)
        current.last_ns = stamp

    def between(self, start_ns: int, end_ns: int) -> list[Episode]:
        """Episodes that may have settled (or begun, if unsettled) within [start_ns, end_ns]."""
        return [e for e in self.episodes if e.earliest_ns <= end_ns and e.received_ns >= start_ns]

    def forget_before(self, horizon_ns: int) -> None:
        """Drop episodes of before `horizon_ns`: no waiting or future scan can claim them."""
        episodes = self.episodes
        while episodes and episodes[0].received_ns < horizon_ns:
            episodes.popleft()

    def _start(self, stamp: int, stamp_error_ns: int) -> Episode:
        episode = self._current = Episode(stamp, stamp - stamp_error_ns, stamp)
        self.episodes.append(episode)
        self._timed(episode)
        return episode

    def _count_read(self, stamp: int) -> None:
        if stamp != self._read_ns:  # a new read of the port
            self._previous_read_ns, self._read_ns = self._read_ns, stamp
            self._frames_in_read = 0
            self._timed_in_read = []
        self._frames_in_read += 1
        if self._frames_in_read == 2:  # a read of several frames: the host was away
            for episode in self._timed_in_read:
                self._widen(episode)

    def _timed(self, episode: Episode) -> None:
        """A frame of the current read has just set `episode`'s time."""
        if self._frames_in_read >= 2:
            self._widen(episode)
        else:
            self._timed_in_read.append(episode)

    def _widen(self, episode: Episode) -> None:
        if self._previous_read_ns is not None:
            episode.earliest_ns = min(episode.earliest_ns, self._previous_read_ns)
