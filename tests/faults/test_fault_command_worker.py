"""The command worker's liveness, on the real agent process while parcels flow.

Central's commands are prepared in a process of the agent's own (runtime.command_worker). Here
that process is killed (SIGKILL) and hung (SIGSTOP), idle and in the middle of a command: the
agent notices within seconds (its status, an alarm at central), answers the command in hand
with a reason (`internal`, never silence), restarts the worker, and takes commands again; the
line sorts every parcel throughout, the decision loop's process is the same, and the systemd
watchdog's view (the status snapshot, renewed beside its ping) never goes stale.
"""

from __future__ import annotations

import itertools
import os
import signal
import time
from pathlib import Path

import pytest
from hostile_support import CommandSender, ParcelFlow, dated_command, resident_mb
from line_harness import AgentProcess, CentralClient, wait_for
from running_line import RunningLine, fault_line

from edge_agent.runtime.status_server import query_status
from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import parcel_mix

RATE = 40.0
# The worker's time budget in this test's agent (mqtt.command_time_budget_s).
BUDGET_S = 1.0
# How soon the agent must notice a dead or hung worker that is idle: the inbox checks every
# second, an idle worker is asked to answer every 2 s and has 5 s to (runtime.command_worker).
NOTICE_S = 15.0
# A new worker is a new interpreter importing the agent: seconds on a busy machine.
RESTART_S = 30.0


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory):
    def with_budget(sim: LineSimulation) -> None:
        sim.config_path.write_text(sim.config_path.read_text().replace(
            "[mqtt]\n", f"[mqtt]\ncommand_time_budget_s = {BUDGET_S}\n"))

    def clients(line: RunningLine) -> None:
        line.sim.commands = line.client(CentralClient)
        line.sim.sender = line.connected(CommandSender(
            line.broker.host, line.broker.port, line.prefix, client_id="worker-sender"))
        line.sim.position = 0

    with fault_line(tmp_path_factory.mktemp("worker"), parcel_mix(2000, seed=13), rate=RATE,
                    configure=with_budget, connect=clients) as running:
        wait_for(lambda: _commands(running.sim)["state"] == "running", timeout_s=RESTART_S,
                 what="the command worker running")
        yield running.sim, running.agent


def _status(sim: LineSimulation) -> dict:
    return query_status(sim.state_dir / "status.sock")


def _commands(sim: LineSimulation) -> dict:
    return _status(sim)["commands"]


def _worker_pid(sim: LineSimulation, agent: AgentProcess) -> int:
    pid = _commands(sim)["pid"]
    assert isinstance(pid, int) and pid != agent.process.pid
    # The worker is the agent's own child: the only process this test signals besides those
    # it started itself.
    assert _proc_stat(pid)[1] == str(agent.process.pid)
    return pid


def _proc_stat(pid: int) -> list[str]:
    """/proc/PID/stat's fields after the command name: state, parent pid, ..."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def _back_running(sim: LineSimulation, restarts: int) -> dict:
    return wait_for(lambda: (c := _commands(sim))["state"] == "running"
                    and c["restarts"] == restarts and c, timeout_s=RESTART_S,
                    what=f"the worker running again after {restarts} restart(s)")


def _reply(sim: LineSimulation, correlation: str, timeout_s: float = 30.0) -> dict:
    return wait_for(lambda: sim.commands.replies.get(correlation.encode()),
                    timeout_s=timeout_s, what=f"the reply to {correlation}")


def _code(reply: dict) -> str:
    return reply["error"]["code"] if reply["error"] else "ok"


def _watch_snapshots(sim: LineSimulation, until) -> list[float]:
    """The snapshot's uptime, sampled until `until()` is true: its gaps show whether the
    decision loop (which renews it beside the watchdog ping) kept turning."""
    samples = []
    deadline = time.monotonic() + RESTART_S
    while not until() and time.monotonic() < deadline:
        samples.append(_status(sim)["agent"]["uptime_s"])
        time.sleep(0.05)  # sampling the snapshot's age, not synchronising
    return samples


def _sorted_throughout(sim: LineSimulation, agent: AgentProcess, flow: ParcelFlow,
                       pid: int) -> None:
    flow.stop()
    sim.position = flow.position
    flow.wait_all_commanded()
    assert agent.process.poll() is None and agent.process.pid == pid, agent.log_tail()


def test_a_killed_idle_worker_is_noticed_and_restarted_while_the_line_sorts(line):
    sim, agent = line
    pid, restarts = agent.process.pid, _commands(sim)["restarts"]
    with ParcelFlow(sim, RATE, start=sim.position) as flow:
        worker = _worker_pid(sim, agent)
        print(f"\n[worker] resident: agent {resident_mb(pid):.1f} MB, worker "
              f"{resident_mb(worker):.1f} MB")
        killed_at = time.monotonic()
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: _commands(sim)["restarts"] == restarts + 1, timeout_s=NOTICE_S,
                 what="the agent noticing its worker died")
        noticed_s = time.monotonic() - killed_at
        snapshots = _watch_snapshots(sim, lambda: _commands(sim)["state"] == "running")
        after = _back_running(sim, restarts + 1)
        assert after["pid"] != worker
        assert "exited" in after["last_failure"]
        assert sim.commands.request("ping", "after-kill")["ok"]
        _sorted_throughout(sim, agent, flow, pid)
    print(f"\n[worker] killed while idle: noticed in {noticed_s:.1f} s")
    failed = wait_for(lambda: sim.central.alarms("command_worker_failed"),
                      what="command_worker_failed at central")
    assert failed[-1]["details"]["pid"] == worker
    wait_for(lambda: sim.central.alarms("command_worker_restarted"),
             what="command_worker_restarted at central")
    assert max((b - a for a, b in itertools.pairwise(snapshots)), default=0) < 2.0


def test_a_worker_hung_on_a_command_is_replaced_and_the_command_answered(line):
    sim, agent = line
    pid, restarts = agent.process.pid, _commands(sim)["restarts"]
    blocked = {"lane": "ZHUHAI", "state": "blocked"}
    with ParcelFlow(sim, RATE, start=sim.position) as flow:
        worker = _worker_pid(sim, agent)
        os.kill(worker, signal.SIGSTOP)  # hangs it; the agent's SIGKILL ends it
        sent_at = time.monotonic()
        reply = _reply(sim, sim.sender.send("lanes.set", dated_command("hung-1", blocked)))
        answered_s = time.monotonic() - sent_at
        assert _code(reply) == "internal", reply
        assert "time budget" in reply["error"]["message"]
        # Meanwhile commands are answered: taken once the worker is back, or `busy` (with
        # the reason) while it waits for its restart; never dropped.
        early = _reply(sim, sim.sender.send("ping", dated_command("during-restart")))
        assert _code(early) in ("ok", "busy"), early
        if _code(early) == "busy":
            assert "restarting" in early["error"]["message"]
        _back_running(sim, restarts + 1)
        assert _status(sim)["lanes"]["ZHUHAI"]["state"] == "open"  # nothing was applied
        # Not remembered as done: the same id, sent again, is applied now.
        again = _reply(sim, sim.sender.send("lanes.set", dated_command("hung-1", blocked)))
        assert again["ok"], again
        wait_for(lambda: _status(sim)["lanes"]["ZHUHAI"]["state"] == "blocked",
                 what="ZHUHAI blocked in the status")
        assert sim.commands.request("lanes.set", "reopen", {"lane": "ZHUHAI",
                                                            "state": "open"})["ok"]
        _sorted_throughout(sim, agent, flow, pid)
    print(f"\n[worker] hung on a command: answered in {answered_s:.1f} s")
    assert answered_s < BUDGET_S + 5.0
    assert not Path(f"/proc/{worker}").exists() or _proc_stat(worker)[0] == "Z"


def test_a_worker_hung_while_idle_is_noticed_by_its_heartbeat(line):
    sim, agent = line
    restarts = _commands(sim)["restarts"]
    worker = _worker_pid(sim, agent)
    stopped_at = time.monotonic()
    os.kill(worker, signal.SIGSTOP)
    wait_for(lambda: _commands(sim)["restarts"] == restarts + 1, timeout_s=NOTICE_S,
             what="the agent noticing its worker hung")
    print(f"\n[worker] hung while idle: noticed in {time.monotonic() - stopped_at:.1f} s")
    _back_running(sim, restarts + 1)
    assert sim.commands.request("ping", "after-hang")["ok"]
    _some = ParcelFlow(sim, RATE, start=sim.position)
    with _some as flow:
        wait_for(lambda: flow.sent >= 20, what="some parcels")
        _sorted_throughout(sim, agent, flow, agent.process.pid)
