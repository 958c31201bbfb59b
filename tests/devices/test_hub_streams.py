"""DeviceHub against simulated devices: polls, faults on the line, unplug and replug."""

from __future__ import annotations

import os
import time

from support.pty_devices import PtyBench, collect_until, of_kind, wait_until

from edge_agent.devices.hub import DeviceHub
from edge_agent.devices.messages import LaneFull, SorterAck
from edge_agent.devices.port import PortState, SupervisedPort
from edge_agent.devices.profiles import load_profile

POLL_PERIOD_MS = 50


def add(hub: DeviceHub, name: str, path, profile: str, **options) -> SupervisedPort:
    return hub.add(SupervisedPort(name, path, load_profile(profile), **options))


def weights(messages) -> list:
    return of_kind(messages, "weight")


def test_polled_scale_is_asked_on_its_period(pty_bench: PtyBench) -> None:
    scale = pty_bench.scale("mt-sics", weight_kg=1.5)
    with DeviceHub() as hub:
        started = time.monotonic()  # before the first poll, which goes out on connecting
        port = add(hub, "scale", scale.path, "mt-sics", poll_period_ms=POLL_PERIOD_MS)
        got = collect_until(hub, lambda got: len(weights(got)) >= 5)
        elapsed = time.monotonic() - started
    readings = weights(got)
    assert all(w.value_kg == 1.5 and w.stable for w in readings)
    # Five answers need at least four periods; far more polls than periods would be a burst.
    assert elapsed >= 4 * POLL_PERIOD_MS / 1000
    assert port.counters["polls"] <= elapsed * 1000 / POLL_PERIOD_MS + 2


def test_weights_are_stamped_when_their_bytes_arrive(pty_bench: PtyBench) -> None:
    scale = pty_bench.scale("mt-sics", weight_kg=2.0)
    with DeviceHub() as hub:
        add(hub, "scale", scale.path, "mt-sics", poll_period_ms=POLL_PERIOD_MS)
        before = time.monotonic_ns()
        got = collect_until(hub, lambda got: len(weights(got)) >= 2)
        after = time.monotonic_ns()
    stamps = [w.received_ns for w in weights(got)]
    assert stamps == sorted(stamps)
    assert before <= stamps[-1] <= after


def test_scale_that_never_stabilises_gives_only_unstable_weights(pty_bench: PtyBench) -> None:
    scale = pty_bench.scale("mt-sics", weight_kg=4.2)
    scale.never_stabilises = True
    with DeviceHub() as hub:
        add(hub, "scale", scale.path, "mt-sics", poll_period_ms=POLL_PERIOD_MS)
        got = collect_until(hub, lambda got: len(weights(got)) >= 3)
    assert not any(w.stable for w in weights(got))


def test_toledo_stream_needs_no_polls(pty_bench: PtyBench) -> None:
    scale = pty_bench.scale("toledo-continuous", weight_kg=12.34)
    with DeviceHub() as hub:
        port = add(hub, "scale", scale.path, "toledo-continuous")
        got = collect_until(hub, lambda got: len(weights(got)) >= 3)
    assert {w.value_kg for w in weights(got)} == {12.34}
    assert port.counters["polls"] == 0


def test_noise_split_and_glued_frames(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner("generic-scanner")
    with DeviceHub() as hub:
        port = add(hub, "scanner", scanner.path, "generic-scanner")
        scanner.split_pieces = 4
        scanner.scan("RB123456785GB")
        scanner.split_pieces = 1
        scanner.send_glued([scanner.frame("A1"), scanner.frame("A2"), scanner.frame("A3")])
        got = collect_until(hub, lambda got: len(of_kind(got, "scan")) >= 4)
        assert [s.data for s in of_kind(got, "scan")] == ["RB123456785GB", "A1", "A2", "A3"]
        assert port.counters["frames"] == 4


def test_noise_is_counted_and_the_next_frame_still_decodes(pty_bench: PtyBench) -> None:
    scale = pty_bench.scale("toledo-continuous", weight_kg=1.0)
    scale.silent = True  # only what the test sends
    with DeviceHub() as hub:
        port = add(hub, "scale", scale.path, "toledo-continuous")
        scale.send_raw(b"\xff\xfe\x7f noise " + scale.toledo_frame())
        got = collect_until(hub, lambda got: len(weights(got)) >= 1)
        assert weights(got)[0].value_kg == 1.0
        assert port.state_dict()["counters"]["garbage_bytes"] > 0


def test_unplug_and_replug_mid_stream_loses_nothing_after_reconnect(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner("generic-scanner")
    with DeviceHub() as hub:
        port = add(hub, "scanner", scanner.path, "generic-scanner")
        for i in range(3):
            scanner.scan(f"BEFORE{i}")
        collect_until(hub, lambda got: len(got) >= 3)
        scanner.send_raw(b"HALF-A-FRA")  # cut off by the unplug
        scanner.unplug()
        wait_until(lambda: port.state is PortState.DISCONNECTED, hub=hub)
        scanner.replug()
        wait_until(lambda: port.state is PortState.CONNECTED, hub=hub)
        for i in range(20):
            scanner.scan(f"AFTER{i}")
        got = collect_until(hub, lambda got: len(got) >= 20)
    assert [s.data for s in of_kind(got, "scan")] == [f"AFTER{i}" for i in range(20)]
    assert port.counters["reconnects"] == 1


def test_startup_commands_are_sent_again_after_replug(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner("keyence-fixed")
    with DeviceHub() as hub:
        port = add(hub, "scanner", scanner.path, "keyence-fixed")
        startup = b"".join(port.codec.startup_commands())
        wait_until(lambda: scanner.received.startswith(startup), hub=hub)
        scanner.unplug()
        wait_until(lambda: port.state is PortState.DISCONNECTED, hub=hub)
        scanner.received.clear()
        scanner.replug()
        wait_until(lambda: scanner.received.startswith(startup), hub=hub)


def test_idle_gap_scanner_frames_by_silence(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner("zebra-ds")
    with DeviceHub() as hub:
        add(hub, "scanner", scanner.path, "zebra-ds")
        scanner.scan("RR287043775IN")
        got = collect_until(hub, lambda got: len(got) >= 1)
        scanner.scan("RB123456785GB")
        collect_until(hub, lambda got: len(got) >= 2, into=got)
    assert [s.data for s in of_kind(got, "scan")] == ["RR287043775IN", "RB123456785GB"]


def test_sorter_lane_commands_acks_and_full_lanes(pty_bench: PtyBench) -> None:
    sorter = pty_bench.sorter()
    with DeviceHub() as hub:
        port = add(hub, "sorter", sorter.path, "generic-divert")
        assert hub.send("sorter", port.codec.lane_command("P1", 2))
        got = collect_until(hub, lambda got: len(got) >= 1)
        sorter.send_full(2)
        collect_until(hub, lambda got: len(got) >= 2, into=got)
    ack, full = (message for _, message in got)
    assert isinstance(ack, SorterAck) and (ack.parcel_id, ack.bin, ack.accepted) == ("P1", 2, True)
    assert isinstance(full, LaneFull) and (full.bin, full.full) == (2, True)
    assert [(c.parcel_id, c.bin) for c in sorter.commands] == [("P1", "2")]


def test_one_device_down_does_not_stop_the_others(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner()
    scale = pty_bench.scale("mt-sics", weight_kg=0.5)
    with DeviceHub() as hub:
        add(hub, "scanner", scanner.path, "generic-scanner")
        add(hub, "scale", scale.path, "mt-sics", poll_period_ms=POLL_PERIOD_MS)
        scale.unplug()
        scanner.scan("STILL-HERE")
        got = collect_until(hub, lambda got: len(of_kind(got, "scan")) >= 1)
        assert hub.states()["scale"]["state"] == "disconnected"
        assert of_kind(got, "scan")[0].data == "STILL-HERE"


def test_a_port_closed_behind_the_hubs_back_does_not_stop_the_others(
        pty_bench: PtyBench) -> None:
    # select() refuses a closed fd (epoll forgot one silently): the hub must recover, not raise.
    scanner = pty_bench.scanner()
    scale = pty_bench.scale("mt-sics", weight_kg=0.5)
    with DeviceHub() as hub:
        add(hub, "scanner", scanner.path, "generic-scanner")
        port = add(hub, "scale", scale.path, "mt-sics", poll_period_ms=POLL_PERIOD_MS)
        fd = port.fileno()
        os.close(fd)  # as a driver or a bug might, without the port's own bookkeeping
        try:
            assert hub.poll(0.0) == []
            scanner.scan("STILL-HERE")
            got = collect_until(hub, lambda got: len(of_kind(got, "scan")) >= 1)
            assert of_kind(got, "scan")[0].data == "STILL-HERE"
        finally:
            os.dup2(os.open(os.devnull, os.O_RDWR), fd)  # for the port's own close()
