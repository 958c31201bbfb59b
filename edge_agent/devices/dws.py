"""DWS unit decoders: one frame is one parcel's record (labels, weight, size), or a reply.

A DWS unit (dimensioning, weighing, scanning: a scan tunnel with a dimensioner and a scale)
measures each parcel as a whole and says so in one record, so nothing needs pairing. Two
families, both laid out by profile settings (docs/PROTOCOLS.md, "DWS units"):

- `dws-delimited`: `barcode[,barcode...],weight,length,width,height[,volume][,timestamp]`;
- `cubiscan`: a Cubiscan-style measure reply `<STX>MA...<ETX><CR>` with tagged value sections.

What the unit could not measure is an input, not an error: a missing or unmeasured value is
None (and `problem` says why when the unit did). Only a record that cannot be read (a number
that is not one, too few fields) is a DecodeError. Decoders never raise.
"""

from __future__ import annotations

import re

from edge_agent.devices.framing import Frame
from edge_agent.devices.messages import DecodeError, DeviceReply, DwsRecord, Message
from edge_agent.devices.profiles import CubiscanDecode, DwsDelimitedDecode

MM_PER_UNIT = {"mm": 1.0, "cm": 10.0, "in": 25.4}
KG_PER_UNIT = {"kg": 1.0, "g": 0.001, "lb": 0.45359237}
CM3_PER_UNIT = {"cm3": 1.0, "mm3": 0.001, "m3": 1_000_000.0, "in3": 16.387064}
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]*)?|\.[0-9]+")
DECIMALS = 6  # keeps float noise out of converted values (0.001 mm, 1 mg)
# Bytes around a record that are never part of it.
_STRIP = b"\x00\x02\x03\r\n "


class _Unreadable(ValueError):
    """A field that cannot be read: the whole record becomes a DecodeError naming it."""


def _number(text: str, name: str, factor: float) -> float:
    # Plain decimals only: float() would also take "1_0", "1e3", "-2" or "nan", none of which
    # a unit sends for a measurement.
    if not _DECIMAL.fullmatch(text):
        raise _Unreadable(f"{name} {text!r} is not a measurement (digits and one point)")
    return round(float(text) * factor, DECIMALS)


def _dimensions(length: float | None, width: float | None, height: float | None,
                ) -> tuple[float | None, float | None, float | None]:
    """All three or none: a box has no zero side, and one side alone sizes nothing."""
    if length is None or width is None or height is None or 0 in (length, width, height):
        return None, None, None
    return length, width, height


# --- the delimited record -------------------------------------------------------------------


class DwsDelimitedDecoder:
    """`barcode[,barcode...],weight,length,width,height[,volume][,timestamp]`.

    The fields after the barcodes are counted from the end, so any number of labels fits. A
    no-read marker (or an empty field) among the barcodes is no label; in a number field it is
    "not measured". A weight of zero is kept (the agent decides what weighs too little).
    """

    def __init__(self, settings: DwsDelimitedDecode):
        self.settings = settings
        self._no_read = frozenset(settings.no_read)
        self._tail = 4 + settings.volume + settings.timestamp  # fields after the barcodes
        self._kg = KG_PER_UNIT[settings.weight_unit]
        self._mm = MM_PER_UNIT[settings.length_unit]
        self._cm3 = CM3_PER_UNIT[settings.volume_unit]

    def decode(self, frame: Frame) -> Message:
        text = frame.body.strip(_STRIP).decode(self.settings.encoding, "replace")
        if not text:
            return DecodeError("empty record", frame.raw, frame.received_ns)
        fields = [part.strip() for part in text.split(self.settings.delimiter)]
        if len(fields) < self._tail + 1:
            return DecodeError(f"{len(fields)} fields, expected at least {self._tail + 1} "
                               "(barcode, weight, length, width, height"
                               + (", volume" if self.settings.volume else "")
                               + (", timestamp" if self.settings.timestamp else "") + ")",
                               frame.raw, frame.received_ns)
        labels, numbers = fields[: -self._tail], fields[-self._tail:]
        barcodes = tuple(label for label in labels if label and label not in self._no_read)
        try:
            weight = self._measured(numbers[0], "weight", self._kg)
            length, width, height = _dimensions(
                *(self._measured(numbers[i], name, self._mm)
                  for i, name in ((1, "length"), (2, "width"), (3, "height"))))
            volume = self._measured(numbers[4], "volume", self._cm3) if self.settings.volume \
                else None
        except _Unreadable as exc:
            return DecodeError(str(exc), frame.raw, frame.received_ns)
        if volume == 0:
            volume = None  # as for the sides: nothing has no volume
        problem = None if length is not None else "no_dimensions"
        return DwsRecord(barcodes, not barcodes, weight, length, width, height, volume, None,
                         problem, frame.raw, frame.received_ns)

    def _measured(self, text: str, name: str, factor: float) -> float | None:
        if not text or text in self._no_read:
            return None
        return _number(text, name, factor)


# --- the Cubiscan-style measure reply ------------------------------------------------------

# A value led by one of these is not a plain measurement (as the public client reads them).
OVER_RANGE, UNDER_RANGE, LOW_PRECISION = "~", "_", "-"
_FLAGS = {"dimension_unit": "ME", "weight_unit": "ME", "region": "DI"}
# Measure errors of a negative reply `MN<origin><code>`.
CUBISCAN_ERRORS = {"C": "corner_sensor", "M": "measure_error", "Z": "zeroing_error"}


class CubiscanDecoder:
    """`<STX>MA<sections><ETX><CR>`: a measure; `MN<origin><code>`: the unit could not measure;
    `?N`: a command the unit did not understand; other replies (`ZA`, `UA...`) are replies."""

    def __init__(self, settings: CubiscanDecode):
        self.settings = settings

    def decode(self, frame: Frame) -> Message:
        text = frame.body.strip(_STRIP).decode("latin-1")
        if text.startswith("MN"):
            code = text[3:4]
            problem = CUBISCAN_ERRORS.get(code, f"error {code!r}" if code else "error")
            return DwsRecord((), True, None, None, None, None, None, None, problem, frame.raw,
                             frame.received_ns)
        if not text.startswith("MA"):
            if len(text) >= 2 and text[1] in "AN":
                return DeviceReply(text, frame.raw, frame.received_ns)  # ?N, ZA, UA...
            return DecodeError(f"not a Cubiscan reply: {text[:16]!r}", frame.raw,
                               frame.received_ns)
        sections = text[2:].split(self.settings.separator)
        if len(sections) != len(self.settings.fields):
            return DecodeError(f"{len(sections)} sections, the layout has "
                               f"{len(self.settings.fields)}", frame.raw, frame.received_ns)
        try:
            return self._record(dict(zip(self.settings.fields, sections, strict=True)), frame)
        except _Unreadable as exc:
            return DecodeError(str(exc), frame.raw, frame.received_ns)

    def _record(self, sections: dict[str, str], frame: Frame) -> DwsRecord:
        for name, allowed in _FLAGS.items():
            if name in sections and (len(sections[name]) != 1 or sections[name] not in allowed):
                raise _Unreadable(f"{name} flag {sections[name]!r}, expected one of {allowed}")
        s = self.settings
        english_size = sections.get("dimension_unit") == "E"
        english_weight = sections.get("weight_unit", sections.get("dimension_unit")) == "E"
        mm = MM_PER_UNIT[s.english_length_unit if english_size else s.metric_length_unit]
        kg = KG_PER_UNIT[s.english_weight_unit if english_weight else s.metric_weight_unit]
        problems: list[str] = []
        low_precision = False

        def value(name: str, factor: float) -> float | None:
            nonlocal low_precision
            section = sections[name]
            if len(section) < 2 or not section[0].isalpha():
                raise _Unreadable(f"{name} section {section!r} has no tag letter and value")
            digits = section[1:].strip()
            if digits[:1] in (OVER_RANGE, UNDER_RANGE):
                problems.append("over_range" if digits[0] == OVER_RANGE else "under_range")
                return None
            if digits[:1] == LOW_PRECISION:
                low_precision = True
                digits = digits[1:]
            return _number(digits, name, factor)

        length, width, height = _dimensions(
            value("length", mm), value("width", mm), value("height", mm))
        weight = value("weight", kg)
        if "dim_factor" in sections:
            value("dim_factor", 1.0)  # read to check it; the agent applies its own divisor
        barcode = sections.get("id", "").strip()
        barcodes = (barcode,) if barcode else ()
        if length is None and not problems:
            problems.append("no_dimensions")
        return DwsRecord(
            barcodes, not barcodes, weight, length, width, height, None,
            False if low_precision else None,
            ",".join(dict.fromkeys(problems)) or None, frame.raw, frame.received_ns)
