"""`manifest import|show|stats` on bad files and missing stores: a clear error naming the line,
values cut to a readable length, exit 2; read-only commands never create a store."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from edge_agent.cli import state_location
from edge_agent.state_lock import StateDirLock

from .helpers import run


def import_(capsys, path: Path, state: Path) -> tuple[int, str, str]:
    return run(capsys, "manifest", "import", str(path), "--state-dir", str(state))


def refused(capsys, tmp_path: Path, name: str, content: str | bytes) -> str:
    """Imports a file holding `content`; asserts it is refused (exit 2) and returns the error."""
    data = tmp_path / name
    if isinstance(content, bytes):
        data.write_bytes(content)
    else:
        data.write_text(content)
    code, _, err = import_(capsys, data, tmp_path / "state")
    assert code == 2
    return err


def test_a_csv_field_over_the_csv_limit_names_its_line(capsys, tmp_path):
    err = refused(capsys, tmp_path, "m.csv",
                  "barcode,country\nA1,CN\n" + "B" * (csv.field_size_limit() + 10) + ",CN\n")
    assert f"line 3: not readable as CSV (a field longer than {csv.field_size_limit():,}" in err
    assert "Traceback" not in err and len(err) < 400


def test_a_50_mb_barcode_in_json_lines_is_cut_in_the_error(capsys, tmp_path):
    huge = "X" * (50 * 1024 * 1024)
    err = refused(capsys, tmp_path, "m.jsonl", '{"barcode": "A1", "country": "CN"}\n'
                  + json.dumps({"barcode": huge, "country": "CN"}) + "\n")
    assert "line 2: barcode: 'XXXX" in err
    assert f"({len(huge):,} characters) must be 1-64 printable characters" in err
    assert len(err) < 400


def test_non_utf8_bytes_name_their_line(capsys, tmp_path):
    err = refused(capsys, tmp_path, "m.csv", b"barcode,country\nA1,CN\nA2,CN\n\xff\xfeA3,CN\n")
    assert "line 4: not UTF-8 text" in err


def test_duplicate_barcodes_in_one_file_are_refused_naming_both_lines(capsys, tmp_path):
    err = refused(capsys, tmp_path, "m.csv", "barcode,country\nA1,CN\nA2,US\nA1,GB\n")
    assert "line 4: barcode 'A1' already on line 2" in err
    # Refused whole: nothing went in.
    _, out, _ = run(capsys, "manifest", "stats", "--state-dir", str(tmp_path / "state"),
                    "--json")
    assert json.loads(out)["entries"] == 0


@pytest.mark.parametrize("text", ["", "\n\n", "barcode,country\n"])
def test_a_file_with_no_rows_is_refused(capsys, tmp_path, text):
    assert "no manifest rows in the file" in refused(capsys, tmp_path, "m.csv", text)


def test_a_json_array_is_told_apart_from_csv(capsys, tmp_path):
    err = refused(capsys, tmp_path, "m.json", '[{"barcode": "A1", "country": "CN"}]\n')
    assert "line 1: a JSON array; a manifest is JSON Lines" in err
    assert "header" not in err.split("JSON Lines")[0]


@pytest.mark.parametrize("command", [["stats"], ["show", "A1"]])
def test_read_only_commands_never_create_a_store(capsys, tmp_path, command):
    state = tmp_path / "absent" / "state"
    code, _, err = run(capsys, "manifest", *command)
    assert code == 1
    assert not state.exists()
    assert f"no manifest at {state / 'manifest.sqlite3'}" in err
    assert "no --state-dir, no --config" in err
    code, out, _ = run(capsys, "manifest", *command, "--json")
    assert json.loads(out)["error"] == "no manifest" and not state.exists()


def test_the_state_dir_comes_from_the_config_or_the_installed_config(capsys, tmp_path,
                                                                      monkeypatch):
    config = tmp_path / "agent.toml"
    config.write_text('site = "HKG1"\nline = "L3"\nstate_dir = "line-state"\n')
    data = tmp_path / "m.csv"
    data.write_text("barcode,country\nA1,CN\n")
    assert run(capsys, "manifest", "import", str(data), "--config", str(config))[0] == 0
    assert (tmp_path / "line-state" / "manifest.sqlite3").is_file()
    code, out, _ = run(capsys, "manifest", "show", "A1", "--config", str(config), "--json")
    assert code == 0 and json.loads(out)["country"] == "CN"

    monkeypatch.setattr(state_location, "DEFAULT_CONFIG", config)
    code, out, _ = run(capsys, "manifest", "stats", "--json")
    assert code == 0 and json.loads(out)["entries"] == 1
    # An empty state directory named by the config: said so, and still nothing created.
    config.write_text('site = "HKG1"\nline = "L3"\nstate_dir = "other"\n')
    code, _, err = run(capsys, "manifest", "stats")
    assert code == 1 and f"state_dir of {config}" in err
    assert not (tmp_path / "other").exists()


def test_import_waits_for_no_one_while_an_agent_holds_the_state_dir(capsys, tmp_path):
    data = tmp_path / "m.csv"
    data.write_text("barcode,country\nA1,CN\n")
    with StateDirLock.acquire(tmp_path / "state", "edge-agent run"):
        code, _, err = import_(capsys, data, tmp_path / "state")
    assert code == 2
    assert "in use by another process" in err
    assert not (tmp_path / "state" / "manifest.sqlite3").exists()


def test_escapes_in_a_stored_entry_are_shown_not_obeyed(capsys, tmp_path):
    from edge_agent.sorting.manifest import Manifest, ManifestEntry

    with Manifest.open(tmp_path / "state") as manifest:
        manifest.upsert([ManifestEntry("A1", "CN", "200001")])
    code, out, _ = run(capsys, "manifest", "show", "\x1b]0;owned\x07\x1b[2J",
                       "--state-dir", str(tmp_path / "state"))
    assert code == 1
    assert "\x1b" not in out and "\\x1b]0;owned\\x07\\x1b[2J: not in the manifest" in out


def test_json_nested_too_deeply_is_a_bad_line_not_a_crash(capsys, tmp_path):
    err = refused(capsys, tmp_path, "m.jsonl",
                  '{"barcode": "A1", "country": "CN"}\n' + "[" * 100_000 + "\n")
    assert "line 2: not a manifest row (JSON nested too deeply)" in err
