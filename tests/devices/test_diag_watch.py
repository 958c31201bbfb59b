"""`edge-agent diag watch`: live decoded messages from simulated devices, then a summary."""

from __future__ import annotations

import json

import pytest
from support.pty_devices import PtyBench

from edge_agent.cli.diag_watch import parse_device_spec
from edge_agent.cli.main import main

# Upper bound for watches that end on --count, so a failure cannot hang the suite.
WATCH_LIMIT_S = 5.0


def json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_watch_polls_a_scale_and_prints_json_lines(pty_bench: PtyBench, capsys) -> None:
    scale = pty_bench.scale("mt-sics", weight_kg=3.25)
    code = main(["diag", "watch", "--port", str(scale.path), "--profile", "mt-sics",
                 "--poll-ms", "50", "--count", "3", "--seconds", str(WATCH_LIMIT_S), "--json"])
    assert code == 0
    *messages, summary = json_lines(capsys.readouterr().out)
    assert len(messages) == 3
    assert {(m["device"], m["kind"], m["value_kg"], m["stable"]) for m in messages} == {
        ("device", "weight", 3.25, True)
    }
    assert summary["summary"]["device"]["weights"] == 3
    assert summary["summary"]["device"]["frames"] >= 3


def test_watch_several_devices_human_output(pty_bench: PtyBench, capsys) -> None:
    scanner = pty_bench.scanner()
    scale = pty_bench.scale("toledo-continuous", weight_kg=1.0)
    code = main(["diag", "watch", "--device", f"in={scanner.path}:generic-scanner",
                 "--device", f"kg={scale.path}:toledo-continuous", "--seconds", "0.5"])
    assert code == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(" kg: weight 1 kg (stable)" in line for line in lines)
    summary = {line.split(":")[0]: line for line in lines if ": state " in line}
    assert set(summary) == {"in", "kg"}


def test_watch_summary_counts_reconnects_and_errors(pty_bench: PtyBench, capsys) -> None:
    scale = pty_bench.scale("toledo-continuous", weight_kg=1.0)
    scale.toledo_corrupt_every = 2  # every other frame has a wrong checksum
    main(["diag", "watch", "--port", str(scale.path), "--profile", "toledo-continuous",
          "--count", "4", "--seconds", str(WATCH_LIMIT_S), "--json"])
    *_, summary = json_lines(capsys.readouterr().out)
    counts = summary["summary"]["device"]
    assert (counts["errors"], counts["weights"], counts["reconnects"]) == (2, 2, 0)


def test_watch_a_missing_port_is_refused_not_watched_in_silence(tmp_path, capsys) -> None:
    # It used to retry quietly for the whole watch and exit 0 with nothing shown.
    code = main(["diag", "watch", "--port", str(tmp_path / "nothing"), "--profile",
                 "generic-scanner", "--seconds", "0.3", "--json"])
    assert code == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"cannot open device: no such device {tmp_path / 'nothing'}" in captured.err


@pytest.mark.parametrize("argv", [
    ["diag", "watch", "--port", "/dev/ttyUSB0"],  # no profile
    ["diag", "watch"],  # nothing to watch
    ["diag", "watch", "--port", "/dev/ttyUSB0", "--profile", "no-such-profile"],
    ["diag", "watch", "--device", "a=/dev/x:mt-sics", "--device", "a=/dev/y:mt-sics"],
])
def test_watch_bad_arguments_exit_2(argv, capsys) -> None:
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_device_spec_parsing() -> None:
    target = parse_device_spec("scale=/dev/serial/by-id/usb-A:B-if00:mt-sics")
    assert (target.name, target.path, target.profile) == (
        "scale", "/dev/serial/by-id/usb-A:B-if00", "mt-sics")
    with pytest.raises(SystemExit) as exit_info:
        main(["diag", "watch", "--device", "just-a-path"])
    assert exit_info.value.code == 2
