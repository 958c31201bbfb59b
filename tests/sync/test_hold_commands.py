"""holds.put and holds.lift through every check of the command path, against the agent's own
prep (the holds' store on disk) and a hold index standing in for the decision loop: good
holds apply, every kind of bad one is refused naming the problem, and nothing changes then."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sync_helpers import dated

from edge_agent.config import parse_config
from edge_agent.runtime import command_prep
from edge_agent.runtime.command_prep import AgentCommandPrep
from edge_agent.sorting.hold_store import HoldStore
from edge_agent.sorting.holds import HoldIndex
from edge_agent.sorting.manifest import Manifest
from edge_agent.sync.command_ids import SeenCommands
from edge_agent.sync.commands import handle_command
from edge_agent.sync.payloads import MAX_HOLD_BATCH, CommandReply

S10 = "RB123456785GB"


class HoldLine(AgentCommandPrep):
    """The agent's prep with its store, and the loop's index as the command target."""

    def __init__(self, state_dir: Path):
        config = parse_config({"site": "HKG1", "line": "L1", "state_dir": str(state_dir)})
        self.manifest = Manifest.open(state_dir)
        self.store = HoldStore.open(state_dir)
        super().__init__(config, self.manifest, lambda *args: None, self.store)
        self.index = HoldIndex(self.store.active(datetime.now(UTC).timestamp()))

    def apply_holds(self, put: list, lifted: list[str]) -> int:
        for hold in put:
            self.index.put(hold)
        for hold_id in lifted:
            self.index.lift(hold_id)
        return len(self.index)

    def status(self) -> dict[str, Any]:
        return {}

    def held(self, barcode: str | None = S10, order_id: str | None = None):
        return self.index.find(barcode, order_id, datetime.now(UTC).timestamp())

    def close(self) -> None:
        self.store.close()
        self.manifest.close()


@pytest.fixture
def line(tmp_path: Path):
    held = HoldLine(tmp_path)
    yield held
    held.close()


def run(line: HoldLine, name: str, args: dict, command_id: str = "c1") -> dict:
    payload = json.dumps(dated({"id": command_id, "args": args})).encode()
    reply = handle_command(name, payload, line, SeenCommands.in_memory())
    CommandReply.model_validate(reply)
    return reply


def later(hours: float = 2.0) -> str:
    return (datetime.now(UTC) + timedelta(hours=hours)).isoformat()


def a_hold(hold_id: str = "H1", **fields: Any) -> dict:
    return {"hold_id": hold_id, "barcode": S10, "reason": "customs inspection",
            "expires_at": later(), **fields}


def test_put_applies_and_persists_lift_ends_and_both_are_idempotent(line: HoldLine):
    reply = run(line, "holds.put", {"holds": [a_hold(), a_hold("H2", barcode=None,
                                                               order_id="ORD-7")]})
    assert reply["ok"] and reply["result"] == {"put": 2, "active": 2}
    assert line.held().hold_id == "H1" and line.held("X", "ORD-7").hold_id == "H2"
    again = run(line, "holds.put", {"holds": [a_hold(reason="order cancelled")]}, "c2")
    assert again["result"] == {"put": 1, "active": 2}  # same id: replaced, not added
    assert line.held().reason == "order cancelled"
    lifted = run(line, "holds.lift", {"hold_ids": ["H1", "H9"]}, "c3")
    assert lifted["result"] == {"lifted": 1, "not_found": 1, "active": 1}
    assert line.held() is None
    assert [h.hold_id for h in line.store.active(datetime.now(UTC).timestamp())] == ["H2"]


BAD_PUTS = [
    ("both_keys", {"holds": [a_hold(order_id="ORD-1")]}, "args.holds.0:",
     "exactly one of barcode and order_id"),
    ("no_key", {"holds": [a_hold(barcode=None)]}, "args.holds.0:",
     "exactly one of barcode and order_id"),
    ("control_character_in_reason", {"holds": [a_hold(reason="ok\x1b[2J")]},
     "args.holds.0.reason:", ""),
    ("c1_control_in_reason", {"holds": [a_hold(reason="ok\x9b2J")]}, "args.holds.0.reason:",
     ""),
    ("reason_too_long", {"holds": [a_hold(reason="r" * 201)]}, "args.holds.0.reason:", ""),
    ("id_with_space", {"holds": [a_hold("H 1")]}, "args.holds.0.hold_id:", ""),
    ("naive_expiry", {"holds": [a_hold(expires_at="2030-01-01T00:00:00")]},
     "args.holds.0.expires_at:", "timezone"),
    ("unknown_field", {"holds": [a_hold(note="x")]}, "args.holds.0.note:", "unknown setting"),
    ("empty", {"holds": []}, "args.holds:", ""),
    ("too_many", {"holds": [a_hold(f"H{i}") for i in range(MAX_HOLD_BATCH + 1)]},
     "args.holds:", ""),
    ("already_expired", {"holds": [a_hold(), a_hold("H2", expires_at=later(-1))]},
     "holds[1].expires_at:", "already past"),
    ("id_twice", {"holds": [a_hold(), a_hold()]}, "holds[1].hold_id:", "already holds[0]"),
]


@pytest.mark.parametrize(("args", "where", "says"), [case[1:] for case in BAD_PUTS],
                         ids=[case[0] for case in BAD_PUTS])
def test_a_bad_put_is_refused_naming_the_problem_and_nothing_changes(line: HoldLine, args,
                                                                      where, says):
    assert run(line, "holds.put", {"holds": [a_hold("KEEP", barcode="KEPT1")]}, "first")["ok"]
    reply = run(line, "holds.put", args, "bad")
    assert not reply["ok"] and reply["error"]["code"] in ("bad_request", "rejected")
    problems = reply["error"]["problems"]
    assert any(p.startswith(where) and says in p for p in problems), problems
    now = datetime.now(UTC).timestamp()
    assert [h.hold_id for h in line.store.active(now)] == ["KEEP"]  # the last good state
    assert len(line.index) == 1 and line.held() is None


@pytest.mark.parametrize(("args", "where"), [
    ({"hold_ids": []}, "args.hold_ids:"),
    ({"hold_ids": ["bad id"]}, "args.hold_ids.0:"),
    ({"hold_ids": "H1"}, "args.hold_ids:"),
    ({"ids": ["H1"]}, "args.ids:"),
], ids=["empty", "id_with_space", "not_a_list", "misspelt"])
def test_a_bad_lift_is_refused_and_the_hold_stays(line: HoldLine, args, where):
    assert run(line, "holds.put", {"holds": [a_hold()]}, "first")["ok"]
    reply = run(line, "holds.lift", args, "bad")
    assert not reply["ok"] and reply["error"]["code"] == "bad_request"
    assert any(p.startswith(where) for p in reply["error"]["problems"]), reply["error"]
    assert line.held() is not None


def test_past_the_bound_of_active_holds_is_over_limit(line: HoldLine, monkeypatch):
    monkeypatch.setattr(command_prep, "MAX_ACTIVE_HOLDS", 3)
    assert run(line, "holds.put", {"holds": [a_hold(f"H{i}") for i in range(3)]})["ok"]
    assert run(line, "holds.put", {"holds": [a_hold("H0", reason="moved")]}, "c2")["ok"]
    reply = run(line, "holds.put", {"holds": [a_hold("H3")]}, "c3")
    assert reply["error"]["code"] == "over_limit" and "bound of 3" in reply["error"]["problems"][0]
    assert len(line.index) == 3


def test_a_store_that_fails_is_a_refusal_not_a_crash(line: HoldLine):
    line.store.close()  # a closed connection: every write raises
    reply = run(line, "holds.put", {"holds": [a_hold()]})
    assert not reply["ok"] and reply["error"]["code"] == "rejected"
    assert "holds not stored" in reply["error"]["problems"][0] and line.held() is None


@pytest.mark.parametrize(("envelope", "retained", "code"), [
    ({"issued_at": (datetime.now(UTC) - timedelta(hours=2)).isoformat()}, False, "stale"),
    ({"issued_at": (datetime.now(UTC) + timedelta(hours=2)).isoformat()}, False, "stale"),
    ({}, True, "retained"),
], ids=["expired_command", "issued_in_the_future", "retained"])
def test_a_stale_or_retained_hold_command_is_never_acted_on(line: HoldLine, envelope, retained,
                                                           code):
    body = dated({"id": "late", "args": {"holds": [a_hold()]}}) | envelope
    reply = handle_command("holds.put", json.dumps(body).encode(), line,
                           SeenCommands.in_memory(), retained=retained)
    assert reply["error"]["code"] == code
    assert line.store.active(datetime.now(UTC).timestamp()) == [] and line.held() is None


def test_a_repeated_command_id_is_answered_again_without_acting_twice(line: HoldLine):
    seen = SeenCommands.in_memory()
    payload = json.dumps(dated({"id": "once", "args": {"holds": [a_hold()]}})).encode()
    first = handle_command("holds.put", payload, line, seen)
    assert run(line, "holds.lift", {"hold_ids": ["H1"]}, "lift")["ok"]
    again = handle_command("holds.put", payload, line, seen)
    assert again == first and line.held() is None  # the lift stands: not put back
