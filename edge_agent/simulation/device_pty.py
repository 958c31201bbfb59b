"""The device's end of a pseudo-terminal, for simulated lines served by one selector loop (the
fault line, the benchmark's light line): a link the agent opens by name, bytes out queued until
the pty has room, command lines in, and the sorter's side of `generic-divert`.

Nothing here blocks: the master is non-blocking, a write takes what the pty has room for now
and keeps the rest for the next writable event, a read takes what is there.
"""

from __future__ import annotations

import json
import os
import selectors
import sys
import tty
from pathlib import Path
from urllib.parse import unquote

READ_CHUNK = 65536


class DevicePty:
    def __init__(self, link: Path):
        self.master, slave = os.openpty()
        tty.setraw(slave)
        self.slave_name = os.ttyname(slave)
        os.close(slave)  # the agent opens it by name; the master keeps the pty alive
        os.set_blocking(self.master, False)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.unlink(missing_ok=True)
        link.symlink_to(self.slave_name)
        self.inbox = bytearray()
        self.outbox = bytearray()

    def lines(self, data: bytes) -> list[bytes]:
        """Complete command lines (CR or LF ends one), the rest kept for the next read."""
        self.inbox += data.replace(b"\n", b"\r")
        *complete, rest = self.inbox.split(b"\r")
        self.inbox = bytearray(rest)
        return [line.strip() for line in complete if line.strip()]

    def write(self, data: bytes) -> None:
        """Queue bytes; whatever the pty takes now goes now, the rest when it has room."""
        self.outbox += data
        self.flush()

    def flush(self) -> None:
        if not self.outbox:
            return
        try:
            written = os.write(self.master, self.outbox)
        except OSError:  # full, or nobody has it open yet: retried on the next turn
            return
        del self.outbox[:written]

    def serve(self, mask: int) -> bytes | None:
        """One selector event: send what waits when writable, read when readable. The bytes
        read (b"" for none), or None when the agent's end is closed or not yet opened."""
        if mask & selectors.EVENT_WRITE:
            self.flush()
        if not mask & selectors.EVENT_READ:
            return b""
        try:
            return os.read(self.master, READ_CHUNK)
        except BlockingIOError:
            return b""
        except OSError:
            return None


def acknowledge_divert(sorter: DevicePty, line: bytes, arrived_ns: int) -> list | None:
    """A `generic-divert` sorter's answer to one command line: `DIV <parcel id> <bin> [<label>]`
    is acknowledged at once and returned as [label, bin, parcel id, arrived_ns]; anything else
    is ignored (None)."""
    parts = line.decode("ascii", "replace").split()
    if len(parts) not in (3, 4) or parts[0] != "DIV":
        return None
    sorter.write(f"ACK {parts[1]} {parts[2]}\r\n".encode())
    label = unquote(parts[3]) if len(parts) == 4 else None
    return [label, int(parts[2]), parts[1], arrived_ns]


def report_and_hold(results_path: Path, outcome: dict) -> None:
    """The end of a line process's run: its results written, `done` said to the parent, and
    the ptys (this process's) kept open until the parent closes stdin, so the process under test
    is measured with its devices still there."""
    results_path.write_text(json.dumps(outcome))
    print("done", flush=True)
    sys.stdin.read()
