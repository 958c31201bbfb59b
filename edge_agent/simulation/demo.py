"""`edge-agent demo`: a simulated line end to end, on the agent's embedded defaults.

The demo plays every part but the agent: a local mosquitto on a free loopback port (when one is
installed; otherwise the agent runs offline and the demo says so), the line's scanner,
checkweigher and sorter on pseudo-terminals, and a central subscriber counting parcel and
outcome events. The sorter confirms what happened to each parcel, mostly sorted, some too late,
into a full bin or recirculated (DEMO_OUTCOMES), so the summary shows outcomes beside decisions.
The agent itself runs as its own process (`edge-agent run`), exactly as systemd would run it,
and the demo watches it through its status socket.

Exit 0 when every parcel got a lane command and, with a broker, every parcel event reached the
subscriber and the agent's outbox is empty (all acknowledged).
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import TextIO

from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import parcel_mix
from edge_agent.sync.topics import Topics

# How long the demo waits for the broker to have every event after the last lane command.
EVENTS_TIMEOUT_S = 20.0
AGENT_STOP_TIMEOUT_S = 15.0
PROGRESS_PERIOD_S = 0.5
# The agent renews its status snapshot every 0.5 s (and its latency figures every 1 s).
STATUS_CATCH_UP_S = 3.0
# Shares of the simulated sorter's confirmations (the rest: sorted), and how long after its ACK
# each comes (the parcel's ride to its bin, shortened).
DEMO_OUTCOMES = {"too_late": 0.02, "bin_full": 0.02, "recirculated": 0.03, "tracking_lost": 0.01}
CONFIRM_DELAY_S = 0.05
# The summary's outcome columns: (outcome, title).
OUTCOME_COLUMNS = (("sorted", "sorted"), ("too_late", "late"), ("bin_full", "full"),
                   ("recirculated", "recirc"), ("tracking_lost", "lost"),
                   ("no_confirmation", "no conf"))


class EventCollector:
    """Central's view: subscribes to the line's parcel events and counts unique parcels."""

    def __init__(self, host: str, port: int, prefix: str, client_id: str = "demo-central"):
        import paho.mqtt.client as mqtt

        self.parcels: dict[str, dict] = {}
        self.outcomes: dict[str, dict] = {}  # parcel_id -> its outcome event
        self.duplicates = 0
        self._lock = threading.Lock()
        # One broker may serve several lines at once (a bench's cells): each collector needs
        # its own client id, or the broker drops the one connected before it.
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                   protocol=mqtt.MQTTv5)
        self._subscribed = threading.Event()
        topics = Topics.for_prefix(prefix)
        wanted = [(topics.parcel_events, 1), (topics.outcome_events, 1)]
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(wanted)
        self._client.on_subscribe = lambda c, u, mid, rcs, p: self._subscribed.set()
        self._client.on_message = self._on_message
        self._client.connect(host, port)
        self._client.loop_start()

    def wait_subscribed(self, timeout_s: float) -> bool:
        return self._subscribed.wait(timeout_s)

    def _on_message(self, client, userdata, message) -> None:
        try:
            event = json.loads(message.payload)
        except ValueError:
            return
        with self._lock:
            if message.topic.endswith("/outcome"):
                self.outcomes[event.get("parcel_id")] = event
                return
            if event.get("parcel_id") in self.parcels:
                self.duplicates += 1
            self.parcels[event.get("parcel_id")] = event

    def count(self) -> int:
        with self._lock:
            return len(self.parcels)

    def outcome_count(self) -> int:
        with self._lock:
            return len(self.outcomes)

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def run_demo(parcels: int, rate: float, out_dir: Path | None, out: TextIO = sys.stdout) -> int:
    from edge_agent.simulation.local_broker import BrokerError, MosquittoBroker, find_mosquitto

    work = out_dir or Path(tempfile.mkdtemp(prefix="edge-agent-demo-"))
    say = lambda text: print(text, file=out, flush=True)  # noqa: E731
    broker = collector = agent = None
    sim: LineSimulation | None = None
    try:
        if find_mosquitto() is not None:
            try:
                broker = MosquittoBroker(work / "broker").start()
                say(f"broker: mosquitto on {broker.host}:{broker.port} (pid {broker.pid})")
            except BrokerError as exc:
                say(f"broker: could not start mosquitto ({exc}); running offline")
        else:
            say("broker: mosquitto is not installed; the agent runs offline "
                "(events wait in its outbox)")
        address = f"{broker.host}:{broker.port}" if broker else None
        sim = LineSimulation(work, parcel_mix(parcels), rate=rate, broker=address)
        config_path = sim.prepare()
        sim.sorter.outcome = "sorted"
        sim.sorter.use_outcome_rates(DEMO_OUTCOMES, seed=1)
        sim.sorter.confirm_delay_s = CONFIRM_DELAY_S
        if broker is not None:
            from edge_agent.config import load_config

            prefix = load_config(config_path).topic_prefix
            collector = EventCollector(broker.host, broker.port, prefix)
            collector.wait_subscribed(5.0)
        say(f"line: {parcels} parcels at {rate:g}/s; files in {work}")
        log_path = work / "agent.log"
        agent = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "run", "--config", str(config_path)],
            stdout=subprocess.DEVNULL, stderr=log_path.open("w"),
        )
        if not sim.wait_for_agent():
            say(f"agent did not become ready; see {log_path}")
            return 1
        say(f"agent: pid {agent.pid}, ready; sending parcels")
        say(PROGRESS_LEGEND)
        driver = threading.Thread(target=sim.drive, name="line-driver", daemon=True)
        driver.start()
        _show_progress(sim, driver, say)
        commanded = sim.wait_for_lane_commands()
        # Once every lane command is in and the agent's status has caught up with them.
        say(_progress_line(sim, _status_counting(sim, commanded)) + "  (done)")
        delivered_ok = True
        if collector is not None:
            delivered_ok = _wait_for_events(sim, collector, commanded)
        status = _status_counting(sim, commanded, outcomes=True)
        _stop_agent(agent)
        _summary(sim, status, collector, say)
        decided_ok = commanded == sim.results.sent
        if not decided_ok:
            say(f"FAILED: {sim.results.sent - commanded} parcels got no lane command")
        if not delivered_ok:
            say("FAILED: not every parcel event reached the broker's subscriber")
        return 0 if decided_ok and delivered_ok else 1
    finally:
        if agent is not None and agent.poll() is None:
            _stop_agent(agent)
        if collector is not None:
            collector.close()
        if sim is not None:
            sim.close()
        if broker is not None:
            broker.stop()
        if out_dir is None:
            shutil.rmtree(work, ignore_errors=True)


PROGRESS_LEGEND = (
    "  sent: parcels the line has sent; decided: parcels the agent had decided at its last\n"
    "  status refresh (every 0.5 s, so it trails 'sent'); agent p99: the agent's own time from\n"
    "  a scan's arrival to its lane command (refreshed every second; '-' before the first);\n"
    "  the summary's latency is measured on the far side of the serial lines, so it is higher")


def _show_progress(sim: LineSimulation, driver: threading.Thread, say) -> None:
    while driver.is_alive():
        driver.join(PROGRESS_PERIOD_S)
        say(_progress_line(sim, _agent_status(sim)))


def _progress_line(sim: LineSimulation, status: dict) -> str:
    lanes = status.get("lanes", {})
    counts = " ".join(f"{name} {lane.get('count', 0)}" for name, lane in lanes.items())
    p99 = status.get("latency", {}).get("p99_us")
    decided = status.get("counters", {}).get("parcels", 0)
    # No figure before the first decision, rather than a p99 of 0 µs.
    latency = "-" if p99 is None else f"{p99 / 1000:.2f} ms"
    return (f"  sent {sim.results.sent:>6}  decided {decided:>6}  | {counts} | "
            f"agent p99 {latency}")


def _status_counting(sim: LineSimulation, decided: int, outcomes: bool = False) -> dict:
    """The agent's status once it counts `decided` parcels (its snapshot is renewed every
    0.5 s) and, with `outcomes`, none waits for its outcome any more; or the last one after
    STATUS_CATCH_UP_S."""
    def caught_up(status: dict) -> bool:
        waiting = status.get("in_flight", {}).get("awaiting_outcome", 0)
        return status.get("counters", {}).get("parcels", 0) >= decided and not (
            outcomes and waiting)

    deadline = time.monotonic() + STATUS_CATCH_UP_S
    status = _agent_status(sim)
    while not caught_up(status) and time.monotonic() < deadline:
        time.sleep(0.05)  # another process: poll its status until the deadline
        status = _agent_status(sim)
    return status


def _wait_for_events(sim: LineSimulation, collector: EventCollector, expected: int) -> bool:
    deadline = time.monotonic() + EVENTS_TIMEOUT_S
    while time.monotonic() < deadline:
        depth = _agent_status(sim).get("outbox", {}).get("depth")
        if collector.count() >= expected and collector.outcome_count() >= expected \
                and depth == 0:
            return True
        time.sleep(0.1)  # another process and a broker: poll their state until the deadline
    return False


def _agent_status(sim: LineSimulation) -> dict:
    from edge_agent.runtime.status_server import StatusError, query_status

    try:
        return query_status(sim.state_dir / "status.sock", timeout_s=1.0)
    except StatusError:
        return {}


def _stop_agent(agent: subprocess.Popen) -> None:
    agent.send_signal(signal.SIGTERM)
    try:
        agent.wait(AGENT_STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        agent.kill()
        agent.wait()


def _latency_sample(results) -> str:
    """Which parcels the latency covers, and why not all: the far side matches a lane command
    to its scan by barcode, and a no-read's lane command carries none."""
    measured = len(results.latencies_us)
    no_reads = sum(command["barcode"] is None for command in results.commands)
    other = len(results.commands) - measured - no_reads
    text = (f"measured on {measured} of {len(results.commands)} lane commands: the {no_reads} "
            f"no-reads carry no barcode to match them with their scan")
    if other:
        text += f"; {other} others could not be matched (the same barcode sent twice)"
    return text


def _summary(sim: LineSimulation, status: dict, collector: EventCollector | None, say) -> None:
    results = sim.results
    by_bin = Counter(command["bin"] for command in results.commands)
    lanes = status.get("lanes", {})
    outcomes = status.get("outcomes", {}).get("by_lane", {})
    say("")
    say("decided                  | what the sorter confirmed (outcomes)")
    say("lane        bin  parcels | " + " ".join(f"{t:>7}" for _, t in OUTCOME_COLUMNS))
    for name, lane in lanes.items():
        counts = outcomes.get(name, {})
        say(f"{name:<11} {lane.get('bin', '?'):>3}  {by_bin.get(lane.get('bin'), 0):>7} | "
            + " ".join(f"{counts.get(o, 0):>7}" for o, _ in OUTCOME_COLUMNS))
    say("  late: the lane command reached the sorter after the parcel passed its bin; full: "
        "its bin was\n  full, it went to the catch-all; recirc: sent round again (rescanned "
        "as a new parcel)")
    exceptions = status.get("exceptions_by_reason", {})
    if exceptions:
        say("exceptions: " + ", ".join(f"{reason} {n}" for reason, n in
                                       sorted(exceptions.items(), key=lambda kv: -kv[1])))
    p50, p99, p999 = (results.percentile_us(q) for q in (0.5, 0.99, 0.999))
    if p50 is not None:
        say(f"scan to lane command over the serial lines: p50 {p50:.0f} µs, p99 {p99:.0f} µs, "
            f"p99.9 {p999:.0f} µs")
        say("  " + _latency_sample(results))
    say(f"parcels sent {results.sent}, lane commands {len(results.commands)}")
    if collector is not None:
        say(f"parcel events received by central: {collector.count()} "
            f"(duplicates {collector.duplicates})")
        with collector._lock:
            ended = set(collector.outcomes) & set(collector.parcels)
        say(f"outcome events received by central: {collector.outcome_count()} "
            f"({len(ended)} of them joined to a parcel event by parcel_id)")
