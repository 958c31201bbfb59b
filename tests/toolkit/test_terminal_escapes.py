"""Device- and network-supplied text never drives the technician's terminal: a label (or a
scanner, or central) sending `ESC ] 0 ; owned BEL ESC [ 2 J` would retitle and clear it.
Every view shows such text with its control characters made visible."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.cli.diag_format import describe
from edge_agent.cli.main import main
from edge_agent.devices.messages import DecodeError, DeviceReply, Scan, SorterAck
from edge_agent.runtime.status_server import StatusServer
from edge_agent.safe_text import shown, terminal_safe

HOSTILE = "\x1b]0;owned\x07\x1b[2J"
SHOWN = "\\x1b]0;owned\\x07\\x1b[2J"


def _no_control_characters(text: str) -> bool:
    return not any((ord(c) < 0x20 and c != "\n") or 0x7F <= ord(c) < 0xA0 for c in text)


def test_terminal_safe_shows_every_control_character():
    assert terminal_safe(HOSTILE) == SHOWN
    assert terminal_safe("RB123456785GB") == "RB123456785GB"
    assert terminal_safe("a\u202eb\x9bc") == "a\\u202eb\\x9bc"  # bidi override, 8-bit CSI
    assert terminal_safe("上海 200001") == "上海 200001"  # printable text stays as it is


@given(st.text())
def test_terminal_safe_never_lets_a_control_character_through(text):
    assert _no_control_characters(terminal_safe(text))
    assert "\n" not in terminal_safe(text)


def test_shown_cuts_and_escapes_values_for_messages():
    assert shown(HOSTILE) == "'" + SHOWN + "'"
    long = shown("X" * 1_000_000)
    assert len(long) < 100 and long.endswith("(1,000,000 characters)")
    assert shown(b"\x1b" * 500).endswith("(500 bytes)")


def test_diag_watch_lines_show_a_hostile_scan_ack_and_reply():
    scan = Scan(received_ns=1, data=HOSTILE, symbology="]C0", no_read=False, raw=b"")
    ack = SorterAck(received_ns=1, parcel_id=HOSTILE, bin=1, accepted=True, raw=b"")
    reply = DeviceReply(received_ns=1, text=HOSTILE, raw=b"")
    error = DecodeError(received_ns=1, reason="bad " + HOSTILE, raw=HOSTILE.encode())
    for message in (scan, ack, reply, error):
        line = describe("scanner", message)
        assert _no_control_characters(line), line
        assert "\\x1b]0;owned" in line or "1b 5d 30" in line


def test_diag_status_shows_hostile_strings_escaped(tmp_path: Path, capsys):
    snapshot = {
        "agent": {"version": "0.1.0", "rules_version": HOSTILE, "site": "HKG1", "line": "L3"},
        "devices": {"scanner": {"state": "connected", "last_error": HOSTILE}},
        "lanes": {HOSTILE: {"state": "open", "bin": 1, "count": 1}},
        "alarms": {"last": HOSTILE},
        "last_decisions": [{"at": "2024-06-01T11:12:13.456+00:00", "lane": "ZHUHAI", "bin": 1,
                            "barcode": HOSTILE, "reasons": [HOSTILE], "latency_ms": 1.0}],
    }
    server = StatusServer(tmp_path / "status.sock", lambda: snapshot)
    server.start()
    try:
        assert main(["diag", "status", "--socket", str(tmp_path / "status.sock")]) == 0
    finally:
        server.stop()
    out = capsys.readouterr().out
    assert _no_control_characters(out)
    assert out.count("\\x1b]0;owned") >= 5  # rules, device error, lane, alarm, barcode


@pytest.mark.parametrize("view", ["decide", "manifest"])
def test_the_decision_and_manifest_views_escape(view, tmp_path, capsys, monkeypatch):
    from edge_agent.cli import state_location

    monkeypatch.setattr(state_location, "DEFAULT_CONFIG", tmp_path / "none.toml")
    monkeypatch.setattr(state_location, "DEFAULT_STATE_DIR", tmp_path / "state")
    if view == "decide":
        main(["decide", "]C1" + HOSTILE, "--at", "2026-11-20T10:00:00+08:00"])
    else:
        (tmp_path / "m.jsonl").write_text(json.dumps({"barcode": HOSTILE, "country": "CN"}))
        main(["manifest", "import", str(tmp_path / "m.jsonl"), "--state-dir", str(tmp_path)])
    captured = capsys.readouterr()
    assert _no_control_characters(captured.out) and _no_control_characters(captured.err)
    assert "\\x1b" in captured.out + captured.err
