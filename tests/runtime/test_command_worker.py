"""The command worker process on its own (runtime.command_worker), without an agent around it:
what it hands back, and what a failed worker's commands get, step by step."""

from __future__ import annotations

import json
import os
import signal
from datetime import UTC, datetime
from importlib import resources

import pytest
from support.waiting import wait_for

from edge_agent.config import parse_config
from edge_agent.runtime.command_worker import WorkerProcess
from edge_agent.sorting.rules import default_rules
from edge_agent.sync.commands import Command, SetLane, SwapRules

RULES_TEXT = resources.files("edge_agent.defaults").joinpath("rules.toml").read_text()


def _command(name: str, command_id: str, args: dict | None = None) -> Command:
    body = {"id": command_id, "args": args or {}, "issued_at": datetime.now(UTC).isoformat()}
    return Command(name, json.dumps(body).encode(), respond=lambda reply: None)


@pytest.fixture
def worker(tmp_path):
    config = parse_config({"site": "HKG1", "line": "L1", "state_dir": str(tmp_path),
                           "mqtt": {"command_time_budget_s": 1.0}})
    alarms: list[tuple] = []
    worker = WorkerProcess(config, lambda *alarm: alarms.append(alarm))
    worker.alarms = alarms
    yield worker
    worker.close()


def _code(prepared) -> str:
    return prepared.reply["error"]["code"] if prepared.reply["error"] else "ok"


def test_the_worker_prepares_in_its_own_process_and_hands_back_steps_the_loop_can_run(worker):
    prepared = worker.prepare(_command("rules.apply", "r-1", {"rules": RULES_TEXT}), [])
    assert worker.stats()["state"] == "running"
    assert worker.stats()["pid"] not in (None, os.getpid())
    assert isinstance(prepared.step, SwapRules)  # a rule set, rebuilt without compiling
    rules, expected = prepared.step.rules, default_rules()
    assert rules.model_dump() == expected.model_dump()
    assert rules.clock_dependent_rules == expected.clock_dependent_rules
    lane = worker.prepare(_command("lanes.set", "l-1", {"lane": "ZHUHAI", "state": "full"}), [])
    assert lane.step == SetLane("ZHUHAI", "full")
    assert _code(worker.prepare(_command("ping", "p-1"), [])) == "ok"
    refused = worker.prepare(Command("ping", b"[" * 100_000, respond=lambda r: None), [])
    assert _code(refused) == "too_complex"  # bad input is the command's reply, not a crash
    assert worker.stats()["restarts"] == 0


def test_a_dead_worker_costs_one_reply_then_busy_until_it_is_back(worker):
    assert _code(worker.prepare(_command("ping", "p-1"), [])) == "ok"
    first_pid = worker.stats()["pid"]
    os.kill(first_pid, signal.SIGKILL)  # the worker is this test's own child
    lost = worker.prepare(_command("lanes.set", "l-1", {"lane": "ZHUHAI", "state": "full"}), [])
    assert _code(lost) == "internal" and "exited" in lost.reply["error"]["message"]
    assert not lost.remember  # a retry with the same id runs
    meanwhile = worker.prepare(_command("ping", "p-2"), [])
    assert _code(meanwhile) == "busy" and "restarting" in meanwhile.reply["error"]["message"]
    assert [alarm[0] for alarm in worker.alarms] == ["command_worker_failed"]
    assert worker.alarms[0][3]["pid"] == first_pid
    assert worker.alarms[0][3]["command"] == "lanes.set"
    wait_for(lambda: worker.check() or worker.stats()["state"] == "running", timeout_s=30.0,
             what="the worker restarted")
    assert worker.stats()["pid"] != first_pid and worker.stats()["restarts"] == 1
    assert [alarm[0] for alarm in worker.alarms] == ["command_worker_failed",
                                                     "command_worker_restarted"]
    again = worker.prepare(_command("lanes.set", "l-1", {"lane": "ZHUHAI", "state": "full"}), [])
    assert again.step == SetLane("ZHUHAI", "full")


def test_a_worker_that_passes_its_budget_is_replaced(worker):
    assert _code(worker.prepare(_command("ping", "p-1"), [])) == "ok"
    stopped = worker.stats()["pid"]
    os.kill(stopped, signal.SIGSTOP)  # hung: not runnable, so no grace for a busy machine
    late = worker.prepare(_command("ping", "p-2"), [])
    assert _code(late) == "internal" and "time budget" in late.reply["error"]["message"]
    assert not os.path.exists(f"/proc/{stopped}")  # killed (by its pid) and reaped
    wait_for(lambda: worker.check() or worker.stats()["state"] == "running", timeout_s=30.0,
             what="the worker restarted")
    assert _code(worker.prepare(_command("ping", "p-3"), [])) == "ok"


def test_the_first_start_waits_for_a_quiet_line_or_a_command(worker):
    busy = [True]
    worker.line_busy = lambda: busy[0]
    worker.check()  # parcels flowing: a new interpreter would take their CPU
    assert worker.stats()["state"] == "not started"
    assert _code(worker.prepare(_command("ping", "p-1"), [])) == "ok"  # a command needs it
    assert worker.stats()["state"] == "running"


def test_an_idle_line_lets_the_worker_start_before_any_command(worker):
    worker.line_busy = lambda: False
    worker.check()
    assert worker.stats()["state"] == "running"
