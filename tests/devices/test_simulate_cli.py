"""`edge-agent simulate ...` as a technician runs it: a subprocess printing its pty path."""

from __future__ import annotations

import json
import selectors
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import serial

from edge_agent.cli.main import main

# Starting Python and importing the CLI takes well under this on a loaded 2-core machine.
START_TIMEOUT_S = 10.0
READ_TIMEOUT_S = 3.0


def read_line(proc: subprocess.Popen, timeout_s: float) -> str:
    """One line of the child's stdout, or fail after the deadline instead of hanging."""
    with selectors.DefaultSelector() as selector:
        selector.register(proc.stdout, selectors.EVENT_READ)
        if not selector.select(timeout_s):
            raise AssertionError(f"no output in {timeout_s} s")
    return proc.stdout.readline()


@pytest.fixture
def run_simulate(tmp_path: Path) -> Iterator:
    started: list[subprocess.Popen] = []

    def start(*args: str) -> tuple[subprocess.Popen, dict]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "edge_agent", "simulate", *args, "--json",
             "--link", str(tmp_path / "sim-link")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1,
        )
        started.append(proc)
        return proc, json.loads(read_line(proc, START_TIMEOUT_S))

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    return proc.wait(timeout=START_TIMEOUT_S)


def test_simulated_scale_answers_polls_and_stops_on_sigterm(run_simulate, tmp_path) -> None:
    proc, info = run_simulate("scale", "--profile", "mt-sics", "--weight", "2.5")
    assert info["link"] == str(tmp_path / "sim-link")
    assert info["pty"].startswith("/dev/pts/")
    with serial.Serial(info["link"], timeout=READ_TIMEOUT_S) as port:
        port.write(b"SI\r\n")
        assert port.read_until(b"\r\n") == b"S S      2.500 kg\r\n"
    assert stop(proc) == 0
    assert not (tmp_path / "sim-link").exists()  # the link goes with the device


def test_simulated_unstable_scale(run_simulate) -> None:
    proc, info = run_simulate("scale", "--profile", "and-standard", "--weight", "1",
                              "--unstable")
    with serial.Serial(info["link"], timeout=READ_TIMEOUT_S) as port:
        port.write(b"Q\r\n")
        assert port.read_until(b"\r\n") == b"US,+0001.000 kg\r\n"
    assert stop(proc) == 0


def test_simulated_scanner_sends_stdin_lines(run_simulate) -> None:
    proc, info = run_simulate("scanner")
    with serial.Serial(info["link"], timeout=READ_TIMEOUT_S) as port:
        proc.stdin.write("RB123456785GB\nNOREAD\n")
        proc.stdin.flush()
        assert port.read_until(b"\r\n") == b"RB123456785GB\r\n"
        assert port.read_until(b"\r\n") == b"NOREAD\r\n"
    assert stop(proc) == 0


def test_simulated_sorter_prints_each_lane_command(run_simulate) -> None:
    proc, info = run_simulate("sorter")
    with serial.Serial(info["link"], timeout=READ_TIMEOUT_S) as port:
        port.write(b"DIV P42 3\r\n")
        assert port.read_until(b"\r\n") == b"ACK P42 3\r\n"
    command = json.loads(read_line(proc, READ_TIMEOUT_S))
    assert (command["parcel_id"], command["bin"]) == ("P42", "3")
    assert stop(proc) == 0


def test_simulated_sorter_confirms_when_asked(run_simulate) -> None:
    proc, info = run_simulate("sorter", "--outcome", "sorted")
    with serial.Serial(info["link"], timeout=READ_TIMEOUT_S) as port:
        port.write(b"DIV P42 3\r\n")
        assert port.read_until(b"\r\n") == b"ACK P42 3\r\n"
        assert port.read_until(b"\r\n").startswith(b"SORTED P42 3 20")
    assert stop(proc) == 0


def test_simulated_sorter_driven_sorter_asks_for_each_stdin_parcel(run_simulate) -> None:
    from edge_agent.devices.codec import make_codec
    from edge_agent.devices.profiles import load_profile
    from edge_agent.devices.sorter_host import REPLY

    proc, info = run_simulate("sorter", "--profile", "sorter-host-json")
    codec = make_codec(load_profile("sorter-host-json"))
    with serial.Serial(info["link"], timeout=READ_TIMEOUT_S) as port:
        proc.stdin.write("T1 RB123456785GB 1.5 300x200x100\nbad line\n")
        proc.stdin.flush()
        header = port.read(12)
        [request] = codec.feed(header + port.read(int.from_bytes(header[8:], "big")), 0)
        assert (request.tracking, request.barcodes, request.weight_kg, request.width_mm) == (
            "T1", ("RB123456785GB",), 1.5, 200.0)
        port.write(codec.host_message(REPLY, request.seq, {
            "tracking": "T1", "chutes": [2], "fallback": 4, "barcode": "RB123456785GB",
            "late": False}))
        reply = json.loads(read_line(proc, READ_TIMEOUT_S))
        assert (reply["seq"], reply["chutes"], reply["fallback"]) == (request.seq, [2], 4)
        result = port.read(12)
        assert result[3] == 0x12  # then it reports the parcel's result
    assert stop(proc) == 0


def test_unknown_simulated_profile_is_refused(capsys) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["simulate", "scale", "--profile", "no-such-scale"])
    assert exit_info.value.code == 2
    assert "no-such-scale" in capsys.readouterr().err


@pytest.mark.parametrize("profile", ["generic-dws", "cubiscan-style"])
def test_simulated_dws_unit_sends_a_record_per_stdin_line(run_simulate, profile) -> None:
    from edge_agent.devices.codec import make_codec
    from edge_agent.devices.profiles import load_profile

    proc, info = run_simulate("dws", "--profile", profile)
    assert info["device"] == "dws"
    codec = make_codec(load_profile(profile))
    with serial.Serial(info["link"], timeout=READ_TIMEOUT_S) as port:
        proc.stdin.write("RB123456785GB,LP1 1.25 300x200x100\nnot a record\nNOREAD 2 \n")
        proc.stdin.flush()
        first = codec.feed(port.read_until(b"\r\n"), 0)
        second = codec.feed(port.read_until(b"\r\n"), 0)
    (measured,), (unmeasured,) = first, second
    want_labels = ("RB123456785GB", "LP1") if profile == "generic-dws" else ()
    assert (measured.barcodes, measured.weight_kg) == (want_labels, 1.25)
    assert (measured.length_mm, measured.width_mm, measured.height_mm) == (300.0, 200.0, 100.0)
    assert (unmeasured.barcodes, unmeasured.no_read, unmeasured.weight_kg) == ((), True, 2.0)
    assert unmeasured.length_mm is None
    assert stop(proc) == 0


@pytest.mark.parametrize(
    ("line", "parsed"),
    [
        ("LP1 1.5 300x200x100", (["LP1"], 1.5, (300.0, 200.0, 100.0))),
        ("RB1,LP1 0.8", (["RB1", "LP1"], 0.8, None)),
        ("NOREAD 2 10X20X30", ([], 2.0, (10.0, 20.0, 30.0))),
    ],
)
def test_dws_stdin_lines(line, parsed) -> None:
    from edge_agent.cli.simulate_cmd import parse_dws_line

    assert parse_dws_line(line) == parsed


@pytest.mark.parametrize("line", ["LP1", "LP1 heavy", "LP1 1 300x200", "LP1 1 2 3 4"])
def test_dws_stdin_lines_that_are_not_records(line) -> None:
    from edge_agent.cli.simulate_cmd import parse_dws_line

    with pytest.raises(ValueError):
        parse_dws_line(line)


def test_simulated_dws_unit_on_the_network_serves_its_records(run_simulate) -> None:
    import socket

    from edge_agent.devices.codec import make_codec
    from edge_agent.devices.profiles import load_profile
    from edge_agent.simulation.local_broker import free_port

    port = free_port()
    proc, info = run_simulate("dws", "--tcp", f"127.0.0.1:{port}")
    assert info["url"] == f"tcp://127.0.0.1:{port}"
    codec = make_codec(load_profile("generic-dws"))
    with socket.create_connection(("127.0.0.1", port), timeout=READ_TIMEOUT_S) as link:
        # The simulator takes the connection on its own thread: a record typed before that goes
        # nowhere (as from a unit whose link is down), so type one until a record arrives.
        link.settimeout(0.2)
        data = b""
        deadline = time.monotonic() + START_TIMEOUT_S
        while b"\n" not in data and time.monotonic() < deadline:
            proc.stdin.write("LP1 1.25 300x200x100\n")
            proc.stdin.flush()
            try:
                while b"\n" not in data:
                    chunk = link.recv(4096)
                    assert chunk, "the simulator closed the link"
                    data += chunk
            except TimeoutError:
                continue
    record = codec.feed(data, 0)[0]
    assert (record.barcodes, record.weight_kg, record.height_mm) == (("LP1",), 1.25, 100.0)
    assert stop(proc) == 0


def test_simulate_refuses_a_network_address_that_is_not_one(capsys) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["simulate", "dws", "--tcp", "dws.local:4001"])
    assert exited.value.code == 2
    assert "not an IP address" in capsys.readouterr().err
