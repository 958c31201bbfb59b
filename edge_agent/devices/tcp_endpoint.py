"""Where a device on the network is: an IP address, a TCP port, and who connects to whom.

`role = "client"`: the agent connects to the device (a DWS unit or a serial-to-Ethernet
converter in server mode). `role = "server"`: the agent listens and the device connects to it
(the sorter controllers of the public Chinese specs, a converter in client mode).

Addresses are IP literals only, never names: a name lookup is a blocking call that can take
seconds when DNS is down, and the port is opened from the decision loop. Line devices have
static addresses anyway. On the command line an endpoint is written `tcp://HOST:PORT` (connect
to it) or `tcp-listen://HOST:PORT` (listen there); IPv6 in brackets: `tcp://[fd00::5]:4001`.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Literal

CLIENT_SCHEME = "tcp://"
SERVER_SCHEME = "tcp-listen://"
# A device that accepts the SYN answers within milliseconds on a line's LAN; a few seconds
# covers a converter that is booting, and no longer keeps a dead one from being retried.
DEFAULT_CONNECT_TIMEOUT_S = 3.0

Role = Literal["client", "server"]


@dataclass(frozen=True)
class TcpEndpoint:
    host: str
    port: int
    role: Role = "client"
    connect_timeout_s: float = DEFAULT_CONNECT_TIMEOUT_S
    idle_timeout_s: float | None = None  # None: no idle timeout

    @property
    def address(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    @property
    def url(self) -> str:
        """How the endpoint is shown (state, logs) and written on the command line."""
        return (CLIENT_SCHEME if self.role == "client" else SERVER_SCHEME) + self.address


def endpoint_problems(host: object, port: object, role: str) -> list[str]:
    """What is wrong with a TCP device's settings, each naming the setting; empty if nothing."""
    problems = []
    if host is None:
        problems.append("host: missing: the device's IP address" if role == "client" else
                        "host: missing: the local IP address to listen on (0.0.0.0 for all)")
    elif not _is_ip(str(host)):
        problems.append(f"host: {host!r} is not an IP address (names are not looked up: a "
                        "lookup can stall the line when DNS is down; give the static address)")
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        problems.append(f"port: {port!r} is not a TCP port number (1-65535)")
    return problems


def parse_endpoint(text: str) -> TcpEndpoint | None:
    """`tcp://HOST:PORT` or `tcp-listen://HOST:PORT` as an endpoint; None for anything else (a
    serial path); ValueError naming the problem for a TCP address that is not one."""
    if text.startswith(CLIENT_SCHEME):
        scheme, role = CLIENT_SCHEME, "client"
    elif text.startswith(SERVER_SCHEME):
        scheme, role = SERVER_SCHEME, "server"
    else:
        return None
    rest = text[len(scheme):]
    host, sep, port_text = rest.rpartition(":")
    if not sep:
        raise ValueError(f"{text!r}: no port (write {scheme}HOST:PORT)")
    host = host.removeprefix("[").removesuffix("]")
    port: object = int(port_text) if port_text.isdigit() else port_text
    if problems := endpoint_problems(host, port, role):
        raise ValueError(f"{text!r}: " + "; ".join(problems))
    return TcpEndpoint(host, int(port_text), "client" if role == "client" else "server")


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True
