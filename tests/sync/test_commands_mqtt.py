"""Commands over a real broker: v5 response topic and correlation data, 3.1.1 reply topics,
and the reply sent from the agent's thread after the inbox is drained."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from support.broker import MosquittoBroker
from sync_helpers import LineTarget, Subscriber, agent_config, command_bytes, wait_for

from edge_agent.sorting.lanes import LaneState
from edge_agent.sync.command_ids import SeenCommands
from edge_agent.sync.commands import CommandInbox, CommandRules
from edge_agent.sync.link import MqttLink
from edge_agent.sync.outbox import Outbox

PREFIX = "sortline/v1/HKG1/L1/"


@pytest.fixture
def agent(tmp_path: Path, mosquitto: MosquittoBroker, request):
    """Outbox + link + an agent thread that owns the target and drains the command inbox."""
    protocol = getattr(request, "param", "5")
    config = agent_config(tmp_path / "state", mosquitto.port, protocol=protocol,
                          max_command_bytes=4096)
    outbox = Outbox.open(config.state_dir, config.outbox)
    target = LineTarget(config.state_dir)
    inbox = CommandInbox(target, SeenCommands.open(config.state_dir),
                         CommandRules(max_bytes=4096))
    inbox.start()
    link = MqttLink(config, outbox, on_command=inbox.submit)
    stop = threading.Event()
    owner: dict[str, str] = {}

    def agent_loop() -> None:
        owner["thread"] = threading.current_thread().name
        while not stop.is_set():
            if inbox.wait(0.05):
                inbox.process(target)

    thread = threading.Thread(target=agent_loop, name="agent")
    thread.start()
    link.start()
    wait_for(lambda: link.commands_subscribed, what="link connected and subscribed")
    yield link, target
    stop.set()
    thread.join()
    link.stop(timeout_s=2)
    outbox.close()
    target.close()
    inbox.close()


def _central_v5(port: int) -> tuple[mqtt.Client, list[mqtt.MQTTMessage]]:
    replies: list[mqtt.MQTTMessage] = []
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.on_message = lambda c, u, m: replies.append(m)
    subscribed = threading.Event()
    client.on_subscribe = lambda *a: subscribed.set()
    client.connect("127.0.0.1", port)
    client.loop_start()
    client.subscribe(PREFIX + "reply/#", qos=1)
    wait_for(subscribed.is_set, what="central subscribed")
    return client, replies


def _request(client: mqtt.Client, name: str, body: bytes, correlation: bytes) -> None:
    props = Properties(PacketTypes.PUBLISH)
    props.ResponseTopic = PREFIX + "reply/central-7"
    props.CorrelationData = correlation
    client.publish(PREFIX + "cmd/" + name, body, qos=1, properties=props).wait_for_publish(5)


def test_v5_command_reply_carries_correlation_data(agent, mosquitto: MosquittoBroker):
    link, target = agent
    central, replies = _central_v5(mosquitto.port)
    try:
        body = command_bytes("c-1", {"lane": "ZHUHAI", "state": "blocked"})
        _request(central, "lanes.set", body, b"corr-1")
        _request(central, "ping", b"{broken", b"corr-2")
        _request(central, "ping", b'{"id": "x"}' + b" " * 5000, b"corr-3")  # over 4096 bytes
        _request(central, "lanes.set", body, b"corr-4")  # replayed id
        wait_for(lambda: len(replies) >= 4, what="four replies")
        by_corr = {m.properties.CorrelationData: m for m in replies}
        assert all(m.topic == PREFIX + "reply/central-7" for m in replies)
        first = json.loads(by_corr[b"corr-1"].payload)
        assert first["ok"] and first["result"] == {"lane": "ZHUHAI", "state": "blocked"}
        assert json.loads(by_corr[b"corr-2"].payload)["error"]["code"] == "bad_json"
        assert json.loads(by_corr[b"corr-3"].payload)["error"]["code"] == "too_large"
        assert json.loads(by_corr[b"corr-4"].payload) == first
        assert target.lanes == {"ZHUHAI": LaneState.BLOCKED}
        assert link.stats()["commands"] == 4 and link.connected  # nothing crashed
    finally:
        central.disconnect()
        central.loop_stop()


@pytest.mark.parametrize("agent", ["3.1.1"], indirect=True)
def test_311_replies_go_to_the_reply_topic(agent, mosquitto: MosquittoBroker):
    central = Subscriber(mosquitto.port, [PREFIX + "reply/#"])
    try:
        wait_for(central.connected.is_set, what="subscriber")
        central.client.publish(PREFIX + "cmd/status.get", command_bytes("s-1"), qos=1)
        wait_for(lambda: central.on("reply/status.get"), what="reply")
        reply = central.on("reply/status.get")[0]
        assert reply["id"] == "s-1" and reply["result"]["rules_version"] == "default-3"
    finally:
        central.close()


def test_a_raising_command_handler_does_not_kill_the_network_thread(
    tmp_path: Path, mosquitto: MosquittoBroker
):
    config = agent_config(tmp_path / "state", mosquitto.port)
    outbox = Outbox.open(config.state_dir, config.outbox)
    calls: list[str] = []

    def on_command(command):
        calls.append(command.name)
        if len(calls) == 1:
            raise RuntimeError("a bug in the agent's handler")
        return {"command": command.name, "ok": True}

    link = MqttLink(config, outbox, on_command=on_command)
    central = Subscriber(mosquitto.port, [PREFIX + "reply/#"])
    try:
        link.start()
        wait_for(lambda: link.commands_subscribed and central.connected.is_set(),
                 what="connected, the agent subscribed to its commands")
        central.client.publish(PREFIX + "cmd/ping", b'{"id": "1"}', qos=1)
        wait_for(lambda: len(calls) == 1, what="first command")
        central.client.publish(PREFIX + "cmd/ping", b'{"id": "2"}', qos=1)
        wait_for(lambda: central.on("reply/ping"), what="the second command's reply")
        assert link.connected
        assert "RuntimeError" in link.stats()["last_error"]
        outbox.append("parcel", {"parcel_id": "after"})  # publishing still works too
        link.notify_appended()
        wait_for(lambda: outbox.stats()["depth"] == 0, what="publish after the failure")
    finally:
        central.close()
        link.stop(timeout_s=2)
        outbox.close()
