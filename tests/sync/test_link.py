"""The MQTT link against a real mosquitto: delivery in order, outages, status and last will."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.broker import MosquittoBroker
from sync_helpers import Subscriber, agent_config, wait_for

from edge_agent.sync.link import MqttLink
from edge_agent.sync.outbox import Outbox
from edge_agent.sync.payloads import ParcelEvent, Status

PREFIX = "sortline/v1/HKG1/L1/"


def parcel(i: int) -> dict:
    return {"parcel_id": f"p{i}", "barcode": f"RR{i:09d}HK", "lane": "ZHUHAI", "bin": 1,
            "rule": "gangzhufei", "reasons": [], "rules_version": "default-3",
            "decided_at": "2026-01-01T08:00:00+08:00", "inputs": {"weight_kg": 1.5}}


@pytest.fixture
def parts(tmp_path: Path):
    made: list = []

    def make(port: int, **mqtt):
        config = agent_config(tmp_path / "state", port, **mqtt)
        outbox = Outbox.open(config.state_dir, config.outbox)
        link = MqttLink(config, outbox)
        made.append((link, outbox))
        return link, outbox

    yield make
    for link, outbox in made:
        link.stop(timeout_s=2)
        outbox.close()


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_events_are_published_in_order_and_removed_once_acknowledged(
    mosquitto: MosquittoBroker, parts, protocol: str
):
    central = Subscriber(mosquitto.port, [PREFIX + "events/#"])
    try:
        wait_for(central.connected.is_set, what="subscriber")
        link, outbox = parts(mosquitto.port, protocol=protocol, max_inflight=16)
        for i in range(300):
            outbox.append("parcel", parcel(i))
        link.start()
        wait_for(lambda: len(central.on("events/parcel")) >= 300, what="300 events")
        wait_for(lambda: outbox.stats()["depth"] == 0, what="outbox drained")
        events = central.on("events/parcel")
        assert [e["seq"] for e in events] == list(range(1, 301))
        for event in events[:5]:
            ParcelEvent.model_validate(event)
        assert link.stats()["acked"] == 300 and link.stats()["rejected"] == 0
    finally:
        central.close()


def test_broker_outage_loses_nothing(mosquitto_persistent: MosquittoBroker, parts):
    broker = mosquitto_persistent
    # A persistent session, so the broker keeps central's subscription and queue over restart.
    central = Subscriber(broker.port, [PREFIX + "events/parcel"], client_id="central-1",
                         persistent=True)
    try:
        wait_for(central.connected.is_set, what="subscriber")
        link, outbox = parts(broker.port)
        link.start()
        wait_for(lambda: link.connected, what="link connected")
        for i in range(100):
            outbox.append("parcel", parcel(i))
            link.notify_appended()
        wait_for(lambda: outbox.stats()["depth"] == 0, what="first batch delivered")
        broker.stop()
        wait_for(lambda: not link.connected, what="link notices the outage")
        for i in range(100, 400):  # deciding goes on while the broker is down
            outbox.append("parcel", parcel(i))
            link.notify_appended()
        assert outbox.stats()["depth"] >= 300
        broker.start()
        wait_for(lambda: outbox.stats()["depth"] == 0, what="backlog drained")
        wait_for(lambda: {e["seq"] for e in central.on("events/parcel")} >= set(range(1, 401)),
                 what="every event at central")
        seen = [e["seq"] for e in central.on("events/parcel")]
        first_seen = list(dict.fromkeys(seen))  # duplicates are allowed, by id
        assert first_seen == sorted(first_seen)
        assert link.stats()["reconnects"] >= 1
    finally:
        central.close()


def test_retained_status_online_then_offline_on_clean_stop(mosquitto: MosquittoBroker, parts):
    link, _outbox = parts(mosquitto.port)
    link.start()
    wait_for(lambda: link.connected, what="link connected")
    link.publish_device_state("scale", {"state": "ok", "details": {"port": "/dev/ttyUSB0"}})
    # Once the broker holds both (a first subscriber has them), a subscriber arriving later sees
    # them as retained messages: only a subscription that raced the publishes would see them live.
    first = Subscriber(mosquitto.port, [PREFIX + "status", PREFIX + "devices/+/state"])
    try:
        wait_for(lambda: first.on("status") and first.on("devices/scale/state"),
                 what="the broker holding status and device state")
    finally:
        first.close()
    late = Subscriber(mosquitto.port, [PREFIX + "status", PREFIX + "devices/+/state"])
    try:
        wait_for(lambda: late.on("status"), what="retained status")
        status = Status.model_validate(late.on("status")[-1])
        assert status.state == "online" and status.client_id == "edge-agent-HKG1-L1"
        assert all(m.retain for m in late.raw())
        wait_for(lambda: late.on("devices/scale/state"), what="retained device state")
        assert late.on("devices/scale/state")[-1]["state"] == "ok"
        link.stop(timeout_s=2)
        wait_for(lambda: late.on("status")[-1]["state"] == "offline", what="offline status")
        assert late.on("status")[-1]["reason"] == "stopped"
    finally:
        late.close()


def test_telemetry_goes_through_the_outbox(mosquitto: MosquittoBroker, parts):
    from edge_agent.sync.payloads import Telemetry

    central = Subscriber(mosquitto.port, [PREFIX + "telemetry"])
    try:
        wait_for(central.connected.is_set, what="subscriber")
        link, _outbox = parts(mosquitto.port)
        link.start()
        link.publish_telemetry({"counters": {"parcels": 12}, "devices": {"scale": "ok"}})
        wait_for(lambda: central.on("telemetry"), what="telemetry")
        telemetry = Telemetry.model_validate(central.on("telemetry")[0])
        assert telemetry.counters == {"parcels": 12} and telemetry.outbox.depth >= 0
    finally:
        central.close()


def test_periodic_telemetry_from_the_agents_source(mosquitto: MosquittoBroker, tmp_path: Path):
    central = Subscriber(mosquitto.port, [PREFIX + "telemetry"])
    config = agent_config(tmp_path / "state", mosquitto.port, telemetry_period_s=0.1)
    outbox = Outbox.open(config.state_dir, config.outbox)
    calls: list[int] = []

    def source() -> dict:
        calls.append(1)
        return {"counters": {"parcels": len(calls)}, "lanes": {"ZHUHAI": {"state": "open"}}}

    link = MqttLink(config, outbox, telemetry_source=source)
    try:
        wait_for(central.connected.is_set, what="subscriber")
        link.start()
        wait_for(lambda: len(central.on("telemetry")) >= 2, what="two telemetry periods")
        counts = [t["counters"]["parcels"] for t in central.on("telemetry")]
        assert counts == sorted(counts) and counts[0] >= 1
        assert central.on("telemetry")[0]["lanes"] == {"ZHUHAI": {"state": "open"}}
    finally:
        link.stop(timeout_s=2)
        outbox.close()
        central.close()
