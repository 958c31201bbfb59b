"""One final outcome per commanded parcel: what the sorter says happened, or that it said nothing.

The decision loop calls `expect` for each parcel it commands (before the decision's event is
stored, see outcome_ledger), then one of:
- `confirmed`: the sorter's confirmation (SorterOutcome): sorted, too late, bin full...;
- `agent_outcome`: the agent knows the end itself: refused (the sorter NAKed the command),
  not_commanded (the command could not be sent);
- `expire`: nothing came within `sorter.confirm_timeout_ms`: no_confirmation.
The first one wins and is the parcel's only outcome event (kind "outcome", topic
events/outcome, joined to the decision by parcel_id); anything the sorter says about the parcel
afterwards is counted (`confirmations_late` / `confirmations_unknown`), never published twice.
Outcomes are counted per lane and outcome, and their rates per lane feed alarms (outcome_rates).
"""

from __future__ import annotations

import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from edge_agent.config import SorterConfig
from edge_agent.devices.messages import SorterOutcome
from edge_agent.runtime.outcome_ledger import OutcomeLedger, Waiting
from edge_agent.runtime.outcome_rates import OutcomeRates, RateChange

# Parcel ids remembered after their outcome, to tell a confirmation that came after the
# timeout (counted confirmations_late) from one about a parcel this agent never commanded.
RECENTLY_RESOLVED = 10_000

Emit = Callable[[dict[str, Any]], None]


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


class OutcomeTracker:
    def __init__(self, config: SorterConfig, ledger: OutcomeLedger, waiting: dict[str, Waiting],
                 emit: Emit, lane_for_bin: Callable[[int], str | None],
                 wall_ms: Callable[[], int] = lambda: int(time.time() * 1000)):
        self._config = config
        self._ledger = ledger
        self._emit = emit  # appends the event to the outbox
        self._lane_for_bin = lane_for_bin
        self._wall_ms = wall_ms
        self._timeout_ns = config.confirm_timeout_ms * 1_000_000
        self.rates = OutcomeRates(config)
        self.by_lane: defaultdict[str, Counter[str]] = defaultdict(Counter)
        self.counts: Counter[str] = Counter()  # confirmations_late, confirmations_unknown...
        self._recent: dict[str, None] = {}
        # Parcels recovered from the ledger wait for what is left of their time (none if the
        # wall clock says it has passed), counted from now on the monotonic clock.
        now_ns, now_ms = time.monotonic_ns(), wall_ms()
        self._waiting: dict[str, tuple[Waiting, int]] = {}
        for entry in sorted(waiting.values(), key=lambda w: w.until_ms):
            left_ns = min(max(0, entry.until_ms - now_ms) * 1_000_000, self._timeout_ns)
            self._waiting[entry.parcel_id] = (entry, now_ns + left_ns)
        self.recovered = len(waiting)

    # -- the decision loop's calls ---------------------------------------------------------------

    def expect(self, parcel_id: str, lane: str, bin: int, now_ns: int,
               key: str | None = None) -> None:
        """`key`: the sorter's tracking number of a sorter-driven parcel (kept on disk)."""
        now_ms = self._wall_ms()
        entry = Waiting(parcel_id, bin, lane, now_ms, now_ms + self._config.confirm_timeout_ms,
                        key)
        self._ledger.expect(entry)
        self._waiting[parcel_id] = (entry, now_ns + self._timeout_ns)

    def confirmed(self, message: SorterOutcome) -> list[RateChange]:
        waiting = self._waiting.pop(message.parcel_id, None)
        if waiting is None:
            late = message.parcel_id in self._recent
            self.counts["confirmations_late" if late else "confirmations_unknown"] += 1
            return []
        entry = waiting[0]
        details: dict[str, Any] = {"actual_bin": message.actual_bin, "source": "sorter"}
        if message.actual_bin is not None:
            details["actual_lane"] = self._lane_for_bin(message.actual_bin)
        if message.pass_count is not None:
            details["pass_count"] = message.pass_count
        if message.sorter_time is not None:
            details["sorter_time"] = message.sorter_time
        if message.bin != entry.bin:
            details["confirmed_bin"] = message.bin  # the sorter names another bin than ours
        return self._resolve(entry, message.outcome, details)

    def agent_outcome(self, parcel_id: str, outcome: str) -> list[RateChange]:
        """refused or not_commanded: the end of a parcel the sorter will not confirm."""
        waiting = self._waiting.pop(parcel_id, None)
        if waiting is None:
            return []
        return self._resolve(waiting[0], outcome, {"actual_bin": None, "source": "agent"})

    def expire(self, now_ns: int) -> list[RateChange]:
        """no_confirmation for every parcel past its time (they lead: one timeout for all)."""
        overdue = []
        for parcel_id, (_, deadline_ns) in self._waiting.items():
            if now_ns <= deadline_ns:
                break
            overdue.append(parcel_id)
        changes: list[RateChange] = []
        for parcel_id in overdue:
            entry, _ = self._waiting.pop(parcel_id)
            changes += self._resolve(entry, "no_confirmation", {
                "actual_bin": None, "source": "agent",
                "timeout_ms": self._config.confirm_timeout_ms})
        if self._ledger.compact_due():
            self._ledger.compact(entry for entry, _ in self._waiting.values())
        return changes

    def waiting_with_keys(self) -> list[Waiting]:
        """The waiting parcels that have a tracking number (sorter-driven), oldest first."""
        return [entry for entry, _ in self._waiting.values() if entry.key is not None]

    def next_deadline_ns(self) -> int | None:
        for _, deadline_ns in self._waiting.values():
            return deadline_ns
        return None

    def waiting_count(self) -> int:
        return len(self._waiting)

    def close(self) -> None:
        self._ledger.close()

    # -- views -------------------------------------------------------------------------------

    def view(self) -> dict[str, Any]:
        """For `diag status` and telemetry: outcomes per lane since start, rates, waiting."""
        return {"by_lane": {lane: dict(counts) for lane, counts in self.by_lane.items()},
                "waiting": len(self._waiting), "recovered_at_start": self.recovered,
                **dict(self.counts), "rates": self.rates.view()}

    # -- internals ---------------------------------------------------------------------------

    def _resolve(self, entry: Waiting, outcome: str, details: dict[str, Any]) -> list[RateChange]:
        now_ms = self._wall_ms()
        self._emit({"parcel_id": entry.parcel_id, "outcome": outcome, "lane": entry.lane,
                    "bin": entry.bin, **details, "decided_at": _iso(entry.decided_ms),
                    "reported_at": _iso(now_ms), "waited_ms": max(0, now_ms - entry.decided_ms)})
        self._ledger.resolved(entry.parcel_id)
        self._recent[entry.parcel_id] = None
        if len(self._recent) > RECENTLY_RESOLVED:
            del self._recent[next(iter(self._recent))]
        self.by_lane[entry.lane][outcome] += 1
        return self.rates.record(entry.lane, outcome)
