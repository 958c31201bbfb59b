"""Fixtures for the technician toolkit: simulated devices on ptys, a real mosquitto, a config
file naming them, and throwaway certificates (valid, expired, expiring soon)."""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

import pytest

# The running-agent harness lives beside the runtime tests; the toolkit reuses it.
sys.path.insert(0, str(Path(__file__).parents[1] / "runtime"))
from support.pty_devices import PtyBench
from toolkit_helpers import config_text


@pytest.fixture(autouse=True)
def _short_device_wait(monkeypatch):
    """A silent scanner costs the doctor ANSWER_WAIT_S; half a second still sees a polled scale
    answer several times over."""
    from edge_agent.diagnostics import port_checks

    monkeypatch.setattr(port_checks, "ANSWER_WAIT_S", 0.5)


@pytest.fixture
def line_devices(pty_bench: PtyBench) -> dict[str, tuple[Path, str]]:
    """A polled MT-SICS scale, a scanner and a sorter: name -> (by-id link, profile)."""
    pty_bench.scale("mt-sics", weight_kg=1.25)
    pty_bench.scanner("generic-scanner")
    pty_bench.sorter()
    return {"scale": (pty_bench.link("scale"), "mt-sics"),
            "scanner": (pty_bench.link("scanner"), "generic-scanner"),
            "sorter": (pty_bench.link("sorter"), "generic-divert")}


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    def write(devices: dict[str, tuple[Path, str]], mqtt: str = "enabled = false") -> Path:
        state_dir = tmp_path / "state"
        state_dir.mkdir(exist_ok=True)
        path = tmp_path / "agent.toml"
        path.write_text(config_text(state_dir, devices, mqtt))
        return path

    return write
