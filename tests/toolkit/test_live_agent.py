"""The toolkit beside a running agent: the real `edge-agent run` process on a simulated line
with a real mosquitto. `diag status --follow`, `doctor` (ports held by the agent are its own,
not a fault) and `diag bundle` (status, outbox and last decisions in the archive)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from line_harness import AgentProcess, wait_for
from support.broker import MosquittoBroker

from edge_agent.cli.main import main
from edge_agent.runtime.status_server import query_status
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import parcel_mix

PARCELS = 20


@pytest.fixture
def running_line(tmp_path: Path, mosquitto: MosquittoBroker):
    sim = LineSimulation(tmp_path / "line", parcel_mix(PARCELS, seed=3), rate=100,
                         broker=f"{mosquitto.host}:{mosquitto.port}")
    sim.prepare()
    agent = AgentProcess(sim.config_path, sim.out_dir / "agent.log").start()
    try:
        assert sim.wait_for_agent(), agent.log_tail()
        sim.drive()
        assert sim.wait_for_lane_commands() == PARCELS, agent.log_tail()
        wait_for(lambda: query_status(sim.state_dir / "status.sock")["counters"]["parcels"]
                 == PARCELS, what="status counting every parcel")
        yield sim
    finally:
        agent.ensure_stopped()
        sim.close()


def _members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive) as tar:
        return {Path(m.name).name: tar.extractfile(m).read() for m in tar.getmembers()}


def test_status_follow_doctor_and_bundle_beside_the_agent(capsys, running_line, tmp_path):
    sim = running_line
    config = str(sim.config_path)

    assert main(["diag", "status", "--config", config, "--follow", "--count", "2",
                 "--interval", "0.1"]) == 0
    out = capsys.readouterr().out
    blocks = [b for b in out.split("-- ") if b.strip()]
    assert len(blocks) == 2  # not a terminal: plain blocks, one per refresh
    assert "\x1b[" not in out
    assert all("DECIDED" in block and "DEVICE" in block for block in blocks)
    assert max(len(line) for line in out.splitlines()) <= 80

    assert main(["diag", "status", "--config", config, "--follow", "--count", "2",
                 "--interval", "0.1", "--json"]) == 0
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [d["counters"]["parcels"] for d in documents] == [PARCELS, PARCELS]

    code = main(["doctor", "--config", config, "--json"])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    for name in ("scanner", "scale", "sorter"):
        assert checks[f"device {name}: port free"]["status"] == "pass"
        assert "running agent" in checks[f"device {name}: port free"]["detail"]
        assert checks[f"device {name}: answering"]["status"] == "pass"
    assert checks["broker ACL"]["status"] == "pass"
    assert code in (1, 2)  # no systemd here (warn); the service user may not exist

    # Asked at the wrong socket, the doctor still recognises the agent holding the ports.
    main(["doctor", "--config", config, "--json", "--socket", str(tmp_path / "wrong.sock")])
    checks = {c["name"]: c for c in json.loads(capsys.readouterr().out)["checks"]}
    held = checks["device scale: port free"]
    assert held["status"] == "fail" and "held by the agent" in held["detail"]
    assert "--socket" in held["advice"]

    archive = tmp_path / "support.tar.gz"
    assert main(["diag", "bundle", "--config", config, "--out", str(archive),
                 "--no-doctor"]) == 0
    files = _members(archive)
    status = json.loads(files["status.json"])
    assert len(status["last_decisions"]) > 0
    assert status["counters"]["parcels"] == PARCELS
    assert {d["state"] for d in status["devices"].values()} == {"connected"}
    assert "depth" in status["outbox"]
    outbox = json.loads(files["outbox.json"])
    assert outbox["present"] is True
    manifest = json.loads(files["manifest.json"])
    assert manifest["versions"]["edge-agent"]
    assert "journal.jsonl" in manifest["not_collected"]  # no systemd journal in this container


def test_follow_when_no_agent_answers(capsys, tmp_path):
    code = main(["diag", "status", "--socket", str(tmp_path / "none.sock"), "--follow",
                 "--count", "2", "--interval", "0.05"])
    out = capsys.readouterr().out
    assert code == 1
    assert out.count("no agent answering") == 2


def test_follow_on_a_terminal_redraws_in_place(tmp_path):
    """stdout on a real pseudo-terminal: the view takes the alternate screen (each refresh a
    whole-screen redraw), gives it back at the end, and says no agent answers."""
    import os
    import pty
    import subprocess
    import sys

    master, slave = pty.openpty()
    process = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "diag", "status", "--socket",
         str(tmp_path / "none.sock"), "--follow", "--count", "3", "--interval", "0.05"],
        stdout=slave, stderr=subprocess.DEVNULL)
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed its side
            break
        if not chunk:
            break
        chunks.append(chunk)
    os.close(master)
    assert process.wait(10) == 1
    out = b"".join(chunks).decode()
    assert out.count("\x1b[?1049h") == 1 and out.count("\x1b[?1049l") == 1
    assert out.index("\x1b[?1049h") < out.index("no agent answering") < out.index("\x1b[?1049l")
