"""Pairing scans with weights into parcels, in the line's physical order.

The invariant: **a parcel carries its own reading or none.** When pairing cannot prove which
reading is a parcel's, the parcel goes on without a weight and says why (`weight_pairing`), so
the rules send it to EXCEPTION; it never takes a neighbour's reading. One fault costs the
parcel it hit, and at most its immediate neighbour when the two cannot be told apart.

Scanner and scale are on different ports, so the order in which their messages are processed
says little; each message's `received_ns` (time.monotonic_ns() at arrival) is what pairs them.
The caller promises that when it calls `ready(now_ns)` every message that arrived before
`now_ns` has been handed over (the agent's single reader loop does exactly this).

Modes (PairingConfig.mode), each in a module of its own:
- `window` (edge_agent.sorting.pairing_window): a streaming or self-reporting scale; a parcel's
  reading settles at `offset_ms` ± `window_ms` from its scan.
- `poll-after-scan` (edge_agent.sorting.pairing_poll): the agent asks the scale for a stable
  weight after each scan, one request outstanding at a time (`next_request()`).

Repeated reads of one barcode within debounce_ms of its previous read are the same parcel. A
parcel handed over after its decision deadline is marked `late` (decide() sends it to EXCEPTION).
`counts` tells how pairing went (paired, each reason for no weight, scans too close together,
replies discarded), for the status view, telemetry and alarms.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime

from edge_agent.config import PairingConfig
from edge_agent.devices.messages import Scan, Weight, WeightStatus
from edge_agent.sorting.decision import Parcel
from edge_agent.sorting.pairing_parcels import Waiting, WeightMatch
from edge_agent.sorting.pairing_poll import PollPairer
from edge_agent.sorting.pairing_window import WindowPairer
from edge_agent.units import NS_PER_MS

# Barcodes remembered for debouncing; older ones are forgotten once past their window anyway.
MAX_DEBOUNCE_ENTRIES = 4096


def _utc_now() -> datetime:
    return datetime.now(UTC)


class Pairer:
    def __init__(
        self,
        config: PairingConfig,
        *,
        new_parcel_id: Callable[[], str],
        wall_clock: Callable[[], datetime] = _utc_now,
    ):
        self.config = config
        self.counts: Counter[str] = Counter()
        self.polled = config.mode == "poll-after-scan"
        self._window = None if self.polled else WindowPairer(config, self.counts)
        self._poll = PollPairer(config, self.counts) if self.polled else None
        self._debounce_ns = config.debounce_ms * NS_PER_MS
        self._deadline_ns = config.decision_deadline_ms * NS_PER_MS
        self._new_parcel_id = new_parcel_id
        self._wall_clock = wall_clock
        self._waiting: list[Waiting] = []  # in scan order
        self._last_read_ns: dict[str, int] = {}

    # -- input -----------------------------------------------------------------------------

    def on_scan(self, scan: Scan, stamp_error_ns: int = 0) -> bool:
        """Start a parcel (or fold a repeated read into one); True: a new parcel (in poll mode
        the caller then asks `next_request()` whether to poll the scale now).
        `stamp_error_ns`: how late the scan's stamp may be (edge_agent.devices.hub)."""
        if not scan.no_read and self._is_repeat(scan):
            self.counts["repeated_reads"] += 1
            return False
        waiting = Waiting(scan, self._new_parcel_id(), self._wall_clock(), stamp_error_ns)
        self._waiting.append(waiting)
        if self._window is not None:
            self._window.on_scan(scan, stamp_error_ns)
        return True

    def on_weight(self, weight: Weight, stamp_error_ns: int = 0) -> None:
        if self._poll is not None:
            self._poll.on_weight(weight)
        else:
            self._window.on_weight(weight, stamp_error_ns)  # type: ignore[union-attr]

    def on_garbled(self, received_ns: int) -> None:
        """The scale sent a frame that could not be decoded."""
        if self._poll is not None:
            self._poll.on_garbled(received_ns)

    # -- poll mode -------------------------------------------------------------------------

    def next_request(self, now_ns: int) -> bool:
        """Poll mode: True when the caller must ask the scale for a stable weight now."""
        return self._poll is not None and self._poll.next_request(self._waiting, now_ns) is not None

    def request_failed(self, now_ns: int) -> None:
        """Poll mode: the request could not be written (the scale is disconnected)."""
        if self._poll is not None:
            self._poll.request_failed(now_ns)

    def abandon_polls(self, now_ns: int) -> None:
        """Poll mode: the scale's link was lost; a reply to the outstanding request never comes."""
        if self._poll is not None:
            self._poll.abandon(now_ns)

    # -- output ----------------------------------------------------------------------------

    def pending_count(self) -> int:
        """Parcels scanned and not yet handed over."""
        return len(self._waiting)

    def ready(self, now_ns: int) -> list[Parcel]:
        """Parcels whose weight is settled, in scan order; each is handed over once.

        Every parcel's due time grows with its scan time in both modes (poll mode answers in
        scan order), so the parcels due are always the oldest: stop at the first that is not.
        A burst leaves thousands waiting, and looking at each of them on every turn would make
        absorbing it quadratic.
        """
        done: list[Parcel] = []
        waiting = self._waiting
        for index, parcel in enumerate(waiting):
            following = waiting[index + 1] if index + 1 < len(waiting) else None
            # Poll mode: once the next parcel is scanned, an answered parcel's reply is known to
            # have come before it or not, so it need not wait out the reorder margin.
            settled_early = self.polled and parcel.match is not None and following is not None
            if now_ns < self._due_ns(parcel) and not settled_early:
                break
            done.append(self._hand_over(parcel, following, now_ns))
        if done:
            del waiting[: len(done)]
        if self._window is not None:
            oldest = waiting[0].scan.received_ns if waiting else None
            self._window.forget_before(oldest, now_ns)
        return done

    def next_deadline_ns(self) -> int | None:
        """When ready() may next hand over a parcel, or a request may go (None: nothing waits)."""
        if not self._waiting:
            return None
        due = self._due_ns(self._waiting[0])
        if self._poll is not None:
            request_ns = self._poll.next_request_ns(self._waiting)
            if request_ns is not None:
                due = min(due, request_ns)
        return due

    # -- internals -------------------------------------------------------------------------

    def _due_ns(self, waiting: Waiting) -> int:
        if self._poll is not None:
            return self._poll.due_ns(waiting)
        return self._window.due_ns(waiting)  # type: ignore[union-attr]

    def _hand_over(self, waiting: Waiting, following: Waiting | None, now_ns: int) -> Parcel:
        if self._poll is not None:
            match = self._poll.match(waiting, following, now_ns)
        else:
            match = self._window.match(waiting)  # type: ignore[union-attr]
        self.counts[match.pairing] += 1
        scan = waiting.scan
        return Parcel(
            parcel_id=waiting.parcel_id,
            barcode=None if scan.no_read else scan.data,
            symbology=scan.symbology,
            no_read=scan.no_read,
            weight_kg=match.value_kg,
            weight_stable=match.value_kg is not None,
            weight_status=_weight_status(match),
            scanned_at=waiting.scanned_at,
            scanned_ns=scan.received_ns,
            late=now_ns > scan.received_ns + self._deadline_ns,
            weight_pairing=match.pairing,
            weight_offset_ms=None if match.offset_ms is None else round(match.offset_ms, 1),
        )

    def _is_repeat(self, scan: Scan) -> bool:
        # pop then set: the dict stays ordered by last read, so the first key is the stalest.
        last = self._last_read_ns.pop(scan.data, None)
        self._last_read_ns[scan.data] = scan.received_ns
        if len(self._last_read_ns) > MAX_DEBOUNCE_ENTRIES:
            oldest = next(iter(self._last_read_ns))
            del self._last_read_ns[oldest]
        return last is not None and 0 <= scan.received_ns - last <= self._debounce_ns


def _weight_status(match: WeightMatch) -> str | None:
    if match.value_kg is not None:
        return WeightStatus.OK.value
    return WeightStatus.OVERLOAD.value if match.pairing == "overload" else None
