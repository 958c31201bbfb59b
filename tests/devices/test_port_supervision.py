"""SupervisedPort: opening by stable path, exclusivity, backoff, and what it reports."""

from __future__ import annotations

import json

import pytest
import serial
from structlog.testing import capture_logs
from support.pty_devices import PtyBench, collect_until, of_kind, wait_until

from edge_agent.devices import port as port_module
from edge_agent.devices.hub import DeviceHub
from edge_agent.devices.port import PortState, SupervisedPort
from edge_agent.devices.profiles import load_profile


def scanner_port(path, name: str = "scanner", **options) -> SupervisedPort:
    return SupervisedPort(name, path, load_profile("generic-scanner"), **options)


def test_opens_through_the_by_id_link_and_reports_the_device(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner()
    with DeviceHub() as hub:
        port = hub.add(scanner_port(scanner.path))
        assert port.state is PortState.CONNECTED
        state = hub.states()["scanner"]
        assert state["device"] == scanner.slave_path
        assert state["path"] == str(scanner.path)
        json.dumps(state)  # JSON-ready as promised


def test_missing_port_is_retried_until_it_appears(pty_bench: PtyBench) -> None:
    link = pty_bench.link("late")
    with DeviceHub() as hub:
        port = hub.add(scanner_port(link))
        assert port.state is PortState.DISCONNECTED
        assert "no such device" in str(port.last_error)
        scanner = pty_bench.scanner(name="late")  # the adapter is plugged in now
        assert scanner.path == link
        wait_until(lambda: port.state is PortState.CONNECTED, hub=hub)
        scanner.scan("LP0001")
        scans = of_kind(collect_until(hub, lambda got: len(got) >= 1), "scan")
        assert [scan.data for scan in scans] == ["LP0001"]
        assert port.counters["reconnects"] == 0  # the first open is not a reconnect


def test_port_held_by_another_program_is_refused_then_taken(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner()
    holder = serial.Serial(str(scanner.path), exclusive=True)
    with DeviceHub() as hub:
        port = hub.add(scanner_port(scanner.path))
        assert port.state is PortState.DISCONNECTED
        assert str(port.last_error).startswith("port busy")
        holder.close()
        wait_until(lambda: port.state is PortState.CONNECTED, hub=hub)


def test_the_agent_holds_the_port_exclusively(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner()
    with DeviceHub() as hub:
        hub.add(scanner_port(scanner.path))
        try:
            serial.Serial(str(scanner.path), exclusive=True).close()
        except serial.SerialException:
            pass
        else:
            raise AssertionError("a second program could open the agent's port")


def test_backoff_doubles_to_its_cap(tmp_path, monkeypatch) -> None:
    now = [0]
    port = scanner_port(tmp_path / "absent", clock=lambda: now[0])
    retries = []
    for _ in range(10):
        port.connect()
        retries.append((port.next_deadline_ns() - now[0]) / 1e9)
        now[0] = port.next_deadline_ns()
    assert retries[:3] == [0.1, 0.2, 0.4]
    assert max(retries) == port_module.RECONNECT_MAX_S
    assert retries[-1] == port_module.RECONNECT_MAX_S


def test_send_is_refused_while_disconnected(tmp_path) -> None:
    with DeviceHub() as hub:
        hub.add(scanner_port(tmp_path / "absent"))
        assert hub.send("scanner", b"\x16T\r") is False


def test_connect_and_disconnect_are_logged_as_events(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner()
    with capture_logs() as events, DeviceHub() as hub:
        port = hub.add(scanner_port(scanner.path))
        scanner.unplug()
        wait_until(lambda: port.state is PortState.DISCONNECTED, hub=hub)
    names = [(event["event"], event.get("device")) for event in events]
    assert ("device_connected", "scanner") in names
    assert ("device_disconnected", "scanner") in names


def test_raw_chunks_are_logged_in_hex_at_vv(pty_bench: PtyBench, monkeypatch) -> None:
    monkeypatch.setattr(port_module, "raw_frames_enabled", lambda: True)
    scanner = pty_bench.scanner()
    with capture_logs() as events, DeviceHub() as hub:
        hub.add(scanner_port(scanner.path))
        scanner.scan("AB")
        collect_until(hub, lambda got: len(got) >= 1)
    chunks = [event["hex"] for event in events if event["event"] == "serial_in"]
    assert "".join(chunks).replace(" ", "") == b"AB\r\n".hex()


def test_a_device_name_is_used_once(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner()
    with DeviceHub() as hub:
        hub.add(scanner_port(scanner.path))
        with pytest.raises(ValueError, match="already in the hub"):
            hub.add(scanner_port(scanner.path))
        assert hub.states()["scanner"]["state"] == "connected"  # the first one is untouched
