"""Outbox append cost and drain rate to a local mosquitto. Run by hand (bounded, ~1 minute):

    .venv/bin/python bench/bench_outbox.py [--appends 20000] [--backlog 100000]

1. Append cost per event (p50/p99/p99.9 µs) beside plain baselines in the same run: a Python
   list append of the same dict, a bare SQLite INSERT+commit (WAL, synchronous=NORMAL, the same
   row), the same with synchronous=FULL (an fsync per event: what group commit avoids), and the
   outbox's previous append (ids, JSON and one SQLite commit per event, on the outbox's own
   schema and settings) beside today's journal append.
2. Drain: BACKLOG events appended while no broker link runs (an outage), then the link starts
   against a real mosquitto on a free loopback port; time until every row is PUBACKed and gone.
Results go in docs/PERFORMANCE.md ("Outbox and MQTT").
"""

from __future__ import annotations

import argparse
import json
import platform
import sqlite3
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.config import OutboxConfig, parse_config  # noqa: E402
from edge_agent.ids import IdGenerator  # noqa: E402
from edge_agent.logs import configure_logging  # noqa: E402
from edge_agent.simulation.local_broker import MosquittoBroker  # noqa: E402
from edge_agent.sync import outbox_store  # noqa: E402
from edge_agent.sync.link import MqttLink  # noqa: E402
from edge_agent.sync.outbox import Outbox  # noqa: E402

# A line at full speed makes a few parcels per second; 500/s is well above it, and the paced
# run shows the cost without the back-to-back burst's checkpoint pauses (5 s).
PACED_RATE = 500
PACED_COUNT = 2500
DRAIN_DEADLINE_S = 600.0  # the bench gives up rather than hang if the broker stalls


def decision(i: int) -> dict:
    """A parcel event the size of a real one (~450 bytes of JSON)."""
    return {
        "parcel_id": f"01890a5d-ac96-774b-bcce-b302099a{i:04x}", "barcode": f"RR{i:09d}HK",
        "lane": "ZHUHAI", "bin": 1, "rule": "gangzhufei-yangtze-delta",
        "reasons": [], "rules_version": "default-1",
        "decided_at": "2026-01-01T08:00:00.123+08:00",
        "inputs": {"weight_kg": 1.234, "weight_status": "ok", "country": "CN",
                   "province": "Shanghai", "postal_code": "200001", "identifier_kind": "s10",
                   "declared_weight_kg": 1.2, "service": "standard"},
    }


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    ordered = sorted(samples_ns)

    def at(q: float) -> float:
        return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))] / 1000, 1)

    return {"p50_us": at(0.50), "p99_us": at(0.99), "p999_us": at(0.999)}


def timed(n: int, call: Callable[[int], object], rate_hz: float = 0) -> dict[str, float]:
    """Time each call; with rate_hz, space the calls (the waiting is not timed)."""
    samples = []
    next_at = time.perf_counter()
    for i in range(n):
        if rate_hz:
            next_at += 1 / rate_hz
            time.sleep(max(0.0, next_at - time.perf_counter()))
        start = time.perf_counter_ns()
        call(i)
        samples.append(time.perf_counter_ns() - start)
    return percentiles(samples)


def bare_sqlite(path: Path, synchronous: str) -> Callable[[int], object]:
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode = WAL")
    db.execute(f"PRAGMA synchronous = {synchronous}")
    db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, kind TEXT, body TEXT)")

    def insert(i: int) -> object:
        return db.execute("INSERT INTO events (kind, body) VALUES (?, ?)",
                          ("parcel", json.dumps(decision(i), separators=(",", ":"))))

    return insert


def sqlite_append(path: Path) -> Callable[[int], object]:
    """The outbox's append before the journal: the same ids and JSON, one commit per event."""
    db = outbox_store.connect(path, "NORMAL")
    ids = IdGenerator()
    seq = iter(range(1, 10**9))

    def append(i: int) -> object:
        number, event_id = next(seq), ids.new()
        body = json.dumps({"schema_version": 1, **decision(i), "event_id": event_id,
                           "seq": number}, separators=(",", ":"), default=str)
        return db.execute(
            "INSERT INTO events (seq, event_id, kind, created_ms, body) VALUES (?, ?, ?, ?, ?)",
            (number, event_id, "parcel", int(time.time() * 1000), body))

    return append


def bench_appends(n: int, work: Path) -> dict[str, dict[str, float]]:
    results = {}
    plain: list = []
    results["list.append (baseline)"] = timed(n, lambda i: plain.append(decision(i)))
    results["bare SQLite insert, WAL, synchronous=NORMAL"] = timed(
        n, bare_sqlite(work / "bare-normal.db", "NORMAL"))
    results["bare SQLite insert, WAL, synchronous=FULL (fsync each)"] = timed(
        min(n, 2000), bare_sqlite(work / "bare-full.db", "FULL"))
    results["previous append: SQLite commit per event (baseline)"] = timed(
        n, sqlite_append(work / "previous.db"))
    results["previous append, paced (baseline)"] = timed(
        PACED_COUNT, sqlite_append(work / "previous-paced.db"), rate_hz=PACED_RATE)
    outbox = Outbox.open(work / "outbox", OutboxConfig())
    results["Outbox.append (group commit 20 ms), back to back"] = timed(
        n, lambda i: outbox.append("parcel", decision(i)))
    outbox.close()
    outbox = Outbox.open(work / "outbox-paced", OutboxConfig())
    results[f"Outbox.append (group commit 20 ms), paced at {PACED_RATE}/s"] = timed(
        PACED_COUNT, lambda i: outbox.append("parcel", decision(i)), rate_hz=PACED_RATE)
    outbox.close()
    return results


def bench_drain(backlog: int, work: Path) -> dict[str, float]:
    with MosquittoBroker(work / "broker") as broker:
        config = parse_config({"site": "BENCH", "line": "L1", "state_dir": str(work / "drain"),
                               "mqtt": {"port": broker.port}})
        outbox = Outbox.open(config.state_dir, config.outbox)
        for i in range(backlog):  # the outage: deciding goes on, the outbox buffers
            outbox.append("parcel", decision(i))
        size_mb = outbox.stats()["bytes_on_disk"] / 1e6
        link = MqttLink(config, outbox)
        start = time.monotonic()
        link.start()
        deadline = start + DRAIN_DEADLINE_S
        while outbox.stats()["depth"] and time.monotonic() < deadline:
            time.sleep(0.05)
        elapsed = time.monotonic() - start
        left = outbox.stats()["depth"]
        link.stop(timeout_s=5)
        outbox.close()
        after_mb = sum(p.stat().st_size for p in config.state_dir.glob("outbox.*")) / 1e6
    return {"events": backlog, "undelivered": left, "seconds": round(elapsed, 2),
            "events_per_s": round((backlog - left) / elapsed),
            "max_inflight": config.mqtt.max_inflight,
            "outbox_mb_before": round(size_mb, 1), "outbox_mb_after_close": round(after_mb, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--appends", type=int, default=20_000)
    parser.add_argument("--backlog", type=int, default=100_000)
    args = parser.parse_args()
    configure_logging(0, "json", "warning")  # logs on stderr; the report alone on stdout
    with tempfile.TemporaryDirectory(prefix="bench-outbox-") as tmp:
        work = Path(tmp)
        report = {
            "date": datetime.now(UTC).isoformat(timespec="seconds"),
            "machine": f"{platform.machine()} {platform.processor() or ''} "
                       f"Python {platform.python_version()} SQLite {sqlite3.sqlite_version}",
            "append": bench_appends(args.appends, work),
            "drain": bench_drain(args.backlog, work),
        }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
