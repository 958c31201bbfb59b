"""Pairing scans with weights into parcels, by the time each frame's bytes arrived.

Scanner and scale are on different ports, so the order in which their messages are processed
says little; each message's `received_ns` (time.monotonic_ns() at arrival) is what pairs them.
A weight pairs with at most one parcel. The caller promises that when it calls `ready(now_ns)`
every message that arrived before `now_ns` has been handed over (the agent's single reader loop
does exactly this), so a parcel can be completed as soon as no better weight can still come.

Modes (PairingConfig.mode):
- `window`: the stable reading nearest to the scan within ±window_ms. The parcel is ready at
  scan + distance of the best candidate so far (a closer reading would already have arrived),
  or at scan + window when there is none.
- `poll-after-scan`: on_scan() returns True and the caller asks the scale for a stable weight;
  the first stable reading that arrives after the scan completes the oldest waiting parcel; none
  within poll_timeout_ms -> the parcel goes on without a weight.

Repeated reads of one barcode within debounce_ms of its previous read are the same parcel. A
parcel handed over after its decision deadline is marked `late` (decide() sends it to EXCEPTION).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from edge_agent.config import PairingConfig
from edge_agent.devices.messages import Scan, Weight, WeightStatus
from edge_agent.sorting.decision import Parcel

MS = 1_000_000
# Readings kept for pairing; at 50 readings a second this is 20 s, far beyond any window.
MAX_BUFFERED_WEIGHTS = 1024
# Barcodes remembered for debouncing; older ones are forgotten once past their window anyway.
MAX_DEBOUNCE_ENTRIES = 4096


@dataclass(slots=True)
class _Reading:
    received_ns: int
    value_kg: float
    claimed: bool = False


@dataclass(slots=True)
class _Pending:
    scan: Scan
    parcel_id: str
    scanned_at: datetime
    overload_seen: bool = False
    reading: _Reading | None = None  # poll-after-scan: the reply that completed it
    answered: bool = False  # poll-after-scan: the scale replied (with or without a weight)


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
        self._config = config
        self._poll = config.mode == "poll-after-scan"
        self._window_ns = config.window_ms * MS
        self._poll_timeout_ns = config.poll_timeout_ms * MS
        self._debounce_ns = config.debounce_ms * MS
        self._deadline_ns = config.decision_deadline_ms * MS
        self._new_parcel_id = new_parcel_id
        self._wall_clock = wall_clock
        self._pending: list[_Pending] = []  # in scan order
        self._readings: deque[_Reading] = deque(maxlen=MAX_BUFFERED_WEIGHTS)
        self._last_read_ns: dict[str, int] = {}

    def on_scan(self, scan: Scan) -> bool:
        """Start a parcel (or fold a repeated read into one); True: poll the scale now."""
        if not scan.no_read and self._is_repeat(scan):
            return False
        self._pending.append(_Pending(scan, self._new_parcel_id(), self._wall_clock()))
        return self._poll

    def on_weight(self, weight: Weight) -> None:
        if self._poll:
            self._answer_poll(weight)
            return
        if weight.status == WeightStatus.OVERLOAD:
            self._note_overload(weight.received_ns)
            return
        if not (weight.stable and weight.status == WeightStatus.OK and weight.value_kg is not None):
            return
        self._readings.append(_Reading(weight.received_ns, weight.value_kg))

    def _answer_poll(self, weight: Weight) -> None:
        """A polled scale's reply answers the oldest parcel still waiting whose scan preceded it.

        Every reply answers one request, a "no stable weight" (MT-SICS `S I`) or an overload
        included: if such a reply were skipped, the next parcel's weight would complete this
        parcel and every parcel after it would be paired with its successor's weight. A reading
        in motion with an ok status is not an answer (a streaming scale's or an SI poll's frame).
        """
        if weight.status == WeightStatus.OK and not weight.stable:
            return
        for pending in self._pending:
            if not pending.answered and pending.scan.received_ns <= weight.received_ns:
                pending.answered = True
                if weight.status == WeightStatus.OVERLOAD:
                    pending.overload_seen = True
                elif weight.status == WeightStatus.OK and weight.value_kg is not None:  # stable
                    pending.reading = _Reading(weight.received_ns, weight.value_kg, claimed=True)
                return

    def abandon_polls(self, scanned_before_ns: int | None = None) -> None:
        """No reply will come for these parcels' polls (the scale's link failed or was lost
        since): they go on without a weight now. Left waiting, each would take the reply to a
        later parcel's poll, and every parcel after it its successor's weight."""
        for pending in self._pending:
            if scanned_before_ns is None or pending.scan.received_ns < scanned_before_ns:
                pending.answered = True

    def pending_count(self) -> int:
        """Parcels scanned and not yet handed over."""
        return len(self._pending)

    def ready(self, now_ns: int) -> list[Parcel]:
        """Parcels complete or past their wait, in scan order; each is handed over once."""
        if self._poll:
            return self._ready_oldest_first(now_ns)
        done: list[Parcel] = []
        still: list[_Pending] = []
        for pending in self._pending:
            parcel = self._try_complete(pending, now_ns)
            if parcel is None:
                still.append(pending)
            else:
                done.append(parcel)
        self._pending = still
        self._forget_old(now_ns)
        return done

    def next_deadline_ns(self) -> int | None:
        """When ready() may next hand over a parcel (None: nothing is waiting)."""
        if self._poll:  # the oldest parcel is always the first due (see _ready_oldest_first)
            return self._due_ns(self._pending[0])[0] if self._pending else None
        times = [self._due_ns(pending)[0] for pending in self._pending]
        return min(times) if times else None

    # --- internals ------------------------------------------------------------------------

    def _ready_oldest_first(self, now_ns: int) -> list[Parcel]:
        """Poll mode: replies answer the oldest unanswered parcel, polls are abandoned for the
        oldest ones, and time-outs fall due in scan order, so the parcels due are always the
        oldest: stop at the first that is not. A burst leaves thousands waiting, and looking
        at every one of them on every turn of the loop made absorbing it quadratic."""
        done: list[Parcel] = []
        pending = self._pending
        for waiting in pending:
            parcel = self._try_complete(waiting, now_ns)
            if parcel is None:
                break
            done.append(parcel)
        if done:
            del pending[: len(done)]
        self._forget_old(now_ns)
        return done

    def _is_repeat(self, scan: Scan) -> bool:
        # pop then set: the dict stays ordered by last read, so the first key is the stalest.
        last = self._last_read_ns.pop(scan.data, None)
        self._last_read_ns[scan.data] = scan.received_ns
        if len(self._last_read_ns) > MAX_DEBOUNCE_ENTRIES:
            oldest = next(iter(self._last_read_ns))
            del self._last_read_ns[oldest]
        return last is not None and 0 <= scan.received_ns - last <= self._debounce_ns

    def _note_overload(self, received_ns: int) -> None:
        for pending in self._pending:
            if abs(received_ns - pending.scan.received_ns) <= max(
                self._window_ns, self._poll_timeout_ns if self._poll else 0
            ):
                pending.overload_seen = True

    def _best_reading(self, pending: _Pending) -> _Reading | None:
        """The unclaimed stable reading nearest the scan within the window (earlier on a tie)."""
        scan_ns = pending.scan.received_ns
        best: _Reading | None = None
        best_distance = self._window_ns + 1
        for reading in self._readings:
            distance = abs(reading.received_ns - scan_ns)
            if not reading.claimed and distance < best_distance:
                best, best_distance = reading, distance
        return best

    def _due_ns(self, pending: _Pending) -> tuple[int, _Reading | None]:
        scan_ns = pending.scan.received_ns
        if self._poll:
            if pending.answered:
                return scan_ns, pending.reading
            return scan_ns + self._poll_timeout_ns, None
        best = self._best_reading(pending)
        if best is None:
            return scan_ns + self._window_ns, None
        return scan_ns + abs(best.received_ns - scan_ns), best

    def _try_complete(self, pending: _Pending, now_ns: int) -> Parcel | None:
        due_ns, reading = self._due_ns(pending)
        if now_ns < due_ns:
            return None
        if reading is not None:
            reading.claimed = True
        scan = pending.scan
        if reading is not None:
            status: str | None = WeightStatus.OK.value
        else:
            status = WeightStatus.OVERLOAD.value if pending.overload_seen else None
        return Parcel(
            parcel_id=pending.parcel_id,
            barcode=None if scan.no_read else scan.data,
            symbology=scan.symbology,
            no_read=scan.no_read,
            weight_kg=reading.value_kg if reading else None,
            weight_stable=reading is not None,
            weight_status=status,
            scanned_at=pending.scanned_at,
            scanned_ns=scan.received_ns,
            late=now_ns > scan.received_ns + self._deadline_ns,
        )

    def _forget_old(self, now_ns: int) -> None:
        """Drop readings no waiting or future scan can pair with any more."""
        horizon = now_ns - self._window_ns
        if self._pending:
            horizon = min(horizon, self._pending[0].scan.received_ns - self._window_ns)
        while self._readings and (
            self._readings[0].received_ns < horizon or self._readings[0].claimed
        ):
            self._readings.popleft()
