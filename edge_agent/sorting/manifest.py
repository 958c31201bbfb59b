"""The manifest: barcode -> destination, declared weight and service, in SQLite.

One file, STATE_DIR/manifest.sqlite3, keyed by barcode (WITHOUT ROWID, so a look-up is one
B-tree search: microseconds). WAL mode lets the agent keep looking parcels up while an import
or an MQTT update writes.

Imports are all or nothing: every line is checked, and if any is bad the import is refused,
listing each bad line by number (the first fifty), and the old data stays as it was. A file
with no rows, or with a barcode given twice, is refused too. A
half-imported manifest would route some parcels by yesterday's data and some by today's.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from edge_agent.safe_text import shown
from edge_agent.sorting.manifest_entry import (  # re-exported: the manifest's public names
    FIELDS,
    LATER_FIELDS,
    ManifestEntry,
    ManifestError,
    check_fields,
)
from edge_agent.sorting.manifest_files import (
    MAX_REPORTED_PROBLEMS,
    add_problem,
    clean_csv_row,
    read_records,
)

__all__ = ["FIELDS", "ImportReport", "Manifest", "ManifestEntry", "ManifestError", "check_fields"]

MANIFEST_FILE = "manifest.sqlite3"
# Rows per executemany call in an import: large enough to amortise the call, small enough to
# keep a batch's memory in the low megabytes on a small device.
IMPORT_BATCH_ROWS = 50_000
# How long a writer waits for another writer's lock before giving up.
BUSY_TIMEOUT_S = 5.0
# Look-ups land on random pages of a B-tree that is ~50 MB at a million rows. Read through a
# memory map, every page a look-up touched stayed in the process's resident set: after 200,000
# look-ups the agent held 50 MB more (and 16 MB more with a 16 MB page cache) for a look-up
# 0.3 µs faster (p50 5.6 against 5.9 µs). Plain reads come from the OS page cache nearly as
# fast. SQLite's own cache adds little over it: 256 KB against 1 MB cost 0.3 µs a look-up
# (p50 6.3 against 6.0 µs), and random look-ups fill whatever size it has with the agent's own
# memory within a minute at 500 parcels/s.
MMAP_BYTES = 0
PAGE_CACHE_KIB = 256

_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifest (
    barcode TEXT PRIMARY KEY,
    country TEXT NOT NULL,
    postal_code TEXT,
    declared_weight_kg REAL,
    service TEXT,
    order_id TEXT,
    dangerous_goods TEXT,
    declared_value REAL,
    currency TEXT,
    customs_mode TEXT
) WITHOUT ROWID
"""
# Columns added since the first store format, with their types: an older store gets them when
# the agent (or an import) opens it; a read-only look-up reads them as NULL (unknown).
_LATER_COLUMNS = {"order_id": "TEXT", "dangerous_goods": "TEXT", "declared_value": "REAL",
                  "currency": "TEXT", "customs_mode": "TEXT"}
assert tuple(_LATER_COLUMNS) == LATER_FIELDS
_GET = f"SELECT {', '.join(FIELDS)} FROM manifest WHERE barcode = ?"


# Rows go in through SQL that finishes normalising them (upper-case country, empty -> NULL,
# weight text -> REAL), so a clean CSV row can be inserted as the strings it was read as.
_PUT = (
    "INSERT OR REPLACE INTO manifest VALUES "
    "(?, upper(?), nullif(?, ''), CAST(nullif(?, '') AS REAL), nullif(?, ''), nullif(?, ''), "
    "nullif(?, ''), CAST(nullif(?, '') AS REAL), upper(nullif(?, '')), nullif(?, ''))"
)
# Each barcode of the file being imported, with its line: a barcode given twice in one file
# keeps its first line and records the repeat. A temporary table lives in the importing
# connection only, outside the manifest file, and on disk rather than in memory: a
# million-row file must not need a million-entry set on a small device.
_SEEN_SCHEMA = (
    "CREATE TEMP TABLE IF NOT EXISTS import_seen "
    "(barcode TEXT PRIMARY KEY, line INTEGER, repeated_on INTEGER) WITHOUT ROWID"
)
_SEEN = (
    "INSERT INTO import_seen (barcode, line) VALUES (?, ?) "
    "ON CONFLICT (barcode) DO UPDATE SET repeated_on = coalesce(repeated_on, excluded.line)"
)
_DUPLICATES = (
    "SELECT barcode, line, repeated_on FROM import_seen WHERE repeated_on IS NOT NULL "
    "ORDER BY repeated_on LIMIT ?"
)


@dataclass(frozen=True, slots=True)
class ImportReport:
    source: str
    rows: int  # lines imported (inserted or replaced)
    total: int  # entries in the manifest afterwards
    seconds: float


class Manifest:
    def __init__(self, path: Path, connection: sqlite3.Connection):
        self.path = path
        self._db = connection
        self._get = _select_known_columns(connection)
        self._lookup = connection.cursor()  # reused: saves making a cursor per look-up
        # The look-up connection may be shared by several threads (tools, tests).
        self._lock = threading.Lock()
        # Writes (central's commands, on the command worker's thread) go through a connection
        # of their own: under WAL a reader never waits for a writer, so the decision loop's
        # look-ups go on at full speed while a batch of rows is written.
        self._writer: sqlite3.Connection | None = None
        self._write_lock = threading.Lock()

    @classmethod
    def open(cls, state_dir: Path) -> Manifest:
        path = Path(state_dir) / MANIFEST_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = _connect(path)
            connection.execute(_SCHEMA)
            _add_later_columns(connection)
        except (OSError, sqlite3.Error) as exc:
            raise ManifestError(str(path), [f"cannot open the manifest: {exc}"]) from None
        return cls(path, connection)

    @classmethod
    def open_read_only(cls, state_dir: Path) -> Manifest | None:
        """The existing manifest for reading, or None when there is none: a look-up from the
        command line must never create a store (nor the directory) where there was none."""
        path = Path(state_dir) / MANIFEST_FILE
        if not path.is_file():
            return None
        try:
            connection = _connect_read_only(path)
        except sqlite3.Error as exc:
            raise ManifestError(str(path), [f"cannot read the manifest: {exc}"]) from None
        return cls(path, connection)

    def close(self) -> None:
        with self._write_lock:
            if self._writer is not None:
                self._writer.close()
                self._writer = None
        with self._lock:
            self._db.close()

    def _writer_connection(self) -> sqlite3.Connection:
        if self._writer is None:
            self._writer = _connect(self.path)
        return self._writer

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get(self, barcode: str | None) -> ManifestEntry | None:
        if barcode is None:
            return None
        with self._lock:
            row = self._lookup.execute(self._get, (barcode,)).fetchone()
        if row is None:
            return None
        return tuple.__new__(ManifestEntry, row)  # rows were validated on the way in

    def upsert(self, entries: Iterable[ManifestEntry]) -> int:
        rows = [tuple(e) for e in entries]
        with self._write_lock:
            writer = self._writer_connection()
            with writer:
                writer.executemany(_PUT, rows)
        return len(rows)

    def remove(self, barcodes: Iterable[str]) -> int:
        with self._write_lock:
            writer = self._writer_connection()
            with writer:
                cursor = writer.executemany(
                    "DELETE FROM manifest WHERE barcode = ?", [(b,) for b in barcodes]
                )
        return cursor.rowcount

    def count_present(self, barcodes: list[str]) -> int:
        """How many of these barcodes have a row already (for the budget, writer's thread)."""
        present = 0
        with self._write_lock:
            writer = self._writer_connection()
            for start in range(0, len(barcodes), 500):  # SQLite's bound-parameter limit
                chunk = barcodes[start:start + 500]
                marks = ",".join("?" * len(chunk))
                (found,) = writer.execute(
                    f"SELECT count(*) FROM manifest WHERE barcode IN ({marks})", chunk
                ).fetchone()
                present += found
        return present

    def usage(self) -> tuple[int, int]:
        """(rows, bytes on disk including the WAL): what the manifest's budget counts."""
        with self._write_lock:
            (rows,) = self._writer_connection().execute(
                "SELECT count(*) FROM manifest").fetchone()
        size = sum(p.stat().st_size for p in self.path.parent.glob(MANIFEST_FILE + "*"))
        return rows, size

    def stats(self) -> dict:
        with self._lock:
            (count,) = self._db.execute("SELECT count(*) FROM manifest").fetchone()
            by_country = dict(
                self._db.execute(
                    "SELECT country, count(*) FROM manifest GROUP BY country "
                    "ORDER BY count(*) DESC, country"
                ).fetchall()
            )
        size = sum(p.stat().st_size for p in self.path.parent.glob(MANIFEST_FILE + "*"))
        return {"path": str(self.path), "entries": count, "bytes": size, "by_country": by_country}

    def import_file(self, path: Path) -> ImportReport:
        """Import a CSV (header row) or JSON Lines file, all or nothing; see the module doc."""
        started = time.perf_counter()
        source = str(path)
        writer = _connect(self.path)  # its own connection: look-ups go on during the import
        problems: list[str] = []
        rows = 0
        try:
            writer.execute("PRAGMA synchronous=OFF")  # one fsync at the end is enough
            writer.execute(_SEEN_SCHEMA)
            writer.execute("BEGIN IMMEDIATE")
            batch: list[tuple] = []
            lines: list[int] = []
            for line_number, record in read_records(path, problems):
                try:
                    batch.append(record if clean_csv_row(record) else check_fields(*record))
                except ValueError as exc:
                    add_problem(problems, f"line {line_number}: {exc}")
                    continue
                lines.append(line_number)
                if len(batch) >= IMPORT_BATCH_ROWS:
                    rows += _insert(writer, batch, lines, problems)
            rows += _insert(writer, batch, lines, problems)
            if not rows and not problems:
                problems.append("no manifest rows in the file (empty, or a header only)")
            _report_duplicates(writer, problems)
            if problems:
                writer.rollback()
                raise ManifestError(source, problems)
            writer.commit()
            writer.execute("PRAGMA synchronous=NORMAL")
            writer.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.Error as exc:
            writer.rollback()
            raise ManifestError(source, [f"manifest store: {exc}"]) from None
        finally:
            writer.close()
        with self._lock:
            (total,) = self._db.execute("SELECT count(*) FROM manifest").fetchone()
        return ImportReport(source, rows, total, time.perf_counter() - started)


def _columns(connection: sqlite3.Connection) -> set[str]:
    return {row[1] for row in connection.execute("PRAGMA table_info(manifest)")}


def _add_later_columns(connection: sqlite3.Connection) -> None:
    present = _columns(connection)
    for name, kind in _LATER_COLUMNS.items():
        if name not in present:
            connection.execute(f"ALTER TABLE manifest ADD COLUMN {name} {kind}")


def _select_known_columns(connection: sqlite3.Connection) -> str:
    """The look-up, reading a column the store lacks (an older store opened read-only) as
    NULL: the entry then has it unknown."""
    try:
        present = _columns(connection)
    except sqlite3.Error:
        return _GET
    if not present or all(name in present for name in FIELDS):
        return _GET
    picked = ", ".join(name if name in present else f"NULL AS {name}" for name in FIELDS)
    return f"SELECT {picked} FROM manifest WHERE barcode = ?"


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
    )
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: never corrupt, fast commits
    connection.execute(f"PRAGMA mmap_size={MMAP_BYTES}")
    connection.execute(f"PRAGMA cache_size=-{PAGE_CACHE_KIB}")
    connection.isolation_level = "DEFERRED"
    return connection


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """mode=ro opens a WAL database beside a running agent (which keeps its -shm file). With
    no agent and a directory the reader may not write, SQLite cannot make the -shm file: then,
    with no -wal file (nothing half-written), the file is read as immutable."""
    try:
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True,
                                     timeout=BUSY_TIMEOUT_S, check_same_thread=False)
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError:
        if Path(f"{path}-wal").exists():
            raise
        connection = sqlite3.connect(f"{path.resolve().as_uri()}?immutable=1", uri=True,
                                     check_same_thread=False)
    return connection


def _insert(writer: sqlite3.Connection, batch: list[tuple], lines: list[int],
            problems: list[str]) -> int:
    count = len(batch)
    if batch and not problems:  # once a line is bad, the import is refused: stop writing
        writer.executemany(_PUT, batch)
        writer.executemany(_SEEN, zip((row[0] for row in batch), lines, strict=True))
    batch.clear()
    lines.clear()
    return count


def _report_duplicates(writer: sqlite3.Connection, problems: list[str]) -> None:
    """A barcode given twice in one file: which line is right is anybody's guess (a wrong
    destination sends a parcel to a wrong bin), so the file is refused, naming both lines."""
    for barcode, first, again in writer.execute(_DUPLICATES, (MAX_REPORTED_PROBLEMS + 1,)):
        add_problem(problems, f"line {again}: barcode {shown(barcode)} already on line {first}")


