"""A DWS unit on the network end to end: `edge-agent run`, a real mosquitto, the unit's
simulator on loopback TCP (the agent connecting to it, or it to the agent) and a sorter on a pty.

Every record the agent receives is a parcel with its dimensions. Mid-run the unit drops off
the network (switched off: no connection, nothing listening, no reconnecting); the parcels it
measures meanwhile reach nobody and must not appear as decisions; it comes back on the same
address and the agent takes the link again by itself, losing nothing after.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dws_line import running_dws_line
from line_harness import status_of, wait_for
from support.broker import MosquittoBroker
from support.device_links import Link, device_lines, place

from edge_agent.devices.simulators import DwsSimulator
from edge_agent.simulation.parcel_mix import SimParcel

BEFORE, DURING, AFTER = range(1, 6), range(6, 9), range(9, 15)


def barcode(n: int) -> str:
    return f"LP00000000000{n:03d}"


def dims(n: int) -> tuple[float, float, float]:
    return (200.0 + n, 150.0 + n, 100.0 + n)


def export_row(n: int) -> SimParcel:
    return SimParcel(0, "export", barcode(n), None, 2.0, {
        "barcode": barcode(n), "country": "GB", "postal_code": "SW1A 1AA",
        "declared_weight_kg": 2.0, "service": "standard"})


def dws_state(state_dir: Path) -> dict:
    return status_of(state_dir).get("devices", {}).get("dws", {})


@pytest.mark.parametrize(("link", "profile"), [
    ("tcp-client", "generic-dws"), ("tcp-server", "generic-dws"),
    ("tcp-client", "cubiscan-style")])
def test_dws_over_tcp_survives_a_link_drop_without_inventing_parcels(
    tmp_path: Path, mosquitto: MosquittoBroker, link: Link, profile: str
) -> None:
    unit = place(DwsSimulator(profile, name="dws"), link)  # tcp-client: the unit listens
    unit.split_pieces = 2  # records arrive in pieces, as TCP segments may
    manifest = [export_row(n) for n in (*BEFORE, *DURING, *AFTER)]
    with running_dws_line(tmp_path / "line", unit, mosquitto, manifest,
                          reach=lambda: device_lines(unit, link), profile=profile,
                          line="DWS2") as run:
        agent, collector, state_dir = run.agent, run.collector, run.state_dir
        wait_for(lambda: dws_state(state_dir).get("state") == "connected" and unit.plugged,
                 what="the agent linked to the DWS unit")

        def measure(numbers: range) -> None:
            for n in numbers:
                unit.measure([barcode(n)], 2.0, dims(n))

        measure(BEFORE)
        wait_for(lambda: collector.count() == len(BEFORE), what="the parcels before the drop")

        unit.unplug()  # off the network: no link, no listener, no reconnecting
        wait_for(lambda: dws_state(state_dir).get("state") != "connected",
                 what="the agent seeing the link gone")
        measure(DURING)  # measured while nobody hears: these parcels must not be invented
        unit.replug()
        wait_for(lambda: (s := dws_state(state_dir)).get("state") == "connected"
                 and s["counters"]["reconnects"] == 1 and unit.plugged,
                 what="the link back by itself")

        measure(AFTER)
        total = len(BEFORE) + len(AFTER)
        commands = run.sorter.wait_for_commands(total, timeout_s=30)
        assert len(commands) == total, agent.log_tail()
        wait_for(lambda: collector.count() == total, what="an event for every record heard")
        assert agent.terminate() == 0, agent.log_tail()

    heard = [*BEFORE, *AFTER]
    assert len(collector.parcels) == len(heard)  # nothing lost, nothing made up
    # One link, read in order: the nth lane command answers the nth record heard.
    for n, command in zip(heard, commands, strict=True):
        event = collector.parcels[command.parcel_id]
        inputs = event["inputs"]
        assert inputs["weight_pairing"] == "dws_record"
        assert inputs["weight_kg"] == pytest.approx(2.0)
        assert (inputs["length_mm"], inputs["width_mm"], inputs["height_mm"]) == pytest.approx(
            dims(n))
        if profile == "generic-dws":
            assert (event["barcode"], event["lane"]) == (barcode(n), "EXPORT"), event
        else:  # the shipped Cubiscan layout carries no label: a no-read, safely
            assert (event["barcode"], event["lane"]) == (None, "EXCEPTION"), event
