"""Every device port of the line (serial or TCP), read by one selector in the caller's thread.

The hub does no threading: the agent's loop calls `poll(timeout_s)`, which waits until some
port has bytes or some port's timer is due (a reconnect, a poll, an idle-gap flush), then
returns the decoded messages as (device name, message) pairs in the order they were read.

Each message is stamped when its bytes were read, which is when they arrived only if the loop
was waiting for them. When the caller came back late (a long turn, a host that took the CPU)
the bytes had been waiting since some time after the previous poll ended: `stamp_error_ns`
says by how much the stamps of the last poll's messages may be late, so pairing can refuse to
trust a stamp that cannot tell two parcels apart.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import time
from collections.abc import Callable

from edge_agent.devices.messages import Message
from edge_agent.devices.port import SupervisedPort
from edge_agent.units import NS_PER_S

# Upper bound on one wait, so a caller that passes a long timeout still sees a stuck clock or a
# port added from a callback within this time.
MAX_WAIT_S = 1.0
# A select() that returns sooner than this did not wait: the bytes were already there.
WAITED_NS = 200_000


class DeviceHub:
    def __init__(self, clock: Callable[[], int] = time.monotonic_ns) -> None:
        self.clock = clock
        self.ports: dict[str, SupervisedPort] = {}
        # select(), not epoll: epoll waits in whole milliseconds (rounded up), so a parcel due in
        # 0.3 ms (a reply's reorder margin) would wait a full millisecond more. select() takes
        # microseconds; its limit (fds below 1024) is far above the few ports a line has.
        self._selector = selectors.SelectSelector()
        # port name -> ((fd, events)..., connection number) in the selector. The OS reuses fd
        # numbers, so a reconnect may bring back the same fd: the connection number tells them
        # apart.
        self._registered: dict[str, tuple[tuple[tuple[int, int], ...], int]] = {}
        self._last_poll_end_ns: int | None = None
        # How late the stamps of the last poll's messages may be (see the module doc).
        self.stamp_error_ns = 0

    def add(self, port: SupervisedPort) -> SupervisedPort:
        """Take charge of a port and try to open it at once (a missing device is retried)."""
        if port.name in self.ports:
            raise ValueError(f"a device named {port.name!r} is already in the hub")
        self.ports[port.name] = port
        port.connect()
        self._sync(port)
        return port

    def poll(self, timeout_s: float) -> list[tuple[str, Message]]:
        """Wait at most `timeout_s` for data or a due timer; return what was decoded."""
        started = self.clock()
        wait_s = min(max(timeout_s, 0.0), MAX_WAIT_S)
        deadlines = [d for p in self.ports.values() if (d := p.next_deadline_ns()) is not None]
        if deadlines:
            wait_s = max(0.0, min(wait_s, (min(deadlines) - started) / NS_PER_S))
        out: list[tuple[str, Message]] = []
        ready = self._select(wait_s)
        woke = self.clock()
        for key, events in ready:
            port: SupervisedPort = key.data
            out.extend((port.name, message) for message in port.on_ready(key.fd, events))
            self._sync(port)
        now = self.clock()
        if woke - started >= WAITED_NS or self._last_poll_end_ns is None:
            # Woken by the bytes: they had all arrived when select() returned. The ports read
            # after the first were stamped later than that, by up to the time the reads took,
            # which is what tells a scan and a reply read in one poll apart, or not.
            self.stamp_error_ns = now - woke
        else:  # they were waiting: since the previous poll ended, at the earliest
            self.stamp_error_ns = max(0, now - self._last_poll_end_ns)
        self._last_poll_end_ns = now
        for port in self.ports.values():
            deadline = port.next_deadline_ns()
            if deadline is not None and now >= deadline:
                out.extend((port.name, message) for message in port.run_timers())
                self._sync(port)
        return out

    def send(self, name: str, data: bytes) -> bool:
        """Write to a device; False when it is disconnected (the caller decides what to do)."""
        port = self.ports[name]
        sent = port.send(data)
        self._sync(port)
        return sent

    def states(self) -> dict[str, dict[str, object]]:
        return {name: port.state_dict() for name, port in self.ports.items()}

    def close(self) -> None:
        for port in self.ports.values():
            port.close()
            self._sync(port)
        self._selector.close()

    def __enter__(self) -> DeviceHub:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _select(self, wait_s: float) -> list:
        try:
            return self._selector.select(wait_s)
        except (OSError, ValueError):
            # select() refuses an fd that was closed behind the port's back, where epoll
            # forgot it silently. Do as epoll did: stop watching that fd (it stays recorded, so
            # it is watched again only once its port reconnects) and keep serving the others.
            for watched, _ in self._registered.values():
                for fd, _ in watched:
                    try:
                        os.fstat(fd)
                    except OSError:
                        with contextlib.suppress(KeyError, ValueError):
                            self._selector.unregister(fd)
            return []

    def _sync(self, port: SupervisedPort) -> None:
        """Keep the selector in step with the port's fds, which change on every reconnect (a
        TCP port may watch two: its listening socket and its peer's, or wait to write while
        connecting)."""
        watched = port.watched()
        current = (watched, port.connection_number) if watched else None
        old = self._registered.get(port.name)
        if current == old:
            return
        if old is not None:
            for fd, _ in old[0]:
                with contextlib.suppress(KeyError, ValueError):  # already gone with its fd
                    self._selector.unregister(fd)
            del self._registered[port.name]
        if current is not None:
            for fd, events in watched:
                self._selector.register(fd, events, port)
            self._registered[port.name] = current
