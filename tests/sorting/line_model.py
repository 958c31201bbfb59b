"""A model of a line's scan and weight messages, with the faults real lines have, for pairing.

`window_line()` lays parcels on a belt: each parcel is scanned, and its reading settles at the
configured offset from the scan give or take jitter, as frames of a streaming scale (motion,
a run of stable frames, then an empty platter). Faults, each drawn per parcel:

- unsettled: motion frames only;         - lost: no frame of the parcel at all;
- corrupt: the stable frames garbled;    - extra: a second stable reading near its own;
- no_read: the scan is a no-read;        - double_scan: the label read twice;
- missed_scan: no scan, reading present; - busy: the host stamps the scan and the reading late
                                            together (both read in one late turn of the loop).

Every parcel's weight is unique, so a test can tell its own reading from a neighbour's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_agent.devices.messages import Scan, Weight, WeightStatus
from edge_agent.units import NS_PER_MS

FAULTS = ("unsettled", "lost", "corrupt", "extra", "no_read", "double_scan", "missed_scan",
          "busy")
# Faults that cost nothing: the parcel is still paired right (or, for a no-read, still has
# its own weight, which the rules ignore).
HARMLESS = {"double_scan", "no_read"}
FRAME_PERIOD_MS = 5
# One parcel's frames span this long (motion, settled, empty platter, an extra reading): parcels
# closer together than this plus their jitter would be on the platter at once, which no single
# scale can show. Generated lines keep their gaps above it.
PARCEL_FRAMES_MS = 50


@dataclass
class LineParcel:
    index: int
    scan_ms: float
    weight_kg: float
    fault: str | None = None
    settle_ms: float | None = None  # when its reading settled (window lines)


@dataclass
class Line:
    parcels: list[LineParcel]
    # Each message with how late its stamp may be (the hub's stamp_error_ns), in stamp order.
    messages: list[tuple[Scan | Weight, int]] = field(default_factory=list)
    # (from, to) ms of each time the loop was away ("busy"): every byte that arrived meanwhile
    # was stamped late together.
    stalls: list[tuple[float, float]] = field(default_factory=list)

    def parcels_hit(self) -> int:
        """Parcels a fault touched: its own, for each costly fault, and for a stall every parcel
        whose scan or reading came while the loop was away (a stall longer than the gap between
        parcels holds back the bytes of several; the model delays only its own parcel's, which
        costs no more)."""
        hit = {p.index for p in self.parcels if p.fault and p.fault not in HARMLESS}
        for start, end in self.stalls:
            hit |= {p.index for p in self.parcels
                    if start <= p.scan_ms <= end
                    or (p.settle_ms is not None and start <= p.settle_ms <= end)}
        return len(hit)

    def own_weight_by_scan_ns(self) -> dict[int, float]:
        return {int(p.scan_ms * NS_PER_MS): p.weight_kg for p in self.parcels}


def window_line(gaps_ms: list[float], offset_ms: float, jitters_ms: list[tuple[float, float]],
                faults: list[str | None], *, settle_frames: int = 3) -> Line:
    """Messages for parcels `gaps_ms` apart (scan jitter, reading jitter per parcel)."""
    parcels, messages, stalls = [], [], []
    t = 1000.0
    for index, (gap, (scan_jitter, reading_jitter), fault) in enumerate(
            zip(gaps_ms, jitters_ms, faults, strict=True)):
        t += gap
        scan_ms = t + scan_jitter
        kg = round(1.0 + index * 0.137, 3)
        settle_ms = t + offset_ms + reading_jitter
        parcel = LineParcel(index, scan_ms, kg, fault, settle_ms)
        parcels.append(parcel)
        scans = [(m, 0) for m in _scans(parcel, fault)]
        frames = [(m, 0) for m in _frames(kg, settle_ms, fault, settle_frames)]
        if fault == "busy":  # the loop was away; it read both ports late, in one turn
            away_from = min(scan_ms, settle_ms - 2 * FRAME_PERIOD_MS) - 1
            late = max(scan_ms, settle_ms) + 7
            stalls.append((away_from, late))
            scans = [_late(m, away_from, late) for m, _ in scans]
            frames = [_late(m, away_from, late) for m, _ in frames]
        messages += scans + frames
    messages.sort(key=lambda m: m[0].received_ns)
    return Line(parcels, messages, stalls)


def _scans(parcel: LineParcel, fault: str | None) -> list[Scan]:
    at = int(parcel.scan_ms * NS_PER_MS)
    data = f"P{parcel.index}"
    if fault == "missed_scan":
        return []
    if fault == "no_read":
        return [Scan(data="NOREAD", no_read=True, received_ns=at)]
    if fault == "double_scan":
        return [Scan(data=data, received_ns=at), Scan(data=data, received_ns=at + 3 * NS_PER_MS)]
    return [Scan(data=data, received_ns=at)]


def _frames(kg: float, settle_ms: float, fault: str | None, settle_frames: int) -> list[Weight]:
    if fault == "lost":
        return []
    frames = [_weight(kg * 0.7, settle_ms - 2 * FRAME_PERIOD_MS, stable=False),
              _weight(kg * 0.95, settle_ms - FRAME_PERIOD_MS, stable=False)]
    if fault == "unsettled":
        frames += [_weight(kg * (1 + 0.02 * (n % 2)), settle_ms + n * FRAME_PERIOD_MS,
                           stable=False) for n in range(settle_frames)]
    elif fault == "corrupt":
        frames += [_weight(None, settle_ms + n * FRAME_PERIOD_MS, stable=False,
                           status=WeightStatus.ERROR) for n in range(settle_frames)]
    else:
        frames += [_weight(kg, settle_ms + n * FRAME_PERIOD_MS) for n in range(settle_frames)]
    end = settle_ms + settle_frames * FRAME_PERIOD_MS
    frames.append(_weight(0.0, end))  # the parcel left: an empty platter
    if fault == "extra":  # something else settled on the platter right after it
        frames += [_weight(kg + 5.0, end + FRAME_PERIOD_MS),
                   _weight(0.0, end + 2 * FRAME_PERIOD_MS)]
    return frames


def _weight(kg: float | None, at_ms: float, *, stable: bool = True,
            status: WeightStatus = WeightStatus.OK) -> Weight:
    return Weight(value=kg, unit="kg", value_kg=kg, stable=stable, status=status,
                  received_ns=int(at_ms * NS_PER_MS))


def _late(message: Scan | Weight, away_from_ms: float, back_ms: float
          ) -> tuple[Scan | Weight, int]:
    """What arrived while the loop was away is stamped when it came back, with the error."""
    arrived_ms = message.received_ns / NS_PER_MS
    if arrived_ms > back_ms:
        return message, 0
    fields = {name: getattr(message, name) for name in message.__slots__ if name != "kind"}
    late = type(message)(**{**fields, "received_ns": int(back_ms * NS_PER_MS)})
    return late, int((back_ms - away_from_ms) * NS_PER_MS)


# --- a polled scale ---------------------------------------------------------------------------
POLL_FAULTS = ("lost", "garbled", "late", "unsettled", "spurious", "offline", "no_read",
               "double_scan")


@dataclass
class PolledParcel:
    index: int
    scan_ms: float
    placed_ms: float  # when it reached the platter (the scan's time, give or take reordering)
    weight_kg: float
    fault: str | None = None


def run_polled_line(pairer, parcels: list[PolledParcel], reply_ms: list[float],
                    late_by_ms: float) -> list:
    """Drive `pairer` as the agent does, against a scale that answers each request `reply_ms`
    later with whatever is on its platter then (MT-SICS `S`). Returns the parcels handed over.

    A parcel's fault applies to the request made while it is the one waiting for a reply."""
    import heapq
    events: list[tuple[float, int, str, object]] = []
    order = iter(range(10**9))

    def at(ms: float, kind: str, payload: object = None) -> None:
        heapq.heappush(events, (ms, next(order), kind, payload))

    for p in parcels:
        if p.fault == "no_read":
            at(p.scan_ms, "scan",
               Scan(data="NOREAD", no_read=True, received_ns=int(p.scan_ms * NS_PER_MS)))
        else:
            at(p.scan_ms, "scan", Scan(data=f"P{p.index}", received_ns=int(p.scan_ms * NS_PER_MS)))
            if p.fault == "double_scan":
                at(p.scan_ms + 4, "scan", Scan(data=f"P{p.index}",
                                               received_ns=int((p.scan_ms + 4) * NS_PER_MS)))
        if p.fault == "spurious":  # the print key pressed: the platter's weight, unasked
            at(p.placed_ms + 1, "reply", ("platter", None))
    handed: list = []
    requests = 0

    def on_platter(ms: float) -> PolledParcel | None:
        here = [p for p in parcels if p.placed_ms <= ms]
        return here[-1] if here else None

    while events:
        now, _, kind, payload = heapq.heappop(events)
        now_ns = int(now * NS_PER_MS)
        handed += pairer.ready(now_ns)
        if kind == "scan":
            pairer.on_scan(payload)
        elif kind == "reply":
            what, value = payload
            if what == "platter":
                what, value = "weight", on_platter(now).weight_kg
            if what == "weight":
                pairer.on_weight(Weight(value=value, unit="kg", value_kg=value, stable=True,
                                        received_ns=now_ns))
            elif what == "no_stable":
                pairer.on_weight(Weight(value=None, unit="kg", value_kg=None, stable=False,
                                        status=WeightStatus.ERROR, received_ns=now_ns))
            else:
                pairer.on_garbled(now_ns)
        handed += pairer.ready(now_ns)
        if pairer.next_request(now_ns):
            # The fault of the parcel the request is for: the oldest scanned and not handed.
            asked = [p for p in parcels if p.scan_ms <= now][len(handed):][:1]
            fault = asked[0].fault if asked else None
            delay = reply_ms[requests % len(reply_ms)]
            requests += 1
            if fault == "offline":
                pairer.request_failed(now_ns)
            elif fault == "lost":
                pass
            else:
                answer_ms = now + delay + (late_by_ms if fault == "late" else 0)
                on = on_platter(answer_ms)
                if fault == "garbled":
                    at(answer_ms, "reply", ("garbled", None))
                elif fault == "unsettled" or on is None:
                    at(answer_ms, "reply", ("no_stable", None))
                else:
                    at(answer_ms, "reply", ("weight", on.weight_kg))
        deadline = pairer.next_deadline_ns()
        if deadline is not None:
            at(max(deadline / NS_PER_MS, now + 0.001), "wake")
    return handed + pairer.ready(10**15)
