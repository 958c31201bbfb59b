"""A device at the far end of a pseudo-terminal: the base of every simulator.

The simulator owns the master side of a pty; the code under test opens the slave path with
pyserial exactly as it would a USB-serial adapter. `path` is a stable symlink (like a
/dev/serial/by-id name) that points at the current slave. `unplug()` closes the pty, so the
reader sees EIO or EOF and the link vanishes; `replug()` makes a new pty and recreates the link,
as a USB adapter does when it comes back with a new /dev/ttyUSBn.

Each simulator runs in its own thread because it stands in for another machine: it must answer
while the code under test is busy, never in lock-step with it.

Any simulator can stand on the network instead, as a device behind Ethernet does, speaking the
same bytes: `serve_tcp(host, port)` before `start()` makes it listen (the agent connects as a
client; `url` says where), `connect_tcp(host, port)` makes it connect to an agent listening
there (and connect again whenever the link goes). `unplug()` is then a device switched off
(its connection and its listening socket closed), `drop_link()` a link lost while the device
stays up (only the connection closed: a server device keeps listening, a client one reconnects;
on a pty, the cable pulled and put back at once).
Loopback addresses in tests.
"""

from __future__ import annotations

import contextlib
import heapq
import itertools
import os
import selectors
import socket
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
# A simulator connecting to an agent on loopback: refused or connected at once, or not at all.
TCP_CONNECT_TIMEOUT_S = 0.5


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
        # On the network instead of a pty: ("server" | "client", host, port); see the module doc.
        self._tcp: tuple[str, str, int] | None = None
        self._listener: socket.socket | None = None
        self._connection: socket.socket | None = None
        self._link_wanted = True  # client: connect (again) whenever the link is down
        self.connections = 0  # TCP connections made, accepted or replaced

    # -- on the network --------------------------------------------------------------------
    def serve_tcp(self, host: str = "127.0.0.1", port: int = 0) -> PtyPeer:
        """Listen on host:port (0: a free port, see `url`) instead of a pty; before start()."""
        self._tcp = ("server", host, port)
        return self

    def connect_tcp(self, host: str, port: int) -> PtyPeer:
        """Connect to an agent listening on host:port instead of a pty; before start()."""
        self._tcp = ("client", host, port)
        return self

    @property
    def url(self) -> str:
        """Where the agent finds this device: tcp://HOST:PORT, or the pty's link path."""
        if self._tcp is None:
            return str(self.path)
        role, host, port = self._tcp
        return f"tcp://{host}:{port}" if role == "server" else f"tcp-listen://{host}:{port}"

    @property
    def tcp_port(self) -> int:
        if self._tcp is None:
            raise ValueError(f"{self.name} is on a pty, not on the network")
        return self._tcp[2]

    def drop_link(self) -> None:
        """The link goes (a switch rebooted, a cable pulled at the far end) but the device stays
        up: the connection closes; a server keeps listening, a client connects again. On a
        pty: the cable pulled and put back at once (a new pty behind the same path)."""
        if self._tcp is None:
            self.unplug()
            self.replug()
            return
        with self._lock:
            self._close_connection()
            self._pending.clear()
        self._wake()

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
        if self._tcp is not None:
            self._open_tcp()
            return
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
        if self._tcp is not None:
            self._close_tcp()
            return
        if self._master is None:
            return
        self.path.unlink(missing_ok=True)
        for fd in (self._master, self._slave):
            with contextlib.suppress(OSError):
                os.close(fd)  # type: ignore[arg-type]
        self._master = self._slave = None

    def _open_tcp(self) -> None:
        assert self._tcp is not None
        role, host, port = self._tcp
        self._link_wanted = True
        if role == "client":
            return  # the peer thread connects (and reconnects)
        listener = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(4)
        listener.setblocking(False)
        self._listener = listener
        self._tcp = (role, host, listener.getsockname()[1])  # a port of 0 becomes the real one

    def _close_tcp(self) -> None:
        self._link_wanted = False
        self._close_connection()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None

    def _adopt(self, sock: socket.socket) -> None:
        """A connection made or accepted becomes the device's line; a newer one replaces it."""
        self._close_connection()
        sock.setblocking(False)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connection = sock
        self._master = sock.fileno()
        self._inbox.clear()
        self.connections += 1

    def _close_connection(self) -> None:
        sock, self._connection = self._connection, None
        self._master = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept(self) -> None:
        with self._lock:
            if self._listener is None:
                return
            try:
                sock, _ = self._listener.accept()
            except OSError:
                return
            self._adopt(sock)

    def _reconnect(self) -> None:
        """Client: connect when the link is down and wanted (agent not there yet: next time)."""
        if self._tcp is None or self._tcp[0] != "client" or self._stop.is_set():
            return
        with self._lock:
            if self._connection is not None or not self._link_wanted:
                return
        try:
            sock = socket.create_connection(self._tcp[1:], timeout=TCP_CONNECT_TIMEOUT_S)
        except OSError:
            return
        with self._lock:
            if self._link_wanted and self._connection is None:
                self._adopt(sock)
            else:
                sock.close()

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            os.write(self._wake_w, b"x")

    def _run(self) -> None:
        with selectors.DefaultSelector() as selector:
            selector.register(self._wake_r, selectors.EVENT_READ)
            # (line fd, listener fd, connections, generation): fd numbers come back after a
            # close, so the counts of connections and of replugs tell a new fd from the old one.
            watched: tuple[int | None, int | None, int, int] = (None, None, 0, 0)
            while not self._stop.is_set():
                self._reconnect()
                with self._lock:
                    listener = self._listener.fileno() if self._listener is not None else None
                    wanted = (self._master, listener, self.connections, self._generation)
                if wanted != watched:
                    for fd in watched[:2]:
                        if fd is not None:
                            with contextlib.suppress(KeyError, ValueError, OSError):
                                selector.unregister(fd)
                    for fd in wanted[:2]:
                        if fd is not None:
                            selector.register(fd, selectors.EVENT_READ)
                    watched = wanted
                for key, _ in selector.select(self._wait_s()):
                    if key.fd == self._wake_r:
                        os.read(self._wake_r, READ_CHUNK)
                    elif key.fd == listener:
                        self._accept()
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
            if not data and self._tcp is not None:
                self._close_connection()  # the agent closed the link: EOF for good
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
