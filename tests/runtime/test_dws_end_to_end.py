"""A DWS line end to end: a DWS unit and a sorter on ptys, `edge-agent run`, a real mosquitto.

The unit's record is the parcel: every record must get a lane command at once and an event
whose inputs carry the record's dimensions and the chargeable weight; several labels resolve
to the one that names the parcel, or go to EXCEPTION `multiple_labels`; a no-read goes to
EXCEPTION. Noise on the line and records split over several writes change nothing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
from dws_line import running_dws_line
from line_harness import status_of, wait_for
from support.broker import MosquittoBroker

from edge_agent.devices.simulators import DwsSimulator
from edge_agent.simulation.line_sim import dws_agent_config_text
from edge_agent.simulation.parcel_mix import SimParcel
from edge_agent.sync.payloads import ParcelEvent

VOLUMETRIC_DIVISOR = 6000  # cm³ per kg: the default rules'


@dataclass(frozen=True)
class Sent:
    """One parcel through the unit, and what the agent must make of it."""

    barcodes: tuple[str, ...]
    weight_kg: float
    dims_mm: tuple[float, float, float] | None
    lane: str
    reason: str | None = None  # a reason the event must carry
    chosen: str | None = None  # the label that names the parcel (default: the first)


def export_row(barcode: str, weight_kg: float, postal_code: str = "SW1A 1AA") -> SimParcel:
    return SimParcel(0, "export", barcode, None, weight_kg, {
        "barcode": barcode, "country": "GB", "postal_code": postal_code,
        "declared_weight_kg": weight_kg, "service": "standard"})


PARCELS = [
    Sent(("LP00000000000101",), 3.0, (400.0, 300.0, 200.0), "EXPORT"),  # volumetric 4 kg
    Sent(("LP00000000000102",), 5.0, (300.0, 200.0, 100.0), "EXPORT"),  # actual weight rules
    Sent(("LP00000000000103",), 2.0, None, "EXPORT"),  # stacked boxes: not measured
    # a smudged S10 (wrong check digit) beside the parcel's own label: the own label names it
    Sent(("RB123456786US", "LP00000000000104"), 1.5, (250.0, 200.0, 100.0), "EXPORT",
         chosen="LP00000000000104"),
    # two carrier labels naming two parcels (two boxes read as one): no lane is safe
    Sent(("LP00000000000105", "LP00000000000106"), 4.0, (300.0, 300.0, 300.0), "EXCEPTION",
         reason="multiple_labels"),
    Sent((), 0.9, (200.0, 150.0, 100.0), "EXCEPTION", reason="no_read"),
]
MANIFEST = [export_row(f"LP00000000000{n}", weight) for n, weight in
            ((101, 3.0), (102, 5.0), (103, 2.0), (104, 1.5), (105, 4.0))] + [
    export_row("LP00000000000106", 4.0, postal_code="EC1A 1BB")]


def config_text(dws: Path, sorter: Path, profile: str, broker: MosquittoBroker) -> str:
    """The agent's config: the unit on the pty `dws`, events to `broker`."""
    return dws_agent_config_text(f'port = "{dws}"', sorter, profile=profile,
                                 broker=f"{broker.host}:{broker.port}")


@pytest.mark.parametrize("profile", ["generic-dws", "cubiscan-style"])
def test_every_record_is_a_parcel_decided_with_its_dimensions(
    tmp_path: Path, mosquitto: MosquittoBroker, profile: str
):
    out = tmp_path / "line"
    unit = DwsSimulator(profile, out / "dev" / "dws", name="dws")
    unit.split_pieces = 3  # every record arrives in pieces
    with running_dws_line(out, unit, mosquitto, MANIFEST, reach=lambda: f'port = "{unit.path}"',
                          profile=profile, line="DWS1") as run:
        agent, collector, state_dir = run.agent, run.collector, run.state_dir
        wait_for(lambda: (devices := status_of(state_dir).get("devices")) and len(devices) == 2
                 and all(d["state"] == "connected" for d in devices.values()),
                 what="the agent with both devices connected")

        for parcel in PARCELS:
            unit.send_garbage()
            unit.measure(parcel.barcodes, parcel.weight_kg, parcel.dims_mm)
        commands = run.sorter.wait_for_commands(len(PARCELS), timeout_s=30)
        assert len(commands) == len(PARCELS), agent.log_tail()
        wait_for(lambda: collector.count() == len(PARCELS), what="an event for every record")
        status = wait_for(lambda: (s := status_of(state_dir)) and
                          s["counters"].get("dws_records") == len(PARCELS) and s,
                          what="the status counting every record")
        assert status["pairing"]["dws_record"] == len(PARCELS)
        assert agent.terminate() == 0, agent.log_tail()

    # One port, read in order: the lane commands come in the order the records were sent.
    carries_labels = profile == "generic-dws"  # the shipped Cubiscan layout has no label
    for parcel, command in zip(PARCELS, commands, strict=True):
        event = collector.parcels[command.parcel_id]
        ParcelEvent.model_validate(event)
        inputs = event["inputs"]
        assert int(command.bin) == event["bin"]
        assert inputs["weight_pairing"] == "dws_record"
        assert inputs["weight_kg"] == pytest.approx(parcel.weight_kg)
        if parcel.dims_mm is None:  # unknown size: left out of the event, never zero
            assert not {"length_mm", "width_mm", "height_mm", "chargeable_weight_kg"} & set(inputs)
        else:
            length, width, height = parcel.dims_mm
            assert (inputs["length_mm"], inputs["width_mm"], inputs["height_mm"]) == (
                pytest.approx(length), pytest.approx(width), pytest.approx(height))
            volume_cm3 = length * width * height / 1000
            assert inputs["volume_cm3"] == pytest.approx(volume_cm3)
            assert inputs["chargeable_weight_kg"] == pytest.approx(
                max(parcel.weight_kg, volume_cm3 / VOLUMETRIC_DIVISOR))
        if not carries_labels:
            assert (event["barcode"], event["lane"]) == (None, "EXCEPTION")
            assert "no_read" in event["reasons"]
            continue
        assert event["lane"] == parcel.lane, event
        if parcel.reason is not None:
            assert parcel.reason in event["reasons"], event
        if parcel.barcodes:
            assert event["barcode"] == (parcel.chosen or parcel.barcodes[0])
            assert command.barcode == event["barcode"]
        else:
            assert event["barcode"] is None and command.barcode is None
        if len(parcel.barcodes) > 1:
            assert inputs["labels"] == list(parcel.barcodes)  # every label, for central
