"""When the publisher works: at once for an event, not for every acknowledgement.

An event must reach central without waiting for any timer of the publisher's; a PUBACK only
needs a pass when it refuses a row or when the in-flight window needs the room."""

from __future__ import annotations

from pathlib import Path

from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.reasoncodes import ReasonCode
from support.broker import MosquittoBroker
from sync_helpers import agent_config, linked_outbox, wait_for
from test_link import PREFIX, parcel

from edge_agent.sync import link as link_module
from edge_agent.sync.link import MqttLink
from edge_agent.sync.outbox import Outbox


def test_an_event_is_published_when_appended_not_when_a_timer_fires(
        mosquitto: MosquittoBroker, tmp_path: Path, monkeypatch):
    monkeypatch.setattr(link_module, "PUBLISHER_IDLE_S", 60.0)  # only a wake-up can publish
    config = agent_config(tmp_path / "state", mosquitto.port)
    with linked_outbox(config, [PREFIX + "events/#"]) as (central, outbox, link):
        for number in range(3):  # one at a time, each waking an idle publisher
            outbox.append("parcel", parcel(number))
            link.notify_appended()
            wait_for(lambda n=number: len(central.on("events/parcel")) > n, timeout_s=10.0,
                     what=f"event {number} at central")


def _puback(code: int) -> ReasonCode:
    return ReasonCode(PacketTypes.PUBACK, identifier=code)


def test_acknowledgements_wake_the_publisher_only_when_they_must(tmp_path: Path):
    config = agent_config(tmp_path / "state", 1, max_inflight=8)
    outbox = Outbox.open(config.state_dir, config.outbox)
    link = MqttLink(config, outbox)  # never started: its wake-up flag is only observed here
    try:
        link._handle_publish(None, None, 1, _puback(0x00), None)
        assert not link._wake.is_set()  # one success: settled on the next pass, no wake-up
        link._handle_publish(None, None, 2, _puback(0x87), None)
        assert link._wake.is_set()  # a refusal: the publisher must pause and retry
        link._wake.clear()
        for mid in range(3, 5):  # four queued successes: half of an 8-message window
            link._handle_publish(None, None, mid, _puback(0x00), None)
        assert link._wake.is_set()
    finally:
        outbox.close()
