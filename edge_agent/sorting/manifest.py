"""The manifest: barcode -> destination, declared weight and service, in SQLite.

One file, STATE_DIR/manifest.sqlite3, keyed by barcode (WITHOUT ROWID, so a look-up is one
B-tree search: microseconds). WAL mode lets the agent keep looking parcels up while an import
or an MQTT update writes.

Imports are all or nothing: every line is checked, and if any is bad the import is refused,
listing each bad line by number (up to MAX_REPORTED_PROBLEMS), and the old data stays as it was.
A half-imported manifest would route some parcels by yesterday's data and some by today's.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path
from typing import NamedTuple

from edge_agent.errors import EdgeAgentError

MANIFEST_FILE = "manifest.sqlite3"
FIELDS = ("barcode", "country", "postal_code", "declared_weight_kg", "service")
# Rows per executemany call in an import: large enough to amortise the call, small enough to
# keep a batch's memory in the low megabytes on a small device.
IMPORT_BATCH_ROWS = 50_000
# A file with thousands of bad lines is the wrong file; listing the first ones is enough.
MAX_REPORTED_PROBLEMS = 50
MAX_BARCODE_CHARS = 64
MAX_POSTAL_CHARS = 16
MAX_SERVICE_CHARS = 32
# No parcel on this line weighs more; a bigger number is a unit mistake (grams for kg).
MAX_DECLARED_WEIGHT_KG = 1000.0
# How long a writer waits for another writer's lock before giving up.
BUSY_TIMEOUT_S = 5.0
# Look-ups land on random pages of a B-tree that is ~50 MB at a million rows. Reading pages
# through a memory map and keeping 16 MB of them cached takes a look-up from ~14 to ~9 µs here;
# the map is address space backed by the OS page cache, not memory the process holds.
MMAP_BYTES = 256 * 1024 * 1024
PAGE_CACHE_KIB = 16 * 1024

_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifest (
    barcode TEXT PRIMARY KEY,
    country TEXT NOT NULL,
    postal_code TEXT,
    declared_weight_kg REAL,
    service TEXT
) WITHOUT ROWID
"""
_GET = (
    "SELECT barcode, country, postal_code, declared_weight_kg, service "
    "FROM manifest WHERE barcode = ?"
)


# Rows go in through SQL that finishes normalising them (upper-case country, empty -> NULL,
# weight text -> REAL), so a clean CSV row can be inserted as the strings it was read as.
_PUT = (
    "INSERT OR REPLACE INTO manifest VALUES "
    "(?, upper(?), nullif(?, ''), CAST(nullif(?, '') AS REAL), nullif(?, ''))"
)
# A whole clean CSV row, fields joined by \x1f, in one C-level match: what check_fields would
# accept unchanged (never more). Anything else goes through check_fields and its messages.
def _clean_text_pattern(limit: int) -> str:
    """1 to `limit` printable ASCII characters with no space at either end."""
    return f"[!-~](?:[ -~]{{0,{limit - 2}}}[!-~])?"


_CLEAN_ROW = re.compile(
    _clean_text_pattern(MAX_BARCODE_CHARS)
    + r"\x1f[A-Za-z]{2}\x1f"
    + f"(?:{_clean_text_pattern(MAX_POSTAL_CHARS)})?"
    + r"\x1f(?:(?!0*\.?0*\x1f)(?:[0-9]{1,3}(?:\.[0-9]{1,6})?|1000(?:\.0{1,6})?))?\x1f"  # 0<kg<=1000
    + f"(?:{_clean_text_pattern(MAX_SERVICE_CHARS)})?"
)


def _clean_csv_row(record: tuple) -> bool:
    try:
        return _CLEAN_ROW.fullmatch("\x1f".join(record)) is not None
    except TypeError:  # a missing column (None) or a JSON value that is not text
        return False


class ManifestError(EdgeAgentError):
    """A manifest entry, file or store is bad; `problems` names each line or field."""

    def __init__(self, source: str, problems: list[str]):
        self.source = source
        self.problems = problems
        super().__init__(f"{source}: " + "; ".join(problems))


# The usual field: printable ASCII with no space at either end. One C-level match accepts it;
# anything else takes the careful path below (a million-row import runs this 3 million times).
_CLEAN_TEXT = re.compile(r"[!-~](?:[ -~]*[!-~])?")
_COUNTRY = re.compile(r"[A-Za-z]{2}")


def _text(name: str, value: object, limit: int, required: bool) -> str | None:
    if isinstance(value, str) and len(value) <= limit and _CLEAN_TEXT.fullmatch(value):
        return value
    if value is None or value == "":
        if required:
            raise ValueError(f"{name}: required")
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected text, got {type(value).__name__}")
    value = value.strip()
    if not value or len(value) > limit or not value.isprintable():
        raise ValueError(f"{name}: {value!r} must be 1-{limit} printable characters")
    return value


def check_fields(
    barcode: object, country: object, postal_code: object, weight: object, service: object
) -> tuple[str, str, str | None, float | None, str | None]:
    """Validated, normalised fields of one entry; ValueError names the first bad field."""
    barcode_text = _text("barcode", barcode, MAX_BARCODE_CHARS, required=True)
    if not (isinstance(country, str) and _COUNTRY.fullmatch(country)):
        raise ValueError(f"country: {country!r} must be an ISO 3166 alpha-2 code such as CN")
    if weight is None or weight == "":
        weight_kg = None
    else:
        try:
            weight_kg = float(weight)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"declared_weight_kg: {weight!r} is not a number") from None
        if isinstance(weight, bool) or not (0 < weight_kg <= MAX_DECLARED_WEIGHT_KG):
            raise ValueError(
                f"declared_weight_kg: {weight!r} must be above 0 and at most "
                f"{MAX_DECLARED_WEIGHT_KG:g}"
            )
    assert barcode_text is not None
    return (
        barcode_text,
        country.upper(),
        _text("postal_code", postal_code, MAX_POSTAL_CHARS, required=False),
        weight_kg,
        _text("service", service, MAX_SERVICE_CHARS, required=False),
    )


class _EntryFields(NamedTuple):
    barcode: str
    country: str  # ISO 3166 alpha-2
    postal_code: str | None = None
    declared_weight_kg: float | None = None
    service: str | None = None


class ManifestEntry(_EntryFields):
    """One manifest row, validated when made (ManifestError names the field).

    A NamedTuple so that building one from a stored row costs a fraction of a microsecond;
    rows read back from the store were validated on the way in and skip the checks.
    """

    __slots__ = ()

    def __new__(
        cls,
        barcode: str,
        country: str,
        postal_code: str | None = None,
        declared_weight_kg: float | None = None,
        service: str | None = None,
    ) -> ManifestEntry:
        try:
            checked = check_fields(barcode, country, postal_code, declared_weight_kg, service)
        except ValueError as exc:
            raise ManifestError("manifest entry", [str(exc)]) from None
        return tuple.__new__(cls, checked)

    @classmethod
    def from_dict(cls, data: dict) -> ManifestEntry:
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise ManifestError("manifest entry", [f"{unknown[0]}: unknown field (a typo?)"])
        return cls(**data)

    def to_dict(self) -> dict[str, object]:
        return dict(self._asdict())


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
        self._lookup = connection.cursor()  # reused: saves making a cursor per look-up
        # One connection is shared by the agent's thread and the MQTT command thread.
        self._lock = threading.Lock()

    @classmethod
    def open(cls, state_dir: Path) -> Manifest:
        path = Path(state_dir) / MANIFEST_FILE
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            connection = _connect(path)
            connection.execute(_SCHEMA)
        except (OSError, sqlite3.Error) as exc:
            raise ManifestError(str(path), [f"cannot open the manifest: {exc}"]) from None
        return cls(path, connection)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def __enter__(self) -> Manifest:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def get(self, barcode: str | None) -> ManifestEntry | None:
        if barcode is None:
            return None
        with self._lock:
            row = self._lookup.execute(_GET, (barcode,)).fetchone()
        if row is None:
            return None
        return tuple.__new__(ManifestEntry, row)  # rows were validated on the way in

    def upsert(self, entries: Iterable[ManifestEntry]) -> int:
        rows = [
            (e.barcode, e.country, e.postal_code, e.declared_weight_kg, e.service)
            for e in entries
        ]
        with self._lock, self._db:
            self._db.executemany(_PUT, rows)
        return len(rows)

    def remove(self, barcodes: Iterable[str]) -> int:
        with self._lock, self._db:
            cursor = self._db.executemany(
                "DELETE FROM manifest WHERE barcode = ?", [(b,) for b in barcodes]
            )
        return cursor.rowcount

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
            writer.execute("BEGIN IMMEDIATE")
            batch: list[tuple] = []
            for line_number, record in _read_records(path, problems):
                try:
                    batch.append(record if _clean_csv_row(record) else check_fields(*record))
                except ValueError as exc:
                    _add_problem(problems, f"line {line_number}: {exc}")
                    continue
                if len(batch) >= IMPORT_BATCH_ROWS:
                    rows += _insert(writer, batch, problems)
            rows += _insert(writer, batch, problems)
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


def _insert(writer: sqlite3.Connection, batch: list[tuple], problems: list[str]) -> int:
    count = len(batch)
    if batch and not problems:  # once a line is bad, the import is refused: stop writing
        writer.executemany(_PUT, batch)
    batch.clear()
    return count


def _add_problem(problems: list[str], problem: str) -> None:
    if len(problems) < MAX_REPORTED_PROBLEMS:
        problems.append(problem)
    elif len(problems) == MAX_REPORTED_PROBLEMS:
        problems.append("... more bad lines not listed")


def _read_records(path: Path, problems: list[str]) -> Iterator[tuple[int, tuple]]:
    """(line number, field tuple) per record; unreadable lines become problems."""
    try:
        handle = path.open(encoding="utf-8", newline="")
    except OSError as exc:
        raise ManifestError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    with handle:
        try:
            first = handle.readline()
            handle.seek(0)
            if first.lstrip().startswith("{"):
                yield from _json_lines(handle, problems)
            else:
                yield from _csv_rows(handle, problems)
        except UnicodeDecodeError as exc:
            raise ManifestError(str(path), [f"not UTF-8 text ({exc.reason})"]) from None


def _csv_rows(handle, problems: list[str]) -> Iterator[tuple[int, tuple]]:
    reader = csv.reader(handle)
    header = next(reader, None)
    if header is None:
        return
    header = [name.strip().lstrip("\ufeff") for name in header]
    unknown = [name for name in header if name not in FIELDS]
    if unknown or "barcode" not in header or "country" not in header:
        raise ManifestError(
            handle.name,
            [f"line 1: header must name barcode, country and optionally "
             f"{', '.join(FIELDS[2:])}; got {header}"],
        )
    positions = [header.index(name) if name in header else None for name in FIELDS]
    if None in positions:
        def pick(row: list[str]) -> tuple:
            return tuple(None if p is None else row[p] for p in positions)
    else:
        pick = itemgetter(*positions)  # type: ignore[arg-type]  # C-level: the common case
    width = len(header)
    for row in reader:
        if not row:
            continue
        if len(row) != width:
            _add_problem(problems, f"line {reader.line_num}: {len(row)} fields, header has {width}")
            continue
        yield reader.line_num, pick(row)


def _json_lines(handle, problems: list[str]) -> Iterator[tuple[int, tuple]]:
    for line_number, line in enumerate(handle, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            _add_problem(problems, f"line {line_number}: not JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            _add_problem(problems, f"line {line_number}: expected a JSON object")
            continue
        unknown = sorted(set(record) - set(FIELDS))
        if unknown:
            _add_problem(problems, f"line {line_number}: {unknown[0]}: unknown field (a typo?)")
            continue
        yield line_number, tuple(record.get(name) for name in FIELDS)
