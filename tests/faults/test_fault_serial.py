"""Fault 4: serial faults on the real agent process, with no restart of the agent.

Line noise, glued and split frames on the scanner's line: the agent keeps deciding and the
scanner stays connected. (Unplug/replug of each device is covered by
tests/devices/test_port_supervision.py at the port level.)
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from line_harness import AgentProcess, wait_for

from edge_agent.runtime.line_sim import LineSimulation
from edge_agent.runtime.parcel_mix import parcel_mix
from edge_agent.runtime.status_server import query_status

BATCH = 40
RATE = 50.0
FLOOD_FRAMES = 3000


@pytest.fixture
def line(tmp_path: Path):
    sim = LineSimulation(tmp_path / "line", parcel_mix(600, seed=41), rate=RATE)
    sim.prepare()
    agent = AgentProcess(sim.config_path, sim.out_dir / "agent.log").start()
    assert sim.wait_for_agent(), agent.log_tail()
    yield sim, agent
    agent.ensure_stopped()
    sim.close()


def _status(sim: LineSimulation) -> dict:
    return query_status(sim.state_dir / "status.sock")


def _serve_batch(sim: LineSimulation, agent: AgentProcess, start: int) -> None:
    """A normal batch after a fault: every parcel gets its lane command."""
    before = len(sim.sorter.commands)
    sim.drive(parcels=sim.parcels[start:start + BATCH])
    wait_for(lambda: len(sim.sorter.commands) >= before + BATCH, what="a batch served")
    assert agent.process.poll() is None


def _labelled(sim: LineSimulation, start: int, count: int):
    return [p for p in sim.parcels[start:] if p.barcode is not None][:count]


def test_noise_glued_and_split_frames(line):
    sim, agent = line
    rng = random.Random(3)
    parcels = _labelled(sim, 300, 30)
    for parcel in parcels[:10]:  # noise between frames
        # A burst of noise, then the line idles (a terminator ends the garbage frame).
        noise = bytes(rng.randrange(256) for _ in range(rng.randint(1, 40)))
        sim.scanner.send_raw(noise + b"\r\n")
        sim.drive(parcels=[parcel])
    glued = b"".join(p.symbology.encode() + p.barcode.encode() + b"\r\n"
                     for p in parcels[10:12] if p.symbology is not None)
    for parcel in parcels[10:12]:
        sim.scale.enqueue(parcel.weight_kg)
    sim.scanner.send_raw(glued or b"")
    sim.scanner.split_pieces = 3
    sim.drive(parcels=parcels[12:20])
    sim.scanner.split_pieces = 1
    wait_for(lambda: len({c.barcode for c in sim.sorter.commands}
                         & {p.barcode for p in parcels[:20]}) >= 18,
             what="parcels decided through noise, glued and split frames")
    assert _status(sim)["devices"]["scanner"]["state"] == "connected"
    _serve_batch(sim, agent, 100)
    assert agent.terminate() == 0
