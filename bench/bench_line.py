"""The line benchmark: the agent and a plain baseline on the same simulated line, same run.

    .venv/bin/python bench/bench_line.py [--rates 100,200,500,1000] [--seconds 5]
                                         [--burst 5000] [--burst-rate 5000] [--only agent]

For each rate, and then a burst (`--burst` parcels at `--burst-rate` per second), both
processes serve a fresh simulated line (scanner, checkweigher and sorter on ptys, see
edge_agent/simulation/line_sim.py) with a real mosquitto on a free loopback port:

- `edge-agent run` with its durable outbox on (the default config `simulate line` writes);
- `bench/baseline_pipe.py`: pyserial in chunks, a thread per port, trivial rule, paho QoS 1.

Figures per run: scan-to-lane-command latency measured at the sorter's end of the serial line
(p50/p99/p99.9), the rate achieved and whether it kept up (every lane command and every event
at the broker within `KEPT_UP_S` of the last scan), CPU seconds per 1,000 parcels (utime+stime
of the process from /proc, from before the first parcel to the last event), peak and current
resident memory (VmHWM/VmRSS), start-up time (exec to READY=1 on $NOTIFY_SOCKET, the way
systemd sees it), parcels lost, and the share published with another parcel's weight. Events
are collected by a subscriber in its own process, so its work does not slow the simulated line.
Everything started here is stopped by its pid. Results: docs/PERFORMANCE.md ("Line").
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from edge_agent.simulation.line_sim import (  # noqa: E402
    LineSimulation,
    agent_config_text,
    wait_for_agent,
    write_manifest,
)
from edge_agent.simulation.local_broker import MosquittoBroker  # noqa: E402
from edge_agent.simulation.parcel_mix import SimParcel, parcel_mix  # noqa: E402
from edge_agent.sorting.manifest import MANIFEST_FILE, Manifest  # noqa: E402

LIGHT_LINE = ROOT / "bench" / "light_line.py"

# Generous bounds for a shared 2-core machine; every wait ends as soon as its condition holds.
READY_TIMEOUT_S = 30.0
DEVICES_TIMEOUT_S = 30.0
EVENTS_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 15.0
# A run "kept up" when its last lane command and last event came within this of the last scan.
KEPT_UP_S = 1.0
# Weights go on the wire with three decimals.
WEIGHT_TOLERANCE_KG = 0.0005
# Polling another process's output file, with a deadline.
POLL_S = 0.02
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
# The agent's status keeps the latencies of this many recent decisions.
LATENCY_WINDOW = 20_000
# The simulated line's poll_reorder_ms (edge_agent/simulation/line_sim.py's agent config).
REORDER_MARGIN_MS = 0.5
# The command worker starts once the line has been quiet 1 s: how long to wait for it.
WORKER_WAIT_S = 5.0
# Starts timed after the first (which compiles the bytecode), for the start-up figure.
WARM_STARTS = 5


@dataclass
class RunResult:
    kind: str
    rate: float
    parcels: int
    startup_s: float = 0.0
    latency_us: dict[str, float | None] = field(default_factory=dict)
    achieved_per_s: float = 0.0
    last_command_lag_s: float = 0.0
    last_event_lag_s: float = 0.0
    kept_up: bool = False
    cpu_s_per_1000: float = 0.0
    peak_rss_mb: float = 0.0
    rss_mb: float = 0.0
    lane_commands: int = 0
    events: int = 0
    lost: int = 0
    # Of the parcels with a label and a weight of their own: carried their own weight (right),
    # carried none and went to EXCEPTION (safe), carried another parcel's (wrong: never).
    right_weight_share: float = 0.0
    safe_weight_share: float = 0.0
    wrong_weight_share: float = 0.0
    in_process_latency_ms: dict | None = None
    # The light line's own punctuality: how long after its due time each scan was written
    # (p50/p99, µs). Large values mean the simulator, not the process, made the latency.
    line_late_us: dict | None = None
    # Scan (due) -> the parcel's event at central's subscriber (p50/p99/p99.9, µs), and how soon
    # after exec the line's first parcel can reach central: READY=1 plus that parcel's scan ->
    # event (the harness's own wait between the two is left out).
    event_latency_us: dict[str, float | None] = field(default_factory=dict)
    first_event_s: float | None = None
    # The process's own share: weight reply written + the reorder margin the agent must wait
    # (the line's time: the parcel's weight is provably its own only then) -> lane command.
    # The baseline takes no margin; its figure counts from the reply itself.
    after_proof_us: dict[str, float | None] = field(default_factory=dict)
    # The agent's command worker (a child process, started once the line is quiet): resident
    # memory once it runs, MB (None: it did not start within WORKER_WAIT_S).
    worker_rss_mb: float | None = None


# -- the process under test -------------------------------------------------------------------

# Installed with pip, a device runs from compiled bytecode; a development shell may forbid
# writing it (PYTHONDONTWRITEBYTECODE), which would time the compiler, not the agent. The
# processes started here cache their bytecode in the run's own directory (set in main()).
_CHILD_ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _command(kind: str, config: Path) -> list[str]:
    if kind == "agent":
        return [sys.executable, "-m", "edge_agent", "run", "--config", str(config)]
    return [sys.executable, str(ROOT / "bench" / "baseline_pipe.py"), "--config", str(config)]


def _cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def _memory_mb(pid: int) -> tuple[float, float]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS"):
            values[key] = int(rest.split()[0]) / 1024
    if len(values) < 2:  # a zombie: it exited before the run was measured
        raise RuntimeError(f"process {pid} exited during the run; see its log")
    return values["VmHWM"], values["VmRSS"]


def _start_timed(
    command: list[str], notify_path: Path, log: Path
) -> tuple[subprocess.Popen, float, socket.socket]:
    """Start the process and time exec -> READY=1 on our own notify socket. The socket stays
    open (and drained) until the caller closes it, as systemd's does: the agent keeps sending
    STATUS= lines, and a vanished socket would have it log a failure for each one."""
    notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    notify.bind(str(notify_path))
    notify.settimeout(READY_TIMEOUT_S)
    env = dict(_CHILD_ENV, NOTIFY_SOCKET=str(notify_path))
    with log.open("a") as err:
        started = time.monotonic()
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=err)
    try:
        while b"READY=1" not in notify.recv(4096).split(b"\n"):
            pass
    except TimeoutError:
        _stop(process)
        notify.close()
        raise RuntimeError(f"{command[1]} sent no READY=1; see {log}") from None
    ready_s = time.monotonic() - started
    notify.settimeout(None)
    threading.Thread(target=_drain, args=(notify,), daemon=True).start()
    return process, ready_s, notify


def _drain(notify: socket.socket) -> None:
    with contextlib.suppress(OSError):  # closed by the run: done
        while notify.recv(4096):
            pass


def _close_notify(notify: socket.socket) -> None:
    with contextlib.suppress(OSError):
        notify.shutdown(socket.SHUT_RDWR)  # wakes the draining thread's recv()
    notify.close()


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(STOP_TIMEOUT_S)


# -- central's view, in its own process -------------------------------------------------------


def collect(host: str, port: int, topic: str, out: Path) -> int:
    """Subscriber process: one line per event (parcel id, barcode, weight, arrival as
    time.monotonic_ns(), which compares across processes) until SIGTERM."""
    import paho.mqtt.client as mqtt

    sink = out.open("w", buffering=1)
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=f"bench-{os.getpid()}",
                         protocol=mqtt.MQTTv5)

    def on_message(client, userdata, message) -> None:
        arrived_ns = time.monotonic_ns()
        event = json.loads(message.payload)
        sink.write(json.dumps([event.get("parcel_id"), event.get("barcode"),
                               (event.get("inputs") or {}).get("weight_kg"), arrived_ns]) + "\n")

    client.on_connect = lambda c, u, f, rc, p: c.subscribe(topic, qos=1)
    client.on_subscribe = lambda c, u, mid, rcs, p: print("subscribed", flush=True)
    client.on_message = on_message
    signal.signal(signal.SIGTERM, lambda signum, frame: client.disconnect())
    client.connect(host, port)
    client.loop_forever()
    sink.close()
    return 0


def _start_collector(broker: MosquittoBroker, topic: str, out: Path) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, __file__, "collect", broker.host, str(broker.port), topic, str(out)],
        stdout=subprocess.PIPE, text=True,
    )
    if process.stdout.readline().strip() != "subscribed":  # blocks until it has subscribed
        _stop(process)
        raise RuntimeError("the event collector did not subscribe")
    return process


def _lines(path: Path) -> list[list]:
    text = path.read_text() if path.exists() else ""
    return [json.loads(line) for line in text.splitlines() if line.endswith("]")]


def _wait_lines(path: Path, count: int, timeout_s: float) -> float:
    """Time when `path` held `count` lines (or the deadline passed)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with path.open("rb") as handle:
            if sum(1 for _ in handle) >= count:
                return time.monotonic()
        time.sleep(POLL_S)
    return time.monotonic()


def measure_startup(kind: str, work: Path, broker: MosquittoBroker,
                    warm_starts: int = WARM_STARTS) -> dict[str, float]:
    """exec -> READY=1: the first start (bytecode compiled) and the median of warm ones."""
    out = work / f"startup-{kind}"
    sim = LineSimulation(out, parcel_mix(10), rate=10, broker=f"{broker.host}:{broker.port}",
                         site="BENCH", line=f"S{kind}")
    times = []
    try:
        config = sim.prepare()
        for attempt in range(1 + max(1, warm_starts)):
            notify = out / f"notify-{attempt}.sock"
            process, seconds, notify_socket = _start_timed(
                _command(kind, config), notify, out / f"{kind}.log")
            _stop(process)
            _close_notify(notify_socket)
            times.append(seconds)
    finally:
        sim.close()
    warm = sorted(times[1:])
    return {"first_s": round(times[0], 3), "warm_median_s": round(warm[len(warm) // 2], 3),
            "warm_max_s": round(warm[-1], 3)}


def build_filler_manifest(work: Path, rows: int) -> Path:
    """A manifest store of `rows` other parcels, copied under each run's own rows, so the
    agent looks its parcels up in a store of a real day's size (`--manifest-rows`)."""
    state = work / "filler-state"
    shutil.rmtree(state, ignore_errors=True)  # a kept directory's earlier filler
    state.mkdir(parents=True)
    source = work / "filler.csv"
    with source.open("w") as handle:
        handle.write("barcode,country,postal_code,declared_weight_kg,service\n")
        for number in range(rows):
            handle.write(f"FILL{number:010d},CN,{200000 + number % 800000},1.5,STD\n")
    with Manifest.open(state) as manifest:
        manifest.import_file(source)
    source.unlink()
    return state / MANIFEST_FILE


# -- one run ----------------------------------------------------------------------------------


def _measure_process(result: RunResult, process: subprocess.Popen, cpu_before: float,
                     state_dir: Path) -> None:
    """CPU per 1,000 parcels since `cpu_before`, memory, and the agent's own latency view."""
    result.cpu_s_per_1000 = (_cpu_s(process.pid) - cpu_before) / result.parcels * 1000
    result.peak_rss_mb, result.rss_mb = _memory_mb(process.pid)
    if result.kind == "agent":
        result.in_process_latency_ms = _agent_status_latency(state_dir, result.parcels)


def _stop_run(process: subprocess.Popen | None, notify: socket.socket | None,
              collector: subprocess.Popen | None) -> None:
    if process is not None:
        _stop(process)
    if notify is not None:
        _close_notify(notify)
    if collector is not None:
        _stop(collector)


def run_once_light(kind: str, rate: float, parcels: list[SimParcel], work: Path,
                   broker: MosquittoBroker, number: int,
                   filler: Path | None = None) -> RunResult:
    """One run on bench/light_line.py: the line in its own single-threaded process."""
    out = work / f"{number:02d}-{kind}-{int(rate)}"
    state, dev = out / "state", out / "dev"
    state.mkdir(parents=True)
    config = out / "agent.toml"
    config.write_text(agent_config_text(
        dev / "scanner", dev / "scale", dev / "sorter",
        broker=f"{broker.host}:{broker.port}", site="BENCH", line=f"R{number}"))
    if filler is not None:
        shutil.copyfile(filler, state / MANIFEST_FILE)
    write_manifest(out, state, parcels)
    (out / "parcels.json").write_text(
        json.dumps([[p.barcode, p.symbology, p.weight_kg] for p in parcels]))
    # The kernel would otherwise write this run's files (a copied manifest store: 50 MB) back
    # to disk during the run, on the same two cores.
    os.sync()
    result = RunResult(kind, rate, len(parcels))
    events_path, line_results = out / "events.jsonl", out / "line-results.json"
    line = subprocess.Popen(
        [sys.executable, str(LIGHT_LINE), str(out),
         str(out / "parcels.json"), str(rate), str(line_results)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=_CHILD_ENV)
    collector = process = notify = None
    try:
        if line.stdout.readline().strip() != "ready":
            raise RuntimeError("the light line did not start")
        collector = _start_collector(broker, f"sortline/v1/BENCH/R{number}/events/parcel",
                                     events_path)
        process, result.startup_s, notify = _start_timed(
            _command(kind, config), out / "notify.sock", out / f"{kind}.log")
        if kind == "agent" and not wait_for_agent(state, DEVICES_TIMEOUT_S):
            raise RuntimeError(f"the agent did not open its devices; see {out / 'agent.log'}")
        cpu_before = _cpu_s(process.pid)
        line.stdin.write("go\n")
        line.stdin.flush()
        # The line ends by itself (every lane command in, or its drain timeout).
        if line.stdout.readline().strip() != "done":
            raise RuntimeError("the light line stopped before its results")
        seen = json.loads(line_results.read_text())
        due = seen["due_ns"]
        late_us = [ns / 1000 for ns in seen["late_ns"]]
        result.line_late_us = {"p50": _round(_percentile(late_us, 0.5)),
                               "p99": _round(_percentile(late_us, 0.99))}
        last_event = _wait_lines(events_path, len(parcels), EVENTS_TIMEOUT_S)
        _measure_process(result, process, cpu_before, state)
        due_by_barcode = {p.barcode: due[i] for i, p in enumerate(parcels[:len(due)])
                          if p.barcode is not None}
        commands = seen["commands"]
        latencies = [(arrived - due_by_barcode[label]) / 1000
                     for label, _, _, arrived in commands if label in due_by_barcode]
        outcome = LineOutcome(latencies, len(commands),
                              max((c[3] for c in commands), default=0) / 1e9)
        events = _lines(events_path)
        _finish(result, outcome, parcels, events, due[0] / 1e9 if due else 0.0,
                due[-1] / 1e9 if due else 0.0, last_event)
        _event_latencies(result, events, due_by_barcode, parcels, due)
        margin_ns = int(REORDER_MARGIN_MS * 1e6) if kind == "agent" else 0
        result.after_proof_us = _after_proof(commands, seen["replies"], parcels, margin_ns)
        if kind == "agent":
            result.worker_rss_mb = _worker_rss_mb(process.pid, state)
    finally:
        _stop_run(process, notify, collector)
        line.stdin.close()  # the line closes its ptys and exits
        try:
            line.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            line.kill()
            line.wait()
    return result


def run_once(kind: str, rate: float, parcels: list[SimParcel], work: Path,
             broker: MosquittoBroker, number: int) -> RunResult:
    out = work / f"{number:02d}-{kind}-{int(rate)}"
    sim = LineSimulation(out, parcels, rate=rate, broker=f"{broker.host}:{broker.port}",
                         site="BENCH", line=f"R{number}")
    result = RunResult(kind, rate, len(parcels))
    events_path = out / "events.jsonl"
    collector = process = notify = None
    try:
        config = sim.prepare()
        topic = f"sortline/v1/BENCH/R{number}/events/parcel"
        collector = _start_collector(broker, topic, events_path)
        process, result.startup_s, notify = _start_timed(
            _command(kind, config), out / "notify.sock", out / f"{kind}.log")
        if kind == "agent" and not sim.wait_for_agent(DEVICES_TIMEOUT_S):
            raise RuntimeError(f"the agent did not open its devices; see {out / 'agent.log'}")
        cpu_before = _cpu_s(process.pid)
        first_scan = time.monotonic()
        sim.drive()
        last_scan = time.monotonic()
        sim.wait_for_lane_commands(EVENTS_TIMEOUT_S)
        last_command = time.monotonic()
        last_event = _wait_lines(events_path, len(parcels), EVENTS_TIMEOUT_S)
        _measure_process(result, process, cpu_before, sim.state_dir)
        del last_command  # when we noticed; the lane commands' own arrival times count
        _finish(result, _threaded_outcome(sim), parcels, _lines(events_path), first_scan,
                last_scan, last_event)
    finally:
        _stop_run(process, notify, collector)
        sim.close()
    return result


def _agent_status_latency(state_dir: Path, parcels: int = 0) -> dict | None:
    """The agent's own latency figures, once they count `parcels` decisions (the agent
    refreshes them every second) or after a few seconds."""
    from edge_agent.runtime.status_server import StatusError, query_status

    latency = None
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        try:
            latency = query_status(state_dir / "status.sock").get("latency")
        except StatusError:
            return latency
        if latency and latency.get("count", 0) >= min(parcels, LATENCY_WINDOW):
            break
        time.sleep(POLL_S)  # another process's periodic refresh: nothing to wait on
    return latency


@dataclass
class LineOutcome:
    """What the sorter's end of the line saw, whichever simulation ran it."""

    latencies_us: list[float]
    lane_commands: int
    commands_end_s: float  # time.monotonic() of the last lane command's arrival (0: none)

    def percentile_us(self, q: float) -> float | None:
        return _percentile(self.latencies_us, q)


def _percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _threaded_outcome(sim: LineSimulation) -> LineOutcome:
    commands = sim.sorter.commands
    return LineOutcome(list(sim.results.latencies_us), len(commands),
                       max((c.received_ns for c in commands), default=0) / 1e9)


def _finish(result: RunResult, outcome: LineOutcome, parcels: list[SimParcel], events: list,
            first_scan: float, last_scan: float, last_event: float) -> None:
    result.latency_us = {name: _round(outcome.percentile_us(q))
                         for name, q in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999))}
    result.lane_commands = outcome.lane_commands
    result.events = len({event[0] for event in events})
    result.lost = len(parcels) - min(result.lane_commands, result.events)
    # The lane command's own arrival, not our noticing it, ends the run on the line side.
    commands_end = outcome.commands_end_s
    result.last_command_lag_s = round(max(0.0, commands_end - last_scan), 3)
    result.last_event_lag_s = round(max(0.0, last_event - last_scan), 3)
    span = max(commands_end, last_scan) - first_scan
    result.achieved_per_s = round(result.lane_commands / span, 1) if span > 0 else 0.0
    result.kept_up = (result.lost == 0 and result.last_command_lag_s <= KEPT_UP_S
                      and result.last_event_lag_s <= KEPT_UP_S)
    weights = {p.barcode: p.weight_kg for p in parcels if p.barcode is not None}
    right = safe = wrong = checked = 0
    for _, barcode, weight, *_ in events:
        expected = weights.get(barcode)
        if expected is None:  # no label, or a parcel that never settles: no weight to check
            continue
        checked += 1
        if weight is None:
            safe += 1
        elif abs(weight - expected) <= WEIGHT_TOLERANCE_KG:
            right += 1
        else:
            wrong += 1
    for name, count in (("right", right), ("safe", safe), ("wrong", wrong)):
        setattr(result, f"{name}_weight_share", round(count / checked, 4) if checked else 0.0)
    result.cpu_s_per_1000 = round(result.cpu_s_per_1000, 3)
    result.startup_s = round(result.startup_s, 3)
    result.peak_rss_mb, result.rss_mb = round(result.peak_rss_mb, 1), round(result.rss_mb, 1)


def _event_latencies(result: RunResult, events: list, due_by_barcode: dict[str, int],
                     parcels: list[SimParcel], due: list[int]) -> None:
    """Scan -> event at central, for every labelled parcel, and the first parcel's."""
    arrivals = {barcode: arrived for _, barcode, _, arrived in events if barcode is not None}
    latencies = [(arrivals[barcode] - due_ns) / 1000 for barcode, due_ns in due_by_barcode.items()
                 if barcode in arrivals]
    result.event_latency_us = {name: _round(_percentile(latencies, q))
                               for name, q in (("p50", 0.5), ("p99", 0.99), ("p99.9", 0.999))}
    first = next((p.barcode for p in parcels[:len(due)] if p.barcode is not None), None)
    if first in arrivals:
        result.first_event_s = round(result.startup_s
                                     + (arrivals[first] - due_by_barcode[first]) / 1e9, 3)


def _after_proof(commands: list, replies: list, parcels: list[SimParcel],
                 margin_ns: int) -> dict[str, float | None]:
    """Lane command arrival - (the parcel's first weight reply + margin), for every labelled
    parcel whose weight was answered: what the process adds once the line let it decide."""
    first_reply: dict[str, int] = {}
    for index, written_ns in replies:
        barcode = parcels[index].barcode if 0 <= index < len(parcels) else None
        if barcode is not None:
            first_reply.setdefault(barcode, written_ns)
    own = [(arrived - first_reply[label] - margin_ns) / 1000
           for label, _, _, arrived in commands if label in first_reply]
    return {name: _round(_percentile(own, q)) for name, q in (("p50", 0.5), ("p99", 0.99))}


def _worker_rss_mb(pid: int, state_dir: Path) -> float | None:
    """Resident memory of the agent's child (its command worker), once the agent's status
    says the worker runs (it has imported what it needs)."""
    from edge_agent.runtime.status_server import StatusError, query_status

    deadline = time.monotonic() + WORKER_WAIT_S
    while time.monotonic() < deadline:
        try:
            running = query_status(state_dir / "status.sock")["commands"]["state"] == "running"
        except (StatusError, KeyError, TypeError):
            running = False
        if not running:
            time.sleep(POLL_S)  # another process's start: nothing to wait on but its status
            continue
        # Listed under the thread that started it (the command inbox's), so every thread's.
        children = [child for task in Path(f"/proc/{pid}/task").iterdir()
                    for child in (task / "children").read_text().split()]
        for child in children:
            try:
                return round(_memory_mb(int(child))[1], 1)
            except (OSError, RuntimeError):
                continue
        time.sleep(POLL_S)  # another process's start: nothing to wait on but its pid
    return None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)


# -- the report -------------------------------------------------------------------------------


def table(results: list[RunResult]) -> str:
    rows = [
        "| Process | Rate /s | Parcels | p50 ms | p99 ms | p99.9 ms | after proof p50 / p99 ms |"
        " event p50 / p99 ms | Kept up | CPU s/1000 | Peak RSS MB (+ worker) | READY s |"
        " first event s | Lost | Weight right / safe / wrong |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        ms = {k: "-" if v is None else f"{v / 1000:.2f}" for k, v in r.latency_us.items()}
        event_ms = {k: "-" if r.event_latency_us.get(k) is None
                    else f"{r.event_latency_us[k] / 1000:.2f}" for k in ("p50", "p99")}
        proof_ms = {k: "-" if r.after_proof_us.get(k) is None
                    else f"{r.after_proof_us[k] / 1000:.2f}" for k in ("p50", "p99")}
        memory = f"{r.peak_rss_mb}" + ("" if r.worker_rss_mb is None else f" + {r.worker_rss_mb}")
        rows.append(
            f"| {r.kind} | {r.rate:g} | {r.parcels} | {ms['p50']} | {ms['p99']} | {ms['p99.9']}"
            f" | {proof_ms['p50']} / {proof_ms['p99']} | {event_ms['p50']} / {event_ms['p99']}"
            f" | {'yes' if r.kept_up else 'no'} ({r.achieved_per_s:g}/s) | {r.cpu_s_per_1000}"
            f" | {memory} | {r.startup_s} | {r.first_event_s or '-'} | {r.lost}"
            f" | {r.right_weight_share:.1%} /"
            f" {r.safe_weight_share:.1%} / {r.wrong_weight_share:.1%} |"
        )
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="100,200,500,1000",
                        help="comma-separated parcels per second (default %(default)s)")
    parser.add_argument("--seconds", type=float, default=5.0,
                        help="length of each paced run (default %(default)s)")
    parser.add_argument("--burst", type=int, default=5000, help="parcels in the burst; 0: none")
    parser.add_argument("--burst-rate", type=float, default=5000.0)
    parser.add_argument("--only", choices=("agent", "baseline"), help="run one process only")
    parser.add_argument("--line", choices=("light", "threaded"), default="light",
                        help="the simulated line: bench/light_line.py in its own process "
                        "(default), or `simulate line`'s threaded devices in this process")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--starts", type=int, default=WARM_STARTS,
                        help="warm starts timed for the start-up figure (default %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the results here")
    parser.add_argument("--keep", type=Path, help="run in this directory and keep its files")
    parser.add_argument("--manifest-rows", type=int, default=0,
                        help="other parcels' rows in the agent's manifest store (light line "
                        "only; default %(default)s: the run's own rows only)")
    args = parser.parse_args()

    plan = [(float(rate), max(200, int(float(rate) * args.seconds)))
            for rate in args.rates.split(",") if rate]
    if args.burst:
        plan.append((args.burst_rate, args.burst))
    kinds = [args.only] if args.only else ["agent", "baseline"]
    load_before = os.getloadavg()
    results: list[RunResult] = []
    startup: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-line-") as tmp:
        work = args.keep or Path(tmp)
        _CHILD_ENV["PYTHONPYCACHEPREFIX"] = str(work / "pycache")
        broker = MosquittoBroker(work / "broker").start()
        filler = build_filler_manifest(work, args.manifest_rows) if args.manifest_rows else None
        try:
            for kind in kinds:
                startup[kind] = measure_startup(kind, work, broker, args.starts)
                print(json.dumps({"startup": kind, **startup[kind]}), flush=True)
            for rate, count in plan:
                parcels = parcel_mix(count, seed=args.seed)
                for kind in kinds:
                    if args.line == "light":
                        result = run_once_light(kind, rate, parcels, work, broker, len(results),
                                                filler)
                    else:
                        result = run_once(kind, rate, parcels, work, broker, len(results))
                    results.append(result)
                    print(json.dumps(result.__dict__), flush=True)
        finally:
            broker.stop()
    print()
    print(table(results))
    info = {
        "date": datetime.now(UTC).date().isoformat(),
        "machine": f"{os.cpu_count()} cores, {platform.machine()}, {platform.platform()}",
        "python": platform.python_version(),
        "manifest_rows": args.manifest_rows,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps({"startup": startup}))
    print(json.dumps(info))
    if args.json:
        args.json.write_text(json.dumps({"info": info, "startup": startup,
                                         "results": [r.__dict__ for r in results]}, indent=1))
    return 0


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "collect":
        host, port, topic, out = sys.argv[2:6]
        raise SystemExit(collect(host, int(port), topic, Path(out)))
    raise SystemExit(main())
