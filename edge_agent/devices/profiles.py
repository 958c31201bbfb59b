"""Firmware profiles: one TOML file per device model, validated by pydantic.

A profile says how to talk to one model of scanner, scale, DWS unit or sorter: the serial line
settings, how bytes become frames (`framing`), what the agent must send and when (`polling`),
and which protocol family decodes the frames (`decode`). Each shipped profile's comments name
the facts it rests on (those of the DWS units are in docs/PROTOCOLS.md); anything a source
leaves unconfirmed is a setting here, not an assumption.

Profiles are found on a search path: the directories of EDGE_AGENT_PROFILE_PATH (separated by
os.pathsep) first, then the profiles packaged with the agent. A site adds or overrides a device
model by dropping `NAME.toml` into a directory on that path. Loading happens once, at start-up;
edge_agent.devices.codec turns a profile into precomputed framer and decoder objects.

Byte strings (terminators, commands) are TOML strings whose characters are bytes 0x00-0xFF:
write control bytes with TOML escapes, e.g. "\\r\\n", "\\u0002" (STX), "\\u0016T\\r" (SYN T CR).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Sequence
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    PlainSerializer,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from edge_agent.errors import ProblemsError
from edge_agent.validation import StrictModel, UnionTag, problems_from

PROFILE_PATH_ENV = "EDGE_AGENT_PROFILE_PATH"
PACKAGED_PROFILES = "edge_agent.firmware_profiles"
# Profile names become file names: no path separators, no leading dot.
NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,63}$"


class ProfileError(ProblemsError):
    """A profile is missing, unreadable or invalid, or lacks what was asked of it.

    `source` names the file (or the profile), each of `problems` the field: `framing.end: ...`.
    """


def _to_wire(value: Any) -> bytes:
    if isinstance(value, bytes):
        return value
    if not isinstance(value, str):
        raise ValueError("must be a string")
    try:
        return value.encode("latin-1")
    except UnicodeEncodeError:
        raise ValueError(
            "may hold only characters U+0000-U+00FF, one byte each (write STX as \\u0002)"
        ) from None


# Bytes on the wire, written in TOML as a string of code points 0-255; shown back the same way.
Wire = Annotated[
    bytes,
    BeforeValidator(_to_wire),
    PlainSerializer(lambda value: value.decode("latin-1"), return_type=str),
]
NonEmptyWire = Annotated[Wire, Field(min_length=1)]


def _check_encoding(value: str) -> str:
    import codecs

    try:
        codecs.lookup(value)
    except LookupError:
        raise ValueError(f"unknown text encoding {value!r}") from None
    return value


class LineSettings(StrictModel):
    baudrate: int = Field(default=9600, gt=0, le=4_000_000)
    bytesize: Literal[5, 6, 7, 8] = 8
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 1.5, 2] = 1
    flow_control: Literal["none", "xonxoff", "rtscts"] = "none"
    # 7-bit characters (7E1, 7O1) read on an 8N1 port arrive with the parity bit as bit 7: clear
    # it before framing. Lets one profile read a device whatever its 7- or 8-bit setting; only
    # for devices that are not sent commands (a 7E1 device would see parity errors in ours).
    mask_bit7: bool = False


def _check_terminators(terminators: list[bytes]) -> list[bytes]:
    # A terminator that is the start of another ("\r" and "\r\n") would make the frame depend on
    # how the bytes were split into reads; list the single end bytes instead ("\r", "\n").
    for a in terminators:
        for b in terminators:
            if a != b and b.startswith(a):
                raise ValueError(f"{a!r} is the start of {b!r}; list each end byte alone instead")
    return terminators


class TerminatorFraming(StrictModel):
    """A frame ends at any of the terminators; empty frames (e.g. the LF of CR LF) are skipped."""

    mode: Literal["terminator"]
    terminators: list[NonEmptyWire] = Field(min_length=1)
    max_length: int = Field(
        default=256, ge=2, le=65536, description="Longest frame, terminator included"
    )

    _no_prefixes = field_validator("terminators")(_check_terminators)


class StxEtxFraming(StrictModel):
    """A frame runs from `start` to `end`, then `trailer_length` more bytes (e.g. a checksum).

    Bytes outside frames are garbage. With `restart_on_start` a start marker inside an unfinished
    frame begins a new frame (the earlier part was cut off); turn it off when the start marker can
    also appear inside a frame (NCI: LF starts the reply and separates its lines).
    """

    mode: Literal["stx_etx"]
    start: NonEmptyWire = b"\x02"
    end: NonEmptyWire = b"\x03"
    trailer_length: int = Field(default=0, ge=0, le=8)
    restart_on_start: bool = True
    max_length: int = Field(
        default=256, ge=3, le=65536, description="Longest frame, markers included"
    )


class FixedLengthFraming(StrictModel):
    """Every frame is `length` bytes, optionally starting with `start` and ending with `end`."""

    mode: Literal["fixed_length"]
    length: int = Field(ge=1, le=65536)
    start: NonEmptyWire | None = None
    end: NonEmptyWire | None = None

    @model_validator(mode="after")
    def _markers_fit(self) -> FixedLengthFraming:
        if len(self.start or b"") + len(self.end or b"") > self.length:
            raise ValueError("start and end markers are longer than the frame")
        return self


class IdleGapFraming(StrictModel):
    """A frame ends when the line stays quiet for `gap_ms` (or at a terminator, if any are set).

    For scanners that send no terminator (Zebra's RS-232 default). The gap must be longer than
    any pause inside one read and shorter than the time between two parcels.
    """

    mode: Literal["idle_gap"]
    gap_ms: int = Field(default=50, ge=1, le=10_000)
    terminators: list[NonEmptyWire] = Field(default_factory=list)
    max_length: int = Field(default=4096, ge=2, le=65536)

    _no_prefixes = field_validator("terminators")(_check_terminators)


class LengthHeaderFraming(StrictModel):
    """A binary header that starts with `start` and holds the body's length, then the body.

    The length is an unsigned big-endian integer of `length_size` bytes at `length_offset` in
    the header, counting the body only (the header is `header_length` bytes). A declared length
    that would pass `max_length` is garbage: the framer skips one byte and looks for the next
    start. For sorter host protocols (docs/PROTOCOLS.md, "Sorters").
    """

    mode: Literal["length_header"]
    start: NonEmptyWire
    header_length: int = Field(ge=2, le=256)
    length_offset: int = Field(ge=0, le=255)
    length_size: Literal[1, 2, 4] = 4
    max_length: int = Field(default=4096, ge=3, le=65536,
                            description="Longest frame, header included")

    @model_validator(mode="after")
    def _header_holds_its_fields(self) -> LengthHeaderFraming:
        if len(self.start) > self.length_offset:
            raise ValueError("length_offset falls inside the start marker")
        if self.length_offset + self.length_size > self.header_length:
            raise ValueError("the length field ends past header_length")
        if self.header_length >= self.max_length:
            raise ValueError("max_length leaves no room for a body")
        return self


Framing = Annotated[
    TerminatorFraming | StxEtxFraming | FixedLengthFraming | IdleGapFraming
    | LengthHeaderFraming,
    Field(discriminator="mode"),
]


class TcpSettings(StrictModel):
    """What a device on the network needs beyond its framing (docs/PROTOCOLS.md, "Devices on
    the network"): bytes that keep the link alive, and how long a silent link may live."""

    # Sent whenever the agent has sent nothing for heartbeat_period_ms (a device that drops a
    # silent link, as the public sorter specs' hosts and devices do after 30 s).
    heartbeat: NonEmptyWire | None = None
    heartbeat_period_ms: int | None = Field(default=None, gt=0, le=3_600_000)
    # No bytes from the device for this long: the link is dead, make it again. A device that
    # sends a heartbeat of its own allows a few of its periods; one that talks only when a
    # parcel passes has none (a quiet line would reconnect all night).
    idle_timeout_ms: int | None = Field(default=None, gt=0, le=86_400_000)

    @model_validator(mode="after")
    def _heartbeat_whole(self) -> TcpSettings:
        if (self.heartbeat is None) != (self.heartbeat_period_ms is None):
            raise ValueError("heartbeat and heartbeat_period_ms go together")
        return self


class Polling(StrictModel):
    """What the agent sends. `request` every `period_ms` in mode "poll"; `startup` once the port
    opens (e.g. start continuous output, trigger on); `shutdown` before it closes."""

    mode: Literal["none", "poll", "continuous", "trigger"] = "none"
    period_ms: int | None = Field(default=None, gt=0, le=60_000)
    request: NonEmptyWire | None = None
    stable_request: NonEmptyWire | None = Field(
        default=None, description="Asks once for a stable weight (poll-after-scan pairing)"
    )
    startup: list[NonEmptyWire] = Field(default_factory=list)
    shutdown: list[NonEmptyWire] = Field(default_factory=list)
    commands: dict[str, NonEmptyWire] = Field(
        default_factory=dict, description="Named commands: zero, tare, trigger_on, trigger_off..."
    )

    @field_validator("commands")
    @classmethod
    def _command_names(cls, value: dict[str, bytes]) -> dict[str, bytes]:
        for name in value:
            if not re.fullmatch(r"[a-z][a-z0-9_]{0,31}", name):
                raise ValueError(f"command name {name!r} may hold only a-z, 0-9 and _")
        return value

    @model_validator(mode="after")
    def _poll_needs_request(self) -> Polling:
        if self.mode == "poll" and (self.request is None or self.period_ms is None):
            raise ValueError('mode "poll" needs both request and period_ms')
        return self


# --- decode settings, one model per protocol family -------------------------------------------


class MtSicsDecode(StrictModel):
    """Mettler Toledo MT-SICS replies (`S S     100.00 g`, `S D`, `S I`, `S +`, `Z A`, `ES`...)."""

    protocol: Literal["mt-sics"]


class ToledoDecode(StrictModel):
    """Toledo continuous output: STX, status A B C, 6-digit weight, 6-digit tare, CR [checksum]."""

    protocol: Literal["toledo"]
    checksum: bool = True
    # Status C bits 0-2: the value that means grams on terminals that use it (0 = never).
    gram_extension: int = Field(default=1, ge=0, le=7)


class NciDecode(StrictModel):
    """NCI / Weigh-Tronix SCP-01 and SCP-12 replies: `<LF>0012.34lb<CR><LF>hh<CR><ETX>`.

    The two status characters are 0x30-based bit fields. Which one is "byte 1" and which bit
    means what differs between manuals (unconfirmed), so both are settings.
    """

    protocol: Literal["nci"]
    status_byte1_first: bool = True
    motion_bit: int = Field(default=0, ge=0, le=5)  # in byte 1
    byte1_error_bits: tuple[Annotated[int, Field(ge=0, le=5)], ...] = (2, 3)  # RAM, EEPROM
    under_capacity_bit: int = Field(default=0, ge=0, le=5)  # in byte 2
    over_capacity_bit: int = Field(default=1, ge=0, le=5)  # in byte 2
    byte2_error_bits: tuple[Annotated[int, Field(ge=0, le=5)], ...] = (2, 3)  # ROM, calibration


class SmaDecode(StrictModel):
    """SMA SCP-0499 replies: `<LF><s><r><n><m><f><value:10><unit:3><CR>`."""

    protocol: Literal["sma"]


class AndDecode(StrictModel):
    """A&D standard format `ST,+00081.72  g` and the indicator form `ST,GS,+0012345kg`."""

    protocol: Literal["and"]


class ScannerDecode(StrictModel):
    """One barcode per frame, optional AIM symbology identifier, configurable no-read strings."""

    protocol: Literal["scanner"]
    # "auto": a leading `]` + letter + modifier is taken as the AIM id; "off": all of it is data.
    aim_ids: Literal["auto", "off"] = "auto"
    no_read: list[str] = Field(default_factory=lambda: ["NOREAD", "NR"])
    # Frames starting with one of these are replies to commands (Keyence `OK,LON`), not reads.
    reply_prefixes: list[str] = Field(default_factory=list)
    encoding: str = "latin-1"

    _known_encoding = field_validator("encoding")(_check_encoding)


# DWS units (dimensioning, weighing, scanning) deliver one record per parcel: see
# edge_agent.devices.dws and docs/PROTOCOLS.md, "DWS units".
WeightUnit = Literal["kg", "g", "lb"]
LengthUnit = Literal["mm", "cm", "in"]
VolumeUnit = Literal["cm3", "mm3", "m3", "in3"]


class DwsDelimitedDecode(StrictModel):
    """`barcode[,barcode...],weight,length,width,height[,volume][,timestamp]`, one per frame.

    The no-read markers stand for "no label" in a barcode field, and for "not measured" in a
    number field (as does an empty field).
    """

    protocol: Literal["dws-delimited"]
    delimiter: str = Field(default=",", min_length=1, max_length=1)
    no_read: list[str] = Field(default_factory=lambda: ["noread", "NoRead", "NOREAD", "?"])
    weight_unit: WeightUnit = "kg"
    length_unit: LengthUnit = "mm"
    volume: bool = Field(default=True, description="A volume field follows the height")
    volume_unit: VolumeUnit = "cm3"
    timestamp: bool = Field(default=True, description="A timestamp field ends the record")
    encoding: str = "latin-1"

    _known_encoding = field_validator("encoding")(_check_encoding)

    @field_validator("delimiter")
    @classmethod
    def _printable_delimiter(cls, value: str) -> str:
        if value in "\r\n0123456789.-+" or (not value.isprintable() and value != "\t"):
            raise ValueError(f"{value!r} cannot separate fields (digits, signs, line ends)")
        return value


CubiscanField = Literal[
    "skip", "id", "length", "width", "height", "dimension_unit", "weight", "dim_weight",
    "weight_unit", "dim_factor", "region",
]


class CubiscanDecode(StrictModel):
    """A Cubiscan-style measure reply: `<STX>MA<fields separated by commas><ETX><CR>`.

    The device's exact layout is not public here, so the fields are a setting: `fields` names
    each separated section in order. Value sections start with one tag letter (`L020.0`); a
    value led by `~` is over range, `_` under range (no value either way), `-` measured at low
    precision (kept, but not legal for trade). `id` is a section holding the item's barcode, for
    units whose reply carries one; without it the record has no label.
    """

    protocol: Literal["cubiscan"]
    separator: str = Field(default=",", min_length=1, max_length=1)
    fields: list[CubiscanField] = Field(
        default_factory=lambda: [
            "skip", "length", "width", "height", "dimension_unit", "weight", "dim_weight",
            "weight_unit", "dim_factor", "region",
        ],
        min_length=1,
    )
    # Units of the metric and English flags (unconfirmed: the public client does not say).
    metric_length_unit: LengthUnit = "cm"
    english_length_unit: LengthUnit = "in"
    metric_weight_unit: WeightUnit = "kg"
    english_weight_unit: WeightUnit = "lb"

    @model_validator(mode="after")
    def _one_of_each(self) -> CubiscanDecode:
        for name in set(self.fields) - {"skip"}:
            if self.fields.count(name) > 1:
                raise ValueError(f"fields: {name!r} appears more than once")
        for name in ("length", "width", "height", "weight"):
            if name not in self.fields:
                raise ValueError(f"fields: {name!r} is missing")
        return self


class GenericDivertDecode(StrictModel):
    """The `generic-divert` sorter protocol (edge_agent.devices.sorter_protocol)."""

    protocol: Literal["generic-divert"]


class SorterHostDecode(StrictModel):
    """The `sorter-host` protocol (edge_agent.devices.sorter_host): the sorter tracks parcels and
    asks the agent for destinations. The header's layout is the framing's; these are the rest."""

    protocol: Literal["sorter-host"]
    version: int = Field(default=1, ge=0, le=255, description="Sent in every header")
    # How long the sorter waits for a destination when its request names no deadline_ms.
    default_deadline_ms: int = Field(default=500, ge=1, le=60_000)


Decode = Annotated[
    MtSicsDecode
    | ToledoDecode
    | NciDecode
    | SmaDecode
    | AndDecode
    | ScannerDecode
    | DwsDelimitedDecode
    | CubiscanDecode
    | GenericDivertDecode
    | SorterHostDecode,
    Field(discriminator="protocol"),
]

PROTOCOL_KIND = {
    "mt-sics": "scale",
    "toledo": "scale",
    "nci": "scale",
    "sma": "scale",
    "and": "scale",
    "scanner": "scanner",
    "dws-delimited": "dws",
    "cubiscan": "dws",
    "generic-divert": "sorter",
    "sorter-host": "sorter",
}


class Profile(StrictModel):
    """One device model. Validated when loaded; immutable afterwards."""

    name: str = Field(pattern=NAME_PATTERN)
    kind: Literal["scanner", "scale", "dws", "sorter"]
    vendor: str = Field(min_length=1)
    description: str = Field(min_length=1)
    line: LineSettings = LineSettings()
    framing: Framing
    polling: Polling = Polling()
    decode: Decode
    tcp: TcpSettings = TcpSettings()

    _source: str = PrivateAttr(default="")

    @model_validator(mode="after")
    def _consistent(self) -> Profile:
        protocol_kind = PROTOCOL_KIND[self.decode.protocol]
        if protocol_kind != self.kind:
            raise ValueError(
                f"decode.protocol {self.decode.protocol!r} is for a {protocol_kind}, "
                f"but kind is {self.kind!r}"
            )
        if isinstance(self.decode, SorterHostDecode) != isinstance(
                self.framing, LengthHeaderFraming):
            raise ValueError('sorter-host goes with framing mode "length_header", and only it')
        if isinstance(self.framing, LengthHeaderFraming) and isinstance(
                self.decode, SorterHostDecode):
            marker = len(self.framing.start)  # then version, type, sequence (4), length (4)
            if (self.framing.header_length, self.framing.length_offset,
                    self.framing.length_size) != (marker + 10, marker + 6, 4):
                raise ValueError(
                    f"sorter-host's header is the start marker, version (1), type (1), "
                    f"sequence (4) and length (4): header_length = {marker + 10}, "
                    f"length_offset = {marker + 6}, length_size = 4")
        if isinstance(self.decode, ToledoDecode):
            want = 1 if self.decode.checksum else 0
            if not isinstance(self.framing, StxEtxFraming) or self.framing.trailer_length != want:
                raise ValueError(
                    f'toledo needs framing mode "stx_etx" with trailer_length = {want} '
                    f"(the checksum byte after CR is {'on' if want else 'off'})"
                )
        return self

    @property
    def source(self) -> str:
        """Where the profile was read from (a file path), for messages."""
        return self._source

    @property
    def summary(self) -> str:
        """The first line of the description."""
        return self.description.strip().splitlines()[0]

    def serial_kwargs(self, baudrate: int | None = None) -> dict[str, Any]:
        """Keyword arguments for serial.Serial(...) (port and timeouts are the caller's).

        The values are pyserial's own: parity 'N'/'E'/'O', stopbits 1/1.5/2, bytesize 5-8.
        """
        line = self.line
        return {
            "baudrate": baudrate or line.baudrate,
            "bytesize": line.bytesize,
            "parity": line.parity,
            "stopbits": line.stopbits,
            "xonxoff": line.flow_control == "xonxoff",
            "rtscts": line.flow_control == "rtscts",
            "dsrdtr": False,
        }


# --- loading -------------------------------------------------------------------------------------


# The tagged unions a profile holds, for naming a bad or missing tag (see validation.UnionTag).
PROFILE_UNIONS = {
    "framing": UnionTag("mode", ("terminator", "stx_etx", "fixed_length", "idle_gap",
                                 "length_header")),
    "decode": UnionTag("protocol", tuple(PROTOCOL_KIND)),
}


def _problems(exc: ValidationError) -> list[str]:
    """`field.path: message` lines, without pydantic's union tags in the path."""
    return problems_from(exc, plain=True, unions=PROFILE_UNIONS)


def _parse(source: str, data: bytes, expected_name: str | None) -> Profile:
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ProfileError(source, [f"not UTF-8 text ({exc.reason})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(source, [f"not valid TOML: {exc}"]) from None
    try:
        profile = Profile.model_validate(document)
    except ValidationError as exc:
        raise ProfileError(source, _problems(exc)) from None
    if expected_name is not None and profile.name != expected_name:
        raise ProfileError(
            source, [f"name: {profile.name!r} differs from the file name {expected_name!r}"]
        )
    profile._source = source
    return profile


def load_profile_file(path: Path) -> Profile:
    """Read and validate one profile file; its `name` must match the file name."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ProfileError(str(path), ["file not found"]) from None
    except IsADirectoryError:
        raise ProfileError(str(path), ["is a directory, not a file"]) from None
    except OSError as exc:
        raise ProfileError(str(path), [exc.strerror or str(exc)]) from None
    return _parse(str(path), data, path.stem)


def profile_dirs(search_path: Sequence[Path | Traversable] | None = None) -> list[Traversable]:
    """The given directories; by default EDGE_AGENT_PROFILE_PATH's, then the packaged profiles."""
    if search_path is not None:
        return list(search_path)
    dirs: list[Traversable] = [
        Path(part) for part in os.environ.get(PROFILE_PATH_ENV, "").split(os.pathsep) if part
    ]
    dirs.append(resources.files(PACKAGED_PROFILES))
    return dirs


def available_profiles(search_path: Sequence[Path] | None = None) -> list[str]:
    """Every profile name on the search path, sorted (file names; contents not checked)."""
    names = set()
    for directory in profile_dirs(search_path):
        try:
            entries = list(directory.iterdir())
        except OSError:
            continue  # a directory on the path that does not exist (yet) holds no profiles
        names.update(
            entry.name.removesuffix(".toml")
            for entry in entries
            if entry.name.endswith(".toml") and entry.is_file()
        )
    return sorted(names)


def load_profile(name: str, search_path: Sequence[Path] | None = None) -> Profile:
    """The profile NAME from the first directory on the search path that has NAME.toml."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise ProfileError(repr(name), ["not a profile name (lower-case letters, digits, . _ -)"])
    for directory in profile_dirs(search_path):
        entry = directory / f"{name}.toml"
        if entry.is_file():
            if isinstance(entry, Path):
                return load_profile_file(entry)
            return _parse(str(entry), entry.read_bytes(), name)
    known = ", ".join(available_profiles(search_path)) or "none"
    raise ProfileError(repr(name), [f"unknown firmware profile (known: {known})"])
