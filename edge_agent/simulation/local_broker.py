"""A real mosquitto on 127.0.0.1 on a free port: for the demo, the tests and the benchmarks.

    with MosquittoBroker() as broker:                   # plain listener, anonymous allowed
        client.connect(broker.host, broker.port)

Options: TLS (CA, server cert and key, client certificates required, the certificate's CN as the
user name), an ACL file, persistence across restarts. `stop()` and `restart()` act on the
broker's pid only; `restart()` keeps the port so clients can reconnect to the same address.
Readiness is a TCP connect that succeeds (polled with a deadline), never a sleep.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

# mosquitto starts in well under a second; a loaded, shared CI machine may take a few.
START_TIMEOUT_S = 10.0
STOP_TIMEOUT_S = 5.0
# Another process may grab the free port between our probe and mosquitto's bind: try again.
BIND_ATTEMPTS = 5
POLL_INTERVAL_S = 0.02


def find_mosquitto() -> str | None:
    """Debian installs it in /usr/sbin, which is not on a normal user's PATH."""
    for candidate in ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto"):
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("mosquitto")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass(frozen=True)
class BrokerTls:
    """Files for a TLS listener. With require_certificate, the client cert's CN is its user."""

    ca_file: Path
    cert_file: Path
    key_file: Path
    require_certificate: bool = True


class BrokerError(RuntimeError):
    pass


class MosquittoBroker:
    def __init__(
        self,
        work_dir: Path | None = None,
        *,
        tls: BrokerTls | None = None,
        acl_file: Path | None = None,
        persistence: bool = False,
        allow_anonymous: bool = True,
        extra_config: str = "",
    ):
        self.binary = find_mosquitto()
        if self.binary is None:
            raise BrokerError("mosquitto not found in /usr/sbin or on PATH (./dev install)")
        self._own_dir = work_dir is None
        self.work_dir = Path(work_dir or tempfile.mkdtemp(prefix="mosquitto-"))
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.tls = tls
        self.acl_file = acl_file
        self.persistence = persistence
        self.allow_anonymous = allow_anonymous
        self.extra_config = extra_config
        self.host = "127.0.0.1"
        self.port = 0
        self.process: subprocess.Popen | None = None

    @property
    def config_file(self) -> Path:
        return self.work_dir / "mosquitto.conf"

    @property
    def log_file(self) -> Path:
        return self.work_dir / "mosquitto.log"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace") if self.log_file.exists() else ""

    def _write_config(self) -> None:
        lines = [
            # Running as root, mosquitto would switch to the `mosquitto` user, which cannot read
            # a temp dir's certificates: stay as whoever runs the tests.
            f"user {pwd.getpwuid(os.getuid()).pw_name}",
            f"listener {self.port} {self.host}",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            f"log_dest file {self.log_file}",
            "log_type all",
            "connection_messages true",
        ]
        if self.tls is not None:
            lines += [
                f"cafile {self.tls.ca_file}",
                f"certfile {self.tls.cert_file}",
                f"keyfile {self.tls.key_file}",
                f"require_certificate {'true' if self.tls.require_certificate else 'false'}",
                f"use_identity_as_username {'true' if self.tls.require_certificate else 'false'}",
            ]
        if self.acl_file is not None:
            lines.append(f"acl_file {self.acl_file}")
        if self.persistence:
            lines += ["persistence true", f"persistence_location {self.work_dir}/"]
        if self.extra_config:
            lines.append(self.extra_config)
        self.config_file.write_text("\n".join(lines) + "\n")

    def start(self) -> MosquittoBroker:
        """Start on a free port (or the port it had, after stop()); wait until it accepts."""
        keep_port = self.port != 0
        for _attempt in range(BIND_ATTEMPTS):
            if not keep_port:
                self.port = free_port()
            self._write_config()
            self.process = subprocess.Popen(
                [self.binary, "-c", str(self.config_file)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            if self._wait_until_accepting():
                return self
            self._reap()
        raise BrokerError(f"mosquitto did not start; log:\n{self.log_text()}")

    def _wait_until_accepting(self) -> bool:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is None or self.process.poll() is not None:
                return False  # exited: most likely the port was taken meanwhile
            try:
                with socket.create_connection((self.host, self.port), timeout=0.5):
                    return True
            except OSError:
                time.sleep(POLL_INTERVAL_S)  # polling a condition, with a deadline
        return False

    def _reap(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(STOP_TIMEOUT_S)
        if self.process.stderr:
            self.process.stderr.close()
        self.process = None

    def stop(self) -> None:
        """SIGTERM by pid (mosquitto saves persistence then), SIGKILL if it hangs."""
        if self.process is None:
            return
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(STOP_TIMEOUT_S)  # then SIGKILL below
        self._reap()

    def restart(self) -> MosquittoBroker:
        self.stop()
        return self.start()

    def close(self) -> None:
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.work_dir, ignore_errors=True)

    def __enter__(self) -> MosquittoBroker:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()
