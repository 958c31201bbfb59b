"""The sorter's controller, speaking the `generic-divert` line protocol.

ASCII lines ending CR LF. Agent to sorter: `DIV <parcel_id> <bin> [<label>]`. Sorter to agent:
`ACK <parcel_id> <bin>`, `NAK <parcel_id> <bin> <reason>`, `FULL <bin>`, `CLEAR <bin>`.
Every lane command is recorded with the time it arrived, so tests and benchmarks can measure
scan-to-divert latency on the far side of a real serial line.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from edge_agent.devices.simulators.pty_peer import PtyPeer


@dataclass(frozen=True)
class LaneCommand:
    parcel_id: str
    bin: str
    received_ns: int  # time.monotonic_ns() when the sorter read the command's last byte
    barcode: str | None = None  # the optional label, decoded back to the barcode read


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

    def send_full(self, bin_: int | str) -> None:
        self.send_frame(f"FULL {bin_}\r\n".encode())

    def send_clear(self, bin_: int | str) -> None:
        self.send_frame(f"CLEAR {bin_}\r\n".encode())

    def wait_for_commands(self, count: int, timeout_s: float) -> list[LaneCommand]:
        """Block until `count` commands have arrived (or the timeout passes); returns them all."""
        with self._commands_changed:
            self._commands_changed.wait_for(lambda: len(self.commands) >= count, timeout_s)
            return list(self.commands)
