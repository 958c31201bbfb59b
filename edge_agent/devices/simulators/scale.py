"""Scale simulators: each speaks one scale protocol as docs/PROTOCOLS.md describes the real device.

The frames are written here from the documented layouts, independently of the decoders in
edge_agent.devices.codec, so a decoder bug shows up as a test failure instead of being shared.

Weight is scripted with `set_weight(kg, stable=...)`, `set_overload()`, and `never_stabilises`.
Commands that wait for stability (MT-SICS S answers `S I`; SMA P and A&D S wait) behave as the
device does when the load keeps moving.
"""

from __future__ import annotations

import threading
from pathlib import Path

from edge_agent.devices.simulators.pty_peer import PtyPeer

STX, ETX, CR, LF = b"\x02", b"\x03", b"\r", b"\n"
# Continuous streams (Toledo, MT-SICS SIR, A&D SIR) send a frame about this often: real
# indicators update 10-20 times a second at 9600 baud.
STREAM_PERIOD_S = 0.05

SCALE_PROFILES = (
    "mt-sics", "mt-sics-continuous", "toledo-continuous", "nci-scp01", "sma-scp0499",
    "and-standard",
)


class ScaleSimulator(PtyPeer):
    """One scale. `protocol` is a scale profile name from SCALE_PROFILES."""

    def __init__(
        self,
        protocol: str,
        link: str | Path | None = None,
        *,
        weight_kg: float = 0.0,
        stable: bool = True,
        toledo_checksum: bool = True,
        name: str = "scale",
    ) -> None:
        if protocol not in SCALE_PROFILES:
            raise ValueError(f"no scale simulator for profile {protocol!r}")
        super().__init__(link, name=name)
        self.protocol = protocol
        self.toledo_checksum = toledo_checksum
        self.toledo_corrupt_every = 0  # fault: every Nth streamed frame has a wrong checksum
        self._toledo_sent = 0
        self.never_stabilises = False
        self._weight_kg = weight_kg
        self._stable = stable
        self._overload = False
        self._zero_kg = 0.0
        self._tare_kg = 0.0
        self._state_lock = threading.Lock()
        self._waiting_for_stable: list[str] = []  # commands answered once the load settles
        # A Toledo output streams from power-on; an MT-SICS balance only after SIR.
        self.streaming = protocol == "toledo-continuous"
        self.tick_period_s = STREAM_PERIOD_S

    # -- scripting -------------------------------------------------------------------------
    def set_weight(self, kg: float, *, stable: bool = True) -> None:
        with self._state_lock:
            self._weight_kg, self._stable, self._overload = kg, stable, False

    def set_overload(self, overload: bool = True) -> None:
        with self._state_lock:
            self._overload = overload

    @property
    def stable(self) -> bool:
        return self._stable and not self.never_stabilises

    @property
    def shown_kg(self) -> float:
        """The displayed weight: load minus the zero offset and the tare."""
        return round(self._weight_kg - self._zero_kg - self._tare_kg, 3)

    # -- commands --------------------------------------------------------------------------
    def on_command(self, line: bytes) -> None:
        command = line.strip().decode("ascii", "replace")
        handler = {
            "mt-sics": self._mt_sics,
            "mt-sics-continuous": self._mt_sics,
            "nci-scp01": self._nci,
            "sma-scp0499": self._sma,
            "and-standard": self._and,
        }.get(self.protocol)
        if handler is not None:  # a Toledo continuous output ignores what it receives
            handler(command.upper())

    def on_tick(self, now: float) -> None:
        if self._waiting_for_stable and self.stable:
            waiting, self._waiting_for_stable = self._waiting_for_stable, []
            for command in waiting:
                self.on_command(command.encode())
        if not self.streaming:
            return
        if self.protocol == "toledo-continuous":
            frame = self.toledo_frame()
            self._toledo_sent += 1
            every = self.toledo_corrupt_every
            if every and self.toledo_checksum and self._toledo_sent % every == 0:
                frame = frame[:-1] + bytes([frame[-1] ^ 0x01])
            self.send_frame(frame)
        elif self.protocol == "and-standard":
            self.send_frame(self.and_frame())
        else:
            self.send_frame(self.mt_sics_weight(immediate=True))

    def _zero(self) -> bool:
        if not self.stable:
            return False
        self._zero_kg += self.shown_kg
        return True

    def _tare(self) -> bool:
        if not self.stable:
            return False
        self._tare_kg = self._weight_kg - self._zero_kg
        return True

    # -- Mettler Toledo MT-SICS ------------------------------------------------------------
    def mt_sics_weight(self, *, immediate: bool) -> bytes:
        if self._overload:
            return b"S +\r\n"
        if not immediate and not self.stable:
            return b"S I\r\n"  # no stability before the device's timeout
        status = "S" if self.stable else "D"
        return f"S {status} {self.shown_kg:>10.3f} kg\r\n".encode()

    def _mt_sics(self, command: str) -> None:
        if command == "S":
            self.reply(self.mt_sics_weight(immediate=False))
        elif command == "SI":
            self.reply(self.mt_sics_weight(immediate=True))
        elif command == "SIR":
            self.streaming = True
        elif command == "C":
            self.streaming = False
            self.reply(b"C B\r\nC A\r\n")
        elif command == "Z":
            self.reply(b"Z A\r\n" if self._zero() else b"Z I\r\n")
        elif command == "T":
            if self._tare():
                self.reply(f"T S {self._tare_kg:>10.3f} kg\r\n".encode())
            else:
                self.reply(b"T I\r\n")
        elif command == "I4" or command == "@":
            self.reply(b'I4 A "1234567"\r\n')
        else:
            self.reply(b"ES\r\n")

    # -- Toledo continuous output ----------------------------------------------------------
    def toledo_frame(self) -> bytes:
        shown = self.shown_kg
        hundredths = round(abs(shown) * 100)
        # Status A: decimal code 4 (XXXX.XX), count by 1, bit 5 always set.
        status_a = 0x20 | 0x08 | 0x04
        # Status B: bit 5 set, bit 4 kg, bit 3 motion, bit 2 out of range, bit 1 negative.
        status_b = 0x20 | 0x10
        if not self.stable:
            status_b |= 0x08
        if self._overload or hundredths > 999_999:
            status_b |= 0x04
            hundredths = min(hundredths, 999_999)
        if shown < 0:
            status_b |= 0x02
        body = STX + bytes([status_a, status_b, 0x20])
        body += f"{hundredths:>6d}{0:>6d}".encode() + CR
        if self.toledo_checksum:
            body += bytes([toledo_checksum(body)])
        return body

    # -- NCI / Weigh-Tronix SCP-01 ---------------------------------------------------------
    def _nci_status(self) -> bytes:
        byte1 = 0x30 | (0 if self.stable else 0x01) | (0x02 if self.shown_kg == 0 else 0)
        byte2 = 0x30 | (0x02 if self._overload else 0) | (0x01 if self.shown_kg < 0 else 0)
        return bytes([byte1, byte2])

    def nci_weight(self) -> bytes:
        value = "^^^^^^^" if self._overload else f"{self.shown_kg:07.2f}"
        return LF + f"{value}kg".encode() + CR + LF + self._nci_status() + CR + ETX

    def _nci(self, command: str) -> None:
        if command == "W":
            self.reply(self.nci_weight())
        elif command == "S":
            self.reply(LF + self._nci_status() + CR + ETX)
        elif command == "Z":
            self._zero()
            self.reply(LF + self._nci_status() + CR + ETX)
        else:
            self.reply(b"\n?\r\x03")

    # -- SMA SCP-0499 ----------------------------------------------------------------------
    def sma_weight(self) -> bytes:
        shown = self.shown_kg
        status = "O" if self._overload else ("Z" if shown == 0 else " ")
        mode = "N" if self._tare_kg else "G"
        motion = " " if self.stable else "M"
        return f"\n{status}1{mode}{motion} {shown:>10.3f}kg \r".encode()

    def _sma(self, command: str) -> None:
        if command == "W":
            self.reply(self.sma_weight())
        elif command == "P":
            if self.stable:
                self.reply(self.sma_weight())
            else:
                self._waiting_for_stable.append(command)
        elif command == "Z":
            self._zero()
            self.reply(self.sma_weight())
        elif command == "T":
            self._tare()
            self.reply(self.sma_weight())
        else:
            self.reply(b"\n?\r")

    # -- A&D standard format ---------------------------------------------------------------
    def and_frame(self) -> bytes:
        if self._overload:
            return b"OL,+9999999E+19\r\n"
        header = "ST" if self.stable else "US"
        return f"{header},{self.shown_kg:+09.3f} kg\r\n".encode()

    def _and(self, command: str) -> None:
        if command in ("Q", "SI"):
            self.reply(self.and_frame())
        elif command == "S":
            if self.stable or self._overload:
                self.reply(self.and_frame())
            else:
                self._waiting_for_stable.append(command)
        elif command == "SIR":
            self.streaming = True
        elif command == "Z":
            self._zero()
        elif command == "T":
            self._tare()


def toledo_checksum(preceding: bytes) -> int:
    """Two's complement of the low 7 bits of the sum of every byte before the checksum."""
    return (-sum(preceding)) & 0x7F
