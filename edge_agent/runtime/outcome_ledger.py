"""Which decided parcels still wait for their outcome: kept on disk, so a kill -9 forgets none.

Every parcel commanded to the sorter must end with exactly one outcome event (sorted, too late,
recirculated..., or no_confirmation when the sorter said nothing in time). The parcels waiting
for one live in the decision loop's memory; this ledger is their copy on disk, an append-only
file of JSON lines written with one `os.write` each (in the OS's hands when it returns, like
the outbox's journal, so a kill -9 loses nothing; no fsync on the hot path):

    {"d": parcel_id, "bin": 3, "lane": "ZHUHAI", "at": decided_ms, "until": deadline_ms,
     "k": "T000123"}                                    k: the sorter's tracking number, if any
    {"o": parcel_id}                                    its outcome event is in the outbox

Order on the hot path, and what a kill between two steps leaves:
1. `expect` (the "d" line), 2. the decision event into the outbox, 3. the lane command;
   later 4. the outcome event into the outbox, 5. `resolved` (the "o" line).
- killed between 1 and 2: the parcel was never commanded; after the restart it gets a
  no_confirmation outcome that no decision event precedes (central may see such an orphan).
- killed between 4 and 5: the outcome is in the outbox but the ledger still waits for it;
  `open` is given the parcel ids of the outcome events the outbox still holds and counts those
  as resolved. Only an event published and acknowledged within those few microseconds (the
  link batches acknowledgements for 0.25 s) could come twice; it carries its parcel_id and a
  new event_id.

Not fsynced: a power cut may lose the last lines the OS had not written yet (their parcels then
get no outcome; docs/MQTT.md says so). `open` reads the file (a torn last line is skipped and
counted), keeps the
parcels still waiting and rewrites the file with only them; `compact` does the same at run time
once resolved lines dominate, so the file stays proportional to the parcels in flight.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger(__name__)

LEDGER_NAME = "outcomes.ledger"
# Rewrite the file once it holds this many lines and fewer than a quarter of them still wait.
COMPACT_AFTER_LINES = 20_000
# Text that goes into a JSON string as it is (parcel ids, lane names).
_PLAIN = re.compile(r"[0-9A-Za-z_-]{1,64}")


@dataclass(frozen=True, slots=True)
class Waiting:
    """A decided parcel whose outcome has not been recorded yet."""

    parcel_id: str
    bin: int
    lane: str
    decided_ms: int  # wall clock, ms since the epoch
    until_ms: int  # wall clock: no_confirmation after this
    key: str | None = None  # a sorter-driven parcel's tracking number


class OutcomeLedger:
    def __init__(self, path: Path, waiting: dict[str, Waiting], skipped: int):
        self.path = path
        self.skipped = skipped  # unreadable lines found by open (a torn write)
        self._waiting_count = len(waiting)
        self._lines = len(waiting)
        self._fd = -1
        self._rewrite(waiting.values())

    @classmethod
    def open(cls, state_dir: Path,
             resolved_elsewhere: Callable[[], Iterable[str]] = tuple) -> tuple[
            OutcomeLedger, dict[str, Waiting]]:
        """The ledger of `state_dir` and the parcels still waiting, oldest first.
        `resolved_elsewhere()`: the parcel ids whose outcome event the outbox already holds
        (asked only when some parcels wait)."""
        path = state_dir / LEDGER_NAME
        waiting: dict[str, Waiting] = {}
        skipped = 0
        try:
            text = path.read_bytes().decode("utf-8", "replace")
        except FileNotFoundError:
            text = ""
        for line in text.splitlines():
            try:
                record = json.loads(line)
                if "o" in record:
                    waiting.pop(str(record["o"]), None)
                else:
                    key = record.get("k")
                    entry = Waiting(str(record["d"]), int(record["bin"]), str(record["lane"]),
                                    int(record["at"]), int(record["until"]),
                                    None if key is None else str(key))
                    waiting[entry.parcel_id] = entry
            except (ValueError, KeyError, TypeError):
                skipped += 1
        if waiting:
            for parcel_id in resolved_elsewhere():
                waiting.pop(parcel_id, None)
        if skipped:
            log.warning("outcome_ledger.skipped_lines", path=str(path), lines=skipped)
        return cls(path, waiting, skipped), waiting

    def expect(self, entry: Waiting) -> None:
        """Before the decision's event: on the hot path, so formatted by hand (~3 us less than
        json.dumps) where every field is known to need no escaping."""
        if entry.key is None and _PLAIN.fullmatch(entry.parcel_id) and _PLAIN.fullmatch(
                entry.lane):
            text = (f'{{"d":"{entry.parcel_id}","bin":{entry.bin},"lane":"{entry.lane}",'
                    f'"at":{entry.decided_ms},"until":{entry.until_ms}}}\n')
            os.write(self._fd, text.encode())
            self._lines += 1
        else:
            self._write(_line(entry))
        self._waiting_count += 1

    def resolved(self, parcel_id: str) -> None:
        if _PLAIN.fullmatch(parcel_id):
            os.write(self._fd, f'{{"o":"{parcel_id}"}}\n'.encode())
            self._lines += 1
        else:
            self._write({"o": parcel_id})
        self._waiting_count -= 1

    def compact_due(self) -> bool:
        return self._lines >= COMPACT_AFTER_LINES and self._waiting_count * 4 < self._lines

    def compact(self, waiting: Iterable[Waiting]) -> None:
        """Rewrite the file with only `waiting` (the caller's current set)."""
        self._rewrite(list(waiting))

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _write(self, record: dict) -> None:
        os.write(self._fd, (json.dumps(record, separators=(",", ":")) + "\n").encode())
        self._lines += 1

    def _rewrite(self, waiting: Iterable[Waiting]) -> None:
        # A new file renamed over the old one: a kill at any point leaves one or the other whole.
        temporary = self.path.with_suffix(".tmp")
        lines = [json.dumps(_line(w), separators=(",", ":")) for w in waiting]
        temporary.write_text("".join(line + "\n" for line in lines))
        os.replace(temporary, self.path)
        self.close()
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        self._lines = self._waiting_count = len(lines)


def _line(entry: Waiting) -> dict:
    line = {"d": entry.parcel_id, "bin": entry.bin, "lane": entry.lane,
            "at": entry.decided_ms, "until": entry.until_ms}
    if entry.key is not None:
        line["k"] = entry.key
    return line


def outcomes_in_outbox(outbox: Any) -> set[str]:
    """Parcel ids of the outcome events the outbox still holds: `open`'s resolved_elsewhere."""
    found: set[str] = set()
    after = 0
    while batch := outbox.pending(1000, after):
        found.update(json.loads(r.body)["parcel_id"] for r in batch if r.kind == "outcome")
        after = batch[-1].seq
    return found
