"""Retained device states are honest for a consumer that reads them alone: after a kill -9 of
the agent they expire (MQTT v5 message expiry), while the agent runs they are renewed, and
each carries the `expires_at` a 3.1.1 consumer can check."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime

import paho.mqtt.client as mqtt
import pytest
from line_harness import AgentProcess, wait_for
from support.broker import MosquittoBroker

from edge_agent.config import load_config
from edge_agent.simulation.line_sim import LineSimulation

TTL_S = 3
# Long enough for a TTL to run out after the kill, with room for a slow machine.
EXPIRY_WAIT_S = 6 * TTL_S


def retained_device_states(broker: MosquittoBroker, prefix: str) -> dict[str, dict]:
    """What a consumer connecting now receives as retained device states: everything the
    broker sends before a marker published after the subscription (same connection: in order)."""
    states: dict[str, dict] = {}
    marker = f"{prefix}diag/marker"
    done = threading.Event()
    subscribed = threading.Event()

    def on_message(client, userdata, message):
        if message.topic == marker:
            done.set()
        elif message.retain:
            states[message.topic.split("/")[-2]] = json.loads(message.payload)

    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = on_message
    client.on_subscribe = lambda *args: subscribed.set()
    client.connect(broker.host, broker.port)
    client.loop_start()
    try:
        client.subscribe([(f"{prefix}devices/+/state", 1), (marker, 1)])
        assert subscribed.wait(10)
        client.publish(marker, b"1", qos=1)
        assert done.wait(10), "the marker never came back"
    finally:
        client.disconnect()
        client.loop_stop()
    return states


@pytest.fixture
def line(tmp_path, mosquitto: MosquittoBroker):
    sim = LineSimulation(tmp_path / "line", [], rate=10,
                         broker=f"{mosquitto.host}:{mosquitto.port}")
    sim.prepare()
    sim.config_path.write_text(sim.config_path.read_text() + f"device_state_ttl_s = {TTL_S}\n")
    yield sim
    sim.close()


def test_device_states_are_renewed_while_the_agent_runs_and_expire_after_a_kill(
        line, mosquitto: MosquittoBroker):
    prefix = load_config(line.config_path).topic_prefix
    agent = AgentProcess(line.config_path, line.out_dir / "agent.log").start()
    try:
        assert line.wait_for_agent(), agent.log_tail()
        first = wait_for(lambda: (lambda s: s if len(s) == 3 else None)(
            retained_device_states(mosquitto, prefix)), what="three retained device states")
        for state in first.values():
            assert state["state"] == "connected"
            assert datetime.fromisoformat(state["expires_at"]) > datetime.now(UTC)
        # Renewed before they run out: a later reader sees newer copies, still connected.
        renewed = wait_for(lambda: (lambda s: s if len(s) == 3 and all(
            s[d]["at"] > first[d]["at"] for d in s) else None)(
            retained_device_states(mosquitto, prefix)), timeout_s=EXPIRY_WAIT_S,
            what="renewed device states")
        assert {s["state"] for s in renewed.values()} == {"connected"}
        agent.kill()
        wait_for(lambda: retained_device_states(mosquitto, prefix) == {},
                 timeout_s=EXPIRY_WAIT_S, what="the killed agent's device states expiring")
    finally:
        agent.ensure_stopped()
