"""Unique, time-ordered ids for parcels and events (UUIDv7 layout, RFC 9562).

48 bits of Unix milliseconds, then a 74-bit counter/random tail. Ids from one process are strictly
increasing even when the wall clock steps backwards (NTP correction, RTC-less boot): the
generator never goes below the last timestamp it issued and bumps a counter within one
millisecond instead. Across restarts, `IdGenerator(floor_ms=...)` lets the caller resume above
the last id it persisted.
"""

from __future__ import annotations

import random
import threading
import time
import uuid

_COUNTER_BITS = 12  # the UUIDv7 `rand_a` field, used as a counter within one millisecond
_COUNTER_MAX = (1 << _COUNTER_BITS) - 1
_tail_random = random.Random()  # seeded from os.urandom by the random module


class IdGenerator:
    def __init__(self, floor_ms: int = 0, clock_ms=None):
        self._clock_ms = clock_ms or (lambda: time.time_ns() // 1_000_000)
        self._last_ms = floor_ms
        self._counter = 0
        self._lock = threading.Lock()

    def new(self) -> str:
        """A new id as 32 lowercase hex digits (no dashes: it travels in serial commands too)."""
        with self._lock:
            now = self._clock_ms()
            if now > self._last_ms:
                self._last_ms, self._counter = now, 0
            elif self._counter < _COUNTER_MAX:
                self._counter += 1
            else:  # 4096 ids in one millisecond (or a clock stuck behind): borrow the next one
                self._last_ms, self._counter = self._last_ms + 1, 0
            ms, counter = self._last_ms, self._counter
        # The tail only has to make ids from different agents differ: a PRNG seeded from the
        # OS at start does that without a system call per id (two ids per parcel).
        tail = _tail_random.getrandbits(62)
        value = (ms & ((1 << 48) - 1)) << 80 | 0x7 << 76 | counter << 64 | 0b10 << 62 | tail
        return f"{value:032x}"

    @property
    def last_ms(self) -> int:
        return self._last_ms


def id_time_ms(id_hex: str) -> int:
    """The Unix milliseconds an id was made at."""
    return int(id_hex[:12], 16)


def as_uuid(id_hex: str) -> uuid.UUID:
    return uuid.UUID(hex=id_hex)


_default = IdGenerator()


def new_id() -> str:
    return _default.new()
