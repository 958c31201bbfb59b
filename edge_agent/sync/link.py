"""The MQTT link: publishes the outbox at least once, keeps status retained, takes commands.

Threads: paho's network thread (`loop_start`) runs the callbacks; our publisher thread feeds
paho from the outbox and deletes rows once acknowledged. Callbacks only record facts (a mid was
acknowledged, a command arrived) and wake the publisher: they never block on our locks (paho
calls on_publish while holding its own message lock, which `publish()` also takes) and never
touch the sorting state (commands go to the agent's thread through `on_command`).

Why not paho's own guarantees alone: its queue is memory (lost on restart), and
`wait_for_publish` breaks across reconnects. So the outbox is the queue; paho holds at most
`max_inflight` rows, keeps each under the same message id across reconnects and re-sends them;
a row is deleted only when a PUBACK for its message id arrives with a success reason code.

A v5 PUBACK with a failure code (>= 0x80, e.g. 0x87 not authorized) is not a delivery: the row
stays in the outbox, publishing pauses with capped exponential backoff (so order holds), then
resumes from the rejected row. It is counted (`rejected`, `last_error`) and logged; it is not
raised as an alarm event, which would most likely be refused by the same broker rule.
"""

from __future__ import annotations

import collections
import json
import ssl
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt
import structlog
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.subscribeoptions import SubscribeOptions

from edge_agent import __version__
from edge_agent.config import AgentConfig
from edge_agent.sync.commands import Command, error_reply
from edge_agent.sync.credentials import password_path, read_password
from edge_agent.sync.errors import CredentialError
from edge_agent.sync.mqtt_client import SETUP_ERRORS, new_client
from edge_agent.sync.outbox import Outbox
from edge_agent.sync.payloads import SCHEMA_VERSION
from edge_agent.sync.tls_files import tls_problems
from edge_agent.sync.topics import Topics

log = structlog.get_logger(__name__)

# The publisher wakes at least this often even with nothing to do (telemetry, retry timers).
PUBLISHER_IDLE_S = 0.5
# Delivered rows are deleted in batches: each delete is a write transaction on the outbox, whose
# lock the decision thread's appends also take. A kill before the delete only means the rows are
# published again after the restart (consumers de-duplicate by event_id).
ACK_DELETE_BATCH = 200
ACK_DELETE_MAX_DELAY_S = 0.25
# Delay before re-publishing a row the broker refused, doubling up to reconnect_max_s.
REJECT_RETRY_MIN_S = 1.0
# How long a clean stop waits for the broker to acknowledge the retained offline status.
OFFLINE_ACK_TIMEOUT_S = 2.0
# Room above mqtt.max_command_bytes for a packet's topic and properties: the broker is asked
# (v5 Maximum Packet Size) never to send a packet larger than the two together.
PACKET_OVERHEAD_BYTES = 64 * 1024
# A link that could not start for a file (a password or TLS file missing, unreadable or not
# PEM) looks at its files again this often; it starts as soon as they are right.
CONFIG_RETRY_S = 2.0
# Hosts a password may be sent to without TLS: it never leaves the machine.
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")

OnCommand = Callable[[Command], dict[str, Any] | None]


def cleartext_password(host: str, username: str | None, tls: bool) -> bool:
    """True when a password would cross a network in clear: a user name, no TLS, and a broker
    that is not this machine."""
    return bool(username) and not tls and host not in LOOPBACK_HOSTS


def _now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class MqttLink:
    def __init__(
        self,
        config: AgentConfig,
        outbox: Outbox,
        on_command: OnCommand | None = None,
        *,
        telemetry_source: Callable[[], dict[str, Any]] | None = None,
        rules_version: str | None = None,
    ):
        self.config = config
        self.mqtt_config = config.mqtt
        self.outbox = outbox
        self.topics = Topics.for_prefix(config.topic_prefix)
        self.client_id = config.mqtt_client_id
        self._on_command = on_command
        self._telemetry_source = telemetry_source
        self._rules_version = rules_version
        self._started_at = _now_iso()
        self._v5 = self.mqtt_config.protocol == "5"
        # Publisher-thread state: message id -> outbox seq, and the highest seq handed to paho.
        self._inflight: dict[int, int] = {}
        self._cursor = 0
        self._rejected: set[int] = set()
        self._retry_at = 0.0
        self._reject_backoff = REJECT_RETRY_MIN_S
        # Written by paho's thread, read by the publisher: a deque is safe for one each way.
        self._puback_queue: collections.deque[tuple[int, int, str]] = collections.deque()
        self._delivered: list[int] = []  # acknowledged, not yet deleted from the outbox
        self._delete_due = 0.0
        self._wake = threading.Event()
        self._wake_on_acks = max(1, self.mqtt_config.max_inflight // 2)
        self._stopping = threading.Event()
        self._connected = threading.Event()
        # Set when the broker acknowledged the subscription to commands (cleared on connect):
        # a command published before that is not delivered to this agent.
        self._subscribed = threading.Event()
        self._device_states: dict[str, dict[str, Any]] = {}
        self._counts = {"connects": 0, "published": 0, "acked": 0, "rejected": 0, "commands": 0}
        self._last_error: str | None = None
        # Why the link cannot start (a TLS file missing or not PEM, an unreadable password):
        # the line sorts without it, events wait in the outbox, the status says why.
        self.config_problem: str | None = None
        self._tls_context: ssl.SSLContext | None = None
        self._loaded_files: tuple = ()  # _files_signature() when they were last loaded
        self._config_watch = threading.Thread(target=self._await_config, name="mqtt-config",
                                              daemon=True)
        self._next_state_refresh = 0.0
        self._client = self._make_client()
        self._publisher = threading.Thread(target=self._publish_loop, name="mqtt-publisher",
                                           daemon=True)

    # -- set-up ---------------------------------------------------------------------------------

    def _make_client(self) -> mqtt.Client:
        cfg = self.mqtt_config
        client = new_client(cfg, self.client_id)
        # Exceptions in our callbacks would end paho's loop thread; ours catch everything, and
        # this is the second line of defence.
        client.suppress_exceptions = True
        client.max_inflight_messages_set(cfg.max_inflight)
        client.reconnect_delay_set(cfg.reconnect_min_s, cfg.reconnect_max_s)  # type: ignore[arg-type]
        try:
            self._secure(client)  # the link's own: its files are loaded again when they change
        except SETUP_ERRORS as exc:
            self.config_problem = str(exc) or type(exc).__name__
            self._last_error = f"not started: {self.config_problem}"
        client.on_pre_connect = self._guarded(self._reload_changed_files)
        client.will_set(self.topics.status, self._status_body("offline", "connection lost"),
                        qos=1, retain=True)
        client.on_connect = self._guarded(self._handle_connect)
        client.on_disconnect = self._guarded(self._handle_disconnect)
        client.on_publish = self._guarded(self._handle_publish)
        client.on_message = self._guarded(self._handle_message)
        client.on_subscribe = self._guarded(self._handle_subscribe)
        return client

    def _secure(self, client: mqtt.Client) -> None:
        """Credentials and TLS; raises (see config_problem) if a file is missing or bad.
        Called again by the link's retries and before each reconnect: the TLS context is made
        once and its files are loaded into it again, the password set again."""
        cfg = self.mqtt_config
        signature = self._files_signature()
        if cfg.username:
            client.username_pw_set(cfg.username, read_password(cfg))
        if cfg.tls is not None:
            problems = tls_problems(cfg.tls)
            if problems:
                raise ValueError("; ".join(problems))
            # Loaded into a scratch context first: a certificate and a key that do not match
            # (one renewed, the other not yet) must not reach the context in use.
            self._load_tls(ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT))
            context = self._tls_context or ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            # Loading again replaces the client certificate and adds the CA (a CA once
            # trusted stays trusted until the agent restarts).
            self._load_tls(context)
            if self._tls_context is None:
                context.check_hostname = not cfg.tls.insecure_skip_hostname_check
                context.verify_mode = ssl.CERT_REQUIRED
                client.tls_set_context(context)
                self._tls_context = context
        self._loaded_files = signature

    def _load_tls(self, context: ssl.SSLContext) -> None:
        tls = self.mqtt_config.tls
        assert tls is not None
        context.load_verify_locations(cafile=str(tls.ca_file))
        if tls.cert_file is not None:
            context.load_cert_chain(str(tls.cert_file),
                                    str(tls.key_file) if tls.key_file else None)

    def _files_signature(self) -> tuple:
        """What identifies the credential and TLS files' current contents: their paths, sizes
        and modification times (None for a file that cannot be looked at)."""
        cfg = self.mqtt_config
        try:
            paths: list[Path | None] = [password_path(cfg)]
        except CredentialError:  # a credential without its directory: nothing to look at
            paths = []
        if cfg.tls is not None:
            paths += [cfg.tls.ca_file, cfg.tls.cert_file, cfg.tls.key_file]
        signature = []
        for path in paths:
            if path is None:
                continue
            try:
                stat = path.stat()
            except OSError:
                signature.append((str(path), None))
                continue
            signature.append((str(path), stat.st_size, stat.st_mtime_ns))
        return tuple(signature)

    def _reload_changed_files(self, client: mqtt.Client, userdata: Any) -> None:
        """paho's pre-connect hook (every connect and reconnect, on its thread): a password or
        TLS file replaced while the agent runs (a renewed certificate) is used from the next
        connection on, without a restart. Files that are now broken are not taken: the last
        good ones stay in use, and the log says why."""
        if self._files_signature() == self._loaded_files:
            return
        try:
            self._secure(client)
        except SETUP_ERRORS as exc:
            self._last_error = f"files not reloaded: {exc}"
            log.warning("mqtt.files_not_reloaded", problem=str(exc),
                        consequence="the files loaded last stay in use")
            return
        log.info("mqtt.files_reloaded")

    def _await_config(self) -> None:
        """The link could not start for a file (config_problem): look at the files again every
        CONFIG_RETRY_S and start the link once they are right. The line sorts meanwhile."""
        while not self._stopping.wait(CONFIG_RETRY_S):
            try:
                self._secure(self._client)
            except SETUP_ERRORS as exc:
                problem = str(exc) or type(exc).__name__
                if problem != self.config_problem:
                    log.error("mqtt.not_started", problem=problem,
                              consequence="the line sorts; events wait in the outbox")
                    self._last_error = f"not started: {problem}"
                    self.config_problem = problem
                continue
            log.info("mqtt.config_fixed", problem_was=self.config_problem)
            self.config_problem = None
            self._last_error = None
            self._start_client()
            return

    def _guarded(self, callback: Callable[..., None]) -> Callable[..., None]:
        def guarded(*args: Any) -> None:
            try:
                callback(*args)
            except Exception as exc:
                self._last_error = f"{callback.__name__}: {type(exc).__name__}: {exc}"
                log.exception("mqtt.callback_failed", callback=callback.__name__)

        return guarded

    def _status_body(self, state: str, reason: str | None = None) -> str:
        body: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION, "state": state, "client_id": self.client_id,
            "agent_version": __version__, "rules_version": self._rules_version,
            "started_at": self._started_at, "reason": reason,
        }
        # The will is fixed at connect time, so only live statuses carry a time.
        body["at"] = None if reason == "connection lost" else _now_iso()
        return json.dumps(body, separators=(",", ":"))

    # -- public ---------------------------------------------------------------------------------

    @property
    def connected(self) -> bool:
        return self._connected.is_set()

    @property
    def commands_subscribed(self) -> bool:
        """The broker has acknowledged the subscription to commands on this connection."""
        return self._subscribed.is_set()

    def start(self) -> None:
        if self.config_problem is not None:
            log.error("mqtt.not_started", problem=self.config_problem,
                      consequence="the line sorts; events wait in the outbox",
                      retry_every_s=CONFIG_RETRY_S)
            self._config_watch.start()
            return
        self._start_client()

    def _start_client(self) -> None:
        cfg = self.mqtt_config
        log.info("mqtt.starting", host=cfg.host, port=cfg.port, client_id=self.client_id,
                 protocol=cfg.protocol, tls=cfg.tls is not None)
        if cleartext_password(cfg.host, cfg.username, cfg.tls is not None):
            log.warning("mqtt.password_without_tls", host=cfg.host,
                        advice="anyone on the network path can read the password: "
                        "configure [mqtt.tls]")
        properties = None
        if self._v5:
            properties = Properties(PacketTypes.CONNECT)
            properties.MaximumPacketSize = cfg.max_command_bytes + PACKET_OVERHEAD_BYTES
        self._client.connect_async(cfg.host, cfg.port, keepalive=cfg.keepalive_s,
                                   properties=properties)
        self._client.loop_start()
        self._publisher.start()

    def stop(self, timeout_s: float = 5.0) -> None:
        """Publish the retained offline status, disconnect cleanly (no last will), stop threads.
        Rows still in flight stay in the outbox and are published again after the next start."""
        self._stopping.set()
        self._wake.set()
        if self._config_watch.is_alive():  # it may be starting the client right now
            self._config_watch.join(timeout_s)
        if self._publisher.is_alive():
            self._publisher.join(timeout_s)
        if self.connected:
            info = self._client.publish(self.topics.status, self._status_body("offline", "stopped"),
                                        qos=1, retain=True)
            try:
                info.wait_for_publish(min(timeout_s, OFFLINE_ACK_TIMEOUT_S))
            except (RuntimeError, ValueError) as exc:  # lost the connection meanwhile
                log.warning("mqtt.offline_status_not_sent", error=str(exc))
        self._client.disconnect()
        self._client.loop_stop()
        self._connected.clear()
        log.info("mqtt.stopped", **self.stats())

    def alive(self) -> bool:
        """For the watchdog: our publisher thread and paho's network thread both run (or the
        link never started for a configuration problem: nothing to watch, and a restart by
        the watchdog would not mend a missing file)."""
        if self.config_problem is not None:
            return True
        # paho keeps its loop thread in `_thread` (no public accessor); None before start().
        network = getattr(self._client, "_thread", None)
        return self._publisher.is_alive() and (network is None or network.is_alive())

    def notify_appended(self) -> None:
        """Rows are waiting in the outbox: wake the publisher (never blocks)."""
        if not self._wake.is_set():  # set() takes a lock: skip it when a wake-up is pending
            self._wake.set()

    def publish_status(self, rules_version: str | None = None) -> None:
        """Republish the retained online status (e.g. after a rules swap)."""
        if rules_version is not None:
            self._rules_version = rules_version
        # Offline, paho would keep every call in memory; the next connect publishes it anyway.
        if self.connected:
            self._client.publish(self.topics.status, self._status_body("online"), qos=1,
                                 retain=True)

    def publish_device_state(self, name: str, state: dict[str, Any]) -> None:
        """Retained per device; republished on every reconnect and, to keep it from expiring,
        every third of mqtt.device_state_ttl_s (see _device_state_message)."""
        self._device_states[name] = {"schema_version": SCHEMA_VERSION, "device": name, **state}
        if self.connected:  # else the next connect publishes the latest state of each device
            self._publish_device_state(self._client, name)

    def _publish_device_state(self, client: mqtt.Client, name: str) -> None:
        """A device state is true only while this agent runs. The last will covers `status`
        alone, so after a kill -9 a retained state would say `connected` for ever: each one
        carries an MQTT v5 message expiry (the broker drops it when it runs out) and an
        `expires_at` for consumers that read it under 3.1.1 or keep it."""
        ttl = self.mqtt_config.device_state_ttl_s
        now = datetime.now(UTC)
        body = {**self._device_states[name], "at": now.isoformat(timespec="milliseconds"),
                "expires_at": (now + timedelta(seconds=ttl)).isoformat(timespec="seconds")}
        properties = None
        if self._v5:
            properties = Properties(PacketTypes.PUBLISH)
            properties.MessageExpiryInterval = int(ttl)
        client.publish(self.topics.device_state(name), json.dumps(body), qos=1, retain=True,
                       properties=properties)

    def _refresh_device_states(self) -> None:
        """Publisher thread: republish every device state before it expires."""
        now = time.monotonic()
        if now < self._next_state_refresh or not self.connected:
            return
        self._next_state_refresh = now + self.mqtt_config.device_state_ttl_s / 3
        for name in list(self._device_states):
            self._publish_device_state(self._client, name)

    def publish_telemetry(self, data: dict[str, Any]) -> None:
        """Through the outbox (kind telemetry: the first to go when the disk budget is hit)."""
        outbox = self.outbox.stats()
        payload = {
            "at": _now_iso(),
            "counters": {},
            **data,
            "outbox": {key: outbox[key] for key in ("depth", "oldest_age_s", "bytes_on_disk",
                                                    "evicted")},
            "mqtt": self.stats(),
        }
        self.outbox.append("telemetry", payload)
        self._wake.set()

    def stats(self) -> dict[str, Any]:
        return {
            "connected": self.connected,
            "commands_subscribed": self.commands_subscribed,
            "reconnects": max(0, self._counts["connects"] - 1),
            "inflight": len(self._inflight),
            **{key: value for key, value in self._counts.items() if key != "connects"},
            "last_error": self._last_error,
            "config_problem": self.config_problem,
        }

    # -- paho callbacks (paho's thread) ---------------------------------------------------------

    def _handle_connect(self, client: mqtt.Client, userdata: Any, flags: Any,
                        reason_code: Any, properties: Any) -> None:
        if reason_code.is_failure:
            self._last_error = f"connect refused: {reason_code}"
            log.warning("mqtt.connect_refused", reason=str(reason_code))
            return
        self._counts["connects"] += 1
        self._subscribed.clear()
        self._connected.set()
        log.info("mqtt.connected", reconnects=self._counts["connects"] - 1)
        if self._v5:
            # Retain flags as published: a retained command is then recognised (and refused)
            # even when it arrives live, not only when the broker replays it at subscribe.
            client.subscribe(self.topics.commands_filter,
                             options=SubscribeOptions(qos=1, retainAsPublished=True))
        else:
            client.subscribe(self.topics.commands_filter, qos=1)
        client.publish(self.topics.status, self._status_body("online"), qos=1, retain=True)
        for name in list(self._device_states):
            self._publish_device_state(client, name)
        self._next_state_refresh = time.monotonic() + self.mqtt_config.device_state_ttl_s / 3
        self._wake.set()

    def _handle_subscribe(self, client: mqtt.Client, userdata: Any, mid: int,
                          reason_codes: Any, properties: Any) -> None:
        self._subscribed.set()

    def _handle_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any,
                           reason_code: Any, properties: Any) -> None:
        self._connected.clear()
        if not self._stopping.is_set():
            self._last_error = f"disconnected: {reason_code}"
            log.warning("mqtt.disconnected", reason=str(reason_code))

    def _handle_publish(self, client: mqtt.Client, userdata: Any, mid: int,
                        reason_code: Any, properties: Any) -> None:
        code = int(reason_code.value)
        self._puback_queue.append((mid, code, str(reason_code)))
        # Acknowledgements are settled on the publisher's next pass (the next event's, or the
        # idle timer's). They wake it only when that cannot wait: a refusal, or an in-flight
        # window half taken. A wake-up per PUBACK doubled the publisher's passes per event.
        if code >= 0x80 or len(self._puback_queue) >= self._wake_on_acks:
            self._wake.set()

    def _handle_message(self, client: mqtt.Client, userdata: Any,
                        message: mqtt.MQTTMessage) -> None:
        name = self.topics.command_name(message.topic)
        if name is None:
            return
        self._counts["commands"] += 1
        props = message.properties
        response_topic = getattr(props, "ResponseTopic", None) if props else None
        correlation = getattr(props, "CorrelationData", None) if props else None
        # The agent may write only under its own prefix (ACL): elsewhere would be refused anyway.
        if not (response_topic and response_topic.startswith(self.topics.prefix + "reply/")):
            response_topic = self.topics.reply(name)

        def respond(reply: dict[str, Any]) -> None:
            self._send_reply(response_topic, correlation, reply)

        if len(message.payload) > self.mqtt_config.max_command_bytes:
            respond(error_reply(name, None, "too_large",
                                f"payload is {len(message.payload)} bytes, the limit is "
                                f"{self.mqtt_config.max_command_bytes}"))
            return
        if self._on_command is None:
            respond(error_reply(name, None, "busy", "this agent takes no commands"))
            return
        command = Command(name, bytes(message.payload), respond, time.monotonic_ns(),
                          {"response_topic": response_topic}, retained=bool(message.retain))
        immediate = self._on_command(command)
        if immediate is not None:
            respond(immediate)

    def _send_reply(self, topic: str, correlation: bytes | None, reply: dict[str, Any]) -> None:
        properties = None
        if self._v5:
            properties = Properties(PacketTypes.PUBLISH)
            if correlation is not None:
                properties.CorrelationData = correlation
            properties.ContentType = "application/json"
        self._client.publish(topic, json.dumps(reply), qos=1, properties=properties)

    # -- the publisher thread -------------------------------------------------------------------

    def _publish_loop(self) -> None:
        next_telemetry = time.monotonic() + self.mqtt_config.telemetry_period_s
        while True:
            # An event wakes the publisher, which publishes it at once: no timer holds it back.
            # Events appended while a pass runs wait for the next pass and go out together, so
            # batches form only when events queue (hundreds a second), never when they trickle.
            # Acknowledgements waiting to be settled shorten the idle wait (see _settle_acks).
            self._wake.wait(ACK_DELETE_MAX_DELAY_S if self._puback_queue else PUBLISHER_IDLE_S)
            self._wake.clear()
            try:
                self._settle_acks()
                if self._stopping.is_set():
                    return
                if self._telemetry_source and time.monotonic() >= next_telemetry:
                    next_telemetry = time.monotonic() + self.mqtt_config.telemetry_period_s
                    self.publish_telemetry(self._telemetry_source())
                if self.connected:
                    self._refresh_device_states()
                    self._fill()
            except Exception as exc:  # e.g. a disk error: log, keep the thread alive, retry
                self._last_error = f"publisher: {type(exc).__name__}: {exc}"
                log.exception("mqtt.publisher_failed")
                self._stopping.wait(PUBLISHER_IDLE_S)

    def _settle_acks(self) -> None:
        delivered: list[int] = []
        while self._puback_queue:
            mid, code, reason = self._puback_queue.popleft()
            seq = self._inflight.pop(mid, None)
            if seq is None:
                continue  # a status, device state or reply: nothing to delete
            if code >= 0x80:
                self._refused(seq, reason)
            else:
                delivered.append(seq)
        if delivered:
            if not self._delivered:
                self._delete_due = time.monotonic() + ACK_DELETE_MAX_DELAY_S
            self._delivered += delivered
            self._counts["acked"] += len(delivered)
            self._reject_backoff = REJECT_RETRY_MIN_S
        if self._delivered and (
            len(self._delivered) >= ACK_DELETE_BATCH
            or time.monotonic() >= self._delete_due
            or self._stopping.is_set()
        ):
            self.outbox.acknowledge(self._delivered)
            self._delivered = []

    def _refused(self, seq: int, reason: str) -> None:
        if not self._rejected:  # the first refusal of a round sets when the round is retried
            self._retry_at = time.monotonic() + self._reject_backoff
        self._rejected.add(seq)
        self._counts["rejected"] += 1
        self._last_error = f"broker refused seq {seq}: {reason}"
        log.warning("mqtt.publish_refused", seq=seq, reason=reason,
                    retry_in_s=round(self._retry_at - time.monotonic(), 3))

    def _fill(self) -> None:
        if self._rejected:
            if time.monotonic() < self._retry_at:
                return
            # Resume from the oldest refused row; rows still in flight are skipped below.
            self._cursor = min(self._rejected) - 1
            self._rejected.clear()
            cap = max(REJECT_RETRY_MIN_S, self.mqtt_config.reconnect_max_s)
            self._reject_backoff = min(self._reject_backoff * 2, cap)
        room = self.mqtt_config.max_inflight - len(self._inflight)
        if room <= 0:
            return
        in_flight = set(self._inflight.values())
        for row in self.outbox.pending(room + len(in_flight), after_seq=self._cursor):
            if room <= 0:
                break
            self._cursor = row.seq
            if row.seq in in_flight:
                continue
            info = self._client.publish(self.topics.for_kind(row.kind), row.body, qos=1)
            if info.rc == mqtt.MQTT_ERR_QUEUE_SIZE:  # not stored by paho: try it again later
                self._cursor = row.seq - 1
                break
            # Success or "no connection": either way paho holds it and sends it (again) after
            # a reconnect under this same message id.
            self._inflight[info.mid] = row.seq
            self._counts["published"] += 1
            room -= 1
