"""The technician's tools on a device on the network: `diag watch`, `diag capture` and the
doctor's link checks (reachable, refused, timed out, port in use), against DWS simulators on
loopback TCP."""

from __future__ import annotations

import json
import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.device_links import listening_dws_unit
from support.waiting import wait_for

from edge_agent.cli.main import main
from edge_agent.devices.simulators import DwsSimulator
from edge_agent.simulation.local_broker import free_port

LOOPBACK = "127.0.0.1"


@pytest.fixture
def unit() -> Iterator[DwsSimulator]:
    """A generic DWS unit serving its records on a free loopback port."""
    yield from listening_dws_unit()


def measure_once_linked(unit: DwsSimulator, connection: int = 1) -> threading.Thread:
    """A parcel through the unit as soon as the tool under test has made its `connection`th
    link to it."""

    def parcel() -> None:
        wait_for(lambda: unit.plugged and unit.connections >= connection,
                 what="the tool linked to the unit")
        unit.measure(["LP00000000000017"], 4.2, (300.0, 200.0, 150.0))

    helper = threading.Thread(target=parcel)
    helper.start()
    return helper


def test_watch_decodes_a_record_over_tcp(capsys, unit: DwsSimulator) -> None:
    helper = measure_once_linked(unit)
    code = main(["diag", "watch", "--port", unit.url, "--profile", "generic-dws", "--json",
                 "--count", "1", "--seconds", "10"])
    helper.join()
    assert code == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    record = lines[0]
    assert (record["kind"], record["barcodes"], record["height_mm"]) == (
        "dws_record", ["LP00000000000017"], 150.0)
    assert lines[-1]["summary"]["device"]["state"] == "connected"


def test_watch_refuses_an_address_that_is_not_one(capsys) -> None:
    code = main(["diag", "watch", "--port", "tcp://dws.local:4001", "--profile", "generic-dws",
                 "--seconds", "1"])
    assert code == 2
    assert "'dws.local' is not an IP address" in capsys.readouterr().err


def test_watch_says_a_refused_device_at_once(capsys) -> None:
    closed = free_port()
    code = main(["diag", "watch", "--port", f"tcp://{LOOPBACK}:{closed}", "--profile",
                 "generic-dws", "--seconds", "30"])
    assert code == 2
    error = capsys.readouterr().err
    assert f"connection refused by {LOOPBACK}:{closed}" in error and "doctor" in error


def test_capture_records_the_bytes_and_replays_them(capsys, unit: DwsSimulator,
                                                    tmp_path: Path) -> None:
    out = tmp_path / "dws.bin"
    helper = measure_once_linked(unit)
    code = main(["diag", "capture", "--port", unit.url, "--profile", "generic-dws", "--out",
                 str(out), "--bytes", "20", "--seconds", "10", "--listen-only"])
    helper.join()
    assert code == 0, capsys.readouterr()
    capsys.readouterr()
    assert unit.received == b""  # --listen-only: nothing sent
    assert main(["profiles", "decode", "generic-dws", "--file", str(out)]) == 0
    decoded = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [m["barcodes"] for m in decoded if m["kind"] == "dws_record"] == [["LP00000000000017"]]
    assert out.with_name("dws.bin.times").exists()


def doctor(capsys, tmp_path: Path, device: str) -> tuple[int, dict[str, dict]]:
    state_dir = tmp_path / "state"
    state_dir.mkdir(exist_ok=True)
    config = tmp_path / "agent.toml"
    config.write_text(f'site = "HKG1"\nline = "L1"\nstate_dir = "{state_dir}"\n\n'
                      f'[status]\nsocket_path = "{state_dir / "status.sock"}"\n\n'
                      f'[devices.dws]\ntransport = "tcp"\nprofile = "generic-dws"\n{device}\n'
                      "[mqtt]\nenabled = false\n")
    import pwd

    user = pwd.getpwuid(os.getuid()).pw_name
    code = main(["doctor", "--config", str(config), "--service-user", user, "--json"])
    document = json.loads(capsys.readouterr().out)
    return code, {check["name"]: check for check in document["checks"]}


def test_doctor_finds_a_reachable_unit_and_its_records(capsys, unit, tmp_path) -> None:
    helper = measure_once_linked(unit, connection=2)  # the first is the reachability probe
    _, checks = doctor(capsys, tmp_path, f'host = "{LOOPBACK}"\nport = {unit.tcp_port}\n')
    helper.join()
    assert checks["device dws: reachable"]["status"] == "pass"
    assert checks["device dws: answering"]["status"] == "pass", checks["device dws: answering"]


def test_doctor_says_refused(capsys, tmp_path) -> None:
    _, checks = doctor(capsys, tmp_path, f'host = "{LOOPBACK}"\nport = {free_port()}\n')
    check = checks["device dws: reachable"]
    assert check["status"] == "fail" and "refused" in check["detail"]
    assert "device dws: answering" not in checks


def test_doctor_says_timed_out(capsys, tmp_path) -> None:
    listener = socket.socket()  # a full accept queue drops the SYN: no answer at all
    listener.bind((LOOPBACK, 0))
    listener.listen(0)
    fillers = [socket.socket() for _ in range(3)]
    for filler in fillers:
        filler.setblocking(False)
        filler.connect_ex(listener.getsockname())
    try:
        _, checks = doctor(capsys, tmp_path, f'host = "{LOOPBACK}"\n'
                           f"port = {listener.getsockname()[1]}\nconnect_timeout_s = 0.3\n")
    finally:
        for sock in (*fillers, listener):
            sock.close()
    check = checks["device dws: reachable"]
    assert check["status"] == "fail" and "timed out" in check["detail"], check


def test_doctor_says_the_listening_port_is_in_use(capsys, tmp_path) -> None:
    with socket.socket() as holder:
        holder.bind((LOOPBACK, 0))
        holder.listen(1)
        port = holder.getsockname()[1]
        _, checks = doctor(capsys, tmp_path,
                           f'role = "server"\nhost = "{LOOPBACK}"\nport = {port}\n')
    check = checks["device dws: can listen"]
    assert check["status"] == "fail" and "in use" in check["detail"]
    assert f"sport = :{port}" in check["advice"]


def test_doctor_listens_and_hears_a_unit_that_connects(capsys, tmp_path) -> None:
    port = free_port()
    unit = DwsSimulator("generic-dws", name="dws").connect_tcp(LOOPBACK, port)
    unit.start()
    try:
        helper = measure_once_linked(unit)
        _, checks = doctor(capsys, tmp_path,
                           f'role = "server"\nhost = "{LOOPBACK}"\nport = {port}\n')
        helper.join()
    finally:
        unit.stop()
    assert checks["device dws: can listen"]["status"] == "pass"
    assert checks["device dws: answering"]["status"] == "pass", checks["device dws: answering"]
