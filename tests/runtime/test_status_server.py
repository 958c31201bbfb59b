"""The status socket: a real Unix socket in a temp dir, real clients, misbehaving clients."""

from __future__ import annotations

import json
import os
import socket
import stat
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from edge_agent.runtime import status_server
from edge_agent.runtime.status_server import (
    AgentNotRunningError,
    StatusError,
    StatusServer,
    query_status,
)

SNAPSHOT = {
    "agent": {"version": "0.1.0", "site": "HKG1", "line": "L3", "uptime_s": 12.5},
    "lanes": {"zhuhai": {"state": "open", "bin": "ZHUHAI", "count": 3}},
    "outbox": {"depth": 0},
}
# Short per-client limit so the misbehaving-client tests stay fast.
TEST_CLIENT_TIMEOUT_S = 0.2


@pytest.fixture(autouse=True)
def short_client_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(status_server, "CLIENT_TIMEOUT_S", TEST_CLIENT_TIMEOUT_S)


@pytest.fixture
def socket_path(tmp_path: Path) -> Path:
    return tmp_path / "status.sock"


@pytest.fixture
def server(socket_path: Path) -> Iterator[StatusServer]:
    server = StatusServer(socket_path, lambda: SNAPSHOT)
    server.start()
    yield server
    server.stop()


def raw_exchange(path: Path, payload: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(5)
        client.connect(str(path))
        client.sendall(payload)
        client.shutdown(socket.SHUT_WR)
        answer = b""
        while chunk := client.recv(4096):
            answer += chunk
        return answer


def test_query_returns_the_snapshot(server, socket_path):
    assert query_status(socket_path) == SNAPSHOT


def test_each_query_reads_a_fresh_snapshot(socket_path):
    state = {"outbox": {"depth": 1}}
    server = StatusServer(socket_path, lambda: state)
    server.start()
    try:
        assert query_status(socket_path) == {"outbox": {"depth": 1}}
        state = {"outbox": {"depth": 7}}  # the agent replaces its dict atomically
        assert query_status(socket_path) == {"outbox": {"depth": 7}}
    finally:
        server.stop()


def test_socket_is_0660_before_any_client_connects(server, socket_path):
    assert stat.S_ISSOCK(os.stat(socket_path).st_mode)
    assert stat.S_IMODE(os.stat(socket_path).st_mode) == 0o660


def a_group_to_hand_the_socket_to() -> int:
    """Root may give it to any group; others to one of their own groups."""
    if os.geteuid() == 0:
        return 20  # any gid other than root's own 0
    others = [gid for gid in os.getgroups() if gid != os.getegid()]
    return others[0] if others else os.getegid()


def test_socket_is_chowned_to_the_given_group(socket_path):
    gid = a_group_to_hand_the_socket_to()
    server = StatusServer(socket_path, lambda: SNAPSHOT, group=str(gid), mode=0o660)
    server.start()
    try:
        assert os.stat(socket_path).st_gid == gid
        assert query_status(socket_path) == SNAPSHOT
    finally:
        server.stop()


def test_unknown_group_is_a_clear_error_and_nothing_is_left(socket_path):
    server = StatusServer(socket_path, lambda: SNAPSHOT, group="no-such-group-here")
    with pytest.raises(StatusError, match="unknown group 'no-such-group-here'"):
        server.start()
    assert not socket_path.exists()


def test_a_silent_client_does_not_stop_the_server(server, socket_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as silent:
        silent.connect(str(socket_path))
        # The server gives up on the silent client after its time limit, then answers us.
        started = time.monotonic()
        assert query_status(socket_path) == SNAPSHOT
        assert time.monotonic() - started < 5 * TEST_CLIENT_TIMEOUT_S + 1
        silent.settimeout(5)
        assert silent.recv(100) == b""  # the server closed it without an answer


def test_a_client_that_connects_and_leaves_does_not_stop_the_server(server, socket_path):
    for _ in range(3):
        socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).connect(str(socket_path))
    assert query_status(socket_path) == SNAPSHOT


@pytest.mark.parametrize(
    ("payload", "error"),
    [
        (b"\xff\xfe\x00garbage\n", "request is not UTF-8 text; send 'status'"),
        (b"reboot now\n", "unknown request 'reboot now'; send 'status'"),
        (b"x" * 10_000, "unknown request '" + "x" * 40 + "'; send 'status'"),
    ],
)
def test_garbage_gets_an_error_answer_and_the_server_keeps_going(server, socket_path,
                                                                  payload, error):
    assert json.loads(raw_exchange(socket_path, payload)) == {"error": error}
    assert query_status(socket_path) == SNAPSHOT


def test_a_request_without_its_newline_is_still_answered(server, socket_path):
    assert json.loads(raw_exchange(socket_path, b"status")) == SNAPSHOT


def test_a_client_that_hangs_up_mid_answer_does_not_stop_the_server(socket_path):
    # An answer far larger than the socket buffers, so the server is still sending when the
    # client goes away.
    big = {"last_decisions": [{"parcel": f"{n:020d}", "bin": "ZHUHAI"} for n in range(50_000)]}
    server = StatusServer(socket_path, lambda: big)
    server.start()
    try:
        with capture_logs() as logs:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
                client.connect(str(socket_path))
                client.sendall(b"status\n")
                client.recv(10)
            # Served after the dropped client, so its failed send has been handled by now.
            assert query_status(socket_path) == big
        assert "status_client_dropped" in [event["event"] for event in logs]
    finally:
        server.stop()


def test_a_failing_snapshot_is_reported_and_the_server_keeps_going(socket_path):
    calls = []

    def snapshot() -> dict:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("lanes not loaded")
        return SNAPSHOT

    server = StatusServer(socket_path, snapshot)
    server.start()
    try:
        with capture_logs() as logs, pytest.raises(StatusError, match="lanes not loaded"):
            query_status(socket_path)
        assert "status_snapshot_failed" in [event["event"] for event in logs]
        assert query_status(socket_path) == SNAPSHOT
    finally:
        server.stop()


def test_a_snapshot_that_is_not_json_ready_is_an_error_answer(socket_path):
    server = StatusServer(socket_path, lambda: {"since": object()})
    server.start()
    try:
        with pytest.raises(StatusError, match="not JSON-ready"):
            query_status(socket_path)
    finally:
        server.stop()


def test_no_socket_means_agent_not_running(socket_path):
    with pytest.raises(AgentNotRunningError) as raised:
        query_status(socket_path)
    assert str(raised.value) == (
        f"no agent answering on {socket_path}: is the service running? "
        "systemctl status edge-agent"
    )


def test_a_socket_left_by_a_killed_agent_means_not_running_and_is_replaced(socket_path):
    leftover = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    leftover.bind(str(socket_path))
    leftover.close()  # the file stays, nobody listens: what kill -9 leaves behind
    with pytest.raises(AgentNotRunningError):
        query_status(socket_path)
    server = StatusServer(socket_path, lambda: SNAPSHOT)
    server.start()
    try:
        assert query_status(socket_path) == SNAPSHOT
    finally:
        server.stop()


def test_a_second_server_on_a_live_socket_is_refused(server, socket_path):
    with pytest.raises(StatusError, match="already serving status"):
        StatusServer(socket_path, lambda: {}).start()
    assert query_status(socket_path) == SNAPSHOT


def test_a_regular_file_at_the_path_is_not_replaced(socket_path):
    socket_path.write_text("notes")
    with pytest.raises(StatusError, match="exists and is not a socket"):
        StatusServer(socket_path, lambda: {}).start()
    assert socket_path.read_text() == "notes"


def test_stop_removes_the_socket_and_is_quick(socket_path):
    server = StatusServer(socket_path, lambda: SNAPSHOT)
    server.start()
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < status_server.SERVER_POLL_S
    assert not socket_path.exists()
    with pytest.raises(AgentNotRunningError):
        query_status(socket_path)


def test_a_listener_that_never_answers_times_out_clearly(socket_path):
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as mute:
        mute.bind(str(socket_path))
        mute.listen(1)
        with pytest.raises(StatusError, match=r"did not answer within 0.2 s"):
            query_status(socket_path, timeout_s=0.2)


def test_an_answer_that_is_not_json_is_a_clear_error(socket_path):
    def answer_like_a_web_server(listener: socket.socket) -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(100)
            connection.sendall(b"HTTP/1.1 400 Bad Request\r\n\r\n")

    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as impostor:
        impostor.bind(str(socket_path))
        impostor.listen(1)
        thread = threading.Thread(target=answer_like_a_web_server, args=(impostor,))
        thread.start()
        with pytest.raises(StatusError, match="is not a JSON document"):
            query_status(socket_path)
        thread.join()


def test_idle_connections_do_not_block_a_query(socket_path, monkeypatch):
    # A long limit, so the idle clients would still hold a one-at-a-time server.
    monkeypatch.setattr(status_server, "CLIENT_TIMEOUT_S", 30.0)
    server = StatusServer(socket_path, lambda: SNAPSHOT)
    server.start()
    idle = []
    try:
        for _ in range(8):
            client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            client.connect(str(socket_path))
            idle.append(client)
        assert query_status(socket_path, timeout_s=2.0) == SNAPSHOT
    finally:
        for client in idle:
            client.close()
        server.stop()


def test_clients_past_the_cap_get_a_busy_answer(socket_path, monkeypatch):
    monkeypatch.setattr(status_server, "CLIENT_TIMEOUT_S", 30.0)
    monkeypatch.setattr(status_server, "MAX_CLIENTS", 2)
    server = StatusServer(socket_path, lambda: SNAPSHOT)
    server.start()
    idle = [socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) for _ in range(2)]
    try:
        for client in idle:
            client.connect(str(socket_path))
        answer = json.loads(raw_exchange(socket_path, b"status\n"))
        assert "busy" in answer["error"]
    finally:
        for client in idle:
            client.close()
        server.stop()
