"""Inputs that predict misroutes, against the running agent: an unsynchronised clock and each
input-health alarm (no-reads, parcels that never settle, ambiguous pairings, a biased scale).

The agent is `edge-agent run` on the simulated line's ptys with a real mosquitto; central's
view is a subscriber. The clock source is systemd-timesyncd's flag file, pointed at a file the
test creates and removes, so the test does not depend on this machine's NTP state.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest
from line_harness import wait_for, yrd_parcel
from running_line import fault_line

from edge_agent.runtime.status_server import query_status
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import SimParcel

RATE = 50.0
# Small windows so a few dozen parcels make a trend.
HEALTH = "[health]\nwindow_parcels = 20\nmin_parcels = 10\n"


def parcels(count: int, start: int = 0, **change) -> list[SimParcel]:
    return [dataclasses.replace(yrd_parcel(start + n, weight=1 + (start + n) / 100), **change)
            for n in range(count)]


@pytest.fixture
def line(tmp_path: Path):
    flag = tmp_path / "timesync" / "synchronized"
    flag.parent.mkdir()

    def clock_from_flag_file(sim: LineSimulation) -> None:
        text = sim.config_path.read_text().replace(
            '[clock]\nsource = "assume-synchronised"',
            f'[clock]\nsource = "flag-file"\nflag_file = "{flag}"')
        assert 'source = "flag-file"' in text
        sim.config_path.write_text(text + HEALTH)

    # Declared weights of the parcels to come: 500 parcels, their declared weight as sent.
    with fault_line(tmp_path, parcels(500), rate=RATE,
                    configure=clock_from_flag_file) as running:
        running.sim.flag, running.sim.agent = flag, running.agent
        yield running.sim


def _status(sim: LineSimulation) -> dict:
    return query_status(sim.state_dir / "status.sock", timeout_s=5.0)


def _synchronise(sim: LineSimulation) -> None:
    sim.flag.touch()
    wait_for(lambda: _status(sim)["clock"]["synchronised"], what="the clock synchronised")


def _events(sim: LineSimulation, batch: list[SimParcel]) -> dict[str, dict]:
    wanted = {p.barcode for p in batch}
    return wait_for(lambda: len(e := {v["barcode"]: v for v in sim.central.parcels().values()
                                      if v["barcode"] in wanted}) == len(wanted) and e,
                    what="an event for every parcel of the batch")


def test_an_unsynchronised_clock_takes_the_safe_branch_and_says_so(line):
    sim = line
    # Started without the flag: unsynchronised. The agent says so at once.
    wait_for(lambda: sim.central.alarms("clock_unsynchronised"), what="clock alarm")
    assert _status(sim)["clock"]["synchronised"] is False
    before = parcels(10, start=0)
    sim.drive(parcels=before)
    events = _events(sim, before)
    now_hk = datetime.now(UTC).astimezone().hour  # any hour: the rules must not read it
    for event in events.values():
        assert event["inputs"]["clock_synchronised"] is False
        if event["inputs"]["weight_kg"] is not None:  # routed, not an exception
            assert (event["lane"], event["rule"]) == ("SHANGHAI", "zhuhai_after_cutoff"), now_hk
            assert event["reasons"] == ["after_cutoff", "clock_unsynchronised"]
    # NTP synchronises: the agent notices, says so, and routes on the clock again.
    sim.flag.touch()
    wait_for(lambda: sim.central.alarms("clock_synchronised"), what="synchronised notice")
    after = parcels(10, start=10)
    sim.drive(parcels=after)
    for event in _events(sim, after).values():
        assert event["inputs"]["clock_synchronised"] is True
        assert "clock_unsynchronised" not in event["reasons"]


@pytest.mark.parametrize(("alarm", "batch"), [
    ("scanner_no_read_rate", lambda: parcels(20, start=100, barcode=None, manifest=None)),
    ("scale_unsettled_rate", lambda: parcels(20, start=200, weight_kg=None)),
])
def test_a_rising_fault_rate_raises_its_alarm(line, alarm, batch):
    sim = line
    _synchronise(sim)
    sent = batch()
    sim.drive(parcels=sent)
    raised = wait_for(lambda: sim.central.alarms(alarm), what=f"{alarm} raised")
    assert raised[0]["details"]["state"] == "raised"
    assert raised[0]["details"]["value"] > raised[0]["details"]["limit"]
    health = _status(sim)["input_health"]
    assert alarm in health["alarms_active"] and health[alarm]["value"] > health[alarm]["limit"]
    # Clean parcels bring the rate back down: the alarm clears.
    sim.drive(parcels=parcels(20, start=300))
    cleared = wait_for(lambda: [a for a in sim.central.alarms(alarm)
                                if a["details"]["state"] == "cleared"], what=f"{alarm} cleared")
    assert cleared[0]["details"]["value"] < cleared[0]["details"]["limit"]


def test_a_scale_reading_heavy_shows_as_bias_before_lanes_go_wrong(line):
    sim = line
    _synchronise(sim)
    # The scale reads 5 % heavy: under the rules' mismatch tolerance (10 %), so every parcel
    # still takes its lane, but the bias against the declared weights is over its limit (3 %).
    declared = parcels(20, start=400)
    heavy = [dataclasses.replace(p, weight_kg=round(p.weight_kg * 1.05, 3)) for p in declared]
    sim.drive(parcels=heavy)
    raised = wait_for(lambda: sim.central.alarms("scale_bias_fraction"), what="bias alarm")
    assert raised[0]["details"]["value"] == pytest.approx(0.05, abs=0.005)
    events = _events(sim, heavy)
    weighed = [e for e in events.values() if e["inputs"]["weight_kg"] is not None]
    assert weighed and all(e["lane"] != "EXCEPTION" for e in weighed), weighed


def test_traffic_closer_than_the_window_raises_the_alarm_and_pairs_nothing_wrong(tmp_path):
    """Window mode with a 100 ms window: parcels 50 ms apart cannot be told apart."""
    from edge_agent.config import PairingConfig
    from edge_agent.devices.messages import Scan, Weight
    from edge_agent.sorting.pairing import Pairer

    pairer = Pairer(PairingConfig(window_ms=100), new_parcel_id=iter(range(100)).__next__)
    for n in range(10):
        at = (1000 + 50 * n) * 1_000_000
        pairer.on_weight(Weight(value=1.0 + n, unit="kg", value_kg=1.0 + n, stable=True,
                                received_ns=at))
        pairer.on_scan(Scan(data=f"P{n}", received_ns=at))
    handed = pairer.ready(10**12)
    assert pairer.counts["scans_too_close"] == 9
    assert all(p.weight_kg is None and p.weight_pairing == "ambiguous" for p in handed)
