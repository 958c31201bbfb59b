"""Running the real agent process against a fault line (edge_agent/simulation/fault_line.py).

The line plays its plan in a process of its own (its timing is the point); the agent runs as
`python -m edge_agent run`; central's subscriber is in the test. `run_fault_line` returns the
plan's score (edge_agent.simulation.fault_line.score) and central's events.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from line_harness import AgentProcess, EventCollector, wait_for
from support.broker import MosquittoBroker

from edge_agent.config import load_config
from edge_agent.simulation.fault_line import LinePlan, prepare, score
from edge_agent.simulation.line_sim import wait_for_agent

LINE_STOP_TIMEOUT_S = 15.0
SUBSCRIBE_TIMEOUT_S = 10.0


def run_fault_line(plan: LinePlan, out: Path, broker: MosquittoBroker) -> tuple[dict, list]:
    config = prepare(out, plan, broker=f"{broker.host}:{broker.port}", line="F1")
    line = subprocess.Popen(
        [sys.executable, "-m", "edge_agent.simulation.fault_line", str(out), str(out / "plan.json"),
         str(out / "results.json")],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    collector = agent = None
    try:
        assert line.stdout.readline().strip() == "ready"
        collector = EventCollector(broker.host, broker.port, load_config(config).topic_prefix)
        assert collector.wait_subscribed(SUBSCRIBE_TIMEOUT_S)
        agent = AgentProcess(config, out / "agent.log").start()
        assert wait_for_agent(out / "state"), agent.log_tail()
        line.stdin.write("go\n")
        line.stdin.flush()
        # The line says `done` once every lane command it expects arrived (or its drain
        # timeout passed): its own bounded wait.
        assert line.stdout.readline().strip() == "done", agent.log_tail()
        expected = plan.expected_lane_commands()
        wait_for(lambda: collector.count() >= expected, what=f"{expected} parcel events")
        assert agent.terminate() == 0, agent.log_tail()
        events = list(collector.parcels.values())
    finally:
        if agent is not None:
            agent.ensure_stopped()
        if collector is not None:
            collector.close()
        line.stdin.close()  # the line closes its ptys and exits
        line.wait(LINE_STOP_TIMEOUT_S)
    return score(plan, events), events
