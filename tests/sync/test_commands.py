"""Commands from central: each command, each kind of bad command, idempotency by id."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs
from sync_helpers import LineTarget

from edge_agent.sorting.lanes import LaneState
from edge_agent.sync.commands import Command, CommandInbox, ReplyMemory, handle_command
from edge_agent.sync.payloads import CommandReply

# The shipped rule set under a new version: a realistic rules.apply payload.
GOOD_RULES = (
    resources.files("edge_agent.defaults").joinpath("rules.toml").read_text("utf-8")
    .replace('version = "default-2"', 'version = "2026-02"')
)


@pytest.fixture
def target(tmp_path: Path):
    line = LineTarget(tmp_path)
    yield line
    line.close()


def run(name: str, body, target: LineTarget, seen: ReplyMemory | None = None, **kw) -> dict:
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = handle_command(name, payload, target, seen if seen is not None else ReplyMemory(),
                           **kw)
    CommandReply.model_validate(reply)  # every reply honours the published schema
    return reply


def test_ping_and_status(target: LineTarget):
    assert run("ping", {"id": "c1"}, target)["result"] == {"pong": True}
    reply = run("status.get", {"id": "c2"}, target)
    assert reply["ok"] and reply["result"]["rules_version"] == "default-2"


def test_rules_apply_swaps_and_persists_and_bad_rules_keep_the_old(target: LineTarget):
    reply = run("rules.apply", {"id": "r1", "args": {"rules": GOOD_RULES}}, target)
    assert reply["ok"] and reply["result"] == {"rules_version": "2026-02"}
    assert target.rules.version == "2026-02" and target.rules_file.read_text() == GOOD_RULES
    bad = run("rules.apply", {"id": "r2", "args": {"rules": 'version = "x"\n[lanes.A]\n'}},
              target)
    assert not bad["ok"] and bad["error"]["code"] == "rejected" and bad["error"]["problems"]
    assert target.rules.version == "2026-02" and target.rules_file.read_text() == GOOD_RULES


def test_manifest_upsert_and_remove(target: LineTarget):
    entries = [{"barcode": f"RR{i:09d}HK", "country": "CN", "postal_code": "200001",
                "declared_weight_kg": 1.2} for i in range(3)]
    reply = run("manifest.upsert", {"id": "m1", "args": {"entries": entries}}, target)
    assert reply["result"] == {"upserted": 3}
    assert target.manifest.get("RR000000001HK").postal_code == "200001"
    reply = run("manifest.remove", {"id": "m2", "args": {"barcodes": ["RR000000001HK", "NOPE"]}},
                target)
    assert reply["result"] == {"removed": 1} and target.manifest.get("RR000000001HK") is None


def test_lanes_set_and_unknown_lane(target: LineTarget):
    assert run("lanes.set", {"id": "l1", "args": {"lane": "ZHUHAI", "state": "full"}},
               target)["ok"]
    assert target.lanes == {"ZHUHAI": LaneState.FULL}
    reply = run("lanes.set", {"id": "l2", "args": {"lane": "MARS", "state": "open"}}, target)
    assert reply["error"]["code"] == "rejected" and "MARS" in reply["error"]["message"]
    assert target.lanes == {"ZHUHAI": LaneState.FULL}


@pytest.mark.parametrize(
    ("name", "payload", "code"),
    [
        ("ping", b"{not json", "bad_json"),
        ("ping", b"\xff\xfe", "bad_json"),
        ("ping", b"[1, 2]", "bad_request"),
        ("ping", b'{"args": {}}', "bad_request"),  # no id
        ("ping", b'{"id": "x", "extra": 1}', "bad_request"),
        ("reboot", b'{"id": "x"}', "unknown_command"),
        ("lanes.set", b'{"id": "x", "args": {"lane": "ZHUHAI", "state": "closed"}}', "bad_request"),
        ("manifest.upsert", b'{"id": "x", "args": {"entries": "RR1"}}', "bad_request"),
        ("manifest.upsert",
         b'{"id": "x", "args": {"entries": [{"barcode": "A", "country": "cn"}]}}', "bad_request"),
        ("rules.apply", b'{"id": "x", "args": {"rules": 42}}', "bad_request"),
        ("ping", b'{"id": "x", "args": {"unexpected": true}}', "bad_request"),
    ],
)
def test_bad_commands_get_a_clear_error_and_a_log_line(target, name, payload, code):
    with capture_logs() as logs:
        reply = run(name, payload, target)
    assert not reply["ok"] and reply["error"]["code"] == code and reply["error"]["message"]
    assert any(e["event"] == "command.refused" and e["code"] == code for e in logs)
    assert target.lanes == {} and target.rules.version == "default-2"


def test_oversized_payload_is_refused_before_parsing(target: LineTarget):
    reply = run("ping", b'{"id": "x"}' + b" " * 100, target, max_bytes=64)
    assert reply["error"]["code"] == "too_large"


def test_replayed_id_gets_the_same_reply_without_acting_twice(target: LineTarget):
    seen = ReplyMemory(size=2)
    first = run("rules.apply", {"id": "same", "args": {"rules": GOOD_RULES}}, target, seen)
    again = run("rules.apply", {"id": "same", "args": {"rules": GOOD_RULES}}, target, seen)
    assert again == first and target.applied == 1
    run("ping", {"id": "a"}, target, seen)
    run("ping", {"id": "b"}, target, seen)  # the memory is bounded: "same" is forgotten
    assert len(seen) == 2
    run("rules.apply", {"id": "same", "args": {"rules": GOOD_RULES}}, target, seen)
    assert target.applied == 2


@given(st.binary(max_size=300), st.sampled_from(["ping", "lanes.set", "rules.apply", "x"]))
def test_arbitrary_bytes_never_raise(tmp_path_factory, payload: bytes, name: str):
    target = _shared_target(tmp_path_factory)
    reply = handle_command(name, payload, target, ReplyMemory())
    CommandReply.model_validate(reply)


_targets: dict = {}


def _shared_target(factory) -> LineTarget:
    # One target for all examples: hypothesis calls the test many times per fixture.
    if "t" not in _targets:
        _targets["t"] = LineTarget(factory.mktemp("fuzz"))
    return _targets["t"]


def test_inbox_runs_commands_on_the_draining_thread(target: LineTarget):
    import threading

    inbox = CommandInbox(size=1)
    replies: list[tuple[dict, str]] = []

    def respond(reply: dict) -> None:
        replies.append((reply, threading.current_thread().name))

    payload = json.dumps({"id": "1", "args": {"lane": "EXPORT", "state": "blocked"}}).encode()
    assert inbox.submit(Command("lanes.set", payload, respond)) is None
    busy = inbox.submit(Command("ping", b'{"id": "2"}', respond))
    assert busy is not None and busy["error"]["code"] == "busy"  # full: never blocks paho
    assert target.lanes == {}  # nothing acted until the agent's thread drains
    assert inbox.wait(0)
    assert inbox.process(target) == 1
    assert target.lanes == {"EXPORT": LaneState.BLOCKED}
    assert replies[0][0]["ok"] and replies[0][1] == threading.current_thread().name
    assert not inbox.wait(0)
    inbox.close()
