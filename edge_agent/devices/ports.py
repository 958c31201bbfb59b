"""Making a device's port from its settings: a serial port or a TCP link, the hub takes either.

Every caller that opens a device (the agent, `diag watch`, `diag capture`, `diag scale`, the
doctor) goes through here, so a device on the network is watched, captured and checked exactly
like one on a serial port.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from edge_agent.devices.port import SupervisedPort
from edge_agent.devices.tcp_endpoint import DEFAULT_CONNECT_TIMEOUT_S, TcpEndpoint, parse_endpoint
from edge_agent.devices.tcp_port import TcpPort

if TYPE_CHECKING:
    from edge_agent.config import DeviceConfig
    from edge_agent.devices.profiles import Profile


def endpoint_of(device: DeviceConfig) -> TcpEndpoint | None:
    """The TCP endpoint of a configured device; None for a serial one."""
    if device.transport != "tcp":
        return None
    return TcpEndpoint(
        str(device.host), int(device.port), device.role or "client",
        device.connect_timeout_s or DEFAULT_CONNECT_TIMEOUT_S,
        # 0 turns the idle timeout off even when the profile has one.
        None if device.idle_timeout_s is None else (device.idle_timeout_s or 0.0))


def device_location(device: DeviceConfig) -> str:
    """What names the device's port for people: its path, or tcp://HOST:PORT."""
    endpoint = endpoint_of(device)
    return str(device.port) if endpoint is None else endpoint.url


def port_for_device(name: str, device: DeviceConfig, profile: Profile, *,
                    poll_period_ms: int | None = None) -> SupervisedPort:
    """The port of a configured device (`poll_period_ms` overrides the device's)."""
    period = poll_period_ms or device.poll_period_ms
    endpoint = endpoint_of(device)
    if endpoint is not None:
        return TcpPort(name, endpoint, profile, poll_period_ms=period)
    return SupervisedPort(name, str(device.port), profile, baudrate=device.baudrate,
                          poll_period_ms=period)


def port_for_location(name: str, location: str, profile: Profile, *,
                      baudrate: int | None = None,
                      poll_period_ms: int | None = None) -> SupervisedPort:
    """The port named on the command line: a serial path, `tcp://HOST:PORT` (connect to the
    device) or `tcp-listen://HOST:PORT` (the device connects to us). ValueError naming the
    problem for a TCP address that is not one."""
    endpoint = parse_endpoint(location)
    if endpoint is not None:
        return TcpPort(name, endpoint, profile, poll_period_ms=poll_period_ms)
    return SupervisedPort(name, location, profile, baudrate=baudrate,
                          poll_period_ms=poll_period_ms)
