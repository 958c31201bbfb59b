"""The agent's command work off the loop: the manifest's budget (an alarm before the limit, an
over_limit reply after it) and rule sets checked against the sorter's bins."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import pytest

from edge_agent.config import parse_config
from edge_agent.runtime import rules_store
from edge_agent.runtime.command_prep import AgentCommandPrep, ManifestFull
from edge_agent.sorting.manifest import Manifest, ManifestEntry
from edge_agent.sorting.rules import default_rules
from edge_agent.sync.command_ids import SeenCommands
from edge_agent.sync.commands import handle_command

GOOD_RULES = resources.files("edge_agent.defaults").joinpath("rules.toml").read_text()
DEFAULT_VERSION = default_rules().version


def _rows(start: int, count: int) -> list[ManifestEntry]:
    return [ManifestEntry.from_dict({"barcode": f"BG{start + i:09d}HK", "country": "CN"})
            for i in range(count)]


@pytest.fixture
def prep(tmp_path: Path):
    config = parse_config({"site": "HKG1", "line": "L1", "state_dir": str(tmp_path),
                           "manifest": {"max_rows": 10, "warn_fraction": 0.8}})
    manifest = Manifest.open(tmp_path)
    alarms: list[tuple[str, dict]] = []
    prep = AgentCommandPrep(config, manifest,
                            lambda name, severity, message, details: alarms.append(
                                (name, details)))
    prep.alarms = alarms
    prep.manifest = manifest
    yield prep
    manifest.close()


def test_the_manifest_budget_warns_before_and_refuses_after(prep):
    assert prep.upsert_manifest(_rows(0, 7)) == 7
    assert prep.alarms == []
    assert prep.upsert_manifest(_rows(0, 8)) == 8  # 7 replaced, one new: 8 of 10 rows
    assert [name for name, _ in prep.alarms] == ["manifest_near_limit"]
    assert prep.upsert_manifest(_rows(8, 1)) == 1  # still near: not raised again
    assert len(prep.alarms) == 1
    with pytest.raises(ManifestFull) as refused:
        prep.upsert_manifest(_rows(9, 2))  # 9 + 2 new > 10
    assert "manifest.max_rows" in refused.value.problems[0]
    assert prep.alarms[-1][0] == "manifest_full" and prep.alarms[-1][1]["rows"] == 9
    assert prep.manifest.get("BG000000010HK") is None  # nothing of the refused batch written
    assert prep.upsert_manifest(_rows(0, 9)) == 9  # rows already there cost nothing


def test_a_full_manifest_is_an_over_limit_reply(prep):
    prep.upsert_manifest(_rows(0, 10))
    body = {"id": "full-1", "issued_at": datetime.now(UTC).isoformat(),
            "args": {"entries": [{"barcode": "BG999999999HK", "country": "CN"}]}}
    reply = handle_command("manifest.upsert", json.dumps(body).encode(), prep,
                           SeenCommands.in_memory())
    assert reply["error"]["code"] == "over_limit" and reply["error"]["problems"]


def test_a_pushed_rule_set_with_a_bin_the_sorter_cannot_carry_is_not_kept(tmp_path):
    config = parse_config({"site": "HKG1", "line": "L1", "state_dir": str(tmp_path)})
    prep = AgentCommandPrep(config, Manifest.open(tmp_path), lambda *args: None)
    with pytest.raises(rules_store.RulesError, match="bin 100"):
        prep.prepare_rules(GOOD_RULES.replace("bin = 1\n", "bin = 100\n", 1))
    assert not rules_store.applied_rules_path(config).exists()


def test_a_kept_rule_set_the_sorter_cannot_carry_gives_way_to_the_configured_one(tmp_path):
    """An older agent kept a rule set with bin 120: the agent starts with the configured
    rules instead of crashing on the first parcel for that lane, at every restart."""
    config = parse_config({"site": "HKG1", "line": "L1", "state_dir": str(tmp_path)})
    rules_store.applied_rules_path(config).write_text(
        GOOD_RULES.replace(f'"{DEFAULT_VERSION}"', '"kept-120"')
        .replace("bin = 1\n", "bin = 120\n", 1))
    rules, source = rules_store.initial_rules(config)
    assert (rules.version, source) == (DEFAULT_VERSION, "embedded default")
