"""The supervised port's raw tap: what `diag capture` is built on, so a capture reads and stamps
bytes exactly as the agent does."""

from __future__ import annotations

from support.pty_devices import PtyBench, collect_until, of_kind

from edge_agent.devices.hub import DeviceHub
from edge_agent.devices.port import SupervisedPort
from edge_agent.devices.profiles import load_profile


def test_the_tap_gets_every_chunk_as_read_with_the_stamp_its_messages_carry(pty_bench: PtyBench):
    scanner = pty_bench.scanner()
    chunks: list[tuple[bytes, int]] = []
    with DeviceHub() as hub:
        port = hub.add(SupervisedPort("scanner", scanner.path, load_profile("generic-scanner")))
        port.tap = lambda chunk, ns: chunks.append((chunk, ns))
        scanner.scan("LP0001")
        scanner.scan("LP0002")
        scans = of_kind(collect_until(hub, lambda got: len(of_kind(got, "scan")) >= 2), "scan")
    assert [scan.data for scan in scans] == ["LP0001", "LP0002"]
    joined = b"".join(chunk for chunk, _ in chunks)
    assert b"LP0001" in joined and b"LP0002" in joined
    stamps = {ns for _, ns in chunks}
    assert all(scan.received_ns in stamps for scan in scans)
