"""TLS with client certificates and the shipped ACL (deploy/mosquitto/edge-agent.acl):
only central can send commands this agent acts on."""

from __future__ import annotations

import ssl
import threading
import time
from pathlib import Path

import paho.mqtt.client as mqtt
import pytest
from certs import CertPair, ThrowawayCa
from support.broker import BrokerTls, MosquittoBroker
from sync_helpers import LineTarget, Subscriber, agent_config, command_bytes, wait_for

from edge_agent.sorting.lanes import LaneState
from edge_agent.sync.command_ids import SeenCommands
from edge_agent.sync.commands import CommandInbox
from edge_agent.sync.link import REJECT_RETRY_MIN_S, MqttLink
from edge_agent.sync.outbox import Outbox

ACL = Path(__file__).parents[2] / "deploy" / "mosquitto" / "edge-agent.acl"
PREFIX = "sortline/v1/HKG1/L1/"


@pytest.fixture(scope="module")
def pki(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("pki")
    ca = ThrowawayCa(base / "ca")
    rogue = ThrowawayCa(base / "rogue", "rogue-ca")  # a CA the broker does not trust
    return {"ca": ca, "server": ca.issue("localhost", server=True), "L1": ca.issue("HKG1/L1"),
            "L2": ca.issue("HKG1/L2"), "central": ca.issue("central-wms"),
            "dashboard": ca.issue("dashboard"), "rules": ca.issue("central-rules"),
            "rogue": rogue.issue("central-wms")}


@pytest.fixture
def secure_agent(tmp_path: Path, pki: dict):
    broker = MosquittoBroker(tmp_path / "broker", acl_file=ACL, allow_anonymous=False,
                             tls=BrokerTls(pki["ca"].cert, pki["server"].cert, pki["server"].key))
    broker.start()
    config = agent_config(tmp_path / "state", broker.port, tls={
        "ca_file": str(pki["ca"].cert), "cert_file": str(pki["L1"].cert),
        "key_file": str(pki["L1"].key)})
    outbox = Outbox.open(config.state_dir, config.outbox)
    target = LineTarget(config.state_dir)
    inbox = CommandInbox(target, SeenCommands.open(config.state_dir))
    inbox.start()
    link = MqttLink(config, outbox, on_command=inbox.submit)
    link.start()
    wait_for(lambda: link.commands_subscribed, what="agent connected over TLS, subscribed")
    yield broker, link, outbox, target, inbox
    link.stop(timeout_s=2)
    outbox.close()
    target.close()
    inbox.close()
    broker.close()


def _client(
    broker: MosquittoBroker, ca: ThrowawayCa, pair: CertPair | None
) -> tuple[mqtt.Client, dict]:
    seen: dict = {"connect": threading.Event(), "refused": threading.Event(), "pubacks": {}}
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    client.tls_set(ca_certs=str(ca.cert), certfile=str(pair.cert) if pair else None,
                   keyfile=str(pair.key) if pair else None, tls_version=ssl.PROTOCOL_TLS_CLIENT)

    def on_connect(c, u, flags, reason_code, props):
        (seen["refused"] if reason_code.is_failure else seen["connect"]).set()

    client.on_connect = on_connect
    client.on_publish = lambda c, u, mid, rc, p: seen["pubacks"].__setitem__(mid, rc.value)
    return client, seen


def _connects(broker: MosquittoBroker, ca: ThrowawayCa, pair: CertPair | None) -> bool:
    """True if the broker accepts this client: a CONNACK with success, not a dropped socket."""
    client, seen = _client(broker, ca, pair)
    client.on_disconnect = lambda *args: seen["refused"].set()
    try:
        client.connect("127.0.0.1", broker.port)
    except (ssl.SSLError, OSError):
        return False
    client.loop_start()
    try:
        wait_for(lambda: seen["connect"].is_set() or seen["refused"].is_set(), timeout_s=5,
                 what="handshake outcome")
        return seen["connect"].is_set()
    finally:
        client.disconnect()
        client.loop_stop()


def _lanes_set(lane_state: str, command_id: str) -> bytes:
    return command_bytes(command_id, {"lane": "ZHUHAI", "state": lane_state})


def test_only_central_can_command_this_agent(secure_agent, pki: dict):
    broker, link, _outbox, target, inbox = secure_agent
    ca = pki["ca"]
    # Another line's agent: connects (valid certificate) but its command is refused (0x87).
    other, seen = _client(broker, ca, pki["L2"])
    other.connect("127.0.0.1", broker.port)
    other.loop_start()
    try:
        mid = other.publish(PREFIX + "cmd/lanes.set", _lanes_set("blocked", "evil-1"), qos=1).mid
        wait_for(lambda: mid in seen["pubacks"], what="PUBACK for the other line")
        assert seen["pubacks"][mid] == 0x87  # not authorized
    finally:
        other.disconnect()
        other.loop_stop()
    # A dashboard: reads the line, but may not command it; nor may the rules service set lanes.
    for reader in ("dashboard", "rules"):
        client, seen = _client(broker, ca, pki[reader])
        client.connect("127.0.0.1", broker.port)
        client.loop_start()
        try:
            mid = client.publish(PREFIX + "cmd/lanes.set", _lanes_set("blocked", reader),
                                 qos=1).mid
            wait_for(lambda s=seen, m=mid: m in s["pubacks"], what=f"PUBACK for {reader}")
            assert seen["pubacks"][mid] == 0x87, reader
        finally:
            client.disconnect()
            client.loop_stop()
    dashboard = Subscriber(broker.port, [PREFIX + "status"], protocol=mqtt.MQTTv5, tls={
        "ca_certs": str(ca.cert), "certfile": str(pki["dashboard"].cert),
        "keyfile": str(pki["dashboard"].key), "tls_version": ssl.PROTOCOL_TLS_CLIENT})
    try:  # ... and it does read the line (the retained status)
        wait_for(lambda: dashboard.on("/status"), what="the dashboard reads the status")
    finally:
        dashboard.close()
    # Central's warehouse system: the same command is delivered and acted on (the control).
    central, seen = _client(broker, ca, pki["central"])
    central.connect("127.0.0.1", broker.port)
    central.loop_start()
    try:
        mid = central.publish(PREFIX + "cmd/lanes.set", _lanes_set("full", "ok-1"), qos=1).mid
        wait_for(lambda: mid in seen["pubacks"], what="PUBACK for central")
        wait_for(lambda: inbox.wait(0.05) and inbox.process(target), what="command arrives")
    finally:
        central.disconnect()
        central.loop_stop()
    assert target.lanes == {"ZHUHAI": LaneState.FULL}  # only central's command acted
    assert link.stats()["commands"] == 1


def test_clients_without_a_trusted_certificate_cannot_connect(secure_agent, pki: dict):
    broker = secure_agent[0]
    assert _connects(broker, pki["ca"], pki["central"])  # control: a good certificate works
    assert not _connects(broker, pki["ca"], None)  # no client certificate
    assert not _connects(broker, pki["ca"], pki["rogue"])  # signed by an untrusted CA


def test_agent_may_not_publish_outside_its_line_and_refused_rows_are_kept(tmp_path, pki):
    # The agent's prefix points at another line: every PUBACK is 0x87 and nothing is deleted.
    broker = MosquittoBroker(tmp_path / "broker", acl_file=ACL, allow_anonymous=False,
                             tls=BrokerTls(pki["ca"].cert, pki["server"].cert, pki["server"].key))
    broker.start()
    config = agent_config(tmp_path / "state", broker.port, topic_prefix="sortline/v1/HKG1/L2/",
                          tls={"ca_file": str(pki["ca"].cert), "cert_file": str(pki["L1"].cert),
                               "key_file": str(pki["L1"].key)})
    outbox = Outbox.open(config.state_dir, config.outbox)
    link = MqttLink(config, outbox)
    try:
        for i in range(3):
            outbox.append("parcel", {"parcel_id": f"p{i}"})
        link.start()
        wait_for(lambda: link.stats()["rejected"] >= 3, what="refusals")
        refused_at = time.monotonic()
        assert outbox.stats()["depth"] == 3 and link.stats()["acked"] == 0
        # Kept, and retried from the oldest refused row only after the backoff.
        wait_for(lambda: link.stats()["rejected"] >= 6, what="a retry")
        assert time.monotonic() - refused_at >= REJECT_RETRY_MIN_S * 0.8
        assert outbox.stats()["depth"] == 3 and link.stats()["published"] >= 6
        assert "Not authorized" in (link.stats()["last_error"] or "")
    finally:
        link.stop(timeout_s=2)
        outbox.close()
        broker.close()
