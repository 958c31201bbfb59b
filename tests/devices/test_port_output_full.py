"""A device that stops taking bytes must not stop the line: the write is refused, not waited on."""

from __future__ import annotations

import os
import tty

from edge_agent.devices.port import PortState, SupervisedPort
from edge_agent.devices.profiles import load_profile


def test_a_peer_that_stops_reading_gets_refused_commands_and_the_port_stays_up(tmp_path):
    master, slave = os.openpty()  # a sorter whose controller hung: nobody reads the master
    tty.setraw(slave)
    link = tmp_path / "sorter"
    link.symlink_to(os.ttyname(slave))
    port = SupervisedPort("sorter", link, load_profile("generic-divert"))
    try:
        assert port.connect()
        command = port.codec.lane_command("0190f3a2b4c57d8e9f0a1b2c3d4e5f60", 3, "RB123456785GB")
        results = [port.send(command) for _ in range(20_000)]  # far more than a pty buffer holds
        assert results[0] is True
        assert results[-1] is False  # the buffer filled up: refused
        assert port.counters["write_overflows"] == results.count(False) > 0
        assert port.counters["io_errors"] == 0  # not mistaken for a broken line
        assert port.state == PortState.CONNECTED
        # The controller comes back and reads: the next command goes out after the rest of the
        # last one accepted, so the peer sees whole commands, never two interleaved.
        received = drain(master)
        assert port.send(command) is True
        received += drain(master)
        lines = received.split(b"\r\n")
        assert lines[-1] == b""
        assert lines[:-1] == [command.rstrip(b"\r\n")] * (results.count(True) + 1)
    finally:
        port.close()
        os.close(master)
        os.close(slave)


def drain(master: int) -> bytes:
    received = b""
    os.set_blocking(master, False)
    while True:
        try:
            chunk = os.read(master, 65536)
        except BlockingIOError:
            return received
        if not chunk:
            return received
        received += chunk
