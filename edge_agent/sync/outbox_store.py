"""The outbox's SQLite side: schema, connection settings, replaying journals, upkeep.

The Outbox (outbox.py) owns the locking; these helpers take a connection and do one job each.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import structlog

from edge_agent.sync.journal import UNREADABLE_SUFFIX, Row, journal_paths, read_journal

log = structlog.get_logger(__name__)

DB_NAME = "outbox.sqlite3"
PAGE_SIZE = 2048  # ~3 parcel events per page; 1 KiB would hold one and waste half
# Waiting for the other connection (checkpoints) beats failing an ingestion.
BUSY_TIMEOUT_MS = 5000
# Row overhead beyond the payload text (key, id, kind, b-tree cell), used to estimate disk use
# without asking the file system on every append.
ROW_OVERHEAD_BYTES = 80
# Reclaim free pages (incremental vacuum) once this many are free, and they outnumber the live
# pages by this ratio.
VACUUM_FREE_PAGES = 256
VACUUM_FREE_RATIO = 4
# Past this WAL size a checkpoint may pause writers (RESTART) so the WAL is reused from its
# start instead of growing through a non-stop burst.
WAL_RESTART_BYTES = 16 * 1024 * 1024
# After a checkpoint the WAL file is truncated to at most this size.
WAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024
# meta key: every journalled record with a seq up to this one is in SQLite (or was deleted
# from it since). Replay skips those, so an event acknowledged since is not published again.
JOURNAL_SEQ_KEY = "journal_seq"

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    -- Assigned by append(), never reused: meta.last_seq remembers the highest deleted one.
    -- (Not AUTOINCREMENT: its bookkeeping page would be rewritten on every ingestion.)
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


def connect(path: Path, synchronous: str) -> sqlite3.Connection:
    # isolation_level=None: we issue BEGIN/COMMIT ourselves; each bare statement commits.
    db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    # Every commit writes each page it touched to the WAL in full: small pages keep the bytes
    # written per event (and flash wear) low. Only takes effect on a new file.
    db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
    # auto_vacuum must be chosen before the first table exists; it lets us give freed pages
    # back to the file system after a backlog drains.
    db.execute("PRAGMA auto_vacuum = INCREMENTAL")
    db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    # The flusher checkpoints; SQLite's own auto-checkpoint would run inside an ingestion.
    db.execute("PRAGMA wal_autocheckpoint = 0")
    db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
    db.executescript(SCHEMA)
    return db


def meta(db: sqlite3.Connection, key: str) -> int:
    row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else 0


def set_meta_max(db: sqlite3.Connection, key: str, value: int) -> None:
    db.execute(
        "INSERT INTO meta (key, value) VALUES (?, ?)"
        " ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)",
        (key, value),
    )


def insert_rows(db: sqlite3.Connection, rows: Iterable[Row], journal_seq: int) -> None:
    """One transaction: the rows (a seq already stored is left alone) and the new watermark."""
    db.execute("BEGIN IMMEDIATE")
    try:
        db.executemany(
            "INSERT OR IGNORE INTO events (seq, event_id, kind, created_ms, body)"
            " VALUES (?, ?, ?, ?, ?)",
            rows,
        )
        set_meta_max(db, JOURNAL_SEQ_KEY, journal_seq)
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


def replay_journals(
    db: sqlite3.Connection, state_dir: Path, make_durable: Callable[[], None]
) -> int:
    """Start-up: move the records of journal files left by the last run (a kill, a power cut)
    into SQLite, then delete the files. Idempotent: records up to the watermark, or with a seq
    already stored, are skipped. Returns the number of records added."""
    paths = journal_paths(state_dir)
    if not paths:
        return 0
    watermark = meta(db, JOURNAL_SEQ_KEY)
    rows: list[Row] = []
    replayed: list[Path] = []
    for path in paths:
        contents = read_journal(path)
        if contents is None:
            # Not written by us: keep it for support to look at, do not guess at its bytes.
            aside = path.with_name(path.name + UNREADABLE_SUFFIX)
            path.rename(aside)
            log.error("outbox.journal_unreadable", path=str(path), kept_as=str(aside),
                      problem="the file does not start with the outbox journal header")
            continue
        if contents.dropped_bytes:
            log.warning("outbox.journal_torn_tail", path=str(path),
                        dropped_bytes=contents.dropped_bytes, kept_records=len(contents.rows))
        rows += [row for row in contents.rows if row[0] > watermark]
        replayed.append(path)
    if rows:
        insert_rows(db, rows, max(row[0] for row in rows))
        make_durable()  # the rows must be on the medium before their journal goes
    for path in replayed:
        path.unlink()
    log.info("outbox.journal_replayed", files=len(replayed), records=len(rows))
    return len(rows)


def evicted_counts(db: sqlite3.Connection) -> dict[str, int]:
    """Events dropped to keep the disk budget, per kind, since the store was created."""
    rows = db.execute("SELECT key, value FROM meta WHERE key LIKE 'evicted.%'")
    return {key.removeprefix("evicted."): value for key, value in rows}


def stored_kinds(db: sqlite3.Connection) -> list[str]:
    return [kind for (kind,) in db.execute("SELECT DISTINCT kind FROM events")]


def delete_oldest(db: sqlite3.Connection, kind: str, limit: int) -> tuple[list[int], int]:
    """One transaction: delete the oldest rows of one kind and count them in meta. Returns the
    seqs deleted and their estimated bytes (as the outbox counts them)."""
    rows = db.execute(
        "SELECT seq, LENGTH(body) FROM events WHERE kind = ? ORDER BY seq LIMIT ?",
        (kind, limit),
    ).fetchall()
    if not rows:
        return [], 0
    seqs = [seq for seq, _ in rows]
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute(f"DELETE FROM events WHERE seq IN ({','.join('?' * len(seqs))})", seqs)
        db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
            (f"evicted.{kind}", len(seqs)),
        )
        # The seq counter must never fall back below a seq already issued.
        set_meta_max(db, "last_seq", seqs[-1])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    return seqs, sum(size + ROW_OVERHEAD_BYTES for _, size in rows)


def read_only_stats(state_dir: Path) -> dict[str, Any]:
    """Counts by kind and the oldest event's age, read beside a running agent (a WAL reader
    never blocks its writer) or after it stopped, so a stopped agent's backlog shows too."""
    path = state_dir / DB_NAME
    sizes = {p.name: p.stat().st_size for p in (path, Path(f"{path}-wal")) if p.exists()}
    if not path.exists():
        return {"present": False, "path": str(path)}
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT kind, COUNT(*), MIN(created_ms) FROM events "
                              "GROUP BY kind").fetchall()
    except sqlite3.Error as exc:
        return {"present": True, "path": str(path), "files": sizes, "error": str(exc)}
    oldest = min((row[2] for row in rows), default=None)
    return {"present": True, "path": str(path), "files": sizes,
            "pending_by_kind": {row[0]: row[1] for row in rows},
            "oldest_age_s": round(time.time() - oldest / 1000, 3) if oldest else None}


def live_bytes(db: sqlite3.Connection) -> int:
    """Bytes of the main file in use (free pages excluded; the WAL is bounded apart)."""
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    free = db.execute("PRAGMA freelist_count").fetchone()[0]
    return (pages - free) * PAGE_SIZE


def file_size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def checkpoint(maintenance: sqlite3.Connection, wal_path: Path,
               vacuum: Callable[[], None]) -> None:
    """Checkpoint the WAL (does not block ingestion) and give free pages back to the disk."""
    try:
        # PASSIVE never blocks writers, but under a non-stop burst the WAL never gets back to
        # its start and keeps growing; past a limit, RESTART pauses writers for the few
        # milliseconds it takes so the WAL is reused from the beginning.
        mode = "RESTART" if file_size(wal_path) >= WAL_RESTART_BYTES else "PASSIVE"
        maintenance.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
        free_pages = maintenance.execute("PRAGMA freelist_count").fetchone()[0]
        live_pages = maintenance.execute("PRAGMA page_count").fetchone()[0] - free_pages
        # Vacuuming moves live pages from the end of the file into the holes: worth it only
        # once most of the file is free (a backlog drained), not at every step of a drain.
        if free_pages >= VACUUM_FREE_PAGES and free_pages >= VACUUM_FREE_RATIO * live_pages:
            vacuum()
            # The shrink reaches the main file (and the WAL resets) only when checkpointed.
            maintenance.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
    except sqlite3.Error as exc:  # a busy database: try again next period
        log.info("outbox.maintenance_deferred", error=str(exc))
