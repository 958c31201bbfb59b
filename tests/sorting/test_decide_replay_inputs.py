"""`decide` finds the agent's manifest like the manifest commands do (or says it has none);
`replay` names bad lines instead of a traceback; neither prints a device's escapes raw."""

from __future__ import annotations

import json

from edge_agent.cli import state_location

from .helpers import run

GS1_SHANGHAI = "]C100376130321109103420421156200001"
MORNING = "2026-11-20T10:00:00+08:00"
# A label (or a scanner) that retitles the terminal and clears it.
HOSTILE = "\x1b]0;owned\x07\x1b[2J"


def test_decide_reads_the_manifest_of_the_configured_state_dir(capsys, tmp_path, monkeypatch):
    config = tmp_path / "agent.toml"
    config.write_text('site = "HKG1"\nline = "L3"\nstate_dir = "state"\n')
    data = tmp_path / "m.csv"
    data.write_text("barcode,country,postal_code\nRB123456785GB,US,10001\n")
    assert run(capsys, "manifest", "import", str(data), "--config", str(config))[0] == 0
    monkeypatch.setattr(state_location, "DEFAULT_CONFIG", config)
    code, out, _ = run(capsys, "decide", "RB123456785GB", "--weight", "1", "--at", MORNING)
    assert code == 0
    assert out.startswith("lane EXPORT")
    assert "destination: US 10001" in out and "(from manifest)" in out
    assert f"manifest: {tmp_path / 'state' / 'manifest.sqlite3'}: found" in out


def test_decide_without_a_manifest_says_where_it_looked(capsys, tmp_path):
    code, out, _ = run(capsys, "decide", "RB123456785GB", "--weight", "1", "--at", MORNING)
    assert code == 0
    assert "(from nowhere)" not in out
    assert "destination: ?" in out and "not in the barcode, not in the manifest" in out
    missing = tmp_path / "absent" / "state" / "manifest.sqlite3"
    assert f"manifest: none at {missing} (the default: no --state-dir" in out
    assert not missing.parent.exists()


def test_decide_shows_a_hostile_barcode_escaped(capsys):
    code, out, _ = run(capsys, "decide", "]C1" + HOSTILE, "--at", MORNING)
    assert code == 0
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b" in out


def _decision(capsys) -> dict:
    return json.loads(run(capsys, "decide", GS1_SHANGHAI, "--weight", "2", "--at", MORNING,
                          "--json")[1])


def test_replay_names_a_line_that_is_not_utf8(capsys, tmp_path):
    events = tmp_path / "events.jsonl"
    good = json.dumps(_decision(capsys)).encode()
    events.write_bytes(good + b"\n" + b'{"parcel_id": "\xff\xfe"}\n' + good + b"\n")
    rules = tmp_path / "rules.toml"
    rules.write_text(run(capsys, "rules", "show")[1])
    code, out, err = run(capsys, "replay", str(events), "--rules", str(rules))
    assert code == 2
    assert out.startswith("2 parcels replayed")
    assert f"{events}: line 2: not UTF-8 text (invalid start byte at byte 16 of the line)" in err
    assert "Traceback" not in err


def test_replay_shows_hostile_text_from_the_file_escaped(capsys, tmp_path):
    record = _decision(capsys)
    record.update(barcode=HOSTILE, lane="ZHUHAI" + HOSTILE, rule="old" + HOSTILE)
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(record) + "\n" + json.dumps({"seq": HOSTILE}) + "\n")
    rules = tmp_path / "rules.toml"
    rules.write_text(run(capsys, "rules", "show")[1])
    _, out, err = run(capsys, "replay", str(events), "--rules", str(rules))
    assert "ZHUHAI\\x1b]0;owned\\x07\\x1b[2J" in out
    assert "\x1b" not in out and "\x1b" not in err


def test_replay_names_a_line_nested_too_deeply(capsys, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(_decision(capsys)) + "\n" + "[" * 100_000 + "\n")
    rules = tmp_path / "rules.toml"
    rules.write_text(run(capsys, "rules", "show")[1])
    code, out, err = run(capsys, "replay", str(events), "--rules", str(rules))
    assert code == 2 and out.startswith("1 parcels replayed")
    assert "line 2: not a decision record (JSON nested too deeply)" in err


def test_decide_shows_the_agents_hold_and_the_parcels_declarations(capsys, tmp_path):
    from datetime import datetime as moment

    from edge_agent.sorting.hold_store import HoldStore
    from edge_agent.sorting.holds import Hold

    config = tmp_path / "agent.toml"
    config.write_text('site = "HKG1"\nline = "L3"\nstate_dir = "state"\n')
    data = tmp_path / "m.csv"
    data.write_text("barcode,country,postal_code,order_id,dangerous_goods,declared_value,"
                    "currency,customs_mode\n"
                    "RB123456785GB,CN,200001,ORD-7,liquid,100,HKD,personal_postal\n")
    assert run(capsys, "manifest", "import", str(data), "--config", str(config))[0] == 0
    at = moment.fromisoformat(MORNING).timestamp()
    with_store = HoldStore.open(tmp_path / "state")
    with_store.put([Hold("H1", None, "ORD-7", "order cancelled", at + 60, at)], at)
    with_store.close()
    code, out, _ = run(capsys, "decide", "RB123456785GB", "--weight", "1", "--at", MORNING,
                       "--config", str(config))
    assert code == 0 and out.startswith("lane EXCEPTION (bin 4)   rule held"), out
    assert "hold: H1 from central: order cancelled" in out
    assert "dangerous goods: liquid" in out
    assert "customs: declared 100.00 HKD = 95.00 CNY, personal_postal: within_limit" in out
    later = "2026-11-20T10:01:00+08:00"  # the hold has expired: the parcel's own constraints
    code, out, _ = run(capsys, "decide", "RB123456785GB", "--weight", "1", "--at", later,
                       "--config", str(config))
    assert out.startswith("lane EXCEPTION (bin 4)   rule zhuhai") and "air_restricted" in out
