"""sd_notify against a real AF_UNIX datagram socket standing in for systemd's NOTIFY_SOCKET."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from edge_agent.runtime.systemd import SystemdNotifier, Watchdog

# Datagrams arrive at once on a local socket; this only bounds a broken test.
RECEIVE_TIMEOUT_S = 2.0


@pytest.fixture
def notify_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    path = tmp_path / "notify.sock"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(str(path))
    receiver.settimeout(RECEIVE_TIMEOUT_S)
    yield str(path), receiver
    receiver.close()


@pytest.fixture
def abstract_notify_socket() -> Iterator[tuple[str, socket.socket]]:
    name = f"edge-agent-test-{uuid.uuid4().hex}"
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(b"\0" + name.encode())
    receiver.settimeout(RECEIVE_TIMEOUT_S)
    yield f"@{name}", receiver
    receiver.close()


def receive(receiver: socket.socket) -> bytes:
    return receiver.recv(4096)


def no_more_datagrams(receiver: socket.socket) -> bool:
    receiver.setblocking(False)
    try:
        receiver.recv(4096)
    except BlockingIOError:
        return True
    finally:
        receiver.settimeout(RECEIVE_TIMEOUT_S)
    return False


def test_sends_the_exact_datagrams_to_a_path_socket(notify_socket):
    address, receiver = notify_socket
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": address})
    notifier.ready()
    notifier.ready(status="ready: 3 devices, outbox 0")
    notifier.status("waiting for scale")
    notifier.watchdog()
    notifier.stopping()
    notifier.close()
    assert [receive(receiver) for _ in range(5)] == [
        b"READY=1",
        b"READY=1\nSTATUS=ready: 3 devices, outbox 0",
        b"STATUS=waiting for scale",
        b"WATCHDOG=1",
        b"STOPPING=1",
    ]
    assert no_more_datagrams(receiver)


def test_abstract_socket_names_are_reached(abstract_notify_socket):
    address, receiver = abstract_notify_socket
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": address})
    notifier.ready(status="up")
    notifier.close()
    assert receive(receiver) == b"READY=1\nSTATUS=up"


def test_a_newline_in_a_status_cannot_inject_a_field(notify_socket):
    address, receiver = notify_socket
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": address})
    notifier.status("scale lost\nREADY=1")
    assert receive(receiver) == b"STATUS=scale lost READY=1"


def test_without_notify_socket_everything_is_a_no_op():
    notifier = SystemdNotifier.from_environment({})
    assert not notifier.enabled
    notifier.ready("x")
    notifier.watchdog()
    notifier.stopping()
    assert notifier.watchdog_interval_s() is None


def test_a_vanished_notify_socket_is_logged_not_raised(tmp_path: Path):
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")})
    with capture_logs() as logs:
        notifier.watchdog()
    assert [(e["event"], e["fields"]) for e in logs] == [("systemd_notify_failed", ["WATCHDOG"])]


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({"WATCHDOG_USEC": "10000000"}, 5.0),
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid())}, 5.0),
        # Meant for another process (we are a child that inherited the variables).
        ({"WATCHDOG_USEC": "10000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
        ({"WATCHDOG_USEC": "0"}, None),
        ({"WATCHDOG_USEC": "ten seconds"}, None),
        ({}, None),
    ],
)
def test_watchdog_interval_is_half_of_watchdog_usec_for_this_process(environ, expected):
    notifier = SystemdNotifier.from_environment({"NOTIFY_SOCKET": "/run/x.sock", **environ})
    assert notifier.watchdog_interval_s() == expected


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class CountingNotifier(SystemdNotifier):
    """The real notifier's interface, counting pings instead of needing a socket."""

    def __init__(self) -> None:
        super().__init__(address=None)
        self.pings = 0

    def watchdog(self) -> None:
        self.pings += 1


COMPONENTS = ("decision-loop", "serial", "mqtt")


def test_watchdog_feeds_only_while_every_component_is_alive():
    clock, notifier = FakeClock(), CountingNotifier()
    watchdog = Watchdog(notifier, COMPONENTS, stale_after_s=3.0, clock=clock)
    assert watchdog.tick() is False  # nobody has reported yet
    watchdog.alive("decision-loop")
    watchdog.alive("serial")
    assert watchdog.tick() is False
    assert watchdog.stale_components() == ["mqtt"]
    watchdog.alive("mqtt")
    assert watchdog.tick() is True
    assert notifier.pings == 1

    clock.now += 2.0
    watchdog.alive("decision-loop")
    watchdog.alive("mqtt")
    assert watchdog.tick() is True  # serial last seen 2 s ago: still within 3 s
    clock.now += 1.5
    assert watchdog.tick() is False  # serial now 3.5 s silent
    assert watchdog.stale_components() == ["serial"]
    watchdog.alive("serial")
    assert watchdog.tick() is True
    assert notifier.pings == 3


def test_watchdog_feeds_the_real_socket(notify_socket):
    address, receiver = notify_socket
    clock = FakeClock()
    watchdog = Watchdog(SystemdNotifier(address), ["loop"], stale_after_s=1.0, clock=clock)
    watchdog.alive("loop")
    assert watchdog.tick()
    assert receive(receiver) == b"WATCHDOG=1"
    clock.now += 5
    assert not watchdog.tick()
    assert no_more_datagrams(receiver)


def test_watchdog_logs_each_stall_once_with_the_stale_components():
    clock = FakeClock()
    watchdog = Watchdog(CountingNotifier(), COMPONENTS, stale_after_s=1.0, clock=clock)
    for name in COMPONENTS:
        watchdog.alive(name)
    with capture_logs() as logs:
        watchdog.tick()
        clock.now += 2
        watchdog.alive("serial")
        watchdog.tick()
        watchdog.tick()
        for name in COMPONENTS:
            watchdog.alive(name)
        watchdog.tick()
    assert [(e["event"], e.get("stale_components")) for e in logs] == [
        ("watchdog_starved", ["decision-loop", "mqtt"]),
        ("watchdog_fed_again", None),
    ]


def test_watchdog_rejects_unknown_components_and_bad_limits():
    watchdog = Watchdog(CountingNotifier(), COMPONENTS, stale_after_s=1.0)
    with pytest.raises(ValueError, match="unknown watchdog component 'mqqt'"):
        watchdog.alive("mqqt")
    with pytest.raises(ValueError, match="at least one component"):
        Watchdog(CountingNotifier(), [], stale_after_s=1.0)
    with pytest.raises(ValueError, match="stale_after_s must be positive"):
        Watchdog(CountingNotifier(), COMPONENTS, stale_after_s=0)
