"""Barcode scanner decoder: one frame, one read (or no-read).

A frame holds one barcode as the scanner sent it, optionally led by an AIM symbology identifier
(`]C1` GS1-128, `]E0` EAN-13, `]d2` GS1 DataMatrix, `]Q1` QR...). No-read strings (`NOREAD`,
`NR`, Keyence `ERROR`) are settings of the profile, and so are the prefixes that mark replies to
commands (Keyence `OK,LON`). GS (0x1D, FNC1 in GS1 data) is data and is kept.
"""

from __future__ import annotations

from edge_agent.devices.framing import Frame
from edge_agent.devices.messages import DecodeError, DeviceReply, Message, Scan
from edge_agent.devices.profiles import ScannerDecode

# Framing bytes some scanners add around the data that are never part of a barcode here.
_STRIP = b"\x00\x02\x03\r\n"
AIM_ID_LENGTH = 3  # "]", a symbology letter, a modifier character


def split_aim_id(text: str) -> tuple[str | None, str]:
    """(AIM identifier, data) when the text starts with one, else (None, text)."""
    if (
        len(text) >= AIM_ID_LENGTH
        and text[0] == "]"
        and text[1].isascii()
        and text[1].isalpha()
        and text[2].isascii()
        and text[2].isalnum()
    ):
        return text[:AIM_ID_LENGTH], text[AIM_ID_LENGTH:]
    return None, text


class ScannerDecoder:
    def __init__(self, settings: ScannerDecode):
        self.settings = settings
        self._no_read = frozenset(settings.no_read)
        self._replies = tuple(settings.reply_prefixes)
        self._aim = settings.aim_ids == "auto"

    def decode(self, frame: Frame) -> Message:
        body = frame.body.strip(_STRIP)
        if not body:
            return DecodeError("empty read", frame.raw, frame.received_ns)
        text = body.decode(self.settings.encoding, "replace")
        if self._replies and text.startswith(self._replies):
            return DeviceReply(text, frame.raw, frame.received_ns)
        symbology, data = split_aim_id(text) if self._aim else (None, text)
        if text in self._no_read or data in self._no_read:
            return Scan("", True, symbology, frame.raw, frame.received_ns)
        if not data:
            return DecodeError("AIM identifier without data", frame.raw, frame.received_ns)
        return Scan(data, False, symbology, frame.raw, frame.received_ns)
