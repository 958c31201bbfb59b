"""Checks of each device on the network: reachable (client) or able to listen (server).

The doctor may block here (it is not the decision loop), each check for at most the device's
connect timeout. When the running agent reports the device, its view stands in for the probe:
a second connection could make a device that takes one at a time drop the agent's, and the
agent's listening port is of course not free.
"""

from __future__ import annotations

import errno
import socket
import time
from typing import Any

from edge_agent.config import DeviceConfig
from edge_agent.devices.ports import endpoint_of
from edge_agent.devices.tcp_endpoint import TcpEndpoint
from edge_agent.diagnostics.results import CheckResult, failed, passed

REACHABLE = "reachable"
CAN_LISTEN = "can listen"


def check_network_device(name: str, device: DeviceConfig,
                         agent_view: dict[str, Any] | None) -> CheckResult:
    endpoint = endpoint_of(device)
    assert endpoint is not None, "a serial device has its own checks"
    if endpoint.role == "client":
        return check_reachable(name, endpoint, agent_view)
    return check_can_listen(name, endpoint, agent_view)


def check_reachable(name: str, endpoint: TcpEndpoint,
                    agent_view: dict[str, Any] | None) -> CheckResult:
    check = f"device {name}: {REACHABLE}"
    if agent_view is not None:
        return _agent_link(check, endpoint, agent_view)
    started = time.monotonic()
    try:
        with socket.create_connection((endpoint.host, endpoint.port),
                                      timeout=endpoint.connect_timeout_s):
            pass
    except ConnectionRefusedError:
        return failed(check, f"{endpoint.address} refused the connection (nothing listening)",
                      "device off, wrong port, or its TCP server not enabled: check the "
                      "device's network settings")
    except TimeoutError:
        return failed(check, f"no answer from {endpoint.address} in "
                      f"{endpoint.connect_timeout_s:g} s (timed out)",
                      f"device off, wrong address or a firewall: ping {endpoint.host}; check "
                      "the cable and the switch port")
    except OSError as exc:
        return failed(check, f"cannot connect to {endpoint.address}: {exc.strerror or exc}",
                      "check this computer's network (ip addr, ip route) and the address")
    elapsed_ms = (time.monotonic() - started) * 1000
    return passed(check, f"{endpoint.address} accepted a connection in {elapsed_ms:.0f} ms")


def check_can_listen(name: str, endpoint: TcpEndpoint,
                     agent_view: dict[str, Any] | None) -> CheckResult:
    check = f"device {name}: {CAN_LISTEN}"
    if agent_view is not None:
        return _agent_link(check, endpoint, agent_view)
    probe = socket.socket(socket.AF_INET6 if ":" in endpoint.host else socket.AF_INET)
    try:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        probe.bind((endpoint.host, endpoint.port))
    except OSError as exc:
        if exc.errno == errno.EADDRINUSE:
            return failed(check, f"{endpoint.address} is in use by another program",
                          f"find it: ss -ltnp 'sport = :{endpoint.port}'; stop it (a second "
                          "agent, a forgotten diag watch) or choose another port")
        if exc.errno == errno.EADDRNOTAVAIL:
            return failed(check, f"no interface of this computer has {endpoint.host}",
                          "listen on an address of this computer (ip addr), or 0.0.0.0")
        return failed(check, f"cannot listen on {endpoint.address}: {exc.strerror or exc}",
                      "ports below 1024 need privileges: use a higher one")
    finally:
        probe.close()
    return passed(check, f"{endpoint.address} is free to listen on")


def _agent_link(check: str, endpoint: TcpEndpoint, view: dict[str, Any]) -> CheckResult:
    state = view.get("state")
    if state == "connected":
        return passed(check, f"the running agent is linked ({view.get('peer') or 'peer'})")
    reason = view.get("last_error") or ("waiting for the device to connect"
                                        if endpoint.role == "server" else "no detail")
    return failed(check, f"the running agent reports {state}: {reason}",
                  "see: edge-agent diag status; the device's network settings")
