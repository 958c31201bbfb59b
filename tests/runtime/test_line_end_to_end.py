"""The whole product: simulated line + `edge-agent run` + a real mosquitto + central's view."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from line_harness import (
    AgentProcess,
    CentralClient,
    EventCollector,
    expected_decision,
    sorter_records,
    wait_for,
)
from support.broker import MosquittoBroker
from support.weights import assert_mostly_own, own_or_none

from edge_agent.config import load_config
from edge_agent.runtime.status_server import query_status
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import parcel_mix
from edge_agent.sync.payloads import ParcelEvent


@pytest.fixture
def line(tmp_path: Path, mosquitto: MosquittoBroker):
    def make(parcels: int, rate: float, seed: int = 11) -> LineSimulation:
        sim = LineSimulation(tmp_path / "line", parcel_mix(parcels, seed=seed), rate=rate,
                             broker=f"{mosquitto.host}:{mosquitto.port}")
        sim.prepare()
        made.append(sim)
        return sim

    made: list[LineSimulation] = []
    yield make
    for sim in made:
        sim.close()


@pytest.fixture
def central(mosquitto: MosquittoBroker):
    collectors: list[EventCollector] = []

    def connect(sim: LineSimulation) -> EventCollector:
        prefix = load_config(sim.config_path).topic_prefix
        collector = EventCollector(mosquitto.host, mosquitto.port, prefix)
        assert collector.wait_subscribed(10)
        collectors.append(collector)
        return collector

    yield connect
    for collector in collectors:
        collector.close()


def test_every_parcel_gets_the_bin_the_rules_give_and_an_event(line, central):
    sim = line(parcels=300, rate=150)
    collector = central(sim)
    agent = AgentProcess(sim.config_path, sim.out_dir / "agent.log").start()
    try:
        assert sim.wait_for_agent(), agent.log_tail()
        sim.drive()
        assert sim.wait_for_lane_commands() == 300, agent.log_tail()
        wait_for(lambda: collector.count() == 300, what="an event for every parcel")

        # The snapshot is refreshed a few times a second: wait for the one after the last parcel.
        status = wait_for(lambda: _status_if(sim, lambda s: s["counters"]["parcels"] == 300),
                          what="status counting every parcel")
        assert {d["state"] for d in status["devices"].values()} == {"connected"}
        assert sum(lane["count"] for lane in status["lanes"].values()) == 300

        assert agent.terminate() == 0, agent.log_tail()
    finally:
        agent.ensure_stopped()

    sent = {p.barcode: p for p in sim.parcels if p.barcode is not None}
    records = sorter_records(sim)
    assert len(records) == 300
    lanes_seen, own = set(), []
    for record in records:
        event = collector.parcels[record["parcel_id"]]
        ParcelEvent.model_validate(event)  # the published contract holds for real events
        assert event["bin"] == record["bin"]
        lanes_seen.add(event["lane"])
        if event["barcode"] is None:
            assert event["lane"] == "EXCEPTION" and "no_read" in event["reasons"]
            continue
        parcel = sent[event["barcode"]]
        # Paired with its own weight or none, never a neighbour's.
        if parcel.weight_kg is not None:
            own.append(own_or_none(event, parcel.weight_kg))
        assert record["bin"] == expected_decision(parcel, event).bin, event
    assert {"SHANGHAI", "EXPORT", "EXCEPTION"} <= lanes_seen
    assert_mostly_own(own)


def test_sigkill_three_times_loses_no_event_for_a_lane_command(line, central):
    sim = line(parcels=600, rate=150, seed=5)
    collector = central(sim)
    agent = AgentProcess(sim.config_path, sim.out_dir / "agent.log").start()
    chunks = [sim.parcels[start:start + 150] for start in range(0, 600, 150)]
    try:
        assert sim.wait_for_agent(), agent.log_tail()
        # Three chunks, each with the agent killed in the middle of its traffic.
        for chunk in chunks[:3]:
            sent_before = sim.results.sent
            driver = threading.Thread(target=sim.drive, kwargs={"parcels": chunk})
            driver.start()
            wait_for(lambda b=sent_before: sim.results.sent >= b + 75, what="parcels sent")
            agent.kill()
            agent.start()
            driver.join()
            assert sim.wait_for_agent(), agent.log_tail()
        sim.drive(parcels=chunks[3])
        # One scanner port, read in order: once the last labelled parcel's command is at the
        # sorter, every parcel the agent read before it has been decided and commanded.
        last = next(p.barcode for p in reversed(chunks[3]) if p.barcode is not None)
        last_id = wait_for(lambda: _parcel_id_of(collector, last), what="the last parcel")
        wait_for(lambda: last_id in {r["parcel_id"] for r in sorter_records(sim)},
                 what="the last parcel's lane command")
        commanded = {record["parcel_id"] for record in sorter_records(sim)}
        wait_for(lambda: commanded <= set(collector.parcels), what="events for every command")
        assert agent.terminate() == 0, agent.log_tail()
    finally:
        agent.ensure_stopped()

    assert len(commanded) >= 150 + 3 * 60  # served before each kill and after the last
    # Every event carries its sequence number once; none is shared by two parcels.
    seqs = [event["seq"] for event in collector.parcels.values()]
    assert len(set(seqs)) == len(seqs)


def _parcel_id_of(collector: EventCollector, barcode: str) -> str | None:
    for parcel_id, event in list(collector.parcels.items()):
        if event.get("barcode") == barcode:
            return parcel_id
    return None


def _status_if(sim: LineSimulation, condition) -> dict | None:
    status = query_status(sim.state_dir / "status.sock")
    return status if condition(status) else None


def test_central_commands_reach_the_running_agent_and_a_clean_stop_says_offline(
    line, central, mosquitto
):
    sim = line(parcels=60, rate=100, seed=3)
    collector = central(sim)
    agent = AgentProcess(sim.config_path, sim.out_dir / "agent.log").start()
    commands = None
    try:
        assert sim.wait_for_agent(), agent.log_tail()
        commands = CentralClient(mosquitto.host, mosquitto.port, collector_prefix(sim))
        wait_for(lambda: commands.statuses and commands.statuses[-1]["state"] == "online",
                 what="retained online status")
        assert commands.statuses[-1]["rules_version"] == "default-3"

        reply = commands.request("lanes.set", "c-1", {"lane": "EXPORT", "state": "blocked"})
        assert reply["ok"] is True, reply
        refused = commands.request("lanes.set", "c-2", {"lane": "MOON", "state": "open"})
        assert refused["ok"] is False and refused["error"]["code"] == "rejected"
        assert commands.request("ping", "c-3")["result"] == {"pong": True}

        sim.drive()
        assert sim.wait_for_lane_commands() == 60
        wait_for(lambda: collector.count() == 60, what="every event")
        status = commands.request("status.get", "c-4")["result"]
        assert status["lanes"]["EXPORT"]["state"] == "blocked"

        assert agent.terminate() == 0, agent.log_tail()
        wait_for(lambda: commands.statuses[-1]["state"] == "offline", what="offline status")
    finally:
        agent.ensure_stopped()
        if commands is not None:
            commands.close()

    exports = [e for e in collector.parcels.values()
               if e["inputs"]["country"] not in (None, "CN", "HK") and e["barcode"]]
    assert exports, "the mix has export parcels"
    for event in exports:
        # EXPORT blocked and without an overflow lane: the exception lane, saying why.
        assert event["lane"] == "EXCEPTION", event
    assert any("lane_unavailable" in e["reasons"] for e in exports)


def collector_prefix(sim: LineSimulation) -> str:
    return load_config(sim.config_path).topic_prefix
