"""manifest.upsert with the columns added for holds, air and customs: they arrive, they are
optional (an old central's rows still go in), and a bad value is refused naming the row and the
field, with the manifest as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sync_helpers import LineTarget, dated

from edge_agent.sync.command_ids import SeenCommands
from edge_agent.sync.commands import handle_command


@pytest.fixture
def target(tmp_path: Path):
    line = LineTarget(tmp_path)
    yield line
    line.close()


def upsert(target: LineTarget, entries: list[dict], command_id: str = "m1") -> dict:
    payload = json.dumps(dated({"id": command_id, "args": {"entries": entries}})).encode()
    return handle_command("manifest.upsert", payload, target, SeenCommands.in_memory())


FULL_ROW = {"barcode": "RR000000001HK", "country": "CN", "postal_code": "200001",
            "order_id": "ORD-7", "dangerous_goods": ["powder", "liquid"], "declared_value": 120.5,
            "currency": "HKD", "customs_mode": "personal_postal"}


def test_new_fields_arrive_and_old_rows_still_go_in(target: LineTarget):
    assert upsert(target, [FULL_ROW, {"barcode": "RR000000002HK", "country": "CN"}])["ok"]
    entry = target.manifest.get("RR000000001HK")
    assert (entry.order_id, entry.dangerous_goods, entry.declared_value, entry.currency,
            entry.customs_mode) == ("ORD-7", "liquid;powder", 120.5, "HKD", "personal_postal")
    old = target.manifest.get("RR000000002HK")
    assert (old.order_id, old.dangerous_goods, old.declared_value) == (None, None, None)


@pytest.mark.parametrize(("field", "value"), [
    ("dangerous_goods", ["batteries"]),
    ("dangerous_goods", "liquid"),
    ("declared_value", -1),
    ("currency", "yuan"),
    ("customs_mode", "postal"),
    ("order_id", "X" * 65),
])
def test_a_bad_new_field_is_refused_naming_row_and_field(target: LineTarget, field, value):
    assert upsert(target, [FULL_ROW], "good")["ok"]
    reply = upsert(target, [FULL_ROW | {"declared_value": 1.0}, FULL_ROW | {field: value}], "bad")
    assert reply["error"]["code"] == "bad_request"
    assert any(p.startswith(f"args.entries.1.{field}") for p in reply["error"]["problems"]), \
        reply["error"]
    assert target.manifest.get("RR000000001HK").declared_value == 120.5  # nothing written
