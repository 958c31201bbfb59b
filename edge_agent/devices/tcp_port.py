"""One device on the network under the same supervision as a serial port: a drop-in for the hub.

A TcpPort is a SupervisedPort whose connection is a TCP socket, so framing, decoding, polls,
counters, device states and the hub's single reading thread are the serial port's own. What
differs is how the link is made and lost:

- client (the agent connects): a non-blocking connect, finished when the hub sees the socket
  writable, abandoned after `connect_timeout_s`; refused, unreachable or timed out, the next
  try follows with exponential backoff and jitter (so the agents of several lines do not hammer
  a converter that has just rebooted in step).
- server (the device connects): the agent listens on its address; one device at a time. A
  second connection while one is up *replaces* it when the current device has been silent for
  BUSY_PEER_S (counted in `peers_replaced`): a device connects again only once it has given up
  its old link, which we may not have noticed (a device that rebooted, or a cable pulled, leaves
  a half-open socket no byte will ever arrive on), and waiting for keepalive to find that out
  would cost every parcel meanwhile. While the current device is talking the newcomer is
  refused (closed at once, counted in `peers_refused`): two devices configured onto one port
  then show up in the counters instead of cutting each other's records.

Either way: no bytes from the device for `idle_timeout_s` → the link is dropped and made again;
TCP keepalive finds a dead peer on a quiet link within about 25 s even without one; a profile's
heartbeat goes out whenever the agent has sent nothing for its period. Nothing here blocks: no
name lookups (IP addresses only), no waiting connect, no blocking write.

Hooks for message-level protocols (acknowledgement, re-send, de-duplication by sequence number
belong to a profile, not to the transport; docs/PROTOCOLS.md, "Transport hooks"):
`connection_number` changes with each new connection, `send()` says whether the bytes went,
`heartbeat_bytes` may be replaced by a callable that builds each heartbeat (e.g. with the next
sequence number), and `tap` sees every chunk read, as read.
"""

from __future__ import annotations

import contextlib
import errno
import random
import selectors
import socket
import time
from collections.abc import Callable
from typing import TYPE_CHECKING

import structlog

from edge_agent.devices.messages import Message
from edge_agent.devices.port import RECONNECT_INITIAL_S, PortState, SupervisedPort
from edge_agent.devices.tcp_endpoint import TcpEndpoint
from edge_agent.units import NS_PER_S

if TYPE_CHECKING:
    from edge_agent.devices.profiles import Profile

log = structlog.get_logger("edge_agent.devices.tcp_port")

# TCP keepalive on a quiet link: first probe after 10 s of silence, then every 5 s, dead after
# 3 unanswered. Finds a peer that vanished without a FIN (power cut, cable) in about 25 s.
KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_COUNT = 10, 5, 3
# Backoff jitter: each wait is drawn from [JITTER_FLOOR x step, step].
JITTER_FLOOR = 0.5
# Server: a device that sent bytes this recently is alive; a second connection is refused.
BUSY_PEER_S = 2.0
TCP_COUNTERS = ("connect_refused", "connect_timeouts", "idle_timeouts", "heartbeats",
                "peers_replaced", "peers_refused", "listen_errors")


class TcpPort(SupervisedPort):
    """A device at `endpoint`, with its profile's codec, supervised like a serial port."""

    transport = "tcp"
    END_OF_FILE = "the device closed the connection"

    def __init__(self, name: str, endpoint: TcpEndpoint, profile: Profile, *,
                 poll_period_ms: int | None = None,
                 clock: Callable[[], int] = time.monotonic_ns) -> None:
        super().__init__(name, endpoint.url, profile, poll_period_ms=poll_period_ms, clock=clock)
        self.endpoint = endpoint
        self.counters.update(dict.fromkeys(TCP_COUNTERS, 0))
        idle_s = endpoint.idle_timeout_s
        if idle_s is None and profile.tcp.idle_timeout_ms:
            idle_s = profile.tcp.idle_timeout_ms / 1000
        self.idle_timeout_ns = int(idle_s * NS_PER_S) if idle_s else None
        period_ms = profile.tcp.heartbeat_period_ms
        self.heartbeat_period_ns = period_ms * 1_000_000 if period_ms else None
        # Static bytes from the profile, or a callable a protocol sets to build each one.
        self.heartbeat_bytes: bytes | Callable[[], bytes] | None = profile.tcp.heartbeat
        self._listener: socket.socket | None = None
        self._pending: socket.socket | None = None  # a client connect in progress
        self._connect_deadline_ns: int | None = None
        self._last_in_ns = 0
        self._last_out_ns = 0
        self.busy_peer_ns = int(BUSY_PEER_S * NS_PER_S)

    # -- what the hub asks -----------------------------------------------------------------
    def watched(self) -> tuple[tuple[int, int], ...]:
        fds: list[tuple[int, int]] = []
        if self._listener is not None:
            fds.append((self._listener.fileno(), selectors.EVENT_READ))
        if self._pending is not None:  # writable = connected (or failed: SO_ERROR says)
            fds.append((self._pending.fileno(), selectors.EVENT_WRITE))
        elif self._handle is not None:
            fds.append((self._handle.fileno(), selectors.EVENT_READ))
        return tuple(fds)

    def on_ready(self, fd: int, events: int) -> list[Message]:
        if self._pending is not None and fd == self._pending.fileno():
            self._finish_connect()
            return []
        if self._listener is not None and fd == self._listener.fileno():
            self._accept()
            return []
        if self._handle is not None and fd == self._handle.fileno():
            return self.read_ready()
        return []  # a socket closed earlier in this same poll

    def next_deadline_ns(self) -> int | None:
        deadline = super().next_deadline_ns()
        if self._pending is not None:
            return _earliest(deadline, self._connect_deadline_ns)
        if self._handle is None:
            return deadline
        if self.idle_timeout_ns is not None:
            deadline = _earliest(deadline, self._last_in_ns + self.idle_timeout_ns)
        if self.heartbeat_period_ns is not None:
            deadline = _earliest(deadline, self._last_out_ns + self.heartbeat_period_ns)
        return deadline

    def connect(self) -> bool:
        """Client: start a connect (done when the hub sees it writable). Server: listen."""
        if self.endpoint.role == "server":
            self._listen()
            return False
        now = self.clock()
        self._close_pending()
        self._retry_at_ns = None  # this is the try; a stale time would make the hub spin
        sock = socket.socket(_family(self.endpoint.host), socket.SOCK_STREAM)
        sock.setblocking(False)
        code = sock.connect_ex((self.endpoint.host, self.endpoint.port))
        if code in (0, errno.EINPROGRESS):
            self._pending = sock
            self._connect_deadline_ns = now + int(self.endpoint.connect_timeout_s * NS_PER_S)
            self._set_state(PortState.CONNECTING, self.last_error)
            if code == 0:
                self._finish_connect()
            return self.connected
        sock.close()
        self._connect_failed(code)
        return False

    def read_ready(self) -> list[Message]:
        messages = super().read_ready()
        if self._handle is not None:
            self._last_in_ns = self.clock()
        return messages

    def run_timers(self) -> list[Message]:
        now = self.clock()
        if self._pending is not None:
            if self._connect_deadline_ns is not None and now >= self._connect_deadline_ns:
                self._close_pending()
                self.counters["connect_timeouts"] += 1
                self._open_failed(now, f"timed out after {self.endpoint.connect_timeout_s:g} s "
                                       f"connecting to {self.endpoint.address} (device off, "
                                       "wrong address, or a firewall dropping the connection)")
            return []
        if self._handle is not None and self.idle_timeout_ns is not None \
                and now - self._last_in_ns >= self.idle_timeout_ns:
            self.counters["idle_timeouts"] += 1
            self._lost(f"no bytes from the device for {self.idle_timeout_ns / NS_PER_S:g} s "
                       "(idle timeout)")
            return []
        messages = super().run_timers()
        if self._handle is not None and self.heartbeat_period_ns is not None \
                and now - self._last_out_ns >= self.heartbeat_period_ns:
            beat = self.heartbeat_bytes
            data = beat() if callable(beat) else beat
            if data and self.send(data):
                self.counters["heartbeats"] += 1
        return messages

    def send(self, data: bytes) -> bool:
        sent = super().send(data)
        if sent:
            self._last_out_ns = self.clock()
        return sent

    def close(self) -> None:
        super().close()
        self._close_pending()
        if self._listener is not None:
            with contextlib.suppress(OSError):
                self._listener.close()
            self._listener = None

    def state_dict(self) -> dict[str, object]:
        state = super().state_dict()
        state["role"] = self.endpoint.role
        state["peer"] = self.device if self._handle is not None else None
        return state

    # -- internals -------------------------------------------------------------------------
    def _finish_connect(self) -> None:
        sock, self._pending = self._pending, None
        self._connect_deadline_ns = None
        if sock is None:
            return
        code = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
        if code:
            sock.close()
            self._connect_failed(code)
            return
        self._adopt(sock, self.endpoint.address)

    def _connect_failed(self, code: int) -> None:
        if code == errno.ECONNREFUSED:
            self.counters["connect_refused"] += 1
            reason = (f"connection refused by {self.endpoint.address} (nothing listening: "
                      "device off, wrong port, or its TCP server not enabled)")
        else:
            reason = f"cannot connect to {self.endpoint.address}: {_errno_text(code)}"
        self._open_failed(self.clock(), reason)

    def _listen(self) -> None:
        now = self.clock()
        if self._listener is not None:
            return
        sock = socket.socket(_family(self.endpoint.host), socket.SOCK_STREAM)
        try:
            # A restarted agent must get its port back at once, not after TIME_WAIT.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.endpoint.host, self.endpoint.port))
            sock.listen(1)
            sock.setblocking(False)
        except OSError as exc:
            sock.close()
            self.counters["listen_errors"] += 1
            self._open_failed(now, _listen_error(self.endpoint, exc))
            return
        self._listener = sock
        self._retry_at_ns = None
        self._retry_delay_s = RECONNECT_INITIAL_S
        log.info("device_listening", device=self.name, address=self.endpoint.address)
        self._set_state(PortState.CONNECTING, None)

    def _accept(self) -> None:
        if self._listener is None:
            return
        try:
            sock, address = self._listener.accept()
        except (BlockingIOError, InterruptedError, ConnectionAbortedError):
            return  # the device gave up between the wake-up and the accept
        except OSError as exc:  # out of fds: keep listening, say why
            self.counters["io_errors"] += 1
            log.warning("device_accept_failed", device=self.name, error=str(exc))
            return
        peer = f"{address[0]}:{address[1]}"
        if self._handle is not None and self.clock() - self._last_in_ns < self.busy_peer_ns:
            self.counters["peers_refused"] += 1
            log.warning("device_peer_refused", device=self.name, current=self.device, new=peer)
            with contextlib.suppress(OSError):
                sock.close()
            return
        if self._handle is not None:
            self.counters["peers_replaced"] += 1
            log.warning("device_peer_replaced", device=self.name, old=self.device, new=peer)
            self._close_handle()
        self._adopt(sock, peer)

    def _adopt(self, sock: socket.socket, peer: str) -> None:
        sock.setblocking(False)
        with contextlib.suppress(OSError):  # tuning only: a socket without them still works
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # frames are small
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPIDLE, KEEPALIVE_IDLE_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPINTVL, KEEPALIVE_INTERVAL_S)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_KEEPCNT, KEEPALIVE_COUNT)
        now = self.clock()
        self._last_in_ns = self._last_out_ns = now
        self._opened(sock, peer, now)

    def _lost(self, error: str) -> None:
        super()._lost(error)
        if self._listener is not None:
            self._retry_at_ns = None  # still listening: the device comes back by itself

    def _backoff_ns(self) -> int:
        return int(self._retry_delay_s * random.uniform(JITTER_FLOOR, 1.0) * NS_PER_S)

    def _close_pending(self) -> None:
        sock, self._pending = self._pending, None
        self._connect_deadline_ns = None
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.close()


def _earliest(a: int | None, b: int | None) -> int | None:
    if a is None:
        return b
    return a if b is None else min(a, b)


def _family(host: str) -> socket.AddressFamily:
    return socket.AF_INET6 if ":" in host else socket.AF_INET


def _errno_text(code: int) -> str:
    import os

    return f"{os.strerror(code)} ({errno.errorcode.get(code, code)})"


def _listen_error(endpoint: TcpEndpoint, exc: OSError) -> str:
    if exc.errno == errno.EADDRINUSE:
        return (f"cannot listen on {endpoint.address}: address already in use (another program, "
                "or a second agent, has the port; ss -ltnp shows which)")
    if exc.errno == errno.EADDRNOTAVAIL:
        return (f"cannot listen on {endpoint.address}: no interface of this computer has that "
                "address")
    if exc.errno == errno.EACCES:
        return f"cannot listen on {endpoint.address}: ports below 1024 need privileges"
    return f"cannot listen on {endpoint.address}: {exc.strerror or exc}"
