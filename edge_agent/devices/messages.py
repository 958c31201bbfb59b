"""Decoded device messages: immutable, validated when made.

Every message carries `received_ns`, the time.monotonic_ns() at which the bytes that completed
its frame were read from the port. Pairing scans with weights relies on this stamp (never on the
order in which messages happen to be processed), so framers receive it with each chunk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum


class WeightStatus(StrEnum):
    OK = "ok"
    OVERLOAD = "overload"
    UNDERLOAD = "underload"
    ERROR = "error"


@dataclass(frozen=True, slots=True)
class Scan:
    """One read (or one no-read) from a barcode scanner."""

    data: str
    no_read: bool = False
    symbology: str | None = None  # AIM symbology identifier such as "]C1", when sent
    raw: bytes = b""
    received_ns: int = 0
    kind: str = field(default="scan", init=False)


@dataclass(frozen=True, slots=True)
class Weight:
    """One weight reading. `value` is in the device's `unit`; `value_kg` is converted."""

    value: float | None
    unit: str
    value_kg: float | None
    stable: bool
    status: WeightStatus = WeightStatus.OK
    net: bool = False  # gross unless the device says net
    raw: bytes = b""
    received_ns: int = 0
    kind: str = field(default="weight", init=False)


@dataclass(frozen=True, slots=True)
class DwsRecord:
    """One parcel as a DWS unit (or a scan tunnel with a dimensioner and a scale) reports it.

    The record *is* the parcel: labels, weight and size measured together, so nothing is paired.
    A value the unit did not measure is None (stacked boxes, an item over range...), and
    `problem` says why when the unit said so.
    """

    barcodes: tuple[str, ...]  # every label read, in the order sent; empty for a no-read
    no_read: bool
    weight_kg: float | None
    length_mm: float | None
    width_mm: float | None
    height_mm: float | None
    volume_cm3: float | None = None  # as sent; None when the format has none
    # False when the unit flags its measurement as not legal for trade; None: the format
    # does not say.
    legal_for_trade: bool | None = None
    problem: str | None = None  # the unit's reason for a missing value, e.g. "over_range"
    raw: bytes = b""
    received_ns: int = 0
    kind: str = field(default="dws_record", init=False)


@dataclass(frozen=True, slots=True)
class SorterAck:
    """The sorter confirms it accepted (or refused) a lane command for a parcel."""

    parcel_id: str
    bin: int
    accepted: bool = True
    raw: bytes = b""
    received_ns: int = 0
    kind: str = field(default="sorter_ack", init=False)


@dataclass(frozen=True, slots=True)
class SorterOutcome:
    """The sorter reports what finally happened to a parcel it was commanded to divert.

    `outcome` is one of SORTER_OUTCOMES; `bin` is the bin it was commanded to, `actual_bin`
    where the parcel went (None: the sorter does not say, or it did not drop), `pass_count` the
    sorter's count of rounds for a recirculated parcel, `sorter_time` the sorter's own ISO-8601
    stamp of the drop, as sent (None when the line carries none).
    """

    parcel_id: str
    outcome: str
    bin: int
    actual_bin: int | None = None
    pass_count: int | None = None
    sorter_time: str | None = None
    raw: bytes = b""
    received_ns: int = 0
    kind: str = field(default="sorter_outcome", init=False)


@dataclass(frozen=True, slots=True)
class DestinationRequest:
    """A sorter that tracks parcels itself asks where one goes (sorter-host protocol).

    `seq` is the message's sequence number: a request re-sent unchanged carries the same one.
    `tracking` is the sorter's own number for the parcel; `pass_count` counts its rounds (1 on
    the first). Measurements the sorter does not have are None.
    """

    seq: int
    tracking: str
    barcodes: tuple[str, ...]
    weight_kg: float | None = None
    length_mm: float | None = None
    width_mm: float | None = None
    height_mm: float | None = None
    pass_count: int = 1
    deadline_ms: int = 500  # how long the sorter waits for the answer, from its request
    raw: bytes = b""
    received_ns: int = 0
    kind: str = field(default="destination_request", init=False)


@dataclass(frozen=True, slots=True)
class SortReport:
    """A sorter-driven parcel's result: intermediate (final=False, e.g. recirculated) or final.
    `outcome` is one of SORTER_OUTCOMES; `chute` where it went (None: nowhere or unknown)."""

    seq: int
    tracking: str
    outcome: str
    chute: int | None
    pass_count: int = 1
    final: bool = True
    sorter_time: str | None = None
    raw: bytes = b""
    received_ns: int = 0
    kind: str = field(default="sort_report", init=False)


@dataclass(frozen=True, slots=True)
class LinkMessage:
    """Link upkeep from a sorter: a heartbeat, or the acknowledgement of our message `seq`."""

    seq: int
    heartbeat: bool
    raw: bytes = b""
    received_ns: int = 0
    kind: str = field(default="link", init=False)


# Final outcomes a sorter can report; the agent adds no_confirmation (nothing came in time),
# refused (the sorter NAKed the command) and not_commanded (the command could not be sent).
SORTER_OUTCOMES = ("sorted", "too_late", "bin_full", "bin_disabled", "bin_jammed",
                   "recirculated", "tracking_lost", "recirculation_limit")
AGENT_OUTCOMES = ("no_confirmation", "refused", "not_commanded")


@dataclass(frozen=True, slots=True)
class LaneFull:
    """The sorter reports that a bin is full (or no longer full)."""

    bin: int
    full: bool = True
    raw: bytes = b""
    received_ns: int = 0
    kind: str = field(default="lane_full", init=False)


@dataclass(frozen=True, slots=True)
class DeviceReply:
    """A reply that is neither a reading nor an error: e.g. zero/tare done, trigger acknowledged."""

    text: str
    raw: bytes = b""
    received_ns: int = 0
    kind: str = field(default="reply", init=False)


@dataclass(frozen=True, slots=True)
class DecodeError:
    """A complete frame that the profile could not decode (bad checksum, unknown reply...).

    Decoders return these instead of raising, so one bad frame never stops a port.
    """

    reason: str
    raw: bytes = b""
    received_ns: int = 0
    kind: str = field(default="error", init=False)


Message = (Scan | Weight | DwsRecord | SorterAck | SorterOutcome | DestinationRequest
           | SortReport | LinkMessage | LaneFull | DeviceReply | DecodeError)


def message_to_dict(message: Message) -> dict[str, object]:
    """A JSON-ready dict of a message (bytes as hex), for the CLI and logs."""
    out: dict[str, object] = {"kind": message.kind}
    for name in message.__slots__:  # type: ignore[union-attr]
        value = getattr(message, name)
        if isinstance(value, bytes):
            value = value.hex()
        elif isinstance(value, StrEnum):
            value = value.value
        out[name] = value
    return out
