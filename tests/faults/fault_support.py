"""Helpers of the fault suite: the scale knob, central's view of every event, the line driven
in the background, seq-gap checks."""

from __future__ import annotations

import itertools
import json
import os
import threading
from dataclasses import dataclass, field

import paho.mqtt.client as mqtt
from support.waiting import wait_for

from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.sorting.replay import redecide
from edge_agent.sorting.rules import default_rules

# "ci" (default): short versions for every CI run; "long": the figures in docs/RELIABILITY.md.
SCALE = os.environ.get("EDGE_AGENT_FAULTS_SCALE", "ci")
if SCALE not in ("ci", "long"):
    raise ValueError(f"EDGE_AGENT_FAULTS_SCALE must be 'ci' or 'long', not {SCALE!r}")
LONG = SCALE == "long"
SUBSCRIBE_TIMEOUT_S = 10.0
RECONNECT_MIN_S, RECONNECT_MAX_S = 0.1, 0.5
TIMEZONE = "Asia/Hong_Kong"  # the config default the simulated line uses
# mosquitto drops QoS 1 messages for a subscriber more than 1,000 behind (its default
# max_queued_messages). Central here is one Python thread: a backlog drained after an outage or
# a flood outruns it, and the events it lost at the broker would look like the agent's loss.
# Unlimited for the brokers central uses, so every event the agent delivers reaches central.
CENTRAL_BROKER_CONFIG = "max_queued_messages 0"


def scaled(ci: int | float, long: int | float):
    return long if LONG else ci


class DrivenLine:
    """The simulated line sending its parcels from a thread while the test does harm meanwhile."""

    def __init__(self, sim: LineSimulation):
        self.sim = sim
        self._driver = threading.Thread(target=sim.drive, daemon=True)
        self._driver.start()

    @property
    def sending(self) -> bool:
        return self._driver.is_alive()

    def wait_sent(self, count: int) -> bool:
        """Until the line has sent `count` parcels or sent them all; whether it still sends."""
        wait_for(lambda: self.sim.results.sent >= count or not self.sending,
                 what=f"parcel {count} sent")
        return self.sending

    def join(self) -> None:
        self._driver.join()


@dataclass
class Arrival:
    kind: str  # parcel, alarm, telemetry
    event: dict


@dataclass
class Central:
    """Subscribes to every event topic (parcels, alarms, telemetry) and keeps arrival order."""

    host: str
    port: int
    prefix: str
    arrivals: list[Arrival] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribed = threading.Event()
        self._client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="faults-central",
                                   protocol=mqtt.MQTTv5)
        topics = [(self.prefix + "events/#", 1), (self.prefix + "telemetry", 1)]
        self._client.on_connect = lambda c, u, f, rc, p: c.subscribe(topics)
        self._client.on_subscribe = self._on_subscribe
        self._client.on_disconnect = lambda c, u, f, rc, p: self._subscribed.clear()
        # Back within a moment of a broker restart, so no event is published before it is.
        self._client.reconnect_delay_set(RECONNECT_MIN_S, RECONNECT_MAX_S)
        self._client.on_message = self._on_message
        self._client.connect(self.host, self.port)
        self._client.loop_start()
        if not self._subscribed.wait(SUBSCRIBE_TIMEOUT_S):
            raise AssertionError("central could not subscribe")

    def _on_subscribe(self, client, userdata, mid, reason_codes, properties) -> None:
        self._subscribed.set()

    def resubscribed_since_restart(self) -> bool:
        return self._subscribed.is_set()

    def _on_message(self, client, userdata, message) -> None:
        kind = message.topic.removeprefix(self.prefix).split("/")[-1]
        with self._lock:
            self.arrivals.append(Arrival(kind, json.loads(message.payload)))

    def snapshot(self) -> list[Arrival]:
        with self._lock:
            return list(self.arrivals)

    def parcels(self) -> dict[str, dict]:
        return {a.event["parcel_id"]: a.event for a in self.snapshot() if a.kind == "parcel"}

    def alarms(self, name: str | None = None) -> list[dict]:
        return [a.event for a in self.snapshot()
                if a.kind == "alarm" and (name is None or a.event["alarm"] == name)]

    def close(self) -> None:
        self._client.loop_stop()
        self._client.disconnect()


def unannounced_seq_gaps(arrivals: list[Arrival]) -> list[tuple[int, int]]:
    """Holes in the seqs central saw that no alarm announced (unclean_restart, outbox_evicted).

    Also fails if one seq was given to two different events."""
    by_seq: dict[int, str] = {}
    announced: list[tuple[int, int]] = []
    for arrival in arrivals:
        event = arrival.event
        owner = by_seq.setdefault(event["seq"], event["event_id"])
        assert owner == event["event_id"], f"seq {event['seq']} given to two events"
        details = event.get("details") or {}
        if arrival.kind == "alarm" and event["alarm"] == "unclean_restart":
            announced.append((details["skipped_first_seq"], details["skipped_last_seq"]))
        elif arrival.kind == "alarm" and event["alarm"] == "outbox_evicted":
            announced.append((details["first_seq"], details["last_seq"]))
    seqs = sorted(by_seq)
    gaps = []
    for low, high in itertools.pairwise(seqs):
        missing = set(range(low + 1, high))
        for first, last in announced:
            missing -= set(range(first, last + 1))
        if missing:
            gaps.append((min(missing), max(missing)))
    return gaps


def wrong_bins(events: dict[str, dict], sorter_bins: dict[str, int]) -> list[str]:
    """Parcel ids whose event disagrees with the sorter's bin or with the rules' own answer
    for the inputs the event records."""
    rules = default_rules()
    wrong = []
    for parcel_id, event in events.items():
        commanded = sorter_bins.get(parcel_id, event["bin"])
        if commanded != event["bin"] or redecide(event, rules, TIMEZONE, "CN").bin != commanded:
            wrong.append(parcel_id)
    return wrong
