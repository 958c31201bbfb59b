"""Test peers for the sync tests: a subscriber that records what it sees, a real command target
built from the sorting objects, the agent config for a given broker, and an outbox whose link
is connected to it."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
from support.waiting import WAIT_S, wait_for  # noqa: F401  (re-exported)

from edge_agent.config import AgentConfig, parse_config
from edge_agent.sorting.lanes import LaneState
from edge_agent.sorting.manifest import Manifest, ManifestEntry
from edge_agent.sorting.rules import RuleSet, default_rules, parse_rules
from edge_agent.sync.link import MqttLink
from edge_agent.sync.outbox import Outbox


def agent_config(state_dir: Path, port: int, **mqtt: Any) -> AgentConfig:
    return parse_config({
        "site": "HKG1", "line": "L1", "state_dir": str(state_dir),
        "outbox": {"group_commit_ms": 5},
        "mqtt": {"host": "127.0.0.1", "port": port, "reconnect_min_s": 0.1,
                 "reconnect_max_s": 0.5, "keepalive_s": 5, **mqtt},
    })


class Subscriber:
    """A paho client that records every message on `topics` (a central system's view)."""

    def __init__(self, port: int, topics: list[str], *, client_id: str = "",
                 persistent: bool = False, protocol: int = mqtt.MQTTv311,
                 tls: dict | None = None):
        self.messages: list[mqtt.MQTTMessage] = []
        self._lock = threading.Lock()
        self.topics = topics
        self.connected = threading.Event()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                                  protocol=protocol,
                                  clean_session=(not persistent) if protocol != mqtt.MQTTv5
                                  else None)
        if tls:
            self.client.tls_set(**tls)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.on_disconnect = lambda *a: self.connected.clear()
        self.client.reconnect_delay_set(0.1, 0.5)  # type: ignore[arg-type]
        self.client.connect_async("127.0.0.1", port, keepalive=5)
        self.client.loop_start()

    def _on_connect(self, client, userdata, flags, reason_code, properties):
        if reason_code.is_failure:
            return
        for topic in self.topics:
            client.subscribe(topic, qos=1)
        # Subscribed once the SUBACK is back; a ping round-trip is not needed for tests
        # that wait on messages anyway.
        self.connected.set()

    def _on_message(self, client, userdata, message):
        with self._lock:
            self.messages.append(message)

    def on(self, topic_suffix: str) -> list[dict]:
        with self._lock:
            return [json.loads(m.payload) for m in self.messages if m.topic.endswith(topic_suffix)]

    def raw(self) -> list[mqtt.MQTTMessage]:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextlib.contextmanager
def linked_outbox(config: AgentConfig, topics: list[str]
                  ) -> Iterator[tuple[Subscriber, Outbox, MqttLink]]:
    """Central subscribed to `topics`, and the agent's outbox with its link started and
    connected (both to config's broker); all of it stopped afterwards."""
    central = Subscriber(config.mqtt.port, topics)
    outbox = Outbox.open(config.state_dir, config.outbox)
    link = MqttLink(config, outbox)
    try:
        wait_for(central.connected.is_set, what="subscriber")
        link.start()
        wait_for(lambda: link.connected, what="link connected")
        yield central, outbox, link
    finally:
        link.stop(timeout_s=2)
        outbox.close()
        central.close()


def dated(body: dict, *, issued_at: datetime | None = None,
          lifetime_s: float | None = None) -> dict:
    """A command envelope with an issue time (now by default), as central sends it."""
    issued = issued_at or datetime.now(UTC)
    envelope = {**body, "issued_at": issued.isoformat()}
    if lifetime_s is not None:
        envelope["expires_at"] = (issued + timedelta(seconds=lifetime_s)).isoformat()
    return envelope


def command_bytes(command_id: str, args: dict | None = None, **when: Any) -> bytes:
    return json.dumps(dated({"id": command_id, "args": args or {}}, **when)).encode()


class LineTarget:
    """The agent's state as commands see it, built from the real sorting objects: both the
    worker's side (CommandPrep) and the loop's (CommandTarget)."""

    def __init__(self, state_dir: Path):
        self.rules: RuleSet = default_rules()
        self.manifest = Manifest.open(state_dir)
        self.lanes: dict[str, LaneState] = {}
        self.rules_file = state_dir / "rules.last-good.toml"
        self.applied = 0

    def prepare_rules(self, text: str) -> RuleSet:
        rules = parse_rules(text, "rules.apply")  # raises RulesError: nothing swapped
        self.rules_file.write_text(text)
        return rules

    def swap_rules(self, rules: RuleSet) -> str:
        self.rules = rules
        self.applied += 1
        return rules.version

    def upsert_manifest(self, entries: list[ManifestEntry]) -> int:
        return self.manifest.upsert(entries)

    def remove_manifest(self, barcodes: list[str]) -> int:
        return self.manifest.remove(barcodes)

    def set_lane(self, lane: str, state: LaneState) -> None:
        if lane not in self.rules.lanes:
            raise ValueError(f"unknown lane {lane!r}; known: {', '.join(self.rules.lanes)}")
        self.lanes[lane] = state

    def status(self) -> dict:
        return {"rules_version": self.rules.version,
                "lanes": {name: str(state) for name, state in self.lanes.items()}}

    def close(self) -> None:
        self.manifest.close()
