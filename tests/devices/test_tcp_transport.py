"""TcpPort: a device on loopback TCP under the same supervision as a serial port.

The far end is a protocol-true simulator on the network (`serve_tcp` / `connect_tcp`), or a
bare socket where the fault is below any protocol (a port that refuses, a peer that never
answers the SYN). Every wait is on a condition with a deadline.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator

import pytest
from support.device_links import listening_dws_unit
from support.pty_devices import PtyBench, collect_until, of_kind, wait_until

from edge_agent.devices.hub import DeviceHub
from edge_agent.devices.port import PortState
from edge_agent.devices.ports import port_for_location
from edge_agent.devices.profiles import TcpSettings, load_profile
from edge_agent.devices.simulators import DwsSimulator
from edge_agent.devices.tcp_endpoint import TcpEndpoint
from edge_agent.devices.tcp_port import TcpPort
from edge_agent.simulation.local_broker import free_port
from edge_agent.units import NS_PER_S

LOOPBACK = "127.0.0.1"
RECORD = (["LP00000000000017"], 4.2, (300.0, 200.0, 150.0))


@pytest.fixture
def unit() -> Iterator[DwsSimulator]:
    """A generic DWS unit serving its records on a free loopback port."""
    yield from listening_dws_unit()


def dws_port(endpoint: TcpEndpoint, profile: str = "generic-dws", **tcp: object) -> TcpPort:
    loaded = load_profile(profile)
    if tcp:
        loaded = loaded.model_copy(update={"tcp": TcpSettings(**tcp)})
    return TcpPort("dws", endpoint, loaded)


def records(messages: list) -> list:
    return of_kind(messages, "dws_record")


def test_client_reads_records_and_comes_back_by_itself_after_a_link_drop(unit) -> None:
    with DeviceHub() as hub:
        port = hub.add(port_for_location("dws", unit.url, load_profile("generic-dws")))
        wait_until(lambda: port.connected and unit.plugged, hub=hub)
        unit.measure(*RECORD)
        got = records(collect_until(hub, lambda m: records(m)))
        assert got[0].barcodes == ("LP00000000000017",) and got[0].height_mm == 150.0

        unit.drop_link()
        wait_until(lambda: port.state is PortState.DISCONNECTED, hub=hub)
        assert port.last_error == "the device closed the connection"
        wait_until(lambda: port.connected and unit.plugged, hub=hub)
        assert port.counters["reconnects"] == 1
        unit.measure(["LP00000000000018"], 1.0, (100.0, 100.0, 100.0))
        got = records(collect_until(hub, lambda m: records(m)))
        assert [r.barcodes for r in got] == [("LP00000000000018",)]
        state = hub.states()["dws"]
        assert (state["transport"], state["role"], state["peer"]) == (
            "tcp", "client", f"{LOOPBACK}:{unit.tcp_port}")


def test_server_refuses_a_second_device_while_the_first_talks_and_replaces_a_stale_one(
) -> None:
    address = free_port()
    endpoint = TcpEndpoint(LOOPBACK, address, "server")
    first = DwsSimulator("generic-dws", name="first")
    second = DwsSimulator("generic-dws", name="second")
    stale = socket.socket()
    with DeviceHub() as hub:
        port = hub.add(dws_port(endpoint))
        port.busy_peer_ns = int(0.5 * NS_PER_S)
        assert port.state is PortState.CONNECTING and not port.connected  # listening
        try:
            first.connect_tcp(LOOPBACK, address).start()
            wait_until(lambda: port.connected and first.plugged, hub=hub)
            first.measure(["LP00000000000001"], 1.0, (100.0, 100.0, 100.0))
            assert records(collect_until(hub, lambda m: records(m)))[0].barcodes == (
                "LP00000000000001",)
            # A second device on the same port while the first talks: refused, counted.
            with socket.create_connection((LOOPBACK, address), timeout=5) as intruder:
                wait_until(lambda: port.counters["peers_refused"] == 1, hub=hub)
                assert intruder.recv(16) == b""  # closed by the agent
            assert port.connected and port.counters["peers_replaced"] == 0
            first.stop()
            wait_until(lambda: not port.connected, hub=hub)

            # A link that went half-open (no byte, no FIN), then the device connects again.
            stale.connect((LOOPBACK, address))
            wait_until(lambda: port.connected, hub=hub)
            second.connect_tcp(LOOPBACK, address).start()
            wait_until(lambda: port.counters["peers_replaced"] == 1 and second.plugged, hub=hub)
            second.measure(["LP00000000000002"], 1.0, (100.0, 100.0, 100.0))
            got = records(collect_until(hub, lambda m: records(m)))
            assert [r.barcodes for r in got] == [("LP00000000000002",)]
        finally:
            first.stop()
            second.stop()
            stale.close()


def test_refused_connect_is_retried_with_backoff_and_jitter() -> None:
    closed = free_port()  # nothing listens there
    with DeviceHub() as hub:
        port = hub.add(dws_port(TcpEndpoint(LOOPBACK, closed)))
        wait_until(lambda: port.counters["connect_refused"] >= 3, hub=hub)
        assert port.state is not PortState.CONNECTED
        assert "refused" in (port.last_error or "")
        # The step doubles (0.1, 0.2, 0.4 s...); each wait lies in [half the step, the step].
        step = port._retry_delay_s / 2
        wait = (port._retry_at_ns or 0) - port.clock()
        assert wait <= step * NS_PER_S


def test_a_connect_nobody_answers_times_out_without_stalling_the_loop() -> None:
    # A listener whose accept queue is full drops further SYNs: the connect hangs, as to a
    # device that is switched off behind a switch.
    listener = socket.socket()
    listener.bind((LOOPBACK, 0))
    listener.listen(0)
    address = listener.getsockname()[1]
    fillers = []
    for _ in range(3):
        filler = socket.socket()
        filler.setblocking(False)
        filler.connect_ex((LOOPBACK, address))
        fillers.append(filler)
    try:
        with DeviceHub() as hub:
            port = hub.add(dws_port(TcpEndpoint(LOOPBACK, address, connect_timeout_s=0.3)))
            longest = 0.0
            while port.counters["connect_timeouts"] < 2:  # the first try, and a retry
                started = time.monotonic()
                if port.state is PortState.CONNECTING:  # the hub sleeps until the deadline
                    assert (port.next_deadline_ns() or 0) > port.clock()
                hub.poll(0.05)
                longest = max(longest, time.monotonic() - started)
                assert port.counters["connect_timeouts"] or time.monotonic() - started < 5
            assert "timed out after 0.3 s" in (port.last_error or "")
            assert longest < 0.25  # the hub never waited on the connect itself
    finally:
        for sock in (*fillers, listener):
            sock.close()


def test_a_peer_closing_mid_record_costs_that_record_only(unit) -> None:
    with DeviceHub() as hub:
        port = hub.add(dws_port(TcpEndpoint(LOOPBACK, unit.tcp_port)))
        wait_until(lambda: port.connected and unit.plugged, hub=hub)
        unit.send_raw(b"LP00000000000031,1.5,300,20")  # half a record...
        wait_until(lambda: port.codec.buffered > 0, hub=hub)
        unit.drop_link()  # ...and the link goes
        wait_until(lambda: port.connected and port.counters["reconnects"] == 1 and unit.plugged,
                   hub=hub)
        unit.send_raw(b"0,100,600,1733220903\r\n")  # the rest would make a valid record
        unit.measure(["LP00000000000032"], 2.0, (200.0, 200.0, 200.0))
        got = collect_until(hub, lambda m: records(m))
        # The new link's first bytes do not complete the old link's half record.
        assert [r.barcodes for r in records(got)] == [("LP00000000000032",)]
        assert all(b"LP00000000000031" not in m.raw for _, m in got)


def test_a_silent_peer_is_dropped_after_the_idle_timeout_and_reconnected(unit) -> None:
    with DeviceHub() as hub:
        port = hub.add(dws_port(TcpEndpoint(LOOPBACK, unit.tcp_port, idle_timeout_s=0.3)))
        wait_until(lambda: port.connected, hub=hub)
        linked_ns = port._last_in_ns  # when the link was made, on the port's clock
        while port.clock() < linked_ns + int(0.25 * NS_PER_S):  # not before its time...
            hub.poll(0.02)
        assert port.counters["idle_timeouts"] == 0 and port.connected
        wait_until(lambda: port.counters["idle_timeouts"] == 1, hub=hub)  # ...but then
        assert "idle timeout" in (port.last_error or "")
        wait_until(lambda: port.connected and port.counters["reconnects"] == 1, hub=hub)


def test_bytes_keep_an_idle_link_alive_and_heartbeats_go_out(unit) -> None:
    with DeviceHub() as hub:
        port = hub.add(dws_port(TcpEndpoint(LOOPBACK, unit.tcp_port), idle_timeout_ms=800,
                                heartbeat=b"HB\r", heartbeat_period_ms=100))
        wait_until(lambda: port.connected and unit.plugged, hub=hub)
        until = time.monotonic() + 2.0
        sent = 0
        while time.monotonic() < until:  # records every ~0.1 s for 2 s: 2.5 idle timeouts
            if unit.plugged and time.monotonic() >= until - 2.0 + sent * 0.1:
                unit.measure(*RECORD)
                sent += 1
            hub.poll(0.02)
        assert port.counters["idle_timeouts"] == 0 and port.connected
        assert port.counters["heartbeats"] >= 5
        wait_until(lambda: unit.received.count(b"HB\r") >= 5)


def test_a_flood_of_garbage_is_bounded_and_the_next_record_reads_whole(unit) -> None:
    with DeviceHub() as hub:
        port = hub.add(dws_port(TcpEndpoint(LOOPBACK, unit.tcp_port)))
        wait_until(lambda: port.connected and unit.plugged, hub=hub)
        flood = bytes(range(32, 127)) * 700  # 66 kB, no line end anywhere
        for start in range(0, len(flood), 4096):
            unit.send_raw(flood[start:start + 4096])
            hub.poll(0.01)
            assert port.codec.buffered <= port.codec.max_buffer
        wait_until(lambda: port.counters["bytes_in"] >= len(flood), hub=hub)
        assert port.codec.counters.overflows > 0 and port.connected
        unit.send_raw(b"\r\n")  # the end of the garbage line
        unit.measure(*RECORD)
        got = records(collect_until(hub, lambda m: records(m)))
        assert got[0].barcodes == ("LP00000000000017",) and got[0].weight_kg == 4.2


def test_server_port_in_use_is_a_clear_error_and_other_devices_keep_going(
        pty_bench: PtyBench) -> None:
    blocker = socket.socket()
    blocker.bind((LOOPBACK, 0))
    blocker.listen(1)
    address = blocker.getsockname()[1]
    scanner = pty_bench.scanner()
    with DeviceHub() as hub:
        port = hub.add(dws_port(TcpEndpoint(LOOPBACK, address, "server")))
        hub.add(port_for_location("scanner", str(scanner.path), load_profile("generic-scanner")))
        assert port.state is PortState.DISCONNECTED
        assert "address already in use" in (port.last_error or "")
        assert port.counters["listen_errors"] == 1
        scanner.scan("LP00000000000099")
        scans = of_kind(collect_until(hub, lambda m: of_kind(m, "scan")), "scan")
        assert scans[0].data == "LP00000000000099"
        blocker.close()  # the other program stops: the agent gets the port by itself
        wait_until(lambda: port.state is PortState.CONNECTING and port.last_error is None,
                   hub=hub)
        device = DwsSimulator("generic-dws", name="late")
        try:
            device.connect_tcp(LOOPBACK, address).start()
            wait_until(lambda: port.connected, hub=hub)
        finally:
            device.stop()


@pytest.mark.parametrize(("text", "problem"), [
    ("tcp://dws.local:4001", "not an IP address"),
    ("tcp://10.0.0.5", "no port"),
    ("tcp://10.0.0.5:http", "not a TCP port number"),
    ("tcp-listen://0.0.0.0:70000", "not a TCP port number"),
])
def test_a_bad_address_on_the_command_line_names_the_problem(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        port_for_location("dws", text, load_profile("generic-dws"))


def test_ipv6_loopback_and_serial_paths_are_told_apart() -> None:
    profile = load_profile("generic-dws")
    port = port_for_location("dws", "tcp://[::1]:4001", profile)
    assert isinstance(port, TcpPort) and port.endpoint.host == "::1"
    assert port.path == "tcp://[::1]:4001"
    assert not isinstance(port_for_location("dws", "/dev/ttyUSB0", profile), TcpPort)


@pytest.mark.parametrize("profile", ["generic-dws", "cubiscan-style"])
def test_each_dws_profile_reads_split_and_noisy_records_over_tcp(profile: str) -> None:
    unit = DwsSimulator(profile, name="dws")
    unit.serve_tcp(LOOPBACK, 0).start()
    unit.split_pieces = 4  # each record in four TCP writes
    try:
        with DeviceHub() as hub:
            port = hub.add(dws_port(TcpEndpoint(LOOPBACK, unit.tcp_port), profile))
            wait_until(lambda: port.connected and unit.plugged, hub=hub)
            sent = [(["LP00000000000041"], 4.2, (300.0, 200.0, 150.0)),
                    (["LP00000000000042"], 1.5, None)]
            for barcodes, weight, size in sent:
                unit.send_garbage()
                unit.measure(barcodes, weight, size)
            got = records(collect_until(hub, lambda m: len(records(m)) == 2))
            assert [r.weight_kg for r in got] == [4.2, 1.5]
            assert (got[0].length_mm, got[0].width_mm, got[0].height_mm) == (300.0, 200.0, 150.0)
            assert got[1].length_mm is None  # not measured: unknown, never zero
            if profile == "cubiscan-style":  # a command and its reply over the same link
                assert hub.send("dws", port.codec.command("measure"))
                again = records(collect_until(hub, lambda m: records(m)))
                assert again[0].weight_kg == 1.5
                assert b"M" in bytes(unit.received)
    finally:
        unit.stop()


def test_the_hooks_a_message_protocol_builds_on(unit) -> None:
    """What acknowledgement and re-send need from the transport (docs/PROTOCOLS.md,
    "Transport hooks"): a heartbeat built per beat, a new connection number per link, send()
    saying False while the link is down, and a tap seeing every chunk as read."""
    sequence = iter(range(1, 1000))
    tapped: list[bytes] = []
    with DeviceHub() as hub:
        port = hub.add(dws_port(TcpEndpoint(LOOPBACK, unit.tcp_port), heartbeat=b"x",
                                heartbeat_period_ms=50))
        port.heartbeat_bytes = lambda: f"HB{next(sequence):04d}\r".encode()
        port.tap = lambda chunk, _ns: tapped.append(chunk)
        wait_until(lambda: port.connected and unit.plugged, hub=hub)
        first_link = port.connection_number
        wait_until(lambda: b"HB0003\r" in bytes(unit.received), hub=hub)
        assert bytes(unit.received).startswith(b"HB0001\rHB0002\rHB0003\r")

        unit.unplug()
        wait_until(lambda: not port.connected, hub=hub)
        assert hub.send("dws", b"PENDING\r") is False  # not sent: the protocol keeps it
        unit.replug()
        wait_until(lambda: port.connected and unit.plugged, hub=hub)
        assert port.connection_number == first_link + 1
        unit.measure(*RECORD)
        collect_until(hub, lambda m: records(m))
        assert b"".join(tapped).startswith(b"LP00000000000017,4.2,300,200,150")
