"""Commands from central (`cmd/{name}`): checked off the decision loop, applied in small steps.

A command goes through three hands:

1. paho's network thread wraps the message into a `Command` and `CommandInbox.submit`s it
   (never blocks; a full inbox, by count or by bytes, answers `busy`).
2. The inbox's thread has it `prepare`d by a Preparer: in the running agent a worker process
   of its own (runtime.command_worker: none of this work holds the decision loop's
   interpreter), in tests and tools the inbox's own thread (ThreadPreparer). `prepare` checks
   size, JSON, nesting, envelope, retain flag, freshness, id already seen, the args' model;
   then does the work that may take long: a rule set is parsed, checked against the sorter and
   persisted; manifest rows are written through a writer connection of their own (SQLite WAL:
   the loop's look-ups never wait for it). What is left is a `step`, a small picklable object:
   a few microseconds of work on the loop's state.
3. The decision loop runs at most STEPS_PER_TURN steps per turn (`process`), between parcels:
   swap the rules, set a lane, take a status snapshot. The step's outcome goes back to the
   inbox's thread, which records the id and sends the reply.

Bad input never raises out of any of these: each problem, and any exception in a command's
work, is that command's error reply (and a log line); the old state is kept. Replies and log
lines are small: problems are capped and counted (command_checks).
"""

from __future__ import annotations

import contextlib
import os
import queue
import threading
import time
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from pydantic import BaseModel, TypeAdapter, ValidationError

from edge_agent.errors import EdgeAgentError
from edge_agent.sorting.lanes import LaneState
from edge_agent.sorting.manifest import ManifestEntry
from edge_agent.sync import payloads as p
from edge_agent.sync.command_checks import (
    Freshness,
    capped_problems,
    cut,
    freshness_problem,
    parse_json,
    shape_problem,
)
from edge_agent.sync.command_ids import SeenCommands
from edge_agent.validation import problems_from

log = structlog.get_logger(__name__)

# Commands waiting for the worker. Central sends a handful per minute; a full inbox means a
# flood, and a `busy` reply tells central so instead of queueing without end.
INBOX_SIZE = 64
# Payload bytes waiting in the inbox, all commands together: bounds the memory a burst of
# large commands can take (each is at most mqtt.max_command_bytes).
INBOX_BYTES = 8 * 1024 * 1024
# Steps the decision loop runs per turn. Each is microseconds (a rules swap, a lane state);
# the bound keeps a burst from holding a parcel back by more than a few of them.
STEPS_PER_TURN = 4
DEFAULT_MAX_COMMAND_BYTES = 512 * 1024
# After preparing a command the worker rests as long as the preparation took (CPU time, at
# most REST_MAX_S): the worker then takes at most about half of a core, and the decision loop,
# which shares the interpreter with it, keeps the rest even on a machine that is already busy.
# A burst of heavy commands is answered more slowly (or `busy`); the line is not.
REST_RATIO = 1.0
REST_MAX_S = 0.5
# Manifest rows validated per slice: pydantic holds the GIL for a whole call (~5 µs a row), so
# a 5,000-row batch validated at once kept the decision loop waiting ~25 ms.
VALIDATE_SLICE_ROWS = 250


class CommandPrep(Protocol):
    """The work done on the command worker's thread (thread-safe by construction)."""

    def prepare_rules(self, text: str) -> Any:
        """Parse, check against the sorter, persist as last known good; the new RuleSet.
        Raises an EdgeAgentError with `problems` (nothing persisted) if it is not usable."""
        ...

    def upsert_manifest(self, entries: list[ManifestEntry]) -> int:
        """Raises an EdgeAgentError (code over_limit if it has `over_limit`) when refused."""
        ...

    def remove_manifest(self, barcodes: list[str]) -> int: ...

    def put_holds(self, requests: list[p.HoldModel]) -> list[Any]:
        """Check and persist; the holds as stored. Raises an EdgeAgentError with `problems`
        (code over_limit if it has `over_limit`) when refused: nothing is stored then."""
        ...

    def lift_holds(self, hold_ids: list[str]) -> list[str]:
        """Delete from the store; the ids that were there."""
        ...


class CommandTarget(Protocol):
    """The loop's side: what owns the sorting state. Each call must be quick."""

    def swap_rules(self, rules: Any) -> str:
        """Make a prepared RuleSet current; returns its version."""
        ...

    def set_lane(self, lane: str, state: LaneState) -> None:
        """Raises EdgeAgentError or ValueError for an unknown lane."""
        ...

    def status(self) -> dict[str, Any]: ...

    def apply_holds(self, put: list[Any], lifted: list[str]) -> int:
        """Make stored holds apply (and lifted ones stop); returns how many are active."""
        ...


Step = Callable[[CommandTarget], dict[str, Any]]
# The args' work on the worker: returns a finished result, or a step for the loop.
Work = Callable[[CommandPrep, Any], "dict[str, Any] | Step"]


# The steps are small picklable objects, not closures: the worker that makes them may be
# another process (runtime.command_worker), and a step crosses to the loop's process whole.

@dataclass(frozen=True)
class SwapRules:
    rules: Any

    def __call__(self, target: CommandTarget) -> dict[str, Any]:
        return {"rules_version": target.swap_rules(self.rules)}


@dataclass(frozen=True)
class SetLane:
    lane: str
    state: str

    def __call__(self, target: CommandTarget) -> dict[str, Any]:
        target.set_lane(self.lane, LaneState(self.state))
        return {"lane": self.lane, "state": self.state}


@dataclass(frozen=True)
class GetStatus:
    def __call__(self, target: CommandTarget) -> dict[str, Any]:
        return target.status()


def _rules_apply(prep: CommandPrep, args: p.RulesApplyArgs) -> Step:
    return SwapRules(prep.prepare_rules(args.rules))


def _manifest_upsert(prep: CommandPrep, entries: list[ManifestEntry]) -> dict[str, Any]:
    return {"upserted": prep.upsert_manifest(entries)}


def _manifest_remove(prep: CommandPrep, args: p.ManifestRemoveArgs) -> dict[str, Any]:
    return {"removed": prep.remove_manifest(list(args.barcodes))}


def _lanes_set(prep: CommandPrep, args: p.LanesSetArgs) -> Step:
    return SetLane(args.lane, args.state)


@dataclass(frozen=True)
class ApplyHolds:
    """Holds already checked and stored by the worker, made to apply (or stop) in the loop."""

    put: list[Any]
    lifted: list[str]
    not_found: int | None = None  # holds.lift: ids that were not there (lifting is idempotent)

    def __call__(self, target: CommandTarget) -> dict[str, Any]:
        active = target.apply_holds(self.put, self.lifted)
        if self.not_found is None:
            return {"put": len(self.put), "active": active}
        return {"lifted": len(self.lifted), "not_found": self.not_found, "active": active}


def _holds_put(prep: CommandPrep, args: p.HoldsPutArgs) -> Step:
    return ApplyHolds(prep.put_holds(list(args.holds)), [])


def _holds_lift(prep: CommandPrep, args: p.HoldsLiftArgs) -> Step:
    lifted = prep.lift_holds(list(args.hold_ids))
    # An id that was not there may have expired or been lifted before: lifting is idempotent.
    return ApplyHolds([], lifted, not_found=len(set(args.hold_ids)) - len(lifted))


def _status_get(prep: CommandPrep, args: p.NoArgs) -> Step:
    return GetStatus()


def _ping(prep: CommandPrep, args: p.NoArgs) -> dict[str, Any]:
    return {"pong": True}


HANDLERS: dict[str, tuple[type[BaseModel], Work]] = {
    "rules.apply": (p.RulesApplyArgs, _rules_apply),
    "manifest.upsert": (p.ManifestUpsertArgs, _manifest_upsert),
    "manifest.remove": (p.ManifestRemoveArgs, _manifest_remove),
    "lanes.set": (p.LanesSetArgs, _lanes_set),
    "holds.put": (p.HoldsPutArgs, _holds_put),
    "holds.lift": (p.HoldsLiftArgs, _holds_lift),
    "status.get": (p.NoArgs, _status_get),
    "ping": (p.NoArgs, _ping),
}
_ENTRIES = TypeAdapter(list[p.ManifestEntryModel])
# Commands that change nothing: run again for a copy instead of being remembered (a status
# reply is the agent's whole snapshot, kilobytes that the id store need not keep).
READ_ONLY = frozenset({"status.get", "ping"})


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def ok_reply(name: str, command_id: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"schema_version": p.SCHEMA_VERSION, "command": name, "id": command_id, "ok": True,
            "result": result, "error": None, "replied_at": _now()}


def error_reply(
    name: str, command_id: str | None, code: str, message: str, problems: list[str] | None = None
) -> dict[str, Any]:
    """An error reply (and its log line) with the problems capped: see command_checks."""
    shown, total = capped_problems(problems or [])
    name, message = cut(name, 64), cut(message)
    log.warning("command.refused", command=name, id=command_id, code=code, message=message,
                problems=shown, problems_total=total)
    error = {"code": code, "message": message, "problems": shown, "problems_total": total}
    return {"schema_version": p.SCHEMA_VERSION, "command": name, "id": command_id, "ok": False,
            "result": None, "error": error, "replied_at": _now()}


@dataclass
class Prepared:
    """A command after the worker's checks: a final `reply`, or a `step` for the loop."""

    name: str
    command_id: str | None
    reply: dict[str, Any] | None = None
    step: Step | None = None
    remember: bool = True  # False for an internal error: a retry with the same id runs again
    # The same id is being applied now: this copy gets the first one's reply when it is done.
    duplicate: bool = False


@dataclass(frozen=True)
class CommandRules:
    """The limits and freshness rules a worker applies (from the agent's configuration)."""

    max_bytes: int = DEFAULT_MAX_COMMAND_BYTES
    freshness: Freshness = field(default_factory=Freshness)
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)


def prepare(
    name: str, payload: bytes, prep: CommandPrep, seen: SeenCommands, rules: CommandRules,
    *, retained: bool = False, pending: Container[tuple[str, str]] = frozenset(),
) -> Prepared:
    """Every check and all the slow work of one command (worker thread); never raises."""
    try:
        return _prepare(name, payload, prep, seen, rules, retained, pending)
    except Exception as exc:  # a bug or an unforeseen input: this command's error only
        log.exception("command.failed", command=cut(name, 64))
        return Prepared(name, None, error_reply(name, None, "internal",
                                                f"internal error: {type(exc).__name__}"),
                        remember=False)


def _prepare(name: str, payload: bytes, prep: CommandPrep, seen: SeenCommands,
             rules: CommandRules, retained: bool,
             pending: Container[tuple[str, str]]) -> Prepared:
    def refuse(code: str, message: str, problems: list[str] | None = None,
               command_id: str | None = None) -> Prepared:
        # Not remembered: the command was not acted on, and a corrected copy (or one sent
        # once the queue has room) may reuse its id. Only outcomes of the work are kept.
        remember = code == "rejected"
        return Prepared(name, command_id, error_reply(name, command_id, code, message, problems),
                        remember=remember)

    if retained:
        # A retained command is delivered again at every connect: acting on it would replay
        # an old decision of central's after each restart.
        return refuse("retained", "retained commands are never acted on: publish commands "
                      "without the retain flag")
    if len(payload) > rules.max_bytes:
        return refuse("too_large", f"payload is {len(payload)} bytes, the limit is "
                      f"{rules.max_bytes}")
    data, problem = parse_json(payload)
    if problem is not None:
        code = "too_complex" if "nested" in problem else "bad_json"
        return refuse(code, problem)
    problem = shape_problem(data)
    if problem is not None:
        return refuse("too_complex", problem)
    raw_id = data.get("id") if isinstance(data, dict) else None
    echo_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 128 else None
    try:
        request = p.CommandRequest.model_validate(data)
    except ValidationError as exc:
        return refuse("bad_request", "invalid request", problems_from(exc), echo_id)
    command_id = request.id
    if name not in HANDLERS:
        return refuse("unknown_command", f"unknown command {name!r}; known: "
                      f"{', '.join(HANDLERS)}", command_id=command_id)
    earlier = seen.get(name, command_id)
    if earlier is not None:
        log.info("command.replayed", command=name, id=command_id)
        return Prepared(name, command_id, earlier, remember=False)
    if (name, command_id) in pending:
        return Prepared(name, command_id, remember=False, duplicate=True)
    if request.issued_at is None and not rules.freshness.accept_undated:
        return refuse("bad_request", "issued_at is required (ISO-8601 with offset): undated "
                      "commands are refused", command_id=command_id)
    problem = freshness_problem(request.issued_at, request.expires_at, rules.clock(),
                                rules.freshness)
    if problem is not None:
        return refuse("stale", problem, command_id=command_id)
    if request.issued_at is None:
        log.warning("command.undated", command=name, id=command_id)
    args_model, work = HANDLERS[name]
    try:
        args = (_manifest_rows(request.args) if name == "manifest.upsert"
                else args_model.model_validate(request.args))
    except ValidationError as exc:
        return refuse("bad_request", "invalid args", problems_from(exc, "args"), command_id)
    except _RowProblems as exc:
        return refuse("bad_request", "invalid args", exc.problems, command_id)
    try:
        outcome = work(prep, args)
    except EdgeAgentError as exc:
        problems = list(getattr(exc, "problems", None) or [str(exc)])
        code = "over_limit" if getattr(exc, "over_limit", False) else "rejected"
        return refuse(code, "refused; nothing changed", problems, command_id)
    except ValueError as exc:
        return refuse("rejected", str(exc), command_id=command_id)
    if callable(outcome):
        return Prepared(name, command_id, step=outcome)
    log.info("command.applied", command=name, id=command_id)
    return Prepared(name, command_id, ok_reply(name, command_id, outcome))


class _RowProblems(Exception):
    def __init__(self, problems: list[str]):
        self.problems = problems


def _manifest_rows(args: dict[str, Any]) -> list[ManifestEntry]:
    """manifest.upsert's rows, validated a slice at a time (see VALIDATE_SLICE_ROWS)."""
    problems = [f"args.{name}: unknown setting (a typo?)" for name in sorted(args)
                if name != "entries"]
    entries = args.get("entries")
    if not isinstance(entries, list):
        problems.append("args.entries: " + ("required" if entries is None else
                                            "expected a list of manifest rows"))
    elif not 1 <= len(entries) <= p.MAX_MANIFEST_BATCH:
        problems.append(f"args.entries: 1 to {p.MAX_MANIFEST_BATCH} rows per command "
                        f"(got {len(entries)})")
    if problems:
        raise _RowProblems(problems)
    rows: list[ManifestEntry] = []
    for start in range(0, len(entries), VALIDATE_SLICE_ROWS):
        try:
            models = _ENTRIES.validate_python(entries[start:start + VALIDATE_SLICE_ROWS])
        except ValidationError as exc:
            problems += _row_problems(exc, start)
            continue
        rows += [ManifestEntry(**model.model_dump()) for model in models]
    if problems:
        raise _RowProblems(problems)
    return rows


def _row_problems(exc: ValidationError, first_row: int) -> list[str]:
    problems = []
    for error in exc.errors(include_url=False):
        index, *where = error["loc"] or (0,)
        location = "".join(f".{part}" for part in where)
        message = ("unknown setting (a typo?)" if error["type"] == "extra_forbidden"
                   else error["msg"])
        problems.append(f"args.entries.{first_row + int(index)}{location}: {message}")
    return problems


def finish(prepared: Prepared, target: CommandTarget) -> Prepared:
    """Run a prepared command's step on the calling (loop's) thread; never raises."""
    if prepared.step is None:
        return prepared
    name, command_id = prepared.name, prepared.command_id or ""
    try:
        result = prepared.step(target)
    except EdgeAgentError as exc:
        problems = list(getattr(exc, "problems", None) or [str(exc)])
        reply = error_reply(name, command_id, "rejected", "refused; nothing changed", problems)
    except ValueError as exc:
        reply = error_reply(name, command_id, "rejected", str(exc))
    except Exception as exc:
        log.exception("command.failed", command=name, id=command_id)
        return Prepared(name, command_id, error_reply(
            name, command_id, "internal", f"internal error: {type(exc).__name__}"),
            remember=False)
    else:
        reply = ok_reply(name, command_id, result)
        log.info("command.applied", command=name, id=command_id)
    return Prepared(name, command_id, reply)


def record(prepared: Prepared, seen: SeenCommands) -> None:
    """Remember a final reply under its id (worker thread) so a duplicate is not acted on."""
    if prepared.name in READ_ONLY:
        return
    if prepared.remember and prepared.command_id is not None and prepared.reply is not None:
        with contextlib.suppress(Exception):  # a full disk must not lose the reply itself
            seen.remember(prepared.name, prepared.command_id, prepared.reply)


def handle_command(
    name: str, payload: bytes, handler: Any, seen: SeenCommands,
    rules: CommandRules | None = None, *, retained: bool = False,
) -> dict[str, Any]:
    """All three hands on the calling thread: for tests and tools. `handler` is both the
    CommandPrep and the CommandTarget."""
    prepared = prepare(name, payload, handler, seen, rules or CommandRules(), retained=retained)
    done = finish(prepared, handler)
    record(done, seen)
    assert done.reply is not None
    return done.reply


@dataclass
class Command:
    """One inbound command as received; `respond(reply)` publishes the reply to the requester."""

    name: str
    payload: bytes
    respond: Callable[[dict[str, Any]], None]
    received_ns: int = 0
    meta: dict[str, Any] = field(default_factory=dict)
    retained: bool = False


class Preparer(Protocol):
    """Who runs `prepare` for the inbox: on its own thread (ThreadPreparer) or in a process of
    its own (runtime.command_worker). Called from the inbox's thread only; never raises."""

    def prepare(self, command: Command, pending: Container[tuple[str, str]]) -> Prepared: ...

    def check(self) -> None:
        """Called when no command came for a while: notice a dead or hung worker."""
        ...

    def stats(self) -> dict[str, Any]: ...

    def close(self) -> None: ...


class ThreadPreparer:
    """`prepare` on the inbox's own thread, in the caller's interpreter: for tests and tools.
    After each command it rests as long as the preparation took (see REST_RATIO)."""

    def __init__(self, prep: CommandPrep, seen: SeenCommands, rules: CommandRules):
        self._prep, self._seen, self._rules = prep, seen, rules

    def prepare(self, command: Command, pending: Container[tuple[str, str]]) -> Prepared:
        started = time.thread_time()
        prepared = prepare(command.name, command.payload, self._prep, self._seen, self._rules,
                           retained=command.retained, pending=pending)
        spent_s = time.thread_time() - started
        if spent_s > 0.001:  # the small commands (ping, lanes.set) go on at once
            time.sleep(min(spent_s * REST_RATIO, REST_MAX_S))
        return prepared

    def check(self) -> None:
        return None

    def stats(self) -> dict[str, Any]:
        return {"worker": "thread", "state": "running"}

    def close(self) -> None:
        return None


# The inbox's thread wakes this often without commands, to let its preparer check the worker.
IDLE_CHECK_S = 1.0


class CommandInbox:
    """Hands commands from paho's thread to a worker, and their steps to the decision loop.

    `submit` never blocks (paho's thread). The inbox's thread (`start`) has each command
    prepared (by `preparer`: by default on that thread) and sends the replies. The loop calls
    `process(target)`; `fileno()` becomes readable when steps wait, for a `selectors` loop.
    """

    def __init__(self, prep: CommandPrep | None, seen: SeenCommands,
                 rules: CommandRules | None = None, *, size: int = INBOX_SIZE,
                 max_queued_bytes: int = INBOX_BYTES, preparer: Preparer | None = None):
        self.seen = seen
        if preparer is None:
            assert prep is not None, "a CommandPrep, or a preparer that has its own"
            preparer = ThreadPreparer(prep, seen, rules or CommandRules())
        self.preparer = preparer
        # The worker's one queue: new commands from paho, and steps the loop has run. Bounded
        # by hand (count and bytes of new commands) so the loop's hand-backs never block.
        self._to_worker: queue.Queue[tuple[Command, Prepared | None] | None] = queue.Queue()
        self._queued = 0
        self._queued_bytes = 0
        self._size = size
        self._max_queued_bytes = max_queued_bytes
        self._count_lock = threading.Lock()
        self._steps: queue.Queue[tuple[Command, Prepared]] = queue.Queue()
        # Ids whose step waits for the loop, with the copies of them that arrived meanwhile
        # (worker's thread only): each copy gets the first one's reply.
        self._pending: dict[tuple[str, str], list[Command]] = {}
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self._worker = threading.Thread(target=self._work, name="command-worker", daemon=True)
        self._closed = False
        self.thread_restarts = 0

    def start(self) -> None:
        self._worker.start()

    def ensure_running(self) -> bool:
        """The loop's liveness check: restart the inbox's thread if it ended (it catches
        everything, so this is a last guard); False if it had to be restarted."""
        if self._closed or self._worker.is_alive() or self._worker.ident is None:
            return True
        log.error("command.thread_restarted")
        self.thread_restarts += 1
        self._worker = threading.Thread(target=self._work, name="command-worker", daemon=True)
        self._worker.start()
        return False

    def stats(self) -> dict[str, Any]:
        """For the status snapshot: the worker's state and the commands waiting for it."""
        with self._count_lock:
            queued, queued_bytes = self._queued, self._queued_bytes
        return {**self.preparer.stats(), "queued": queued, "queued_bytes": queued_bytes,
                "steps_waiting": self._steps.qsize(), "thread_restarts": self.thread_restarts}

    def submit(self, command: Command) -> dict[str, Any] | None:
        """Queue a command; returns a `busy` reply instead when the inbox is full."""
        size = len(command.payload)
        with self._count_lock:
            if self._queued >= self._size or self._queued_bytes + size > self._max_queued_bytes:
                return error_reply(command.name, None, "busy", "agent busy; try again later")
            self._queued += 1
            self._queued_bytes += size
        self._to_worker.put((command, None))
        return None

    def fileno(self) -> int:
        return self._wake_read

    def has_waiting(self) -> bool:
        """Cheap check for a loop that polls: True when steps wait for the loop."""
        return not self._steps.empty()

    def wait(self, timeout_s: float) -> bool:
        """For a loop without selectors: True when a step waits (or arrived in time)."""
        import select

        return bool(select.select([self._wake_read], [], [], timeout_s)[0])

    def process(self, target: CommandTarget, limit: int = STEPS_PER_TURN) -> int:
        """Run at most `limit` waiting steps on the calling (loop's) thread."""
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_read, 4096)
        done = 0
        while done < limit:
            try:
                command, prepared = self._steps.get_nowait()
            except queue.Empty:
                break
            self._to_worker.put((command, finish(prepared, target)))
            done += 1
        if not self._steps.empty():
            self._wake_loop()  # more than `limit` waited: the next turn takes the rest
        return done

    def close(self, timeout_s: float = 2.0) -> None:
        if self._closed:
            return
        self._closed = True
        if self._worker.is_alive():
            self._to_worker.put(None)
            self._worker.join(timeout_s)
        self.preparer.close()
        if not self._worker.is_alive():
            self.seen.close()
        os.close(self._wake_read)
        os.close(self._wake_write)

    # -- the worker's thread --------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            try:
                item = self._to_worker.get(timeout=IDLE_CHECK_S)
            except queue.Empty:
                self._guarded(self.preparer.check)
                continue
            if item is None:
                return
            self._guarded(self._handle, *item)

    def _guarded(self, work: Callable[..., None], *args: Any) -> None:
        try:
            work(*args)
        except Exception:  # a bug here must not end the thread: later commands still run
            log.exception("command.worker_failed")

    def _handle(self, command: Command, finished: Prepared | None) -> None:
        if finished is not None:  # the loop ran its step: record it, reply
            copies = self._pending.pop((finished.name, finished.command_id or ""), [])
            for each in (command, *copies):
                self._reply(each, finished)
            return
        with self._count_lock:
            self._queued -= 1
            self._queued_bytes -= len(command.payload)
        prepared = self.preparer.prepare(command, self._pending)
        key = (prepared.name, prepared.command_id or "")
        if prepared.duplicate:
            self._pending[key].append(command)
        elif prepared.step is not None:
            self._pending[key] = []
            self._steps.put((command, prepared))
            self._wake_loop()
        else:
            self._reply(command, prepared)

    def _reply(self, command: Command, prepared: Prepared) -> None:
        record(prepared, self.seen)
        try:
            command.respond(prepared.reply or {})
        except Exception:  # a reply that cannot be sent must not stop the others
            log.exception("command.reply_failed", command=cut(command.name, 64))

    def _wake_loop(self) -> None:
        # A full pipe already holds wake-ups: the reader will wake anyway.
        with contextlib.suppress(BlockingIOError, OSError):
            os.write(self._wake_write, b"\0")
