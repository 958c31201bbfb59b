"""A light simulated line for the line benchmark: scanner, checkweigher and sorter in one thread.

    .venv/bin/python bench/light_line.py DIR PARCELS.json RATE RESULTS.json

Why not `LineSimulation` (edge_agent/simulation/line_sim.py): it runs each device in its own
thread beside the code that drives it, so four threads share one interpreter lock and each
waits up to the interpreter's switch interval (5 ms) for its turn. That put ~12 ms into the p99
of any process measured on it, the plain baseline's included. Here one thread serves the three
ptys with one selector and writes each scan when it is due, in its own process, so the figures
measure the process under test.

The devices speak what `simulate line` speaks: `generic-scanner` frames (symbology + barcode,
CR LF; `NOREAD`), an MT-SICS scale at the scanner whose platter holds the parcel last scanned
and answers each `S` once it has settled (SETTLE_NS after the parcel arrived) with what it holds
then (`S S <kg> kg`, or `S I` for a parcel that never settled), and a `generic-divert` sorter
that acknowledges every `DIV` at once. Nothing is dropped: a scan the agent has not read yet
waits in this process (the pty's own buffer is small) and its latency counts from when it was
due. In a burst the platter changes faster than a scale can answer, so the agent must refuse
those weights (ambiguous) rather than pair them: the bench counts right, safe and wrong.

Protocol with the parent: prints `ready` once the pty links exist, starts sending on a `go`
line on stdin, and writes RESULTS.json and prints `done` when every parcel has its lane
command, or DRAIN_TIMEOUT_S after the last scan. It keeps the ptys open until stdin closes, so
the process under test is measured with its devices still there (a reader that sees its port
vanish may exit). Results: the due time of every scan, how late each batch of scans was
written, for each lane command its barcode label, bin and arrival, and for each weight reply
the parcel it weighed and when it was written (time.monotonic_ns(), comparable across
processes).
"""

from __future__ import annotations

import json
import selectors
import sys
import time
from pathlib import Path

from edge_agent.simulation.device_pty import DevicePty, acknowledge_divert, report_and_hold

DRAIN_TIMEOUT_S = 30.0
# The platter settles this long after a parcel arrives before `S` is answered (as the simulated
# line's scale): longer than the agent's reorder margin, so a reply is provably after its scan.
SETTLE_NS = 1_000_000


def scan_frame(barcode: str | None, symbology: str | None) -> bytes:
    if barcode is None:
        return b"NOREAD\r\n"
    return ((symbology or "") + barcode).encode("latin-1") + b"\r\n"


class Platter:
    """What the scale holds: the parcel last scanned, and when it arrived."""

    def __init__(self) -> None:
        self.weight: float | None = 0.0
        self.placed_ns = 0
        self.waiting = 0  # `S` requests waiting for the platter to settle
        self.index = -1  # which parcel of the run is on it

    def settled_at(self) -> int:
        return self.placed_ns + SETTLE_NS

    def answer(self) -> bytes:
        weight = self.weight
        return b"S I\r\n" if weight is None else f"S S {weight:>10.3f} kg\r\n".encode()


def scale_answer(command: bytes, platter: Platter) -> bytes:
    """The answer now; `S` while the platter settles is answered later (see `run`)."""
    command = command.strip().upper()
    if command == b"S":
        if time.monotonic_ns() < platter.settled_at():
            platter.waiting += 1
            return b""
        return platter.answer()
    if command in (b"@", b"I4"):
        return b'I4 A "1234567"\r\n'
    if command == b"C":
        return b"C B\r\nC A\r\n"
    return b"ES\r\n"  # MT-SICS: command not understood


def run(out_dir: Path, parcels: list[list], rate: float) -> dict:
    scanner, scale, sorter = (DevicePty(out_dir / "dev" / name)
                              for name in ("scanner", "scale", "sorter"))
    print("ready", flush=True)
    if sys.stdin.readline().strip() != "go":
        return {}
    ptys = (scanner, scale, sorter)
    # select(2), not epoll: epoll_wait's timeout has millisecond resolution and Python rounds it
    # up, which wrote each scan up to 1 ms after its due time and put that into every latency
    # measured here; select takes microseconds. Three descriptors cost it nothing.
    selector = selectors.SelectSelector()
    for pty in ptys:  # the scanner's too: the agent may send it trigger commands
        selector.register(pty.master, selectors.EVENT_READ, pty)
    open_masters = {pty.master for pty in ptys}
    frames = [scan_frame(barcode, symbology) for barcode, symbology, _ in parcels]
    platter = Platter()
    due_ns: list[int] = []
    late_ns: list[int] = []  # how long after its due time each scan batch was written
    commands: list[list] = []
    replies: list[list] = []  # [parcel index, written ns] of each weight reply
    interval_ns = int(1e9 / rate)
    start_ns = time.monotonic_ns() + 1_000_000
    sent = 0
    finish_by = None
    while len(commands) < len(parcels):
        now = time.monotonic_ns()
        # Every scan that is due goes out now (a burst: several per turn), in one write.
        batch = bytearray()
        while sent < len(parcels) and start_ns + sent * interval_ns <= now:
            platter.weight, platter.placed_ns, platter.index = parcels[sent][2], now, sent
            due_ns.append(start_ns + sent * interval_ns)
            batch += frames[sent]
            sent += 1
        if batch:
            scanner.write(bytes(batch))
            late_ns.append(time.monotonic_ns() - due_ns[-1])
        if platter.waiting and time.monotonic_ns() >= platter.settled_at():
            scale.write(platter.answer() * platter.waiting)
            replies.append([platter.index, time.monotonic_ns()])
            platter.waiting = 0
        if sent == len(parcels) and finish_by is None:
            finish_by = now + int(DRAIN_TIMEOUT_S * 1e9)
        if finish_by is not None and now > finish_by:
            break
        for pty in ptys:  # ask to hear when a full pty has room again
            events = selectors.EVENT_READ | (selectors.EVENT_WRITE if pty.outbox else 0)
            if pty.master in open_masters and selector.get_key(pty.master).events != events:
                selector.modify(pty.master, events, pty)
        next_due = start_ns + sent * interval_ns if sent < len(parcels) else now + 50_000_000
        if platter.waiting:
            next_due = min(next_due, platter.settled_at())
        timeout = max(0.0, (next_due - time.monotonic_ns()) / 1e9)
        for key, mask in selector.select(timeout):
            pty: DevicePty = key.data
            data = pty.serve(mask)
            if data is None:  # the agent closed its end (stopped): nothing more from it
                selector.unregister(pty.master)
                open_masters.discard(pty.master)
                continue
            if not data:
                continue
            arrived_ns = time.monotonic_ns()
            if pty is scale:
                answers = b"".join(scale_answer(line, platter) for line in scale.lines(data))
                scale.write(answers)
                if answers.startswith(b"S "):
                    replies.append([platter.index, time.monotonic_ns()])
            elif pty is sorter:
                for line in sorter.lines(data):
                    if (command := acknowledge_divert(sorter, line, arrived_ns)) is not None:
                        commands.append(command)
            else:
                scanner.lines(data)  # trigger commands: nothing to answer on a fixed scanner
    return {"due_ns": due_ns, "commands": commands, "sent": sent, "late_ns": late_ns,
            "replies": replies}


def main(argv: list[str]) -> int:
    out_dir, parcels_path, rate, results_path = Path(argv[0]), Path(argv[1]), float(argv[2]), \
        Path(argv[3])
    parcels = json.loads(parcels_path.read_text())
    report_and_hold(results_path, run(out_dir, parcels, rate))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
