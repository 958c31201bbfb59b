"""Every MQTT payload as a pydantic model: the contract central teams code against.

The models generate docs/schemas/*.json and docs/asyncapi.yaml (`edge-agent schema`). Outbound
payloads are built as plain dicts on the hot path (validating each parcel event would cost more
than storing it); tests check that what the agent sends validates against these models.
Inbound command payloads are validated here before anything acts on them.

Versioning: `schema_version` grows only on a breaking change; new optional fields do not bump it,
so consumers must ignore fields they do not know.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = 1
EVENT_ID_PATTERN = r"^[0-9a-f]{32}$"
# Bounds on one command's batch, so one message cannot make the agent work for seconds:
# 5,000 rows are ~500 KB of JSON, within the default payload limit (mqtt.max_command_bytes).
MAX_MANIFEST_BATCH = 5_000
MAX_RULES_TEXT = 256 * 1024
# Holds per command: a day's cancellations fit in one; a bigger change takes several commands.
MAX_HOLD_BATCH = 1_000
# A hold id, barcode or order id: printable ASCII without spaces.
KEY_PATTERN = r"^[!-~]{1,64}$"


class Payload(BaseModel):
    # Outbound: consumers must accept new fields; the agent never sends unknown ones itself.
    model_config = ConfigDict(extra="allow", frozen=True)
    schema_version: Literal[1] = Field(default=1, description="Bumped only on breaking changes")


class Event(Payload):
    event_id: str = Field(
        pattern=EVENT_ID_PATTERN,
        description="Unique, time-ordered (UUIDv7 layout, 32 hex digits): de-duplicate on it",
    )
    seq: int = Field(ge=1, description="Per-agent sequence number, +1 per event, kept across "
                     "restarts: a jump means events were dropped (an alarm says why)")


class ParcelEvent(Event):
    """One decision: which bin a parcel was sent to, and why."""

    parcel_id: str
    barcode: str | None = Field(description="None when the scanner had no read")
    lane: str = Field(description="ZHUHAI, SHANGHAI, EXPORT, EXCEPTION (rule set dependent)")
    bin: int = Field(ge=1, le=99, description="The sorter's bin number the parcel was sent to")
    rule: str = Field(description="The rule that decided")
    reasons: list[str] = Field(description="Why (e.g. why EXCEPTION)")
    rules_version: str
    decided_at: str = Field(description="ISO-8601 with offset")
    inputs: dict[str, Any] = Field(
        description="Every fact the decision used (scan, weight and how it was paired, manifest, "
        "lane states, local time, clock synchronisation; dimensions, labels, order id, "
        "central's hold, dangerous goods and the customs declaration where known); a field "
        "absent (from an older event, or not known) is unknown, never zero. docs/MQTT.md "
        "lists them")
    sorter_tracking: str | None = Field(
        default=None, description="A sorter-driven line only: the sorter's own tracking number "
        "for the parcel, from its destination request (absent otherwise)")


OutcomeName = Literal[
    "sorted", "too_late", "bin_full", "bin_disabled", "bin_jammed", "recirculated",
    "tracking_lost", "recirculation_limit", "no_confirmation", "refused", "not_commanded",
]


class OutcomeEvent(Event):
    """What finally happened to a parcel the agent decided for: exactly one per decided parcel
    (when the line has a sorter), published after its decision; join on `parcel_id`."""

    parcel_id: str = Field(description="The decision's parcel_id (events/parcel)")
    outcome: OutcomeName = Field(
        description="sorted: into its bin; too_late: the command reached the sorter after the "
        "parcel passed its bin; bin_full / bin_disabled / bin_jammed: its bin could not take it "
        "(actual_bin says where it went); recirculated: sent round again (pass_count); "
        "recirculation_limit: went round more than allowed (a sorter-driven line); "
        "tracking_lost: the sorter lost the parcel; no_confirmation: the sorter said nothing "
        "within timeout_ms (always, for a sorter that only acknowledges); refused: the sorter "
        "refused the command; not_commanded: the command could not be sent")
    lane: str = Field(description="The lane decided")
    bin: int = Field(ge=1, le=99, description="The bin commanded")
    actual_bin: int | None = Field(description="The bin the parcel dropped into, when the "
                                   "sorter says; None when it did not drop or is unknown")
    actual_lane: str | None = Field(default=None, description="The lane of actual_bin, if any")
    source: Literal["sorter", "agent"] = Field(
        description="sorter: the sorter's confirmation; agent: concluded by the agent")
    pass_count: int | None = Field(default=None, ge=1, description="recirculated: its rounds")
    sorter_time: str | None = Field(default=None, description="The sorter's own UTC time of "
                                    "the drop, ISO-8601 as it sent it (sorted, redirected)")
    confirmed_bin: int | None = Field(default=None, description="Present only when the "
                                      "sorter's confirmation named another bin than commanded")
    timeout_ms: int | None = Field(default=None, description="no_confirmation: the wait")
    decided_at: str = Field(description="ISO-8601 UTC, when the agent decided (wall clock)")
    reported_at: str = Field(description="ISO-8601 UTC, when the agent learned the outcome")
    waited_ms: int = Field(ge=0, description="reported_at - decided_at")


class AlarmEvent(Event):
    alarm: str = Field(description="Machine-readable alarm name, e.g. outbox_evicted, "
                       "unclean_restart (from the outbox; the agent adds its own)")
    severity: Literal["info", "warning", "critical"]
    message: str
    details: dict[str, Any] = Field(default_factory=dict)


class OutboxStats(BaseModel):
    model_config = ConfigDict(extra="allow", frozen=True)
    depth: int
    oldest_age_s: float
    bytes_on_disk: int
    evicted: dict[str, int]


class Telemetry(Event):
    """Periodic counters; its loss is harmless (the next one carries the totals)."""

    at: str = Field(description="ISO-8601")
    counters: dict[str, int | float] = Field(description="Monotonic totals since start")
    outbox: OutboxStats
    mqtt: dict[str, Any] = Field(default_factory=dict)
    devices: dict[str, str] = Field(default_factory=dict, description="Device name -> state")
    lanes: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="Lane -> its state and parcel count"
    )
    pairing: dict[str, Any] = Field(
        default_factory=dict,
        description="Pairing settings and a count per weight_pairing outcome since start",
    )
    input_health: dict[str, Any] = Field(
        default_factory=dict,
        description="Measure -> value, limit and parcels counted; alarms_active",
    )
    clock: dict[str, Any] = Field(
        default_factory=dict, description="synchronised (true, false, null: unknown) and source"
    )
    holds: dict[str, Any] = Field(
        default_factory=dict, description="Central's holds: active (how many apply now) and "
        "newest (the last one put: hold_id, barcode or order_id, reason, expires_at, put_at)")
    outcomes: dict[str, Any] = Field(
        default_factory=dict, description="by_lane: lane -> outcome -> parcels since start; "
        "waiting: parcels awaiting theirs; rates: each lane's recent outcome shares and the "
        "rate alarms active (absent before outcomes existed)")


class Status(Payload):
    """Retained. The broker publishes the `offline` form as the agent's last will."""

    state: Literal["online", "offline"]
    client_id: str
    agent_version: str | None = None
    rules_version: str | None = None
    started_at: str | None = Field(default=None, description="ISO-8601 start of this process")
    at: str | None = Field(default=None, description="ISO-8601 of this status (None in the will)")
    reason: str | None = Field(default=None, description="For offline: stopped or connection lost")


class DeviceState(Payload):
    """Retained, one topic per device. True only while the agent runs: the agent republishes
    it every third of its lifetime; under MQTT v5 the broker drops it when its message expiry
    runs out (e.g. after the agent was killed), and `expires_at` says when for 3.1.1."""

    device: str
    state: str = Field(description="e.g. ok, disconnected, error")
    at: str
    expires_at: str | None = Field(default=None, description="ISO-8601: after this, the state "
                                   "is unknown (the agent stopped renewing it); also read "
                                   "`status`, whose last will says offline")
    details: dict[str, Any] = Field(default_factory=dict)


# -- commands from central -------------------------------------------------------------------


class CommandModel(BaseModel):
    # Inbound: an unknown field is most likely a typo in central's code: refuse it.
    model_config = ConfigDict(extra="forbid", frozen=True)


class CommandRequest(CommandModel):
    id: str = Field(min_length=1, max_length=128, description="Idempotency key: a replayed id "
                    "gets the first reply again without acting twice (ids are kept on disk "
                    "for longer than any command may live)")
    issued_at: AwareDatetime | None = Field(
        default=None, description="When central issued the command, ISO-8601 with offset. "
        "Required: an undated command is refused (unless the agent's "
        "mqtt.accept_undated_commands is set). Refused if more than the clock tolerance (30 s) "
        "in the agent's future")
    expires_at: AwareDatetime | None = Field(
        default=None, description="After this (plus the 30 s clock tolerance) the command is "
        "refused as stale. Default: issued_at + 60 s; at most issued_at + 3600 s")
    args: dict[str, Any] = Field(default_factory=dict)


class RulesApplyArgs(CommandModel):
    rules: str = Field(min_length=1, max_length=MAX_RULES_TEXT, description="Rule set, TOML text")


class ManifestEntryModel(CommandModel):
    barcode: str = Field(min_length=1, max_length=64)
    country: str = Field(pattern=r"^[A-Z]{2}$")
    postal_code: str | None = Field(default=None, max_length=16)
    declared_weight_kg: float | None = Field(default=None, ge=0)
    service: str | None = Field(default=None, max_length=32)
    order_id: str | None = Field(default=None, max_length=64, description="What central's "
                                 "holds by order id match")
    dangerous_goods: list[Literal["lithium_battery", "liquid", "powder", "other", "none"]] | None \
        = Field(default=None, max_length=5, description="Declared dangerous goods; ['none']: "
                "declared free of them; absent: not declared (unknown)")
    declared_value: float | None = Field(default=None, ge=0, le=100_000_000,
                                         description="The customs value declared, in currency")
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$", description="ISO 4217")
    customs_mode: Literal["personal_postal", "cross_border_ecommerce"] | None = None


class ManifestUpsertArgs(CommandModel):
    entries: list[ManifestEntryModel] = Field(min_length=1, max_length=MAX_MANIFEST_BATCH)


class ManifestRemoveArgs(CommandModel):
    barcodes: list[str] = Field(min_length=1, max_length=MAX_MANIFEST_BATCH)


class HoldModel(CommandModel):
    hold_id: str = Field(pattern=KEY_PATTERN, description="Central's id of the hold: putting "
                         "the same id again replaces it (idempotent), lifting it ends it")
    barcode: str | None = Field(default=None, pattern=KEY_PATTERN, description="The parcel's "
                                "manifest barcode (for a GS1 label, its SSCC)")
    order_id: str | None = Field(default=None, pattern=KEY_PATTERN, description="Holds every "
                                 "parcel whose manifest row carries this order id")
    reason: str = Field(min_length=1, max_length=200, pattern=r"^[^\x00-\x1f\x7f-\x9f]+$",
                        description="Central's reason, carried in every held parcel's event")
    expires_at: AwareDatetime = Field(description="The hold ends by itself at this time "
                                      "(ISO-8601 with offset; in the future, at most 366 days "
                                      "ahead)")

    @model_validator(mode="after")
    def _one_key(self) -> HoldModel:
        if (self.barcode is None) == (self.order_id is None):
            raise ValueError("give exactly one of barcode and order_id")
        return self


class HoldsPutArgs(CommandModel):
    holds: list[HoldModel] = Field(min_length=1, max_length=MAX_HOLD_BATCH)


class HoldsLiftArgs(CommandModel):
    hold_ids: list[Annotated[str, Field(pattern=KEY_PATTERN)]] = Field(
        min_length=1, max_length=MAX_HOLD_BATCH)


class LanesSetArgs(CommandModel):
    lane: str = Field(min_length=1, max_length=64)
    state: Literal["open", "full", "blocked"]


class NoArgs(CommandModel):
    pass


class CommandError(BaseModel):
    model_config = ConfigDict(frozen=True)
    code: Literal[
        "bad_json", "bad_request", "unknown_command", "too_large", "too_complex", "stale",
        "retained", "over_limit", "rejected", "busy", "internal"
    ] = Field(description="too_complex: nested too deeply or too many values; stale: expired or "
              "issued in the future; retained: published with the retain flag (never acted "
              "on); over_limit: the agent's store is full (e.g. the manifest's budget)")
    message: str
    problems: list[str] = Field(default_factory=list, description="The first 20 problems")
    problems_total: int = Field(default=0, description="How many problems there were in all")


class CommandReply(Payload):
    command: str
    id: str | None = Field(description="The request's id (None if it could not be read)")
    ok: bool
    result: dict[str, Any] | None = None
    error: CommandError | None = None
    replied_at: str


# Schemas published for central teams, by file name.
PUBLISHED_MODELS: dict[str, type[BaseModel]] = {
    "status": Status,
    "parcel-event": ParcelEvent,
    "outcome-event": OutcomeEvent,
    "alarm-event": AlarmEvent,
    "telemetry": Telemetry,
    "device-state": DeviceState,
    "command-request": CommandRequest,
    "command-reply": CommandReply,
    "args-rules-apply": RulesApplyArgs,
    "args-manifest-upsert": ManifestUpsertArgs,
    "args-manifest-remove": ManifestRemoveArgs,
    "args-lanes-set": LanesSetArgs,
    "args-holds-put": HoldsPutArgs,
    "args-holds-lift": HoldsLiftArgs,
}
