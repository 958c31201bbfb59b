"""The outbox's disk budget: what counts, when it is checked, what goes first.

Checked by the flusher after each ingestion (never on the decision thread). The budget covers
the SQLite pages in use plus the journal files; the WAL beside them is kept to a few MB by
checkpoints and not counted. When over, the oldest telemetry goes first, then alarms, parcel
and outcome events last, down to EVICT_TO_FRACTION of the budget. Every eviction is counted
(persisted in meta as `evicted.<kind>`), and a gap in alarms or parcel or outcome events is
itself appended as an alarm.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import structlog

from edge_agent.sync import outbox_store as store
from edge_agent.sync.outbox_store import ROW_OVERHEAD_BYTES

if TYPE_CHECKING:
    from edge_agent.sync.outbox import Outbox

log = structlog.get_logger(__name__)

# When over budget, evict down to this fraction of it, so eviction runs rarely, not per window.
EVICT_TO_FRACTION = 0.9
# The payload estimate is compared with the budget first; the real pages (two PRAGMAs) are
# read only once the estimate, times the last measured pages-per-payload ratio, is within this
# factor of it. A row that does not fit twice in a page takes a whole one, so the ratio can be
# ~2 before it is first measured: 3 leaves room for that.
ESTIMATE_MARGIN = 3.0
# Rows deleted per eviction transaction.
EVICT_BATCH = 1000

# Lower ranks are evicted first when the disk budget is reached.
EVICTION_RANK = {"telemetry": 0, "alarm": 1, "parcel": 2, "outcome": 2}
DEFAULT_RANK = 1


class BudgetKeeper:
    def __init__(self, outbox: Outbox, budget_bytes: int):
        self._outbox = outbox
        self.budget_bytes = budget_bytes
        rows = outbox._db.execute("SELECT key, value FROM meta WHERE key LIKE 'evicted.%'")
        self._evicted = {key.removeprefix("evicted."): value for key, value in rows}
        self._evicted_lock = threading.Lock()
        # SQLite page bytes per payload byte, as last measured (see check()).
        self._pages_per_payload_byte = 1.0

    def evicted(self) -> dict[str, int]:
        with self._evicted_lock:
            return dict(self._evicted)

    def used_bytes(self) -> int:
        """SQLite pages in use plus the journal files."""
        with self._outbox._db_lock:
            pages = store.live_bytes(self._outbox._db)
        return pages + self._outbox.journal_bytes()

    def check(self) -> None:
        """Evict if over budget (cheap unless the estimate says the store is nearly full)."""
        box = self._outbox
        with box._lock:
            estimated = box._estimated_bytes
        # How many page bytes a payload byte takes depends on the rows' size (a 2 KB page holds
        # two 0.9 KB rows but only one of 1 KB): the check follows the last measured ratio, or
        # a store of large events passes its budget before its real size is ever read. A record
        # may stand in the journal and in SQLite at once, so the journal comes on top.
        journal = box.journal_bytes()
        if estimated * self._pages_per_payload_byte * ESTIMATE_MARGIN + journal \
                <= self.budget_bytes:
            return
        with box._db_lock:
            pages = store.live_bytes(box._db)
        in_store = estimated - journal  # the journal's records are not in the pages yet
        if in_store > 0:
            self._pages_per_payload_byte = max(1.0, pages / in_store)
        # Records still in the journal will take pages at the same rate once ingested (about a
        # second's worth arrive as one batch): room is made for them now, not after.
        used = pages + int(journal * max(1.0, self._pages_per_payload_byte))
        if used > self.budget_bytes:
            self._evict(used, estimated)

    def _evict(self, used: int, estimated: int) -> None:
        box = self._outbox
        # Pages hold rows plus b-tree overhead: scale the payload estimate to the real use.
        ratio = max(used / max(1, estimated), 1.0)
        target = int(self.budget_bytes * EVICT_TO_FRACTION / ratio)
        evicted: dict[str, int] = {}
        gap: list[int] = []
        with box._db_lock:
            kinds = [k for (k,) in box._db.execute("SELECT DISTINCT kind FROM events")]
            for kind in sorted(kinds, key=lambda k: EVICTION_RANK.get(k, DEFAULT_RANK)):
                while box._estimated_bytes > target:
                    seqs, size = self._evict_batch(kind)
                    if not seqs:
                        break
                    with box._lock:
                        box._estimated_bytes -= size
                        box._depth -= len(seqs)
                    with self._evicted_lock:
                        self._evicted[kind] = self._evicted.get(kind, 0) + len(seqs)
                    evicted[kind] = evicted.get(kind, 0) + len(seqs)
                    if kind != "telemetry":
                        gap += [seqs[0], seqs[-1]]
        log.warning("outbox.evicted", evicted=evicted, budget_bytes=self.budget_bytes)
        if gap:
            # The hole itself is news for central: an alarm names what was dropped.
            box.append("alarm", {
                "alarm": "outbox_evicted",
                "severity": "critical",
                "message": "disk budget reached: undelivered events were dropped",
                "details": {"evicted": evicted, "first_seq": min(gap), "last_seq": max(gap)},
            })

    def _evict_batch(self, kind: str) -> tuple[list[int], int]:
        """Delete the oldest stored rows of one kind (caller holds the database lock)."""
        db = self._outbox._db
        rows = db.execute(
            "SELECT seq, LENGTH(body) FROM events WHERE kind = ? ORDER BY seq LIMIT ?",
            (kind, EVICT_BATCH),
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
            store.set_meta_max(db, "last_seq", seqs[-1])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return seqs, sum(size + ROW_OVERHEAD_BYTES for _, size in rows)
