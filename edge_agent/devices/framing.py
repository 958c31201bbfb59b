"""Framers: bytes in, complete frames out. Pure: no I/O, no clock of their own.

Each framer takes chunks as the port delivers them, stamped with the monotonic time they were
read, and returns the frames they complete. Garbage between frames is skipped up to the next
start marker and counted. Buffers are bounded: a frame longer than its profile's limit (a flood
with no terminator, a lost end marker) is counted as an overflow and dropped, and the framer
resynchronises, so no input can grow memory. The same bytes give the same frames however they are
split into chunks (idle-gap framing aside, where time is part of the framing).

The hot path is one call per chunk: every search is a `bytes.find`/regex scan done in C, and
searches resume where the previous chunk's search stopped, so feeding byte by byte stays linear.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass
from typing import NamedTuple


class Frame(NamedTuple):
    raw: bytes  # the whole frame as it came off the wire, markers included
    body: bytes  # the payload: without start/end markers, terminators and trailer
    received_ns: int  # when the byte that completed the frame was read


@dataclass(slots=True)
class Counters:
    """Per-port counters, shared by a codec's framer and decoder."""

    frames: int = 0  # complete frames handed to the decoder
    garbage_bytes: int = 0  # bytes dropped outside frames (noise, overflowed frames)
    decode_errors: int = 0  # frames the decoder could not make sense of
    overflows: int = 0  # frames dropped for being longer than the profile's max_length

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class Framer(ABC):
    """Base: subclasses implement `feed`; idle-gap framing adds `flush` and a deadline."""

    max_buffer: int  # the buffer never holds more than this between calls

    def __init__(self, counters: Counters | None = None):
        self.counters = counters or Counters()
        self._buf = bytearray()

    @abstractmethod
    def feed(self, data: bytes, now_ns: int) -> list[Frame]:
        """Take a chunk of bytes that arrived at `now_ns`; return the frames it completed."""

    def flush(self, now_ns: int) -> list[Frame]:
        return []

    def next_deadline_ns(self) -> int | None:
        return None

    def reset(self) -> None:
        """Drop any partial frame (after a reconnect the rest of it will never come)."""
        self._buf.clear()

    @property
    def buffered(self) -> int:
        return len(self._buf)


def skip_to_marker(
    buf: bytearray, marker: bytes, pos: int, counters: Counters
) -> tuple[int, bool]:
    """Skip from `pos` to the next `marker`, counting what is skipped as garbage: (where it
    begins, True), or without one in `buf`, (where its beginning could be, False): the last
    len(marker) - 1 bytes are kept since more data may complete it."""
    found = buf.find(marker, pos)
    if found < 0:
        found = max(pos, len(buf) - (len(marker) - 1))
        counters.garbage_bytes += found - pos
        return found, False
    counters.garbage_bytes += found - pos
    return found, True


def _terminator_search(terminators: list[bytes]):
    """A function (buffer, start) -> (index, length) of the first terminator, or (-1, 0)."""
    if len(terminators) == 1:
        (term,) = terminators
        size = len(term)

        def find_one(buf: bytearray, start: int) -> tuple[int, int]:
            index = buf.find(term, start)
            return index, size

        return find_one
    # Longest first, so that at one position the longer alternative wins.
    pattern = re.compile(
        b"|".join(re.escape(t) for t in sorted(terminators, key=len, reverse=True))
    )

    def find_any(buf: bytearray, start: int) -> tuple[int, int]:
        match = pattern.search(buf, start)
        return (match.start(), match.end() - match.start()) if match else (-1, 0)

    return find_any


class StreamFramer(Framer):
    """Frames end at a terminator, at a quiet gap on the line, or both.

    Empty frames (the LF after a CR when both end frames) are skipped. A frame that grows past
    max_length is dropped, and so is the rest of it up to the next terminator (or gap).
    """

    def __init__(
        self,
        terminators: list[bytes],
        max_length: int,
        gap_ns: int | None = None,
        counters: Counters | None = None,
    ):
        super().__init__(counters)
        if not terminators and gap_ns is None:
            raise ValueError("a stream framer needs terminators, an idle gap, or both")
        self.max_length = max_length
        # With terminators a partial frame lacks at least its terminator's last byte.
        self.max_buffer = max_length - 1 if terminators else max_length
        self._find = _terminator_search(terminators) if terminators else None
        self._lookback = max((len(t) for t in terminators), default=1) - 1
        self._gap_ns = gap_ns
        self._searched = 0  # buffer offset before which no terminator can start
        self._discarding = False  # inside an overlong frame: drop up to its end
        self._last_ns = 0  # when the last byte arrived (idle-gap framing)

    def reset(self) -> None:
        super().reset()
        self._searched = 0
        self._discarding = False

    def feed(self, data: bytes, now_ns: int) -> list[Frame]:
        frames = self._gap_passed(now_ns) if self._gap_ns is not None else []
        if not data:
            return frames
        buf = self._buf
        buf += data
        self._last_ns = now_ns
        pos = 0
        if self._find is not None:
            counters = self.counters
            while True:
                end, size = self._find(buf, max(pos, self._searched))
                if end < 0:
                    break
                stop = end + size
                if self._discarding or stop - pos > self.max_length:
                    if not self._discarding:
                        counters.overflows += 1
                    counters.garbage_bytes += stop - pos
                    self._discarding = False
                elif end > pos:
                    counters.frames += 1
                    frames.append(Frame(bytes(buf[pos:stop]), bytes(buf[pos:end]), now_ns))
                pos = stop
            self._searched = max(len(buf) - self._lookback, pos)
        if pos:
            del buf[:pos]
            self._searched -= pos
        if self._discarding or len(buf) > self.max_buffer:
            # No terminator within max_length: whatever comes, this frame is too long.
            if not self._discarding:
                self.counters.overflows += 1
                self._discarding = True
            drop = max(0, len(buf) - self._lookback)  # a terminator may have begun at the end
            self.counters.garbage_bytes += drop
            del buf[:drop]
            self._searched = 0
        return frames

    def flush(self, now_ns: int) -> list[Frame]:
        return self._gap_passed(now_ns) if self._gap_ns is not None else []

    def next_deadline_ns(self) -> int | None:
        if self._gap_ns is None or not (self._buf or self._discarding):
            return None
        return self._last_ns + self._gap_ns

    def _gap_passed(self, now_ns: int) -> list[Frame]:
        """The line was quiet long enough: what is buffered is a whole frame."""
        if now_ns - self._last_ns < self._gap_ns or not (self._buf or self._discarding):  # type: ignore[operator]
            return []
        frames = []
        if self._discarding:
            self.counters.garbage_bytes += len(self._buf)
        else:
            self.counters.frames += 1
            raw = bytes(self._buf)
            frames.append(Frame(raw, raw, self._last_ns))
        self.reset()
        return frames


class StartEndFramer(Framer):
    """Frames from a start marker to an end marker, plus a fixed-size trailer (checksum)."""

    def __init__(
        self,
        start: bytes,
        end: bytes,
        max_length: int,
        trailer_length: int = 0,
        restart_on_start: bool = True,
        counters: Counters | None = None,
    ):
        super().__init__(counters)
        self.start, self.end = start, end
        self.max_length = max_length
        self.max_buffer = max_length - 1
        self.trailer_length = trailer_length
        self.restart_on_start = restart_on_start
        self._searched = 0  # offset before which neither marker can start (inside a frame)

    def reset(self) -> None:
        super().reset()
        self._searched = 0

    def feed(self, data: bytes, now_ns: int) -> list[Frame]:
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        counters = self.counters
        start, end, slen, elen = self.start, self.end, len(self.start), len(self.end)
        pos = 0
        while True:
            if not buf.startswith(start, pos):
                pos, found = skip_to_marker(buf, start, pos, counters)
                self._searched = 0
                if not found:
                    break
            body_from = pos + slen
            stop = buf.find(end, max(body_from, self._searched))
            if self.restart_on_start:
                # A new start marker before the end: the frame begun at pos was cut off.
                restart = buf.rfind(
                    start, max(body_from, self._searched), len(buf) if stop < 0 else stop
                )
                if restart >= 0:
                    counters.garbage_bytes += restart - pos
                    pos = restart
                    body_from = pos + slen
            # The shortest this frame can turn out: a missing end needs one more byte at least.
            frame_end = stop + elen + self.trailer_length if stop >= 0 else len(buf) + 1
            if frame_end - pos > self.max_length:
                pos = self._overflow(pos)
                continue
            if frame_end > len(buf):
                # Wait for more bytes; resume the marker search where this one stopped.
                self._searched = (
                    max(body_from, len(buf) - max(slen, elen) + 1) if stop < 0 else stop
                )
                break
            counters.frames += 1
            frames.append(Frame(bytes(buf[pos:frame_end]), bytes(buf[body_from:stop]), now_ns))
            pos = frame_end
            self._searched = 0
        if pos:
            del buf[:pos]
            self._searched = max(0, self._searched - pos)
        return frames

    def _overflow(self, pos: int) -> int:
        """Drop the overlong frame's start marker; the search goes on for the next one."""
        self.counters.overflows += 1
        self.counters.garbage_bytes += len(self.start)
        self._searched = 0
        return pos + len(self.start)


class FixedLengthFramer(Framer):
    """Frames of exactly `length` bytes, aligned on a start marker and checked against `end`."""

    def __init__(
        self,
        length: int,
        start: bytes | None = None,
        end: bytes | None = None,
        counters: Counters | None = None,
    ):
        super().__init__(counters)
        self.length, self.start, self.end = length, start, end
        self.max_buffer = length - 1
        self._hunting = False  # misaligned with no start marker: drop through the next end marker

    def reset(self) -> None:
        super().reset()
        self._hunting = False

    def feed(self, data: bytes, now_ns: int) -> list[Frame]:
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        counters = self.counters
        start, end, length = self.start, self.end, self.length
        pos = 0
        while True:
            if self._hunting:
                assert end is not None
                pos, found = skip_to_marker(buf, end, pos, counters)
                if not found:
                    break
                counters.garbage_bytes += len(end)  # the end marker closes the garbage
                pos += len(end)
                self._hunting = False
            if start is not None and not buf.startswith(start, pos):
                pos, found = skip_to_marker(buf, start, pos, counters)
                if not found:
                    break
            if len(buf) - pos < length:
                break
            stop = pos + length
            if end is not None and not buf.startswith(end, stop - len(end)):
                # Misaligned: try the next start marker, or without one resync after an end marker.
                if start is not None:
                    counters.garbage_bytes += 1
                    pos += 1
                else:
                    self._hunting = True
                continue
            counters.frames += 1
            body_from = pos + (len(start) if start else 0)
            body_to = stop - (len(end) if end else 0)
            frames.append(Frame(bytes(buf[pos:stop]), bytes(buf[body_from:body_to]), now_ns))
            pos = stop
        if pos:
            del buf[:pos]
        return frames
