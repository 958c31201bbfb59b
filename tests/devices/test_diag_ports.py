"""`edge-agent diag ports`: serial ports with their stable by-id names."""

from __future__ import annotations

import json

from support.pty_devices import PtyBench

from edge_agent.cli.main import main
from edge_agent.devices import discovery


def test_by_id_links_are_joined_to_their_devices(pty_bench: PtyBench) -> None:
    scanner = pty_bench.scanner()
    (pty_bench.by_id / "usb-Gone_Adapter-if00").symlink_to("/dev/does-not-exist")
    ports = {port.device: port for port in discovery.list_serial_ports(pty_bench.by_id)}
    assert ports[scanner.slave_path].by_id == [str(scanner.path)]
    assert all("Gone_Adapter" not in link for port in ports.values() for link in port.by_id)


def test_missing_by_id_directory_means_no_links(tmp_path) -> None:
    assert discovery.by_id_links(tmp_path / "absent") == {}


def test_diag_ports_json_lists_the_simulated_adapter(pty_bench, monkeypatch, capsys) -> None:
    # /dev/serial/by-id belongs to udev; the test points the scan at its own directory.
    monkeypatch.setattr(discovery, "BY_ID_DIR", pty_bench.by_id)
    scale = pty_bench.scale()
    assert main(["diag", "ports", "--json"]) == 0
    listed = {port["device"]: port for port in json.loads(capsys.readouterr().out)}
    assert listed[scale.slave_path]["by_id"] == [str(scale.path)]


def test_diag_ports_human_output_shows_the_link(pty_bench, monkeypatch, capsys) -> None:
    monkeypatch.setattr(discovery, "BY_ID_DIR", pty_bench.by_id)
    scale = pty_bench.scale()
    assert main(["diag", "ports"]) == 0
    lines = capsys.readouterr().out.splitlines()
    device_line = next(i for i, line in enumerate(lines) if line.startswith(scale.slave_path))
    assert lines[device_line + 1].strip() == str(scale.path)


def test_a_usb_adapters_own_strings_are_shown_escaped(monkeypatch, capsys) -> None:
    # Manufacturer and product come from the adapter's descriptors: any device can say anything.
    hostile = discovery.SerialPortInfo(
        device="/dev/ttyUSB0", manufacturer="\x1b]0;owned\x07", product="\x1b[2JAdapter",
        vid=0x0403, pid=0x6001, by_id=["/dev/serial/by-id/usb-\x1b[2J-if00"])
    monkeypatch.setattr(discovery, "list_serial_ports", lambda: [hostile])
    assert main(["diag", "ports"]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;owned\\x07 \\x1b[2JAdapter" in out
