"""A device at the far end of a pseudo-terminal: the base of every simulator.

The simulator owns the master side of a pty; the code under test opens the slave path with
pyserial exactly as it would a USB-serial adapter. `path` is a stable symlink (like a
/dev/serial/by-id name) that points at the current slave. `unplug()` closes the pty, so the
reader sees EIO or EOF and the link vanishes; `replug()` makes a new pty and recreates the link,
as a USB adapter does when it comes back with a new /dev/ttyUSBn.

Each simulator runs in its own thread because it stands in for another machine: it must answer
while the code under test is busy, never in lock-step with it.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import selectors
import tempfile
import threading
import time
import tty
from pathlib import Path

# How long the peer thread waits for input before running its timers anyway.
IDLE_WAIT_S = 0.05
# Pause between the pieces of a split frame, so the reader gets them in separate chunks.
SPLIT_PIECE_GAP_S = 0.003
READ_CHUNK = 4096
# A line longer than this without a terminator is garbage: drop it rather than grow forever.
MAX_COMMAND_BYTES = 512


class PtyPeer:
    """Pty plumbing, the peer thread, timed writes and fault injection; subclasses add protocol.

    Subclasses override `on_command(line)` (one command line, terminator stripped) and, for
    devices that talk on their own, `on_tick(now)` with `tick_period_s`.
    """

    tick_period_s: float | None = None
    # Commands end at CR; a LF before or after it is part of the line ending, not the command.
    command_terminator = b"\r"

    def __init__(self, link: str | Path | None = None, *, name: str = "device") -> None:
        self.name = name
        if link is None:
            self._link_dir = Path(tempfile.mkdtemp(prefix="edge-agent-sim-"))
            link = self._link_dir / name
        else:
            self._link_dir = None
        self.path = Path(link)
        self.slave_path: str | None = None
        self.received = bytearray()  # every byte the peer read: tests check polls against it
        self.silent = False  # fault: read commands but never answer
        self.split_pieces = 1  # fault: write each frame in this many pieces
        self._master: int | None = None
        self._slave: int | None = None
        # +1 per pty opened: a replugged pty may get the closed one's fd number back, and the
        # reader thread must still register the new one (epoll dropped the old on close).
        self._generation = 0
        self._lock = threading.RLock()
        self._pending: list[tuple[float, int, bytes]] = []
        self._order = itertools.count()
        self._inbox = bytearray()
        self._stop = threading.Event()
        self._wake_r, self._wake_w = os.pipe()
        self._thread: threading.Thread | None = None
        self._next_tick = 0.0

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> PtyPeer:
        self._open_pty()
        self._thread = threading.Thread(target=self._run, name=f"sim-{self.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._wake()
        if self._thread is not None:
            self._thread.join(timeout=5)
        with self._lock:
            self._close_pty()
        for fd in (self._wake_r, self._wake_w):
            with contextlib.suppress(OSError):
                os.close(fd)
        if self._link_dir is not None:
            with contextlib.suppress(OSError):
                self._link_dir.rmdir()

    def __enter__(self) -> PtyPeer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def plugged(self) -> bool:
        return self._master is not None

    def unplug(self) -> None:
        """Pull the cable: the reader's fd reports EIO/EOF and the by-id link disappears."""
        with self._lock:
            self._close_pty()
            self._pending.clear()
        self._wake()

    def replug(self) -> None:
        """Plug back in: a new pty behind the same link, as a USB adapter reappearing."""
        with self._lock:
            if self._master is None:
                self._open_pty()
        self._wake()

    # -- writing ---------------------------------------------------------------------------
    def send_raw(self, data: bytes) -> None:
        """Write bytes now, in one write (noise, glued frames...)."""
        with self._lock:
            if self._master is None:
                return  # unplugged: bytes go nowhere, as on a real cable
            with contextlib.suppress(OSError):
                os.write(self._master, data)

    def send_frame(self, frame: bytes) -> None:
        """Write one frame, split into `split_pieces` separate writes when that fault is on."""
        pieces = max(1, min(self.split_pieces, len(frame)))
        if pieces == 1:
            self.send_raw(frame)
            return
        size = -(-len(frame) // pieces)
        for start in range(0, len(frame), size):
            self.send_raw(frame[start:start + size])
            time.sleep(SPLIT_PIECE_GAP_S)  # models a slow device, not test synchronisation

    def send_glued(self, frames: list[bytes]) -> None:
        """Several frames in a single write: the reader must still find each one."""
        self.send_raw(b"".join(frames))

    def send_later(self, delay_s: float, frame: bytes) -> None:
        """Queue a frame for the peer thread to write after `delay_s` (e.g. a slow ACK)."""
        with self._lock:
            due = time.monotonic() + delay_s
            heapq.heappush(self._pending, (due, next(self._order), frame))
        self._wake()

    def reply(self, frame: bytes) -> None:
        """Answer a command, unless the device has gone silent."""
        if not self.silent:
            self.send_frame(frame)

    # -- protocol hooks --------------------------------------------------------------------
    def on_command(self, line: bytes) -> None:
        """One command received; the base device ignores everything."""

    def on_tick(self, now: float) -> None:
        """Called every `tick_period_s` while plugged (continuous output)."""

    # -- internals -------------------------------------------------------------------------
    def _open_pty(self) -> None:
        master, slave = os.openpty()
        # Raw mode on our handle of the slave: no echo, no line editing before pyserial opens it.
        tty.setraw(slave)
        os.set_blocking(master, False)
        self._master, self._slave = master, slave
        self._generation += 1
        self.slave_path = os.ttyname(slave)
        # Repoint atomically: a reader resolving the link never sees it missing mid-swap.
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        temporary.unlink(missing_ok=True)
        temporary.symlink_to(self.slave_path)
        os.replace(temporary, self.path)
        self._inbox.clear()

    def _close_pty(self) -> None:
        if self._master is None:
            return
        self.path.unlink(missing_ok=True)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)  # type: ignore[arg-type]
        self._master = self._slave = None

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ)
            watched: tuple[int | None, int] = (None, 0)  # (fd, generation) registered
            while not self._stop.is_set():
                with self._lock:
                    current = (self._master, self._generation)
                if current != watched:
                    if watched[0] is not None:
                        with contextlib.suppress(KeyError, ValueError, OSError):
                            selector.unregister(watched[0])
                    if current[0] is not None:
                        selector.register(current[0], selectors.EVENT_READ)
                    watched = current
                for key, _ in selector.select(self._wait_s()):
                    if key.fd == self._wake_r:
                        os.read(self._wake_r, READ_CHUNK)
                    else:
                        self._read_master(key.fd)
                self._run_timers()

    def _wait_s(self) -> float:
        wait = IDLE_WAIT_S
        with self._lock:
            if self._pending:
                wait = min(wait, self._pending[0][0] - time.monotonic())
        if self.tick_period_s is not None:
            wait = min(wait, self._next_tick - time.monotonic())
        return max(0.0, wait)

    def _read_master(self, fd: int) -> None:
        with self._lock:
            if fd != self._master:
                return
            try:
                data = os.read(fd, READ_CHUNK)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                data = b""
        if not data:
            return
        self.received += data
        self.on_bytes(data)

    def on_bytes(self, data: bytes) -> None:
        """Bytes read from the agent: split into command lines (binary protocols override)."""
        self._inbox += data
        terminator = self.command_terminator
        while terminator in self._inbox:
            line, _, rest = bytes(self._inbox).partition(terminator)
            self._inbox[:] = rest
            self.on_command(line.strip(b"\n"))
        if len(self._inbox) > MAX_COMMAND_BYTES:
            self._inbox.clear()

    def _run_timers(self) -> None:
        now = time.monotonic()
        due: list[bytes] = []
        with self._lock:
            while self._pending and self._pending[0][0] <= now:
                due.append(heapq.heappop(self._pending)[2])
        for frame in due:
            self.reply(frame)
        if self.tick_period_s is not None and now >= self._next_tick:
            self._next_tick = now + self.tick_period_s
            if self.plugged and not self.silent:
                self.on_tick(now)
