"""A DWS line for the end-to-end tests: a DWS unit (on a pty or loopback TCP) and a sorter on a
pty, the manifest imported, `edge-agent run` as its own process with events to a real mosquitto,
and central's collector subscribed; all of it stopped afterwards, whatever the test did."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from line_harness import AgentProcess, EventCollector

from edge_agent.devices.simulators import DwsSimulator, SorterSimulator
from edge_agent.simulation.line_sim import dws_agent_config_text, write_manifest
from edge_agent.simulation.local_broker import MosquittoBroker
from edge_agent.simulation.parcel_mix import SimParcel

SUBSCRIBE_TIMEOUT_S = 10.0


@dataclass
class DwsRun:
    state_dir: Path
    sorter: SorterSimulator
    collector: EventCollector
    agent: AgentProcess


@contextlib.contextmanager
def running_dws_line(out: Path, unit: DwsSimulator, broker: MosquittoBroker,
                     manifest: list[SimParcel], *, reach: Callable[[], str], profile: str,
                     line: str) -> Iterator[DwsRun]:
    """`unit` not yet started; `reach()` gives its `[devices.dws]` lines (but the profile) once
    it is. The agent is started, not yet known to be linked: each test waits for what it needs."""
    state_dir = out / "state"
    state_dir.mkdir(parents=True)
    (out / "dev").mkdir(exist_ok=True)
    sorter = SorterSimulator(out / "dev" / "sorter", name="sorter")
    with contextlib.ExitStack() as stack:
        unit.start()
        stack.callback(unit.stop)
        sorter.start()
        stack.callback(sorter.stop)
        write_manifest(out, state_dir, manifest)
        config = out / "agent.toml"
        config.write_text(dws_agent_config_text(reach(), sorter.path, profile=profile, line=line,
                                                broker=f"{broker.host}:{broker.port}"))
        collector = EventCollector(broker.host, broker.port, f"sortline/v1/SIM/{line}/")
        stack.callback(collector.close)
        assert collector.wait_subscribed(SUBSCRIBE_TIMEOUT_S)
        agent = AgentProcess(config, out / "agent.log").start()
        stack.callback(agent.ensure_stopped)
        yield DwsRun(state_dir, sorter, collector, agent)
