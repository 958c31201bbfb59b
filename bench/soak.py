"""Bounded soak: the real agent process on a simulated line at a steady rate, for minutes.

    .venv/bin/python bench/soak.py [--minutes 15] [--rate 10] [--tail-minutes 20] [--out F]

Outside the default CI run (it takes as long as it is told to). Everything is real: `edge-agent
run` as its own process, the scanner, checkweigher and sorter on pseudo-terminals, mosquitto
on a free loopback port, and a central subscriber. Every SAMPLE_PERIOD_S it records the
agent's resident memory, open file descriptors and threads (from /proc) and its outbox depth
(from the status socket). At the end it reports the first and last samples, the growth between
the second minute and the end (the first minute includes imports and caches filling), and
whether every lane command got its event, and the growth over the last `--tail-minutes` (at
most half the run): memory that is flat once warm shows no growth there. Results go in
docs/RELIABILITY.md ("Soak").
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests"), str(ROOT / "tests" / "runtime")]

from line_harness import AgentProcess, sorter_records, wait_for  # noqa: E402

from edge_agent.config import load_config  # noqa: E402
from edge_agent.runtime.status_server import StatusError, query_status  # noqa: E402
from edge_agent.simulation.demo import EventCollector  # noqa: E402
from edge_agent.simulation.line_sim import LineSimulation  # noqa: E402
from edge_agent.simulation.local_broker import MosquittoBroker  # noqa: E402
from edge_agent.simulation.parcel_mix import parcel_mix  # noqa: E402

SAMPLE_PERIOD_S = 10.0
# Samples before this are warm-up (imports, caches, the first checkpoint): growth is measured
# from here to the end.
WARMUP_S = 60.0
# After the last parcel: time allowed for the last events to reach central.
DRAIN_S = 60.0


def proc_sample(pid: int) -> dict[str, int]:
    status = Path(f"/proc/{pid}/status").read_text()
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
    return {
        "rss_kb": int(fields["VmRSS"].split()[0]),
        "threads": int(fields["Threads"]),
        "fds": len(os.listdir(f"/proc/{pid}/fd")),
    }


def outbox_depth(sim: LineSimulation) -> int | None:
    try:
        return query_status(sim.state_dir / "status.sock", timeout_s=2.0)["outbox"]["depth"]
    except (StatusError, KeyError):
        return None


def growth(samples: list[dict]) -> dict[str, int] | None:
    """Last sample minus first, for each /proc figure."""
    if not samples:
        return None
    return {key: samples[-1][key] - samples[0][key] for key in ("rss_kb", "fds", "threads")}


def run(minutes: float, rate: float, work: Path, tail_minutes: float) -> dict:
    parcels = parcel_mix(int(minutes * 60 * rate), seed=99)
    with MosquittoBroker(work / "broker") as broker:
        sim = LineSimulation(work / "line", parcels, rate=rate,
                             broker=f"{broker.host}:{broker.port}")
        sim.prepare()
        collector = EventCollector(broker.host, broker.port,
                                   load_config(sim.config_path).topic_prefix)
        collector.wait_subscribed(10)
        agent = AgentProcess(sim.config_path, work / "agent.log").start()
        samples: list[dict] = []
        try:
            if not sim.wait_for_agent():
                raise SystemExit(f"agent not ready:\n{agent.log_tail()}")
            driver = threading.Thread(target=sim.drive, daemon=True)
            started = time.monotonic()
            driver.start()
            while driver.is_alive():
                driver.join(SAMPLE_PERIOD_S)
                sample = proc_sample(agent.process.pid)
                sample.update(t_s=round(time.monotonic() - started, 1),
                              outbox_depth=outbox_depth(sim), sent=sim.results.sent,
                              events=collector.count())
                samples.append(sample)
                print(json.dumps(sample), flush=True)
            commanded = {r["parcel_id"] for r in sorter_records(sim)}
            delivered = bool(wait_for(lambda: commanded <= set(collector.parcels),
                                      timeout_s=DRAIN_S, what="every event"))
            final_depth = outbox_depth(sim)
            exit_code = agent.terminate()
        finally:
            agent.ensure_stopped()
            collector.close()
            sim.close()
    after_warmup = [s for s in samples if s["t_s"] >= WARMUP_S] or samples
    tail_from_s = samples[-1]["t_s"] - min(tail_minutes, minutes / 2) * 60 if samples else 0
    tail = [s for s in samples if s["t_s"] >= tail_from_s]
    depths = [s["outbox_depth"] for s in samples if s["outbox_depth"] is not None]
    return {
        "minutes": minutes, "rate_per_s": rate, "parcels_sent": sim.results.sent,
        "lane_commands": len(commanded), "events_received": collector.count(),
        "duplicates_received": collector.duplicates, "all_delivered": delivered,
        "final_outbox_depth": final_depth, "max_outbox_depth": max(depths, default=None),
        "agent_exit_code": exit_code,
        "first": samples[0] if samples else None, "last": samples[-1] if samples else None,
        "growth_after_warmup": growth(after_warmup),
        "tail_from_s": tail[0]["t_s"] if tail else None,
        "growth_over_tail": growth(tail),
        "max_rss_kb": max((s["rss_kb"] for s in samples), default=None),
        "loadavg": os.getloadavg(),
        "samples": samples,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=15.0)
    parser.add_argument("--rate", type=float, default=10.0, help="parcels per second")
    parser.add_argument("--tail-minutes", type=float, default=20.0,
                        help="report the growth over this last part of the run (at most half)")
    parser.add_argument("--out", type=Path, default=None, help="write the summary JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="edge-agent-soak-") as work:
        summary = run(args.minutes, args.rate, Path(work), args.tail_minutes)
    text = json.dumps(summary, indent=1)
    if args.out:
        args.out.write_text(text)
    print(json.dumps({k: v for k, v in summary.items() if k != "samples"}, indent=1))
    ok = summary["all_delivered"] and summary["agent_exit_code"] == 0
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
