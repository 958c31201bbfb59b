"""The outbox's append-only journal: the file format, writing one record, reading files back.

A journal file is a short header (`MAGIC`) followed by records, each framed as

    length (4 bytes, little-endian) | CRC32 of the body (4 bytes, little-endian) | body

and the body is UTF-8 text: `seq TAB event_id TAB kind TAB created_ms TAB json`. JSON never
contains a raw tab (json.dumps escapes control characters), and the split stops after the fourth
tab anyway. One record is written with one `os.write` to a file opened with O_APPEND, so a
kill -9 leaves either the whole record or none of it; a power cut can leave a torn tail (a short
or zero-filled last record), which the CRC detects and `read_journal` drops.

Files are numbered (`outbox.journal.000001`, ...); the outbox writes to the newest one and
retires older ones once their records are durably in SQLite (see outbox.py).
"""

from __future__ import annotations

import os
import re
import struct
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import structlog

log = structlog.get_logger(__name__)

MAGIC = b"edge-agent outbox journal v1\n"
JOURNAL_PREFIX = "outbox.journal."
_JOURNAL_NAME = re.compile(re.escape(JOURNAL_PREFIX) + r"(\d{6,})")
# A journal whose header cannot be read is kept aside under this suffix for support, not read.
UNREADABLE_SUFFIX = ".unreadable"
_FRAME = struct.Struct("<II")  # body length, CRC32 of the body
# A record longer than this is a corrupt length field, not an event (events are ~0.5 kB; the
# largest, telemetry, a few kB).
MAX_RECORD_BYTES = 16 * 1024 * 1024

# (seq, event_id, kind, created_ms, body): the outbox's row, in the order of its columns.
Row = tuple[int, str, str, int, str]


def encode_record(seq: int, event_id: str, kind: str, created_ms: int, body: str) -> bytes:
    payload = f"{seq}\t{event_id}\t{kind}\t{created_ms}\t{body}".encode()
    return _FRAME.pack(len(payload), zlib.crc32(payload)) + payload


def _decode_body(payload: bytes) -> Row:
    seq, event_id, kind, created_ms, body = payload.decode().split("\t", 4)
    return int(seq), event_id, kind, int(created_ms), body


@dataclass
class JournalContents:
    rows: list[Row] = field(default_factory=list)
    # Bytes after the last good record: a torn tail (expected after a power cut) or damage.
    dropped_bytes: int = 0


def decode_records(data: bytes, start: int = 0) -> JournalContents:
    """Every whole, intact record from `start` on; stops at the first torn or damaged one."""
    contents = JournalContents()
    offset = start
    while offset < len(data):
        if len(data) - offset < _FRAME.size:
            break
        length, crc = _FRAME.unpack_from(data, offset)
        begin, end = offset + _FRAME.size, offset + _FRAME.size + length
        if length > MAX_RECORD_BYTES or end > len(data):
            break
        payload = data[begin:end]
        if zlib.crc32(payload) != crc:
            break
        try:
            contents.rows.append(_decode_body(payload))
        except (UnicodeDecodeError, ValueError):  # intact bytes, wrong layout: not ours
            break
        offset = end
    contents.dropped_bytes = len(data) - offset
    return contents


def read_journal(path: Path) -> JournalContents | None:
    """The records of one journal file; None if it is not a journal (its header is wrong).

    A file shorter than the header whose bytes are a prefix of it was cut while being created
    (before any record could be written into it): it holds nothing, and is not an error."""
    data = path.read_bytes()
    if len(data) < len(MAGIC) and MAGIC.startswith(data):
        return JournalContents()
    if not data.startswith(MAGIC):
        return None
    return decode_records(data, len(MAGIC))


def journal_paths(state_dir: Path) -> list[Path]:
    """The journal files in a state directory, oldest first."""
    numbered = []
    for path in state_dir.glob(JOURNAL_PREFIX + "*"):
        match = _JOURNAL_NAME.fullmatch(path.name)
        if match:
            numbered.append((int(match.group(1)), path))
    return [path for _, path in sorted(numbered)]


def journal_path(state_dir: Path, number: int) -> Path:
    return state_dir / f"{JOURNAL_PREFIX}{number:06d}"


def fsync_path(path: Path) -> None:
    """fsync a file or directory by name (a missing file has nothing to make durable)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


class JournalFile:
    """One open journal file, appended to by `write` (callers serialise writes)."""

    def __init__(self, path: Path, fd: int, size: int):
        self.path = path
        self._fd = fd
        self.size = size

    @classmethod
    def create(cls, path: Path) -> JournalFile:
        """A new, empty journal whose header and name are on the medium before it is used: a
        record fsynced into it later must not vanish with a directory entry a power cut lost."""
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o640)
        try:
            journal = cls(path, fd, 0)
            journal.write(MAGIC)
            os.fsync(fd)
            fsync_path(path.parent)
        except BaseException:
            os.close(fd)
            path.unlink(missing_ok=True)
            raise
        return journal

    def write(self, record: bytes) -> None:
        """Append one record with one system call. On failure (a full disk) the file is cut
        back to where it was, so a half-written record never sits before later good ones."""
        try:
            written = os.write(self._fd, record)
        except OSError:
            self._cut_back()
            raise
        if written != len(record):
            self._cut_back()
            raise OSError(f"short write to {self.path}: {written} of {len(record)} bytes")
        self.size += written

    def _cut_back(self) -> None:
        try:
            os.ftruncate(self._fd, self.size)
        except OSError as exc:  # the record may stay torn: replay stops at it (and says so)
            log.error("outbox.journal_cut_back_failed", path=str(self.path), error=str(exc))

    def sync(self) -> None:
        """Make every record written so far durable (the group commit)."""
        os.fsync(self._fd)

    def close(self) -> None:
        os.close(self._fd)
