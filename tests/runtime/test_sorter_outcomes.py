"""Parcel outcomes from the generic-divert sorter's confirmations, in process over ptys.

Each commanded parcel ends with exactly one outcome event: what the sorter confirmed, refused
(NAK), not_commanded (the sorter unplugged) or no_confirmation (nothing within
sorter.confirm_timeout_ms). Whatever the sorter says about a parcel afterwards is counted, never
published again; outcome rates per lane raise and clear alarms.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from test_agent_loop import line_with_agents, outbox_rows, send_and_decide, turn_until

from edge_agent.devices.simulators.sorter import OUTCOME_LINES
from edge_agent.runtime.agent import Agent
from edge_agent.sync.payloads import OutcomeEvent

CONFIRM_TIMEOUT_MS = 400
SORTER_SETTINGS = f"""
[sorter]
confirm_timeout_ms = {CONFIRM_TIMEOUT_MS}
outcome_window_parcels = 10
outcome_min_parcels = 10
max_outcome_rates = {{ too_late = 0.2 }}
"""


@pytest.fixture
def line(tmp_path: Path):
    yield from line_with_agents(tmp_path, parcels=40, settings=SORTER_SETTINGS)


def outcomes(agent: Agent) -> list[dict]:
    return outbox_rows(agent, "outcome")


def wait_outcomes(agent: Agent, count: int) -> list[dict]:
    return turn_until(agent, lambda: (rows := outcomes(agent)) and len(rows) >= count and rows)


def test_each_confirmation_becomes_the_parcels_one_outcome(line):
    agent = line.start_agent()
    kinds = list(OUTCOME_LINES)
    line.sorter.queue_outcomes(*kinds)
    decided = [send_and_decide(line, agent, parcel) for parcel in line.parcels[:len(kinds)]]
    events = wait_outcomes(agent, len(kinds))
    assert [(e["parcel_id"], e["outcome"]) for e in events] == [
        (d["parcel_id"], kind) for d, kind in zip(decided, kinds, strict=True)]
    for event in events:
        OutcomeEvent.model_validate(event)  # what central receives matches the schema
        assert event["source"] == "sorter" and event["lane"] == "ZHUHAI" and event["bin"] == 1
    by_outcome = {e["outcome"]: e for e in events}
    assert by_outcome["sorted"]["actual_bin"] == 1 and by_outcome["sorted"]["sorter_time"]
    assert by_outcome["bin_full"]["actual_bin"] == 99
    assert by_outcome["too_late"]["actual_bin"] == 99
    assert by_outcome["recirculated"]["pass_count"] == 1
    assert by_outcome["tracking_lost"]["actual_bin"] is None
    assert agent.outcomes.view()["by_lane"]["ZHUHAI"] == dict.fromkeys(kinds, 1)
    status = agent.status()
    assert status["in_flight"]["awaiting_outcome"] == 0
    assert status["outcomes"]["by_lane"]["ZHUHAI"]["sorted"] == 1


def test_an_ack_only_sorter_gets_no_confirmation_after_the_timeout(line):
    agent = line.start_agent()  # the simulator's default: ACK only, like an old sorter
    decided = send_and_decide(line, agent, line.parcels[0])
    started = time.monotonic()
    [event] = wait_outcomes(agent, 1)
    assert time.monotonic() - started >= CONFIRM_TIMEOUT_MS / 1000 * 0.5
    assert event["parcel_id"] == decided["parcel_id"]
    assert event["outcome"] == "no_confirmation" and event["source"] == "agent"
    assert event["timeout_ms"] == CONFIRM_TIMEOUT_MS and event["waited_ms"] >= 0


def test_a_confirmation_after_the_timeout_or_twice_is_counted_not_published(line):
    agent = line.start_agent()
    line.sorter.duplicate_confirmations = True
    line.sorter.queue_outcomes("sorted")
    send_and_decide(line, agent, line.parcels[0])
    wait_outcomes(agent, 1)
    turn_until(agent, lambda: agent.outcomes.counts["confirmations_late"] == 1)
    # Late: the sorter confirms after the agent recorded no_confirmation.
    line.sorter.duplicate_confirmations = False
    line.sorter.confirm_delay_s = CONFIRM_TIMEOUT_MS / 1000 * 2
    line.sorter.queue_outcomes("sorted")
    send_and_decide(line, agent, line.parcels[1])
    turn_until(agent, lambda: agent.outcomes.counts["confirmations_late"] == 2)
    assert [e["outcome"] for e in outcomes(agent)] == ["sorted", "no_confirmation"]
    # One about a parcel this agent never commanded.
    line.sorter.send_frame(b"SORTED stranger 1 2026-12-03T01:02:03Z\r\n")
    turn_until(agent, lambda: agent.outcomes.counts["confirmations_unknown"] == 1)
    assert len(outcomes(agent)) == 2


def test_refused_and_not_commanded_parcels_end_with_the_agents_outcome(line):
    agent = line.start_agent()
    line.sorter.nak_reason = "bin jammed"
    refused = send_and_decide(line, agent, line.parcels[0])
    wait_outcomes(agent, 1)
    line.sorter.nak_reason = None
    line.sorter.unplug()
    turn_until(agent, lambda: not agent.hub.ports["sorter"].connected)
    line.send_parcel(line.parcels[1])
    events = wait_outcomes(agent, 2)
    assert [(e["outcome"], e["source"]) for e in events] == [
        ("refused", "agent"), ("not_commanded", "agent")]
    assert events[0]["parcel_id"] == refused["parcel_id"]
    assert events[1]["parcel_id"] == outbox_rows(agent, "parcel")[1]["parcel_id"]


def test_malformed_confirmations_are_decode_errors_and_resolve_nothing(line):
    agent = line.start_agent()
    line.sorter.queue_outcomes(None)  # the parcel's own confirmation never comes
    decided = send_and_decide(line, agent, line.parcels[0])
    pid = decided["parcel_id"].encode()
    for bad in (b"SORTED " + pid + b" 1\r\n", b"REDIRECT " + pid + b" 1 BROKEN 4\r\n",
                b"RECIRC " + pid + b" 1 0\r\n", b"SORTED " + pid + b" 1 2026-02-30T00:00:00Z\r\n"):
        line.sorter.send_frame(bad)
    turn_until(agent, lambda: agent.counters.totals["decode_errors"] == 4)
    assert agent.outcomes.waiting_count() == 1  # still waiting for a real confirmation
    [event] = wait_outcomes(agent, 1)
    assert event["outcome"] == "no_confirmation"


def test_outcome_rate_alarm_raises_and_clears_per_lane(line):
    agent = line.start_agent()
    line.sorter.queue_outcomes(*["too_late"] * 3, *["sorted"] * 7)
    for parcel in line.parcels[:10]:
        send_and_decide(line, agent, parcel)
    wait_outcomes(agent, 10)
    [alarm] = [a for a in outbox_rows(agent, "alarm") if a["alarm"] == "sorter_too_late_rate"]
    assert alarm["details"]["state"] == "raised" and alarm["details"]["lane"] == "ZHUHAI"
    assert alarm["details"]["value"] == 0.3 and alarm["details"]["limit"] == 0.2
    assert agent.outcomes.view()["rates"]["alarms_active"] == ["ZHUHAI:too_late"]
    line.sorter.outcome = "sorted"  # the window fills with sorted parcels: 1 late in 10
    for parcel in line.parcels[10:12]:
        send_and_decide(line, agent, parcel)
    wait_outcomes(agent, 12)
    alarms = [a for a in outbox_rows(agent, "alarm") if a["alarm"] == "sorter_too_late_rate"]
    assert [a["details"]["state"] for a in alarms] == ["raised", "cleared"]


def test_parcels_waiting_at_a_stop_get_their_outcome_after_the_restart(line):
    agent = line.start_agent()
    line.sorter.queue_outcomes(None, None)
    decided = [send_and_decide(line, agent, p)["parcel_id"] for p in line.parcels[:2]]
    assert agent.outcomes.waiting_count() == 2
    agent.close()  # before their confirmation or timeout
    ledger = (line.state_dir / "outcomes.ledger").read_text().splitlines()
    assert [json.loads(row)["d"] for row in ledger] == decided
    again = line.start_agent()
    assert again.outcomes.recovered == 2
    line.sorter.send_frame(f"SORTED {decided[0]} 1 2026-11-20T02:00:01Z\r\n".encode())
    events = wait_outcomes(again, 2)
    assert [(e["parcel_id"], e["outcome"]) for e in events] == [
        (decided[0], "sorted"), (decided[1], "no_confirmation")]
    assert (line.state_dir / "outcomes.ledger").stat().st_size > 0  # d lines, then o lines


def test_an_outcome_already_in_the_outbox_is_not_given_again_after_a_kill(line):
    from edge_agent.sync.outbox import Outbox

    agent = line.start_agent()
    line.sorter.queue_outcomes(None, None)
    decided = [send_and_decide(line, agent, p)["parcel_id"] for p in line.parcels[:2]]
    config = agent.config
    agent.close()
    # As if killed between the first parcel's outcome event and its ledger line.
    with_outcome = decided[0]
    outbox = Outbox.open(config.state_dir, config.outbox)
    outbox.append("outcome", {"parcel_id": with_outcome, "outcome": "sorted"})
    outbox.close()
    again = line.start_agent()
    assert again.outcomes.recovered == 1
    stored, event = wait_outcomes(again, 2)  # the one stored before the kill, then the other
    assert (stored["parcel_id"], event["parcel_id"]) == (with_outcome, decided[1])
    assert event["outcome"] == "no_confirmation"
    assert again.outcomes.waiting_count() == 0  # nothing left that could end a second time
