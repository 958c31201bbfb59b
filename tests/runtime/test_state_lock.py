"""One process at a time owns the state directory: a second `edge-agent run` with the same
config is refused before it reads or writes anything under it (the running agent's journal and
outbox stay exactly as they were, and its events still survive a kill -9)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from line_harness import AgentProcess, wait_for, yrd_parcel

from edge_agent.config import OutboxConfig
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.state_lock import LOCK_FILE, StateDirBusy, StateDirLock
from edge_agent.sync.journal import JOURNAL_PREFIX
from edge_agent.sync.outbox import Outbox

SECOND_RUN_TIMEOUT_S = 30.0


def test_a_second_lock_is_refused_naming_the_holder_and_free_again_after_release(tmp_path):
    first = StateDirLock.acquire(tmp_path / "state", "edge-agent run")
    with pytest.raises(StateDirBusy) as refused:
        StateDirLock.acquire(tmp_path / "state", "manifest import")
    assert f"pid {os.getpid()}, edge-agent run" in str(refused.value)
    first.release()
    with StateDirLock.acquire(tmp_path / "state", "manifest import"):
        assert (tmp_path / "state" / LOCK_FILE).read_text() == (
            f"pid {os.getpid()}, manifest import\n")


def _state_files(state_dir: Path) -> dict[str, tuple[int, int, int]]:
    """name -> (inode, size, mtime_ns) of the outbox's files: any write or replacement shows."""
    return {path.name: (path.stat().st_ino, path.stat().st_size, path.stat().st_mtime_ns)
            for path in state_dir.iterdir()
            if path.name.startswith(JOURNAL_PREFIX) or path.name.startswith("outbox.sqlite3")}


def _open_deleted_files(pid: int) -> list[str]:
    fds = Path(f"/proc/{pid}/fd")
    return [os.readlink(fd) for fd in fds.iterdir()
            if os.readlink(fd).endswith("(deleted)")]


def test_second_run_leaves_the_running_agents_outbox_alone(tmp_path: Path):
    parcel = yrd_parcel(1)
    sim = LineSimulation(tmp_path / "line", [parcel], rate=50.0)
    sim.prepare()
    agent = AgentProcess(sim.config_path, sim.out_dir / "agent.log").start()
    try:
        assert sim.wait_for_agent(), agent.log_tail()
        before = _state_files(sim.state_dir)
        assert any(name.startswith(JOURNAL_PREFIX) for name in before)

        second = subprocess.run(
            [sys.executable, "-m", "edge_agent", "run", "--config", str(sim.config_path)],
            capture_output=True, text=True, timeout=SECOND_RUN_TIMEOUT_S,
        )
        assert second.returncode == 2
        assert f"in use by another process (pid {agent.process.pid}, edge-agent run)" in (
            second.stderr)
        assert "journal_replayed" not in second.stderr
        assert _state_files(sim.state_dir) == before  # nothing replayed, rotated or appended
        assert _open_deleted_files(agent.process.pid) == []

        # The first agent still stores what it decides: a parcel, its lane command, kill -9.
        sim.send_parcel(parcel)
        wait_for(lambda: sim.results.commands, what="the lane command")
        agent.kill()
    finally:
        agent.ensure_stopped()
        sim.close()
    outbox = Outbox.open(sim.state_dir, OutboxConfig())
    try:
        events = [record.payload for record in outbox.pending(100)]
    finally:
        outbox.close()
    parcel_events = [event for event in events if "parcel_id" in event]
    assert [event["parcel_id"] for event in parcel_events] == [
        sim.results.commands[0]["parcel_id"]]
    # One unclean restart (the kill -9 just now), none from the refused second start.
    assert [event.get("alarm") for event in events if "alarm" in event] == ["unclean_restart"]
