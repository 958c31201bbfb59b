"""A simulated line that produces pairing faults on demand, on ptys, timed by one thread.

What pairing must survive (issue 12) is timing: a reading that settles too early or never, a
frame lost on the line, bytes of two ports held back and delivered together. A device thread
per port (edge_agent.simulation.line_sim) waits for the interpreter lock for up to 5 ms, which is
a jitter of its own; here one thread plays a precomputed timeline of writes, in a process of
its own, so every fault happens where the plan put it and nowhere else.

The plan (`plan_line`): `count` parcels at `rate` a second, each with a unique weight and its
manifest row, and exactly round(fault_rate x count) faulted parcels, never two within two
parcels of each other (so each figure measures what one fault costs; runs of faults are the
property tests' business, tests/sorting/test_pairing_properties.py). The geometry (`Geometry`)
follows the rate as a calibrated line would: the gap between parcels sets the pairing window.

Two scales, both protocol-true:

- `streaming`: an MT-SICS balance in continuous mode (profile `mt-sics-continuous`: streams
  after the agent's `SIR`). A frame every `frame_ms`: `S S 0.000 kg` while the platter is empty,
  `S D <kg> kg` while a parcel arrives (motion), a run of `S S <kg> kg` once it settled, then
  empty again. A parcel's reading settles `offset_ms` from its scan (negative: before it), give
  or take `jitter_ms`. Faults: `unsettled` (motion frames only), `frame_lost` (its first stable
  frame lost, or garbled, on the line), `extra_reading` (a brief stable reading at another
  value just before its own), `host_busy` (both ports' bytes from just before the parcel's
  reading to just after its scan held back and written together late, as a host that did not
  run the agent delivers them).
- `polled`: an MT-SICS scale at the scanner (profile `mt-sics`, pairing `poll-after-scan`):
  a parcel reaches the platter as its label is read; `S` is answered `reply_ms` after the
  parcel arrived (at once if it is already settled) with what the platter holds *then*.
  Faults on the answer to the parcel's request: `reply_lost`, `reply_garbled`, `reply_late`
  (after the agent's time-out), `no_stable` (`S I`: it never settled).

When this process itself is not run in time (a loaded host), it does not write what fell due
meanwhile in one go, which would be a host_busy fault the plan does not have: the belt stops,
and the rest of the plan moves later (`line_stalls` in the results counts those stops).

Scanner faults for either scale: `no_read` (`NOREAD`), `double_read` (the label read twice),
`missed_scan` (the parcel passes unread: the scale still weighs it).

Run as a process: `python -m edge_agent.simulation.fault_line DIR PLAN.json RESULTS.json` prints
`ready` once the pty links (DIR/dev/scanner, scale, sorter) exist, serves the agent's start-up
commands, plays the timeline on a `go` line on stdin, writes RESULTS.json and prints `done`
when every expected lane command arrived (or DRAIN_TIMEOUT_S after the last write), and keeps
the ptys open until stdin closes.
"""

from __future__ import annotations

import bisect
import json
import random
import selectors
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from edge_agent.simulation.device_pty import DevicePty, acknowledge_divert, report_and_hold
from edge_agent.units import NS_PER_MS

SCALES = ("streaming", "polled")
STREAMING_FAULTS = ("unsettled", "frame_lost", "extra_reading", "host_busy")
POLLED_FAULTS = ("reply_lost", "reply_garbled", "reply_late", "no_stable")
SCANNER_FAULTS = ("no_read", "double_read", "missed_scan")
# Faults the agent absorbs: the parcel still carries its own weight (a no-read has it too; the
# rules send it to EXCEPTION for its label). Every other fault costs the parcel its weight.
ABSORBED = frozenset({"frame_lost", "double_read", "no_read"})
# A faulted parcel has at least this many healthy parcels on each side.
FAULT_SPACING = 2
# Frames of one parcel on a streaming scale: motion, then a run of stable frames.
MOTION_FRAMES = 2
STABLE_FRAMES = 4
DRAIN_TIMEOUT_S = 15.0
# The line writes each byte within this of its planned time, or stops its belt (see `play`).
MAX_LATE_NS = 1_000_000
# A pty the agent has not opened (or has closed) is listened to again after this long.
HUNG_UP_RETRY_NS = 10_000_000
SCANNER_PREFIX = "]C0"
EMPTY_FRAME = b"S S      0.000 kg\r\n"
GARBLED_FRAME = b"S S ###.#\x7f kg\r\n"


def scale_profile(scale: str) -> str:
    return "mt-sics-continuous" if scale == "streaming" else "mt-sics"


def faults_for(scale: str) -> tuple[str, ...]:
    return (STREAMING_FAULTS if scale == "streaming" else POLLED_FAULTS) + SCANNER_FAULTS


@dataclass(frozen=True)
class Geometry:
    """Where the line's devices sit and how the agent is set to pair them, at one rate."""

    rate: float
    offset_ms: float  # streaming: reading settles this long after the scan (negative: before)
    window_ms: int  # streaming: the agent's tolerance around offset_ms
    reading_jitter_ms: float  # streaming: the reading's own spread (uniform, ±)
    scan_jitter_ms: float  # a scan's spread around its slot on the belt (uniform, ±)
    frame_ms: float  # streaming: one frame this often
    reply_ms: float  # polled: the platter settles (and `S` is answered) this long after arrival
    poll_timeout_ms: int  # polled: the agent's wait for a reply
    resync_ms: int  # polled: the agent's quiet time after a lost or garbled reply

    @classmethod
    def for_rate(cls, rate: float) -> Geometry:
        """A line calibrated for `rate`: windows and waits a fraction of the gap between
        parcels, so neighbours' windows never overlap (2 x window < the smallest gap)."""
        gap = 1000.0 / rate
        return cls(
            rate=rate,
            offset_ms=-round(min(40.0, 0.4 * gap), 1),
            window_ms=max(1, int(min(100.0, 0.3 * gap))),
            reading_jitter_ms=round(min(20.0, 0.1 * gap), 2),
            scan_jitter_ms=round(min(10.0, 0.05 * gap), 2),
            frame_ms=round(min(5.0, gap / 20), 2),
            reply_ms=round(min(40.0, 0.2 * gap), 2),
            poll_timeout_ms=max(1, int(min(400.0, 0.5 * gap))),
            resync_ms=max(1, int(min(200.0, 0.2 * gap))),
        )

    @property
    def gap_ms(self) -> float:
        return 1000.0 / self.rate

    def pairing_toml(self, scale: str) -> str:
        if scale == "streaming":
            return (f'mode = "window"\noffset_ms = {round(self.offset_ms)}\n'
                    f"window_ms = {self.window_ms}\n")
        return (f'mode = "poll-after-scan"\npoll_timeout_ms = {self.poll_timeout_ms}\n'
                f"resync_ms = {self.resync_ms}\n")


@dataclass
class PlannedParcel:
    index: int
    barcode: str
    weight_kg: float
    scan_ms: float  # from the start of the run
    settle_ms: float  # streaming: its reading settles; polled: `S` can be answered
    fault: str | None = None

    @property
    def extra_kg(self) -> float:
        """The extra reading's value: off by more than the scale's same-value tolerance, and
        ending in 5 g where every parcel's weight ends in 0 g, so it is no parcel's weight."""
        return round(round(self.weight_kg * 0.9, 2) + 0.005, 3)

    def manifest_row(self) -> dict:
        return {"barcode": self.barcode, "country": "CN", "postal_code": "200120",
                "declared_weight_kg": self.weight_kg, "service": "standard"}

    def seen(self) -> bool:
        """Whether the agent hears of this parcel at all (a missed scan: never)."""
        return self.fault != "missed_scan"


@dataclass
class LinePlan:
    scale: str
    geometry: Geometry
    parcels: list[PlannedParcel]
    seed: int

    def to_json(self) -> str:
        return json.dumps({"scale": self.scale, "geometry": asdict(self.geometry),
                           "seed": self.seed, "parcels": [asdict(p) for p in self.parcels]})

    @classmethod
    def from_json(cls, text: str) -> LinePlan:
        data = json.loads(text)
        return cls(data["scale"], Geometry(**data["geometry"]),
                   [PlannedParcel(**p) for p in data["parcels"]], data["seed"])

    def expected_lane_commands(self) -> int:
        return sum(p.seen() for p in self.parcels)

    def fault_counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for parcel in self.parcels:
            if parcel.fault is not None:
                counts[parcel.fault] = counts.get(parcel.fault, 0) + 1
        return counts


def unique_weight(index: int) -> float:
    """A weight no other parcel of a run (up to 2,000) has: 0.50-20.49 kg, whole 10 g."""
    if index >= 2000:
        raise ValueError("unique weights run out at 2,000 parcels")
    return round(0.5 + (index * 7919 % 2000) * 0.01, 2)


def plan_line(count: int, rate: float, scale: str, *, faults: tuple[str, ...] = (),
              fault_rate: float = 0.0, seed: int = 1, prefix: str = "LP") -> LinePlan:
    """`count` parcels at `rate`/s; round(fault_rate x count) of them get a fault, the kinds
    taken in turn from `faults` (all of the scale's when empty and fault_rate > 0)."""
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {SCALES}")
    geometry = Geometry.for_rate(rate)
    rng = random.Random(seed)
    kinds = list(faults or faults_for(scale))
    unknown = set(kinds) - set(faults_for(scale))
    if unknown:
        raise ValueError(f"faults {sorted(unknown)} do not apply to a {scale} scale")
    positions = _fault_positions(count, round(fault_rate * count), rng)
    rng.shuffle(kinds)
    fault_at = {pos: kinds[n % len(kinds)] for n, pos in enumerate(sorted(positions))}
    gap = geometry.gap_ms
    parcels = []
    for index in range(count):
        # Its place on the belt; the first parcel's slot leaves room for a reading (and its
        # motion frames) that comes before the scan.
        slot = 60.0 + index * gap
        scan = slot + rng.uniform(-geometry.scan_jitter_ms, geometry.scan_jitter_ms)
        if scale == "streaming":
            settle = slot + geometry.offset_ms + rng.uniform(-geometry.reading_jitter_ms,
                                                             geometry.reading_jitter_ms)
        else:
            settle = scan + geometry.reply_ms
        parcels.append(PlannedParcel(index, f"{prefix}{index:014d}", unique_weight(index),
                                     round(scan, 3), round(settle, 3), fault_at.get(index)))
    return LinePlan(scale, geometry, parcels, seed)


def _fault_positions(count: int, faults: int, rng: random.Random) -> list[int]:
    """`faults` indexes in 1..count-2, at least FAULT_SPACING healthy parcels apart."""
    if faults == 0:
        return []
    spacing = FAULT_SPACING + 1
    room = count - 2 - (faults - 1) * spacing  # free slots once the minimum spacing is taken
    if room < 1:
        raise ValueError(f"{faults} faults do not fit {count} parcels {spacing} apart")
    # Stars and bars: choose the faults' places among the free slots, then spread them out.
    chosen = sorted(rng.sample(range(room), faults))
    return [1 + slot + n * spacing for n, slot in enumerate(chosen)]


# -- the timeline --------------------------------------------------------------------------------


def scan_frame(parcel: PlannedParcel) -> bytes:
    if parcel.fault == "no_read":
        return b"NOREAD\r\n"
    return (SCANNER_PREFIX + parcel.barcode).encode() + b"\r\n"


def mt_sics_frame(kg: float, stable: bool) -> bytes:
    """What an MT-SICS balance sends in continuous mode (`SIR`): `S S` stable, `S D` motion."""
    return f"S {'S' if stable else 'D'} {kg:>10.3f} kg\r\n".encode()


def timeline(plan: LinePlan) -> list[tuple[float, str, bytes]]:
    """Every write the line makes on its own, as (ms from start, port, bytes), in time order:
    scans, and for a streaming scale every frame. A polled scale's answers are not here: they
    depend on the agent's requests (`PolledPlatter`)."""
    writes: list[tuple[float, str, bytes]] = []
    for parcel in plan.parcels:
        if parcel.fault == "missed_scan":
            continue
        writes.append((parcel.scan_ms, "scanner", scan_frame(parcel)))
        if parcel.fault == "double_read":  # the label read again a moment later
            writes.append((parcel.scan_ms + 0.05 * plan.geometry.gap_ms, "scanner",
                           scan_frame(parcel)))
    if plan.scale == "streaming":
        writes += _stream(plan)
        writes.sort(key=lambda w: w[0])
        writes = _hold_back(plan, writes)
    writes.sort(key=lambda w: w[0])
    return writes


def _stream(plan: LinePlan) -> list[tuple[float, str, bytes]]:
    frame_ms = plan.geometry.frame_ms
    scripts = sorted((_script(p, frame_ms) for p in plan.parcels), key=lambda s: s[0])
    starts = [start for start, _, _ in scripts]
    end = max(p.scan_ms for p in plan.parcels) + plan.geometry.gap_ms
    frames, tick = [], 0
    while (now := tick * frame_ms) <= end:
        tick += 1
        where = bisect.bisect_right(starts, now) - 1
        frame = EMPTY_FRAME
        if where >= 0:
            _, stop, script = scripts[where]
            if now < stop:
                frame = script(now)
        if frame:
            frames.append((now, "scale", frame))
    return frames


def _script(parcel: PlannedParcel, frame_ms: float):
    """(start, end, frame at a time) of one parcel on the streaming platter."""
    settle, kg, fault = parcel.settle_ms, parcel.weight_kg, parcel.fault
    motion_from = settle - MOTION_FRAMES * frame_ms
    if fault == "extra_reading":  # settles briefly at another value, then on its own
        motion_from = settle - 2 * MOTION_FRAMES * frame_ms
    end = settle + STABLE_FRAMES * frame_ms
    first_stable_lost = fault == "frame_lost" and parcel.index % 2 == 0

    def frame(now: float) -> bytes:
        if now < settle:
            if fault == "extra_reading" and now >= settle - MOTION_FRAMES * frame_ms:
                return mt_sics_frame(parcel.extra_kg, True)
            return mt_sics_frame(round(kg * (0.6 + 0.15 * ((now - motion_from) // frame_ms)),
                                       3), False)
        if fault == "unsettled":  # it keeps moving on the platter: never a stable frame
            return mt_sics_frame(round(kg * (1.02 if int(now // frame_ms) % 2 else 0.98), 3),
                                 False)
        if fault == "frame_lost" and now < settle + frame_ms:
            return b"" if first_stable_lost else GARBLED_FRAME
        return mt_sics_frame(kg, True)

    return motion_from, end, frame


def _hold_back(plan: LinePlan, writes: list[tuple[float, str, bytes]]
               ) -> list[tuple[float, str, bytes]]:
    """host_busy: what both ports sent from just before the parcel's reading to just after its
    scan reaches the agent at once, at the end of that stretch."""
    frame_ms = plan.geometry.frame_ms
    stretches = []
    for parcel in plan.parcels:
        if parcel.fault == "host_busy":
            first = min(parcel.scan_ms, parcel.settle_ms - MOTION_FRAMES * frame_ms) - frame_ms
            last = max(parcel.scan_ms, parcel.settle_ms + STABLE_FRAMES * frame_ms) + frame_ms
            stretches.append((first, last))
    held = []
    for at, port, data in writes:
        for first, last in stretches:
            if first <= at < last:
                at = last
                break
        held.append((at, port, data))
    return held


class PolledPlatter:
    """The polled MT-SICS scale's platter: the parcel last scanned (or passed unread), and the
    answer to `S` for it, with that parcel's fault applied to the first answer about it."""

    def __init__(self, plan: LinePlan):
        self.plan = plan
        self._arrivals = [p.scan_ms for p in plan.parcels]
        self._faults_used: set[int] = set()

    def on_platter(self, now_ms: float) -> PlannedParcel | None:
        where = bisect.bisect_right(self._arrivals, now_ms) - 1
        return self.plan.parcels[where] if where >= 0 else None

    def answer_at(self, now_ms: float) -> float:
        """When an `S` received now is answered: once what the platter holds has settled."""
        parcel = self.on_platter(now_ms)
        return now_ms if parcel is None else max(now_ms, parcel.settle_ms)

    def answer(self, now_ms: float) -> tuple[bytes | None, float]:
        """(the frame, or None for a lost reply; how much later it goes) for an `S` due now."""
        parcel = self.on_platter(now_ms)
        if parcel is None:
            return b"S S      0.000 kg\r\n", 0.0
        frame = f"S S {parcel.weight_kg:>10.3f} kg\r\n".encode()
        fault = parcel.fault
        if fault not in POLLED_FAULTS or parcel.index in self._faults_used:
            return frame, 0.0
        self._faults_used.add(parcel.index)
        geometry = self.plan.geometry
        if fault == "reply_lost":
            return None, 0.0
        if fault == "reply_garbled":
            return GARBLED_FRAME, 0.0
        if fault == "no_stable":
            return b"S I\r\n", 0.0
        # reply_late: after the agent has given up waiting (its time-out, from its request).
        return frame, geometry.poll_timeout_ms + 0.1 * geometry.gap_ms


# -- playing it on ptys --------------------------------------------------------------------------


class Pty(DevicePty):
    def __init__(self, link: Path):
        super().__init__(link)
        self.hung_up_until_ns = 0  # the agent's end was closed: listened to again after this


def play(out_dir: Path, plan: LinePlan, *, stdin=None) -> dict:
    """Serve the three devices; play the plan after `go` on `stdin` (None: at once)."""
    ptys = {name: Pty(out_dir / "dev" / name) for name in ("scanner", "scale", "sorter")}
    print("ready", flush=True)
    selector = selectors.SelectSelector()  # select: microsecond timeouts (see light_line.py)
    for name, pty in ptys.items():
        selector.register(pty.master, selectors.EVENT_READ, name)
    if stdin is not None:
        selector.register(stdin, selectors.EVENT_READ, "stdin")
    writes = timeline(plan)
    platter = PolledPlatter(plan)
    streaming = plan.scale == "streaming"
    frame_ns = int(plan.geometry.frame_ms * NS_PER_MS)
    expected = plan.expected_lane_commands()
    commands: list[list] = []
    answers: list[int] = []  # polled: when each `S` received is due to be answered (ns)
    replies: list[tuple[int, bytes]] = []  # polled: late replies, (due ns, frame)
    state = {"start_ns": None if stdin is not None else time.monotonic_ns() + 20 * NS_PER_MS,
             "streaming_on": False, "next_idle_frame": 0, "stalls": 0, "stalled_ns": 0}
    sent, finish_by = 0, None
    while len(commands) < expected:
        now = time.monotonic_ns()
        start = state["start_ns"]
        if start is not None:
            if sent < len(writes) and (late := now - start - int(writes[sent][0] * NS_PER_MS)) \
                    > MAX_LATE_NS:
                # This process was not run in time (a loaded host). Writing what fell due
                # meanwhile in one go would hold scans and frames back together, a fault the
                # plan does not have, and would part the scans from the platter (which follows
                # the plan's clock). The belt stops instead: the rest of the plan moves later.
                start = state["start_ns"] = start + late
                state["stalls"] += 1
                state["stalled_ns"] += late
            while sent < len(writes) and start + int(writes[sent][0] * NS_PER_MS) <= now:
                # Everything due goes now; one write per port per turn, as a device would.
                batch: dict[str, bytearray] = {}
                while sent < len(writes) and start + int(writes[sent][0] * NS_PER_MS) <= now:
                    _, port, data = writes[sent]
                    batch.setdefault(port, bytearray()).extend(data)
                    sent += 1
                for port, data in batch.items():
                    ptys[port].write(bytes(data))
            if sent == len(writes) and finish_by is None:
                finish_by = now + int(DRAIN_TIMEOUT_S * 1e9)
            if finish_by is not None and now > finish_by:
                break
            for due in [a for a in answers if a <= now]:
                answers.remove(due)
                _answer(platter, ptys["scale"], start, now, answers, replies)
            for due, frame in [r for r in replies if r[0] <= now]:
                replies.remove((due, frame))
                ptys["scale"].write(frame)
        elif streaming and state["streaming_on"] and now >= state["next_idle_frame"]:
            ptys["scale"].write(EMPTY_FRAME)  # before the run: an empty platter, streaming
            state["next_idle_frame"] = now + frame_ns
        for pty in ptys.values():
            # A pty nobody has open reads as "hung up" at once: listen to it again only after
            # HUNG_UP_RETRY_NS, or this loop would spin until the agent opens its port.
            events = (selectors.EVENT_READ if now >= pty.hung_up_until_ns else 0) | (
                selectors.EVENT_WRITE if pty.outbox else 0)
            key = selector.get_map().get(pty.master)
            if key is None and events:
                selector.register(pty.master, events, _name_of(ptys, pty))
            elif key is not None and not events:
                selector.unregister(pty.master)
            elif key is not None and key.events != events:
                selector.modify(pty.master, events, key.data)
        wake = min([_next_wake(state, writes, sent, answers, replies, frame_ns)]
                   + [p.hung_up_until_ns for p in ptys.values() if p.hung_up_until_ns > now])
        timeout = wake - time.monotonic_ns()
        for key, mask in selector.select(max(0.0, timeout / 1e9)):
            if key.data == "stdin":
                if stdin.readline().strip() != "go":
                    return {}  # the parent went away before the run
                state["start_ns"] = time.monotonic_ns() + 20 * NS_PER_MS
                selector.unregister(stdin)
                continue
            pty = ptys[key.data]
            data = pty.serve(mask)
            if data is None:  # the agent has not opened its end, or has closed it
                pty.hung_up_until_ns = time.monotonic_ns() + HUNG_UP_RETRY_NS
                continue
            if not data:
                continue
            arrived = time.monotonic_ns()
            for line in pty.lines(data):
                if key.data == "scale":
                    _on_scale_command(line, platter, pty, state, answers, arrived)
                elif key.data == "sorter" and \
                        (command := acknowledge_divert(pty, line, arrived)) is not None:
                    commands.append(command)
    return {"commands": commands, "writes": sent, "start_ns": state["start_ns"],
            "line_stalls": state["stalls"],
            "line_stalled_ms": round(state["stalled_ns"] / NS_PER_MS, 1)}


def _name_of(ptys: dict[str, Pty], pty: Pty) -> str:
    return next(name for name, candidate in ptys.items() if candidate is pty)


def _on_scale_command(line: bytes, platter: PolledPlatter, pty: Pty, state: dict,
                      answers: list, arrived_ns: int) -> None:
    command = line.upper()
    if command == b"S":
        start = state["start_ns"]
        if start is None:
            pty.write(b"S S      0.000 kg\r\n")
            return
        due_ms = platter.answer_at((arrived_ns - start) / NS_PER_MS)
        answers.append(start + int(due_ms * NS_PER_MS))
    elif command == b"SIR":
        state["streaming_on"] = True  # continuous output until C
    elif command == b"C":
        state["streaming_on"] = False
        pty.write(b"C B\r\nC A\r\n")
    elif command in (b"@", b"I4"):
        pty.write(b'I4 A "1234567"\r\n')
    else:
        pty.write(b"ES\r\n")  # MT-SICS: command not understood


def _answer(platter: PolledPlatter, scale: Pty, start_ns: int, now_ns: int, answers: list,
            replies: list) -> None:
    """An `S` is due: if a new parcel arrived meanwhile, it waits for that one to settle (as
    MT-SICS `S` does); otherwise the platter's answer goes, now or late."""
    now_ms = (now_ns - start_ns) / NS_PER_MS
    settled_ms = platter.answer_at(now_ms)
    if settled_ms > now_ms:
        answers.append(start_ns + int(settled_ms * NS_PER_MS))
        return
    frame, later_ms = platter.answer(now_ms)
    if frame is None:
        return  # lost on the line
    if later_ms > 0:
        replies.append((now_ns + int(later_ms * NS_PER_MS), frame))
    else:
        scale.write(frame)


def _next_wake(state: dict, writes: list, sent: int, answers: list, replies: list,
               frame_ns: int) -> int:
    now = time.monotonic_ns()
    wake = now + 50 * NS_PER_MS
    start = state["start_ns"]
    if start is not None and sent < len(writes):
        wake = min(wake, start + int(writes[sent][0] * NS_PER_MS))
    elif start is None and state["streaming_on"]:
        wake = min(wake, state["next_idle_frame"])
    for due in answers:
        wake = min(wake, due)
    for due, _ in replies:
        wake = min(wake, due)
    return wake


def agent_config_text(plan: LinePlan, dev: Path, *, broker: str, line: str,
                      site: str = "SIM") -> str:
    """An `edge-agent run` config for this line: its ptys, its scale, pairing set to match."""
    host, _, port = broker.rpartition(":")
    return f"""# Written for a fault line (edge_agent/simulation/fault_line.py).
site = "{site}"
line = "{line}"
state_dir = "state"

[devices.scanner]
port = "{dev / 'scanner'}"
profile = "generic-scanner"

[devices.scale]
port = "{dev / 'scale'}"
profile = "{scale_profile(plan.scale)}"

[devices.sorter]
port = "{dev / 'sorter'}"
profile = "generic-divert"

[pairing]
{plan.geometry.pairing_toml(plan.scale)}
[clock]
source = "assume-synchronised"

[mqtt]
enabled = true
host = "{host}"
port = {int(port)}
"""


def prepare(out_dir: Path, plan: LinePlan, *, broker: str, line: str) -> Path:
    """DIR/agent.toml, DIR/plan.json and the manifest imported into DIR/state; the config path."""
    from edge_agent.sorting.manifest import Manifest

    state = out_dir / "state"
    state.mkdir(parents=True, exist_ok=True)
    manifest_path = out_dir / "manifest.jsonl"
    manifest_path.write_text("".join(json.dumps(p.manifest_row()) + "\n" for p in plan.parcels))
    with Manifest.open(state) as manifest:
        manifest.import_file(manifest_path)
    (out_dir / "plan.json").write_text(plan.to_json())
    config = out_dir / "agent.toml"
    config.write_text(agent_config_text(plan, out_dir / "dev", broker=broker, line=line))
    return config


WEIGHT_TOLERANCE_KG = 0.0005  # weights go on the wire with three decimals


def score(plan: LinePlan, events: list[dict]) -> dict:
    """How each planned parcel came out in central's events (the agent's parcel events):

    - right: its own weight; safe: no weight, and the exception lane; wrong: another parcel's
      weight (or no weight outside the exception lane); unseen: a missed scan (no event).

    Events are matched to parcels by barcode; no-read events (no barcode) to the no-read
    parcels in order (the agent publishes parcels in scan order, `seq`). `by_fault` splits the
    outcomes by the parcel's fault, with the reasons and the `weight_pairing` its events gave.
    """
    by_barcode = {p.barcode: p for p in plan.parcels if p.fault != "no_read"}
    no_reads = [p for p in plan.parcels if p.fault == "no_read"]
    events = sorted(events, key=lambda e: e.get("seq", 0))
    outcome: dict[int, str] = {}
    reasons: dict[int, list[str]] = {}
    pairings: dict[int, str | None] = {}
    unmatched = duplicates = 0
    for event in events:
        barcode = event.get("barcode")
        if barcode is None:
            parcel = no_reads.pop(0) if no_reads else None
        else:
            parcel = by_barcode.get(barcode)
        if parcel is None:
            unmatched += 1
            continue
        if parcel.index in outcome:
            duplicates += 1
            continue
        weight = (event.get("inputs") or {}).get("weight_kg")
        if weight is None:
            verdict = "safe" if event.get("lane") == "EXCEPTION" else "wrong"
        elif abs(weight - parcel.weight_kg) <= WEIGHT_TOLERANCE_KG:
            verdict = "right"
        else:
            verdict = "wrong"
        outcome[parcel.index] = verdict
        reasons[parcel.index] = list(event.get("reasons") or [])
        pairings[parcel.index] = (event.get("inputs") or {}).get("weight_pairing")
    totals = {"parcels": len(plan.parcels), "right": 0, "safe": 0, "wrong": 0, "unseen": 0}
    by_fault: dict[str, dict] = {}
    for parcel in plan.parcels:
        verdict = outcome.get(parcel.index, "unseen")
        totals[verdict] += 1
        if parcel.fault is not None:
            row = by_fault.setdefault(parcel.fault, {"right": 0, "safe": 0, "wrong": 0,
                                                     "unseen": 0, "reasons": [],
                                                     "pairings": []})
            row[verdict] += 1
            row["reasons"].append(reasons.get(parcel.index, []))
            row["pairings"].append(pairings.get(parcel.index))
    return {**totals, "events": len(events), "unmatched": unmatched, "duplicates": duplicates,
            "by_fault": by_fault,
            "wrong_parcels": sorted(i for i, v in outcome.items() if v == "wrong")}


def main(argv: list[str]) -> int:
    out_dir, plan_path, results_path = Path(argv[0]), Path(argv[1]), Path(argv[2])
    plan = LinePlan.from_json(plan_path.read_text())
    report_and_hold(results_path, play(out_dir, plan, stdin=sys.stdin))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
