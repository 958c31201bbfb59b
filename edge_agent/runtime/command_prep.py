"""The running agent's side of central's commands that runs on the command worker's thread.

What may take long happens here, off the decision loop: a pushed rule set is parsed, checked
against the sorter's reach and written as last known good; manifest rows are counted against
the manifest's budget and written through the manifest's writer connection. The loop is left
with steps of microseconds (runtime.agent: swap_rules, set_lane, apply_holds, status). Holds
are checked and written to their store here, so a hold whose reply says ok is on disk.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import structlog

from edge_agent.config import AgentConfig
from edge_agent.errors import EdgeAgentError
from edge_agent.runtime import rules_store
from edge_agent.sorting.hold_store import HoldStore
from edge_agent.sorting.holds import Hold, HoldRequest, holds_from_requests
from edge_agent.sorting.manifest import Manifest, ManifestEntry
from edge_agent.sorting.rules import RuleSet
from edge_agent.units import MIB

log = structlog.get_logger(__name__)

# Bytes a manifest row takes on disk, with its share of the B-tree: ~50 bytes measured at a
# million rows; rounded up so a batch is never let past the budget by the estimate.
ROW_BYTES_ESTIMATE = 96
# Active holds at most. A hold is an exception to the routine (a cancelled order, a customs
# inspection): a few hundred a day on a busy line. The bound keeps the loop's index (and the
# status's scan of it) small; past it, central is told over_limit and nothing is stored.
MAX_ACTIVE_HOLDS = 10_000

RaiseAlarm = Callable[[str, str, str, dict[str, Any]], None]


class ManifestFull(EdgeAgentError):
    """A batch would pass the manifest's budget; the command's reply code is over_limit."""

    over_limit = True

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("; ".join(problems))


class HoldsFull(ManifestFull):
    """A batch of holds would pass MAX_ACTIVE_HOLDS; the reply code is over_limit."""


class AgentCommandPrep:
    """CommandPrep for the running agent (see edge_agent.sync.commands)."""

    def __init__(self, config: AgentConfig, manifest: Manifest, raise_alarm: RaiseAlarm,
                 holds: HoldStore | None = None, clock: Callable[[], float] = time.time):
        self._config = config
        self._manifest = manifest
        self._holds = holds
        self._clock = clock  # UNIX seconds: holds' expiries are wall-clock times
        # Replaced by the agent's own once it runs (its alarms go to the outbox).
        self.raise_alarm = raise_alarm
        self._warned = False  # the near-limit alarm is raised once per crossing

    def prepare_rules(self, text: str) -> RuleSet:
        return rules_store.accept_pushed_rules(self._config, text)

    def upsert_manifest(self, entries: list[ManifestEntry]) -> int:
        budget = self._config.manifest
        rows, size = self._manifest.usage()
        new_rows = len(entries) - self._manifest.count_present([e.barcode for e in entries])
        max_bytes = int(budget.disk_budget_mb * MIB)
        problems = []
        if rows + new_rows > budget.max_rows:
            problems.append(f"manifest: {rows} rows + {new_rows} new would pass the budget of "
                            f"{budget.max_rows} rows (manifest.max_rows)")
        if size + new_rows * ROW_BYTES_ESTIMATE > max_bytes:
            problems.append(f"manifest: {size} bytes on disk + ~{new_rows * ROW_BYTES_ESTIMATE} "
                            f"would pass the budget of {max_bytes} bytes "
                            f"(manifest.disk_budget_mb)")
        if problems:
            self._alarm("manifest_full", "critical", "central's manifest rows were refused: "
                        "the manifest store is at its budget", rows, size)
            raise ManifestFull(problems)
        count = self._manifest.upsert(entries)
        self._check_near_limit()
        return count

    def remove_manifest(self, barcodes: list[str]) -> int:
        removed = self._manifest.remove(barcodes)
        self._check_near_limit()
        return removed

    def put_holds(self, requests: list[HoldRequest]) -> list[Hold]:
        store = self._hold_store()
        now = self._clock()
        holds = holds_from_requests(requests, now)
        ids = [hold.hold_id for hold in holds]
        active, new = store.count_new(ids, now)
        if active + new > MAX_ACTIVE_HOLDS:
            raise HoldsFull([f"holds: {active} active + {new} new would pass the bound of "
                             f"{MAX_ACTIVE_HOLDS}; lift holds no longer needed first"])
        return store.put(holds, now)

    def lift_holds(self, hold_ids: list[str]) -> list[str]:
        return self._hold_store().lift(hold_ids)

    def _hold_store(self) -> HoldStore:
        if self._holds is None:
            raise EdgeAgentError("this agent keeps no holds (no store was opened)")
        return self._holds

    def _check_near_limit(self) -> None:
        budget = self._config.manifest
        rows, size = self._manifest.usage()
        near = (rows >= budget.max_rows * budget.warn_fraction
                or size >= budget.disk_budget_mb * MIB * budget.warn_fraction)
        if near and not self._warned:
            self._alarm("manifest_near_limit", "warning", "the manifest store passed "
                        f"{budget.warn_fraction:.0%} of its budget", rows, size)
        self._warned = near

    def _alarm(self, name: str, severity: str, message: str, rows: int, size: int) -> None:
        budget = self._config.manifest
        self.raise_alarm(name, severity, message, {
            "rows": rows, "bytes": size, "max_rows": budget.max_rows,
            "max_bytes": int(budget.disk_budget_mb * MIB)})
