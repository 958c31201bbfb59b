"""The `generic-divert` sorter protocol, both directions.

ASCII lines ending in CR LF, 9600 8N1.
- Agent to sorter: `DIV <parcel_id> <bin> [<label>]`: divert this parcel into this bin.
  parcel_id: 1-32 characters of [0-9A-Za-z_-] (a UUID goes as its 32 hex digits); bin: 1-99;
  label (optional): the barcode read, for the sorter's own tracking and records, with every
  byte outside `!`..`~` and `%` itself written as %XX (so `<GS>` is %1D); at most 96 characters,
  left out when longer or when there was no read.
- Sorter to agent:
  `ACK <parcel_id> <bin>`                  the command is accepted   -> SorterAck(accepted=True)
  `NAK <parcel_id> <bin> <reason words>`   the command is refused    -> SorterAck(accepted=False)
  `FULL <bin>`                             the bin is full           -> LaneFull(full=True)
  `CLEAR <bin>`                            the bin takes parcels again -> LaneFull(full=False)
  Confirmations, after the ACK, at most one per parcel (-> SorterOutcome): what finally
  happened to it. <bin> repeats the commanded bin; <time> is the sorter's UTC clock as
  `YYYY-MM-DDTHH:MM:SS[.ffffff]Z`; <actual> is the bin the parcel dropped into, or `-`.
  `SORTED <parcel_id> <bin> <time>`                      dropped into its bin  -> sorted
  `LATE <parcel_id> <bin> <actual>`                      the command came too late -> too_late
  `REDIRECT <parcel_id> <bin> FULL|DISABLED|JAMMED <actual> [<time>]`
                                                         its bin could not take it, it went
                                                         to <actual> -> bin_full, bin_disabled,
                                                         bin_jammed
  `RECIRC <parcel_id> <bin> <pass>`                      sent round again (pass 1-99)
                                                         -> recirculated
  `LOST <parcel_id> <bin>`                               tracking lost -> tracking_lost
  A sorter that sends only ACKs still works: the agent records `no_confirmation` for a parcel
  with no confirmation within `sorter.confirm_timeout_ms`.
  Anything else is a DecodeError.
The pseudo-terminal simulator (edge_agent.devices.simulators) speaks the sorter's side.
"""

from __future__ import annotations

import re
from datetime import datetime

from edge_agent.devices.framing import Frame
from edge_agent.devices.messages import (
    DecodeError,
    LaneFull,
    Message,
    SorterAck,
    SorterOutcome,
)
from edge_agent.devices.profiles import GenericDivertDecode

PARCEL_ID_PATTERN = r"[0-9A-Za-z_-]{1,32}"
MIN_BIN, MAX_BIN = 1, 99
LINE_END = b"\r\n"
MAX_LABEL_CHARS = 96

_PARCEL_ID = re.compile(PARCEL_ID_PATTERN)
_ACK_NAK = re.compile(
    rb"(ACK|NAK) +(" + PARCEL_ID_PATTERN.encode() + rb") +([0-9]{1,2})(?: +(.*))?"
)
_LANE = re.compile(rb"(FULL|CLEAR) +([0-9]{1,2})")
_PID_BIN = rb" +(" + PARCEL_ID_PATTERN.encode() + rb") +([0-9]{1,2})"
_TIME = rb"([0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z)"
_ACTUAL = rb"([0-9]{1,2}|-)"
_CONFIRMATIONS = {
    b"SORTED": re.compile(rb"SORTED" + _PID_BIN + rb" +" + _TIME),
    b"LATE": re.compile(rb"LATE" + _PID_BIN + rb" +" + _ACTUAL),
    b"REDIRECT": re.compile(
        rb"REDIRECT" + _PID_BIN + rb" +(FULL|DISABLED|JAMMED) +" + _ACTUAL
        + rb"(?: +" + _TIME + rb")?"),
    b"RECIRC": re.compile(rb"RECIRC" + _PID_BIN + rb" +([0-9]{1,2})"),
    b"LOST": re.compile(rb"LOST" + _PID_BIN),
}
_REDIRECT_OUTCOMES = {b"FULL": "bin_full", b"DISABLED": "bin_disabled", b"JAMMED": "bin_jammed"}


def encode_label(barcode: str) -> str:
    """The barcode as one space-free printable token (%XX for anything else, and for %)."""
    if barcode.isascii() and barcode.isprintable() and " " not in barcode and "%" not in barcode:
        return barcode  # the usual label, already a token: skip the per-character walk
    return "".join(
        char if "!" <= char <= "~" and char != "%" else
        "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
        for char in barcode
    )


def encode_divert(parcel_id: str, bin: int, barcode: str | None = None) -> bytes:
    """`DIV <parcel_id> <bin> [<label>]` CR LF; ValueError for an id or bin it cannot carry."""
    if not isinstance(parcel_id, str) or not _PARCEL_ID.fullmatch(parcel_id):
        raise ValueError(f"parcel id {parcel_id!r} is not 1-32 characters of [0-9A-Za-z_-]")
    if isinstance(bin, bool) or not isinstance(bin, int) or not MIN_BIN <= bin <= MAX_BIN:
        raise ValueError(f"bin {bin!r} is not a number from {MIN_BIN} to {MAX_BIN}")
    command = b"DIV %s %d" % (parcel_id.encode("ascii"), bin)
    if barcode:
        label = encode_label(barcode)
        if len(label) <= MAX_LABEL_CHARS:
            command += b" " + label.encode("ascii")
    return command + LINE_END


class GenericDivertDecoder:
    def __init__(self, settings: GenericDivertDecode):
        self.settings = settings

    def decode(self, frame: Frame) -> Message:
        line = frame.body.strip(b" \r\n")
        match = _ACK_NAK.fullmatch(line)
        if match is not None:
            verb, parcel_id, bin_text, reason = match.groups()
            bin = int(bin_text)
            if not MIN_BIN <= bin <= MAX_BIN:
                return DecodeError(f"bin {bin} out of range", frame.raw, frame.received_ns)
            if verb == b"ACK" and reason:
                return DecodeError("ACK with trailing words", frame.raw, frame.received_ns)
            accepted = verb == b"ACK"
            return SorterAck(parcel_id.decode(), bin, accepted, frame.raw, frame.received_ns)
        match = _LANE.fullmatch(line)
        if match is not None:
            verb, bin_text = match.groups()
            bin = int(bin_text)
            if not MIN_BIN <= bin <= MAX_BIN:
                return DecodeError(f"bin {bin} out of range", frame.raw, frame.received_ns)
            return LaneFull(bin, verb == b"FULL", frame.raw, frame.received_ns)
        verb = line.split(b" ", 1)[0]
        pattern = _CONFIRMATIONS.get(verb)
        if pattern is not None:
            return _confirmation(verb, pattern.fullmatch(line), frame)
        return DecodeError(
            f"not a generic-divert reply: {line[:40]!r}", frame.raw, frame.received_ns
        )


def _bin_or_none(text: bytes | None) -> int | None:
    return None if text is None or text == b"-" else int(text)


def _confirmation(verb: bytes, match: re.Match[bytes] | None, frame: Frame) -> Message:
    """One confirmation line as a SorterOutcome, or a DecodeError naming what is wrong."""
    if match is None:
        return DecodeError(f"malformed {verb.decode()} confirmation: {frame.body[:60]!r}",
                           frame.raw, frame.received_ns)
    groups = match.groups()
    parcel_id, bin = groups[0].decode(), int(groups[1])
    actual = pass_count = time = None
    if verb == b"SORTED":
        outcome, actual, time = "sorted", bin, groups[2]
    elif verb == b"LATE":
        outcome, actual = "too_late", _bin_or_none(groups[2])
    elif verb == b"REDIRECT":
        outcome, actual, time = _REDIRECT_OUTCOMES[groups[2]], _bin_or_none(groups[3]), groups[4]
    elif verb == b"RECIRC":
        outcome, pass_count = "recirculated", int(groups[2])
        if pass_count < 1:
            return DecodeError("RECIRC pass count 0", frame.raw, frame.received_ns)
    else:
        outcome = "tracking_lost"
    for value in (bin, actual):
        if value is not None and not MIN_BIN <= value <= MAX_BIN:
            return DecodeError(f"bin {value} out of range", frame.raw, frame.received_ns)
    sorter_time = None
    if time is not None:
        sorter_time = time.decode()
        try:  # the pattern admits 2026-13-45: only a real instant is kept
            datetime.fromisoformat(sorter_time.replace("Z", "+00:00"))
        except ValueError:
            return DecodeError(f"not a time: {sorter_time!r}", frame.raw, frame.received_ns)
    return SorterOutcome(parcel_id, outcome, bin, actual, pass_count, sorter_time,
                         frame.raw, frame.received_ns)
