"""`diag capture` records a simulated device's bytes; `profiles decode --file` replays them."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import serial

from edge_agent.cli.main import main

WAIT_S = 5.0
# Two parcels pass a presentation scanner at least this far apart: more than the zebra-ds
# profile's 50 ms idle gap, so each read is its own frame on the line.
PARCEL_SPACING_S = 0.15


def _decoded(capsys, profile: str, path: Path) -> list[dict]:
    assert main(["profiles", "decode", profile, "--file", str(path)]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_capture_a_polled_scale_and_replay_it(capsys, pty_bench, tmp_path):
    pty_bench.scale("mt-sics", weight_kg=1.25)
    out = tmp_path / "scale.bin"
    code = main(["diag", "capture", "--port", str(pty_bench.link("scale")), "--profile",
                 "mt-sics", "--out", str(out), "--bytes", "100", "--seconds", "5"])
    assert code == 0
    assert "replay: edge-agent profiles decode mt-sics" in capsys.readouterr().out
    assert out.stat().st_size >= 100
    weights = [m for m in _decoded(capsys, "mt-sics", out) if m["kind"] == "weight"]
    assert len(weights) >= 3
    assert {m["value_kg"] for m in weights} == {1.25}


def test_idle_gap_reads_split_only_with_their_times(capsys, pty_bench, tmp_path):
    scanner = pty_bench.scanner("zebra-ds")
    out = tmp_path / "scanner.bin"
    codes = ["RB123456785GB", "RR287043775IN"]

    def two_parcels() -> None:
        deadline = time.monotonic() + WAIT_S
        while not (out.exists() and out.with_name("scanner.bin.times").exists()):
            if time.monotonic() > deadline:
                return
            threading.Event().wait(0.01)  # the capture opens its files once the port is open
        scanner.scan(codes[0])
        threading.Event().wait(PARCEL_SPACING_S)  # the belt's spacing between two parcels
        scanner.scan(codes[1])

    helper = threading.Thread(target=two_parcels)
    helper.start()
    code = main(["diag", "capture", "--port", str(pty_bench.link("scanner")), "--profile",
                 "zebra-ds", "--out", str(out), "--bytes", str(sum(map(len, codes))),
                 "--seconds", "5", "--listen-only"])
    helper.join()
    assert code == 0
    capsys.readouterr()
    assert [m["data"] for m in _decoded(capsys, "zebra-ds", out)] == codes

    # Without the times beside it, the same bytes are one glued read: the times matter.
    out.with_name("scanner.bin.times").unlink()
    assert [m["data"] for m in _decoded(capsys, "zebra-ds", out)] == ["".join(codes)]


def test_bad_times_file_names_the_line(capsys, tmp_path):
    out = tmp_path / "c.bin"
    out.write_bytes(b"S S      1.00 kg\r\n")
    out.with_name("c.bin.times").write_text('{"offset": 0, "t_ms": 0}\n{"offset": 99}\n')
    assert main(["profiles", "decode", "mt-sics", "--file", str(out)]) == 2
    assert "c.bin.times:2" in capsys.readouterr().err


def test_capture_of_a_busy_port_and_a_missing_port(capsys, pty_bench, tmp_path):
    pty_bench.scale("mt-sics")
    link = pty_bench.link("scale")
    holder = serial.Serial(os.path.realpath(link), exclusive=True)
    try:
        code = main(["diag", "capture", "--port", str(link), "--profile", "mt-sics",
                     "--out", str(tmp_path / "x.bin"), "--seconds", "1"])
    finally:
        holder.close()
    assert code == 2
    assert "busy" in capsys.readouterr().err
    assert not (tmp_path / "x.bin").exists()

    code = main(["diag", "capture", "--port", str(tmp_path / "gone"), "--profile", "mt-sics",
                 "--out", str(tmp_path / "y.bin"), "--seconds", "1"])
    assert code == 2
    assert "diag ports" in capsys.readouterr().err


def test_a_device_unplugged_mid_capture_ends_it_keeping_what_was_read(capsys, pty_bench,
                                                                       tmp_path):
    scanner = pty_bench.scanner("generic-scanner")
    out = tmp_path / "scanner.bin"

    def scan_then_unplug() -> None:
        deadline = time.monotonic() + WAIT_S
        while not out.exists() and time.monotonic() < deadline:
            threading.Event().wait(0.01)  # the capture opens its file once the port is open
        scanner.scan("RB123456785GB")
        while (not out.exists() or out.stat().st_size == 0) and time.monotonic() < deadline:
            threading.Event().wait(0.01)
        scanner.unplug()

    helper = threading.Thread(target=scan_then_unplug)
    helper.start()
    started = time.monotonic()
    code = main(["diag", "capture", "--port", str(pty_bench.link("scanner")), "--profile",
                 "generic-scanner", "--out", str(out), "--seconds", str(WAIT_S * 2)])
    helper.join()
    assert code == 0
    assert "the device went away" in capsys.readouterr().out
    assert time.monotonic() - started < WAIT_S * 2  # ended by the unplug, not the time limit
    assert [m["data"] for m in _decoded(capsys, "generic-scanner", out)] == ["RB123456785GB"]


def test_listen_only_sends_a_polled_scale_nothing(capsys, pty_bench, tmp_path):
    pty_bench.scale("mt-sics", weight_kg=1.25)  # answers only when asked
    out = tmp_path / "quiet.bin"
    code = main(["diag", "capture", "--port", str(pty_bench.link("scale")), "--profile",
                 "mt-sics", "--out", str(out), "--seconds", "1", "--listen-only"])
    assert code == 1  # nothing read: nothing was asked
    assert "0 bytes in 0 reads" in capsys.readouterr().out
    assert out.exists() and out.stat().st_size == 0
