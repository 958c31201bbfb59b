"""The durable outbox: every event is stored here before it is published, and deleted only once
the broker has acknowledged it.

Durability, in two steps (see docs/MQTT.md, "What a power cut can lose"):
- `append()` assigns the seq and event id, and writes the record with one `os.write` to an
  append-only journal file (journal.py: length + CRC32 framing). No SQLite, no fsync: when
  append() returns, the record is in the OS's hands and survives a kill -9.
- The flusher thread, `group_commit_ms` after the first append of a window, fsyncs the journal
  (the group commit: a power cut loses at most that window). Records still unacknowledged
  INGEST_AFTER_S later are then ingested into SQLite (WAL mode) in one transaction, raising the
  `journal_seq` watermark in the same commit. With the broker up nearly every event is
  acknowledged before that, so it never touches SQLite: each acknowledgement's transaction
  raises the watermark past the records settled so far, and the flusher drops them from memory.
  Once a journal file is past JOURNAL_ROTATE_BYTES, appends move to a fresh file (under the
  outbox lock); the old one is deleted only after every record in it is acknowledged or
  ingested by a commit that is fsynced. `group_commit_ms = 0` fsyncs the journal inside every
  append instead.
- `Outbox.open` replays journal files left by a kill or a power cut (records above the
  watermark, up to a torn last record, which the CRC rejects), makes that durable, deletes them.

The publisher reads SQLite plus the records not yet ingested (kept in memory, in seq order), so
ingestion never delays delivery; an event acknowledged before its ingestion is simply not
inserted. The store is bounded by `disk_budget_mb` (SQLite pages plus the journal): when full,
the oldest telemetry goes first, then alarms, parcel events last; every eviction is counted
(persisted) and a gap in alarms or parcel events is itself recorded as an alarm event.
"""

from __future__ import annotations

import collections
import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, NamedTuple

import structlog

from edge_agent.config import OutboxConfig
from edge_agent.ids import IdGenerator, id_time_ms
from edge_agent.sync import outbox_store as store
from edge_agent.sync.journal import JournalFile, encode_record, fsync_path, journal_path
from edge_agent.sync.outbox_budget import BudgetKeeper
from edge_agent.sync.outbox_store import DB_NAME, ROW_OVERHEAD_BYTES
from edge_agent.sync.payloads import SCHEMA_VERSION

__all__ = ["DB_NAME", "UNCLEAN_SEQ_SKIP", "Outbox", "OutboxRecord"]

log = structlog.get_logger(__name__)

# Rows deleted per statement when acknowledging: bounds how long the database lock is held.
ACK_BATCH = 500
# The flusher checkpoints the WAL into the main file this often.
CHECKPOINT_PERIOD_S = 1.0
# ...or sooner, once the WAL holds this much (a burst of ingestions), so it stays small.
CHECKPOINT_WAL_BYTES = 4 * 1024 * 1024
# Appends move to a fresh journal file once the current one holds this much (~2,000 parcel
# events): rotation costs a file creation and two fsyncs, so not every window pays for it.
JOURNAL_ROTATE_BYTES = 1024 * 1024
# ...or this share of the disk budget, if smaller: the journal counts against the budget, and
# its already ingested records must not crowd out the events waiting in SQLite.
JOURNAL_BUDGET_SHARE = 1 / 32
# An unacknowledged record is ingested into SQLite once it has waited this long in memory (and
# its journal): well past the link's ack batching (0.25 s), so a connected broker's
# acknowledgements nearly always come first and the record is never inserted, then deleted.
INGEST_AFTER_S = 1.0
# ...or at once past this many records in memory (a long outage, a burst), which bounds memory.
MAX_RECORDS_IN_MEMORY = 2000
# After a failed ingestion (a disk error, a database locked from outside) the flusher waits this
# long before trying again; the records stay in memory and in the journal meanwhile.
FLUSH_RETRY_S = 0.2
# Seq numbers skipped after an unclean stop. A power cut loses at most one group-commit window
# of events (20 ms by default; appends run at most ~50,000/s here): 10,000 covers any window
# the config allows with a wide margin, and a 64-bit seq never runs out.
UNCLEAN_SEQ_SKIP = 10_000


class OutboxRecord(NamedTuple):
    """One stored event. A tuple: one is made per parcel on the decision thread."""

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
        self.state_dir = path.parent
        self.config = config
        self._clock = clock
        self._wal_path = Path(f"{path}-wal")
        # Lock order: _flush_lock, then _db_lock, then _lock; the decision thread takes _lock only.
        self._lock = threading.Lock()  # the journal, the records not yet ingested, counters
        self._db_lock = threading.Lock()  # the SQLite connection
        self._flush_lock = threading.Lock()  # one ingestion at a time
        self._sync_each_append = config.group_commit_ms == 0
        self._db = store.connect(path, "FULL" if self._sync_each_append else "NORMAL")
        store.replay_journals(self._db, self.state_dir, lambda: self._fsync(self._wal_path))
        self._next_seq, floor_ms = self._load_counters()
        # No row in SQLite has a higher seq: lets the publisher skip a query that would find
        # nothing (an overestimate only costs that query). Raised by every ingestion.
        self._stored_max_seq = self._next_seq - 1
        skipped = self._mark_open()
        # Ids follow the same wall clock as created_ms (a test steps it; the floor keeps them
        # increasing when it steps back).
        self._ids = IdGenerator(floor_ms=floor_ms, clock_ms=lambda: int(clock() * 1000))
        # Kept in memory so stats() (polled for telemetry) never counts a large backlog.
        self._estimated_bytes, self._depth = self._db.execute(
            "SELECT COALESCE(SUM(LENGTH(body)), 0) + COUNT(*) * ?, COUNT(*) FROM events",
            (ROW_OVERHEAD_BYTES,),
        ).fetchone()
        self.budget = BudgetKeeper(self, int(config.disk_budget_mb * 1024 * 1024),
                                   store.evicted_counts(self._db))
        self._rotate_bytes = min(JOURNAL_ROTATE_BYTES,
                                 int(self.budget.budget_bytes * JOURNAL_BUDGET_SHARE))
        self._appended = 0
        # Appended, not yet in SQLite, in seq order with no gaps: _ingesting (being moved by
        # the flusher), then _tail (appended since). Acknowledged ones are skipped, not removed.
        self._ingesting: list[OutboxRecord] = []
        self._tail: list[OutboxRecord] = []
        self._acked_early: set[int] = set()
        # (time.monotonic(), last seq appended then) at each flush: what is old enough to ingest.
        self._flush_marks: collections.deque[tuple[float, int]] = collections.deque()
        self._synced_seq = self._next_seq - 1  # the journal is fsynced up to this seq
        self._journal_number = 1  # replay left no journal file behind
        self._journal = JournalFile.create(journal_path(self.state_dir, self._journal_number))
        self._retired: list[JournalFile] = []  # rotated away, waiting for a durable ingestion
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

    def _load_counters(self) -> tuple[int, int]:
        """The next sequence number and the id floor, both above anything issued before."""
        last_row = self._db.execute("SELECT MAX(seq) FROM events").fetchone()[0] or 0
        last_seq = max(last_row, store.meta(self._db, "last_seq"),
                       store.meta(self._db, store.JOURNAL_SEQ_KEY))
        last_id = self._db.execute("SELECT MAX(event_id) FROM events").fetchone()[0]
        floor_ms = store.meta(self._db, "last_id_ms")
        if last_id:
            floor_ms = max(floor_ms, id_time_ms(last_id))
        return last_seq + 1, floor_ms

    def _mark_open(self) -> tuple[int, int] | None:
        """Record (durably) that the store is open. If the last run did not close it, skip seq
        numbers: a power cut may have lost events that were already published, and their seqs
        must not be given to new events. Returns the skipped range, if any."""
        skipped = None
        if store.meta(self._db, "open") == 1:
            skipped = (self._next_seq, self._next_seq + UNCLEAN_SEQ_SKIP - 1)
            self._next_seq += UNCLEAN_SEQ_SKIP
            store.set_meta_max(self._db, "last_seq", self._next_seq - 1)
        self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('open', 1)")
        # This one commit is fsynced at once: losing it to a power cut would hide the next one.
        self._fsync(self._wal_path)
        return skipped

    # -- the hot path -------------------------------------------------------------------------

    def append(self, kind: str, payload: dict[str, Any]) -> OutboxRecord:
        """Store one event; returns once it would survive a kill -9 (a power cut: see above)."""
        with self._lock:
            seq = self._next_seq
            event_id = self._ids.new()
            created_ms = int(self._clock() * 1000)
            body = json.dumps(
                {"schema_version": SCHEMA_VERSION, **payload, "event_id": event_id, "seq": seq},
                separators=(",", ":"),
                default=str,
            )
            self._journal.write(encode_record(seq, event_id, kind, created_ms, body))
            if self._sync_each_append:
                self._journal.sync()
            record = OutboxRecord(seq, event_id, kind, created_ms, body)
            self._tail.append(record)
            self._next_seq = seq + 1
            self._appended += 1
            self._estimated_bytes += len(body) + ROW_OVERHEAD_BYTES
            self._depth += 1
        if not self._dirty.is_set():  # set() takes a lock and notifies: skip it when pending
            self._dirty.set()
        return record

    # -- the publisher's side -----------------------------------------------------------------

    def pending(self, limit: int, after_seq: int = 0) -> list[OutboxRecord]:
        """Oldest first: up to `limit` unacknowledged events with seq > after_seq."""
        # Under the database lock no ingestion can move records between SQLite and memory, so
        # the two reads see each record exactly once.
        with self._db_lock:
            records = []
            if after_seq < self._stored_max_seq:  # else SQLite holds nothing past the cursor
                rows = self._db.execute(
                    "SELECT seq, event_id, kind, created_ms, body FROM events"
                    " WHERE seq > ? ORDER BY seq LIMIT ?",
                    (after_seq, limit),
                ).fetchall()
                records = [OutboxRecord._make(row) for row in rows]
            if len(records) < limit:
                with self._lock:
                    memory = self._ingesting + self._tail
                    start = max(0, after_seq + 1 - memory[0].seq) if memory else 0
                    for record in memory[start:]:
                        if record.seq not in self._acked_early:
                            records.append(record)
                            if len(records) >= limit:
                                break
        return records

    def acknowledge(self, seqs: Iterable[int]) -> None:
        """Delete delivered events (unknown seqs are ignored: a duplicate PUBACK is harmless)."""
        ordered = sorted(set(seqs))
        for start in range(0, len(ordered), ACK_BATCH):
            batch = ordered[start : start + ACK_BATCH]
            with self._db_lock:
                with self._lock:
                    in_memory = self._in_memory(batch)
                    for record in in_memory:
                        self._acked_early.add(record.seq)
                    settled = self._settled_seq()
                size, deleted = self._delete_stored(batch, in_memory, settled)
                with self._lock:
                    size += sum(len(record.body) + ROW_OVERHEAD_BYTES for record in in_memory)
                    self._estimated_bytes -= size
                    self._depth -= deleted + len(in_memory)

    def _in_memory(self, seqs: list[int]) -> list[OutboxRecord]:
        """The records among `seqs` not yet ingested nor acknowledged (caller holds both locks)."""
        memory = self._ingesting + self._tail
        if not memory:
            return []
        first = memory[0].seq
        found = [memory[seq - first] for seq in seqs if first <= seq < first + len(memory)]
        return [record for record in found if record.seq not in self._acked_early]

    def _settled_seq(self) -> int:
        """Every record up to this seq is in SQLite or acknowledged, so a replay of the journal
        must skip it (caller holds the lock): the first unacknowledged record in memory, which
        may be mid-ingestion and not yet committed, stops it."""
        for record in self._ingesting + self._tail:
            if record.seq not in self._acked_early:
                return record.seq - 1
        return self._next_seq - 1

    def _delete_stored(self, seqs: list[int], in_memory: list[OutboxRecord],
                       settled_seq: int) -> tuple[int, int]:
        """Delete rows from SQLite and raise the journal watermark to `settled_seq` (caller
        holds the database lock): (bytes, rows) deleted."""
        marks = ",".join("?" * len(seqs))
        self._db.execute("BEGIN IMMEDIATE")
        try:
            size, last_id, last_seq = self._db.execute(
                f"SELECT COALESCE(SUM(LENGTH(body)), 0) + COUNT(*) * ?, MAX(event_id),"
                f" MAX(seq) FROM events WHERE seq IN ({marks})",
                (ROW_OVERHEAD_BYTES, *seqs),
            ).fetchone()
            deleted = self._db.execute(f"DELETE FROM events WHERE seq IN ({marks})", seqs).rowcount
            if in_memory:
                last_id = max(last_id or "", in_memory[-1].event_id)
                last_seq = max(last_seq or 0, in_memory[-1].seq)
            if last_id:
                # Remember the newest seq and id handed out, so a restart with an empty outbox
                # still continues above them.
                store.set_meta_max(self._db, "last_id_ms", id_time_ms(last_id))
                store.set_meta_max(self._db, "last_seq", last_seq)
            store.set_meta_max(self._db, store.JOURNAL_SEQ_KEY, settled_seq)
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        return size, deleted

    # -- durability: the group commit and ingestion -------------------------------------------

    def flush(self, *, everything: bool = True) -> None:
        """Make every event appended so far durable and keep the budget; move into SQLite every
        unacknowledged record (`everything`), or only those that waited INGEST_AFTER_S (the
        flusher, every group-commit window). close() calls it last."""
        with self._flush_lock:
            self._commit_journal(everything)
            self.budget.check()

    def _commit_journal(self, everything: bool = True) -> None:
        fresh = None
        if self._journal.size >= self._rotate_bytes:
            fresh = JournalFile.create(journal_path(self.state_dir, self._journal_number + 1))
        now = time.monotonic()
        with self._lock:
            if not self._ingesting:  # else a failed ingestion is still to be retried
                self._drop_acknowledged_head()
            written = self._journal
            if fresh is not None:
                self._retired.append(written)
                self._journal, self._journal_number = fresh, self._journal_number + 1
            # A retired journal goes only once all its records are in SQLite or acknowledged.
            due = len(self._tail) if everything or self._retired else self._due_count(now)
            self._ingesting += self._tail[:due]
            del self._tail[:due]
            appended_to = self._next_seq - 1
            unsynced = appended_to > self._synced_seq
            if not unsynced and not self._ingesting and not self._retired:
                return  # woken for nothing new
        if unsynced or self._retired:
            written.sync()  # the group commit: the window's records survive a power cut now
            self._synced_seq = appended_to
        self._ingest()
        if self._retired:
            # The ingestion must be on the medium before the journal holding it goes.
            self._fsync(self._wal_path)
            with self._lock:
                retired, self._retired = self._retired, []
            for journal in retired:
                journal.close()
                journal.path.unlink()

    def _drop_acknowledged_head(self) -> None:
        """Forget the acknowledged records at the front of memory (caller holds the lock).
        Only the front: memory stays a run of consecutive seqs."""
        tail, acked = self._tail, self._acked_early
        count = 0
        for record in tail:
            if record.seq not in acked:
                break
            acked.discard(record.seq)
            count += 1
        if count:
            del tail[:count]

    def _due_count(self, now: float) -> int:
        """How many records at the front of memory have waited INGEST_AFTER_S (or must go now
        to keep memory bounded). Caller holds the lock."""
        marks = self._flush_marks
        marks.append((now, self._next_seq - 1))
        due_seq = 0
        while marks and marks[0][0] <= now - INGEST_AFTER_S:
            due_seq = marks.popleft()[1]
        tail = self._tail
        if not tail:
            return 0
        if len(tail) > MAX_RECORDS_IN_MEMORY:
            return len(tail) - MAX_RECORDS_IN_MEMORY // 2
        return max(0, min(len(tail), due_seq - tail[0].seq + 1))

    def _ingest(self) -> None:
        with self._db_lock:
            with self._lock:
                batch = self._ingesting
                skip = self._acked_early & {record.seq for record in batch}
            if not batch:
                return
            store.insert_rows(self._db, [r for r in batch if r.seq not in skip], batch[-1].seq)
            self._stored_max_seq = max(self._stored_max_seq, batch[-1].seq)
            with self._lock:
                self._ingesting = []
                self._acked_early -= skip

    def _flush_loop(self) -> None:
        window_s = self.config.group_commit_ms / 1000
        maintenance = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        maintenance.execute(f"PRAGMA busy_timeout = {store.BUSY_TIMEOUT_MS}")
        last_checkpoint = time.monotonic()
        try:
            while not self._closing.is_set():
                wait_s = INGEST_AFTER_S / 2 if self._tail else CHECKPOINT_PERIOD_S
                if self._dirty.wait(wait_s):
                    self._dirty.clear()
                    # Gather the appends of one window into one fsync and one transaction.
                    self._closing.wait(window_s)
                    self._flush_and_keep_budget()
                elif self._tail:  # no new appends, but records waiting in memory age
                    self._flush_and_keep_budget()
                if (time.monotonic() - last_checkpoint >= CHECKPOINT_PERIOD_S
                        or store.file_size(self._wal_path) >= CHECKPOINT_WAL_BYTES):
                    last_checkpoint = time.monotonic()
                    self._maintain(maintenance, self._wal_path)
        finally:
            maintenance.close()

    def _flush_and_keep_budget(self) -> None:
        try:
            self.flush(everything=False)
        except (OSError, sqlite3.Error) as exc:
            # Nothing is lost: the records stay in the journal and in memory, and the next
            # attempt ingests them (replay does, should the process die first).
            log.warning("outbox.flush_deferred", error=str(exc), retry_in_s=FLUSH_RETRY_S)
            self._dirty.set()
            self._closing.wait(FLUSH_RETRY_S)

    @staticmethod
    def _fsync(path: Path) -> None:
        fsync_path(path)

    def _maintain(self, maintenance: sqlite3.Connection, wal_path: Path) -> None:
        store.checkpoint(maintenance, wal_path, self._vacuum)

    def _vacuum(self) -> None:
        with self._db_lock:
            # execute() steps this pragma once (one page); executescript runs it to the end.
            self._db.executescript("PRAGMA incremental_vacuum;")

    # -- what other parts read ----------------------------------------------------------------

    def journal_bytes(self) -> int:
        with self._lock:
            return self._journal.size + sum(journal.size for journal in self._retired)

    # -- the disk budget's view (outbox_budget.EvictableStore) ---------------------------------

    def estimated_bytes(self) -> int:
        with self._lock:
            return self._estimated_bytes

    def page_bytes(self) -> int:
        with self._db_lock:
            return store.live_bytes(self._db)

    def stored_kinds(self) -> list[str]:
        with self._db_lock:
            return store.stored_kinds(self._db)

    def evict_oldest(self, kind: str, limit: int) -> tuple[list[int], int]:
        with self._db_lock:
            seqs, size = store.delete_oldest(self._db, kind, limit)
            with self._lock:
                self._estimated_bytes -= size
                self._depth -= len(seqs)
        return seqs, size

    def stats(self) -> dict[str, Any]:
        with self._db_lock:
            oldest = self._db.execute(
                "SELECT created_ms FROM events ORDER BY seq LIMIT 1"
            ).fetchone()
            with self._lock:
                oldest_ms = oldest[0] if oldest else None
                if oldest_ms is None:
                    unacked = (r for r in self._ingesting + self._tail
                               if r.seq not in self._acked_early)
                    oldest_ms = next((r.created_ms for r in unacked), None)
                depth, appended, next_seq = self._depth, self._appended, self._next_seq
        on_disk = (store.file_size(self.path) + store.file_size(self._wal_path)
                   + self.journal_bytes())
        oldest_age_s = max(0.0, self._clock() - oldest_ms / 1000) if oldest_ms else 0.0
        return {
            "depth": depth,
            "oldest_age_s": round(oldest_age_s, 3),
            "bytes_on_disk": on_disk,
            "budget_bytes": self.budget.budget_bytes,
            "evicted": self.budget.evicted(),
            "appended": appended,
            "next_seq": next_seq,
        }

    def close(self) -> None:
        """Stop the flusher and leave everything in SQLite, fsynced and checkpointed."""
        self._closing.set()
        self._dirty.set()
        self._flusher.join()
        self.flush()
        with self._flush_lock:  # an eviction alarm the last flush appended
            self._commit_journal()
        self._vacuum()
        with self._db_lock:
            self._db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('open', 0)")
            # TRUNCATE syncs what it copies: the journal's records are durable in the main file.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            self._db.close()
        with self._lock:
            self._journal.close()
            self._journal.path.unlink()
