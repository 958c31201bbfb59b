"""Commands from central: each command, each kind of bad command, idempotency by id."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs
from sync_helpers import LineTarget, dated

from edge_agent.sorting.lanes import LaneState
from edge_agent.sync.command_ids import SeenCommands
from edge_agent.sync.commands import Command, CommandInbox, CommandRules, handle_command
from edge_agent.sync.payloads import CommandReply

# The shipped rule set under a new version: a realistic rules.apply payload.
GOOD_RULES = (
    resources.files("edge_agent.defaults").joinpath("rules.toml").read_text("utf-8")
    .replace('version = "default-3"', 'version = "2026-02"')
)


@pytest.fixture
def target(tmp_path: Path):
    line = LineTarget(tmp_path)
    yield line
    line.close()


def run(name: str, body, target: LineTarget, seen: SeenCommands | None = None, **kw) -> dict:
    """One command through every check; a dict body gets an issue time (now) unless it has one
    or says `issued_at: None`."""
    if isinstance(body, dict):
        body = dated(body) if "issued_at" not in body else {
            key: value for key, value in body.items() if value is not None}
    payload = body if isinstance(body, bytes) else json.dumps(body).encode()
    reply = handle_command(name, payload, target,
                           seen if seen is not None else SeenCommands.in_memory(), **kw)
    CommandReply.model_validate(reply)  # every reply honours the published schema
    return reply


def test_ping_and_status(target: LineTarget):
    assert run("ping", {"id": "c1"}, target)["result"] == {"pong": True}
    reply = run("status.get", {"id": "c2"}, target)
    assert reply["ok"] and reply["result"]["rules_version"] == "default-3"


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
    assert target.lanes == {} and target.rules.version == "default-3"


def test_oversized_payload_is_refused_before_parsing(target: LineTarget):
    reply = run("ping", b'{"id": "x"}' + b" " * 100, target, rules=CommandRules(max_bytes=64))
    assert reply["error"]["code"] == "too_large"


def test_replayed_id_gets_the_same_reply_without_acting_twice(target: LineTarget):
    seen = SeenCommands.in_memory(max_ids=2)
    first = run("rules.apply", {"id": "same", "args": {"rules": GOOD_RULES}}, target, seen)
    again = run("rules.apply", {"id": "same", "args": {"rules": GOOD_RULES}}, target, seen)
    assert again == first and target.applied == 1
    for other in "abc":
        run("lanes.set", {"id": other, "args": {"lane": "EXPORT", "state": "open"}}, target,
            seen)
    seen.prune()  # the store is bounded: "same" is forgotten
    assert len(seen) == 2
    run("rules.apply", {"id": "same", "args": {"rules": GOOD_RULES}}, target, seen)
    assert target.applied == 2


def test_seen_ids_survive_a_restart(target: LineTarget, tmp_path: Path):
    body = {"id": "block-1", "args": {"lane": "ZHUHAI", "state": "blocked"}}
    seen = SeenCommands.open(tmp_path)
    first = run("lanes.set", body, target, seen)
    seen.close()
    target.lanes.clear()  # as a restarted agent would find its lanes after a later `open`
    again = run("lanes.set", body, target, SeenCommands.open(tmp_path))
    assert again == first and target.lanes == {}


def test_deeply_nested_json_is_an_error_reply_not_a_crash(target: LineTarget):
    deep = b'{"id": "deep", "args": {"x": ' + b"[" * 100_000 + b"]" * 100_000 + b"}}"
    reply = run("lanes.set", deep, target)
    assert reply["error"]["code"] == "too_complex"
    medium = b'{"id": "deep", "args": {"x": ' + b"[" * 200 + b"]" * 200 + b"}}"
    reply = run("ping", medium, target)  # parses, but deeper than any command needs
    assert reply["error"]["code"] == "too_complex" and "deeper" in reply["error"]["message"]
    wide = json.dumps({"id": "wide", "args": {"x": [0] * 60_000}}).encode()
    assert run("ping", wide, target)["error"]["code"] == "too_complex"


def test_a_rule_set_with_thousands_of_problems_gets_a_small_reply(target: LineTarget):
    lanes = "".join(f"[lanes.L{i}]\nbin = 0\n" for i in range(90))
    rules = "".join(f'[[rules]]\nid = "r{i}"\nlane = "NOPE"\n' for i in range(400))
    text = f'version = "v"\n{lanes}{rules}[default]\nlane = "NOPE"\n'
    reply = run("rules.apply", {"id": "many", "args": {"rules": text}}, target)
    error = reply["error"]
    assert error["problems_total"] > 400 and len(error["problems"]) == 20
    assert len(json.dumps(reply)) < 8_000


def test_stale_future_and_undated_commands_are_refused(target: LineTarget):
    body = {"id": "lane-1", "args": {"lane": "ZHUHAI", "state": "blocked"}}
    now = datetime.now(UTC)
    old = run("lanes.set", dated(body, issued_at=now - timedelta(minutes=5)), target)
    assert old["error"]["code"] == "stale" and "expired" in old["error"]["message"]
    future = run("lanes.set", dated(body, issued_at=now + timedelta(minutes=5)), target)
    assert future["error"]["code"] == "stale" and "future" in future["error"]["message"]
    forever = run("lanes.set", dated(body, lifetime_s=7200), target)
    assert forever["error"]["code"] == "stale"
    undated = run("lanes.set", {**body, "issued_at": None}, target)
    assert undated["error"]["code"] == "bad_request" and "issued_at" in undated["error"]["message"]
    assert target.lanes == {}
    # Within the clock tolerance, and a long but allowed lifetime: acted on.
    skewed = dated({**body, "id": "lane-2"}, issued_at=now + timedelta(seconds=20))
    assert run("lanes.set", skewed, target)["ok"]
    long_lived = dated({**body, "id": "lane-3"}, issued_at=now - timedelta(minutes=30),
                       lifetime_s=3600)
    assert run("lanes.set", long_lived, target)["ok"]


def test_undated_commands_may_be_accepted_by_configuration(target: LineTarget):
    from edge_agent.sync.command_checks import Freshness

    body = {"id": "old-central", "args": {"lane": "ZHUHAI", "state": "full"}, "issued_at": None}
    reply = run("lanes.set", body, target,
                rules=CommandRules(freshness=Freshness(accept_undated=True)))
    assert reply["ok"] and target.lanes == {"ZHUHAI": LaneState.FULL}


def test_a_retained_command_is_refused_with_a_reason(target: LineTarget):
    body = dated({"id": "kept", "args": {"lane": "ZHUHAI", "state": "blocked"}})
    with capture_logs() as logs:
        reply = run("lanes.set", body, target, retained=True)
    assert reply["error"]["code"] == "retained" and target.lanes == {}
    assert any(e["event"] == "command.refused" and e["code"] == "retained" for e in logs)


def test_an_exception_in_a_command_is_its_error_reply(target: LineTarget, monkeypatch):
    def explode(*args):
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(target, "prepare_rules", explode)
    reply = run("rules.apply", {"id": "boom", "args": {"rules": GOOD_RULES}}, target)
    assert reply["error"]["code"] == "internal"
    monkeypatch.setattr(target, "status", explode)
    assert run("status.get", {"id": "boom-2"}, target)["error"]["code"] == "internal"


@given(st.binary(max_size=300), st.sampled_from(["ping", "lanes.set", "rules.apply", "x"]),
       st.booleans())
def test_arbitrary_bytes_never_raise(tmp_path_factory, payload: bytes, name: str, retained):
    target = _shared_target(tmp_path_factory)
    reply = handle_command(name, payload, target, SeenCommands.in_memory(), retained=retained)
    CommandReply.model_validate(reply)


_targets: dict = {}


def _shared_target(factory) -> LineTarget:
    # One target for all examples: hypothesis calls the test many times per fixture.
    if "t" not in _targets:
        _targets["t"] = LineTarget(factory.mktemp("fuzz"))
    return _targets["t"]


def test_inbox_prepares_on_its_worker_and_steps_on_the_draining_thread(target: LineTarget):
    import threading

    from support.waiting import wait_for

    inbox = CommandInbox(target, SeenCommands.in_memory(), size=1)
    replies: list[tuple[dict, str]] = []
    prepared_on: list[str] = []
    prepare_rules = target.prepare_rules

    def traced_prepare(text: str):
        prepared_on.append(threading.current_thread().name)
        return prepare_rules(text)

    target.prepare_rules = traced_prepare  # type: ignore[method-assign]

    def respond(reply: dict) -> None:
        replies.append((reply, threading.current_thread().name))

    lanes = json.dumps(dated({"id": "1", "args": {"lane": "EXPORT", "state": "blocked"}}))
    assert inbox.submit(Command("lanes.set", lanes.encode(), respond)) is None
    busy = inbox.submit(Command("ping", b'{"id": "2"}', respond))
    assert busy is not None and busy["error"]["code"] == "busy"  # full: never blocks paho
    inbox.start()
    assert inbox.wait(10)
    assert target.lanes == {}  # nothing acted until the agent's thread drains
    rules = json.dumps(dated({"id": "3", "args": {"rules": GOOD_RULES}}))
    assert inbox.submit(Command("rules.apply", rules.encode(), respond)) is None
    wait_for(lambda: inbox.process(target), what="the lanes.set step")
    assert target.lanes == {"EXPORT": LaneState.BLOCKED}
    wait_for(lambda: inbox.process(target), what="the rules.apply step")
    wait_for(lambda: len(replies) == 2, what="both replies")
    assert prepared_on == ["command-worker"] and target.rules.version == "2026-02"
    assert all(reply["ok"] and thread == "command-worker" for reply, thread in replies)
    inbox.close()


def test_the_loop_runs_a_bounded_number_of_steps_per_turn(target: LineTarget):
    from support.waiting import wait_for

    inbox = CommandInbox(target, SeenCommands.in_memory())
    replies: list[dict] = []
    inbox.start()
    for i in range(10):
        body = json.dumps(dated({"id": f"s{i}", "args": {}})).encode()
        inbox.submit(Command("status.get", body, replies.append))
    wait_for(lambda: inbox._steps.qsize() == 10, what="ten prepared steps")
    assert inbox.process(target, limit=4) == 4 and inbox.has_waiting()
    assert inbox.wait(0)  # woken again for the rest
    wait_for(lambda: inbox.process(target, limit=4) == 0 and len(replies) == 10,
             what="the rest, four at a time")
    inbox.close()


def test_only_outcomes_of_the_work_are_remembered(target: LineTarget):
    seen = SeenCommands.in_memory()
    wrong = run("lanes.set", {"id": "fix-me", "args": {"lane": "ZHUHAI", "state": "closed"}},
                target, seen)
    assert wrong["error"]["code"] == "bad_request"
    fixed = run("lanes.set", {"id": "fix-me", "args": {"lane": "ZHUHAI", "state": "full"}},
                target, seen)
    assert fixed["ok"] and target.lanes == {"ZHUHAI": LaneState.FULL}
    refused = run("lanes.set", {"id": "mars", "args": {"lane": "MARS", "state": "open"}},
                  target, seen)
    assert refused["error"]["code"] == "rejected"
    assert seen.get("lanes.set", "mars") == refused  # refused after its work: kept


def test_read_only_commands_run_again_instead_of_being_stored(target: LineTarget):
    seen = SeenCommands.in_memory()
    first = run("status.get", {"id": "st-1"}, target, seen)
    target.lanes["ZHUHAI"] = LaneState.FULL
    again = run("status.get", {"id": "st-1"}, target, seen)
    assert first["result"]["lanes"] == {} and again["result"]["lanes"] == {"ZHUHAI": "full"}
    assert len(seen) == 0


def test_ids_are_kept_for_a_commands_longest_life_and_then_forgotten(tmp_path: Path):
    from edge_agent.sync import command_ids

    seen = SeenCommands.open(tmp_path, keep_s=command_ids.KEEP_S)
    seen.remember("lanes.set", "old", {"ok": True})
    seen.prune()
    assert seen.get("lanes.set", "old") == {"ok": True}  # well within its keeping time
    seen.close()
    expired = SeenCommands.open(tmp_path, keep_s=0.0)  # opening prunes: nothing is that young
    assert expired.get("lanes.set", "old") is None and len(expired) == 0
    expired.close()
