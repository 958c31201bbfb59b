"""Scale protocol decoders: one complete frame in, one message out.

Every decoder returns a message and never raises on device input: a frame it cannot make sense
of becomes a DecodeError naming why. Replies that are not readings (zero done, tare, device error
codes such as MT-SICS `ES`) become DeviceReply with the reply's text as sent.

A weight the scale could not give (MT-SICS `S I`: busy or no stability before its timeout; `S +`,
NCI `^^^^^^`, A&D `OL`...) is a Weight with value None, stable False and a status saying why,
so whoever asked for a weight gets an answer at once instead of waiting for a timeout. Whenever
the status is not ok, stable is False (the value is kept when the device still sent digits).
"""

from __future__ import annotations

import re

from edge_agent.devices.framing import Frame
from edge_agent.devices.messages import DecodeError, DeviceReply, Message, Weight, WeightStatus
from edge_agent.devices.profiles import AndDecode, MtSicsDecode, NciDecode, SmaDecode, ToledoDecode

# Kilograms per unit, for the units scales report (names as sent, compared in lower case).
KG_PER_UNIT = {
    "kg": 1.0,
    "g": 0.001,
    "mg": 0.000001,
    "t": 1000.0,
    "lb": 0.45359237,
    "lbs": 0.45359237,
    "oz": 0.028349523125,
    "ozt": 0.0311034768,
    "ct": 0.0002,
}
KG_DECIMALS = 9  # keeps float noise out of value_kg (0.1 mg resolution needs only 7)


def make_weight(
    frame: Frame,
    value: float | None,
    unit: str,
    stable: bool,
    status: WeightStatus = WeightStatus.OK,
    net: bool = False,
) -> Weight | DecodeError:
    """A Weight with value_kg converted, or a DecodeError for a unit we cannot convert."""
    unit = unit.strip()
    value_kg = None
    if value is not None:
        factor = KG_PER_UNIT.get(unit.lower())
        if factor is None:
            return DecodeError(f"unknown unit {unit!r}", frame.raw, frame.received_ns)
        value_kg = round(value * factor, KG_DECIMALS)
    return Weight(value, unit, value_kg, stable, status, net, frame.raw, frame.received_ns)


def no_weight(frame: Frame, status: WeightStatus, unit: str = "") -> Weight:
    """The scale answered but has no weight to give (overload, underload, error)."""
    return Weight(None, unit.strip(), None, False, status, False, frame.raw, frame.received_ns)


def _error(frame: Frame, reason: str) -> DecodeError:
    return DecodeError(reason, frame.raw, frame.received_ns)


def _reply(frame: Frame, text: str) -> DeviceReply:
    return DeviceReply(text, frame.raw, frame.received_ns)


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


# --- Mettler Toledo MT-SICS ---------------------------------------------------------------------

# Replies that are not weights: zero, tare, cancel, identification, reset, errors (ES syntax,
# ET transmission, EL logical).
MTSICS_REPLY_IDS = frozenset(
    {"Z", "ZI", "T", "TA", "TAC", "TI", "C", "@", "D", "DW", "K", "ES", "ET", "EL"}
    | {f"I{n}" for n in range(0, 30)}
)
MTSICS_WEIGHT_IDS = frozenset({"S", "SI", "SIR"})  # S, SI and SIR replies all start with S
_MTSICS_NO_WEIGHT = {
    "I": WeightStatus.ERROR,  # not executable: busy, or no stable weight before the timeout
    "+": WeightStatus.OVERLOAD,
    "-": WeightStatus.UNDERLOAD,
}


class MtSicsDecoder:
    """`S S     100.00 g` stable, `S D ...` in motion, `S I`/`S +`/`S -` no weight."""

    def __init__(self, settings: MtSicsDecode):
        self.settings = settings

    def decode(self, frame: Frame) -> Message:
        text = frame.body.decode("ascii", "replace").strip()
        tokens = text.split()
        if not tokens:
            return _error(frame, "empty reply")
        ident = tokens[0]
        if ident in MTSICS_WEIGHT_IDS:
            status = tokens[1] if len(tokens) > 1 else ""
            if status in _MTSICS_NO_WEIGHT and len(tokens) == 2:
                return no_weight(frame, _MTSICS_NO_WEIGHT[status])
            if status in ("S", "D"):
                if len(tokens) >= 3 and tokens[2].lower() == "error":
                    return no_weight(frame, WeightStatus.ERROR)  # weigh module fault code
                if len(tokens) < 4:
                    return _error(frame, "weight reply without value and unit")
                value = _number("".join(tokens[2:-1]))  # tolerate a space after the sign
                if value is None:
                    return _error(frame, f"bad weight value {' '.join(tokens[2:-1])!r}")
                return make_weight(frame, value, tokens[-1], stable=status == "S")
            return _error(frame, f"unknown weight status {status!r}")
        if ident in MTSICS_REPLY_IDS:
            return _reply(frame, text)
        return _error(frame, f"unknown reply {ident!r}")


# --- Toledo continuous output -------------------------------------------------------------------

TOLEDO_BODY = 15  # status A, B, C, 6 weight digits, 6 tare digits (between STX and CR)


def toledo_checksum(data: bytes) -> int:
    """Two's complement of the low 7 bits of the sum of the bytes (STX to CR)."""
    return -sum(data) & 0x7F


class ToledoDecoder:
    """STX, status A B C, 6-digit weight, 6-digit tare, CR, optional checksum.

    Decimal point, sign, unit, motion and net come from the status bytes; the digits may be
    space- or zero-padded. Out of range reads as overload (underload when the sign is negative).
    Devices sending 7E1 need the profile's `line.mask_bit7` (or a 7-bit line) so that the parity
    bit is cleared before framing.
    """

    def __init__(self, settings: ToledoDecode):
        self.settings = settings

    def decode(self, frame: Frame) -> Message:
        settings = self.settings
        raw, body = frame.raw, frame.body
        if len(body) != TOLEDO_BODY:
            return _error(frame, f"{len(body)} bytes between STX and CR, expected {TOLEDO_BODY}")
        if settings.checksum:
            want, got = toledo_checksum(raw[:-1]), raw[-1]
            if want != got:
                return _error(frame, f"checksum {got:#04x}, expected {want:#04x}")
        status_a, status_b, status_c = body[0], body[1], body[2]
        net = bool(status_b & 0x01)
        negative = bool(status_b & 0x02)
        out_of_range = bool(status_b & 0x04)
        motion = bool(status_b & 0x08)
        not_zeroed = bool(status_b & 0x40)  # power-up and not yet zeroed: weights unreliable
        extension = status_c & 0x07
        if settings.gram_extension and extension == settings.gram_extension:
            unit = "g"
        else:
            unit = "kg" if status_b & 0x10 else "lb"
        if out_of_range:
            status = WeightStatus.UNDERLOAD if negative else WeightStatus.OVERLOAD
        elif not_zeroed:
            status = WeightStatus.ERROR
        else:
            status = WeightStatus.OK
        digits = body[3:9].strip(b" ")
        if not digits.isdigit():
            if status is not WeightStatus.OK:
                return no_weight(frame, status, unit)
            return _error(frame, f"weight digits {body[3:9]!r} are not a number")
        shift = 2 - (status_a & 0x07)  # position code 0 = XXXX00 ... 7 = X.XXXXX
        count = int(digits)
        value = float(count * 10**shift) if shift >= 0 else round(count / 10**-shift, -shift)
        if negative:
            value = -value
        stable = not motion and status is WeightStatus.OK
        return make_weight(frame, value, unit, stable, status, net)


# --- NCI / Weigh-Tronix SCP-01 and SCP-12 -------------------------------------------------------

_NCI_WEIGHT = re.compile(r"\s*([-+]?)\s*([0-9]*\.?[0-9]+|\^+|_+|-+)\s*([A-Za-z]*)\s*")
_NCI_LINES = re.compile(rb"[\r\n]+")


class NciDecoder:
    """`<LF>0012.34lb<CR><LF>hh<CR><ETX>` (W), `<LF>hh<CR><ETX>` (S), `<LF>?<CR><ETX>` (unknown).

    SCP-12 (`<LF>pxxx.xxUU<CR>hh<ETX>`) decodes the same way: the lines are split on CR and LF.
    """

    def __init__(self, settings: NciDecode):
        self.settings = settings

    def _status(self, chars: bytes) -> tuple[bool, WeightStatus, list[str]] | str:
        """(in motion, status, flag names) from the status characters, or a reason."""
        if len(chars) < 2 or any(byte & 0x30 != 0x30 for byte in chars):
            return f"bad status bytes {chars!r}"
        s = self.settings
        byte1, byte2 = (chars[0], chars[1]) if s.status_byte1_first else (chars[1], chars[0])
        flags = []
        motion = bool(byte1 >> s.motion_bit & 1)
        if motion:
            flags.append("motion")
        status = WeightStatus.OK
        if any(byte1 >> bit & 1 for bit in s.byte1_error_bits) or any(
            byte2 >> bit & 1 for bit in s.byte2_error_bits
        ):
            status = WeightStatus.ERROR
            flags.append("error")
        if byte2 >> s.over_capacity_bit & 1:
            status = WeightStatus.OVERLOAD
            flags.append("over capacity")
        if byte2 >> s.under_capacity_bit & 1:
            status = WeightStatus.UNDERLOAD
            flags.append("under capacity")
        return motion, status, flags

    def decode(self, frame: Frame) -> Message:
        lines = [line for line in _NCI_LINES.split(frame.body) if line.strip()]
        if lines == [b"?"]:
            return _reply(frame, "?")  # the scale did not understand the command
        if len(lines) not in (1, 2):
            return _error(frame, f"expected a weight and a status line, got {len(lines)} lines")
        decoded = self._status(lines[-1].strip())
        if isinstance(decoded, str):
            return _error(frame, decoded)
        motion, status, flags = decoded
        if len(lines) == 1:
            status_text = lines[0].strip().decode("latin-1")
            return _reply(
                frame, f"status {status_text}" + (": " + ", ".join(flags) if flags else "")
            )
        match = _NCI_WEIGHT.fullmatch(lines[0].decode("latin-1"))
        if match is None:
            return _error(frame, f"bad weight line {lines[0]!r}")
        sign, digits, unit = match.groups()
        if not unit:
            return _error(frame, "weight without unit")
        marker = {"^": WeightStatus.OVERLOAD, "_": WeightStatus.UNDERLOAD, "-": WeightStatus.ERROR}
        if digits[0] in marker:  # ^^^^^^ over, ______ under, ------ zero error
            return no_weight(
                frame, status if status is not WeightStatus.OK else marker[digits[0]], unit
            )
        value = float(sign + digits)
        if status is not WeightStatus.OK:
            return make_weight(frame, value, unit, stable=False, status=status)
        return make_weight(frame, value, unit, stable=not motion)


# --- SMA SCP-0499 -------------------------------------------------------------------------------

_SMA_STATUS = {
    " ": WeightStatus.OK,
    "Z": WeightStatus.OK,  # centre of zero
    "O": WeightStatus.OVERLOAD,
    "U": WeightStatus.UNDERLOAD,
    "E": WeightStatus.ERROR,  # zero error
    "I": WeightStatus.ERROR,  # initial zero error
    "T": WeightStatus.ERROR,  # tare error
}
_SMA_ABOUT = re.compile(r"[A-Z]{3}:")  # "about" lines of the A and B commands, e.g. SMA:2/1.0


class SmaDecoder:
    """`<LF><s><r><n><m><f><value:10><unit:3><CR>`, e.g. `<LF> 1G       5.025lb <CR>`."""

    def __init__(self, settings: SmaDecode):
        self.settings = settings

    def decode(self, frame: Frame) -> Message:
        text = frame.body.decode("latin-1")
        if text.strip() == "?":
            return _reply(frame, "?")  # command not understood
        if len(text) < 16 or text[2] not in "GNTgnt":
            if _SMA_ABOUT.match(text.strip()):
                return _reply(frame, text.strip())
            return _error(frame, f"not an SMA weight reply: {text!r}")
        state, mode, motion = text[0], text[2], text[3]
        status = _SMA_STATUS.get(state)
        if status is None:
            return _error(frame, f"unknown status {state!r}")
        if motion not in " M":
            return _error(frame, f"unknown motion flag {motion!r}")
        value_text, unit = text[5:15].strip(), text[15:].strip()
        if mode in "Tt":
            return _reply(frame, f"tare {value_text} {unit}".strip())
        if not value_text or set(value_text) <= {"-", "."}:
            if status is WeightStatus.OK:
                return _error(frame, "no weight digits")
            return no_weight(frame, status, unit)
        value = _number(value_text)
        if value is None:
            return _error(frame, f"bad weight value {value_text!r}")
        stable = motion == " " and status is WeightStatus.OK
        return make_weight(frame, value, unit, stable, status, net=mode in "Nn")


# --- A&D ----------------------------------------------------------------------------------------

_AND_VALUE = re.compile(r"\s*([+-]?)\s*([0-9]+(?:\.[0-9]*)?|\.[0-9]+)\s*([A-Za-z%]*)\s*")
_AND_UNIT = re.compile(r"([A-Za-z%]+)\s*$")
_AND_REPLY_HEADERS = frozenset({"EC", "ID", "SN", "TN", "PN"})  # error codes, identification
_ACK = b"\x06"


class AndDecoder:
    """`ST,+00081.72  g` (balances), `ST,GS,+0012345kg` (indicators); ST stable, US unstable,
    OL overload, QT counting; second header GS gross, NT net, TR tare."""

    def __init__(self, settings: AndDecode):
        self.settings = settings

    def decode(self, frame: Frame) -> Message:
        body = frame.body.lstrip(_ACK)  # with acknowledgement on, commands answer <AK>
        if not body.strip():
            return _reply(frame, "ACK") if frame.body.startswith(_ACK) else _error(frame, "empty")
        text = body.decode("latin-1").strip()
        fields = text.split(",")
        header = fields[0]
        if header in _AND_REPLY_HEADERS:
            return _reply(frame, text)
        if header not in ("ST", "US", "OL", "QT") or len(fields) not in (2, 3):
            return _error(frame, f"unknown reply {text!r}")
        mode = fields[1] if len(fields) == 3 else "GS"
        if mode not in ("GS", "NT", "TR"):
            return _error(frame, f"unknown weight mode {mode!r}")
        if header == "QT" or mode == "TR":
            return _reply(frame, text)  # a count or the tare, not a parcel's weight
        value_text = fields[-1]
        if header == "OL":
            under = value_text.lstrip().startswith("-")
            unit_match = _AND_UNIT.search(value_text)  # none in `+9999999E+19`
            unit = unit_match.group(1) if unit_match else ""
            return no_weight(
                frame, WeightStatus.UNDERLOAD if under else WeightStatus.OVERLOAD, unit
            )
        match = _AND_VALUE.fullmatch(value_text)
        if match is None:
            return _error(frame, f"bad weight value {value_text!r}")
        sign, digits, unit = match.groups()
        return make_weight(frame, float(sign + digits), unit, header == "ST", net=mode == "NT")
