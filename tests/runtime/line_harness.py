"""Running the real agent process against a simulated line and a real mosquitto.

The agent runs as `python -m edge_agent run --config DIR/agent.toml`, the way systemd runs it;
the line (scanner, checkweigher, sorter on ptys) and central's subscriber run in the test.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

from support.waiting import WAIT_S, wait_for  # noqa: F401  (re-exported)

from edge_agent.runtime.status_server import StatusError, query_status
from edge_agent.simulation.demo import EventCollector
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import SimParcel
from edge_agent.sorting.decision import Decision, Parcel, decide
from edge_agent.sorting.manifest import ManifestEntry
from edge_agent.sorting.rules import default_rules

STOP_TIMEOUT_S = 15.0


class AgentProcess:
    def __init__(self, config_path: Path, log_path: Path):
        self.config_path = config_path
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self) -> AgentProcess:
        log = self.log_path.open("a")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "run", "--config", str(self.config_path)],
            stdout=subprocess.DEVNULL, stderr=log,
        )
        log.close()
        return self

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT_S)

    def terminate(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(STOP_TIMEOUT_S)

    def ensure_stopped(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(STOP_TIMEOUT_S)

    def log_tail(self, lines: int = 30) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])


def status_of(state_dir: Path) -> dict:
    """The running agent's status, or {} while its status socket does not answer."""
    try:
        return query_status(state_dir / "status.sock", timeout_s=1.0)
    except StatusError:
        return {}


def yrd_parcel(index: int, weight: float = 4.2) -> SimParcel:
    """A labelled parcel for Shanghai with its manifest row: ZHUHAI before the cutoff."""
    barcode = f"LP{index:014d}"
    return SimParcel(index, "yrd", barcode, "]C0", weight, {
        "barcode": barcode, "country": "CN", "postal_code": "200120",
        "declared_weight_kg": weight, "service": "standard"})


def sorter_records(sim: LineSimulation) -> list[dict]:
    path = sim.out_dir / "sorter.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def expected_decision(parcel: SimParcel, event: dict) -> Decision:
    """What the default rules give for what the line really sent, at the event's time.

    The weight is the parcel's own, unless pairing could not be sure of it (the event then
    carries none, and says why): the check is on the decision, pairing has tests of its own."""
    entry = ManifestEntry.from_dict(parcel.manifest) if parcel.manifest else None
    weight = parcel.weight_kg if event["inputs"]["weight_kg"] is not None else None
    facts = Parcel(
        parcel_id=event["parcel_id"], barcode=parcel.barcode, symbology=parcel.symbology,
        no_read=parcel.barcode is None, weight_kg=weight, weight_stable=weight is not None,
        weight_status="ok" if weight is not None else event["inputs"]["weight_status"],
        scanned_at=datetime.fromisoformat(event["decided_at"]), scanned_ns=0,
        weight_pairing=event["inputs"].get("weight_pairing"),
    )
    return decide(facts, default_rules(), entry, {}, datetime.fromisoformat(event["decided_at"]))


__all__ = [
    "AgentProcess", "CentralClient", "EventCollector", "expected_decision", "sorter_records",
    "wait_for", "yrd_parcel",
]


class CentralClient:
    """Central's side of the command contract: MQTT v5 requests with a response topic and
    correlation data, and a record of every reply and retained status seen."""

    def __init__(self, host: str, port: int, prefix: str):
        import paho.mqtt.client as mqtt

        self.prefix = prefix
        self.replies: dict[bytes, dict] = {}
        self.statuses: list[dict] = []
        self._mqtt = mqtt
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="test-central",
                                   protocol=mqtt.MQTTv5)
        self._subscribed = 0
        self._client.on_connect = self._on_connect
        self._client.on_subscribe = self._on_subscribe
        self._client.on_message = self._on_message
        self._client.connect(host, port)
        self._client.loop_start()
        wait_for(lambda: self._subscribed == 2, what="central subscribed")

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        client.subscribe(self.prefix + "reply/#", qos=1)
        client.subscribe(self.prefix + "status", qos=1)

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties):
        self._subscribed += 1

    def _on_message(self, client, userdata, message):
        body = json.loads(message.payload)
        if message.topic.endswith("/status"):
            self.statuses.append(body)
            return
        correlation = getattr(message.properties, "CorrelationData", None)
        if correlation is not None:
            self.replies[bytes(correlation)] = body

    def request(self, name: str, command_id: str, args: dict | None = None) -> dict:
        from paho.mqtt.packettypes import PacketTypes
        from paho.mqtt.properties import Properties

        properties = Properties(PacketTypes.PUBLISH)
        properties.ResponseTopic = f"{self.prefix}reply/{name}"
        properties.CorrelationData = command_id.encode()
        body = json.dumps({"id": command_id, "args": args or {},
                           "issued_at": datetime.now(UTC).isoformat()})
        self._client.publish(f"{self.prefix}cmd/{name}", body, qos=1, properties=properties)
        return wait_for(lambda: self.replies.get(command_id.encode()), what=f"reply to {name}")

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()
