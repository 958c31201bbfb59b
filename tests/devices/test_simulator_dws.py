"""Both DWS profiles against their simulators, through a real pty and the hub: every record a
line brings (labels, no-read, several labels, no dimensions) arrives as the unit measured it,
through garbage and frames split over several writes."""

from __future__ import annotations

import pytest
import serial
from support.pty_devices import PtyBench, collect_until, of_kind

from edge_agent.devices.hub import DeviceHub
from edge_agent.devices.messages import DwsRecord
from edge_agent.devices.port import SupervisedPort
from edge_agent.devices.profiles import load_profile

# (barcodes, weight kg, sides mm) as measured; what each profile can carry of them differs:
# the Cubiscan-style reply has no label section in the shipped layout.
PARCELS = [
    (("LP00000000000017",), 4.2, (300.0, 200.0, 150.0)),
    ((), 0.8, (200.0, 150.0, 100.0)),  # no label read
    (("RB123456785GB", "LP00000000000017"), 1.25, (250.0, 180.0, 90.0)),  # several labels
    (("LP00000000000018",), 2.0, None),  # stacked boxes: not measured
]


def records(hub: DeviceHub, count: int) -> list[DwsRecord]:
    got = collect_until(hub, lambda got: len(of_kind(got, "dws_record")) >= count)
    return of_kind(got, "dws_record")  # type: ignore[return-value]


@pytest.mark.parametrize("profile", ["generic-dws", "cubiscan-style"])
@pytest.mark.parametrize("split_pieces", [1, 4])
def test_every_record_arrives_as_measured(pty_bench: PtyBench, profile: str,
                                         split_pieces: int) -> None:
    unit = pty_bench.dws(profile)
    unit.split_pieces = split_pieces
    with DeviceHub() as hub:
        port = hub.add(SupervisedPort("dws", unit.path, load_profile(profile)))
        for barcodes, weight, dims in PARCELS:
            unit.send_garbage()
            unit.measure(barcodes, weight, dims)
        got = records(hub, len(PARCELS))
        # The noise was dropped: outside frames (Cubiscan-style) or as a line of its own
        counters = port.codec.counters
        assert counters.garbage_bytes > 0 or counters.decode_errors == len(PARCELS)
    carries_labels = profile == "generic-dws"
    for record, (barcodes, weight, dims) in zip(got, PARCELS, strict=True):
        assert record.barcodes == (barcodes if carries_labels else ())
        assert record.no_read is not (carries_labels and bool(barcodes))
        assert record.weight_kg == pytest.approx(weight)
        sides = (record.length_mm, record.width_mm, record.height_mm)
        if dims is None:
            assert sides == (None, None, None) and record.problem is not None
        else:
            assert sides == pytest.approx(dims)


def test_cubiscan_style_answers_its_commands(pty_bench: PtyBench) -> None:
    unit = pty_bench.dws("cubiscan-style")
    with serial.Serial(str(unit.path), 9600, timeout=3.0) as port:
        frame = unit.measure((), 1.25, (200.0, 100.0, 300.0))
        assert port.read_until(b"\x03\r\n") == frame
        port.write(b"\x02M\x03\r\n")  # measure again: the item on the unit
        assert port.read_until(b"\x03\r\n") == frame
        port.write(b"\x02Z\x03\r\n")
        assert port.read_until(b"\x03\r\n") == b"\x02ZA\x03\r\n"
        port.write(b"\x02Q\x03\r\n")
        assert port.read_until(b"\x03\r\n") == b"\x02?N\x03\r\n"
        failed = unit.measure_failed("C")
        assert port.read_until(b"\x03\r\n") == failed == b"\x02MNCC\x03\r\n"
