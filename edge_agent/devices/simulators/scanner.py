"""Barcode scanner simulators: presentation scanners that send every read, and triggered ones.

What differs between models (docs/PROTOCOLS.md, "Barcode scanners") is data, kept in SCANNER_STYLES:
the terminator (none at all on a Zebra at factory defaults, so the reader frames by idle gap),
the no-read text, and the serial trigger commands with their replies.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from edge_agent.devices.simulators.pty_peer import PtyPeer


@dataclass(frozen=True)
class ScannerStyle:
    terminator: bytes
    no_read: bytes | None  # None: the scanner says nothing when it reads nothing
    trigger_on: bytes | None = None  # command that opens a reading window (CR stripped)
    trigger_off: bytes | None = None
    # What the scanner answers to the trigger commands (sent with its terminator), if anything.
    trigger_on_reply: bytes | None = None
    trigger_off_reply: bytes | None = None


SCANNER_STYLES = {
    "generic-scanner": ScannerStyle(terminator=b"\r\n", no_read=b"NOREAD"),
    "zebra-ds": ScannerStyle(terminator=b"", no_read=b"NOREAD"),
    "honeywell-serial-trigger": ScannerStyle(
        terminator=b"\r\n", no_read=b"NR", trigger_on=b"\x16T", trigger_off=b"\x16U"
    ),
    "keyence-fixed": ScannerStyle(
        terminator=b"\r", no_read=b"ERROR", trigger_on=b"LON", trigger_off=b"LOFF",
        trigger_on_reply=b"OK,LON", trigger_off_reply=b"OK,LOFF",
    ),
}


class ScannerSimulator(PtyPeer):
    """A scanner. `scan(code)` is a parcel passing under it; `no_read()` a label it cannot read.

    A triggered scanner only reads inside a window opened by its trigger command: reads made
    outside one wait for the next window, and a window closed with nothing read sends the
    no-read text, as fixed-mount scanners do.
    """

    def __init__(
        self,
        profile: str = "generic-scanner",
        link: str | Path | None = None,
        *,
        aim_prefix: str | None = None,
        name: str = "scanner",
    ) -> None:
        if profile not in SCANNER_STYLES:
            raise ValueError(f"no scanner simulator for profile {profile!r}")
        super().__init__(link, name=name)
        self.profile = profile
        self.style = SCANNER_STYLES[profile]
        self.aim_prefix = aim_prefix  # e.g. "]C1" when AIM symbology ids are enabled
        self.triggered = self.style.trigger_on is None  # untriggered scanners always read
        self.triggers_received = 0
        self._queued: list[bytes] = []
        self._sent_in_window = False

    def frame(self, code: str | bytes) -> bytes:
        data = code.encode() if isinstance(code, str) else code
        if self.aim_prefix:
            data = self.aim_prefix.encode() + data
        return data + self.style.terminator

    def no_read_frame(self) -> bytes | None:
        text = self.style.no_read
        return None if text is None else text + self.style.terminator

    def scan(self, code: str | bytes) -> None:
        """A label passes: sent now, or at the next trigger window for a triggered scanner."""
        frame = self.frame(code)
        if self.triggered:
            self._sent_in_window = True
            self.send_frame(frame)
        else:
            self._queued.append(frame)

    def no_read(self) -> None:
        frame = self.no_read_frame()
        if frame is not None:
            self.send_frame(frame)

    def on_command(self, line: bytes) -> None:
        command = line.strip(b" ")
        style = self.style
        if style.trigger_on is None:
            return
        if command == style.trigger_on:
            self.triggers_received += 1
            self.triggered = True
            self._sent_in_window = False
            if style.trigger_on_reply:
                self.reply(style.trigger_on_reply + style.terminator)
            if self._queued:
                self._sent_in_window = True
                self.reply(self._queued.pop(0))
        elif command == style.trigger_off and self.triggered:
            self.triggered = False
            if style.trigger_off_reply:
                self.reply(style.trigger_off_reply + style.terminator)
            if not self._sent_in_window:
                frame = self.no_read_frame()
                if frame is not None:
                    self.reply(frame)
