"""A round trip through the broker with the agent's own settings.

Connects as the agent would (host, port, protocol, TLS files, user and password file), but with
a client id of its own so the running agent is never disconnected. Subscribes to the line's
diagnostic topic (`{prefix}diag/{client id}`), publishes one QoS 1 message there and waits for
it to come back. Reports each step's reason code as the broker gave it, the TLS session, and
the round-trip time.
"""

from __future__ import annotations

import secrets
import ssl
import threading
import time
from dataclasses import asdict, dataclass, field
from typing import Any

from edge_agent.config import AgentConfig

# A broker on the LAN answers in milliseconds; a loaded broker over a site VPN in well under 5 s.
STEP_TIMEOUT_S = 5.0
PROBE_SUFFIX = "-diag"


@dataclass
class ProbeReport:
    broker: str
    topic: str
    connected: bool = False
    error: str | None = None  # the step that failed and why, in words
    failed_step: str | None = None  # "connect", "tls", "credentials", "subscribe", "publish"...
    connack: str | None = None
    suback: str | None = None
    puback: str | None = None
    received: bool = False
    round_trip_ms: float | None = None
    tls: dict[str, Any] | None = None
    steps_ms: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.received and self.error is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def diag_topic(config: AgentConfig) -> str:
    return f"{config.topic_prefix.rstrip('/')}/diag/{config.mqtt_client_id}"


def probe_broker(config: AgentConfig, timeout_s: float = STEP_TIMEOUT_S) -> ProbeReport:
    from edge_agent.sync.errors import CredentialError
    from edge_agent.sync.mqtt_client import SETUP_ERRORS, new_client, secure

    cfg = config.mqtt
    report = ProbeReport(broker=f"{cfg.host}:{cfg.port}", topic=diag_topic(config))
    events = {name: threading.Event() for name in ("connack", "suback", "puback", "message",
                                                    "gone")}
    nonce = secrets.token_hex(8).encode()
    client = new_client(cfg, config.mqtt_client_id + PROBE_SUFFIX)
    try:
        secure(client, cfg)
    except SETUP_ERRORS as exc:
        return _fail(report, "credentials" if isinstance(exc, CredentialError) else "tls",
                     str(exc))

    def on_connect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        report.connack = str(reason)
        report.connected = not reason.is_failure
        events["connack"].set()

    def on_subscribe(c: Any, u: Any, mid: int, reasons: list[Any], props: Any) -> None:
        report.suback = ", ".join(str(r) for r in reasons)
        events["suback"].set()

    def on_publish(c: Any, u: Any, mid: int, reason: Any, props: Any) -> None:
        report.puback = str(reason)
        events["puback"].set()

    def on_message(c: Any, u: Any, message: Any) -> None:
        if message.payload == nonce:
            events["message"].set()

    def on_disconnect(c: Any, u: Any, flags: Any, reason: Any, props: Any) -> None:
        events["gone"].set()

    client.on_connect, client.on_subscribe = on_connect, on_subscribe
    client.on_publish, client.on_message, client.on_disconnect = (on_publish, on_message,
                                                                   on_disconnect)
    started = time.monotonic()
    try:
        client.connect(cfg.host, cfg.port, keepalive=cfg.keepalive_s)
    except ssl.SSLError as exc:
        return _fail(report, "tls", f"TLS handshake failed: {exc.reason or exc}")
    except OSError as exc:
        return _fail(report, "connect", f"cannot reach {report.broker}: {exc.strerror or exc}")
    report.tls = _tls_details(client)
    client.loop_start()
    try:
        if not _wait(events, "connack", timeout_s):
            why = "closed the connection" if events["gone"].is_set() else "did not answer"
            step = "tls" if cfg.tls is not None and events["gone"].is_set() else "connect"
            return _fail(report, step, f"broker {why} before CONNACK"
                         + (" (client certificate refused?)" if step == "tls" else ""))
        report.steps_ms["connect"] = _ms(started)
        if not report.connected:
            return _fail(report, "credentials", f"broker refused the connection: {report.connack}")
        client.subscribe(report.topic, qos=1)
        if not _wait(events, "suback", timeout_s):
            return _fail(report, "subscribe", "no SUBACK")
        if report.suback and "authorized" in report.suback.lower():
            return _fail(report, "subscribe", f"subscribe refused: {report.suback}")
        sent = time.monotonic()
        client.publish(report.topic, nonce, qos=1)
        if not _wait(events, "puback", timeout_s):
            return _fail(report, "publish", "no PUBACK")
        report.steps_ms["puback"] = _ms(sent)
        if report.puback and "authorized" in report.puback.lower():
            return _fail(report, "publish", f"publish refused: {report.puback}")
        if not _wait(events, "message", timeout_s):
            return _fail(report, "read back", "the message did not come back (ACL denies "
                         "reading the diag topic?)")
        report.received = True
        report.round_trip_ms = _ms(sent)
        return report
    finally:
        client.disconnect()
        client.loop_stop()


def _wait(events: dict[str, threading.Event], name: str, timeout_s: float) -> bool:
    """Wait for one event, giving up early when the broker drops the connection."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if events[name].wait(0.05):
            return True
        if events["gone"].is_set():
            return events[name].is_set()
    return False


def _tls_details(client: Any) -> dict[str, Any] | None:
    sock = client.socket()
    if not isinstance(sock, ssl.SSLSocket):
        return None
    peer = sock.getpeercert() or {}
    subject = ", ".join(f"{k}={v}" for part in peer.get("subject", ()) for k, v in part)
    issuer = ", ".join(f"{k}={v}" for part in peer.get("issuer", ()) for k, v in part)
    cipher = sock.cipher()
    return {"version": sock.version(), "cipher": cipher[0] if cipher else None,
            "server_subject": subject, "server_issuer": issuer,
            "server_not_after": peer.get("notAfter")}


def _fail(report: ProbeReport, step: str, error: str) -> ProbeReport:
    report.failed_step = step
    report.error = error
    return report


def _ms(since: float) -> float:
    return round((time.monotonic() - since) * 1000, 2)
