"""The sorter benchmark itself, run small: over serial and over TCP (both, by default), every
request answered, latencies measured on the sorter's side of the link, figures written where
--json says; an unknown transport refused, naming it."""

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
    runs = json.loads(results.read_text())
    assert [figures["transport"] for figures in runs] == ["serial", "tcp"]
    for figures in runs:
        assert figures["requests"] == figures["answered"] == 20
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]


def test_an_unknown_transport_is_refused_by_name() -> None:
    run = subprocess.run([sys.executable, str(BENCH), "--transports", "serial,usb"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "unknown usb" in run.stderr
