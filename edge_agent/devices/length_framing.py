"""Framing by a binary header that carries the body's length (profiles: `length_header`).

Sorter host protocols put a fixed header (a start marker, then fields such as the message type,
a sequence number and the body's length) in front of each body, with no end marker: the length
is the only way to find where a frame ends. So a corrupted length could swallow the frames after
it; the framer bounds that damage with `max_length`: a header announcing a longer frame is not
believed, and the search for the next start marker resumes one byte later.
"""

from __future__ import annotations

from edge_agent.devices.framing import Counters, Frame, Framer, skip_to_marker
from edge_agent.devices.profiles import LengthHeaderFraming


class LengthHeaderFramer(Framer):
    """Frames of `header_length` + the length in the header; body = the whole frame (the
    decoder reads the header's other fields)."""

    def __init__(self, framing: LengthHeaderFraming, counters: Counters | None = None):
        super().__init__(counters)
        self.start = framing.start
        self.header_length = framing.header_length
        self.length_at = framing.length_offset
        self.length_size = framing.length_size
        self.max_length = framing.max_length
        self.max_buffer = framing.max_length - 1

    def feed(self, data: bytes, now_ns: int) -> list[Frame]:
        buf = self._buf
        buf += data
        frames: list[Frame] = []
        counters = self.counters
        start, header_length = self.start, self.header_length
        pos = 0
        while True:
            if not buf.startswith(start, pos):
                pos, found = skip_to_marker(buf, start, pos, counters)
                if not found:
                    break
            if len(buf) - pos < header_length:
                break
            field = buf[pos + self.length_at:pos + self.length_at + self.length_size]
            total = header_length + int.from_bytes(field, "big")
            if total > self.max_length:  # not a header we can believe: resync past its start
                counters.overflows += 1
                counters.garbage_bytes += 1
                pos += 1
                continue
            if len(buf) - pos < total:
                break
            raw = bytes(buf[pos:pos + total])
            counters.frames += 1
            frames.append(Frame(raw, raw, now_ns))
            pos += total
        if pos:
            del buf[:pos]
        return frames
