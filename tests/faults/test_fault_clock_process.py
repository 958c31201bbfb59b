"""Fault 7, whole process: the real agent's wall clock jumps while parcels flow.

The agent runs as `python -m edge_agent run` under libfaketime (LD_PRELOAD): its wall clock is
the real one plus an offset the test writes to a timestamp file, re-read at every call
(FAKETIME_NO_CACHE), so one rewrite steps the clock of every thread at once. Monotonic clocks
are left alone (FAKETIME_DONT_FAKE_MONOTONIC), as an NTP step leaves them: pairing, timeouts and
paho's keepalive run on them. The clock is moved back and forth around the Zhuhai route's cutoff
(20:00 Asia/Hong_Kong), back an hour, forward a day and back more than a day. Checked at central,
through a real broker: event ids unique and increasing in seq order, seqs contiguous, each
Yangtze-delta parcel in ZHUHAI before the cutoff and SHANGHAI (`after_cutoff`) after it as the
fake clock moves, `decided_at` on the fake clock, each parcel with its own weight.
"""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from fault_support import CENTRAL_BROKER_CONFIG, Central, scaled, unannounced_seq_gaps
from line_harness import AgentProcess, wait_for, yrd_parcel
from support.broker import MosquittoBroker
from support.weights import assert_mostly_own, own_or_none

from edge_agent.config import load_config
from edge_agent.ids import id_time_ms
from edge_agent.simulation.line_sim import LineSimulation

# The multi-threaded build: the agent's flusher, publisher and paho threads read the clock too.
LIBFAKETIME_PATHS = sorted(Path("/usr/lib").glob("*/faketime/libfaketimeMT.so.1"))
# 2026-11-20 12:00 UTC = 20:00 in Hong Kong, the Zhuhai route's cutoff.
CUTOFF = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
MINUTE, HOUR, DAY = timedelta(minutes=1), timedelta(hours=1), timedelta(days=1)
# Where the fake clock is put, one step after the other: each a jump from the one before.
POSITIONS = (
    CUTOFF - MINUTE,  # 19:59
    CUTOFF + MINUTE,  # 20:01: forward across the cutoff
    CUTOFF - HOUR,  # 19:00: back an hour
    CUTOFF + DAY + 30 * MINUTE,  # the next day 20:30: forward a day
    CUTOFF - DAY - 2 * HOUR,  # two days earlier, 18:00: back a day and more
    CUTOFF + 2 * MINUTE,  # 20:02
)
CYCLES = scaled(1, 10)  # times through POSITIONS
PARCELS_PER_STEP = scaled(5, 10)
RATE = 50.0
ZHUHAI, SHANGHAI = 1, 2


class FakeTimeAgent(AgentProcess):
    """The agent under libfaketime, its wall clock offset by what `timestamp_file` holds."""

    def __init__(self, config_path: Path, log_path: Path, timestamp_file: Path):
        super().__init__(config_path, log_path)
        self.timestamp_file = timestamp_file

    def set_clock(self, fake_now: datetime) -> None:
        offset_s = fake_now.timestamp() - time.time()
        # Replaced whole, never truncated in place: a read in between would see no offset.
        spare = self.timestamp_file.with_suffix(".new")
        spare.write_text(f"{offset_s:+.3f}\n")
        os.replace(spare, self.timestamp_file)

    def start(self) -> FakeTimeAgent:
        env = dict(os.environ, LD_PRELOAD=str(LIBFAKETIME_PATHS[0]),
                   FAKETIME_TIMESTAMP_FILE=str(self.timestamp_file), FAKETIME_NO_CACHE="1",
                   FAKETIME_DONT_FAKE_MONOTONIC="1")
        with self.log_path.open("a") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "edge_agent", "run", "--config", str(self.config_path)],
                stdout=subprocess.DEVNULL, stderr=log, env=env)
        return self


@pytest.fixture
def line(tmp_path: Path):
    if not LIBFAKETIME_PATHS:
        pytest.skip("libfaketime is not installed (Debian: apt-get install faketime)")
    steps = len(POSITIONS) * CYCLES
    # Distinct weights under the Zhuhai route's limit: a parcel given another's weight shows.
    parcels = [yrd_parcel(i, round(1.0 + (i % 90) * 0.25, 2))
               for i in range(steps * PARCELS_PER_STEP)]
    broker = MosquittoBroker(tmp_path / "broker", extra_config=CENTRAL_BROKER_CONFIG).start()
    sim = LineSimulation(tmp_path / "line", parcels, rate=RATE,
                         broker=f"{broker.host}:{broker.port}")
    sim.prepare()
    central = Central(broker.host, broker.port, load_config(sim.config_path).topic_prefix)
    agent = FakeTimeAgent(sim.config_path, sim.out_dir / "agent.log", tmp_path / "faketime")
    agent.set_clock(POSITIONS[0])
    agent.start()
    try:
        assert sim.wait_for_agent(), agent.log_tail()
        yield sim, agent, central
    finally:
        agent.ensure_stopped()
        central.close()
        sim.close()
        broker.close()


def test_the_agent_process_follows_wall_clock_jumps(line):
    sim, agent, central = line
    # barcode -> (expected bin, earliest and latest fake time its decision can carry)
    expected: dict[str, tuple[int, datetime, datetime]] = {}
    positions = [p for _ in range(CYCLES) for p in POSITIONS]
    for step, position in enumerate(positions):
        batch = sim.parcels[step * PARCELS_PER_STEP:(step + 1) * PARCELS_PER_STEP]
        set_at = time.time()
        agent.set_clock(position)
        sim.drive(parcels=batch)
        wait_for(lambda b=batch: {p.barcode for p in b} <= {c.barcode for c in sim.sorter.commands},
                 what=f"lane commands for the parcels of step {step}")
        latest = position + timedelta(seconds=time.time() - set_at)
        for parcel in batch:
            expected[parcel.barcode] = (ZHUHAI if position < CUTOFF else SHANGHAI,
                                        position, latest)
    sorter_bins = {c.barcode: c.bin for c in sim.sorter.commands}
    events = wait_for(
        lambda: len(e := {e["barcode"]: e for e in central.parcels().values()}) == len(expected)
        and e, what="an event for every parcel")
    weights = {p.barcode: p.weight_kg for p in sim.parcels}
    own = []
    for barcode, (bin_, earliest, latest) in expected.items():
        event = events[barcode]
        decided_at = datetime.fromisoformat(event["decided_at"])
        assert earliest <= decided_at <= latest, (barcode, decided_at, earliest, latest)
        own.append(own_or_none(event, weights[barcode]))
        if not own[-1]:
            continue  # no weight it could be sure of: EXCEPTION, whatever the time
        assert int(sorter_bins[barcode]) == event["bin"] == bin_, event["reasons"]
        assert ("after_cutoff" in event["reasons"]) == (bin_ == SHANGHAI), event
    # This test is about the clock; pairing has tests of its own. Under libfaketime every clock
    # call is slower and the loop's turns take milliseconds, so on a loaded machine many scans
    # are read late and their stamps cannot separate parcels: those go safe (EXCEPTION). Enough
    # must carry a weight for the bins above to prove the clock was followed.
    assert_mostly_own(own, min_share=0.3)
    # Every event central saw (parcels, telemetry, alarms): seqs contiguous, one event each, and
    # in seq order the ids strictly increase, whatever the clock did in between.
    arrivals = central.snapshot()
    assert unannounced_seq_gaps(arrivals) == []
    by_seq = {a.event["seq"]: a.event["event_id"] for a in arrivals}
    assert sorted(by_seq) == list(range(min(by_seq), max(by_seq) + 1))
    ids = [by_seq[seq] for seq in sorted(by_seq)]
    assert all(a < b for a, b in itertools.pairwise(ids)), "event ids out of seq order"
    # The forward jump of a day is followed by the ids; the jumps back are not.
    forward = next(b for b, (_, earliest, _) in expected.items() if earliest > CUTOFF + HOUR)
    assert id_time_ms(events[forward]["event_id"]) >= (CUTOFF + DAY).timestamp() * 1000
    assert agent.terminate() == 0
