"""The TCP-versus-pty DWS benchmark, run small: the figures in docs/PERFORMANCE.md must come
from a harness that still works (every record commanded over both transports)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench" / "bench_dws_transport.py"


def test_a_small_run_measures_both_transports() -> None:
    run = subprocess.run([sys.executable, str(BENCH), "--parcels", "20", "--rate", "50",
                          "--rounds", "1"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    report = json.loads(run.stdout.splitlines()[-1])
    for transport in ("pty", "tcp"):
        figures = report[transport]
        assert figures["parcels"] == 20  # the bench exits non-zero if a command is missing
        assert 0 < figures["p50_ms"] <= figures["p99_ms"] <= figures["max_ms"]
