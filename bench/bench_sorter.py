"""Sorter-driven mode: destination request -> reply latency, over serial (a pty) and over TCP.

    .venv/bin/python bench/bench_sorter.py [--rates 10,100] [--transports serial,tcp]
                                           [--seconds 10] [--json FILE]

For each transport and rate, a fresh `edge-agent run` (its own process, durable outbox on, MQTT
off: the reply never waits on the network) serves a sorter-host sorter simulated on a pty, or
on loopback TCP connecting to the agent as its server (as the public host specs have it)
(edge_agent/devices/simulators/host_sorter.py). The simulator inducts parcels at the rate, each
with a manifest barcode, weight and size, and measures on its side of the link the time from
writing a request's last byte to reading the reply's (p50/p99/max). Also counted: requests
answered, and those the agent counted late (`requests_late`, after the request's 500 ms
deadline). The profile is the same over both; only the device's link differs. Everything
started here is stopped by its pid.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.devices.simulators.host_sorter import HostSorterSimulator  # noqa: E402
from edge_agent.runtime.status_server import StatusError, query_status  # noqa: E402
from edge_agent.simulation.line_sim import sorter_driven_config_text, write_manifest  # noqa: E402
from edge_agent.simulation.local_broker import free_port  # noqa: E402
from edge_agent.simulation.parcel_mix import parcel_mix  # noqa: E402

TRANSPORTS = ("serial", "tcp")
LOOPBACK = "127.0.0.1"
READY_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 10.0


def _status(state_dir: Path) -> dict:
    try:
        return query_status(state_dir / "status.sock", timeout_s=1.0)
    except StatusError:
        return {}


def _wait(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)  # another process: poll until the deadline
    return False


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def run_rate(rate: float, seconds: float, work: Path, transport: str = "serial") -> dict:
    count = max(1, int(rate * seconds))
    parcels = [p for p in parcel_mix(count * 2, seed=11) if p.barcode][:count]
    state_dir = work / "state"
    state_dir.mkdir(parents=True)
    write_manifest(work, state_dir, parcels)
    sorter = HostSorterSimulator(work / "sorter")
    if transport == "tcp":  # the sorter connects; the agent listens
        sorter.connect_tcp(LOOPBACK, free_port())
        device = (f'transport = "tcp"\nrole = "server"\nhost = "{LOOPBACK}"\n'
                  f"port = {sorter.tcp_port}")
    else:
        device = f'port = "{sorter.path}"'
    sorter.start()
    sorter.result_delay_s = 0.05
    config = work / "agent.toml"
    config.write_text(sorter_driven_config_text(device, site="BENCH"))  # MQTT off
    log = (work / "agent.log").open("w")
    agent = subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config", str(config)],
                             stdout=subprocess.DEVNULL, stderr=log)
    try:
        ready = _wait(lambda: _status(state_dir).get("devices", {}).get("sorter", {})
                      .get("state") == "connected", READY_TIMEOUT_S)
        if not ready:
            raise RuntimeError(f"agent not ready; see {work / 'agent.log'}")
        start = time.monotonic()
        for number, parcel in enumerate(parcels):
            while (wait := start + number / rate - time.monotonic()) > 0:
                time.sleep(wait)  # pacing the requests
            sorter.induct(f"B{number:07d}", [parcel.barcode], weight_kg=parcel.weight_kg,
                          dims=(300.0, 200.0, 100.0))
        sorter.wait_until(lambda: all(p.replies for p in sorter.parcels.values()),
                          DRAIN_TIMEOUT_S)
        latencies = [ns / 1e6 for ns in sorter.reply_latencies_ns()]
        _wait(lambda: _status(state_dir).get("counters", {}).get("destination_requests", 0)
              >= count, 3.0)
        counters = _status(state_dir).get("counters", {})
    finally:
        agent.send_signal(signal.SIGTERM)
        try:
            agent.wait(15)
        except subprocess.TimeoutExpired:
            agent.kill()
            agent.wait()
        log.close()
        sorter.stop()
    return {
        "transport": transport, "rate": rate, "requests": count, "answered": len(latencies),
        "p50_ms": round(_percentile(latencies, 0.5), 3) if latencies else None,
        "p99_ms": round(_percentile(latencies, 0.99), 3) if latencies else None,
        "max_ms": round(max(latencies), 3) if latencies else None,
        "requests_late": counters.get("requests_late", 0),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="10,100", help="requests per second, comma-separated")
    parser.add_argument("--transports", default=",".join(TRANSPORTS),
                        help="serial, tcp or both, comma-separated (default both)")
    parser.add_argument("--seconds", type=float, default=10.0, help="per rate (default 10)")
    parser.add_argument("--json", type=Path, help="also write the results to FILE")
    args = parser.parse_args(argv)
    transports = args.transports.split(",")
    if unknown := set(transports) - set(TRANSPORTS):
        parser.error(f"--transports: unknown {', '.join(sorted(unknown))} "
                     f"(one or more of {', '.join(TRANSPORTS)})")
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-sorter-") as tmp:
        for transport in transports:
            for rate in (float(r) for r in args.rates.split(",")):
                result = run_rate(rate, args.seconds, Path(tmp) / f"{transport}-{rate:g}",
                                  transport)
                results.append(result)
                print(f"{transport:<6} {rate:>6g}/s  {result['answered']}/{result['requests']} "
                      f"answered  p50 {result['p50_ms']} ms  p99 {result['p99_ms']} ms  "
                      f"max {result['max_ms']} ms  late {result['requests_late']}", flush=True)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0 if all(r["answered"] == r["requests"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
