"""The supervised port's raw tap (`on_bytes`) and listen-only mode (`quiet`): what `diag
capture` is built on, so a capture reads and stamps bytes exactly as the agent does."""

from __future__ import annotations

import time

from support.pty_devices import PtyBench, collect_until, of_kind, wait_until

from edge_agent.devices.hub import DeviceHub
from edge_agent.devices.port import SupervisedPort
from edge_agent.devices.profiles import load_profile

# Several of mt-sics' poll periods: a quiet port that polled would have done so by then.
QUIET_WINDOW_S = 1.0


def test_the_tap_gets_every_chunk_as_read_with_the_stamp_its_messages_carry(pty_bench: PtyBench):
    scanner = pty_bench.scanner()
    chunks: list[tuple[bytes, int]] = []
    with DeviceHub() as hub:
        hub.add(SupervisedPort("scanner", scanner.path, load_profile("generic-scanner"),
                               on_bytes=lambda chunk, ns: chunks.append((chunk, ns))))
        scanner.scan("LP0001")
        scanner.scan("LP0002")
        scans = of_kind(collect_until(hub, lambda got: len(of_kind(got, "scan")) >= 2), "scan")
    assert [scan.data for scan in scans] == ["LP0001", "LP0002"]
    joined = b"".join(chunk for chunk, _ in chunks)
    assert b"LP0001" in joined and b"LP0002" in joined
    stamps = {ns for _, ns in chunks}
    assert all(scan.received_ns in stamps for scan in scans)


def test_a_quiet_port_sends_a_polled_scale_nothing_and_a_normal_one_polls(pty_bench: PtyBench):
    pty_bench.scale("mt-sics", weight_kg=1.25)
    profile = load_profile("mt-sics")
    assert profile.polling.period_ms  # a polled scale: it says nothing unless asked
    with DeviceHub() as hub:
        quiet = hub.add(SupervisedPort("scale", pty_bench.link("scale"), profile, quiet=True))
        assert quiet.connected
        end = time.monotonic() + QUIET_WINDOW_S
        while time.monotonic() < end:
            hub.poll(end - time.monotonic())
        assert (quiet.counters["bytes_out"], quiet.counters["polls"]) == (0, 0)
        assert quiet.counters["bytes_in"] == 0  # and so it said nothing
    with DeviceHub() as hub:
        normal = hub.add(SupervisedPort("scale", pty_bench.link("scale"), profile))
        wait_until(lambda: normal.counters["frames"] > 0, hub=hub)
        assert normal.counters["polls"] > 0 and normal.counters["bytes_out"] > 0
