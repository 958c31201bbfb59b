"""The sorter benchmark itself, run small: every request answered, latencies measured on the
sorter's side of the serial line, figures written where --json says."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "bench_sorter.py"


def test_a_small_run_answers_every_request_and_reports_its_latency(tmp_path: Path) -> None:
    results = tmp_path / "results.json"
    run = subprocess.run([sys.executable, str(BENCH), "--rates", "20", "--seconds", "1",
                          "--json", str(results)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    [figures] = json.loads(results.read_text())
    assert figures["requests"] == figures["answered"] == 20
    assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
