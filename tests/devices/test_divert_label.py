"""The optional barcode label on a generic-divert lane command, both sides of the wire."""

import pytest

from edge_agent.devices.codec import make_codec
from edge_agent.devices.profiles import load_profile
from edge_agent.devices.simulators import SorterSimulator
from edge_agent.devices.sorter_protocol import MAX_LABEL_CHARS, encode_divert

PARCEL = "0190f3a2b4c57d8e9f0a1b2c3d4e5f60"


@pytest.mark.parametrize(
    ("barcode", "wire"),
    [
        (None, b"DIV %s 3\r\n" % PARCEL.encode()),
        ("RB123456785GB", b"DIV %s 3 RB123456785GB\r\n" % PARCEL.encode()),
        ("0037613032110910342\x1d42010115", b"DIV %s 3 0037613032110910342%%1D42010115\r\n"
         % PARCEL.encode()),
        ("50% off here", b"DIV %s 3 50%%25%%20off%%20here\r\n" % PARCEL.encode()),
        ("X" * (MAX_LABEL_CHARS + 1), b"DIV %s 3\r\n" % PARCEL.encode()),  # too long: left out
    ],
)
def test_label_encoding(barcode, wire):
    codec = make_codec(load_profile("generic-divert"))
    assert codec.lane_command(PARCEL, 3, barcode) == wire


@pytest.mark.parametrize("barcode", ["RB123456785GB", "00376\x1d420 10115%", "上海"])
def test_sorter_simulator_reads_the_label_back(barcode):
    sorter = SorterSimulator(name="sorter")
    sorter.on_command(encode_divert(PARCEL, 2, barcode).rstrip(b"\r\n"))
    [command] = sorter.commands
    assert (command.parcel_id, command.bin, command.barcode) == (PARCEL, "2", barcode)


def test_command_without_label_still_understood():
    sorter = SorterSimulator(name="sorter")
    sorter.on_command(b"DIV abc 7")
    assert sorter.commands[0].barcode is None
