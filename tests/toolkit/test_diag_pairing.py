"""`edge-agent diag pairing`: from two captures of one line, or live through ptys, the offset
and window a technician pastes into the config."""

from __future__ import annotations

import json
import random
import threading
import time
import tomllib
from pathlib import Path

import pytest

from edge_agent.cli.main import main
from edge_agent.config import PairingConfig
from edge_agent.devices.simulators import ScaleSimulator, ScannerSimulator
from edge_agent.diagnostics.capture import (
    CaptureWriter,
    capture_start_ns,
    read_capture,
    times_path,
)
from edge_agent.sorting.pairing_calibration import MIN_PARCELS
from edge_agent.units import NS_PER_MS
from tests.support.waiting import wait_for

# The scale's capture was started this long after the scanner's: the command must line the two
# up on the clock they share, not on their own zeros.
SCALE_STARTED_LATER_MS = 1234.567
# A streaming scale's frames for one parcel, around the time it settles (ms).
MOTION_MS = (-30, -20, -10)
STABLE_MS = (0, 10, 20, 30)
EMPTY_AFTER_MS = 40


@pytest.fixture
def simulators():
    """The real simulators' frame builders (not started: a test writes their frames itself)."""
    scanner = ScannerSimulator("generic-scanner")
    scale = ScaleSimulator("mt-sics-continuous")
    yield scanner, scale
    scanner.stop()
    scale.stop()


def write_capture(path: Path, start_ns: int, chunks: list[tuple[float, bytes]]) -> Path:
    """The `diag capture` format: the bytes, and FILE.times with each read's time."""
    data, lines = b"", []
    for index, (t_ms, chunk) in enumerate(chunks):
        entry: dict = {"offset": len(data), "t_ms": round(t_ms, 3)}
        if index == 0:
            entry["start_ns"] = start_ns
        lines.append(json.dumps(entry))
        data += chunk
    path.write_bytes(data)
    times_path(path).write_text("".join(line + "\n" for line in lines))
    return path


def write_line(tmp_path: Path, simulators, count: int, offset_ms: float, *, seed: int = 7,
               no_reading: dict[int, str] | None = None) -> tuple[Path, Path]:
    """Captures of `count` parcels 150-250 ms apart, each settling `offset_ms` ± 3 ms from its
    scan; the parcels in `no_reading` (index -> barcode) never settle."""
    scanner, scale = simulators
    no_reading = no_reading or {}
    rng = random.Random(seed)
    scans, frames, t = [], [], 2000.0
    for index in range(count):
        t += rng.uniform(150, 250)
        scans.append((t, scanner.frame(no_reading.get(index, f"LP{index:08d}"))))
        settle = t + offset_ms + rng.uniform(-3, 3)
        kg = round(1.0 + index * 0.137, 3)
        for at in MOTION_MS:
            scale.set_weight(kg * 0.9, stable=False)
            frames.append((settle + at, scale.mt_sics_weight(immediate=True)))
        if index not in no_reading:
            for at in STABLE_MS:
                scale.set_weight(kg, stable=True)
                frames.append((settle + at, scale.mt_sics_weight(immediate=True)))
        scale.set_weight(0.0)
        frames.append((settle + EMPTY_AFTER_MS, scale.mt_sics_weight(immediate=True)))
    start_ns = 5_000_000 * NS_PER_MS
    scanner_file = write_capture(tmp_path / "scanner.bin", start_ns, scans)
    scale_file = write_capture(tmp_path / "scale.bin",
                               start_ns + int(SCALE_STARTED_LATER_MS * NS_PER_MS),
                               [(at - SCALE_STARTED_LATER_MS, frame) for at, frame in frames])
    return scanner_file, scale_file


def capture_args(scanner: Path, scale: Path, *extra: str) -> list[str]:
    return ["diag", "pairing", "--scanner-capture", str(scanner), "--scale-capture", str(scale),
            "--scanner-profile", "generic-scanner", "--scale-profile", "mt-sics-continuous",
            *extra]


def pasted_settings(output: str) -> PairingConfig:
    snippet = output.split("paste into the agent's config:", 1)[1]
    return PairingConfig(**tomllib.loads(snippet)["pairing"])


def test_captures_give_the_offset_and_a_snippet_to_paste(capsys, tmp_path, simulators):
    scanner, scale = write_line(tmp_path, simulators, 120, offset_ms=-45)
    assert main(capture_args(scanner, scale)) == 0
    out = capsys.readouterr().out
    assert max(len(line) for line in out.splitlines()) <= 80
    proposed = pasted_settings(out)
    assert proposed.mode == "window" and abs(proposed.offset_ms - (-45)) <= 1
    assert 3 + 5 <= proposed.window_ms <= 3 * 1.25 + 5 + 1
    assert "parcels can be told apart" in out and "warning" not in out


def test_json_for_scripts_with_the_devices_of_the_config(capsys, tmp_path, simulators,
                                                         write_config):
    missing = {10: "LP-NEVER-SETTLED"}
    scanner, scale = write_line(tmp_path, simulators, 90, offset_ms=120, no_reading=missing)
    config = write_config({"scanner": (tmp_path / "scanner-port", "generic-scanner"),
                           "scale": (tmp_path / "scale-port", "mt-sics-continuous")})
    code = main(["diag", "pairing", "--config", str(config), "--scanner-capture", str(scanner),
                 "--scale-capture", str(scale), "--json"])
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert report["parcels_scanned"] == 90
    assert report["offsets_ms"]["count"] == 89
    assert abs(report["offsets_ms"]["p50"] - 120) <= 3
    assert report["offsets_ms"]["p1"] < report["offsets_ms"]["p50"] < report["offsets_ms"]["p99"]
    assert report["gaps_ms"]["count"] == 89 and 150 <= report["gaps_ms"]["p1"] <= 250
    assert report["no_reading_nearby"]["count"] == 1
    assert report["no_reading_nearby"]["scans"][0]["barcode"] == "LP-NEVER-SETTLED"
    assert report["scale"]["never_settled"] == 1
    assert sum(row["count"] for row in report["histogram"]) == 89
    proposal = report["proposal"]
    assert abs(proposal["offset_ms"] - 120) <= 1 and proposal["separable"] is True
    assert tomllib.loads(proposal["toml"])["pairing"]["window_ms"] == proposal["window_ms"]


def test_a_polled_scale_and_a_poll_mode_config_are_pointed_out(capsys, tmp_path, simulators,
                                                                write_config):
    scanner, scale = write_line(tmp_path, simulators, 60, offset_ms=30)
    config = write_config({"scanner": (tmp_path / "scanner-port", "generic-scanner"),
                           "scale": (tmp_path / "scale-port", "mt-sics")})
    config.write_text(config.read_text() + '\n[pairing]\nmode = "poll-after-scan"\n')
    code = main(["diag", "pairing", "--config", str(config), "--scanner-capture", str(scanner),
                 "--scale-capture", str(scale), "--json"])
    warnings = json.loads(capsys.readouterr().out)["proposal"]["warnings"]
    assert code == 0
    assert any('mode "poll-after-scan"' in warning for warning in warnings)
    assert any("answers polls every 100 ms" in warning for warning in warnings)


def test_device_text_is_printed_escaped(capsys, tmp_path, simulators):
    hostile = "LP\x1b]0;owned\x07\x1b[2J"
    scanner, scale = write_line(tmp_path, simulators, 80, offset_ms=-45, no_reading={3: hostile})
    assert main(capture_args(scanner, scale)) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\x07" not in out
    assert "\\x1b]0;owned\\x07" in out


def test_traffic_too_close_for_the_jitter_is_a_plain_warning(capsys, tmp_path, simulators):
    # Parcels 60-90 ms apart whose readings wander ±30 ms: no window both holds a parcel's
    # reading and keeps out its neighbour's.
    rng = random.Random(2)
    scanner_sim, scale_sim = simulators
    scans, frames, t = [], [], 1000.0
    for index in range(80):
        t += rng.uniform(60, 90)
        scans.append((t, scanner_sim.frame(f"LP{index}")))
        settle = t + rng.uniform(-30, 30)
        scale_sim.set_weight(1.0 + index / 10)
        frames.append((settle, scale_sim.mt_sics_weight(immediate=True)))
        scale_sim.set_weight(0.0)
        frames.append((settle + 5, scale_sim.mt_sics_weight(immediate=True)))
    frames.sort()
    code = main(capture_args(write_capture(tmp_path / "scanner.bin", 0, scans),
                             write_capture(tmp_path / "scale.bin", 0, frames), "--json"))
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    proposal = report["proposal"]
    assert proposal["separable"] is False
    assert 2 * proposal["window_ms"] >= proposal["shortest_gap_ms"]
    assert proposal["gaps_too_close"] >= 1
    assert "Slow the induction" in proposal["warnings"][0]


def test_too_few_parcels_say_how_many_are_needed(capsys, tmp_path, simulators):
    scanner, scale = write_line(tmp_path, simulators, 20, offset_ms=-45)
    assert main(capture_args(scanner, scale)) == 1
    assert f"20 with a reading, {MIN_PARCELS} needed" in capsys.readouterr().out
    assert main(capture_args(scanner, scale, "--json")) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["proposal"] is None and report["parcels_needed"] == MIN_PARCELS


def test_bad_input_is_named(capsys, tmp_path, simulators):
    scanner, scale = write_line(tmp_path, simulators, 60, offset_ms=-45)

    def error_of(*args: str) -> str:
        assert main(["diag", "pairing", *args]) == 2
        return capsys.readouterr().err

    missing = tmp_path / "nowhere.bin"
    assert "nowhere.bin: No such file" in error_of(*capture_args(missing, scale)[2:])
    wrong_kind = capture_args(scanner, scale)[2:]
    wrong_kind[wrong_kind.index("mt-sics-continuous")] = "generic-scanner"
    assert "--scale-profile generic-scanner: a scanner profile" in error_of(*wrong_kind)
    empty = write_capture(tmp_path / "empty.bin", 0, [])
    assert "--scanner-capture" in (err := error_of(*capture_args(empty, scale)[2:]))
    assert "no scans" in err
    # The scanner's bytes read as a scale: nothing settles, and nothing decodes.
    err = error_of(*capture_args(scanner, scanner)[2:])
    assert "no settled readings" in err and "did not decode with profile mt-sics" in err
    times_path(scale).write_text('{"offset": 0, "t_ms": 0}\n')  # made before starts were kept
    assert "no start time" in error_of(*capture_args(scanner, scale)[2:])
    assert "both --scanner-capture and --scale-capture" in error_of("--scanner-capture",
                                                                  str(scanner))
    assert "--live SECONDS" in error_of(*capture_args(scanner, scale)[2:], "--live", "5")
    assert "--max-offset-ms must be above 0" in error_of(*capture_args(scanner, scale)[2:],
                                                         "--max-offset-ms", "0")


def test_a_capture_keeps_its_start_on_the_shared_clock(tmp_path):
    before = time.monotonic_ns()
    writer = CaptureWriter(tmp_path / "c.bin")
    after = time.monotonic_ns()
    writer.write(b"ab", after + 250 * NS_PER_MS)
    writer.write(b"c", after + 300 * NS_PER_MS)
    writer.close()
    start = capture_start_ns(times_path(tmp_path / "c.bin"))
    assert start is not None and before <= start <= after
    chunks = read_capture(b"abc", times_path(tmp_path / "c.bin"))
    assert [data for _, data in chunks] == [b"ab", b"c"]
    # Back on the clock they were read with, to the microsecond the file keeps.
    assert [start + t - after for t, _ in chunks] \
        == pytest.approx([250 * NS_PER_MS, 300 * NS_PER_MS], abs=1000)


# -- live ----------------------------------------------------------------------------------------
LIVE_OFFSET_MS = -45
LIVE_PARCELS = 66  # MIN_PARCELS and a margin for a loaded machine
# Each parcel on the platter: moving, then settled, then gone (s).
MOTION_S, SETTLED_S, EMPTY_S = 0.02, 0.055, 0.02
# The simulated scale streams a frame this often, so a settled parcel shows within 2 ms.
LIVE_FRAME_PERIOD_S = 0.002


def run_belt(scanner, scale, stop: threading.Event) -> None:
    """Parcels down a belt: each reaches the platter, settles, and its label is read
    -LIVE_OFFSET_MS later (the scanner's own thread writes it then). Each step waits after the
    one before, so a host that runs this thread late only spaces the parcels further apart.
    Waiting here is the belt's own time, not synchronisation.

    The gaps between parcels vary, as on a real belt: a perfectly periodic one puts the next
    parcel's reading as regularly after each scan as its own comes before it, and then no
    measurement can tell which is the parcel's own (a loaded host tipped it the wrong way)."""
    empty_s = random.Random(7).uniform
    for index in range(LIVE_PARCELS):
        kg = round(1.0 + index * 0.137, 3)
        scale.set_weight(kg * 0.9, stable=False)
        if stop.wait(MOTION_S):
            return
        scale.set_weight(kg, stable=True)
        scanner.send_later(-LIVE_OFFSET_MS / 1000, scanner.frame(f"LP{index:08d}"))
        if stop.wait(SETTLED_S):
            return
        scale.set_weight(0.0)
        if stop.wait(empty_s(EMPTY_S, 4 * EMPTY_S)):
            return


def test_live_through_ptys_recovers_the_offset(capsys, pty_bench):
    scanner = pty_bench.scanner("generic-scanner")
    scale = pty_bench.scale("mt-sics-continuous", weight_kg=0.0)
    scale.tick_period_s = LIVE_FRAME_PERIOD_S
    stop = threading.Event()

    def belt_once_measuring() -> None:
        try:  # the command sends SIR once it has the scale's port: then it is listening
            wait_for(lambda: scale.streaming, timeout_s=10, what="the scale streaming")
        except AssertionError:
            return  # the command failed to open the ports; its exit code says why
        run_belt(scanner, scale, stop)

    belt = threading.Thread(target=belt_once_measuring)
    belt.start()
    try:
        code = main(["diag", "pairing", "--live", "30", "--parcels", str(LIVE_PARCELS),
                     "--max-offset-ms", "300", "--json",
                     "--scanner-port", str(pty_bench.link("scanner")),
                     "--scanner-profile", "generic-scanner",
                     "--scale-port", str(pty_bench.link("scale")),
                     "--scale-profile", "mt-sics-continuous"])
    finally:
        stop.set()
        belt.join(timeout=10)
    report = json.loads(capsys.readouterr().out)
    # Exit 0: at least MIN_PARCELS of the parcels were matched to their readings. A simulator
    # thread stalled on a loaded machine can cost a few (its frames go out late, bunched);
    # matching gone wrong costs most of them.
    assert code == 0, json.dumps(report)
    assert report["source"] == "live" and report["parcels_scanned"] == LIVE_PARCELS
    assert report["offsets_ms"]["count"] >= MIN_PARCELS
    assert abs(report["proposal"]["offset_ms"] - LIVE_OFFSET_MS) <= 4, json.dumps(report)
    cycle_ms = 1000 * (MOTION_S + SETTLED_S + 2.5 * EMPTY_S)  # the median empty belt
    assert cycle_ms - 15 <= report["gaps_ms"]["p50"] <= cycle_ms + 40
    # The command stopped the stream (C) when it let the port go.
    wait_for(lambda: not scale.streaming, timeout_s=10, what="the scale told to stop")
