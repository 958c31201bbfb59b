"""Where a simulated device sits for the agent under test, and the config lines that reach it.

One test body serves every link a line can have: `LINKS` are a pty (a serial port), or loopback
TCP with the agent as client (the device listens: a serial-to-Ethernet converter, a PLC's raw
socket) or as server (the device connects: the sorter controllers of the public host specs).
`place(device, link)` goes before the device's start(); `device_lines(device, link)` are the
lines of its `[devices.NAME]` table besides the profile; `device.drop_link()` loses the
link while the device stays up, whichever it is. `listening_dws_unit()` is the DWS unit the
TCP tests talk to: serving its records on a free loopback port.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

from edge_agent.devices.simulators import DwsSimulator, PtyPeer
from edge_agent.simulation.local_broker import free_port

Link = Literal["pty", "tcp-client", "tcp-server"]  # tcp-ROLE: the agent's role
LINKS: tuple[Link, ...] = ("pty", "tcp-client", "tcp-server")
LOOPBACK = "127.0.0.1"


def place(device: PtyPeer, link: Link) -> PtyPeer:
    """Put a not yet started device on `link`."""
    if link == "tcp-client":
        device.serve_tcp(LOOPBACK, 0)  # the real port is known once it listens (start)
    elif link == "tcp-server":
        device.connect_tcp(LOOPBACK, free_port())
    return device


def device_lines(device: PtyPeer, link: Link) -> str:
    """The `[devices.NAME]` lines that reach a started device (all but the profile)."""
    if link == "pty":
        return f'port = "{device.path}"'
    role = link.removeprefix("tcp-")
    return f'transport = "tcp"\nrole = "{role}"\nhost = "{LOOPBACK}"\nport = {device.tcp_port}'




def listening_dws_unit() -> Iterator[DwsSimulator]:
    """A started generic DWS unit listening on a free loopback port, stopped after (a fixture's
    body: `yield from listening_dws_unit()`)."""
    simulator = DwsSimulator("generic-dws", name="dws")
    simulator.serve_tcp(LOOPBACK, 0).start()
    yield simulator
    simulator.stop()
