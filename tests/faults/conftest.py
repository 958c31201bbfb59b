"""Fault-injection suite: every test here is marked `faults` (run alone with `-m faults`).

`EDGE_AGENT_FAULTS_SCALE=long` runs the same tests with more parcels, kills, cuts, outages and
examples (see docs/RELIABILITY.md for the figures of both scales).
"""

import sys
from pathlib import Path

import pytest

# The end-to-end harness (real agent process against a simulated line) lives beside its tests.
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).resolve().parent
    for item in items:
        if Path(str(item.fspath)).resolve().parent == here:
            item.add_marker(pytest.mark.faults)
