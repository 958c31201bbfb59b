"""The running agent's status, for technicians, over a local Unix socket.

Protocol: a client connects, sends one line ("status\\n"), receives one JSON document followed
by a newline, and the server closes the connection. An unknown request gets {"error": ...}.

The server's thread accepts connections and serves each on a thread of its own, at most
MAX_CLIENTS at once, each with a short time limit: a client that connects and says nothing
holds only its own thread, for at most CLIENT_TIMEOUT_S, and never the next client (eight idle
connections once made `diag status` wait behind them). Past the cap a client gets a `busy`
answer at once. Nothing here touches the agent's loops. It reads state only through
`snapshot()`, which the agent implements by returning a dict it replaces atomically: the
server never sees live, changing state.

The socket is chmod 0660 (and chowned to `group` when given) before it accepts connections, so
only the service's group can ask (technicians join that group; see docs/INSTALL.md).

Snapshot document (every key optional; `diag status` renders whatever is present):
    {"agent": {"version", "started_at", "uptime_s", "rules_version", "site", "line", "pid"},
     "devices": {name: {"state", "port", "profile", counters...}},
     "lanes": {name: {"state", "bin", "count"}},
     "counters": {name: int},
     "outbox": {"depth", "oldest_age_s", "bytes", ...},
     "mqtt": {"state", "broker", "since", ...},
     "last_decisions": [{"at", "parcel", "bin", "reason", "latency_ms"}, ...]}
"""

from __future__ import annotations

import contextlib
import grp
import json
import os
import selectors
import socket
import stat
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from edge_agent.errors import EdgeAgentError

log = structlog.get_logger(__name__)

# Where the shipped unit's agent listens (RuntimeDirectory=edge-agent; docs/INSTALL.md): the
# default of `diag status` and the doctor's second guess when the config names no socket.
DEFAULT_STATUS_SOCKET = Path("/run/edge-agent/status.sock")
STATUS_REQUEST = "status"
# A request is one short word; anything longer is not a client of ours.
MAX_REQUEST_BYTES = 256
# How long one client may take to send its line and read the answer: bounds how long a silent
# client holds its thread.
CLIENT_TIMEOUT_S = 1.0
# Clients served at once, each on its own thread (a few hundred kB of stack, mostly untouched).
# Technicians and the doctor ask a few times a minute; the cap bounds what a flood of
# connections from the service's group can take.
MAX_CLIENTS = 16
# How long the accepting thread waits for a turned-away client's request line.
BUSY_READ_S = 0.1
# How often the server thread wakes without events (it is woken at once by stop()).
SERVER_POLL_S = 1.0
# A snapshot with the last decisions and a few devices is a few kB; this bounds a client's
# memory if something else is listening on the path.
MAX_RESPONSE_BYTES = 4 * 1024 * 1024
LISTEN_BACKLOG = 32
# Input after the request line that is read and dropped so the answer is not lost to a reset.
MAX_DISCARD_BYTES = 64 * 1024

NOT_RUNNING_HINT = "is the service running? systemctl status edge-agent"


class StatusError(EdgeAgentError):
    """The status socket could not be served or queried."""


class AgentNotRunningError(StatusError):
    def __init__(self, path: Path):
        self.path = path
        super().__init__(f"no agent answering on {path}: {NOT_RUNNING_HINT}")


class StatusServer:
    def __init__(
        self,
        path: Path,
        snapshot: Callable[[], dict],
        *,
        group: str | None = None,
        mode: int = 0o660,
    ):
        self.path = Path(path)
        self.snapshot = snapshot
        self.group = group
        self.mode = mode
        self._listener: socket.socket | None = None
        self._wake_reader: socket.socket | None = None
        self._wake_writer: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._inode: int | None = None
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)

    def start(self) -> None:
        if self._thread is not None:
            raise StatusError("status server already started")
        gid = _group_id(self.group) if self.group is not None else None
        self._remove_stale_socket()
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            listener.bind(str(self.path))
            # Permissions are set before listen(): until then no client can connect at all.
            os.chmod(self.path, self.mode)
            if gid is not None and os.stat(self.path).st_gid != gid:
                os.chown(self.path, -1, gid)
            listener.listen(LISTEN_BACKLOG)
        except OSError as exc:
            listener.close()
            raise StatusError(f"cannot serve status on {self.path}: {exc}") from None
        self._inode = os.stat(self.path).st_ino
        self._listener = listener
        self._wake_reader, self._wake_writer = socket.socketpair()
        self._stopping.clear()
        self._thread = threading.Thread(target=self._serve, name="status-server", daemon=True)
        self._thread.start()
        log.info("status_server_started", path=str(self.path), mode=oct(self.mode),
                 group=self.group)

    def stop(self) -> None:
        if self._thread is None:
            return
        self._stopping.set()
        assert self._wake_writer is not None
        with contextlib.suppress(OSError):
            self._wake_writer.send(b"x")
        # A client being served finishes within its own time limit.
        self._thread.join(timeout=2 * CLIENT_TIMEOUT_S + SERVER_POLL_S)
        for sock in (self._listener, self._wake_reader, self._wake_writer):
            if sock is not None:
                sock.close()
        self._remove_own_socket()
        self._thread = self._listener = self._wake_reader = self._wake_writer = None
        log.info("status_server_stopped", path=str(self.path))

    def _serve(self) -> None:
        assert self._listener is not None and self._wake_reader is not None
        with selectors.DefaultSelector() as selector:
            selector.register(self._listener, selectors.EVENT_READ)
            selector.register(self._wake_reader, selectors.EVENT_READ)
            while not self._stopping.is_set():
                for key, _ in selector.select(timeout=SERVER_POLL_S):
                    if key.fileobj is self._listener and not self._stopping.is_set():
                        self._accept_one()

    def _accept_one(self) -> None:
        assert self._listener is not None
        try:
            client, _ = self._listener.accept()
        except OSError as exc:
            log.warning("status_accept_failed", error=str(exc))
            return
        if not self._slots.acquire(blocking=False):
            with client, contextlib.suppress(OSError):
                # Read the request first (briefly: this is the accepting thread), or closing
                # with it unread would reset the connection and lose the answer.
                client.settimeout(BUSY_READ_S)
                _read_request(client)
                client.sendall(_document({"error": f"busy: {MAX_CLIENTS} clients are being "
                                                   "served; try again"}))
                _discard_pending_input(client)
            return
        try:
            threading.Thread(target=self._serve_client, args=(client,), name="status-client",
                             daemon=True).start()
        except RuntimeError:  # no thread to be had: answer nothing rather than stop serving
            self._slots.release()
            client.close()

    def _serve_client(self, client: socket.socket) -> None:
        try:
            self._answer_client(client)
        finally:
            self._slots.release()

    def _answer_client(self, client: socket.socket) -> None:
        with client:
            client.settimeout(CLIENT_TIMEOUT_S)
            try:
                request = _read_request(client)
                if request is None:
                    return  # connected and left (or said nothing in time): nothing to answer
                client.sendall(self._answer(request))
                _discard_pending_input(client)
            except OSError as exc:  # includes TimeoutError
                # A client that hangs up mid-way is its own problem, never the agent's.
                log.debug("status_client_dropped", error=str(exc))

    def _answer(self, request: bytes) -> bytes:
        try:
            text = request.decode("utf-8").strip()
        except UnicodeDecodeError:
            return _document({"error": "request is not UTF-8 text; send 'status'"})
        if text != STATUS_REQUEST:
            return _document({"error": f"unknown request {text[:40]!r}; send 'status'"})
        try:
            return _document(self.snapshot())
        except Exception as exc:  # a bad snapshot must not stop the server
            log.exception("status_snapshot_failed")
            return _document({"error": f"agent could not produce its status: {exc}"})

    def _remove_stale_socket(self) -> None:
        """A socket left by a killed agent is removed; anything else at the path is an error."""
        try:
            mode = os.lstat(self.path).st_mode
        except FileNotFoundError:
            return
        if not stat.S_ISSOCK(mode):
            raise StatusError(f"{self.path} exists and is not a socket; not replacing it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            probe.connect(str(self.path))
        except OSError:
            self.path.unlink(missing_ok=True)  # nobody listening: stale
            return
        finally:
            probe.close()
        raise StatusError(f"another process is already serving status on {self.path}")

    def _remove_own_socket(self) -> None:
        # Only unlink the file we created: a newer agent may already have replaced it.
        with contextlib.suppress(FileNotFoundError):
            if os.lstat(self.path).st_ino == self._inode:
                self.path.unlink()


def _read_request(client: socket.socket) -> bytes | None:
    """One line, up to MAX_REQUEST_BYTES; None if the client sent nothing at all."""
    received = b""
    try:
        while b"\n" not in received and len(received) < MAX_REQUEST_BYTES:
            chunk = client.recv(MAX_REQUEST_BYTES - len(received))
            if not chunk:
                break
            received += chunk
    except TimeoutError:
        pass  # answer what arrived (a line without its newline), or nothing
    if not received:
        return None
    return received.split(b"\n", 1)[0]


def _discard_pending_input(client: socket.socket) -> None:
    """Read what the client sent beyond its line: closing with unread input would reset the
    connection and the client would lose the answer already sent (an error, for such input)."""
    client.setblocking(False)
    with contextlib.suppress(OSError):
        for _ in range(MAX_DISCARD_BYTES // 4096):
            if not client.recv(4096):
                break


def _document(data: Any) -> bytes:
    try:
        return json.dumps(data, separators=(",", ":")).encode() + b"\n"
    except (TypeError, ValueError) as exc:
        log.error("status_snapshot_not_json", error=str(exc))
        return json.dumps({"error": f"agent status is not JSON-ready: {exc}"}).encode() + b"\n"


def _group_id(group: str) -> int:
    if group.isdigit():
        return int(group)
    try:
        return grp.getgrnam(group).gr_gid
    except KeyError:
        raise StatusError(f"unknown group {group!r} for the status socket") from None


def query_status(path: Path, timeout_s: float = 2.0) -> dict:
    """Ask the agent on `path` for its status document."""
    path = Path(path)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as client:
        client.settimeout(timeout_s)
        try:
            client.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            raise AgentNotRunningError(path) from None
        except PermissionError:
            raise StatusError(
                f"permission denied on {path}: join the service's group "
                f"(sudo usermod -aG edge-agent $USER, then log in again) or use sudo"
            ) from None
        except OSError as exc:
            raise StatusError(f"cannot connect to {path}: {exc}") from None
        try:
            client.sendall(f"{STATUS_REQUEST}\n".encode())
            response = _read_response(client)
        except TimeoutError:
            raise StatusError(f"agent on {path} did not answer within {timeout_s} s") from None
        except OSError as exc:
            raise StatusError(f"connection to {path} failed: {exc}") from None
    try:
        document = json.loads(response)
    except (UnicodeDecodeError, ValueError):
        raise StatusError(f"answer on {path} is not a JSON document "
                          f"({len(response)} bytes)") from None
    if not isinstance(document, dict):
        raise StatusError(f"answer on {path} is not a JSON object")
    if set(document) == {"error"}:
        raise StatusError(f"agent on {path} answered: {document['error']}")
    return document


def _read_response(client: socket.socket) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while chunk := client.recv(65536):
        size += len(chunk)
        if size > MAX_RESPONSE_BYTES:
            raise StatusError(f"answer larger than {MAX_RESPONSE_BYTES} bytes; not an agent")
        chunks.append(chunk)
    return b"".join(chunks)
