"""A tiny TCP proxy on 127.0.0.1 between the agent and the broker, to make network faults.

- `hold()`: new connections are accepted and closed at once (the broker looks down);
  `release()` lets them through again.
- `blackhole()`: every open connection stays open but nothing is forwarded either way, the
  half-open network a dead NAT or a pulled uplink leaves; `forward()` resumes.
"""

from __future__ import annotations

import contextlib
import select
import socket
import threading

# How often a pump re-checks its mode while idle or blackholed.
PUMP_POLL_S = 0.05
CHUNK = 65536


class TcpProxy:
    def __init__(self, target_host: str, target_port: int):
        self.target = (target_host, target_port)
        self._listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(16)
        self.port = self._listener.getsockname()[1]
        self._accepting = threading.Event()
        self._accepting.set()
        self._forwarding = threading.Event()
        self._forwarding.set()
        self._closed = threading.Event()
        self._sockets: list[socket.socket] = []
        self._lock = threading.Lock()
        threading.Thread(target=self._accept_loop, name="proxy-accept", daemon=True).start()

    def hold(self) -> None:
        self._accepting.clear()
        self._close_all()

    def release(self) -> None:
        self._accepting.set()

    def blackhole(self) -> None:
        self._forwarding.clear()

    def forward(self) -> None:
        self._forwarding.set()

    def close(self) -> None:
        self._closed.set()
        self._listener.close()
        self._close_all()

    def _close_all(self) -> None:
        with self._lock:
            sockets, self._sockets = self._sockets, []
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.close()

    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if not self._accepting.is_set():
                client.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._sockets += [client, upstream]
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while not self._closed.is_set():
                if not self._forwarding.wait(PUMP_POLL_S):
                    continue  # blackholed: leave the bytes unread, the socket open
                readable, _, _ = select.select([src], [], [], PUMP_POLL_S)
                if not readable or not self._forwarding.is_set():
                    continue
                data = src.recv(CHUNK)
                if not data:
                    break
                dst.sendall(data)
        except (OSError, ValueError):
            pass  # closed by hold()/close() or by the peer
        for sock in (src, dst):
            with contextlib.suppress(OSError):
                sock.close()
