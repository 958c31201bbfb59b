"""Pairing under faults: right / safe / wrong weights, through the real agent process on ptys.

    .venv/bin/python bench/bench_pairing.py [--rates 5,10,20,50] [--fault-rates 0,0.01,0.05]
                                            [--scales streaming,polled] [--min-parcels 200]
                                            [--seconds 10] [--jobs 6] [--json FILE]

Each cell is one run of `edge-agent run` against a fault line (edge_agent/simulation/fault_line.py,
in a process of its own) and a real mosquitto on a free loopback port: max(--min-parcels,
rate x --seconds) parcels, each with a unique weight and its manifest row, and exactly
round(fault rate x parcels) of them hit by one fault, the kinds taken in turn from every fault
of that scale and of the scanner (never two faults within two parcels of each other, so a cell
measures what one fault costs). The line is calibrated for its rate (Geometry.for_rate): the
pairing window or the poll time-out is a fraction of the gap between parcels.

Per cell, of all the parcels sent: right (its own weight), safe (no weight, EXCEPTION), wrong
(another parcel's weight: must be 0), unseen (a missed scan: the agent never heard of it). The
done-criteria of issue 12 are checked per cell: no wrong weight anywhere, and right at least
1 - 2 x fault rate at every rate up to 20 parcels a second. Cells of one rate run side by side
(`--jobs`): a slow line's runs are mostly waiting. Results: docs/PERFORMANCE.md ("Pairing under
faults"). Everything started here is stopped by its pid.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.config import load_config  # noqa: E402
from edge_agent.simulation.demo import EventCollector  # noqa: E402
from edge_agent.simulation.fault_line import LinePlan, plan_line, prepare, score  # noqa: E402
from edge_agent.simulation.line_sim import wait_for_agent  # noqa: E402
from edge_agent.simulation.local_broker import MosquittoBroker  # noqa: E402

# Generous bounds for a shared 2-core machine; every wait ends as soon as its condition holds.
DEVICES_TIMEOUT_S = 30.0
EVENTS_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
SUBSCRIBE_TIMEOUT_S = 10.0
POLL_S = 0.05
# The bar: right at least 1 - 2 x fault rate up to this rate (parcels a second).
RIGHT_BAR_UP_TO_RATE = 20.0


@dataclass
class Cell:
    scale: str
    rate: float
    fault_rate: float
    parcels: int
    faults: dict[str, int] = field(default_factory=dict)
    right: int = 0
    safe: int = 0
    wrong: int = 0
    unseen: int = 0
    events: int = 0
    seconds: float = 0.0
    by_fault: dict = field(default_factory=dict)
    wrong_parcels: list[int] = field(default_factory=list)
    # The line's own stops: it was not run in time and moved the rest of its plan later.
    line_stalls: int = 0
    line_stalled_ms: float = 0.0

    def share(self, name: str) -> float:
        return getattr(self, name) / self.parcels if self.parcels else 0.0

    def meets(self) -> bool:
        """Issue 12's done-criteria for this cell."""
        if self.wrong:
            return False
        if self.rate > RIGHT_BAR_UP_TO_RATE:
            return True
        return self.right >= (1 - 2 * self.fault_rate) * self.parcels


def run_cell(plan: LinePlan, fault_rate: float, out: Path, broker: MosquittoBroker,
             name: str) -> Cell:
    cell = Cell(plan.scale, plan.geometry.rate, fault_rate, len(plan.parcels),
                plan.fault_counts())
    out.mkdir(parents=True)
    config = prepare(out, plan, broker=f"{broker.host}:{broker.port}", line=name)
    line = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.simulation.fault_line", str(out), str(out / "plan.json"),
         str(out / "line-results.json")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    collector = agent = None
    started = time.monotonic()
    try:
        if line.stdout.readline().strip() != "ready":
            raise RuntimeError(f"the fault line of {name} did not start")
        collector = EventCollector(broker.host, broker.port, load_config(config).topic_prefix,
                                   client_id=f"bench-pairing-{name}")
        if not collector.wait_subscribed(SUBSCRIBE_TIMEOUT_S):
            raise RuntimeError("the event collector did not subscribe")
        with (out / "agent.log").open("a") as log:
            agent = subprocess.Popen(
                [sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
                stdout=subprocess.DEVNULL, stderr=log, cwd=ROOT)
        if not wait_for_agent(out / "state", DEVICES_TIMEOUT_S):
            raise RuntimeError(f"the agent did not open its devices; see {out / 'agent.log'}")
        line.stdin.write("go\n")
        line.stdin.flush()
        if line.stdout.readline().strip() != "done":  # every lane command in, or its timeout
            raise RuntimeError(f"the fault line of {name} stopped before its results")
        expected = plan.expected_lane_commands()
        deadline = time.monotonic() + EVENTS_TIMEOUT_S
        while collector.count() < expected and time.monotonic() < deadline:
            time.sleep(POLL_S)  # another process's events: nothing to wait on but the count
        events = list(collector.parcels.values())
        line_results = json.loads((out / "line-results.json").read_text())
        cell.line_stalls = line_results["line_stalls"]
        cell.line_stalled_ms = line_results["line_stalled_ms"]
        result = score(plan, events)
        # Kept beside the run (--keep), to see why a parcel went without its weight.
        (out / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    finally:
        if agent is not None:
            _stop(agent)
        if collector is not None:
            collector.close()
        line.stdin.close()  # the line closes its ptys and exits
        try:
            line.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            line.kill()
            line.wait()
    cell.seconds = round(time.monotonic() - started, 1)
    for key in ("right", "safe", "wrong", "unseen", "events", "by_fault", "wrong_parcels"):
        setattr(cell, key, result[key])
    return cell


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def table(cells: list[Cell], fault_rates: list[float]) -> str:
    """One row per scale and rate; per fault rate: right / safe / wrong (and unseen) in %."""
    head = "| Scale | Rate /s | Parcels per cell |" + "".join(
        f" {f:.0%} faults: right / safe / wrong |" for f in fault_rates) + " Criteria |"
    rows = [head, "|---|---|---|" + "---|" * len(fault_rates) + "---|"]
    keys = sorted({(c.scale, c.rate) for c in cells}, key=lambda k: (k[0] != "streaming", k[1]))
    for scale, rate in keys:
        row = [c for c in cells if (c.scale, c.rate) == (scale, rate)]
        by_rate = {c.fault_rate: c for c in row}
        text = f"| {scale} | {rate:g} | {row[0].parcels} |"
        for fault_rate in fault_rates:
            c = by_rate.get(fault_rate)
            if c is None:
                text += " - |"
                continue
            unseen = f" (+{c.share('unseen'):.1%} unseen)" if c.unseen else ""
            text += (f" {c.share('right'):.1%} / {c.share('safe'):.1%} /"
                     f" {c.share('wrong'):.1%}{unseen} |")
        text += " met |" if all(c.meets() for c in row) else " **missed** |"
        rows.append(text)
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="5,10,20,50")
    parser.add_argument("--fault-rates", default="0,0.01,0.05")
    parser.add_argument("--scales", default="streaming,polled")
    parser.add_argument("--min-parcels", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0,
                        help="parcels per cell: max(--min-parcels, rate x this)")
    parser.add_argument("--jobs", type=int, default=6, help="cells of one rate run at once")
    parser.add_argument("--seed", type=int, default=12)
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", type=Path, help="run in this directory and keep its files")
    args = parser.parse_args()
    rates = [float(r) for r in args.rates.split(",") if r]
    fault_rates = [float(f) for f in args.fault_rates.split(",") if f]
    scales = [s for s in args.scales.split(",") if s]

    load_before = os.getloadavg()
    began = time.monotonic()
    cells: list[Cell] = []
    with tempfile.TemporaryDirectory(prefix="bench-pairing-") as tmp:
        work = args.keep or Path(tmp)
        broker = MosquittoBroker(work / "broker").start()
        try:
            for rate in rates:
                count = max(args.min_parcels, int(rate * args.seconds))
                jobs = []
                for scale in scales:
                    for fault_rate in fault_rates:
                        plan = plan_line(count, rate, scale, fault_rate=fault_rate,
                                         seed=args.seed)
                        name = f"{scale[0].upper()}{int(rate)}F{int(fault_rate * 1000)}"
                        jobs.append((plan, fault_rate, work / name, name))
                with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
                    done = list(pool.map(lambda job: run_cell(*job[:3], broker, job[3]), jobs))
                for cell in done:
                    print(json.dumps({k: v for k, v in cell.__dict__.items()
                                      if k != "by_fault"}), flush=True)
                cells += done
        finally:
            broker.stop()
    print()
    print(table(cells, fault_rates))
    info = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.platform()}",
        "python": platform.python_version(),
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "seconds": round(time.monotonic() - began, 1),
        "jobs": args.jobs,
        "all_met": all(c.meets() for c in cells),
    }
    print(json.dumps(info))
    if args.json:
        args.json.write_text(json.dumps({"info": info, "cells": [c.__dict__ for c in cells]},
                                        indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
