"""Devices on the network in the agent's config: each bad setting named, serial unchanged."""

from __future__ import annotations

from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.config import load_config
from edge_agent.devices.ports import device_location, endpoint_of, port_for_device
from edge_agent.devices.profiles import ProfileError, load_profile
from edge_agent.devices.tcp_port import TcpPort
from edge_agent.errors import ConfigError

HEAD = 'site = "HKG1"\nline = "L3"\nstate_dir = "state"\n\n'
SERIAL = '[devices.scanner]\nport = "/dev/sortline/scanner"\nprofile = "generic-scanner"\n'
TCP = ('[devices.dws]\ntransport = "tcp"\nhost = "192.168.10.21"\nport = 4001\n'
       'profile = "generic-dws"\n')


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "agent.toml"
    path.write_text(HEAD + text)
    return path


def test_a_serial_config_of_before_loads_unchanged(tmp_path: Path) -> None:
    device = load_config(write(tmp_path, SERIAL)).devices["scanner"]
    assert (device.transport, device.port, device.host, device.role) == (
        "serial", "/dev/sortline/scanner", None, None)
    assert endpoint_of(device) is None
    port = port_for_device("scanner", device, load_profile("generic-scanner"))
    assert not isinstance(port, TcpPort) and port.path == "/dev/sortline/scanner"


def test_a_tcp_device_defaults_to_client_with_the_profiles_idle_handling(tmp_path: Path) -> None:
    device = load_config(write(tmp_path, TCP)).devices["dws"]
    endpoint = endpoint_of(device)
    assert endpoint is not None
    assert (endpoint.host, endpoint.port, endpoint.role, endpoint.idle_timeout_s) == (
        "192.168.10.21", 4001, "client", None)
    assert device_location(device) == "tcp://192.168.10.21:4001"
    port = port_for_device("dws", device, load_profile("generic-dws"))
    assert isinstance(port, TcpPort) and port.idle_timeout_ns is None  # a DWS unit is quiet


def test_a_server_with_the_idle_timeout_off(tmp_path: Path) -> None:
    text = TCP.replace('host = "192.168.10.21"', 'host = "0.0.0.0"\nrole = "server"\n'
                       "idle_timeout_s = 0\nconnect_timeout_s = 1.5")
    device = load_config(write(tmp_path, text)).devices["dws"]
    assert device_location(device) == "tcp-listen://0.0.0.0:4001"
    endpoint = endpoint_of(device)
    assert endpoint is not None and endpoint.idle_timeout_s == 0.0
    assert endpoint.connect_timeout_s == 1.5


@pytest.mark.parametrize(("text", "problem"), [
    (SERIAL.replace('"/dev/sortline/scanner"', "4001"),
     'port: 4001 is not a serial device path; a device on the network needs transport = "tcp"'),
    (SERIAL + 'host = "10.0.0.5"\n', 'host: only for a device on the network'),
    (SERIAL + 'idle_timeout_s = 5\n', 'idle_timeout_s: only for a device on the network'),
    (TCP.replace('host = "192.168.10.21"\n', ""), "host: missing: the device's IP address"),
    (TCP.replace('host = "192.168.10.21"\n', 'role = "server"\n'),
     "host: missing: the local IP address to listen on"),
    (TCP.replace('"192.168.10.21"', '"dws.line3.local"'), "'dws.line3.local' is not an IP"),
    (TCP.replace("4001", "70000"), "port: 70000 is not a TCP port number (1-65535)"),
    (TCP.replace("4001", '"/dev/ttyUSB0"'), "port: '/dev/ttyUSB0' is not a TCP port number"),
    (TCP.replace("4001", "0"), "port: 0 is not a TCP port number"),
    (TCP + "baudrate = 9600\n", "baudrate: a device on the network"),
    (TCP + 'role = "master"\n', "devices.dws.role: Input should be 'client' or 'server'"),
    (TCP.replace('"tcp"', '"udp"'), "devices.dws.transport: Input should be 'serial' or 'tcp'"),
    (TCP + "idle_timeout_s = -1\n", "devices.dws.idle_timeout_s: Input should be greater"),
    (TCP + "connect_timeout_s = 0\n", "devices.dws.connect_timeout_s: Input should be greater"),
    (TCP + "heartbeat = 5\n", "devices.dws.heartbeat: unknown setting (a typo?)"),
])
def test_each_bad_setting_is_named(tmp_path: Path, capsys, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any(problem in line for line in caught.value.problems), caught.value.problems
    assert main(["config", "check", str(path)]) == 2
    assert problem in capsys.readouterr().out


@pytest.mark.parametrize(("tcp", "problem"), [
    ('heartbeat = "HB"\n', "heartbeat and heartbeat_period_ms go together"),
    ("heartbeat_period_ms = 1000\n", "heartbeat and heartbeat_period_ms go together"),
    ("idle_timeout_ms = 0\n", "tcp.idle_timeout_ms: Input should be greater than 0"),
    ('heartbeat = ""\nheartbeat_period_ms = 1000\n', "tcp.heartbeat:"),
])
def test_a_profiles_bad_tcp_section_is_named(tmp_path: Path, monkeypatch, tcp: str,
                                              problem: str) -> None:
    source = load_profile("generic-dws").source
    text = Path(source).read_text().replace('name = "generic-dws"', 'name = "site-dws"')
    (tmp_path / "site-dws.toml").write_text(text + "\n[tcp]\n" + tcp)
    monkeypatch.setenv("EDGE_AGENT_PROFILE_PATH", str(tmp_path))
    with pytest.raises(ProfileError) as caught:
        load_profile("site-dws")
    assert any(problem in line for line in caught.value.problems), caught.value.problems


def test_a_profiles_tcp_section_survives_profiles_show(tmp_path: Path, monkeypatch,
                                                       capsys) -> None:
    """`profiles show NAME > site.toml` is how a site copies a profile: [tcp] must come along."""
    source = load_profile("generic-dws").source
    text = Path(source).read_text().replace('name = "generic-dws"', 'name = "site-dws"')
    (tmp_path / "site-dws.toml").write_text(
        text + '\n[tcp]\nheartbeat = "\\u0002HB\\u0003"\nheartbeat_period_ms = 5000\n'
        "idle_timeout_ms = 30000\n")
    monkeypatch.setenv("EDGE_AGENT_PROFILE_PATH", str(tmp_path))
    assert main(["profiles", "show", "site-dws"]) == 0
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "site-dws.toml").write_text(capsys.readouterr().out)
    monkeypatch.setenv("EDGE_AGENT_PROFILE_PATH", str(copy))
    tcp = load_profile("site-dws").tcp
    assert (tcp.heartbeat, tcp.heartbeat_period_ms, tcp.idle_timeout_ms) == (
        b"\x02HB\x03", 5000, 30000)
