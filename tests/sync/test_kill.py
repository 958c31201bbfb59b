"""kill -9 of the agent with events in flight: after a restart every event is delivered
(duplicates allowed, identified by event_id), and the broker's last will says offline."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from support.broker import MosquittoBroker
from sync_helpers import Subscriber, wait_for

PREFIX = "sortline/v1/HKG1/L1/"
SCRIPT = Path(__file__).with_name("agent_process.py")
EVENTS = 2000


def _start(state_dir: Path, port: int, count: int) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.Popen([sys.executable, str(SCRIPT), str(state_dir), str(port), str(count)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env)


def test_kill_9_with_events_in_flight_loses_nothing(tmp_path: Path, mosquitto: MosquittoBroker):
    central = Subscriber(mosquitto.port, [PREFIX + "events/parcel", PREFIX + "status"])
    try:
        wait_for(central.connected.is_set, what="subscriber")
        agent = _start(tmp_path, mosquitto.port, EVENTS)
        # Kill it once it has appended everything but central has seen only part of it.
        assert agent.stdout is not None
        for line in agent.stdout:
            if line.startswith(f"appended {EVENTS}"):
                break
        # Connected first: a process killed before its CONNECT reached the broker leaves no
        # session, hence no last will to wait for (the events are then all still in the store).
        wait_for(lambda: central.on("status") and central.on("status")[-1]["state"] == "online",
                 what="the agent online")
        os.kill(agent.pid, signal.SIGKILL)
        agent.wait(10)
        seen_before = len(central.on("events/parcel"))
        assert seen_before < EVENTS, "kill came too late to test anything in flight"
        # The broker noticed the dead connection and published the last will.
        wait_for(lambda: central.on("status") and central.on("status")[-1]["state"] == "offline",
                 what="last will")
        assert central.on("status")[-1]["reason"] == "connection lost"

        again = _start(tmp_path, mosquitto.port, 0)
        out, _ = again.communicate(timeout=90)
        assert "drained depth=0" in out
        events = central.on("events/parcel")
        seqs = {e["seq"] for e in events}
        assert seqs == set(range(1, EVENTS + 1))
        by_seq = {}
        for event in events:  # a duplicate is the same event: same id for the same seq
            assert by_seq.setdefault(event["seq"], event["event_id"]) == event["event_id"]
        assert len({e["event_id"] for e in events}) == EVENTS
        assert central.on("status")[-1]["state"] == "offline"  # clean stop after draining
        assert central.on("status")[-1]["reason"] == "stopped"
    finally:
        central.close()
