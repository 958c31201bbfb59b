"""`edge-agent simulate line` shows its progress on stderr while stdout stays JSON lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from line_harness import AgentProcess

PARCELS = 250
RUN_TIMEOUT_S = 120


def test_simulate_line_reports_progress_while_it_runs(tmp_path: Path):
    out = tmp_path / "line"
    line = subprocess.Popen(
        [sys.executable, "-m", "edge_agent", "simulate", "line", "--parcels", str(PARCELS),
         "--rate", "250", "--out", str(out), "--wait", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    agent = None
    try:
        assert line.stdout is not None
        files = json.loads(line.stdout.readline())
        assert line.stdout.readline().startswith("waiting for an agent")
        agent = AgentProcess(Path(files["config"]), tmp_path / "agent.log").start()
        stdout, stderr = line.communicate(timeout=RUN_TIMEOUT_S)
    finally:
        if line.poll() is None:
            line.kill()
            line.wait()
        if agent is not None:
            agent.ensure_stopped()
    assert line.returncode == 0, stderr
    progress = [row for row in stderr.splitlines() if row.startswith("sent ")]
    assert progress[0].startswith(f"sent   0/{PARCELS}")
    assert any(row.startswith(f"sent 200/{PARCELS}") for row in progress)
    assert progress[-1] == f"sent {PARCELS}/{PARCELS}, lane commands {PARCELS}: done"
    figures = json.loads(stdout.strip().splitlines()[-1])
    assert figures["sent"] == figures["lane_commands"] == PARCELS
