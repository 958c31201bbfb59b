"""Commands from central (`cmd/{name}`): validated, idempotent by id, run on the agent's thread.

The paho network thread only wraps a message into a `Command` and drops it into a
`CommandInbox`; the agent's own thread drains the inbox and calls `handle_command`, which is the
only code that touches sorting state (rules, manifest, lane states). The reply is then published
by the `Command`'s `respond` callback (MQTT v5 response topic + correlation data, or
`reply/{name}` under 3.1.1).

Bad input never raises out of `handle_command`: oversized, malformed JSON, unknown command,
wrong types, a rule set that does not validate: each is a clear error reply plus a log line, and
the old state is kept (the target swaps nothing until the new value validated).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import structlog
from pydantic import BaseModel, ValidationError

from edge_agent.errors import EdgeAgentError
from edge_agent.sorting.lanes import LaneState
from edge_agent.sorting.manifest import ManifestEntry
from edge_agent.sync import payloads as p
from edge_agent.validation import problems_from

log = structlog.get_logger(__name__)

# Replies remembered for replayed ids. Central retries within seconds to minutes; 1,024 recent
# commands cover that while bounding memory.
REPLY_MEMORY_SIZE = 1024
# Commands waiting for the agent's thread. Central sends a handful per minute; a full inbox
# means the agent is stuck, and a `busy` reply tells central so instead of queueing forever.
INBOX_SIZE = 256
DEFAULT_MAX_COMMAND_BYTES = 1_048_576


class CommandTarget(Protocol):
    """What commands act on: implemented by the running agent, which owns the state."""

    def apply_rules(self, text: str) -> str:
        """Validate, swap atomically, persist as last-known-good; the new version. Raises an
        EdgeAgentError with `problems` (e.g. RulesError) and keeps the old rules if invalid."""
        ...

    def upsert_manifest(self, entries: list[ManifestEntry]) -> int: ...

    def remove_manifest(self, barcodes: list[str]) -> int: ...

    def set_lane(self, lane: str, state: LaneState) -> None:
        """Raises EdgeAgentError or ValueError for an unknown lane."""
        ...

    def status(self) -> dict[str, Any]: ...


class ReplyMemory:
    """The replies to the most recent command ids, oldest forgotten first."""

    def __init__(self, size: int = REPLY_MEMORY_SIZE):
        self._size = size
        self._replies: OrderedDict[tuple[str, str], dict[str, Any]] = OrderedDict()

    def get(self, name: str, command_id: str) -> dict[str, Any] | None:
        return self._replies.get((name, command_id))

    def remember(self, name: str, command_id: str, reply: dict[str, Any]) -> None:
        self._replies[(name, command_id)] = reply
        self._replies.move_to_end((name, command_id))
        while len(self._replies) > self._size:
            self._replies.popitem(last=False)

    def __len__(self) -> int:
        return len(self._replies)


def _rules_apply(target: CommandTarget, args: p.RulesApplyArgs) -> dict[str, Any]:
    return {"rules_version": target.apply_rules(args.rules)}


def _manifest_upsert(target: CommandTarget, args: p.ManifestUpsertArgs) -> dict[str, Any]:
    # The sorting side's own checks (normalisation, limits) run when each entry is made.
    entries = [ManifestEntry(**entry.model_dump()) for entry in args.entries]
    return {"upserted": target.upsert_manifest(entries)}


def _manifest_remove(target: CommandTarget, args: p.ManifestRemoveArgs) -> dict[str, Any]:
    return {"removed": target.remove_manifest(list(args.barcodes))}


def _lanes_set(target: CommandTarget, args: p.LanesSetArgs) -> dict[str, Any]:
    target.set_lane(args.lane, LaneState(args.state))
    return {"lane": args.lane, "state": args.state}


def _status_get(target: CommandTarget, args: p.NoArgs) -> dict[str, Any]:
    return target.status()


def _ping(target: CommandTarget, args: p.NoArgs) -> dict[str, Any]:
    return {"pong": True}


HANDLERS: dict[str, tuple[type[BaseModel], Callable[[CommandTarget, Any], dict[str, Any]]]] = {
    "rules.apply": (p.RulesApplyArgs, _rules_apply),
    "manifest.upsert": (p.ManifestUpsertArgs, _manifest_upsert),
    "manifest.remove": (p.ManifestRemoveArgs, _manifest_remove),
    "lanes.set": (p.LanesSetArgs, _lanes_set),
    "status.get": (p.NoArgs, _status_get),
    "ping": (p.NoArgs, _ping),
}


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def ok_reply(name: str, command_id: str, result: dict[str, Any]) -> dict[str, Any]:
    return {"schema_version": p.SCHEMA_VERSION, "command": name, "id": command_id, "ok": True,
            "result": result, "error": None, "replied_at": _now()}


def error_reply(
    name: str, command_id: str | None, code: str, message: str, problems: list[str] | None = None
) -> dict[str, Any]:
    log.warning("command.refused", command=name, id=command_id, code=code, problems=problems)
    error = {"code": code, "message": message, "problems": problems or []}
    return {"schema_version": p.SCHEMA_VERSION, "command": name, "id": command_id, "ok": False,
            "result": None, "error": error, "replied_at": _now()}


def handle_command(
    name: str,
    payload: bytes,
    target: CommandTarget,
    seen_ids: ReplyMemory,
    *,
    max_bytes: int = DEFAULT_MAX_COMMAND_BYTES,
) -> dict[str, Any]:
    """Validate and run one command; always returns the reply (a CommandReply as a dict)."""
    if len(payload) > max_bytes:
        return error_reply(name, None, "too_large", f"payload is {len(payload)} bytes, "
                           f"the limit is {max_bytes}")
    try:
        data = json.loads(payload)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return error_reply(name, None, "bad_json", f"payload is not JSON: {exc}")
    raw_id = data.get("id") if isinstance(data, dict) else None
    echo_id = raw_id if isinstance(raw_id, str) and len(raw_id) <= 128 else None
    try:
        request = p.CommandRequest.model_validate(data)
    except ValidationError as exc:
        return error_reply(name, echo_id, "bad_request", "invalid request",
                           problems_from(exc))
    if name not in HANDLERS:
        return error_reply(name, request.id, "unknown_command",
                           f"unknown command {name!r}; known: {', '.join(HANDLERS)}")
    earlier = seen_ids.get(name, request.id)
    if earlier is not None:
        log.info("command.replayed", command=name, id=request.id)
        return earlier
    args_model, run = HANDLERS[name]
    try:
        args = args_model.model_validate(request.args)
    except ValidationError as exc:
        return error_reply(name, request.id, "bad_request", "invalid args",
                           problems_from(exc, "args"))
    try:
        reply = ok_reply(name, request.id, run(target, args))
        log.info("command.applied", command=name, id=request.id)
    except EdgeAgentError as exc:
        problems = list(getattr(exc, "problems", None) or [str(exc)])
        reply = error_reply(name, request.id, "rejected", "refused; nothing changed", problems)
    except ValueError as exc:
        reply = error_reply(name, request.id, "rejected", str(exc))
    except Exception as exc:  # a bug in a target must not kill the agent's loop
        log.exception("command.failed", command=name, id=request.id)
        # Not remembered: a retry with the same id should run again.
        return error_reply(name, request.id, "internal", f"internal error: {type(exc).__name__}")
    seen_ids.remember(name, request.id, reply)
    return reply


@dataclass
class Command:
    """One inbound command as received; `respond(reply)` publishes the reply to the requester."""

    name: str
    payload: bytes
    respond: Callable[[dict[str, Any]], None]
    received_ns: int = 0
    meta: dict[str, Any] = field(default_factory=dict)


class CommandInbox:
    """Hands commands from the MQTT thread to the agent's thread.

    `submit` never blocks (it runs on paho's thread). The agent drains with `process` on its own
    thread; `fileno()` becomes readable when commands wait, for a `selectors` loop.
    """

    def __init__(self, size: int = INBOX_SIZE, max_bytes: int = DEFAULT_MAX_COMMAND_BYTES):
        self._queue: queue.Queue[Command] = queue.Queue(size)
        self._max_bytes = max_bytes
        self._wake_read, self._wake_write = os.pipe()
        os.set_blocking(self._wake_read, False)
        os.set_blocking(self._wake_write, False)
        self.seen = ReplyMemory()

    def submit(self, command: Command) -> dict[str, Any] | None:
        """Queue a command; returns a `busy` reply instead when the inbox is full."""
        try:
            self._queue.put_nowait(command)
        except queue.Full:
            return error_reply(command.name, None, "busy", "agent busy; try again later")
        # A full pipe already holds wake-ups: the reader will wake anyway.
        with contextlib.suppress(BlockingIOError):
            os.write(self._wake_write, b"\0")
        return None

    def fileno(self) -> int:
        return self._wake_read

    def has_waiting(self) -> bool:
        """Cheap check for a loop that polls: True when commands wait to be processed."""
        return not self._queue.empty()

    def wait(self, timeout_s: float) -> bool:
        """For a loop without selectors: True when a command waits (or arrived in time)."""
        import select

        return bool(select.select([self._wake_read], [], [], timeout_s)[0])

    def process(self, target: CommandTarget, limit: int = INBOX_SIZE) -> int:
        """Run waiting commands on the calling (agent's) thread and send each reply."""
        with contextlib.suppress(BlockingIOError):
            os.read(self._wake_read, 4096)
        done = 0
        while done < limit:
            try:
                command = self._queue.get_nowait()
            except queue.Empty:
                break
            reply = handle_command(command.name, command.payload, target, self.seen,
                                   max_bytes=self._max_bytes)
            try:
                command.respond(reply)
            except Exception:  # a reply that cannot be sent must not stop the others
                log.exception("command.reply_failed", command=command.name)
            done += 1
        return done

    def close(self) -> None:
        os.close(self._wake_read)
        os.close(self._wake_write)
