"""`edge-agent profiles list|show|decode`, called as main([...]) with stdout captured."""

from __future__ import annotations

import json

import pytest

from edge_agent.cli.main import main
from edge_agent.devices.profiles import PROFILE_PATH_ENV, load_profile, load_profile_file


@pytest.fixture(autouse=True)
def _no_site_profiles(monkeypatch):
    monkeypatch.delenv(PROFILE_PATH_ENV, raising=False)


def lines_of(capsys) -> list[dict]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_list(capsys):
    assert main(["profiles", "list"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["NAME", "KIND", "VENDOR"]
    # A profile's line (name, kind, vendor), its summary wrapped and indented under it.
    rows = {line.split()[0]: line.split()[1] for line in out[1:] if not line.startswith(" ")}
    assert rows["toledo-continuous"] == "scale"
    assert rows["zebra-ds"] == "scanner"
    assert rows["generic-divert"] == "sorter"
    assert rows["generic-dws"] == rows["cubiscan-style"] == "dws"
    assert max(len(line) for line in out) <= 80  # a technician's terminal


def test_list_json(capsys):
    assert main(["profiles", "list", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    keyence = next(row for row in rows if row["name"] == "keyence-fixed")
    assert (keyence["kind"], keyence["vendor"]) == ("scanner", "Keyence")
    assert "\n" not in keyence["summary"]


def test_list_reports_a_broken_site_profile_and_fails(tmp_path, monkeypatch, capsys):
    (tmp_path / "broken.toml").write_text("name = ")
    monkeypatch.setenv(PROFILE_PATH_ENV, str(tmp_path))
    assert main(["profiles", "list"]) == 1
    captured = capsys.readouterr()
    assert "broken.toml" in captured.err
    assert "mt-sics" in captured.out


def test_show_is_readable_and_is_itself_a_valid_profile(tmp_path, capsys):
    assert main(["profiles", "show", "honeywell-serial-trigger"]) == 0
    out = capsys.readouterr().out
    assert 'startup = ["\\u0016T\\r"]' in out
    assert "[polling.commands]" in out
    assert "line 115200 8N1" in out
    copy = tmp_path / "honeywell-serial-trigger.toml"
    copy.write_text(out)
    original = load_profile("honeywell-serial-trigger")
    assert load_profile_file(copy).model_dump() == original.model_dump()


def test_show_json(capsys):
    assert main(["profiles", "show", "toledo-continuous", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["framing"]["start"] == "\x02"
    assert document["decode"] == {"protocol": "toledo", "checksum": True, "gram_extension": 1}
    assert document["source"].endswith("toledo-continuous.toml")


def test_show_a_profile_file(tmp_path, capsys):
    main(["profiles", "show", "mt-sics"])
    text = capsys.readouterr().out.replace('name = "mt-sics"', 'name = "my-scale"')
    (tmp_path / "my-scale.toml").write_text(text)
    assert main(["profiles", "show", str(tmp_path / "my-scale.toml")]) == 0
    assert 'name = "my-scale"' in capsys.readouterr().out


def test_decode_hex(capsys):
    args = ["profiles", "decode", "toledo-continuous", "--hex"]
    assert main([*args, "02 2c 30 20 20 20 31 32 33 34 20 20 20 20 20 30 0d 1b"]) == 0
    (message,) = lines_of(capsys)
    assert message["kind"] == "weight"
    assert (message["value_kg"], message["stable"], message["status"]) == (12.34, True, "ok")


def test_decode_text_with_escapes(capsys):
    text = r"S S     100.00 g\r\nS I\r\nES\r\n"
    assert main(["profiles", "decode", "mt-sics", "--text", text]) == 0
    first, second, third = lines_of(capsys)
    assert (first["kind"], first["value_kg"], first["stable"]) == ("weight", 0.1, True)
    assert (second["kind"], second["value"], second["status"]) == ("weight", None, "error")
    assert (third["kind"], third["text"]) == ("reply", "ES")


def test_decode_scan_fields(capsys):
    text = r"]C1003761303211091034203102001250\x1d42010115\r\nNOREAD\r\n"
    assert main(["profiles", "decode", "generic-scanner", "--text", text]) == 0
    read, no_read = lines_of(capsys)
    assert read["kind"] == "scan"
    assert read["data"] == "003761303211091034203102001250\x1d42010115"
    assert (read["symbology"], read["no_read"]) == ("]C1", False)
    assert (no_read["data"], no_read["no_read"]) == ("", True)


def test_decode_idle_gap_profile_flushes_at_the_end(capsys):
    assert main(["profiles", "decode", "zebra-ds", "--text", r"RB123456785GB"]) == 0
    (message,) = lines_of(capsys)
    assert (message["kind"], message["data"]) == ("scan", "RB123456785GB")


def test_decode_file_and_garbage(tmp_path, capsys):
    path = tmp_path / "capture.bin"
    path.write_bytes(b"\x00\xff\n 1G       5.025lb \r\x00")
    assert main(["profiles", "decode", "sma-scp0499", "--file", str(path)]) == 0
    captured = capsys.readouterr()
    (message,) = [json.loads(line) for line in captured.out.splitlines()]
    assert (message["value"], message["unit"]) == (5.025, "lb")
    assert "3 garbage bytes" in captured.err


def test_decode_sorter_replies(capsys):
    text = r"ACK p1 3\r\nFULL 3\r\nBOGUS\r\n"
    assert main(["profiles", "decode", "generic-divert", "--text", text]) == 0
    ack, full, error = lines_of(capsys)
    assert (ack["kind"], ack["parcel_id"], ack["bin"]) == ("sorter_ack", "p1", 3)
    assert ack["accepted"] is True
    assert (full["kind"], full["bin"], full["full"]) == ("lane_full", 3, True)
    assert error["kind"] == "error"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["profiles", "decode", "mt-sics", "--hex", "zz"], "--hex: not hexadecimal"),
        (["profiles", "decode", "mt-sics", "--hex", "0"], "--hex: not hexadecimal"),
        (["profiles", "decode", "mt-sics", "--text", r"S\q"], "unknown escape"),
        (["profiles", "decode", "no-such", "--hex", "00"], "unknown firmware profile"),
        (["profiles", "decode", "mt-sics", "--file", "/nonexistent/x"], "--file"),
        (["profiles", "show", "no-such"], "unknown firmware profile"),
        (["profiles", "show", "/nonexistent/x.toml"], "file not found"),
    ],
)
def test_bad_input_exits_2_with_a_clear_message(args, message, capsys):
    assert main(args) == 2
    captured = capsys.readouterr()
    assert message in captured.err
    assert captured.out == ""


def test_group_without_subcommand_prints_help(capsys):
    assert main(["profiles"]) == 2
    assert "decode" in capsys.readouterr().out
