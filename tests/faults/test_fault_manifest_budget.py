"""The manifest's budget, on the real agent process while parcels flow.

An agent whose manifest may hold 12,000 rows (`[manifest] max_rows`, warning at half of it)
gets central's `manifest.upsert` batches of 5,000 rows: the second batch passes the warning
line (`manifest_near_limit` at central, once), the third would pass the budget and is refused
(`over_limit`, with the figures; `manifest_full` at central) with nothing of it written; a
removal makes room and the same batch goes in. The line sorts every parcel throughout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from hostile_support import ParcelFlow
from line_harness import CentralClient, wait_for
from running_line import RunningLine, fault_line

from edge_agent.simulation.line_sim import LineSimulation
from edge_agent.simulation.parcel_mix import parcel_mix

RATE = 40.0
MAX_ROWS = 12_000
BATCH = 5_000
CLI_TIMEOUT_S = 30.0


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory):
    def small_manifest(sim: LineSimulation) -> None:
        with sim.config_path.open("a") as config:
            config.write(f"\n[manifest]\nmax_rows = {MAX_ROWS}\nwarn_fraction = 0.5\n")

    def commands(line: RunningLine) -> None:
        line.sim.commands = line.client(CentralClient)

    with fault_line(tmp_path_factory.mktemp("manifest-budget"), parcel_mix(1000, seed=17),
                    rate=RATE, configure=small_manifest, connect=commands) as running:
        yield running.sim, running.agent


def _batch(number: int) -> dict:
    return {"entries": [{"barcode": f"MB{number:02d}{i:08d}", "country": "CN",
                         "postal_code": "200120"} for i in range(BATCH)]}


def _manifest_rows(state_dir: Path) -> int:
    """The rows in the agent's manifest, as `edge-agent manifest stats` (read-only) says."""
    result = subprocess.run(
        [sys.executable, "-m", "edge_agent", "manifest", "stats", "--state-dir", str(state_dir),
         "--json"], capture_output=True, text=True, timeout=CLI_TIMEOUT_S)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)["entries"]


def test_the_manifest_budget_warns_then_refuses_on_the_running_agent(line):
    sim, agent = line
    base = _manifest_rows(sim.state_dir)  # the simulated line's own parcels' rows
    assert base + BATCH < MAX_ROWS / 2 < base + 2 * BATCH <= MAX_ROWS < base + 3 * BATCH
    with ParcelFlow(sim, RATE) as flow:
        first = sim.commands.request("manifest.upsert", "mb-1", _batch(1))
        assert first["ok"] and first["result"] == {"upserted": BATCH}, first
        assert not sim.central.alarms("manifest_near_limit")
        second = sim.commands.request("manifest.upsert", "mb-2", _batch(2))
        assert second["ok"], second
        near = wait_for(lambda: sim.central.alarms("manifest_near_limit"),
                        what="manifest_near_limit at central")
        assert near[0]["details"]["rows"] == base + 2 * BATCH
        assert near[0]["details"]["max_rows"] == MAX_ROWS
        third = sim.commands.request("manifest.upsert", "mb-3", _batch(3))
        assert not third["ok"] and third["error"]["code"] == "over_limit", third
        assert any(f"{MAX_ROWS} rows" in problem for problem in third["error"]["problems"])
        full = wait_for(lambda: sim.central.alarms("manifest_full"),
                        what="manifest_full at central")
        assert full[0]["severity"] == "critical"
        assert _manifest_rows(sim.state_dir) == base + 2 * BATCH  # nothing of the third went in
        # Room made by central: the same batch (a new id: the refusal was an answer) goes in.
        removed = sim.commands.request("manifest.remove", "mb-rm", {"barcodes": [
            entry["barcode"] for entry in _batch(1)["entries"]]})
        assert removed["ok"] and removed["result"] == {"removed": BATCH}, removed
        again = sim.commands.request("manifest.upsert", "mb-3b", _batch(3))
        assert again["ok"], again
        assert _manifest_rows(sim.state_dir) == base + 2 * BATCH
        wait_for(lambda: flow.sent >= 40, what="some parcels")
        flow.stop()
        flow.wait_all_commanded()
    assert agent.process.poll() is None, agent.log_tail()
    # Once per crossing: the removal took it back under the line, the last batch over again.
    wait_for(lambda: len(sim.central.alarms("manifest_near_limit")) == 2,
             what="a second manifest_near_limit")
