"""The `sorter-host` protocol: the sorter tracks each parcel and asks the agent where it goes.

Modelled on the public shape of Chinese sorter host interfaces (docs/PROTOCOLS.md, "Sorters":
JD Logistics' standard sorter protocol V4.0.7, the ZTO and Cainiao documents): a binary header
with type, sequence number and length, a JSON body, heartbeats and acknowledgements. Not any
vendor's bytes (those are not public): the start marker is a profile setting.

Every message: header, big-endian, then a UTF-8 JSON object of `length` bytes.
    start marker (profile, default A5 5A) | version (1) | type (1) | sequence (4) | length (4)
Types, and who sends them:
    0x01 HEARTBEAT  sorter -> agent, every few seconds; answered with an ACK. Body {}.
    0x02 ACK        both ways: `sequence` is the acknowledged message's. Body {}.
    0x10 REQUEST    sorter -> agent: a parcel's destination request.
         {"tracking": "T000123", "barcodes": ["RB123456785GB"], "weight_kg": 1.25,
          "length_mm": 300, "width_mm": 200, "height_mm": 100, "pass": 1, "deadline_ms": 500}
         tracking: 1-64 printable characters, the sorter's number for the parcel (kept over its
         passes); barcodes: every label read, [] for a no-read; measurements absent or null
         when not measured; pass: 1 on the first pass, +1 per round; deadline_ms: how long the
         sorter waits for the answer (default: the profile's default_deadline_ms).
    0x11 REPLY      agent -> sorter, with the request's sequence number (it is the answer):
         {"tracking": "T000123", "chutes": [1], "fallback": 4, "barcode": "RB123456785GB",
          "late": false}
         chutes: in order of preference; fallback: where it goes when none can take it (the
         exception chute); barcode: the label the agent chose (null for none); late: true when
         the answer was made after the deadline (the chutes are then the exception chute).
         Not acknowledged: a sorter that gets no reply re-sends the request unchanged (same
         sequence) and receives the same reply again, never a second decision.
    0x12 RESULT     sorter -> agent, acknowledged with an ACK (re-sent unchanged until then):
         {"tracking": "T000123", "status": "sorted", "chute": 1, "pass": 1, "final": true,
          "time": "2026-12-03T04:05:06.123Z"}
         status: sorted, too_late, chute_full, chute_disabled, chute_jammed, recirculated,
         tracking_lost, recirculation_limit; chute: where it went (null: nowhere/unknown);
         final: false for an intermediate report (e.g. recirculated before the next pass).
Anything else (an unknown type, a body that is not such an object) is a DecodeError naming the
problem; the port keeps reading.
"""

from __future__ import annotations

import json
import math
import struct
from datetime import datetime
from typing import Any

from edge_agent.devices.framing import Frame
from edge_agent.devices.messages import (
    DecodeError,
    DestinationRequest,
    LinkMessage,
    Message,
    SortReport,
)
from edge_agent.devices.profiles import SorterHostDecode

HEARTBEAT, ACK, REQUEST, REPLY, RESULT = 0x01, 0x02, 0x10, 0x11, 0x12
# After the start marker: version, type, sequence, length.
_HEADER_TAIL = struct.Struct(">BBII")
MAX_TRACKING_CHARS = 64
MAX_BARCODES = 16
MAX_BARCODE_CHARS = 128
MAX_PASS = 999
MIN_CHUTE, MAX_CHUTE = 1, 99
# The sorter's words for a result, and the outcome each one is.
RESULT_STATUSES = {
    "sorted": "sorted", "too_late": "too_late", "chute_full": "bin_full",
    "chute_disabled": "bin_disabled", "chute_jammed": "bin_jammed",
    "recirculated": "recirculated", "tracking_lost": "tracking_lost",
    "recirculation_limit": "recirculation_limit",
}


class BodyError(ValueError):
    """A field of a body is missing or wrong; the message names it."""


def encode_message(start: bytes, version: int, kind: int, seq: int,
                   body: dict[str, Any] | None = None) -> bytes:
    """One whole message: header and compact JSON body."""
    payload = json.dumps(body or {}, separators=(",", ":"), ensure_ascii=False).encode()
    return start + _HEADER_TAIL.pack(version, kind, seq & 0xFFFFFFFF, len(payload)) + payload


def _text(body: dict, name: str, limit: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not 1 <= len(value) <= limit or not value.isprintable():
        raise BodyError(f"{name}: must be 1-{limit} printable characters")
    return value


def _number(body: dict, name: str) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
            or value < 0:
        raise BodyError(f"{name}: must be a number >= 0 or null")
    return float(value)


def _whole(body: dict, name: str, low: int, high: int, default: int | None = None) -> int:
    value = body.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise BodyError(f"{name}: must be a whole number from {low} to {high}")
    return value


def _request(seq: int, body: dict, settings: SorterHostDecode, frame: Frame) -> Message:
    barcodes = body.get("barcodes", [])
    if not isinstance(barcodes, list) or len(barcodes) > MAX_BARCODES or not all(
            isinstance(b, str) and 1 <= len(b) <= MAX_BARCODE_CHARS for b in barcodes):
        raise BodyError(f"barcodes: must be a list of at most {MAX_BARCODES} labels of "
                        f"1-{MAX_BARCODE_CHARS} characters")
    return DestinationRequest(
        seq, _text(body, "tracking", MAX_TRACKING_CHARS), tuple(dict.fromkeys(barcodes)),
        _number(body, "weight_kg"), _number(body, "length_mm"), _number(body, "width_mm"),
        _number(body, "height_mm"), _whole(body, "pass", 1, MAX_PASS, 1),
        _whole(body, "deadline_ms", 1, 60_000, settings.default_deadline_ms),
        frame.raw, frame.received_ns)


def _result(seq: int, body: dict, frame: Frame) -> Message:
    status = body.get("status")
    if status not in RESULT_STATUSES:
        raise BodyError(f"status: must be one of {', '.join(RESULT_STATUSES)}")
    chute = body.get("chute")
    if chute is not None:
        chute = _whole(body, "chute", MIN_CHUTE, MAX_CHUTE)
    final = body.get("final", True)
    if not isinstance(final, bool):
        raise BodyError("final: must be true or false")
    time = body.get("time")
    if time is not None:
        if not isinstance(time, str) or not time.endswith("Z"):
            raise BodyError("time: must be ISO-8601 UTC ending in Z")
        try:
            datetime.fromisoformat(time[:-1] + "+00:00")
        except ValueError:
            raise BodyError("time: must be ISO-8601 UTC ending in Z") from None
    return SortReport(seq, _text(body, "tracking", MAX_TRACKING_CHARS), RESULT_STATUSES[status],
                      chute, _whole(body, "pass", 1, MAX_PASS, 1), final, time,
                      frame.raw, frame.received_ns)


class SorterHostDecoder:
    def __init__(self, settings: SorterHostDecode, start_length: int = 2):
        self.settings = settings
        self._start_length = start_length

    def decode(self, frame: Frame) -> Message:
        raw = frame.raw
        header_end = self._start_length + _HEADER_TAIL.size
        version, kind, seq, _ = _HEADER_TAIL.unpack_from(raw, self._start_length)
        if version != self.settings.version:
            return DecodeError(f"protocol version {version}, expected {self.settings.version}",
                               raw, frame.received_ns)
        try:
            body = json.loads(raw[header_end:].decode("utf-8")) if len(raw) > header_end else {}
        except (UnicodeDecodeError, ValueError) as exc:
            return DecodeError(f"type 0x{kind:02x} seq {seq}: body is not JSON ({exc})",
                               raw, frame.received_ns)
        if not isinstance(body, dict):
            return DecodeError(f"type 0x{kind:02x} seq {seq}: body is not a JSON object",
                               raw, frame.received_ns)
        try:
            if kind in (HEARTBEAT, ACK):
                return LinkMessage(seq, kind == HEARTBEAT, raw, frame.received_ns)
            if kind == REQUEST:
                return _request(seq, body, self.settings, frame)
            if kind == RESULT:
                return _result(seq, body, frame)
        except BodyError as exc:
            return DecodeError(f"type 0x{kind:02x} seq {seq}: {exc}", raw, frame.received_ns)
        return DecodeError(f"unknown message type 0x{kind:02x} (seq {seq})", raw,
                           frame.received_ns)
