"""The outbox's disk budget: what counts, when it is checked, what goes first.

Checked by the flusher after each ingestion (never on the decision thread). The budget covers
the SQLite pages in use plus the journal files; the WAL beside them is kept to a few MB by
checkpoints and not counted. When over, the oldest telemetry goes first, then alarms, parcel
and outcome events last, down to EVICT_TO_FRACTION of the budget. Every eviction is counted
(persisted in meta as `evicted.<kind>`), and a gap in alarms or parcel or outcome events is
itself appended as an alarm.

The budget is a policy over an `EvictableStore` (the outbox): it never imports the outbox nor
sees its database, locks or counters, so the two modules do not import each other.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Any, Protocol

import structlog

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


class EvictableStore(Protocol):
    """What the budget needs from the store it keeps: sizes, and a way to drop the oldest."""

    def estimated_bytes(self) -> int:
        """Payload bytes held (stored and not yet ingested): kept in memory, cheap."""
        ...

    def journal_bytes(self) -> int: ...

    def page_bytes(self) -> int:
        """SQLite pages in use (read only when the estimate is near the budget)."""
        ...

    def stored_kinds(self) -> list[str]: ...

    def evict_oldest(self, kind: str, limit: int) -> tuple[list[int], int]:
        """Delete up to `limit` of the oldest stored events of one kind, durably and counted;
        the seqs deleted and the estimated bytes they freed."""
        ...

    def append(self, kind: str, payload: dict[str, Any]) -> object: ...


class BudgetKeeper:
    def __init__(self, store: EvictableStore, budget_bytes: int,
                 evicted_before: Mapping[str, int]):
        self._store = store
        self.budget_bytes = budget_bytes
        self._evicted = dict(evicted_before)
        self._evicted_lock = threading.Lock()
        # SQLite page bytes per payload byte, as last measured (see check()).
        self._pages_per_payload_byte = 1.0

    def evicted(self) -> dict[str, int]:
        with self._evicted_lock:
            return dict(self._evicted)

    def used_bytes(self) -> int:
        """SQLite pages in use plus the journal files."""
        return self._store.page_bytes() + self._store.journal_bytes()

    def check(self) -> None:
        """Evict if over budget (cheap unless the estimate says the store is nearly full)."""
        box = self._store
        estimated = box.estimated_bytes()
        # How many page bytes a payload byte takes depends on the rows' size (a 2 KB page holds
        # two 0.9 KB rows but only one of 1 KB): the check follows the last measured ratio, or
        # a store of large events passes its budget before its real size is ever read. A record
        # may stand in the journal and in SQLite at once, so the journal comes on top.
        journal = box.journal_bytes()
        if estimated * self._pages_per_payload_byte * ESTIMATE_MARGIN + journal \
                <= self.budget_bytes:
            return
        pages = box.page_bytes()
        in_store = estimated - journal  # the journal's records are not in the pages yet
        if in_store > 0:
            self._pages_per_payload_byte = max(1.0, pages / in_store)
        # Records still in the journal will take pages at the same rate once ingested (about a
        # second's worth arrive as one batch): room is made for them now, not after.
        used = pages + int(journal * max(1.0, self._pages_per_payload_byte))
        if used > self.budget_bytes:
            self._evict(used, estimated)

    def _evict(self, used: int, estimated: int) -> None:
        box = self._store
        # Pages hold rows plus b-tree overhead: scale the payload estimate to the real use.
        ratio = max(used / max(1, estimated), 1.0)
        target = int(self.budget_bytes * EVICT_TO_FRACTION / ratio)
        evicted: dict[str, int] = {}
        gap: list[int] = []
        for kind in sorted(box.stored_kinds(), key=lambda k: EVICTION_RANK.get(k, DEFAULT_RANK)):
            while box.estimated_bytes() > target:
                seqs, _ = box.evict_oldest(kind, EVICT_BATCH)
                if not seqs:
                    break
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
