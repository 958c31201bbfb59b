"""The pairing bench itself, run small: its table in docs/PERFORMANCE.md ("Pairing under
faults") must come from a harness that still works and still counts what it claims."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from support.broker import find_mosquitto

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "bench_pairing.py"


def test_a_small_run_of_the_pairing_bench_scores_every_parcel(tmp_path: Path) -> None:
    if find_mosquitto() is None:
        pytest.fail("mosquitto is required: run ./dev install")
    results = tmp_path / "results.json"
    run = subprocess.run(
        [sys.executable, str(BENCH), "--rates", "20", "--fault-rates", "0,0.05",
         "--min-parcels", "60", "--seconds", "0", "--json", str(results)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    cells = json.loads(results.read_text())["cells"]
    assert sorted((c["scale"], c["fault_rate"]) for c in cells) == [
        ("polled", 0.0), ("polled", 0.05), ("streaming", 0.0), ("streaming", 0.05)]
    for cell in cells:
        assert cell["parcels"] == 60
        assert sum(cell["faults"].values()) == round(60 * cell["fault_rate"])
        # Every parcel is counted once: right, safe, wrong or unseen (a missed scan).
        assert cell["right"] + cell["safe"] + cell["wrong"] + cell["unseen"] == 60
        assert cell["unseen"] == cell["faults"].get("missed_scan", 0)
        assert cell["wrong"] == 0  # never another parcel's weight
    assert "| streaming | 20 | 60 |" in run.stdout and "| polled | 20 | 60 |" in run.stdout
