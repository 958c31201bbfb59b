"""Sorter-driven mode in process: a sorter-host sorter on a pty asks, the agent answers.

The agent's loop is turned by the test (as in test_agent_loop); the sorter is the protocol-true
simulator, which re-sends, recirculates, reports chutes full and drops the link on demand.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from line_harness import yrd_parcel
from support.device_links import Link, device_lines, place
from test_agent_loop import MORNING, outbox_rows, turn_until

from edge_agent.config import load_config
from edge_agent.devices.simulators.host_sorter import HostSorterSimulator
from edge_agent.devices.sorter_host import RESULT, encode_message
from edge_agent.runtime import destinations
from edge_agent.runtime.agent import Agent
from edge_agent.simulation.line_sim import sorter_driven_config_text, write_manifest
from edge_agent.sync.payloads import OutcomeEvent, ParcelEvent

ZHUHAI_BIN, EXCEPTION_BIN = 1, 4


class Line:
    def __init__(self, root: Path, link: Link = "pty", device_extra: str = ""):
        self.root = root
        self.state_dir = root / "state"
        self.state_dir.mkdir(parents=True)
        self.parcels = [yrd_parcel(i) for i in range(10)]
        write_manifest(root, self.state_dir, self.parcels)
        self.sorter = place(HostSorterSimulator(root / "sorter"), link).start()
        self.config_path = root / "agent.toml"
        self.config_path.write_text(sorter_driven_config_text(
            device_lines(self.sorter, link) + device_extra,
            settings="\n[sorter]\nconfirm_timeout_ms = 3000\nmax_passes = 2\n"))
        self.agents: list[Agent] = []

    def start_agent(self) -> Agent:
        agent = Agent.from_config(load_config(self.config_path), wall_clock=lambda: MORNING)
        self.agents.append(agent)
        turn_until(agent, lambda: all(p.connected for p in agent.hub.ports.values()))
        return agent

    def close(self) -> None:
        for agent in self.agents:
            agent.close()
        self.sorter.stop()


@pytest.fixture
def line(tmp_path: Path):
    sim = Line(tmp_path)
    yield sim
    sim.close()


def replies(line: Line, tracking: str) -> list[dict]:
    return line.sorter.parcels[tracking].replies


def test_a_request_is_decided_once_answered_and_its_result_is_the_outcome(line):
    agent = line.start_agent()
    parcel = line.parcels[0]
    line.sorter.induct("T1", [parcel.barcode], weight_kg=parcel.weight_kg, dims=(300, 200, 100))
    turn_until(agent, lambda: replies(line, "T1"))
    [reply] = replies(line, "T1")
    assert (reply["chutes"], reply["fallback"], reply["barcode"], reply["late"]) == (
        [ZHUHAI_BIN], EXCEPTION_BIN, parcel.barcode, False)
    [event] = outbox_rows(agent, "parcel")
    ParcelEvent.model_validate(event)
    assert event["sorter_tracking"] == "T1" and event["lane"] == "ZHUHAI"
    assert event["inputs"]["length_mm"] == 300
    outcome = turn_until(agent, lambda: next(iter(outbox_rows(agent, "outcome")), None))
    OutcomeEvent.model_validate(outcome)
    assert (outcome["parcel_id"], outcome["outcome"], outcome["actual_bin"]) == (
        event["parcel_id"], "sorted", ZHUHAI_BIN)
    turn_until(agent, lambda: line.sorter.finished() == ["T1"])  # the result was acknowledged


def test_a_resent_request_gets_the_same_answer_never_a_second_decision(line):
    agent = line.start_agent()
    line.sorter.resend_requests = True
    line.sorter.induct("T1", [line.parcels[0].barcode], weight_kg=4.2)
    turn_until(agent, lambda: len(replies(line, "T1")) == 2)
    first, second = replies(line, "T1")
    assert first["seq"] == second["seq"] and first["chutes"] == second["chutes"]
    assert len(outbox_rows(agent, "parcel")) == 1
    assert agent.counters.totals["requests_resent"] == 1
    turn_until(agent, lambda: len(outbox_rows(agent, "outcome")) == 1)


def test_a_recirculated_parcel_keeps_its_chute_until_the_pass_limit(line):
    agent = line.start_agent()
    line.sorter.queue_outcomes("recirculated", "recirculated")
    line.sorter.induct("T1", [line.parcels[0].barcode], weight_kg=4.2)
    turn_until(agent, lambda: len(replies(line, "T1")) == 3)
    assert [r["chutes"] for r in replies(line, "T1")] == [
        [ZHUHAI_BIN], [ZHUHAI_BIN], [EXCEPTION_BIN]]  # pass 3 > max_passes = 2
    totals = agent.counters.totals
    assert (totals["requests_recirculated"], totals["recirculation_limit"]) == (1, 1)
    assert totals["results_intermediate"] == 2
    [outcome] = turn_until(agent, lambda: outbox_rows(agent, "outcome"))
    assert (outcome["outcome"], outcome["actual_bin"], outcome["pass_count"]) == (
        "sorted", EXCEPTION_BIN, 3)
    assert len(outbox_rows(agent, "parcel")) == 1  # one decision for all its passes


def test_a_later_pass_under_a_new_tracking_number_is_known_by_its_barcode(line):
    agent = line.start_agent()
    line.sorter.queue_outcomes("tracking_lost")
    barcode = line.parcels[0].barcode
    line.sorter.induct("T1", [barcode], weight_kg=4.2)
    turn_until(agent, lambda: len(outbox_rows(agent, "outcome")) == 1)
    line.sorter.induct("T2", [barcode], weight_kg=4.2, passes=2)  # found again, next round
    turn_until(agent, lambda: replies(line, "T2"))
    assert replies(line, "T2")[0]["chutes"] == [ZHUHAI_BIN]
    assert len(outbox_rows(agent, "parcel")) == 1
    # The same label on a first pass is another parcel (a reused label): decided on its own.
    line.sorter.induct("T3", [barcode], weight_kg=4.2)
    turn_until(agent, lambda: len(outbox_rows(agent, "parcel")) == 2)
    assert outbox_rows(agent, "parcel")[1]["sorter_tracking"] == "T3"


def test_an_answer_after_the_deadline_is_the_exception_chute_and_counted(line, monkeypatch):
    agent = line.start_agent()
    real = time.monotonic_ns

    class Slow:  # the loop took a second between reading the request and answering it
        @staticmethod
        def monotonic_ns() -> int:
            return real() + 1_000_000_000

    monkeypatch.setattr(destinations, "time", Slow)
    line.sorter.induct("T1", [line.parcels[0].barcode], weight_kg=4.2)
    turn_until(agent, lambda: replies(line, "T1"))
    [reply] = replies(line, "T1")
    assert (reply["chutes"], reply["late"]) == ([EXCEPTION_BIN], True)
    [event] = outbox_rows(agent, "parcel")
    assert event["lane"] == "EXCEPTION" and "reply_deadline_missed" in event["reasons"]
    assert agent.counters.totals["requests_late"] == 1


def test_a_later_pass_answered_after_its_deadline_is_the_exception_chute(line, monkeypatch):
    agent = line.start_agent()
    line.sorter.queue_outcomes("recirculated")
    line.sorter.result_delay_s = 0.2
    line.sorter.induct("T1", [line.parcels[0].barcode], weight_kg=4.2)
    turn_until(agent, lambda: replies(line, "T1"))
    real = time.monotonic_ns

    class Slow:  # from here the loop takes a second to answer
        @staticmethod
        def monotonic_ns() -> int:
            return real() + 1_000_000_000

    monkeypatch.setattr(destinations, "time", Slow)
    turn_until(agent, lambda: len(replies(line, "T1")) == 2)  # its second pass
    first, second = replies(line, "T1")
    assert (first["chutes"], first["late"]) == ([ZHUHAI_BIN], False)
    assert (second["chutes"], second["late"]) == ([EXCEPTION_BIN], True)
    totals = agent.counters.totals
    assert (totals["requests_late"], totals["requests_recirculated"]) == (1, 1)
    assert len(outbox_rows(agent, "parcel")) == 1  # still no second decision


def test_chute_full_and_a_result_resent_after_a_lost_ack(line):
    agent = line.start_agent()
    line.sorter.queue_outcomes("chute_full")
    line.sorter.induct("T1", [line.parcels[0].barcode], weight_kg=4.2)
    [outcome] = turn_until(agent, lambda: outbox_rows(agent, "outcome"))
    assert (outcome["outcome"], outcome["actual_bin"]) == ("bin_full", EXCEPTION_BIN)
    # The sorter did not hear our ACK and sends its result again, unchanged.
    again = encode_message(b"\xa5\x5a", 1, RESULT, line.sorter.parcels["T1"].results[0]["seq"],
                           {"tracking": "T1", "status": "chute_full", "chute": EXCEPTION_BIN})
    acks = len(line.sorter.acks_received)
    line.sorter.send_frame(again)
    turn_until(agent, lambda: agent.counters.totals["results_resent"] == 1)
    turn_until(agent, lambda: len(line.sorter.acks_received) > acks)  # acknowledged again
    assert len(outbox_rows(agent, "outcome")) == 1


def test_heartbeats_are_acknowledged_and_bad_requests_named(line):
    agent = line.start_agent()
    line.sorter.heartbeat_period_s = 0.05
    turn_until(agent, lambda: agent.counters.totals["heartbeats"] >= 3)
    turn_until(agent, lambda: line.sorter.heartbeats_unanswered() <= 1)
    line.sorter.heartbeat_period_s = None
    bad = encode_message(b"\xa5\x5a", 1, 0x10, 99, {"tracking": "T9", "weight_kg": "heavy"})
    line.sorter.send_frame(bad)
    turn_until(agent, lambda: agent.counters.totals["decode_errors"] == 1)
    assert outbox_rows(agent, "parcel") == []


def test_after_a_restart_a_resent_request_is_answered_the_same(line):
    agent = line.start_agent()
    line.sorter.outcome = "tracking_lost"
    line.sorter.result_delay_s = 60.0  # its result will not come while the test runs
    line.sorter.induct("T1", [line.parcels[0].barcode], weight_kg=4.2)
    turn_until(agent, lambda: replies(line, "T1"))
    agent.close()
    ledger = (line.state_dir / "outcomes.ledger").read_text().splitlines()
    assert json.loads(ledger[0])["k"] == "T1"
    again = line.start_agent()
    line.sorter.induct("T1", [line.parcels[0].barcode], weight_kg=4.2)  # asked again
    [reply] = turn_until(again, lambda: replies(line, "T1"))
    assert reply["chutes"] == [ZHUHAI_BIN]
    assert again.counters.totals["requests_recirculated"] == 1
    assert len(outbox_rows(again, "parcel")) == 1  # still the first agent's one decision


def test_the_link_drops_and_comes_back(line):
    agent = line.start_agent()
    line.sorter.unplug()
    turn_until(agent, lambda: not agent.hub.ports["sorter"].connected)
    line.sorter.replug()
    turn_until(agent, lambda: agent.hub.ports["sorter"].connected)
    line.sorter.induct("T1", [line.parcels[0].barcode], weight_kg=4.2)
    turn_until(agent, lambda: replies(line, "T1"))
