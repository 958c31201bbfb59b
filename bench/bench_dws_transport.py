"""DWS record to lane command over TCP and over a pty, in the same run.

    .venv/bin/python bench/bench_dws_transport.py [--parcels 500] [--rate 50] [--rounds 2]

Each round runs `edge-agent run` twice on a DWS line (a generic DWS unit and a sorter, MQTT
off so only the device path is measured): once with the unit on a pty, once with the unit on
loopback TCP (the agent connecting to it), in alternating order so that a machine getting
busier does not favour one transport. The latency of a parcel is from just before its record
is written by the simulated unit to when the simulated sorter has read its lane command, both
on this process's monotonic clock; it includes the simulators' own threads on both ends, which
are the same for both transports. Printed: p50 / p99 / max per transport, and a JSON line.
Everything started here is stopped by its pid.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.devices.simulators import DwsSimulator, SorterSimulator  # noqa: E402
from edge_agent.runtime.status_server import StatusError, query_status  # noqa: E402
from edge_agent.simulation.line_sim import dws_agent_config_text  # noqa: E402

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0


def wait(condition, timeout_s: float, what: str):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout_s
    pause = threading.Event()
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        pause.wait(0.02)  # polling a condition with a deadline
    raise SystemExit(f"timed out waiting for {what}")


def devices_connected(state_dir: Path) -> bool:
    try:
        devices = query_status(state_dir / "status.sock", timeout_s=1.0).get("devices", {})
    except StatusError:
        return False
    return len(devices) == 2 and all(d["state"] == "connected" for d in devices.values())


def one_run(transport: str, parcels: int, rate: float) -> list[float]:
    """Latencies in ms of `parcels` records through the agent with the unit on `transport`."""
    with tempfile.TemporaryDirectory(prefix="bench-dws-") as tmp:
        out = Path(tmp)
        (out / "state").mkdir()
        unit = DwsSimulator("generic-dws", None if transport == "tcp" else out / "dws",
                            name="dws")
        if transport == "tcp":
            unit.serve_tcp("127.0.0.1", 0)
        sorter = SorterSimulator(out / "sorter", name="sorter")
        unit.start()
        sorter.start()
        dws_lines = (f'transport = "tcp"\nhost = "127.0.0.1"\nport = {unit.tcp_port}'
                     if transport == "tcp" else f'port = "{unit.path}"')
        # MQTT off: only the device path is measured
        (out / "agent.toml").write_text(dws_agent_config_text(dws_lines, sorter.path,
                                                              site="BENCH", line="DWS"))
        log = (out / "agent.log").open("w")
        agent = subprocess.Popen([sys.executable, "-m", "edge_agent", "run", "--config",
                                  str(out / "agent.toml")], stdout=subprocess.DEVNULL,
                                 stderr=log)
        try:
            wait(lambda: devices_connected(out / "state"), READY_TIMEOUT_S, "the agent")
            sent_ns: list[int] = []
            gap_s = 1.0 / rate
            start = time.monotonic()
            pace = threading.Event()
            for n in range(parcels):
                pace.wait(max(0.0, start + n * gap_s - time.monotonic()))  # the line's pace
                sent_ns.append(time.monotonic_ns())
                unit.measure([f"LP{n:014d}"], 2.0, (300.0, 200.0, 100.0))
            commands = sorter.wait_for_commands(parcels, timeout_s=READY_TIMEOUT_S)
            if len(commands) != parcels:
                raise SystemExit(f"{transport}: {len(commands)} of {parcels} lane commands")
            # One link, read in order: the nth command answers the nth record.
            return [(c.received_ns - t) / 1e6 for c, t in zip(commands, sent_ns, strict=True)]
        finally:
            agent.terminate()
            try:
                agent.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                agent.kill()
                agent.wait(STOP_TIMEOUT_S)
            log.close()
            unit.stop()
            sorter.stop()


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--parcels", type=int, default=500)
    parser.add_argument("--rate", type=float, default=50.0, help="records per second")
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"pty": [], "tcp": []}
    for round_number in range(args.rounds):
        order = ("pty", "tcp") if round_number % 2 == 0 else ("tcp", "pty")
        for transport in order:
            results[transport] += one_run(transport, args.parcels, args.rate)
    summary = {}
    for transport, values in results.items():
        summary[transport] = {
            "parcels": len(values), "p50_ms": round(statistics.median(values), 3),
            "p99_ms": round(percentile(values, 0.99), 3), "max_ms": round(max(values), 3)}
        print(f"{transport}: {len(values)} records at {args.rate:g}/s, record -> lane command "
              f"p50 {summary[transport]['p50_ms']} ms, p99 {summary[transport]['p99_ms']} ms, "
              f"max {summary[transport]['max_ms']} ms")
    print(json.dumps({"bench": "dws_transport", "rate": args.rate, **summary}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
