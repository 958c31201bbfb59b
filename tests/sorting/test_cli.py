"""The decide, rules, replay and manifest commands, called as `edge-agent` would call them."""

import json

import pytest

from edge_agent.cli.main import main
from edge_agent.sorting.rules import default_rules

GS1_SHANGHAI = "]C100376130321109103420421156200001"
MORNING = "2026-11-20T10:00:00+08:00"


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_decide_json(capsys):
    code, out, _ = run(capsys, "decide", GS1_SHANGHAI, "--weight", "2.5", "--at", MORNING, "--json")
    record = json.loads(out)
    assert code == 0
    assert (record["lane"], record["bin"], record["rule"], record["reasons"]) == (
        "ZHUHAI", 1, "zhuhai", [])


def test_decide_with_the_gs_byte_and_lane_state(capsys):
    barcode = "]C100376130321109103420\x1d421156310000"
    code, out, _ = run(capsys, "decide", barcode, "--weight", "2", "--at", "2026-11-20T10:00",
                       "--lane", "ZHUHAI=full", "--json")
    record = json.loads(out)
    assert code == 0
    assert (record["lane"], record["reasons"]) == ("SHANGHAI", ["lane_full_overflow"])
    assert record["inputs"]["province"] == "Zhejiang"


def test_decide_human_output_explains(capsys):
    code, out, _ = run(capsys, "decide", GS1_SHANGHAI, "--at", MORNING)
    assert code == 0
    assert out.startswith("lane EXCEPTION (bin 4)   rule no_stable_weight")
    assert "reason no_stable_weight: no stable weight" in out


def test_decide_uses_the_manifest(capsys, tmp_path):
    csv = tmp_path / "m.csv"
    csv.write_text("barcode,country,postal_code,declared_weight_kg\nRB123456785GB,US,10001,2\n")
    assert run(capsys, "manifest", "import", str(csv), "--state-dir", str(tmp_path))[0] == 0
    code, out, _ = run(capsys, "decide", "RB123456785GB", "--weight", "2.05",
                       "--state-dir", str(tmp_path), "--json")
    record = json.loads(out)
    assert code == 0
    assert (record["lane"], record["inputs"]["destination_source"]) == ("EXPORT", "manifest")


@pytest.mark.parametrize(("argv", "message"), [
    (["--at", "yesterday"], "--at: 'yesterday' is not an ISO 8601 time"),
    (["--lane", "ZHUHAI=closed"], "--lane: 'ZHUHAI=closed' must be LANE=open|full|blocked"),
    (["--lane", "MOON=full"], "--lane: unknown lane 'MOON'"),
    (["--weight", "-3"], "--weight: -3.0 is not a weight in kg"),
    (["--timezone", "Mars/Olympus"], "--timezone: unknown time zone"),
    (["--state-dir", "/nonexistent-dir"], "--state-dir: no manifest at"),
])
def test_decide_bad_input(capsys, argv, message):
    code, _, err = run(capsys, "decide", "RB123456785GB", *argv)
    assert code == 2
    assert message in err


def test_rules_check(capsys, tmp_path):
    good = tmp_path / "good.toml"
    code, text, _ = run(capsys, "rules", "show")
    assert code == 0
    good.write_text(text)
    code, out, _ = run(capsys, "rules", "check", str(good))
    assert code == 0 and "OK (version default-3, 4 lanes, 17 rules)" in out
    bad = tmp_path / "bad.toml"
    bad.write_text(text.replace("weight_over_kg = 50.0", "weight_over_kg = \"heavy\""))
    code, out, _ = run(capsys, "rules", "check", str(bad), "--json")
    result = json.loads(out)
    assert code == 2 and not result["ok"]
    assert result["problems"][0].startswith("rules[8].when.weight_over_kg: ")


def _decisions(tmp_path, capsys):
    """Two recorded parcels: one for Shanghai at 10:00, one export; as decisions and events."""
    records = []
    for barcode in (GS1_SHANGHAI, "]C100376130321109103420421840100001"):
        _, out, _ = run(capsys, "decide", barcode, "--weight", "2", "--at", MORNING, "--json")
        records.append(json.loads(out))
    return records


def test_replay_shows_what_changes(capsys, tmp_path):
    first, second = _decisions(tmp_path, capsys)
    event = {"event_id": "e1", "seq": 7, "schema": "parcel/1", **second}
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(first) + "\n" + json.dumps(event) + "\n")
    _, text, _ = run(capsys, "rules", "show")
    new_rules = tmp_path / "new.toml"
    # The new rules close the Zhuhai route at 09:00.
    new_rules.write_text(text.replace('time_from = "20:00"', 'time_from = "09:00"')
                         .replace('time_before = "20:00"', 'time_before = "09:00"'))
    code, out, _ = run(capsys, "replay", str(events), "--rules", str(new_rules), "--json")
    result = json.loads(out)
    assert code == 0
    assert (result["parcels"], result["changed"]) == (2, 1)
    [change] = result["changes"]
    assert (change["from"], change["to"], change["reasons"]) == ("ZHUHAI", "SHANGHAI",
                                                                 ["after_cutoff"])
    code, out, _ = run(capsys, "replay", str(events), "--rules", str(new_rules))
    assert "2 parcels replayed" in out and "ZHUHAI -> SHANGHAI" in out


def test_replay_with_the_same_rules_changes_nothing(capsys, tmp_path):
    events = tmp_path / "events.jsonl"
    events.write_text("".join(json.dumps(r) + "\n" for r in _decisions(tmp_path, capsys)))
    rules = tmp_path / "rules.toml"
    rules.write_text(run(capsys, "rules", "show")[1])
    result = json.loads(run(capsys, "replay", str(events), "--rules", str(rules), "--json")[1])
    assert (result["parcels"], result["changed"]) == (2, 0)
    assert default_rules().version == "default-3"


def test_replay_lists_bad_lines(capsys, tmp_path):
    [good, _] = _decisions(tmp_path, capsys)
    broken = dict(good, decided_at="not a time")
    events = tmp_path / "events.jsonl"
    events.write_text(json.dumps(good) + "\n{not json\n" + json.dumps({"seq": 1}) + "\n"
                      + json.dumps(broken) + "\n")
    rules = tmp_path / "rules.toml"
    rules.write_text(run(capsys, "rules", "show")[1])
    code, out, err = run(capsys, "replay", str(events), "--rules", str(rules), "--json")
    result = json.loads(out)
    assert code == 2 and result["parcels"] == 1
    assert [p.split(":")[0] for p in result["problems"]] == ["line 2", "line 3", "line 4"]
    assert "line 3: not a decision record (missing parcel_id)" in err


def test_manifest_commands(capsys, tmp_path):
    data = tmp_path / "m.jsonl"
    data.write_text('{"barcode": "376130321109103420", "country": "CN", "postal_code": "200001"}\n')
    code, out, _ = run(capsys, "manifest", "import", str(data), "--state-dir", str(tmp_path),
                       "--json")
    assert code == 0 and json.loads(out)["rows"] == 1
    # `show` accepts the scanned form and finds the SSCC it carries.
    code, out, _ = run(capsys, "manifest", "show", GS1_SHANGHAI, "--state-dir", str(tmp_path),
                       "--json")
    assert code == 0 and json.loads(out)["postal_code"] == "200001"
    assert run(capsys, "manifest", "show", "nope", "--state-dir", str(tmp_path))[0] == 1
    code, out, _ = run(capsys, "manifest", "stats", "--state-dir", str(tmp_path), "--json")
    assert json.loads(out)["entries"] == 1


def test_manifest_import_bad_line_exit_2(capsys, tmp_path):
    data = tmp_path / "m.csv"
    data.write_text("barcode,country\nA1,CN\nA2,C\n")
    code, _, err = run(capsys, "manifest", "import", str(data), "--state-dir", str(tmp_path))
    assert code == 2
    assert "line 3: country: 'C' must be an ISO 3166 alpha-2 code" in err


def test_decide_with_dimensions_shows_the_chargeable_weight(capsys):
    code, out, _ = run(capsys, "decide", GS1_SHANGHAI, "--weight", "2", "--dims", "600x400x300",
                       "--at", MORNING, "--json")
    inputs = json.loads(out)["inputs"]
    assert code == 0
    assert (inputs["volume_cm3"], inputs["chargeable_weight_kg"]) == (72000.0, 12.0)
    code, out, _ = run(capsys, "decide", GS1_SHANGHAI, "--weight", "2", "--dims", "600x400x300",
                       "--at", MORNING)
    assert "chargeable weight 12 kg" in out


def test_decide_with_two_labels_that_name_two_parcels(capsys):
    other = "]C100376130321109103437421156200001"  # another SSCC, same kind
    code, out, _ = run(capsys, "decide", GS1_SHANGHAI, "--label", other, "--weight", "2",
                       "--at", MORNING, "--json")
    record = json.loads(out)
    assert code == 0
    assert (record["lane"], record["reasons"]) == ("EXCEPTION", ["multiple_labels"])
    assert record["inputs"]["labels"] == [GS1_SHANGHAI, other]


@pytest.mark.parametrize("dims", ["400x300", "400x300xten", "0x1x1", "1x-2x3"])
def test_decide_refuses_dimensions_it_cannot_read(capsys, dims):
    code, _, err = run(capsys, "decide", GS1_SHANGHAI, "--dims", dims)
    assert code == 2 and "--dims" in err


def test_rules_check_uses_the_sorters_bins(capsys, tmp_path):
    _, text, _ = run(capsys, "rules", "show")
    far = tmp_path / "far.toml"
    far.write_text(text.replace("bin = 1\n", "bin = 100\n", 1))
    code, out, _ = run(capsys, "rules", "check", str(far), "--json")
    assert code == 2
    assert any("bin 100" in p and "generic-divert" in p for p in json.loads(out)["problems"])
    code, out, _ = run(capsys, "rules", "check", str(far), "--sorter-profile", "generic-divert")
    assert code == 2
    code, _, err = run(capsys, "rules", "check", str(far), "--sorter-profile", "mt-sics")
    assert code == 2 and "not a sorter profile" in err  # a scale's profile names no bins
    near = tmp_path / "near.toml"
    near.write_text(text.replace("bin = 1\n", "bin = 99\n", 1))
    code, out, _ = run(capsys, "rules", "check", str(near))
    assert code == 0 and "'generic-divert' (1-99)" in out
