"""Parcel identifiers from scanned data: UPU S10, GS1 element strings, opaque carrier numbers.

`parse_identifier(data, symbology)` never raises: any string gives an `Identifier` saying its
kind, whether it is valid and, if not, a short problem code the rules can match on.

A small parser of the few GS1 Application Identifiers the line needs is used rather than a full
GS1 library: it runs in a few microseconds per barcode (the decision budget is 50 µs) and costs
nothing at start-up; an AI outside the table makes the barcode `malformed`, never guessed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from types import MappingProxyType
from typing import NamedTuple

GS = "\x1d"  # ASCII group separator: how scanners transmit FNC1 inside GS1 data
GS_TEXT = "<GS>"  # the same separator typed by a person (CLI, logs, documentation)

# AIM symbology identifiers that announce GS1 element strings (GS1-128, GS1 DataMatrix,
# GS1 QR, GS1 DataBar). Other AIM ids are stripped and the rest parsed as plain data.
GS1_SYMBOLOGIES = frozenset({"]C1", "]d2", "]Q3", "]e0"})
_AIM_PREFIX = re.compile(r"^\][A-Za-z][0-9A-Za-z]")

# Longer input than this is not a parcel label; refuse it before any work (scanner garbage).
MAX_DATA_CHARS = 512
# Carrier numbers seen on labels: letters, digits and a few separators, 4 to 40 characters.
_CARRIER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9\-_/.]{3,39}$")
# Digits are ASCII 0-9: str.isdigit() and regex \d also take other scripts' digits and
# superscripts, which int() may refuse.
_S10 = re.compile(r"^([A-Z]{2})([0-9]{8})([0-9])([A-Z]{2})$")
_HUMAN_READABLE_AI = re.compile(r"\((\d{2,4})\)")

# The AIs this parser knows: AI -> (fixed length or None, maximum length, digits only).
# Fixed-length AIs need no separator after them; variable ones end at <GS> or the end.
_AI_TABLE: dict[str, tuple[int | None, int, bool]] = {
    "00": (18, 18, True),  # SSCC, with a mod-10 check digit
    "01": (14, 14, True),  # GTIN
    "02": (14, 14, True),  # GTIN of contained items
    "10": (None, 20, False),  # batch or lot
    "11": (6, 6, True),  # production date YYMMDD
    "13": (6, 6, True),  # packaging date
    "15": (6, 6, True),  # best before
    "17": (6, 6, True),  # expiry
    "21": (None, 20, False),  # serial number
    "400": (None, 30, False),  # customer's order number
    "401": (None, 30, False),  # GINC, consignment number
    "402": (17, 17, True),  # GSIN, shipment number
    "403": (None, 30, False),  # routing code
    "420": (None, 20, False),  # ship-to postal code, no country
    "421": (None, 12, False),  # ship-to ISO 3166 numeric country (3 digits) + postal code
}
for _decimals in range(6):
    _AI_TABLE[f"310{_decimals}"] = (6, 6, True)  # net weight in kg, last AI digit = decimals


class IdentifierKind:
    """The kinds an identifier can have (plain strings: they travel in JSON as they are)."""

    S10 = "s10"
    GS1 = "gs1"
    CARRIER = "carrier"
    UNKNOWN = "unknown"


class IdentifierProblem:
    """Why an identifier is not valid: stable codes, also used as decision reasons."""

    NO_DATA = "no_data"
    INVALID_CHECK_DIGIT = "invalid_check_digit"
    MALFORMED = "malformed_identifier"


_NO_FIELDS: Mapping[str, str] = MappingProxyType({})
_make = tuple.__new__  # builds a NamedTuple from values in field order, skipping its __new__


# Immutable records on the decision path are NamedTuples: a frozen dataclass's __init__ costs
# about 0.25 µs per field, a tuple's a tenth of that, and the decision budget is 50 µs.
class Identifier(NamedTuple):
    kind: str
    valid: bool
    problem: str | None
    # The manifest key: the S10 number, the SSCC (else the GINC 401) of a GS1 label, or the
    # carrier number itself. None when nothing usable was found.
    key: str | None
    fields: Mapping[str, str] = _NO_FIELDS

    @property
    def weight_kg(self) -> float | None:
        """The net weight a GS1 label declares (AI 3100-3105), in kg."""
        for decimals in range(6):
            value = self.fields.get(f"310{decimals}")
            if value is not None:
                return int(value) / 10**decimals
        return None


def is_digits(text: str) -> bool:
    """Only ASCII digits 0-9, at least one."""
    return text.isascii() and text.isdigit()


def gs1_check_digit(digits: str) -> int:
    """The GS1 mod-10 check digit for `digits` (weights 3, 1, 3... from the right)."""
    if not is_digits(digits):
        raise ValueError(f"{digits!r}: a GS1 check digit is computed over ASCII digits")
    return _gs1_check(digits)


def _gs1_check(digits: str) -> int:
    # Bytes are summed as character codes in C; '0' is 48, taken off once per weighted digit.
    codes = digits.encode("ascii")
    odd, even = codes[::-2], codes[-2::-2]  # from the right: weight 3, then weight 1
    total = 3 * sum(odd) + sum(even) - 48 * (3 * len(odd) + len(even))
    return (10 - total % 10) % 10


def s10_check_digit(serial: str) -> int:
    """The UPU S10 check digit of an 8-digit serial number (weights 8 6 4 2 3 5 9 7)."""
    if len(serial) != 8 or not is_digits(serial):
        raise ValueError(f"{serial!r}: an S10 serial number is 8 ASCII digits")
    return _s10_check(serial)


def _s10_check(serial: str) -> int:
    # Bytes index as character codes: '0' is 48 and the weights sum to 44.
    s = serial.encode("ascii")
    total = (s[0] * 8 + s[1] * 6 + s[2] * 4 + s[3] * 2 + s[4] * 3 + s[5] * 5 + s[6] * 9
             + s[7] * 7 - 48 * 44)
    remainder = 11 - total % 11
    return 0 if remainder == 10 else 5 if remainder == 11 else remainder


def split_symbology(data: str, symbology: str | None = None) -> tuple[str, str | None]:
    """Strip an AIM symbology identifier from the front of `data` (scanners may send it inline)."""
    if _AIM_PREFIX.match(data):
        return data[3:], data[:3]
    return data, symbology


def parse_identifier(data: str | None, symbology: str | None = None) -> Identifier:
    """Classify and check scanned data. Never raises.

    The last result is kept: a parcel's barcode is parsed for its manifest look-up and again
    when it is decided. One entry, not an LRU cache: a miss in a full LRU cache (every parcel
    is a new barcode) cost 0.5-2 µs more than the parse saved.
    """
    global _last
    last = _last  # one read: another thread may replace it, never change it
    if data == last[0] and symbology == last[1]:
        return last[2]
    identifier = _parse(data, symbology)
    _last = (data, symbology, identifier)
    return identifier


def _parse(data: str | None, symbology: str | None) -> Identifier:
    if not data:
        return Identifier(IdentifierKind.UNKNOWN, False, IdentifierProblem.NO_DATA, None)
    if len(data) > MAX_DATA_CHARS:
        return Identifier(IdentifierKind.UNKNOWN, False, IdentifierProblem.MALFORMED, None)
    if data[0] == "]":  # an AIM symbology identifier sent inline
        data, symbology = split_symbology(data, symbology)
    if "<" in data:
        data = data.replace(GS_TEXT, GS)
    if symbology in GS1_SYMBOLOGIES:
        return _parse_gs1(data.lstrip(GS))
    if data.startswith("(") and _HUMAN_READABLE_AI.match(data):
        return _parse_gs1(_from_human_readable(data))
    s10 = _S10.match(data)
    if s10:
        return _check_s10(data, s10)
    if _CARRIER.match(data):
        return Identifier(IdentifierKind.CARRIER, True, None, data)
    return Identifier(IdentifierKind.UNKNOWN, False, IdentifierProblem.MALFORMED, None)


_last: tuple[str | None, str | None, Identifier] = (None, None, _parse(None, None))


def _check_s10(data: str, match: re.Match[str]) -> Identifier:
    prefix, serial, check, country = match.groups()
    fields = MappingProxyType(
        {"service_indicator": prefix, "serial": serial, "check_digit": check, "country": country}
    )
    if _s10_check(serial) != ord(check) - 48:  # the pattern matched ASCII digits
        return _make(Identifier, (
            IdentifierKind.S10, False, IdentifierProblem.INVALID_CHECK_DIGIT, data, fields))
    return _make(Identifier, (IdentifierKind.S10, True, None, data, fields))


def _from_human_readable(text: str) -> str:
    """`(00)123(420)10115` -> element string with <GS> after each variable-length field."""
    parts = _HUMAN_READABLE_AI.split(text)
    # split() gives ["", ai, value, ai, value...]; anything before the first "(" is garbage.
    if parts[0]:
        return "\x00"  # a character no AI table entry accepts: reported as malformed
    out = []
    for ai, value in zip(parts[1::2], parts[2::2], strict=True):
        spec = _AI_TABLE.get(ai)
        out.append(ai + value)
        if spec is None or spec[0] is None:
            out.append(GS)
    return "".join(out)


def _ai_pattern(ai: str, spec: tuple[int | None, int, bool]) -> str:
    """One AI and its value as a regular expression (the value is the only group)."""
    fixed, maximum, digits_only = spec
    char = r"[0-9]" if digits_only else r"[^\x1d]"
    if fixed is not None:
        return rf"{ai}({char}{{{fixed}}})\x1d?"  # fixed length: a <GS> after it is allowed
    return rf"{ai}({char}{{1,{maximum}}})(?:\x1d|\Z)"  # variable: ends at <GS> or the end


# Every known AI with its value, tried at one position in C rather than slicing in Python
# (GS1 AIs are prefix-free, so at most one alternative can match). Group n is _AI_OF_GROUP[n].
_AI_FIELD = re.compile("|".join(_ai_pattern(ai, spec) for ai, spec in _AI_TABLE.items()))
_AI_OF_GROUP = ("", *_AI_TABLE)


def _parse_gs1(data: str) -> Identifier:
    fields: dict[str, str] = {}
    position, size, match = 0, len(data), _AI_FIELD.match
    while position < size:
        found = match(data, position)
        if found is None:
            return _malformed_gs1(fields)
        group = found.lastindex
        ai, value = _AI_OF_GROUP[group], found[group]  # type: ignore[index]
        if ai in fields:
            return _malformed_gs1(fields)
        if not _AI_TABLE[ai][2] and (not value.isprintable() or (ai == "421" and not (
                len(value) > 3 and value[:3].isascii() and value[:3].isdigit()))):
            return _malformed_gs1(fields)
        fields[ai] = value
        position = found.end()
    if not fields:
        return _malformed_gs1(fields)
    key = fields.get("00") or fields.get("401") or fields.get("01")
    frozen = MappingProxyType(fields)
    for ai in ("00", "01", "02"):
        value = fields.get(ai)
        if value is not None and _gs1_check(value[:-1]) != ord(value[-1]) - 48:
            return _make(Identifier, (
                IdentifierKind.GS1, False, IdentifierProblem.INVALID_CHECK_DIGIT, key, frozen))
    return _make(Identifier, (IdentifierKind.GS1, True, None, key, frozen))


def _malformed_gs1(fields: dict[str, str]) -> Identifier:
    return Identifier(
        IdentifierKind.GS1, False, IdentifierProblem.MALFORMED, None, MappingProxyType(fields)
    )
