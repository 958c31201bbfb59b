"""Fault 7: the wall clock jumps backwards and forwards (NTP step, an RTC-less boot).

Ids and outbox order must not follow the wall clock back; cutoff decisions must follow it (a
route's cutoff is a wall-clock time in Hong Kong); pairing must not care (it pairs on
monotonic arrival stamps). The clocks are the components' own injectable clocks: the machine's
clock is shared and cannot be stepped for a test.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fault_support import scaled
from line_harness import yrd_parcel

from edge_agent.config import OutboxConfig, load_config
from edge_agent.ids import IdGenerator, id_time_ms
from edge_agent.runtime.agent import Agent
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.sync.outbox import Outbox

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
IDS_PER_STEP = scaled(2_000, 50_000)
EVENTS_PER_STEP = scaled(50, 2_000)
# 2026-11-20 12:00 UTC = 20:00 in Hong Kong, the Zhuhai route's cutoff.
CUTOFF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
TURN_TIMEOUT_S = 20.0
ZHUHAI, SHANGHAI = 1, 2


class SteppedClock:
    """A wall clock the test sets; each reading advances it by one millisecond."""

    def __init__(self, start_ms: int):
        self.now_ms = start_ms

    def jump(self, delta_ms: int) -> None:
        self.now_ms += delta_ms

    def ms(self) -> int:
        self.now_ms += 1
        return self.now_ms

    def seconds(self) -> float:
        return self.ms() / 1000


START_MS = int(CUTOFF.timestamp() * 1000)
JUMPS_MS = (0, -HOUR_MS, DAY_MS, -DAY_MS - 2 * HOUR_MS)  # back an hour, forward a day, back


def test_ids_stay_unique_and_increasing_across_jumps():
    clock = SteppedClock(START_MS)
    generator = IdGenerator(clock_ms=clock.ms)
    ids = []
    for jump in JUMPS_MS:
        clock.jump(jump)
        ids.extend(generator.new() for _ in range(IDS_PER_STEP))
    assert len(set(ids)) == len(ids)
    assert all(a < b for a, b in itertools.pairwise(ids))
    # Forward jumps are followed (ids carry the new time); backward ones are not.
    assert id_time_ms(ids[-1]) >= START_MS + DAY_MS - HOUR_MS


@pytest.mark.parametrize("drained", [False, True], ids=["pending", "drained"])
def test_outbox_keeps_seq_and_event_ids_ordered_across_jumps_and_a_reopen(tmp_path: Path,
                                                                           drained: bool):
    clock = SteppedClock(START_MS)
    records = []
    for opening, jumps in enumerate((JUMPS_MS[:3], JUMPS_MS[3:])):
        outbox = Outbox.open(tmp_path, OutboxConfig(), clock=clock.seconds)
        try:
            for jump in jumps:
                clock.jump(jump)
                records.extend(outbox.append("parcel", {"opening": opening, "n": n})
                               for n in range(EVENTS_PER_STEP))
            outbox.flush()
            if drained:  # nothing left in the table to take the id floor from
                outbox.acknowledge(r.seq for r in outbox.pending(100_000))
        finally:
            outbox.close()
    seqs = [r.seq for r in records]
    event_ids = [r.event_id for r in records]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert all(a < b for a, b in itertools.pairwise(event_ids)), "event ids"
    # The ids carry the outbox's clock: forward jumps are followed, backward ones are not.
    after_forward_jump = event_ids[2 * EVENTS_PER_STEP]
    assert abs(id_time_ms(after_forward_jump) - (START_MS + DAY_MS - HOUR_MS)) < HOUR_MS
    if not drained:
        reopened = Outbox.open(tmp_path, OutboxConfig(), clock=clock.seconds)
        try:
            stored = reopened.pending(100_000)
        finally:
            reopened.close()
        assert [r.event_id for r in stored] == event_ids  # seq order is id order


# -- decisions in process: cutoffs follow the wall clock, pairing does not ------------------------



@pytest.fixture
def line(tmp_path: Path):
    parcels = [yrd_parcel(i, 2.0 + i * 0.37) for i in range(6)]
    sim = LineSimulation(tmp_path / "line", parcels, rate=100)
    sim.prepare()
    yield sim
    sim.close()


def turn_until(agent: Agent, condition) -> None:
    deadline = time.monotonic() + TURN_TIMEOUT_S
    while time.monotonic() < deadline:
        agent.step(max_wait_s=0.02)
        if condition():
            return
    raise AssertionError(f"condition not met: {condition}")


def test_cutoff_follows_the_wall_clock_and_pairing_ignores_it(line: LineSimulation):
    wall = {"now": CUTOFF - timedelta(minutes=1)}  # 19:59 in Hong Kong
    agent = Agent.from_config(load_config(line.config_path), wall_clock=lambda: wall["now"])
    try:
        turn_until(agent, lambda: all(p.connected for p in agent.hub.ports.values()))
        times = [-1, +1, -1, +1, -1, +1]  # minutes from the cutoff: 19:59, 20:01, 19:59 ...
        expected = []
        for parcel, minutes in zip(line.parcels, times, strict=True):
            wall["now"] = CUTOFF + timedelta(minutes=minutes)
            expected.append(ZHUHAI if minutes < 0 else SHANGHAI)
            before = len(line.sorter.commands)
            line.send_parcel(parcel)
            turn_until(agent, lambda before=before: len(line.sorter.commands) > before)
        turn_until(agent, lambda: agent.parts.outbox.stats()["depth"] >= len(line.parcels))
        assert [int(c.bin) for c in line.sorter.commands] == expected
        events = [r.payload for r in agent.parts.outbox.pending(1000) if r.kind == "parcel"]
        by_barcode = {e["barcode"]: e for e in events}
        for parcel, minutes in zip(line.parcels, times, strict=True):
            event = by_barcode[parcel.barcode]
            assert event["inputs"]["weight_kg"] == pytest.approx(parcel.weight_kg)
            decided_at = datetime.fromisoformat(event["decided_at"])
            assert decided_at == CUTOFF + timedelta(minutes=minutes)
            assert ("after_cutoff" in event["reasons"]) == (minutes > 0)
    finally:
        agent.close()
