"""The agent's configuration: one TOML file, validated by pydantic.

Every section has defaults that suit the default line, so a minimal file names only the site,
the line and the devices. `edge-agent config check FILE` reports every problem at once.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, field_validator, model_validator

from edge_agent.errors import ConfigError
from edge_agent.validation import StrictModel, problems_from, read_toml

# Site and line ids become MQTT topic levels, so they may not hold '/', '+', '#' or spaces.
TOPIC_LEVEL_PATTERN = r"^[A-Za-z0-9_.-]{1,64}$"


class DeviceConfig(StrictModel):
    """One device: on a serial port (the default) or on the network over TCP.

    Serial: `port` is the device path. TCP (`transport = "tcp"`): `port` is the TCP port number
    and `host` an IP address: the device's when the agent connects to it (`role = "client"`,
    the default), the local address to listen on when the device connects to the agent
    (`role = "server"`). How each behaves: docs/PROTOCOLS.md, "Devices on the network".
    """

    transport: Literal["serial", "tcp"] = "serial"
    port: str | int = Field(description="Serial port path (/dev/serial/by-id/...); TCP port number")
    profile: str = Field(min_length=1, description="Firmware profile (edge-agent profiles list)")
    baudrate: int | None = Field(default=None, gt=0, description="Overrides the profile's baud")
    poll_period_ms: int | None = Field(default=None, gt=0, le=60_000)
    host: str | None = Field(default=None, description="TCP: the device's (client) or our "
                             "listening (server) IP address")
    role: Literal["client", "server"] | None = Field(default=None, description="TCP: who connects")
    connect_timeout_s: float | None = Field(default=None, gt=0, le=60)
    # No bytes from the device for this long: the link is taken as dead and made again. 0 turns
    # it off; unset, the profile's [tcp] idle_timeout_ms (or off).
    idle_timeout_s: float | None = Field(default=None, ge=0, le=86_400)

    @model_validator(mode="after")
    def _transport_settings(self) -> DeviceConfig:
        from edge_agent.devices.tcp_endpoint import endpoint_problems

        if self.transport == "serial":
            if not isinstance(self.port, str) or not self.port:
                raise ValueError(
                    f"port: {self.port!r} is not a serial device path; a device on the network "
                    'needs transport = "tcp" and host')
            tcp_only = [name for name in ("host", "role", "connect_timeout_s", "idle_timeout_s")
                        if getattr(self, name) is not None]
            if tcp_only:
                raise ValueError(f"{', '.join(tcp_only)}: only for a device on the network "
                                 '(transport = "tcp")')
            return self
        if self.baudrate is not None:
            raise ValueError("baudrate: a device on the network (transport = \"tcp\") has none")
        if problems := endpoint_problems(self.host, self.port, self.role or "client"):
            raise ValueError("; ".join(problems))
        return self


class PairingConfig(StrictModel):
    """How scans and weights are paired: see edge_agent/sorting/pairing.py and docs/PAIRING.md.

    The defaults suit a scale within a few centimetres of the scanner and up to ~4 parcels a
    second; `edge-agent diag pairing` measures a line's offsets and gaps and proposes settings.
    """

    mode: Literal["window", "poll-after-scan"] = "window"
    # window: a parcel's reading settles this long after its scan (negative: before it)...
    offset_ms: int = Field(default=0, ge=-10_000, le=10_000)
    # ...give or take this much. Scans closer together than 2 x window_ms cannot be told apart.
    window_ms: int = Field(default=100, gt=0, le=10_000)
    # A reading lighter than this is an empty platter, not a parcel.
    min_weight_kg: float = Field(default=0.01, ge=0)
    # window: stable frames of one value closer together than this are one settled reading.
    settle_gap_ms: int = Field(default=200, gt=0, le=10_000)
    # poll-after-scan: how long to wait for the scale's reply to a request.
    poll_timeout_ms: int = Field(default=400, gt=0, le=10_000)
    # poll-after-scan: after a lost or garbled reply, how long replies are discarded and no
    # request is sent (a late reply must not answer the next request). Default: half of
    # poll_timeout_ms.
    resync_ms: int | None = Field(default=None, ge=0, le=60_000)
    # poll-after-scan: a reply counts as before the next scan only if it came this much
    # earlier (bytes of two ports may arrive out of order by this much).
    poll_reorder_ms: float = Field(default=2.0, ge=0, le=1000)
    # The same barcode read again within this window is the same parcel, not a new one.
    debounce_ms: int = Field(default=1500, ge=0, le=60_000)
    # A parcel not decided this long after its scan goes to EXCEPTION (it would miss the divert).
    decision_deadline_ms: int = Field(default=1000, gt=0, le=60_000)

    @model_validator(mode="after")
    def _decided_in_time(self) -> PairingConfig:
        waits = max(self.offset_ms + self.window_ms, 2 * self.window_ms)
        if self.mode == "window" and waits >= self.decision_deadline_ms:
            raise ValueError(
                f"a parcel waits {waits} ms for its reading (offset_ms + window_ms, or "
                f"2 x window_ms), not less than decision_deadline_ms "
                f"({self.decision_deadline_ms}): every parcel would be late")
        return self


class ClockConfig(StrictModel):
    """Whether the wall clock can be trusted (see edge_agent/runtime/clock.py).

    "kernel": while the kernel says NTP has synchronised it (a Pi boots with a stale time after
    a power cut). "flag-file": while `flag_file` exists (systemd-timesyncd creates
    /run/systemd/timesync/synchronized once it has synchronised). "assume-synchronised": for
    machines whose clock is kept by other means (and simulations): never asked.
    """

    source: Literal["kernel", "flag-file", "assume-synchronised"] = "kernel"
    flag_file: Path = Path("/run/systemd/timesync/synchronized")


class HealthConfig(StrictModel):
    """Input health: rates over the last `window_parcels` parcels that predict misroutes."""

    window_parcels: int = Field(default=200, ge=10, le=100_000)
    # No rate is judged before this many parcels (a handful of no-reads is not a trend).
    min_parcels: int = Field(default=50, ge=1, le=100_000)
    max_no_read_rate: float = Field(default=0.05, ge=0, le=1)
    max_unsettled_rate: float = Field(default=0.05, ge=0, le=1)
    max_ambiguous_rate: float = Field(default=0.02, ge=0, le=1)
    # |median of (measured - declared) / declared| over the parcels with a declared weight.
    max_scale_bias_fraction: float = Field(default=0.03, ge=0, le=1)


# Outcomes whose rate over the last `outcome_window_parcels` may raise an alarm (see
# edge_agent.runtime.outcome_rates), with their default limits: the share of parcels that
# missed their bin because the command came too late, went round again, or were lost.
OUTCOME_RATE_LIMITS = {"too_late": 0.02, "recirculated": 0.05, "tracking_lost": 0.01,
                       "bin_full": 0.10, "bin_disabled": 0.10, "bin_jammed": 0.02}
RATED_OUTCOMES = (*OUTCOME_RATE_LIMITS, "refused", "no_confirmation", "not_commanded")


class SorterConfig(StrictModel):
    # The sorter must acknowledge a lane command within this time or an alarm is raised.
    ack_timeout_ms: int = Field(default=250, gt=0, le=10_000)
    # After a lane command, how long the agent waits for the sorter's confirmation (sorted,
    # too late, bin full...) before recording the outcome `no_confirmation`: longer than the
    # belt takes from the divert command to the last bin. A sorter that sends only ACKs gets
    # `no_confirmation` for every parcel, this long after its decision.
    confirm_timeout_ms: int = Field(default=30_000, gt=0, le=600_000)
    # A sorter-driven parcel (sorter-host) may come round this many times; a request for a
    # later pass gets the exception chute.
    max_passes: int = Field(default=3, ge=1, le=99)
    # Outcome rates are measured over the last this many parcels of each lane...
    outcome_window_parcels: int = Field(default=200, ge=10, le=100_000)
    # ...and alarmed once a lane has this many outcomes in its window.
    outcome_min_parcels: int = Field(default=50, ge=1, le=100_000)
    # outcome -> the highest share of a lane's parcels it may take before an alarm. Outcomes
    # left out raise none (no_confirmation is the normal outcome of an ACK-only sorter).
    max_outcome_rates: dict[str, float] = Field(default_factory=lambda: dict(OUTCOME_RATE_LIMITS))

    @field_validator("max_outcome_rates")
    @classmethod
    def _known_outcomes(cls, value: dict[str, float]) -> dict[str, float]:
        for outcome, limit in value.items():
            if outcome not in RATED_OUTCOMES:
                known = ", ".join(RATED_OUTCOMES)
                raise ValueError(f"unknown outcome {outcome!r} (one of {known})")
            if not 0 <= limit <= 1:
                raise ValueError(f"{outcome}: limit {limit} is not a share from 0 to 1")
        return value

    @model_validator(mode="after")
    def _window_holds_minimum(self) -> SorterConfig:
        if self.outcome_min_parcels > self.outcome_window_parcels:
            raise ValueError("outcome_min_parcels is larger than outcome_window_parcels")
        return self


class RulesConfig(StrictModel):
    file: Path | None = Field(default=None, description="Rules TOML; the embedded default if unset")


class OutboxConfig(StrictModel):
    # Appends are committed together at most this often; a power cut loses at most this window.
    group_commit_ms: int = Field(default=20, ge=0, le=1000)
    disk_budget_mb: float = Field(default=256.0, gt=0)


class ManifestConfig(StrictModel):
    # The manifest store's budget: central's manifest.upsert is refused (over_limit) once a
    # batch would pass either bound, and an alarm is raised when a write passes warn_fraction
    # of either. A million rows take ~50 MB; an import from a file is not limited.
    max_rows: int = Field(default=3_000_000, gt=0)
    disk_budget_mb: float = Field(default=256.0, gt=0)
    warn_fraction: float = Field(default=0.8, gt=0, le=1)


class TlsConfig(StrictModel):
    ca_file: Path
    cert_file: Path | None = None
    key_file: Path | None = None
    insecure_skip_hostname_check: bool = False


class MqttConfig(StrictModel):
    enabled: bool = True
    host: str = "127.0.0.1"
    port: int = Field(default=1883, gt=0, lt=65536)
    protocol: Literal["5", "3.1.1"] = "5"
    topic_prefix: str = "sortline/v1/{site}/{line}/"
    client_id: str | None = Field(default=None, description="Default: edge-agent-{site}-{line}")
    keepalive_s: int = Field(default=30, ge=5, le=3600)
    username: str | None = None
    # The password is read from a file (or a systemd credential), never from this file or argv.
    password_file: Path | None = None
    password_credential: str | None = Field(
        default=None, description="Name of a systemd credential ($CREDENTIALS_DIRECTORY/NAME)"
    )
    tls: TlsConfig | None = None
    max_inflight: int = Field(default=64, gt=0, le=65535)
    reconnect_min_s: float = Field(default=0.5, gt=0)
    reconnect_max_s: float = Field(default=30.0, gt=0)
    telemetry_period_s: float = Field(default=10.0, gt=0)
    # The largest command payload taken (a rule set is at most 256 KiB of TOML, a manifest
    # batch 5,000 rows): larger ones are refused, and the broker is asked (v5 Maximum Packet
    # Size) not to send much larger ones at all.
    max_command_bytes: int = Field(default=524_288, gt=0, le=16 * 1_048_576)
    # Central's clock and ours may differ by this much before a command counts as stale.
    command_clock_skew_s: float = Field(default=30.0, ge=0, le=600)
    # Commands without issued_at are refused unless this is set (for a migration only).
    accept_undated_commands: bool = False
    # Where central's commands are parsed and checked: a process of its own (the decision loop
    # never waits on that work), or a thread of the agent (the way of agents before 2026-12-03,
    # kept to compare: its work holds the loop's interpreter, docs/RELIABILITY.md).
    command_worker: Literal["process", "thread"] = "process"
    # The command worker process must prepare a command within this long, or it is killed and
    # restarted and the command answered `internal`.
    command_time_budget_s: float = Field(default=10.0, gt=0, le=600)
    # Retained device states expire this long after they were published (MQTT v5 message
    # expiry) and are republished at a third of it, so a state outlives a killed agent by at
    # most this long. Also sent as `expires_at` in the payload, for 3.1.1 consumers.
    device_state_ttl_s: float = Field(default=60.0, ge=3, le=86_400)

    @model_validator(mode="after")
    def _backoff_order(self) -> MqttConfig:
        if self.reconnect_max_s < self.reconnect_min_s:
            raise ValueError("reconnect_max_s must be at least reconnect_min_s")
        return self


class StatusConfig(StrictModel):
    socket_path: Path | None = Field(default=None, description="Default: STATE_DIR/status.sock")


class LoggingConfig(StrictModel):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


class AgentConfig(StrictModel):
    site: str = Field(pattern=TOPIC_LEVEL_PATTERN)
    line: str = Field(pattern=TOPIC_LEVEL_PATTERN)
    timezone: str = "Asia/Hong_Kong"
    # The country a GS1 AI 420 postal code (which carries no country) belongs to.
    default_destination_country: str = Field(default="CN", pattern=r"^[A-Z]{2}$")
    state_dir: Path = Path("/var/lib/edge-agent")
    devices: dict[str, DeviceConfig] = Field(default_factory=dict)
    pairing: PairingConfig = PairingConfig()
    sorter: SorterConfig = SorterConfig()
    clock: ClockConfig = ClockConfig()
    health: HealthConfig = HealthConfig()
    rules: RulesConfig = RulesConfig()
    outbox: OutboxConfig = OutboxConfig()
    manifest: ManifestConfig = ManifestConfig()
    mqtt: MqttConfig = MqttConfig()
    status: StatusConfig = StatusConfig()
    logging: LoggingConfig = LoggingConfig()

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r}") from None
        return value

    @field_validator("devices")
    @classmethod
    def _device_names(cls, value: dict[str, DeviceConfig]) -> dict[str, DeviceConfig]:
        import re

        for name in value:
            if not re.fullmatch(TOPIC_LEVEL_PATTERN, name):
                raise ValueError(f"device name {name!r} may hold only letters, digits, _ . -")
        return value

    @property
    def status_socket(self) -> Path:
        """Under systemd, RuntimeDirectory= (e.g. /run/edge-agent) holds it; else the state dir."""
        if self.status.socket_path is not None:
            return self.status.socket_path
        runtime_dir = os.environ.get("RUNTIME_DIRECTORY")
        base = Path(runtime_dir.split(":")[0]) if runtime_dir else self.state_dir
        return base / "status.sock"

    @property
    def mqtt_client_id(self) -> str:
        return self.mqtt.client_id or f"edge-agent-{self.site}-{self.line}"

    @property
    def topic_prefix(self) -> str:
        return self.mqtt.topic_prefix.format(site=self.site, line=self.line)


def parse_config(data: dict, source: str = "config") -> AgentConfig:
    try:
        return AgentConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(source, problems_from(exc)) from None


def load_config(path: Path) -> AgentConfig:
    """Read and validate a config file; raises ConfigError listing every problem."""
    try:
        data = read_toml(path)
    except ValueError as exc:
        raise ConfigError(str(path), [str(exc)]) from None
    config = parse_config(data, str(path))
    return _resolve_relative_paths(config, path.parent)


def _resolve_relative_paths(config: AgentConfig, base: Path) -> AgentConfig:
    """Paths in a config file are relative to that file, not to the working directory."""

    def resolve(path: Path | None) -> Path | None:
        return None if path is None or path.is_absolute() else (base / path).resolve()

    updates: dict[str, object] = {"state_dir": resolve(config.state_dir) or config.state_dir}
    if config.rules.file is not None:
        updates["rules"] = config.rules.model_copy(
            update={"file": resolve(config.rules.file) or config.rules.file}
        )
    if config.clock.flag_file is not None:
        updates["clock"] = config.clock.model_copy(
            update={"flag_file": resolve(config.clock.flag_file) or config.clock.flag_file})
    if config.status.socket_path is not None:
        updates["status"] = config.status.model_copy(
            update={"socket_path": resolve(config.status.socket_path) or config.status.socket_path}
        )
    mqtt_updates: dict[str, object] = {}
    if config.mqtt.password_file is not None:
        password_file = config.mqtt.password_file
        mqtt_updates["password_file"] = resolve(password_file) or password_file
    if config.mqtt.tls is not None:
        tls = config.mqtt.tls
        mqtt_updates["tls"] = tls.model_copy(
            update={
                name: resolve(getattr(tls, name)) or getattr(tls, name)
                for name in ("ca_file", "cert_file", "key_file")
            }
        )
    if mqtt_updates:
        updates["mqtt"] = config.mqtt.model_copy(update=mqtt_updates)
    return config.model_copy(update=updates)
