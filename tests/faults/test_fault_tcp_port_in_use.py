"""A listening port already taken, with the real agent: the line sorts on its other devices.

A scanner+scale line whose scale connects to the agent over TCP (the agent is the server) and
whose sorter the agent reaches over TCP (the agent is the client). Another program holds the
scale's port when the agent starts: the agent says so in the scale's state, keeps sorting (a
parcel without a weight goes to EXCEPTION with its reason, never with a guess), and takes the
port by itself once it is free; then the scale connects and weights arrive again. The sorter's
commands and acknowledgements cross loopback TCP throughout: a sorter profile works unchanged.
"""

from __future__ import annotations

import socket
from pathlib import Path

from line_harness import AgentProcess, wait_for  # on the path through tests/faults/conftest.py

from edge_agent.devices.simulators import ScaleSimulator, ScannerSimulator, SorterSimulator
from edge_agent.runtime.status_server import StatusError, query_status
from edge_agent.simulation.line_sim import write_manifest
from edge_agent.simulation.parcel_mix import SimParcel

LOOPBACK = "127.0.0.1"


def config_text(scanner: Path, scale_port: int, sorter_port: int) -> str:
    return f"""site = "SIM"
line = "TCP1"
state_dir = "state"

[devices.scanner]
port = "{scanner}"
profile = "generic-scanner"

[devices.scale]
transport = "tcp"
role = "server"
host = "{LOOPBACK}"
port = {scale_port}
profile = "mt-sics-continuous"

[devices.sorter]
transport = "tcp"
host = "{LOOPBACK}"
port = {sorter_port}
profile = "generic-divert"

[pairing]
window_ms = 300

[clock]
source = "assume-synchronised"

[mqtt]
enabled = false
"""


def status(state_dir: Path) -> dict:
    try:
        return query_status(state_dir / "status.sock", timeout_s=1.0)
    except StatusError:
        return {}


def device(state_dir: Path, name: str) -> dict:
    return status(state_dir).get("devices", {}).get(name, {})


def test_a_taken_listening_port_leaves_the_line_sorting_and_is_taken_once_free(
        tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    write_manifest(tmp_path, state_dir, [SimParcel(0, "export", code, None, 2.5, {
        "barcode": code, "country": "GB", "postal_code": "SW1A 1AA",
        "declared_weight_kg": 2.5, "service": "standard"})
        for code in ("LP00000000000201", "LP00000000000202")])
    holder = socket.socket()
    holder.bind((LOOPBACK, 0))
    holder.listen(1)
    scale_port = holder.getsockname()[1]
    scanner = ScannerSimulator("generic-scanner", tmp_path / "scanner", name="scanner")
    scale = ScaleSimulator("mt-sics-continuous", name="scale", weight_kg=2.5)
    sorter = SorterSimulator(name="sorter")
    sorter.serve_tcp(LOOPBACK, 0)
    agent = None
    try:
        scanner.start()
        sorter.start()
        config = tmp_path / "agent.toml"
        config.write_text(config_text(scanner.path, scale_port, sorter.tcp_port))
        agent = AgentProcess(config, tmp_path / "agent.log").start()
        wait_for(lambda: device(state_dir, "sorter").get("state") == "connected"
                 and device(state_dir, "scanner").get("state") == "connected",
                 what="scanner and sorter linked")
        taken = wait_for(lambda: "address already in use" in (
            (d := device(state_dir, "scale")).get("last_error") or "") and d,
            what="the scale's port reported taken")
        assert taken["state"] == "disconnected"

        scanner.scan("LP00000000000201")  # sorted without its weight: safely, not guessed
        first = sorter.wait_for_commands(1, timeout_s=30)
        assert len(first) == 1, agent.log_tail()

        holder.close()  # the other program lets go: the agent listens, the scale connects
        scale.connect_tcp(LOOPBACK, scale_port)
        scale.start()
        wait_for(lambda: device(state_dir, "scale").get("state") == "connected",
                 what="the scale linked once its port was free")
        scanner.scan("LP00000000000202")
        both = sorter.wait_for_commands(2, timeout_s=30)
        assert len(both) == 2, agent.log_tail()
        decided = wait_for(lambda: (s := status(state_dir)) and s["counters"].get("parcels") == 2
                           and s, what="both parcels decided")
        assert decided["devices"]["scale"]["counters"]["listen_errors"] >= 1
        lanes = {d["barcode"]: (d["lane"], d["reasons"]) for d in decided["last_decisions"]}
        assert lanes == {"LP00000000000201": ("EXCEPTION", ["no_stable_weight"]),
                         "LP00000000000202": ("EXPORT", [])}
        assert len(sorter.unknown_lines) == 0
        assert agent.terminate() == 0, agent.log_tail()
    finally:
        if agent is not None:
            agent.ensure_stopped()
        holder.close()
        for simulator in (scanner, scale, sorter):
            simulator.stop()
