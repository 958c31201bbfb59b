"""One process at a time owns the state directory (outbox, journal, manifest, lane states).

The lock is the first thing a command that writes under the state directory takes: before the
outbox replays its journal, before an alarm is appended, before the manifest is written. A
second `edge-agent run` with the same config used to replay (and delete) the running agent's
journal before it found the status socket taken; now it stops here, having read or written
nothing but the lock file.

Why `flock` on a file: the kernel drops the lock when its holder dies (kill -9, power cut), so
a stale lock never blocks a restart, and there is no PID file to go stale. The file holds the
holder's pid and command only to make the refusal readable.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path

from edge_agent.errors import EdgeAgentError

LOCK_FILE = "agent.lock"
# What the lock file may say about its holder, read back for the refusal's message.
MAX_HOLDER_BYTES = 200


class StateDirBusy(EdgeAgentError):
    """Another process holds the state directory's lock."""

    def __init__(self, state_dir: Path, holder: str):
        self.state_dir = state_dir
        self.holder = holder
        super().__init__(
            f"{state_dir} is in use by another process ({holder}); nothing under it was "
            f"touched. Stop that process first (systemctl stop edge-agent), or give this "
            f"command another state directory"
        )


class StateDirLock:
    """Held from `acquire` until `release` (or the process ends)."""

    def __init__(self, path: Path, fd: int):
        self.path = path
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, state_dir: Path, purpose: str) -> StateDirLock:
        """Create the directory if needed and lock it; StateDirBusy if another process has it."""
        state_dir = Path(state_dir)
        try:
            state_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(state_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise EdgeAgentError(
                f"state_dir: cannot use {state_dir} ({exc.strerror or exc})"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise StateDirBusy(state_dir, holder) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}, {purpose}\n".encode(), 0)
        return cls(state_dir / LOCK_FILE, fd)

    def release(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)  # closing the last descriptor drops the flock
            self._fd = None

    def __enter__(self) -> StateDirLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, MAX_HOLDER_BYTES, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "pid unknown"
