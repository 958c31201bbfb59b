"""Central's commands are prepared in a process of their own, never in the decision loop's.

Why a process: preparing a command is CPU work in single calls that hold the interpreter
(`json.loads` of 512 KiB, validating 250 manifest rows, compiling 500 rules: 2-25 ms each).
As a thread beside the decision loop, each such call kept a parcel waiting: scan -> lane
command p99 went from ~2 ms to 13-58 ms while hostile commands ran, and further on a busy
machine. In a process of its own (on idle CPU only) the work costs the loop nothing
but the small result it hands back: a reply, or a step (a lane state, a rule set as data).

The parent side (`WorkerProcess`) runs on the command inbox's thread. It sends one command at a
time, and waits for the answer within the time budget (`mqtt.command_time_budget_s`). A worker
that passes it, or exits, is killed and restarted with a backoff; the command in hand gets an
`internal` error reply naming what happened (nothing of it was applied: its step never reached
the loop), and commands that come while the worker waits for its restart get `busy`. An
`command_worker_failed` alarm says so, the status snapshot's `commands` section shows the
worker's state, pid and restarts, and `command_worker_restarted` follows once it is back.

The systemd watchdog stays tied to the decision loop alone: a failed worker costs central's
commands, never the line, so it must not get the service restarted (docs/RELIABILITY.md).
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import pickle
import select
import signal
import socket
import struct
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import structlog

from edge_agent.config import AgentConfig
from edge_agent.runtime.command_worker_main import (
    recv_message,
    send_message,
    worker_main,
)
from edge_agent.sync.commands import (
    Command,
    Prepared,
    error_reply,
)

log = structlog.get_logger(__name__)

# Restart backoff after a failure: doubling from the first to the last, back to the first once
# a worker has lived HEALTHY_AFTER_S.
RESTART_FIRST_S = 0.5
RESTART_MAX_S = 30.0
HEALTHY_AFTER_S = 60.0
# An idle worker is asked to answer this often, so a hung one is noticed before a command
# waits on it; it has this long to answer.
HEARTBEAT_S = 2.0
HEARTBEAT_TIMEOUT_S = 5.0
# A new worker (a new interpreter importing the agent's modules) has this long to say ready.
START_TIMEOUT_S = 30.0
# The worker runs on idle CPU only: on a machine whose cores are all busy it may be runnable
# and still not run. Past its budget it is then given up to this many budgets more (checked
# every STARVED_RECHECK_S) before it counts as hung; stopped or asleep, it is hung at once.
STARVED_WAIT_FACTOR = 6
STARVED_RECHECK_S = 1.0
# Once the first bytes of an answer came, the rest has this long to follow.
ANSWER_TIMEOUT_S = 10.0
# A worker whose connection broke is given this long to be seen exited (for its exit code).
STOP_WAIT_S = 0.5

RaiseAlarm = Callable[[str, str, str, dict[str, Any]], None]


class WorkerFailed(Exception):
    """The worker exited, hung or broke the protocol; the message says which."""


class WorkerProcess:
    """A Preparer (edge_agent.sync.commands) running `prepare` in a child process."""

    def __init__(self, config: AgentConfig, raise_alarm: RaiseAlarm, *,
                 log_settings: tuple[int, str, str] = (0, "json", "info")):
        self._config = config
        self.raise_alarm = raise_alarm  # replaced by the agent's own once it runs
        self._log_settings = log_settings
        self._budget_s = config.mqtt.command_time_budget_s
        self._process: Any = None  # multiprocessing's Process of the current worker
        self._sock: socket.socket | None = None
        self._state = "not started"
        self._restarts = 0
        self._failures = 0  # in a row: the backoff's exponent
        self._next_start = 0.0
        # Set by the agent: whether parcels are flowing. The first start waits for a quiet
        # moment (or for a command that needs the worker): a new interpreter importing the
        # agent's modules takes a few hundred ms of CPU, which on a small machine would delay
        # the parcels decided meanwhile. Restarts after a failure do not wait.
        self.line_busy: Callable[[], bool] = lambda: False
        self._started_at = 0.0
        self._last_contact = 0.0
        self._last_failure: str | None = None
        self._prepared = 0
        self._pending_restart_alarm = False

    # -- Preparer --------------------------------------------------------------------------------

    def prepare(self, command: Command, pending: Iterable[tuple[str, str]]) -> Prepared:
        if not self._ensure_started():
            wait_s = max(0.0, self._next_start - time.monotonic())
            return Prepared(command.name, None, error_reply(
                command.name, None, "busy", f"the command worker is restarting after a failure "
                f"({self._last_failure}); retry in {wait_s:.0f} s"), remember=False)
        message = (command.name, command.payload, command.retained, list(pending))
        try:
            answer = self._exchange(message, self._budget_s)
        except WorkerFailed as exc:
            self._failed(str(exc), command.name)
            return Prepared(command.name, None, error_reply(
                command.name, None, "internal", f"the command worker {exc} while preparing "
                "this command and was restarted; nothing of it was applied"), remember=False)
        prepared, alarms = answer
        for alarm in alarms:
            self.raise_alarm(*alarm)
        self._prepared += 1
        return prepared

    def check(self) -> None:
        if self._process is None:
            first = self._state == "not started"
            if (self._state != "stopped" and time.monotonic() >= self._next_start
                    and not (first and self.line_busy())):
                self._ensure_started()
            return
        if not self._process.is_alive():
            self._failed(f"exited (code {self._process.exitcode})", None)
            return
        if time.monotonic() - self._last_contact >= HEARTBEAT_S:
            try:
                if self._exchange("ping", HEARTBEAT_TIMEOUT_S) != "pong":
                    raise WorkerFailed("answered a heartbeat with something else")
            except WorkerFailed as exc:
                self._failed(str(exc), None)

    def stats(self) -> dict[str, Any]:
        alive = self._process is not None and self._state == "running"
        return {"worker": "process", "state": self._state,
                "pid": self._process.pid if alive else None, "restarts": self._restarts,
                "last_failure": self._last_failure, "prepared": self._prepared,
                "time_budget_s": self._budget_s}

    def close(self) -> None:
        self._state = "stopped"
        if self._sock is not None:
            with contextlib.suppress(OSError):
                send_message(self._sock, None)
        self._stop_process(grace_s=2.0)

    # -- life cycle ------------------------------------------------------------------------------

    def _ensure_started(self) -> bool:
        if self._process is not None:
            return True
        if self._state == "stopped" or time.monotonic() < self._next_start:
            return False
        self._state = "starting"
        parent, child = socket.socketpair()
        context = multiprocessing.get_context("spawn")  # never fork a threaded process
        # The config goes pickled: the child lowers its priority before it imports the
        # modules that unpickling it needs (command_worker_main).
        process = context.Process(
            target=worker_main, name="edge-agent-commands", daemon=True,
            args=(child, pickle.dumps(self._config), self._log_settings))
        try:
            process.start()
        except OSError as exc:
            parent.close()
            child.close()
            self._failed(f"could not start ({exc})", None)
            return False
        child.close()
        self._process, self._sock = process, parent
        try:
            ready = self._exchange(None, START_TIMEOUT_S, send=False)
        except WorkerFailed as exc:
            self._failed(f"did not start ({exc})", None)
            return False
        if ready != ("ready", process.pid):
            self._failed("did not start (an unexpected first message)", None)
            return False
        self._state, self._started_at = "running", time.monotonic()
        log.info("command.worker_started", pid=process.pid, restarts=self._restarts)
        if self._pending_restart_alarm:
            self._pending_restart_alarm = False
            self.raise_alarm("command_worker_restarted", "info", "the command worker is back: "
                             "central's commands are taken again",
                             {"pid": process.pid, "restarts": self._restarts})
        return True

    def _exchange(self, message: object, timeout_s: float, *, send: bool = True) -> Any:
        """Send `message` (unless `send` is False) and return the worker's answer within
        `timeout_s` (longer while the worker is runnable but starved of CPU, see
        STARVED_WAIT_FACTOR); WorkerFailed when it does not come."""
        sock = self._sock
        assert sock is not None
        started = time.monotonic()
        wait_until = started + timeout_s
        try:
            if send:
                sock.settimeout(timeout_s)
                send_message(sock, message)
            while not select.select([sock], [], [], max(0.0, wait_until - time.monotonic()))[0]:
                if not (self._runnable() and
                        time.monotonic() - started < timeout_s * STARVED_WAIT_FACTOR):
                    raise TimeoutError
                wait_until = time.monotonic() + STARVED_RECHECK_S
            sock.settimeout(ANSWER_TIMEOUT_S)  # it has begun to answer: the rest is in flight
            answer = recv_message(sock)
        except TimeoutError:
            raise WorkerFailed(f"passed its time budget of {timeout_s:g} s") from None
        except (EOFError, OSError, pickle.UnpicklingError, struct.error) as exc:
            code = None
            if self._process is not None:
                self._process.join(STOP_WAIT_S)  # a dead worker's socket closes first
                code = self._process.exitcode
            what = f"exited (code {code})" if code is not None else f"broke off ({exc})"
            raise WorkerFailed(what) from None
        self._last_contact = time.monotonic()
        return answer

    def _runnable(self) -> bool:
        """True if the worker is running or waiting for a CPU (or the disk): working, if
        slowly. A worker stopped, or asleep while it owes an answer, is hung."""
        if self._process is None:
            return False
        try:
            stat = Path(f"/proc/{self._process.pid}/stat").read_text()
        except OSError:
            return False
        return stat[stat.rindex(")") + 2] in "RD"

    def _failed(self, reason: str, command: str | None) -> None:
        pid = self._process.pid if self._process is not None else None
        self._stop_process(grace_s=0.0)
        if self._state == "stopped":  # the agent is stopping: closing ended the exchange
            return
        if self._started_at and time.monotonic() - self._started_at >= HEALTHY_AFTER_S:
            self._failures = 0
        retry_in = min(RESTART_MAX_S, RESTART_FIRST_S * 2 ** self._failures)
        self._failures += 1
        self._restarts += 1
        self._next_start = time.monotonic() + retry_in
        self._state, self._last_failure = "restarting", reason
        self._pending_restart_alarm = True
        self.raise_alarm("command_worker_failed", "warning", f"the command worker {reason}: "
                         "the line keeps sorting; central's commands wait for its restart",
                         {"reason": reason, "pid": pid, "command": command,
                          "restarts": self._restarts, "retry_in_s": retry_in})

    def _stop_process(self, grace_s: float) -> None:
        process, sock = self._process, self._sock
        self._process, self._sock, self._started_at = None, None, 0.0
        if sock is not None:
            sock.close()
        if process is None:
            return
        process.join(grace_s)
        if process.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGKILL)  # our own child, by its pid
            process.join(5.0)
        process.close()
