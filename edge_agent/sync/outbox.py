"""The durable outbox: every event is stored here before it is published, and deleted only once
the broker has acknowledged it.

Durability, in two steps (see docs/MQTT.md, "What a power cut can lose"):
- `append()` commits one row to SQLite in WAL mode with synchronous=NORMAL. The commit writes
  the row into the WAL file through the OS but does not fsync: when append() returns, the row
  survives a kill -9 of this process, at the cost of a few tens of microseconds.
- A flusher thread fsyncs the WAL within `group_commit_ms` of an append (group commit), so a
  power cut loses at most that window of events; SQLite's WAL checksums mean a torn tail is
  discarded on open, never a corrupt store. `group_commit_ms = 0` fsyncs on every commit.

The store is bounded by `disk_budget_mb`: when full, the oldest telemetry goes first, then
alarms, parcel events last; every eviction is counted (persisted) and a gap in alarms or
parcel events is itself recorded as an alarm event, so central sees the hole.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

from edge_agent.config import OutboxConfig
from edge_agent.ids import IdGenerator, id_time_ms
from edge_agent.sync.payloads import SCHEMA_VERSION

log = structlog.get_logger(__name__)

DB_NAME = "outbox.sqlite3"
PAGE_SIZE = 2048  # ~3 parcel events per page; 1 KiB would hold one and waste half
# Waiting for the other connection (checkpoints) beats failing an append.
BUSY_TIMEOUT_MS = 5000
# Rows deleted per statement when acknowledging: bounds how long the writer lock is held.
ACK_BATCH = 500
# The real pages in use are compared with the budget every this many appends (two PRAGMAs).
BUDGET_CHECK_EVERY = 64
# Row overhead beyond the payload text (key, id, kind, b-tree cell), used to estimate disk use
# without asking the file system on every append.
ROW_OVERHEAD_BYTES = 80
# When over budget, evict down to this fraction of it, so eviction runs rarely, not per append.
EVICT_TO_FRACTION = 0.9
# The flusher checkpoints the WAL into the main file this often (SQLite's own auto-checkpoint
# is off because it would run, with an fsync, on the decision thread inside append()).
CHECKPOINT_PERIOD_S = 1.0
# Reclaim free pages (incremental vacuum) once this many are free, and they outnumber the live
# pages by this ratio.
VACUUM_FREE_PAGES = 256
VACUUM_FREE_RATIO = 4
# ...or sooner, once the WAL holds this much (a burst of appends), so it stays small.
CHECKPOINT_WAL_BYTES = 4 * 1024 * 1024
WAL_RESTART_BYTES = 16 * 1024 * 1024
# After a checkpoint the WAL file is truncated to at most this size.
WAL_SIZE_LIMIT_BYTES = 4 * 1024 * 1024

# Seq numbers skipped after an unclean stop. A power cut loses at most one group-commit window
# of events (20 ms by default; appends run at most ~20,000/s here): 10,000 covers any window
# the config allows with a wide margin, and a 64-bit seq never runs out.
UNCLEAN_SEQ_SKIP = 10_000

# Lower ranks are evicted first when the disk budget is reached.
EVICTION_RANK = {"telemetry": 0, "alarm": 1, "parcel": 2}
DEFAULT_RANK = 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    -- Assigned by append(), never reused: meta.last_seq remembers the highest deleted one.
    -- (Not AUTOINCREMENT: its bookkeeping page would be rewritten on every append.)
    seq INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    created_ms INTEGER NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


@dataclass(frozen=True)
class OutboxRecord:
    seq: int
    event_id: str
    kind: str
    created_ms: int
    body: str  # the payload as JSON text, exactly as it is published

    @property
    def payload(self) -> dict[str, Any]:
        return json.loads(self.body)


class Outbox:
    def __init__(self, path: Path, config: OutboxConfig, clock: Callable[[], float]):
        self.path = path
        self.config = config
        self._clock = clock
        self._budget_bytes = int(config.disk_budget_mb * 1024 * 1024)
        self._lock = threading.Lock()
        self._db = self._connect(path, config)
        self._next_seq, floor_ms = self._load_counters()
        skipped = self._mark_open()
        self._ids = IdGenerator(floor_ms=floor_ms)
        # Kept in memory so stats() (polled for telemetry) never counts a large backlog.
        self._estimated_bytes, self._depth = self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(body)), 0) + COUNT(*) * ?, COUNT(*) FROM events",
            (ROW_OVERHEAD_BYTES,),
        ).fetchone()
        self._evicted = self._load_evicted()
        self._appended = 0
        self._dirty = threading.Event()
        self._closing = threading.Event()
        self._flusher = threading.Thread(
            target=self._flush_loop, name="outbox-flusher", daemon=True
        )
        self._flusher.start()
        if skipped:
            self.append("alarm", {
                "alarm": "unclean_restart",
                "severity": "warning",
                "message": "the agent was not stopped cleanly; seq numbers were skipped so that "
                "none is reused (a power cut may have lost the last events before this one)",
                "details": {"skipped_first_seq": skipped[0], "skipped_last_seq": skipped[1]},
            })

    @classmethod
    def open(
        cls, state_dir: Path, config: OutboxConfig, *, clock: Callable[[], float] = time.time
    ) -> Outbox:
        state_dir.mkdir(parents=True, exist_ok=True)
        return cls(state_dir / DB_NAME, config, clock)

    @staticmethod
    def _connect(path: Path, config: OutboxConfig) -> sqlite3.Connection:
        # isolation_level=None: we issue BEGIN/COMMIT ourselves; each bare statement commits.
        db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        # auto_vacuum must be chosen before the first table exists; it lets us give freed pages
        # back to the file system after a backlog drains.
        # Every commit writes each page it touched to the WAL in full: small pages keep the
        # bytes written per event (and flash wear) low. Only takes effect on a new file.
        db.execute(f"PRAGMA page_size = {PAGE_SIZE}")
        db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        db.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute(f"PRAGMA synchronous = {'FULL' if config.group_commit_ms == 0 else 'NORMAL'}")
        db.execute("PRAGMA wal_autocheckpoint = 0")
        db.execute(f"PRAGMA journal_size_limit = {WAL_SIZE_LIMIT_BYTES}")
        db.executescript(_SCHEMA)
        return db

    def _load_counters(self) -> tuple[int, int]:
        """The next sequence number and the id floor, both above anything issued before."""
        last_row = self._db.execute("SELECT MAX(seq) FROM events").fetchone()[0] or 0
        last_seq = max(last_row, self._meta("last_seq"))
        last_id = self._db.execute("SELECT MAX(event_id) FROM events").fetchone()[0]
        floor_ms = self._meta("last_id_ms")
        if last_id:
            floor_ms = max(floor_ms, id_time_ms(last_id))
        return last_seq + 1, floor_ms

    def _mark_open(self) -> tuple[int, int] | None:
        """Record (durably) that the store is open. If the last run did not close it, skip seq
        numbers: a power cut may have lost events that were already published, and their seqs
        must not be given to new events. Returns the skipped range, if any."""
        state = self._db.execute("SELECT value FROM meta WHERE key = 'open'").fetchone()
        skipped = None
        if state is not None and state[0] == 1:
            skipped = (self._next_seq, self._next_seq + UNCLEAN_SEQ_SKIP - 1)
            self._next_seq += UNCLEAN_SEQ_SKIP
            self._set_meta_max("last_seq", self._next_seq - 1)
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('open', 1)")
        # This one commit is fsynced at once: losing it to a power cut would hide the next one.
        self._fsync(Path(f"{self.path}-wal"))
        return skipped

    def _meta(self, key: str) -> int:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else 0

    def _load_evicted(self) -> dict[str, int]:
        rows = self._db.execute("SELECT key, value FROM meta WHERE key LIKE 'evicted.%'")
        return {key.removeprefix("evicted."): value for key, value in rows}

    # -- the hot path -------------------------------------------------------------------------

    def append(self, kind: str, payload: dict[str, Any]) -> OutboxRecord:
        """Store one event; returns once it would survive a kill -9 (not yet a power cut)."""
        with self._lock:
            seq = self._next_seq
            event_id = self._ids.new()
            created_ms = int(self._clock() * 1000)
            body = json.dumps(
                {"schema_version": SCHEMA_VERSION, **payload, "event_id": event_id, "seq": seq},
                separators=(",", ":"),
                default=str,
            )
            self._db.execute(
                "INSERT INTO events (seq, event_id, kind, created_ms, body) VALUES (?, ?, ?, ?, ?)",
                (seq, event_id, kind, created_ms, body),
            )
            self._next_seq = seq + 1
            self._appended += 1
            self._estimated_bytes += len(body) + ROW_OVERHEAD_BYTES
            self._depth += 1
            # Cheap first test on the payload bytes, then (rarely) the real pages in use.
            over_budget = (
                self._appended % BUDGET_CHECK_EVERY == 0
                and self._estimated_bytes * 1.2 > self._budget_bytes
                and self._live_bytes() > self._budget_bytes
            )
        if not self._dirty.is_set():  # set() takes a lock and notifies: skip it when pending
            self._dirty.set()
        if over_budget:
            self._enforce_budget()
        return OutboxRecord(seq, event_id, kind, created_ms, body)

    # -- the publisher's side -----------------------------------------------------------------

    def pending(self, limit: int, after_seq: int = 0) -> list[OutboxRecord]:
        """Oldest first: up to `limit` unacknowledged events with seq > after_seq."""
        with self._lock:
            rows = self._db.execute(
                "SELECT seq, event_id, kind, created_ms, body FROM events"
                " WHERE seq > ? ORDER BY seq LIMIT ?",
                (after_seq, limit),
            ).fetchall()
        return [OutboxRecord(*row) for row in rows]

    def acknowledge(self, seqs: Iterable[int]) -> None:
        """Delete delivered events (unknown seqs are ignored: a duplicate PUBACK is harmless)."""
        ordered = sorted(set(seqs))
        for start in range(0, len(ordered), ACK_BATCH):
            batch = ordered[start : start + ACK_BATCH]
            marks = ",".join("?" * len(batch))
            with self._lock:
                self._db.execute("BEGIN IMMEDIATE")
                try:
                    size, last_id, last_seq = self._db.execute(
                        f"SELECT COALESCE(SUM(LENGTH(body)), 0) + COUNT(*) * ?, MAX(event_id),"
                        f" MAX(seq) FROM events WHERE seq IN ({marks})",
                        (ROW_OVERHEAD_BYTES, *batch),
                    ).fetchone()
                    deleted = self._db.execute(
                        f"DELETE FROM events WHERE seq IN ({marks})", batch
                    ).rowcount
                    if last_id:
                        # Remember the newest seq and id handed out, so a restart with an
                        # empty outbox still continues above them.
                        self._set_meta_max("last_id_ms", id_time_ms(last_id))
                        self._set_meta_max("last_seq", last_seq)
                    self._db.execute("COMMIT")
                except BaseException:
                    self._db.execute("ROLLBACK")
                    raise
                self._estimated_bytes -= size
                self._depth -= deleted
        self._dirty.set()

    def _set_meta_max(self, key: str, value: int) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?)"
            " ON CONFLICT(key) DO UPDATE SET value = MAX(value, excluded.value)",
            (key, value),
        )

    # -- the disk budget ----------------------------------------------------------------------

    def _live_bytes(self) -> int:
        """Bytes of the main file in use (free pages excluded; the WAL is bounded apart)."""
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        free = self._db.execute("PRAGMA freelist_count").fetchone()[0]
        return (pages - free) * PAGE_SIZE

    def _enforce_budget(self) -> None:
        with self._lock:
            # Pages hold rows plus b-tree overhead: scale the payload estimate to the real use.
            ratio = self._live_bytes() / max(1, self._estimated_bytes)
        target = int(self._budget_bytes * EVICT_TO_FRACTION / max(ratio, 1.0))
        evicted: dict[str, int] = {}
        gap: list[int] = []
        with self._lock:
            kinds = [k for (k,) in self._db.execute("SELECT DISTINCT kind FROM events")]
            for kind in sorted(kinds, key=lambda k: EVICTION_RANK.get(k, DEFAULT_RANK)):
                while self._estimated_bytes > target:
                    rows = self._db.execute(
                        "SELECT seq, LENGTH(body) FROM events WHERE kind = ?"
                        " ORDER BY seq LIMIT 1000",
                        (kind,),
                    ).fetchall()
                    if not rows:
                        break
                    seqs = [seq for seq, _ in rows]
                    self._db.execute("BEGIN IMMEDIATE")
                    self._db.execute(
                        f"DELETE FROM events WHERE seq IN ({','.join('?' * len(seqs))})", seqs
                    )
                    self._db.execute(
                        "INSERT INTO meta (key, value) VALUES (?, ?)"
                        " ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
                        (f"evicted.{kind}", len(seqs)),
                    )
                    self._set_meta_max("last_seq", seqs[-1])
                    self._db.execute("COMMIT")
                    self._estimated_bytes -= sum(size + ROW_OVERHEAD_BYTES for _, size in rows)
                    self._depth -= len(seqs)
                    evicted[kind] = evicted.get(kind, 0) + len(seqs)
                    self._evicted[kind] = self._evicted.get(kind, 0) + len(seqs)
                    if kind != "telemetry":
                        gap += [seqs[0], seqs[-1]]
        log.warning("outbox.evicted", evicted=evicted, budget_mb=self.config.disk_budget_mb)
        if gap:
            # The hole itself is news for central: an alarm names what was dropped.
            self.append(
                "alarm",
                {
                    "alarm": "outbox_evicted",
                    "severity": "critical",
                    "message": "disk budget reached: undelivered events were dropped",
                    "details": {"evicted": evicted, "first_seq": min(gap), "last_seq": max(gap)},
                },
            )

    # -- durability and space in the background -----------------------------------------------

    def _flush_loop(self) -> None:
        window_s = self.config.group_commit_ms / 1000
        wal_path = Path(f"{self.path}-wal")
        maintenance = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        maintenance.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        last_checkpoint = time.monotonic()
        try:
            while not self._closing.is_set():
                if self._dirty.wait(CHECKPOINT_PERIOD_S):
                    self._dirty.clear()
                    if window_s > 0:
                        self._fsync(wal_path)
                        # Gather the appends of the next window into one fsync.
                        self._closing.wait(window_s)
                if (time.monotonic() - last_checkpoint >= CHECKPOINT_PERIOD_S
                        or self._file_size(wal_path) >= CHECKPOINT_WAL_BYTES):
                    last_checkpoint = time.monotonic()
                    self._maintain(maintenance, wal_path)
        finally:
            maintenance.close()

    @staticmethod
    def _file_size(path: Path) -> int:
        try:
            return path.stat().st_size
        except FileNotFoundError:
            return 0

    @staticmethod
    def _fsync(wal_path: Path) -> None:
        try:
            fd = os.open(wal_path, os.O_RDONLY)
        except FileNotFoundError:
            return
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _maintain(self, maintenance: sqlite3.Connection, wal_path: Path) -> None:
        """Checkpoint the WAL (does not block appends) and give free pages back to the disk."""
        try:
            # PASSIVE never blocks appends, but under a non-stop burst the WAL never gets back
            # to its start and keeps growing; past a limit, RESTART pauses appends for the
            # few milliseconds it takes so the WAL is reused from the beginning.
            mode = "RESTART" if self._file_size(wal_path) >= WAL_RESTART_BYTES else "PASSIVE"
            maintenance.execute(f"PRAGMA wal_checkpoint({mode})").fetchall()
            free_pages = maintenance.execute("PRAGMA freelist_count").fetchone()[0]
            live_pages = maintenance.execute("PRAGMA page_count").fetchone()[0] - free_pages
            # Vacuuming moves live pages from the end of the file into the holes: worth it only
            # once most of the file is free (a backlog drained), not at every step of a drain.
            if free_pages >= VACUUM_FREE_PAGES and free_pages >= VACUUM_FREE_RATIO * live_pages:
                self._vacuum()
                # The shrink reaches the main file (and the WAL resets) only when checkpointed.
                maintenance.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
        except sqlite3.Error as exc:  # a busy database: try again next period
            log.info("outbox.maintenance_deferred", error=str(exc))

    def _vacuum(self) -> None:
        with self._lock:
            # execute() steps this pragma once (one page); executescript runs it to the end.
            self._db.executescript("PRAGMA incremental_vacuum;")

    def stats(self) -> dict[str, Any]:
        with self._lock:
            depth = self._depth
            oldest = self._db.execute(
                "SELECT created_ms FROM events ORDER BY seq LIMIT 1"
            ).fetchone()
            oldest_ms = oldest[0] if oldest else None
            evicted = dict(self._evicted)
        on_disk = sum(
            p.stat().st_size for p in (self.path, Path(f"{self.path}-wal")) if p.exists()
        )
        oldest_age_s = max(0.0, self._clock() - oldest_ms / 1000) if oldest_ms else 0.0
        return {
            "depth": depth,
            "oldest_age_s": round(oldest_age_s, 3),
            "bytes_on_disk": on_disk,
            "budget_bytes": self._budget_bytes,
            "evicted": evicted,
            "appended": self._appended,
            "next_seq": self._next_seq,
        }

    def close(self) -> None:
        """Stop the flusher and leave everything on disk, fsynced and checkpointed."""
        self._closing.set()
        self._dirty.set()
        self._flusher.join()
        self._vacuum()
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('open', 0)")
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            self._db.close()
