"""The sorter's controller, speaking the `generic-divert` line protocol.

ASCII lines ending CR LF. Agent to sorter: `DIV <parcel_id> <bin> [<label>]`. Sorter to agent:
`ACK <parcel_id> <bin>`, `NAK <parcel_id> <bin> <reason>`, `FULL <bin>`, `CLEAR <bin>`, and after
the ACK one confirmation of what happened to the parcel (SORTED, LATE, REDIRECT, RECIRC, LOST;
edge_agent.devices.sorter_protocol), or none, as a sorter that only acknowledges does.
Which outcome each parcel gets: the next one queued with `queue_outcomes` (on demand), else one
drawn at `outcome_rates` (random, seeded), else `outcome` (None: ACK only).
Every lane command is recorded with the time it arrived, so tests and benchmarks can measure
scan-to-divert latency on the far side of a real serial line.
"""

from __future__ import annotations

import random
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import unquote

from edge_agent.devices.simulators.pty_peer import PtyPeer


@dataclass(frozen=True)
class LaneCommand:
    parcel_id: str
    bin: str
    received_ns: int  # time.monotonic_ns() when the sorter read the command's last byte
    barcode: str | None = None  # the optional label, decoded back to the barcode read


# Outcomes the simulator can confirm, and the confirmation line of each (the redirected and
# late parcels go to `catch_all_bin`).
OUTCOME_LINES = {
    "sorted": "SORTED {pid} {bin} {time}",
    "too_late": "LATE {pid} {bin} {catch_all}",
    "bin_full": "REDIRECT {pid} {bin} FULL {catch_all} {time}",
    "bin_disabled": "REDIRECT {pid} {bin} DISABLED {catch_all} {time}",
    "bin_jammed": "REDIRECT {pid} {bin} JAMMED {catch_all} {time}",
    "recirculated": "RECIRC {pid} {bin} {passes}",
    "tracking_lost": "LOST {pid} {bin}",
}


def _utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


@dataclass(frozen=True)
class Confirmation:
    parcel_id: str
    outcome: str  # one of OUTCOME_LINES, or "none" (nothing sent)
    line: bytes


class SorterSimulator(PtyPeer):
    """Records `DIV` commands and answers them: ACK after `ack_delay_s`, or NAK, or nothing."""

    def __init__(
        self,
        link: str | Path | None = None,
        *,
        ack_delay_s: float = 0.0,
        name: str = "sorter",
    ) -> None:
        super().__init__(link, name=name)
        self.ack_delay_s = ack_delay_s
        self.drop_acks = False  # fault: accept commands but never acknowledge them
        self.nak_reason: str | None = None  # when set, refuse every command with this reason
        # Confirmations (see the module doc): `outcome` for every parcel unless one is queued
        # or drawn; they follow the ACK by `confirm_delay_s`.
        self.outcome: str | None = None
        self.outcome_rates: dict[str, float] = {}
        self.confirm_delay_s = 0.0
        self.catch_all_bin = 99
        self.recirculation_passes = 1
        self.duplicate_confirmations = False  # fault: every confirmation sent twice
        self._queued: deque[str | None] = deque()
        self._rng = random.Random(0)
        self.confirmations: list[Confirmation] = []
        self.commands: list[LaneCommand] = []
        self.unknown_lines: list[bytes] = []
        self._commands_changed = threading.Condition()
        # Called (in the simulator's thread) for every lane command, e.g. to print it.
        self.on_lane_command: Callable[[LaneCommand], None] | None = None

    def on_command(self, line: bytes) -> None:
        received_ns = time.monotonic_ns()
        parts = line.decode("ascii", "replace").split()
        if len(parts) not in (3, 4) or parts[0] != "DIV":
            self.unknown_lines.append(line)
            return
        parcel_id, bin_ = parts[1], parts[2]
        barcode = unquote(parts[3], errors="replace") if len(parts) == 4 else None
        with self._commands_changed:
            self.commands.append(LaneCommand(parcel_id, bin_, received_ns, barcode))
            self._commands_changed.notify_all()
        if self.on_lane_command is not None:
            self.on_lane_command(self.commands[-1])
        if self.drop_acks:
            return
        if self.nak_reason is not None:
            answer = f"NAK {parcel_id} {bin_} {self.nak_reason}\r\n".encode()
        else:
            answer = f"ACK {parcel_id} {bin_}\r\n".encode()
        if self.ack_delay_s > 0:
            self.send_later(self.ack_delay_s, answer)
        else:
            self.reply(answer)
        if self.nak_reason is None:
            self._confirm(parcel_id, bin_)

    def queue_outcomes(self, *outcomes: str | None) -> None:
        """The next parcels' outcomes, in order (None: that parcel gets no confirmation)."""
        for outcome in outcomes:
            if outcome is not None and outcome not in OUTCOME_LINES:
                raise ValueError(f"unknown outcome {outcome!r} (one of {', '.join(OUTCOME_LINES)})")
        self._queued.extend(outcomes)

    def use_outcome_rates(self, rates: dict[str, float], seed: int = 0) -> None:
        """Draw each parcel's outcome: `rates` maps outcomes to shares (the rest: `outcome`)."""
        unknown = set(rates) - set(OUTCOME_LINES) - {"none"}
        if unknown or sum(rates.values()) > 1 or min(rates.values(), default=0) < 0:
            raise ValueError(f"outcome rates {rates!r}: known outcomes, shares summing to <= 1")
        self.outcome_rates, self._rng = dict(rates), random.Random(seed)

    def _next_outcome(self) -> str | None:
        if self._queued:
            return self._queued.popleft()
        draw = self._rng.random()
        for outcome, share in self.outcome_rates.items():
            if draw < share:
                return None if outcome == "none" else outcome
            draw -= share
        return self.outcome

    def _confirm(self, parcel_id: str, bin_: str) -> None:
        outcome = self._next_outcome()
        line = b""
        if outcome is not None:
            line = (OUTCOME_LINES[outcome].format(
                pid=parcel_id, bin=bin_, time=_utc_stamp(), catch_all=self.catch_all_bin,
                passes=self.recirculation_passes) + "\r\n").encode()
            delay = self.ack_delay_s + self.confirm_delay_s
            for _ in range(2 if self.duplicate_confirmations else 1):
                if delay > 0:
                    self.send_later(delay, line)
                else:
                    self.reply(line)
        with self._commands_changed:
            self.confirmations.append(Confirmation(parcel_id, outcome or "none", line))

    def send_full(self, bin_: int | str) -> None:
        self.send_frame(f"FULL {bin_}\r\n".encode())

    def send_clear(self, bin_: int | str) -> None:
        self.send_frame(f"CLEAR {bin_}\r\n".encode())

    def wait_for_commands(self, count: int, timeout_s: float) -> list[LaneCommand]:
        """Block until `count` commands have arrived (or the timeout passes); returns them all."""
        with self._commands_changed:
            self._commands_changed.wait_for(lambda: len(self.commands) >= count, timeout_s)
            return list(self.commands)
