"""The line benchmark itself, run small: its figures in docs/PERFORMANCE.md must come from a
harness that still works and still checks what it claims (every parcel commanded, each with its
own weight, latencies measured at the sorter's end)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.broker import find_mosquitto

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "bench_line.py"


@pytest.mark.parametrize("line", ["light", "threaded"])
def test_a_small_run_of_the_line_bench_commands_every_parcel_with_its_own_weight(
    tmp_path: Path, line: str
) -> None:
    if find_mosquitto() is None:
        pytest.fail("mosquitto is required: run ./dev install")
    results = tmp_path / "results.json"
    # The light line also puts the run's rows in a larger store, as `--manifest-rows` does.
    filler = ["--manifest-rows", "2000"] if line == "light" else []
    run = subprocess.run(
        [sys.executable, str(BENCH), "--rates", "100", "--seconds", "2", "--burst", "300",
         "--burst-rate", "2000", "--only", "agent", "--starts", "1", "--line", line,
         "--json", str(results), *filler],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(results.read_text())
    paced, burst = report["results"]
    assert (paced["parcels"], burst["parcels"]) == (200, 300)
    for result in (paced, burst):
        assert result["lane_commands"] == result["parcels"]
        assert result["events"] == result["parcels"]
        assert result["lost"] == 0
        assert result["wrong_weight_share"] == 0.0  # never another parcel's weight
        assert result["right_weight_share"] + result["safe_weight_share"] == 1.0
        latency = result["latency_us"]
        assert 0 < latency["p50"] <= latency["p99"] <= latency["p99.9"]
        assert result["cpu_s_per_1000"] > 0 and result["peak_rss_mb"] > 0
    assert paced["kept_up"]
    # At 100 parcels a second the scale answers in time: parcels carry their own weight (a
    # few go safe when the loaded test machine delays a read past the next scan).
    assert paced["right_weight_share"] >= 0.9
    if line == "light":
        assert report["info"]["manifest_rows"] == 2000
        # The simulator's own punctuality is reported beside the latencies it measured.
        assert 0 <= paced["line_late_us"]["p50"] <= paced["line_late_us"]["p99"]
        # Scan -> event at central: after the lane command's own p50 (the event is published
        # once the decision is made), and the first parcel's event counted from exec.
        events = paced["event_latency_us"]
        assert paced["latency_us"]["p50"] / 2 < events["p50"] <= events["p99"]
        assert paced["startup_s"] < paced["first_event_s"]
        # The agent's own share, once the line let it decide, is part of the whole latency;
        # its command worker (a child process) is measured once it runs.
        proof = paced["after_proof_us"]
        assert proof["p50"] <= proof["p99"] and proof["p50"] < paced["latency_us"]["p50"]
        assert paced["worker_rss_mb"] > 0
    assert report["startup"]["agent"]["warm_median_s"] > 0
