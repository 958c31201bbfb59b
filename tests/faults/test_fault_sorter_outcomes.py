"""Parcel outcomes end to end: the real agent process, the simulated line on ptys, a real
mosquitto, a sorter confirming every kind of outcome at random (and some parcels not at all,
some twice), and SIGKILLs of the agent while parcels wait for their confirmation. The sorter
sits on a pty, or on loopback TCP with the agent as client (a generic-divert controller takes
commands, so it listens, as a serial-to-Ethernet converter or a PLC's socket does), and its
link is lost twice: switched off for a moment, and a connection dropped with parcels on it.

Central must receive exactly one outcome per decided parcel (the same event_id if re-sent, never
two different ones), each the sorter's word for that parcel or, when its confirmation could not
be heard (the agent was dead) or never came, no_confirmation; never another parcel's.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

import pytest
from fault_support import Central, DrivenLine, scaled
from line_harness import AgentProcess, sorter_records, wait_for
from support.broker import MosquittoBroker, mosquitto  # noqa: F401
from support.device_links import Link, device_lines, place

from edge_agent.config import load_config
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import parcel_mix
from edge_agent.sync.payloads import OutcomeEvent

PARCELS = scaled(400, 4000)
KILLS = scaled(3, 20)
RATE = 100.0
CONFIRM_TIMEOUT_MS = 1500
# Shares of each confirmation (the rest: sorted); "none" sends nothing after the ACK.
RATES = {"too_late": 0.08, "bin_full": 0.05, "bin_disabled": 0.03, "bin_jammed": 0.02,
         "recirculated": 0.08, "tracking_lost": 0.04, "none": 0.10}
EVENTS_TIMEOUT_S = 60.0


@pytest.fixture
def line(tmp_path: Path, mosquitto: MosquittoBroker, link: Link):  # noqa: F811
    sim = LineSimulation(tmp_path / "line", parcel_mix(PARCELS, seed=31), rate=RATE,
                         broker=f"{mosquitto.host}:{mosquitto.port}")
    place(sim.sorter, link)
    sim.prepare()
    config = sim.config_path.read_text().replace(f'port = "{sim.sorter.path}"',
                                                 device_lines(sim.sorter, link))
    sim.config_path.write_text(config + f"\n[sorter]\nconfirm_timeout_ms = {CONFIRM_TIMEOUT_MS}\n")
    sim.sorter.outcome = "sorted"
    sim.sorter.use_outcome_rates(RATES, seed=5)
    sim.sorter.confirm_delay_s = 0.2  # the parcel travels to its bin: confirmations overlap kills
    central = Central(mosquitto.host, mosquitto.port, load_config(sim.config_path).topic_prefix)
    yield sim, central
    central.close()
    sim.close()


def outcome_events(central: Central) -> dict[str, set[str]]:
    """parcel_id -> the distinct event_ids of its outcome events."""
    found: dict[str, set[str]] = defaultdict(set)
    for arrival in central.snapshot():
        if arrival.kind == "outcome":
            found[arrival.event["parcel_id"]].add(arrival.event["event_id"])
    return found


@pytest.mark.parametrize("link", ["pty", "tcp-client"])
def test_every_decided_parcel_ends_with_one_outcome_across_sigkills(line, link: Link):
    sim, central = line
    sim.sorter.duplicate_confirmations = True  # a sorter that repeats itself changes nothing
    kill_points = sorted(random.Random(7).sample(range(60, PARCELS - 60), KILLS))

    def relinked(connections: int) -> None:
        """Over TCP: until the sorter took a new connection. The agent is linked once its
        connect completes, which may be before the sorter accepted it (switched off then, it
        never would); and a drop followed at once by a kill is one new link, not two."""
        wait_for(lambda: link == "pty" or sim.sorter.connections > connections,
                 what="the sorter's end of a new link")

    agent = AgentProcess(sim.config_path, sim.out_dir / "agent.log").start()
    try:
        assert sim.wait_for_agent(), agent.log_tail()
        driven = DrivenLine(sim)
        for number, point in enumerate(kill_points):
            driven.wait_sent(point)
            links = sim.sorter.connections
            agent.kill()  # parcels wait for confirmations the sorter is about to send
            agent.start()
            assert sim.wait_for_agent(), agent.log_tail()
            relinked(links)
            if number == 0:  # and once the sorter's link drops for a moment
                sim.sorter.unplug()
                wait_for(lambda: not sim.wait_for_agent(timeout_s=0.1), what="link down")
                sim.sorter.replug()
                assert sim.wait_for_agent(), agent.log_tail()
            if number == 1:  # and a link lost with commands and confirmations on it
                links = sim.sorter.connections
                sim.sorter.drop_link()
                relinked(links)
        driven.join()
        commanded = {r["parcel_id"] for r in sorter_records(sim)}
        wait_for(lambda: set(central.parcels()) <= set(outcome_events(central))
                 and commanded <= set(outcome_events(central)),
                 timeout_s=EVENTS_TIMEOUT_S, what="an outcome for every decided parcel")
        wait_for(lambda: any(a.kind == "telemetry" and a.event.get("outcomes", {}).get("by_lane")
                             for a in central.snapshot()), what="outcomes in telemetry")
        assert agent.terminate() == 0, agent.log_tail()
    finally:
        agent.ensure_stopped()

    decisions = central.parcels()
    commanded = {command.parcel_id for command in sim.sorter.commands}  # all, late ones too
    outcomes = outcome_events(central)
    assert len(commanded) >= PARCELS // 4, "the line was served between kills and the drop"
    if link != "pty":  # each kill, the switch-off and the cut: a new connection each time
        assert sim.sorter.connections >= KILLS + 3, sim.sorter.connections
    # Exactly one outcome per decided parcel: one event, re-sent perhaps, never two.
    assert {pid: ids for pid, ids in outcomes.items() if len(ids) > 1} == {}
    by_parcel = {a.event["parcel_id"]: a.event for a in central.snapshot() if a.kind == "outcome"}
    confirmed = {c.parcel_id: c.outcome for c in sim.sorter.confirmations}
    wrong = []
    for parcel_id in decisions:
        event = OutcomeEvent.model_validate(by_parcel[parcel_id])
        said = confirmed.get(parcel_id)
        allowed = {"no_confirmation"} if said in (None, "none") else {said, "no_confirmation"}
        if parcel_id not in commanded:  # decided as the sorter's link was down: the command
            allowed = {"not_commanded", "no_confirmation"}  # failed, or went into a dying pty
        if event.outcome not in allowed or event.bin != decisions[parcel_id]["bin"]:
            wrong.append((parcel_id, said, event.outcome))
    assert wrong == []
    # An outcome without a decision can only come from a kill between the ledger's line and
    # the decision's event (outcome_ledger): never commanded, so never confirmed.
    orphans = set(outcomes) - set(decisions)
    assert len(orphans) <= KILLS and not orphans & commanded
    # Most confirmations were heard: kills and the drop cost only the parcels around them.
    heard = sum(1 for pid in decisions if by_parcel[pid]["source"] == "sorter")
    sent = sum(1 for pid in decisions if confirmed.get(pid) not in (None, "none"))
    assert heard >= sent * 0.6, (heard, sent)
