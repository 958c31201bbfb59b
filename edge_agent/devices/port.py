"""One serial port under supervision: open, read in chunks, poll, and come back after unplugs.

A SupervisedPort does no waiting of its own. The DeviceHub owns one selector for every port and
calls `read_ready()` when the port's fd is readable and `run_timers()` when `next_deadline_ns()`
passes. Keeping all reads in one thread is deliberate: each chunk is stamped with
time.monotonic_ns() the moment it is read, so a scan and a weight are paired by when their
bytes arrived, never by which thread happened to run first (with a reader thread per port, a
parcel can take its neighbour's weight; docs/PAIRING.md says how stamps are used).

Reads take whatever the OS has (one os.read per readiness event), never pyserial's readline(),
which costs a system call per byte and hides arrival times.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import stat
import time
from collections.abc import Callable
from datetime import UTC, datetime
from enum import StrEnum
from typing import TYPE_CHECKING, Any

import serial
import structlog

from edge_agent.devices.messages import DecodeError, Message
from edge_agent.devices.open_errors import classify_open_error
from edge_agent.logs import raw_frames_enabled
from edge_agent.units import NS_PER_S

if TYPE_CHECKING:
    from edge_agent.devices.codec import DeviceCodec
    from edge_agent.devices.profiles import Profile

log = structlog.get_logger("edge_agent.devices.port")

# Reconnect backoff: retry fast at first (a cable reseated in a second should cost no parcels),
# then back off so a missing adapter does not burn CPU or flood the log.
RECONNECT_INITIAL_S = 0.1
RECONNECT_MAX_S = 5.0
# Largest single read. 4 KiB is several seconds of 9600-baud traffic, so one read drains a port.
READ_CHUNK_BYTES = 4096
# A blocked write (flow control stuck, adapter wedged) must not stall every other port's reads.
WRITE_TIMEOUT_S = 0.2


class PortState(StrEnum):
    CONNECTING = "connecting"
    CONNECTED = "connected"
    DISCONNECTED = "disconnected"


def _wall_clock_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class SupervisedPort:
    """A serial device by path (by-id symlinks followed at each open) with its profile's codec."""

    transport = "serial"
    END_OF_FILE = "end of file (device gone)"

    def __init__(
        self,
        name: str,
        path: str | os.PathLike[str],
        profile: Profile,
        *,
        baudrate: int | None = None,
        poll_period_ms: int | None = None,
        clock: Callable[[], int] = time.monotonic_ns,
    ) -> None:
        from edge_agent.devices.codec import make_codec

        self.name = name
        self.path = os.fspath(path)
        self.profile = profile
        self.baudrate = baudrate
        self.clock = clock
        self.codec: DeviceCodec = make_codec(profile)
        period_ms = poll_period_ms or profile.polling.period_ms
        self.poll_period_ns = int(period_ms) * 1_000_000 if period_ms else None
        self.state = PortState.CONNECTING
        self.since = _wall_clock_iso()
        self.device: str | None = None  # the resolved device node, e.g. /dev/ttyUSB0
        self.last_error: str | None = None
        self.counters = {
            "bytes_in": 0, "bytes_out": 0, "frames": 0,
            "decode_errors": 0, "io_errors": 0, "write_overflows": 0, "reconnects": 0, "polls": 0,
        }
        self.last_frame_ns: int | None = None
        self._last_frame_wall: float | None = None
        # The open connection: a serial.Serial here, a socket in TcpPort. Both have fileno() and
        # close(), which is all the reading and writing below needs.
        self._handle: Any = None
        self._unsent = b""  # the tail of the last command, when the output buffer was full
        self._connected_once = False
        self.connection_number = 0  # counts opens, so the hub can tell a reused fd number apart
        self._retry_delay_s = RECONNECT_INITIAL_S
        self._retry_at_ns: int | None = None
        self._next_poll_ns: int | None = None
        # Sees every chunk as read, with its time (diag capture records the raw bytes this way).
        self.tap: Callable[[bytes, int], None] | None = None

    # -- what the hub asks -----------------------------------------------------------------
    def fileno(self) -> int | None:
        return self._handle.fileno() if self._handle is not None else None

    @property
    def connected(self) -> bool:
        return self._handle is not None

    def watched(self) -> tuple[tuple[int, int], ...]:
        """(fd, selector events) the hub must watch for this port now; empty while closed."""
        fd = self.fileno()
        return () if fd is None else ((fd, selectors.EVENT_READ),)

    def on_ready(self, fd: int, events: int) -> list[Message]:
        """The hub saw `events` on one of the watched fds."""
        return self.read_ready()

    def next_deadline_ns(self) -> int | None:
        """The earliest time this port needs `run_timers()`: a retry, a poll or a flush."""
        if self._handle is None:
            return self._retry_at_ns
        # Called several times per turn of the decision loop: no list, no min() of one value.
        poll, flush = self._next_poll_ns, self.codec.next_deadline_ns()
        if poll is None:
            return flush
        return poll if flush is None else min(poll, flush)

    def connect(self) -> bool:
        """Try to open the port now; on failure schedule the next try with backoff."""
        now = self.clock()
        resolved = os.path.realpath(self.path)
        try:
            if not os.path.exists(resolved):
                raise FileNotFoundError(f"no such device {self.path}")
            if not _is_device(resolved):  # pyserial's answer would be "(25, Inappropriate ioctl)"
                raise OSError(f"{self.path} is not a serial device (a regular file or directory)")
            options: dict[str, Any] = dict(self.profile.serial_kwargs(baudrate=self.baudrate))
            # Non-blocking reads, bounded writes, and nobody else on the line: two readers of
            # one port would each get half of every frame.
            options.update(timeout=0, write_timeout=WRITE_TIMEOUT_S, exclusive=True)
            port = serial.Serial(resolved, **options)
        except (OSError, serial.SerialException, ValueError) as exc:
            self._open_failed(now, _describe(exc))
            return False
        return self._opened(port, resolved, now)

    def _opened(self, handle: Any, device: str, now: int) -> bool:
        """The link is up (serial or TCP): fresh framing, start-up commands, then polls."""
        self._handle = handle
        self.device = device
        self.connection_number += 1
        if self._connected_once:
            self.counters["reconnects"] += 1
        self._connected_once = True
        self._retry_delay_s = RECONNECT_INITIAL_S
        self._retry_at_ns = None
        self.codec.reset()  # half a frame from before an unplug must not glue onto the next
        self._unsent = b""  # nor half a command we could not finish sending
        self._set_state(PortState.CONNECTED, None)
        log.info("device_connected", device=self.name, path=self.path, resolved=device,
                 profile=self.profile.name)
        for command in self.codec.startup_commands():
            if not self.send(command):
                return False  # lost again at once; the retry is already scheduled
        request = self.codec.poll_request() if self.poll_period_ns else None
        self._next_poll_ns = now if request is not None else None
        return True

    def read_ready(self) -> list[Message]:
        """The fd is readable: take one chunk, stamp it, decode it."""
        if self._handle is None:
            return []
        try:
            data = os.read(self._handle.fileno(), READ_CHUNK_BYTES)
        except (BlockingIOError, InterruptedError):
            return []
        except OSError as exc:
            self.counters["io_errors"] += 1
            self._lost(_describe(exc))
            return []
        received_ns = self.clock()
        if not data:
            self._lost(self.END_OF_FILE)
            return []
        self.counters["bytes_in"] += len(data)
        if self.tap is not None:
            self.tap(data, received_ns)
        if raw_frames_enabled():
            log.debug("serial_in", device=self.name, hex=data.hex(" "))
        return self._account(self.codec.feed(data, received_ns))

    def run_timers(self) -> list[Message]:
        """Do whatever is due: reconnect, send a poll, or flush an idle-gap frame."""
        now = self.clock()
        if self._handle is None:
            if self._retry_at_ns is not None and now >= self._retry_at_ns:
                self.connect()
            return []
        messages: list[Message] = []
        deadline = self.codec.next_deadline_ns()
        if deadline is not None and now >= deadline:
            messages = self._account(self.codec.flush(now))
        if self._next_poll_ns is not None and now >= self._next_poll_ns:
            request = self.codec.poll_request()
            if request is not None and self.send(request):
                self.counters["polls"] += 1
            if self._next_poll_ns is not None and self.poll_period_ns:
                # Keep the period steady; after a long stall skip missed polls instead of bursting.
                self._next_poll_ns = max(self._next_poll_ns + self.poll_period_ns, now)
        return messages

    def send(self, data: bytes) -> bool:
        """Write a command; False when the port is not connected or the write failed."""
        if self._handle is None:
            return False
        if raw_frames_enabled():
            log.debug("serial_out", device=self.name, hex=data.hex(" "))
        try:
            # pyserial opens the fd non-blocking, so one os.write takes a short command whole,
            # without the select() and timeout bookkeeping pyserial wraps around every write
            # (a third of a lane command's cost). Nothing here ever waits: a device that stops
            # taking bytes (flow control held, a controller that hung) must not stop the reading
            # of every other port on the line.
            fd = self._handle.fileno()
            if self._unsent:
                # The tail of a command the buffer could not take whole goes first, so the
                # device never sees two commands interleaved.
                self._unsent = self._unsent[os.write(fd, self._unsent):]
            if self._unsent:
                raise BlockingIOError
            written = os.write(fd, data)
            self._unsent = data[written:]
        except BlockingIOError:
            self.counters["write_overflows"] += 1
            log.warning("device_output_full", device=self.name, bytes=len(data))
            return False
        except (OSError, serial.SerialException) as exc:
            self.counters["io_errors"] += 1
            self._lost(_describe(exc))
            return False
        self.counters["bytes_out"] += len(data)
        return True

    def close(self) -> None:
        """Stop for good: send the profile's shutdown commands and release the port."""
        if self._handle is not None:
            for command in self.codec.shutdown_commands():
                self.send(command)
        self._close_handle()
        self._retry_at_ns = None
        self._set_state(PortState.DISCONNECTED, self.last_error)

    @property
    def last_frame_at(self) -> str | None:
        if self._last_frame_wall is None:
            return None
        return datetime.fromtimestamp(self._last_frame_wall, UTC).isoformat(timespec="milliseconds")

    def state_dict(self) -> dict[str, object]:
        """JSON-ready state and counters, for `diag`, the status socket and MQTT."""
        counters = dict(self.counters)
        counters["garbage_bytes"] = self.codec.counters.garbage_bytes  # kept across resets
        counters["overflows"] = self.codec.counters.overflows
        return {
            "name": self.name,
            "path": self.path,
            "device": self.device,
            "profile": self.profile.name,
            "kind": self.profile.kind,
            "transport": self.transport,
            "state": self.state.value,
            "since": self.since,
            "last_error": self.last_error,
            "last_frame_at": self.last_frame_at,
            "counters": counters,
        }

    # -- internals -------------------------------------------------------------------------
    def _account(self, messages: list[Message]) -> list[Message]:
        if messages:
            self.counters["frames"] += len(messages)
            self.counters["decode_errors"] += sum(isinstance(m, DecodeError) for m in messages)
            self.last_frame_ns = messages[-1].received_ns
            # The wall-clock time, formatted only when the state is read (not per frame).
            self._last_frame_wall = time.time()
        return messages

    def _open_failed(self, now: int, error: str) -> None:
        if error != self.last_error:  # log each new reason once, not every retry
            log.warning("device_open_failed", device=self.name, path=self.path, error=error,
                        retry_s=self._retry_delay_s)
        self._set_state(PortState.DISCONNECTED, error)
        self._retry_at_ns = now + self._backoff_ns()
        self._retry_delay_s = min(self._retry_delay_s * 2, RECONNECT_MAX_S)

    def _lost(self, error: str) -> None:
        log.warning("device_disconnected", device=self.name, path=self.path, error=error)
        self._close_handle()
        self._set_state(PortState.DISCONNECTED, error)
        self._retry_at_ns = self.clock() + self._backoff_ns()

    def _backoff_ns(self) -> int:
        """How long until the next try: the current backoff step."""
        return int(self._retry_delay_s * NS_PER_S)

    def _close_handle(self) -> None:
        port, self._handle = self._handle, None
        self._next_poll_ns = None
        if port is not None:
            with contextlib.suppress(OSError, serial.SerialException):
                port.close()

    def _set_state(self, state: PortState, error: str | None) -> None:
        if state != self.state:
            self.since = _wall_clock_iso()
        self.state = state
        self.last_error = error


def _is_device(path: str) -> bool:
    """A serial port is a character device (a pty too); a file or directory never is."""
    mode = os.stat(path).st_mode
    return not (stat.S_ISREG(mode) or stat.S_ISDIR(mode))


def _describe(exc: BaseException) -> str:
    """A one-line reason a technician can act on (open_errors says busy the one way)."""
    return classify_open_error(exc).reason
