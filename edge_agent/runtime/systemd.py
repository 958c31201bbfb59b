"""Telling systemd how the agent is doing: readiness, status lines, watchdog, shutdown.

The sd_notify protocol is small enough to speak directly (no python-systemd, which needs a C
build on the device): each message is one datagram of `KEY=VALUE` lines sent to the AF_UNIX
socket named by $NOTIFY_SOCKET (a path, or an abstract name written with a leading '@').
systemd sets $WATCHDOG_USEC when the unit has WatchdogSec=, and $WATCHDOG_PID to the process it
expects the pings from.

`Watchdog` feeds systemd only while every named part of the agent (decision loop, serial
readers, MQTT loop) has reported alive recently, so a hung loop gets the service restarted
rather than a healthy-looking process that sorts nothing.
"""

from __future__ import annotations

import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping

import structlog

log = structlog.get_logger(__name__)

# A notification is one small local datagram; systemd reads them at once. If it ever stalls,
# the agent must not: a send that cannot finish in this time is dropped and logged.
NOTIFY_SEND_TIMEOUT_S = 0.5

# systemd's own advice (sd_watchdog_enabled(3)): ping at half the watchdog interval.
WATCHDOG_PING_FRACTION = 0.5


class SystemdNotifier:
    """Sends sd_notify messages; every method is a no-op when not started by systemd."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None):
        self.address = address
        self._watchdog_usec = watchdog_usec
        self._socket: socket.socket | None = None
        self._lock = threading.Lock()  # ready/status/watchdog may come from different threads

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> SystemdNotifier:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET") or None
        return cls(address, _watchdog_usec_for_this_process(env))

    @property
    def enabled(self) -> bool:
        return self.address is not None

    def ready(self, status: str | None = None) -> None:
        fields = {"READY": "1"}
        if status is not None:
            fields["STATUS"] = status
        self._send(fields)

    def status(self, text: str) -> None:
        self._send({"STATUS": text})

    def stopping(self) -> None:
        self._send({"STOPPING": "1"})

    def watchdog(self) -> None:
        self._send({"WATCHDOG": "1"})

    def watchdog_interval_s(self) -> float | None:
        """How often to call watchdog(), or None when systemd expects no pings."""
        if not self.enabled or self._watchdog_usec is None:
            return None
        return self._watchdog_usec / 1_000_000 * WATCHDOG_PING_FRACTION

    def close(self) -> None:
        with self._lock:
            if self._socket is not None:
                self._socket.close()
                self._socket = None

    def _send(self, fields: Mapping[str, str]) -> None:
        if self.address is None:
            return
        # One field per line: a newline inside a value would start a bogus field.
        message = "\n".join(
            f"{key}={' '.join(value.splitlines())}" for key, value in fields.items()
        )
        with self._lock:
            try:
                if self._socket is None:
                    self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                    self._socket.settimeout(NOTIFY_SEND_TIMEOUT_S)
                self._socket.sendto(message.encode(), _socket_address(self.address))
            except OSError as exc:
                # Losing one notification is better than stopping the line; a missed watchdog
                # ping is covered by the next one.
                log.warning("systemd_notify_failed", address=self.address, error=str(exc),
                            fields=sorted(fields))


def _socket_address(address: str) -> str | bytes:
    """'@name' is Linux's abstract namespace, written with a leading NUL byte on the wire."""
    if address.startswith("@"):
        return b"\0" + address[1:].encode()
    return address


def _watchdog_usec_for_this_process(env: Mapping[str, str]) -> int | None:
    try:
        usec = int(env.get("WATCHDOG_USEC", ""))
    except ValueError:
        return None
    if usec <= 0:
        return None
    # WATCHDOG_PID names the process systemd watches; a child that inherited it must not ping.
    pid = env.get("WATCHDOG_PID")
    if pid is not None and pid.strip() != str(os.getpid()):
        return None
    return usec


class Watchdog:
    """Feeds systemd's watchdog only while every named component reported alive recently."""

    def __init__(
        self,
        notifier: SystemdNotifier,
        components: Iterable[str],
        *,
        stale_after_s: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.notifier = notifier
        self.components = frozenset(components)
        if not self.components:
            raise ValueError("a watchdog needs at least one component to watch")
        if stale_after_s <= 0:
            raise ValueError(f"stale_after_s must be positive, got {stale_after_s}")
        self.stale_after_s = stale_after_s
        self._clock = clock
        # Never reported counts as stale: the watchdog is fed only once every loop has run.
        self._last_alive: dict[str, float] = {}
        self._lock = threading.Lock()  # alive() comes from the serial, MQTT and decision threads
        self._was_feeding = True  # so the first stall is logged

    def alive(self, component: str) -> None:
        if component not in self.components:
            raise ValueError(f"unknown watchdog component {component!r}; "
                             f"known: {', '.join(sorted(self.components))}")
        now = self._clock()
        with self._lock:
            self._last_alive[component] = now

    def stale_components(self) -> list[str]:
        """Components not heard from within stale_after_s (or never), sorted by name."""
        now = self._clock()
        with self._lock:
            last_alive = dict(self._last_alive)
        return sorted(
            name for name in self.components
            if name not in last_alive or now - last_alive[name] > self.stale_after_s
        )

    def tick(self) -> bool:
        """Send WATCHDOG=1 iff every component is alive; returns whether it fed."""
        stale = self.stale_components()
        feeding = not stale
        if feeding:
            self.notifier.watchdog()
        # Log transitions only: a stall lasts many ticks and should be one line in the journal.
        if feeding != self._was_feeding:
            if feeding:
                log.info("watchdog_fed_again")
            else:
                log.warning("watchdog_starved", stale_components=stale)
        self._was_feeding = feeding
        return feeding
