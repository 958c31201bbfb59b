"""The decision loop in process, turned by the test, against the simulated line's ptys.

The agent's `step()` is what `run()` repeats; here the test turns it until a condition holds,
so lane states, sorter faults, rule reloads and commands are checked without a second process.
The wall clock is fixed before the Zhuhai cutoff so the routes do not depend on when CI runs.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from line_harness import yrd_parcel

from edge_agent.config import load_config
from edge_agent.runtime import parcel_alarms
from edge_agent.runtime.agent import Agent
from edge_agent.runtime.command_prep import AgentCommandPrep
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import SimParcel
from edge_agent.sorting.lanes import LaneState
from edge_agent.sorting.manifest import ManifestEntry
from edge_agent.sorting.rules import RulesError

# 10:00 in Hong Kong: before the Zhuhai route's 20:00 cutoff.
MORNING = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
WAIT_S = 20.0




@pytest.fixture
def line(tmp_path: Path):
    yield from line_with_agents(tmp_path, parcels=20)


def line_with_agents(tmp_path: Path, parcels: int, settings: str = ""):
    """A prepared simulated line of `parcels` parcels whose `start_agent()` gives an in-process
    agent linked to every port (the config with `settings` appended), all closed after."""
    sim = LineSimulation(tmp_path / "line", [yrd_parcel(i) for i in range(parcels)], rate=100)
    sim.prepare()
    with sim.config_path.open("a") as config:
        config.write(settings)
    agents: list[Agent] = []

    def start_agent() -> Agent:
        agent = Agent.from_config(load_config(sim.config_path), wall_clock=lambda: MORNING)
        agents.append(agent)
        turn_until(agent, lambda: all(p.connected for p in agent.hub.ports.values()))
        return agent

    sim.start_agent = start_agent
    yield sim
    for agent in agents:
        agent.close()
    sim.close()


def turn_until(agent: Agent, condition, timeout_s: float = WAIT_S):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        agent.step(max_wait_s=0.02)
        value = condition()
        if value:
            return value
    raise AssertionError(f"condition not met: {condition}")


def send_and_decide(sim: LineSimulation, agent: Agent, parcel: SimParcel) -> dict:
    """Send one parcel and return its lane command as the sorter received it."""
    before = len(sim.sorter.commands)
    sim.send_parcel(parcel)
    turn_until(agent, lambda: len(sim.sorter.commands) > before)
    command = sim.sorter.commands[before]
    assert command.barcode == parcel.barcode
    return {"bin": int(command.bin), "parcel_id": command.parcel_id}


def outbox_rows(agent: Agent, kind: str) -> list[dict]:
    return [json.loads(r.body) for r in agent.parts.outbox.pending(10_000) if r.kind == kind]


def test_lane_full_from_the_sorter_overflows_then_clears(line):
    agent = line.start_agent()
    assert send_and_decide(line, agent, line.parcels[0])["bin"] == 1  # ZHUHAI
    line.sorter.send_full(1)
    turn_until(agent, lambda: agent.lanes.snapshot["ZHUHAI"] == LaneState.FULL)
    assert send_and_decide(line, agent, line.parcels[1])["bin"] == 2  # SHANGHAI, its overflow
    event = outbox_rows(agent, "parcel")[-1]
    assert event["lane"] == "SHANGHAI" and "lane_full_overflow" in event["reasons"]
    line.sorter.send_clear(1)
    turn_until(agent, lambda: agent.lanes.snapshot["ZHUHAI"] == LaneState.OPEN)
    assert send_and_decide(line, agent, line.parcels[2])["bin"] == 1


def test_missing_and_refused_acknowledgements_raise_alarms(line):
    agent = line.start_agent()
    line.sorter.drop_acks = True
    decided = send_and_decide(line, agent, line.parcels[0])
    alarm = turn_until(agent, lambda: next(iter(outbox_rows(agent, "alarm")), None))
    assert alarm["alarm"] == "sorter_ack_missing"
    assert alarm["details"]["count"] == 1
    assert alarm["details"]["parcels"] == [{"parcel_id": decided["parcel_id"], "bin": 1}]
    line.sorter.drop_acks = False
    line.sorter.nak_reason = "bin jammed"
    send_and_decide(line, agent, line.parcels[1])
    turn_until(agent, lambda: len(outbox_rows(agent, "alarm")) == 2)
    assert outbox_rows(agent, "alarm")[1]["alarm"] == "sorter_refused"
    assert agent.counters.totals["naks"] == 1 and agent.counters.totals["acks_missing"] == 1


def test_a_sorter_that_stops_acknowledging_raises_one_alarm_per_period_not_per_parcel(
    line, monkeypatch
):
    # A period longer than the six parcels take, however slow the machine.
    monkeypatch.setattr(parcel_alarms, "REPEAT_PERIOD_S", 4.0)
    agent = line.start_agent()
    line.sorter.drop_acks = True
    decided = [send_and_decide(line, agent, parcel)["parcel_id"] for parcel in line.parcels[:6]]
    # The first missing ack is raised at once; the other five wait for the period to end and
    # come as one alarm, whose parcels are the five, in order.
    turn_until(agent, lambda: agent.counters.totals["acks_missing"] == 6)
    alarms = turn_until(agent, lambda: (rows := outbox_rows(agent, "alarm")) and len(rows) == 2
                        and rows)
    assert [a["details"]["count"] for a in alarms] == [1, 5]
    listed = [p["parcel_id"] for a in alarms for p in a["details"]["parcels"]]
    assert listed == decided
    assert alarms[1]["details"]["omitted"] == 0 and alarms[1]["details"]["timeout_ms"] > 0


def test_sorter_unplugged_the_decision_is_still_recorded_with_an_alarm(line):
    agent = line.start_agent()
    line.sorter.unplug()
    turn_until(agent, lambda: not agent.hub.ports["sorter"].connected)
    line.send_parcel(line.parcels[0])
    turn_until(agent, lambda: agent.counters.totals["parcels"] == 1)
    assert outbox_rows(agent, "parcel")[0]["barcode"] == line.parcels[0].barcode
    assert [a["alarm"] for a in outbox_rows(agent, "alarm")] == ["sorter_unreachable"]
    line.sorter.replug()
    turn_until(agent, lambda: agent.hub.ports["sorter"].connected, timeout_s=WAIT_S)
    assert send_and_decide(line, agent, line.parcels[1])["bin"] == 1


def test_reload_keeps_the_old_rules_when_the_file_is_bad(line, tmp_path):
    rules_file = tmp_path / "rules.toml"
    config_text = line.config_path.read_text()
    line.config_path.write_text(config_text.replace(
        "[pairing]", f'[rules]\nfile = "{rules_file}"\n\n[pairing]'))
    from importlib import resources

    good = resources.files("edge_agent.defaults").joinpath("rules.toml").read_text()
    rules_file.write_text(good)
    agent = line.start_agent()
    assert agent.rules.version == "default-3"

    rules_file.write_text(good.replace('version = "default-3"', 'version = "line3-2"')
                          .replace("bin = 1\n", "bin = 0\n", 1))
    agent.request_reload()
    turn_until(agent, lambda: outbox_rows(agent, "alarm"))
    assert agent.rules.version == "default-3"
    assert outbox_rows(agent, "alarm")[0]["alarm"] == "rules_reload_refused"

    rules_file.write_text(good.replace('version = "default-3"', 'version = "line3-2"'))
    agent.request_reload()
    turn_until(agent, lambda: agent.rules.version == "line3-2")
    assert send_and_decide(line, agent, line.parcels[0])["bin"] == 1


def test_commands_from_central_act_on_the_loops_state_and_persist(line):
    agent = line.start_agent()
    agent.set_lane("ZHUHAI", LaneState.BLOCKED)
    assert send_and_decide(line, agent, line.parcels[0])["bin"] == 2
    with pytest.raises(ValueError, match="unknown lane 'NOWHERE'"):
        agent.set_lane("NOWHERE", LaneState.OPEN)

    from importlib import resources

    good = resources.files("edge_agent.defaults").joinpath("rules.toml").read_text()
    prep = AgentCommandPrep(agent.config, agent.parts.manifest, agent._raise_alarm)
    with pytest.raises(RulesError):
        prep.prepare_rules(good.replace("[lanes.EXPORT]", "[lanes.EXPORT]\nbin = 'three'"))
    with pytest.raises(RulesError, match="generic-divert"):  # the sorter's bins are 1-99
        prep.prepare_rules(good.replace("bin = 3\n", "bin = 120\n", 1))
    assert agent.rules.version == "default-3"
    rules = prep.prepare_rules(good.replace('"default-3"', '"central-7"'))
    assert agent.rules.version == "default-3"  # prepared (off the loop), not yet in force
    assert agent.swap_rules(rules) == "central-7"

    count = prep.upsert_manifest([ManifestEntry.from_dict({
        "barcode": "LP99999999999999", "country": "US", "postal_code": "94105",
        "declared_weight_kg": 1.0, "service": "standard"})])
    assert count == 1
    agent.close()

    # A restart keeps what central set: the applied rules and the blocked lane.
    again = line.start_agent()
    assert again.rules.version == "central-7"
    assert again.lanes.snapshot["ZHUHAI"] == LaneState.BLOCKED
    assert send_and_decide(line, again, line.parcels[1])["bin"] == 2
    export = SimParcel(99, "export", "LP99999999999999", "]C0", 1.0, None)
    assert send_and_decide(line, again, export)["bin"] == 3


def test_a_bin_the_sorter_cannot_carry_sends_the_parcel_to_exception_not_the_loop_down(line):
    """The last guard: rules are checked against the sorter before use, but should a rule set
    with a bin out of the protocol's range reach the loop, the parcel goes to the exception
    lane with an alarm, and the next parcels are decided as usual."""
    from importlib import resources

    from edge_agent.sorting.rules import parse_rules

    agent = line.start_agent()
    good = resources.files("edge_agent.defaults").joinpath("rules.toml").read_text()
    unreachable = parse_rules(good.replace("bin = 1\n", "bin = 120\n", 1))  # ZHUHAI's bin
    assert unreachable.lanes["ZHUHAI"].bin == 120
    agent.swap_rules(unreachable)
    commanded = send_and_decide(line, agent, line.parcels[0])
    event = outbox_rows(agent, "parcel")[-1]
    assert event["lane"] == "EXCEPTION" and "bin_not_addressable" in event["reasons"]
    assert event["bin"] == commanded["bin"] == unreachable.lanes["EXCEPTION"].bin
    assert [a["alarm"] for a in outbox_rows(agent, "alarm")] == ["lane_command_failed"]
    agent.swap_rules(parse_rules(good))
    assert send_and_decide(line, agent, line.parcels[1])["bin"] == 1


def test_the_event_is_stored_before_the_lane_command_leaves(line):
    """A kill inside append (here: append raising) must leave no lane command on the wire: the
    sorter may only divert a parcel whose event is already in the OS's hands."""
    agent = line.start_agent()

    def killed_inside_append(kind: str, payload: dict) -> None:
        raise SystemExit("the process died inside append")

    agent.parts.outbox.append = killed_inside_append  # type: ignore[method-assign]
    line.send_parcel(line.parcels[0])
    with pytest.raises(SystemExit):
        turn_until(agent, lambda: False)
    assert agent.hub.ports["sorter"].counters["bytes_out"] == 0


def test_a_hold_applies_until_its_expiry_and_telemetry_counts_it(tmp_path: Path):
    """In process, with the agent's clock moved by the test: a stored hold sends its parcel to
    EXCEPTION (reason held) and shows in the telemetry; past its expiry the next parcel sorts,
    with nobody lifting it."""
    from datetime import timedelta

    from edge_agent.sorting.holds import Hold

    sim = LineSimulation(tmp_path / "line", [yrd_parcel(i) for i in range(2)], rate=100)
    sim.prepare()
    now = [MORNING]
    agent = Agent.from_config(load_config(sim.config_path), wall_clock=lambda: now[0])
    try:
        turn_until(agent, lambda: all(p.connected for p in agent.hub.ports.values()))
        at = MORNING.timestamp()
        stored = agent.parts.holds.put(
            [Hold(f"H{i}", p.barcode, None, "customs inspection", at + 60, at)
             for i, p in enumerate(sim.parcels)], at)
        assert agent.apply_holds(stored, []) == 2  # what the command's step does on the loop
        assert send_and_decide(sim, agent, sim.parcels[0])["bin"] == 4  # EXCEPTION
        event = outbox_rows(agent, "parcel")[-1]
        assert (event["rule"], event["reasons"], event["inputs"]["hold_id"]) == (
            "held", ["held"], "H0")
        telemetry = agent._telemetry()
        assert telemetry["holds"]["active"] == 2 and telemetry["counters"]["parcels_held"] == 1
        now[0] = MORNING + timedelta(seconds=60)  # both holds expire now
        assert send_and_decide(sim, agent, sim.parcels[1])["bin"] == 1  # ZHUHAI
        assert "hold_id" not in outbox_rows(agent, "parcel")[-1]["inputs"]
        assert agent._telemetry()["holds"] == {"active": 0, "newest": None}
    finally:
        agent.close()
        sim.close()


def test_with_the_clock_unsynchronised_no_hold_expires(tmp_path: Path):
    """A Pi that boots with its clock an hour ahead would see a hold as expired: while the
    clock is known to be unsynchronised the hold still applies (and was loaded at start), and
    once it is synchronised the expiry counts again."""
    from datetime import timedelta

    from edge_agent.sorting.hold_store import HoldStore
    from edge_agent.sorting.holds import Hold

    sim = LineSimulation(tmp_path / "line", [yrd_parcel(i) for i in range(2)], rate=100)
    sim.prepare()
    at = MORNING.timestamp()
    store = HoldStore.open(sim.state_dir)
    store.put([Hold(f"H{i}", p.barcode, None, "inspection", at + 60, at)
               for i, p in enumerate(sim.parcels)], at)
    store.close()
    synchronised = [False]
    agent = Agent.from_config(load_config(sim.config_path),
                              wall_clock=lambda: MORNING + timedelta(hours=1))
    agent._clock_check = lambda: synchronised[0]  # what the kernel would say
    agent._clock_synchronised = False
    try:
        turn_until(agent, lambda: all(p.connected for p in agent.hub.ports.values()))
        assert send_and_decide(sim, agent, sim.parcels[0])["bin"] == 4  # held all the same
        assert outbox_rows(agent, "parcel")[-1]["inputs"]["hold_id"] == "H0"
        assert agent._telemetry()["holds"]["active"] == 2
        synchronised[0] = True
        turn_until(agent, lambda: agent._clock_synchronised is True)
        assert send_and_decide(sim, agent, sim.parcels[1])["bin"] == 1  # expired: sorts
        assert agent._telemetry()["holds"]["active"] == 0
    finally:
        agent.close()
        sim.close()
