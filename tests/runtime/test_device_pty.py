"""The device end of a simulated line's pty (the fault line's and the bench's light line's)."""

from __future__ import annotations

import os
import selectors

import serial

from edge_agent.simulation.device_pty import DevicePty, acknowledge_divert

BOTH = selectors.EVENT_READ | selectors.EVENT_WRITE


def _read_until(device: DevicePty, wanted: int) -> bytes:
    """What the agent's end wrote, read on the device's end, waiting on the selector."""
    data = b""
    with selectors.DefaultSelector() as selector:
        selector.register(device.master, selectors.EVENT_READ)
        while len(data) < wanted and selector.select(timeout=5.0):
            data += device.serve(selectors.EVENT_READ) or b""
    return data


def test_a_divert_command_is_acknowledged_and_returned_and_other_lines_ignored(tmp_path):
    device = DevicePty(tmp_path / "dev" / "sorter")
    agent = serial.Serial(str(tmp_path / "dev" / "sorter"), timeout=5.0)
    try:
        sent = b"DIV p1 3 LABEL%1D\r\nHELLO\r\nDIV p2 4\n"
        agent.write(sent)
        lines = device.lines(_read_until(device, len(sent)))
        assert lines == [b"DIV p1 3 LABEL%1D", b"HELLO", b"DIV p2 4"]
        answers = [acknowledge_divert(device, line, 42) for line in lines]
        assert answers == [["LABEL\x1d", 3, "p1", 42], None, [None, 4, "p2", 42]]
        assert agent.read(len(b"ACK p1 3\r\nACK p2 4\r\n")) == b"ACK p1 3\r\nACK p2 4\r\n"
    finally:
        agent.close()
        os.close(device.master)


def test_a_half_line_waits_for_its_end_and_a_closed_end_reads_as_none(tmp_path):
    device = DevicePty(tmp_path / "dev" / "scale")
    agent = serial.Serial(str(tmp_path / "dev" / "scale"), timeout=5.0)
    try:
        agent.write(b"S")
        assert device.lines(_read_until(device, 1)) == []
        agent.write(b"I\r")
        assert device.lines(_read_until(device, 2)) == [b"SI"]
        agent.close()
        assert device.serve(BOTH) is None  # the agent's end is gone: EIO, not an exception
    finally:
        agent.close()
        os.close(device.master)
