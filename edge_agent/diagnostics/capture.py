"""Raw serial captures: what a device put on the wire, kept so it can be replayed.

A capture is two files: FILE holds the bytes exactly as read (so any tool, including
`profiles decode --file`, can read it), and FILE.times holds one JSON line per read chunk,
`{"offset": <byte offset>, "t_ms": <ms since the capture began>}`. The times matter for
devices framed by idle gaps (a scanner with no terminator): without them every read would glue
into one frame. A capture without its .times file replays as one chunk.

The first line also holds `"start_ns"`: time.monotonic_ns() when the capture began. Two
captures made at the same time on one machine (the scanner's and the scale's, for
`diag pairing`) share that clock, so their reads can be put on one time line.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import IO

from edge_agent.devices.codec import DeviceCodec
from edge_agent.devices.messages import Message
from edge_agent.units import NS_PER_MS

TIMES_SUFFIX = ".times"


class CaptureError(ValueError):
    pass


def times_path(path: Path) -> Path:
    return path.with_name(path.name + TIMES_SUFFIX)


class CaptureWriter:
    """Appends chunks to FILE and their arrival times to FILE.times, flushed as they come so a
    capture cut short (Ctrl-C, unplug) keeps everything read until then."""

    def __init__(self, path: Path):
        self.path = path
        self._data: IO[bytes] = path.open("wb")
        self._times: IO[str] = times_path(path).open("w")
        self._start_ns = time.monotonic_ns()
        self.bytes = 0
        self.chunks = 0

    def write(self, chunk: bytes, received_ns: int) -> None:
        t_ms = round((received_ns - self._start_ns) / NS_PER_MS, 3)
        entry: dict[str, int | float] = {"offset": self.bytes, "t_ms": t_ms}
        if not self.chunks:
            entry["start_ns"] = self._start_ns
        self._times.write(json.dumps(entry) + "\n")
        self._data.write(chunk)
        self._data.flush()
        self._times.flush()
        self.bytes += len(chunk)
        self.chunks += 1

    def close(self) -> None:
        self._data.close()
        self._times.close()


def capture_start_ns(times_file: Path) -> int | None:
    """When the capture began (time.monotonic_ns()), if its .times file says (see the module
    doc); None for a capture without one, or made before the start was recorded."""
    if not times_file.exists():
        return None
    with times_file.open() as handle:
        first = handle.readline()
    try:
        return int(json.loads(first)["start_ns"])
    except (ValueError, KeyError, TypeError):
        return None


def read_capture(data: bytes, times_file: Path | None) -> list[tuple[int, bytes]]:
    """(time in ns, chunk) pairs; CaptureError naming the line when the .times file is bad."""
    if times_file is None or not times_file.exists():
        return [(0, data)] if data else []
    marks: list[tuple[int, int]] = []
    for number, line in enumerate(times_file.read_text().splitlines(), 1):
        try:
            entry = json.loads(line)
            offset, t_ns = int(entry["offset"]), int(float(entry["t_ms"]) * NS_PER_MS)
        except (ValueError, KeyError, TypeError):
            raise CaptureError(f"{times_file}:{number}: not {{offset, t_ms}}: {line[:60]!r}") \
                from None
        if offset < (marks[-1][0] if marks else 0) or offset > len(data):
            raise CaptureError(f"{times_file}:{number}: offset {offset} out of order or past "
                               f"the end of the {len(data)}-byte capture")
        marks.append((offset, t_ns))
    if marks and marks[0][0] != 0:
        marks.insert(0, (0, 0))
    chunks = []
    for index, (offset, t_ns) in enumerate(marks):
        end = marks[index + 1][0] if index + 1 < len(marks) else len(data)
        if end > offset:
            chunks.append((t_ns, data[offset:end]))
    return chunks


def replay(codec: DeviceCodec, chunks: list[tuple[int, bytes]]) -> list[Message]:
    """Feed chunks at their times, flushing idle-gap frames whose gap passed in between, as the
    port reader would have; the end of the capture counts as a gap."""
    messages: list[Message] = []
    for t_ns, chunk in chunks:
        deadline = codec.next_deadline_ns()
        if deadline is not None and deadline <= t_ns:
            messages += codec.flush(deadline)
        messages += codec.feed(chunk, t_ns)
    deadline = codec.next_deadline_ns()
    if deadline is not None:
        messages += codec.flush(deadline)
    return messages
