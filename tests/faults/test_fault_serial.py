"""Fault 4: serial faults on the real agent process, with no restart of the agent.

Line noise, glued and split frames on the scanner's line; each device unplugged and plugged
back mid-stream; a scale that never settles; a scanner flooding its line. The agent keeps
deciding, every device comes back without a restart, and the parcels a fault touched go to
EXCEPTION with the reason that says why (central's events are checked through a real broker).
"""

from __future__ import annotations

import dataclasses
import random
import threading
from pathlib import Path

import pytest
from fault_support import CENTRAL_BROKER_CONFIG, scaled
from line_harness import AgentProcess, wait_for
from running_line import fault_line
from support.weights import assert_mostly_own, own_or_none

from edge_agent.runtime.status_server import StatusError, query_status
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import SimParcel, parcel_mix

BATCH = 40
ROUTED = ("yrd", "yrd_heavy", "mainland_other", "export")
RATE = 50.0
UNSETTLED = 30  # parcels the scale never settles for
FLOOD_FRAMES = scaled(3000, 30000)
UNPLUGS = scaled(1, 5)  # unplug/replug cycles per device
# The port's reconnect backoff doubles up to 5 s while a device is gone; a replugged device is
# back within one backoff step plus scheduling on a loaded machine.
RECONNECT_WAIT_S = 20.0
# Garbage without any terminator: 16 times the scanner's longest frame (4 KB), so only a
# framer that drops an overlong frame keeps its buffer bounded.
GARBAGE_BYTES = 64 * 1024
# A pty's buffer holds about 4 KB: the most one write can put on the line.
PTY_WRITE_BYTES = 4000
# The framer's buffer limit (generic-scanner's max frame) is a few hundred bytes; the agent's
# whole resident memory must not grow by the garbage's size.
MAX_RSS_GROWTH_KB = 16 * 1024
# Delivery to central measured at ~1,850 rows/s during a 30,000-frame flood (parcel events plus
# the sorter alarms the flood raises, up to one per parcel), load ~1.5: allow a quarter of that.
DRAIN_ROWS_PER_S = 450


@pytest.fixture
def line(tmp_path: Path):
    with fault_line(tmp_path, parcel_mix(600, seed=41), rate=RATE,
                    broker_config=CENTRAL_BROKER_CONFIG) as running:
        yield running.sim, running.agent


def _status(sim: LineSimulation) -> dict:
    return query_status(sim.state_dir / "status.sock")


def _device_state(sim: LineSimulation, device: str) -> str | None:
    try:
        return _status(sim)["devices"][device]["state"]
    except (StatusError, KeyError):
        return None


def _events_for(sim: LineSimulation, barcodes: set[str]) -> dict[str, dict]:
    return {e["barcode"]: e for e in sim.central.parcels().values() if e["barcode"] in barcodes}


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
    with sim.scale.platter_lock:  # two parcels at once: the second is on the platter
        sim.scanner.send_raw(glued or b"")
        sim.scale.place(parcels[11].weight_kg)
    sim.scanner.split_pieces = 3
    sim.drive(parcels=parcels[12:20])
    sim.scanner.split_pieces = 1
    wait_for(lambda: len({c.barcode for c in sim.sorter.commands}
                         & {p.barcode for p in parcels[:20]}) >= 18,
             what="parcels decided through noise, glued and split frames")
    assert _status(sim)["devices"]["scanner"]["state"] == "connected"
    _serve_batch(sim, agent, 100)
    assert agent.terminate() == 0


def _unplug_while_sending(sim: LineSimulation, device: str,
                          parcels: list[SimParcel]) -> list[SimParcel]:
    """Unplug `device` while the line sends `parcels`, then plug it back; wait for both.

    Returns the parcels sent after the agent had seen the device gone."""
    peer = getattr(sim, device)
    first = sim.results.sent
    sender = threading.Thread(target=sim.drive, kwargs={"parcels": parcels})
    sender.start()
    wait_for(lambda: sim.results.sent >= first + 5, what="the line sending")  # mid-stream
    peer.unplug()
    wait_for(lambda: _device_state(sim, device) == "disconnected", what=f"{device} seen gone")
    gone_from = sim.results.sent - first + 1  # the one being sent now may have raced it
    sender.join()
    # The last parcel sent while a device was gone has left the platter meanwhile.
    sim.scale.clear()
    peer.replug()
    # pyserial flushes input on open: nothing is sent to the agent before it has reopened.
    wait_for(lambda: _device_state(sim, device) == "connected", timeout_s=RECONNECT_WAIT_S,
             what=f"{device} reconnected")
    return parcels[gone_from:]


@pytest.mark.parametrize("device", ["scanner", "scale", "sorter"])
def test_each_device_unplugged_mid_stream_comes_back_without_a_restart(line, device):
    sim, agent = line
    pid = agent.process.pid
    labelled = [p for p in sim.parcels if p.category in ROUTED and p.weight_kg is not None]
    start = 0
    for cycle in range(UNPLUGS):
        during = labelled[start:start + 20]
        while_gone = _unplug_while_sending(sim, device, during)
        assert while_gone, "no parcel was sent while the device was unplugged"
        # At once, a normal batch: parcels scanned while the device was gone may still be
        # waiting (up to the poll timeout) when the first parcels of this batch arrive.
        after = labelled[start + 20:start + 20 + BATCH]
        start += 20 + BATCH
        sim.drive(parcels=after)
        wait_for(lambda a=after: {p.barcode for p in a} <= {c.barcode for c in sim.sorter.commands},
                 what=f"a batch served after {device} replug {cycle + 1}")
        events = wait_for(
            lambda a=after: (e := _events_for(sim, {p.barcode for p in a})) and len(e) == len(a)
            and e, what="the batch's events")
        # Each parcel carries its own weight or none: no reply lost with the cable shifted the
        # pairing onto a neighbour.
        assert_mostly_own([own_or_none(events[p.barcode], p.weight_kg) for p in after])
        if device == "scale":
            # Scans paired with no weight: the scale was gone, so EXCEPTION, no_stable_weight.
            gone_events = wait_for(
                lambda g=while_gone: (e := _events_for(sim, {p.barcode for p in g}))
                and len(e) == len(g) and e,
                what="events of parcels scanned while the scale was gone")
            # (One scanned as the cable went may find its reply cut short after the next scan:
            # weight_ambiguous. Either way, EXCEPTION without a weight.)
            for event in gone_events.values():
                assert event["lane"] == "EXCEPTION", event
                assert {"no_stable_weight", "weight_ambiguous"} & set(event["reasons"]), event
        if device == "sorter":
            # Decided and recorded even though the lane command could not be delivered.
            wait_for(lambda d=during: len(_events_for(sim, {p.barcode for p in d})) == len(d),
                     what="an event for every parcel, sorter or not")
            assert sim.central.alarms("sorter_unreachable")
    assert agent.process.poll() is None and agent.process.pid == pid
    counters = _status(sim)["devices"][device]["counters"]
    assert counters["reconnects"] == UNPLUGS
    assert agent.terminate() == 0


def test_a_scale_that_never_settles_sends_parcels_to_exception(line):
    sim, agent = line
    # Parcels with a valid label and a route: only the weight can send them to EXCEPTION.
    labelled = [p for p in sim.parcels if p.category in ROUTED and p.weight_kg is not None]
    # Every other parcel, the checkweigher answers `S I` (no stable weight) to the agent's poll;
    # the ones between are weighed normally. Each `S I` must answer its own parcel's poll: if
    # the agent let it pass, the parcel would take the next one's weight, and so on down the line.
    unsettled = [dataclasses.replace(p, weight_kg=None) for p in labelled[:UNSETTLED * 2:2]]
    weighed = labelled[1:UNSETTLED * 2:2]
    sim.drive(parcels=[p for pair in zip(unsettled, weighed, strict=True) for p in pair])
    events = wait_for(
        lambda: (e := _events_for(sim, {p.barcode for p in labelled[:UNSETTLED * 2]}))
        and len(e) == UNSETTLED * 2 and e, what="an event for every parcel")
    for parcel in unsettled:
        event = events[parcel.barcode]
        assert event["lane"] == "EXCEPTION" and "no_stable_weight" in event["reasons"], event
    assert_mostly_own([own_or_none(events[p.barcode], p.weight_kg) for p in weighed])
    assert _device_state(sim, "scale") == "connected"
    _serve_batch(sim, agent, 100)


def _rss_kb(pid: int) -> int:
    for row in Path(f"/proc/{pid}/status").read_text().splitlines():
        if row.startswith("VmRSS:"):
            return int(row.split()[1])
    raise AssertionError("no VmRSS")


def _scanner_bytes_in(sim: LineSimulation) -> int:
    return _status(sim)["devices"]["scanner"]["counters"]["bytes_in"]


def _write_paced(sim: LineSimulation, data: bytes) -> None:
    """Write `data` in pty-buffer-sized writes, each once the agent has read the one before.

    A pty takes at most its buffer (~4 KB) per write and the simulator drops the rest, so a
    bigger single write would test the pty, not the agent."""
    start = _scanner_bytes_in(sim)
    for offset in range(0, len(data), PTY_WRITE_BYTES):
        sim.scanner.send_raw(data[offset:offset + PTY_WRITE_BYTES])
        done = start + min(len(data), offset + PTY_WRITE_BYTES)
        wait_for(lambda d=done: _scanner_bytes_in(sim) >= d, what="the agent reading the flood")


def _decided(sim: LineSimulation) -> int:
    return _status(sim)["counters"].get("parcels", 0)


def _lane_commands_settled(sim: LineSimulation, decided: int, refused_before: int) -> bool:
    """Every decision's lane command is at the sorter or was refused (counted and alarmed):
    a flood faster than the sorter reads fills its line, and the agent never waits on it."""
    refused = _status(sim)["counters"].get("sorter_unreachable", 0) - refused_before
    return len(sim.sorter.commands) + refused >= decided


def test_a_flooding_scanner_does_not_stop_the_line(line):
    sim, agent = line
    rss_before = _rss_kb(agent.process.pid)
    decided_before = _decided(sim)
    refused_before = _status(sim)["counters"].get("sorter_unreachable", 0)
    # Thousands of frames back to back, ~500 per write: no-reads with no parcel behind them.
    _write_paced(sim, b"NOREAD\r\n" * FLOOD_FRAMES)
    wait_for(lambda: _decided(sim) >= decided_before + FLOOD_FRAMES,
             what="every flooded read decided")
    wait_for(lambda: _lane_commands_settled(sim, decided_before + FLOOD_FRAMES, refused_before),
             what="every flooded read's lane command at the sorter or refused")
    # Then garbage that never ends a frame: the framer must drop it, not buffer it.
    rng = random.Random(5)
    garbage = bytes(rng.choice(b"ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(GARBAGE_BYTES))
    _write_paced(sim, garbage)
    # Before any terminator: only a framer that gave up on the frame has dropped it already.
    scanner = _status(sim)["devices"]["scanner"]["counters"]
    assert scanner["overflows"] >= 1 and scanner["garbage_bytes"] >= GARBAGE_BYTES - 16
    sim.scanner.send_raw(b"\r\n")
    counters = _status(sim)["counters"]
    assert _device_state(sim, "scanner") == "connected"
    assert _rss_kb(agent.process.pid) - rss_before < MAX_RSS_GROWTH_KB
    _serve_batch(sim, agent, 200)
    served = {p.barcode for p in sim.parcels[200:200 + BATCH] if p.barcode is not None}
    # Every flooded read's event is published before the batch's (seq order), with the flood's
    # alarms between them: allow for the drain of all of it (an upper bound: the sorter's
    # per-parcel alarms are batched, at most one per alarm name per second).
    rows = FLOOD_FRAMES + counters.get("acks_missing", 0) + counters.get("sorter_unreachable", 0)
    wait_for(lambda: len(_events_for(sim, served)) == len(served), what="the batch's events",
             timeout_s=30 + rows / DRAIN_ROWS_PER_S)
    # Nothing lost on the way: every decision the agent made has its event at central.
    wait_for(lambda: len(sim.central.parcels()) == _decided(sim), what="an event per decision")
    assert agent.terminate() == 0
