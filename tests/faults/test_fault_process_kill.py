"""Fault 1: SIGKILL of the agent process at random moments, and during a disk stall.

Real agent process, simulated line on ptys, real mosquitto. Kills land at random parcel counts
while the line keeps sending; some land while another connection holds the outbox's write
lock (a stalled SD card): then the agent is stuck inside its append, and a lane command that
went out before its event was stored would show up at the sorter with no event behind it.
"""

from __future__ import annotations

import random
import sqlite3
from pathlib import Path

import pytest
from fault_support import Central, DrivenLine, scaled, unannounced_seq_gaps, wrong_bins
from line_harness import AgentProcess, sorter_records, wait_for
from support.broker import MosquittoBroker

from edge_agent.config import load_config
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import parcel_mix

PARCELS = scaled(700, 6000)
KILLS = scaled(6, 48)
RATE = 120.0
# Parcels the line sends while the outbox is stalled: enough for the first to be decided.
STALL_PARCELS = 4
EVENTS_TIMEOUT_S = 60.0


@pytest.fixture
def line(tmp_path: Path, mosquitto: MosquittoBroker):
    sim = LineSimulation(tmp_path / "line", parcel_mix(PARCELS, seed=23), rate=RATE,
                         broker=f"{mosquitto.host}:{mosquitto.port}")
    sim.prepare()
    central = Central(mosquitto.host, mosquitto.port, load_config(sim.config_path).topic_prefix)
    yield sim, central
    central.close()
    sim.close()


def _stall_outbox(sim: LineSimulation) -> sqlite3.Connection:
    """Take the outbox's write lock from outside, as a disk that stops answering would."""
    db = sqlite3.connect(sim.state_dir / "outbox.sqlite3", isolation_level=None)
    db.execute("BEGIN IMMEDIATE")
    return db


def test_sigkill_at_random_moments_loses_no_event_of_a_lane_command(line):
    sim, central = line
    rng = random.Random(2024)
    kill_points = sorted(rng.sample(range(50, PARCELS - 50), KILLS))
    agent = AgentProcess(sim.config_path, sim.out_dir / "agent.log").start()
    stalled_kills = 0
    try:
        assert sim.wait_for_agent(), agent.log_tail()
        driven = DrivenLine(sim)
        for number, point in enumerate(kill_points):
            if not driven.wait_sent(point):
                break
            if number % 2 == 1:  # every other kill lands in a disk stall
                stall = _stall_outbox(sim)
                sent = sim.results.sent
                driven.wait_sent(sent + STALL_PARCELS)  # the parcels sent during the stall
                agent.kill()
                stall.close()  # ends its transaction: the stall is over
                stalled_kills += 1
            else:
                agent.kill()
            agent.start()
            assert sim.wait_for_agent(), agent.log_tail()
        driven.join()
        commanded = {r["parcel_id"]: r["bin"] for r in sorter_records(sim)}
        wait_for(lambda: set(commanded) <= set(central.parcels()),
                 timeout_s=EVENTS_TIMEOUT_S, what="an event for every lane command")
        assert agent.terminate() == 0, agent.log_tail()
    finally:
        agent.ensure_stopped()

    events = central.parcels()
    # Parcels sent while the agent restarts get no lane command (the belt does not wait).
    assert len(commanded) >= PARCELS // 5, "the line was served between kills"
    assert stalled_kills >= KILLS // 2 - 1
    assert wrong_bins(events, commanded) == []
    assert unannounced_seq_gaps(central.snapshot()) == []
    # One announced restart per kill (an alarm re-sent after a reconnect counts once).
    restarts = {alarm["event_id"] for alarm in central.alarms("unclean_restart")}
    assert len(restarts) == len(kill_points)
