"""`diag status` against a real status server on a socket in a temp dir."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from edge_agent.cli.status_cmd import add_status_parser, render_status, run_status
from edge_agent.errors import ConfigError
from edge_agent.runtime.status_server import StatusServer

SNAPSHOT = {
    "agent": {
        "version": "0.1.0", "site": "HKG1", "line": "L3", "pid": 4242,
        "started_at": "2024-06-01T08:00:00Z", "uptime_s": 11523.4, "rules_version": "2024-06-01.2",
    },
    "devices": {
        "scanner": {"state": "connected", "port": "/dev/sortline/scanner", "frames": 12345,
                    "decode_errors": 2, "last_frame_age_s": 0.31},
        "scale": {"state": "reconnecting", "port": "/dev/sortline/scale", "frames": 9},
    },
    "lanes": {
        "zhuhai": {"state": "open", "bin": "ZHUHAI", "count": 812},
        "exception": {"state": "full", "bin": "EXCEPTION", "count": 31},
    },
    "counters": {"parcels": 1234, "zhuhai": 812, "shanghai": 200, "export": 191,
                 "exception": 31, "no_read": 12, "weight_mismatch": 3, "late": 0},
    "outbox": {"depth": 12, "oldest_age_s": 3.25},
    "mqtt": {"state": "connected", "broker": "mqtts://broker.example:8883",
             "since": "2024-06-01T08:00:02Z"},
    "last_decisions": [
        {"at": "2024-06-01T11:12:13.456+00:00", "parcel": "01a2" * 8, "lane": "ZHUHAI",
         "bin": 1, "barcode": "00012345678901234567", "reasons": [], "latency_ms": 1.2},
        {"at": "2024-06-01T11:12:14.001+00:00", "parcel": "01a3" * 8, "lane": "EXCEPTION",
         "bin": 4, "barcode": "RR123456785CN", "reasons": ["weight_mismatch"],
         "latency_ms": 0.9},
    ],
}


@pytest.fixture
def socket_path(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "status.sock"
    server = StatusServer(path, lambda: SNAPSHOT)
    server.start()
    yield path
    server.stop()


def parse(*argv: str) -> argparse.Namespace:
    """The same parser diag_cmd.py builds: a subcommand group with `status` added to it."""
    parser = argparse.ArgumentParser(prog="edge-agent diag")
    add_status_parser(parser.add_subparsers(dest="diag_command"))
    return parser.parse_args(["status", *argv])


def test_human_output_fits_80_columns_and_shows_every_section(socket_path, capsys):
    args = parse("--socket", str(socket_path))
    assert args.handler(args) == 0
    output = capsys.readouterr().out
    lines = output.splitlines()
    assert max(len(line) for line in lines) <= 80
    assert lines[0] == "edge-agent 0.1.0  HKG1/L3  pid 4242  rules 2024-06-01.2"
    assert lines[1].startswith("up 3h 12m 3s since 2024-06-01 ")
    assert lines[2].split() == ["DEVICE", "STATE", "FRAMES", "DECODE", "ERR", "I/O", "ERR",
                                "GARBAGE", "RECONN", "LAST", "FRAME"]
    assert lines[3].split()[:4] == ["scanner", "connected", "12345", "2"]
    assert "LANE" in output and "PARCELS" in output
    assert any(line.split()[:4] == ["zhuhai", "ZHUHAI", "open", "812"] for line in lines)
    for text in ("Outbox", "depth 12", "oldest age 3.25 s", "evicted none", "MQTT",
                 "state connected", "weight mismatch 3"):
        assert text in output
    assert "RR123456785CN" in output and "weight_mismatch" in output


def test_json_output_is_the_document(socket_path, capsys):
    args = parse("--socket", str(socket_path), "--json")
    assert run_status(args) == 0
    assert json.loads(capsys.readouterr().out) == SNAPSHOT


def test_socket_found_through_the_config_file(socket_path, tmp_path, capsys):
    config = tmp_path / "agent.toml"
    # Relative to the config file's directory, as every path in it.
    config.write_text(f'site = "HKG1"\nline = "L3"\n[status]\nsocket_path = "{socket_path.name}"\n')
    assert run_status(parse("--config", str(config), "--json")) == 0
    assert json.loads(capsys.readouterr().out)["agent"]["site"] == "HKG1"


def test_a_bad_config_file_is_a_config_error(tmp_path):
    config = tmp_path / "agent.toml"
    config.write_text('site = "HKG 1"\n')
    with pytest.raises(ConfigError) as raised:
        run_status(parse("--config", str(config)))
    assert any(problem.startswith("line") for problem in raised.value.problems)


def test_no_agent_running_is_a_clear_message_and_exit_1(tmp_path, capsys):
    missing = tmp_path / "status.sock"
    assert run_status(parse("--socket", str(missing))) == 1
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"no agent answering on {missing}: is the service running? systemctl status edge-agent\n"
    )


def test_socket_and_config_are_mutually_exclusive(capsys):
    with pytest.raises(SystemExit) as raised:
        parse("--socket", "/x", "--config", "/y")
    assert raised.value.code == 2
    assert "not allowed with argument" in capsys.readouterr().err


def test_renders_whatever_keys_are_present():
    assert render_status({}).splitlines()[0] == "edge-agent ?"
    text = render_status({"agent": {"version": "9"}, "lanes": {}, "last_decisions": [],
                          "temperature_c": 41, "flags": {"draining": True, "spare": None}})
    lines = text.splitlines()
    assert lines[0] == "edge-agent 9"
    assert "Flags     draining yes · spare -" in lines
    assert "Temperature c 41" in lines
    assert "no decisions yet" in text


def test_long_values_are_wrapped_to_80_columns_and_never_cut():
    long_port = "/dev/serial/by-id/usb-FTDI_FT232R_USB_UART_" + "A" * 60 + "-if00-port0"
    text = render_status({
        "devices": {"scanner": {"state": "connected", "last_error": long_port, "frames": 1}},
        "counters": {f"counter_{n}": n for n in range(30)},
    })
    lines = text.splitlines()
    assert max(len(line) for line in lines) <= 80
    words = " ".join(text.split())
    assert all(f"counter {n} {n}" in words for n in range(30))  # every counter, none cut


def test_through_the_real_command_line(socket_path, capsys):
    from edge_agent.cli.main import main

    try:
        assert main(["diag", "status", "--socket", str(socket_path), "--json"]) == 0
        assert json.loads(capsys.readouterr().out) == SNAPSHOT
        assert main(["diag", "status", "--socket", str(socket_path.with_name("none.sock"))]) == 1
        assert "no agent answering on" in capsys.readouterr().err
    finally:
        # main() pointed logging at this test's captured stderr, which closes with the test.
        structlog.reset_defaults()


def test_the_agents_own_decisions_read_as_one_line_each():
    document = {"agent": {"timezone": "Asia/Hong_Kong"}, "last_decisions": [
        {"at": "2026-11-22T03:31:03.666+00:00", "parcel": "01a2" * 8, "lane": "EXCEPTION",
         "bin": 4, "barcode": "00376130321109103420\x1d42010115", "reasons": ["weight_mismatch"],
         "latency_ms": 1.42},
        {"at": "2026-11-22T03:31:03.676+00:00", "parcel": "01a3" * 8, "lane": "ZHUHAI",
         "bin": 1, "barcode": None, "reasons": [], "latency_ms": 0.9},
    ]}
    lines = render_status(document).splitlines()
    newest, older = lines[-2:]
    # Newest first, in the site's time zone (UTC+8), like the route cutoffs.
    assert newest.split()[:4] == ["11:31:03.676", "ZHUHAI", "(no", "read)"]
    assert older.split() == ["11:31:03.666", "EXCEPTION", "00376130321109103420<GS>42010115",
                             "1.42", "weight_mismatch"]
    assert all(len(line) <= 80 for line in lines)


def test_a_measure_with_its_limit_reads_compactly():
    text = render_status({"input_health": {
        "scanner_no_read_rate": {"value": 0.025, "limit": 0.05, "parcels": 200},
        "alarms_active": []}})
    assert "Input health scanner no read rate 0.03 (≤0.05) · alarms active none" in text


def test_holds_show_the_count_and_the_newest_in_the_sites_time():
    text = render_status({
        "agent": {"version": "9", "timezone": "Asia/Hong_Kong"},
        "holds": {"active": 2, "newest": {
            "hold_id": "H2", "barcode": None, "order_id": "ORD-7",
            "reason": "order cancelled\x1b[2J", "expires_at": "2026-12-03T16:00:00+00:00",
            "put_at": "2026-12-03T12:00:00+00:00"}}})
    words = " ".join(text.split())  # wrapped to 80 columns: read as one line
    assert "Holds 2 active · newest H2 order ORD-7: order cancelled\\x1b[2J, until 2026-12-04 " \
        "00:00:00" in words, text  # the reason escaped, the expiry in Hong Kong time
    assert render_status({"holds": {"active": 0, "newest": None}}).count("0 active") == 1


def test_outcomes_per_lane_read_as_a_table_with_the_rate_alarms():
    text = render_status({"outcomes": {
        "by_lane": {"ZHUHAI": {"sorted": 120, "too_late": 7, "refused": 1, "not_commanded": 2},
                    "EXCEPTION": {"no_confirmation": 3}},
        "waiting": 4, "confirmations_late": 1,
        "rates": {"alarms_active": ["ZHUHAI:too_late"]}}})
    rows = {line.split()[0]: line.split() for line in text.splitlines() if line.strip()}
    assert rows["OUTCOME"][:3] == ["OUTCOME", "SORTED", "LATE"]
    assert rows["ZHUHAI"] == ["ZHUHAI", "120", "7", "0", "0", "0", "0", "0", "0", "3"]
    assert rows["EXCEPTION"][-2:] == ["3", "0"]
    flowing = " ".join(text.split())  # the summary wraps at 80 columns
    assert "rate alarms ZHUHAI:too_late" in flowing and "waiting 4" in flowing
    assert all(len(line) <= 80 for line in text.splitlines())
