"""Holds from central: parcels that must not go down their route (an order cancelled, customs
asked to inspect), named by barcode or by order id, each with central's reason and an expiry.

`HoldIndex` is the decision loop's in-memory view of the active holds: a look-up is one or two
dict gets (a parcel with no hold costs ~0.1 µs), expiry is checked at the look-up, so an expired
hold stops applying at its second without anyone removing it, and `purge` drops expired ones
from memory in order of expiry (a heap: no scan of every hold). The holds are persisted by
edge_agent.sorting.hold_store; central changes them with deltas (`holds.put`, `holds.lift`),
idempotent by hold id.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple, Protocol

from edge_agent.errors import EdgeAgentError

# Every text of a hold is bounded: the reason goes into every held parcel's event.
MAX_HOLD_ID_CHARS = 64
MAX_KEY_CHARS = 64  # a manifest barcode or order id is at most this long
MAX_REASON_CHARS = 200
# A hold is for a parcel on its way through this warehouse; a year is longer than any stays.
MAX_HOLD_DAYS = 366


class HoldError(EdgeAgentError):
    """Holds that cannot be taken; `problems` names each (`holds[2].expires_at: ...`)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class HoldRequest(Protocol):
    """What central sends for one hold (edge_agent.sync.payloads.HoldModel)."""

    hold_id: str
    barcode: str | None
    order_id: str | None
    reason: str
    expires_at: datetime


class Hold(NamedTuple):
    hold_id: str
    barcode: str | None  # exactly one of barcode and order_id is set
    order_id: str | None
    reason: str
    expires_at: float  # UNIX seconds: compared with the decision's clock at every look-up
    put_at: float  # UNIX seconds, when the agent took it

    def to_dict(self) -> dict[str, object]:
        return {
            "hold_id": self.hold_id, "barcode": self.barcode, "order_id": self.order_id,
            "reason": self.reason, "expires_at": _iso(self.expires_at),
            "put_at": _iso(self.put_at),
        }


def holds_from_requests(requests: Iterable[HoldRequest], now: float) -> list[Hold]:
    """Holds made from central's (shape-checked) requests at `now` (UNIX seconds); HoldError
    names every request that cannot be taken: already expired, too far ahead, an id given twice.
    All or nothing: which of two copies of one id is meant is a guess."""
    holds: list[Hold] = []
    problems: list[str] = []
    seen: dict[str, int] = {}
    for index, request in enumerate(requests):
        where = f"holds[{index}]"
        expires_at = request.expires_at.timestamp()
        if request.hold_id in seen:
            problems.append(f"{where}.hold_id: {request.hold_id!r} is already holds"
                            f"[{seen[request.hold_id]}]")
        seen.setdefault(request.hold_id, index)
        if expires_at <= now:
            problems.append(f"{where}.expires_at: {request.expires_at.isoformat()} is already "
                            f"past (agent time {_iso(now)})")
        elif expires_at > now + MAX_HOLD_DAYS * 86_400:
            problems.append(f"{where}.expires_at: at most {MAX_HOLD_DAYS} days ahead")
        holds.append(Hold(request.hold_id, request.barcode, request.order_id, request.reason,
                          expires_at, now))
    if problems:
        raise HoldError(problems)
    return holds


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat(timespec="seconds")


class HoldIndex:
    """The active holds by id, barcode and order id. Owned by one thread (the decision loop)."""

    def __init__(self, holds: list[Hold] | tuple[Hold, ...] = ()) -> None:
        self._by_id: dict[str, Hold] = {}
        # key -> {hold id: hold}: several holds may name one parcel (customs and a
        # cancellation); lifting one leaves the others.
        self._by_barcode: dict[str, dict[str, Hold]] = {}
        self._by_order: dict[str, dict[str, Hold]] = {}
        self._expiry: list[tuple[float, str]] = []
        self._newest: Hold | None = None  # None: not known, found again when asked
        for hold in holds:
            self.put(hold)

    def __len__(self) -> int:
        return len(self._by_id)

    def __bool__(self) -> bool:
        return bool(self._by_id)

    def put(self, hold: Hold) -> None:
        """Add or replace (same hold id) a hold."""
        self.lift(hold.hold_id)
        self._by_id[hold.hold_id] = hold
        if hold.barcode is not None:
            self._by_barcode.setdefault(hold.barcode, {})[hold.hold_id] = hold
        if hold.order_id is not None:
            self._by_order.setdefault(hold.order_id, {})[hold.hold_id] = hold
        heapq.heappush(self._expiry, (hold.expires_at, hold.hold_id))
        if len(self._expiry) > 2 * len(self._by_id) + 1024:
            # Entries of lifted or replaced holds stay in the heap until their expiry; a
            # central that re-puts the same holds every minute must not grow it for ever.
            self._expiry = [(h.expires_at, h.hold_id) for h in self._by_id.values()]
            heapq.heapify(self._expiry)
        if self._newest is not None and hold.put_at >= self._newest.put_at:
            self._newest = hold

    def lift(self, hold_id: str) -> bool:
        """Remove a hold; False when there was none by that id (lifting twice is harmless)."""
        hold = self._by_id.pop(hold_id, None)
        if hold is None:
            return False
        if self._newest is hold:
            self._newest = None
        for key, table in ((hold.barcode, self._by_barcode), (hold.order_id, self._by_order)):
            if key is not None:
                named = table[key]
                del named[hold_id]
                if not named:
                    del table[key]
        return True  # its heap entry stays until purge pops it (and finds no such hold)

    def find(self, barcode: str | None, order_id: str | None, now: float) -> Hold | None:
        """The hold that applies to this parcel at `now` (UNIX seconds), if any: the one that
        lasts longest when several do."""
        found = None
        for key, table in ((barcode, self._by_barcode), (order_id, self._by_order)):
            named = table.get(key) if key is not None else None
            if named:
                for hold in named.values():
                    if hold.expires_at > now and (found is None
                                                  or hold.expires_at > found.expires_at):
                        found = hold
        return found

    def purge(self, now: float) -> int:
        """Forget the holds expired at `now`; how many."""
        purged = 0
        expiry = self._expiry
        while expiry and expiry[0][0] <= now:
            expires_at, hold_id = heapq.heappop(expiry)
            hold = self._by_id.get(hold_id)
            if hold is not None and hold.expires_at == expires_at:
                self.lift(hold_id)
                purged += 1
        return purged

    def newest(self) -> Hold | None:
        """The hold put last (searched only after the newest one was lifted or expired)."""
        if self._newest is None:
            self._newest = max(self._by_id.values(), key=lambda hold: hold.put_at,
                               default=None)
        return self._newest

    def view(self, now: float) -> dict[str, object]:
        """For the status and telemetry: how many holds are active, and the newest."""
        self.purge(now)
        newest = self.newest()
        return {"active": len(self._by_id),
                "newest": newest.to_dict() if newest is not None else None}
