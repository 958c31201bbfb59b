"""DWS unit simulators: one record per parcel, as the unit's firmware profile lays it out.

`DwsSimulator("generic-dws")` writes the delimited record
`barcode[,barcode...],weight,length,width,height[,volume][,timestamp]` in the profile's
delimiter, units and optional fields; `DwsSimulator("cubiscan-style")` writes the Cubiscan-style
measure reply `<STX>MA...<ETX><CR><LF>` in the profile's section layout, and answers the
unit's commands (measure, zero, an unknown command's `?N`). Layouts: docs/PROTOCOLS.md.

`measure(...)` is a parcel passing through the unit. The faults a real line brings are its
arguments (no label read, several labels, no dimensions, a unit that could not measure), and
the base class adds garbage on the line and frames split over several writes.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from edge_agent.devices.dws import CM3_PER_UNIT, KG_PER_UNIT, MM_PER_UNIT
from edge_agent.devices.profiles import CubiscanDecode, DwsDelimitedDecode, load_profile
from edge_agent.devices.simulators.pty_peer import PtyPeer

DWS_PROFILES = ("generic-dws", "cubiscan-style")
STX, ETX = b"\x02", b"\x03"
# The dim factor a Cubiscan-style unit reports (cm³ per kg, the IATA divisor).
DIM_FACTOR = 6000


@dataclass(frozen=True)
class Measured:
    """What the unit measured on one parcel; None where it could not."""

    barcodes: tuple[str, ...]
    weight_kg: float | None
    dims_mm: tuple[float, float, float] | None
    volume_cm3: float | None = None


class DwsSimulator(PtyPeer):
    """A DWS unit on a pty. `measure(...)` sends the parcel's record at once."""

    def __init__(self, profile: str = "generic-dws", link: str | Path | None = None, *,
                 name: str = "dws") -> None:
        settings = load_profile(profile).decode
        if not isinstance(settings, DwsDelimitedDecode | CubiscanDecode):
            raise ValueError(f"profile {profile!r} is not a DWS unit's")
        super().__init__(link, name=name)
        self.profile = profile
        self.settings = settings
        self.last: Measured | None = None
        self.sent = 0  # records written

    # -- parcels -------------------------------------------------------------------------
    def measure(self, barcodes: Sequence[str] = (), weight_kg: float | None = None,
                dims_mm: tuple[float, float, float] | None = None,
                volume_cm3: float | None = None) -> bytes:
        """A parcel passes: its record goes out now. No barcodes: a no-read; dims None: not
        measured (stacked boxes). Returns the frame sent."""
        if volume_cm3 is None and dims_mm is not None:
            volume_cm3 = dims_mm[0] * dims_mm[1] * dims_mm[2] / 1000
        self.last = Measured(tuple(barcodes), weight_kg, dims_mm, volume_cm3)
        frame = self.frame(self.last)
        self.send_frame(frame)
        self.sent += 1
        return frame

    def measure_failed(self, code: str = "M") -> bytes:
        """Cubiscan-style: the unit could not measure (C corner sensor, M measure, Z zeroing)."""
        frame = STX + f"MNC{code}".encode() + ETX + b"\r\n"
        self.send_frame(frame)
        self.sent += 1
        return frame

    def send_garbage(self, data: bytes = b"\x00\xff\x13\x7fBOOT\r\n") -> None:
        """Noise between records, ending in a line end (a plugged cable, a boot banner): the
        agent must drop it and read the next record intact."""
        self.send_raw(data)

    def frame(self, measured: Measured) -> bytes:
        if isinstance(self.settings, DwsDelimitedDecode):
            return self._delimited(measured, self.settings)
        return self._cubiscan(measured, self.settings)

    # -- commands (Cubiscan-style) --------------------------------------------------------
    def on_command(self, line: bytes) -> None:
        if not isinstance(self.settings, CubiscanDecode):
            return  # the delimited unit only talks
        command = line.strip(b"\x02\x03\r\n ")
        if command == b"M" and self.last is not None:
            self.reply(self.frame(self.last))
        elif command == b"Z":
            self.reply(STX + b"ZA" + ETX + b"\r\n")
        else:
            self.reply(STX + b"?N" + ETX + b"\r\n")

    # -- layouts ------------------------------------------------------------------------
    @staticmethod
    def _delimited(measured: Measured, s: DwsDelimitedDecode) -> bytes:
        def number(value: float | None, per_unit: float) -> str:
            return "0" if value is None else f"{value / per_unit:.3f}".rstrip("0").rstrip(".")

        dims = measured.dims_mm
        fields = list(measured.barcodes) or [s.no_read[0]]
        fields.append(s.no_read[0] if measured.weight_kg is None
                      else number(measured.weight_kg, KG_PER_UNIT[s.weight_unit]))
        fields += [number(None if dims is None else side, MM_PER_UNIT[s.length_unit])
                   for side in (dims or (None, None, None))]
        if s.volume:
            volume = None if dims is None else measured.volume_cm3
            fields.append(number(volume, CM3_PER_UNIT[s.volume_unit]))
        if s.timestamp:
            fields.append(str(int(time.time())))
        return s.delimiter.join(fields).encode(s.encoding) + b"\r\n"

    @staticmethod
    def _cubiscan(measured: Measured, s: CubiscanDecode) -> bytes:
        size_per_unit = MM_PER_UNIT[s.metric_length_unit]
        weight_per_unit = KG_PER_UNIT[s.metric_weight_unit]
        dims = measured.dims_mm
        weight = measured.weight_kg

        def value(tag: str, number: float | None, per_unit: float, width: int) -> str:
            if number is None:
                return f"{tag}_" + "0" * (width - 1)  # under range: not measured
            return f"{tag}{number / per_unit:0{width}.{1 if width == 5 else 2}f}"

        volume = None if dims is None else dims[0] * dims[1] * dims[2] / 1000
        sections = {
            "skip": "C004600", "id": measured.barcodes[0] if measured.barcodes else "",
            "dimension_unit": "M", "weight_unit": "M", "region": "I",
            "dim_factor": f"F{DIM_FACTOR:04d}",
            "dim_weight": value("D", None if volume is None else volume / DIM_FACTOR,
                                weight_per_unit, 6),
            "weight": value("K", weight, weight_per_unit, 6),
        }
        for index, side in enumerate(("length", "width", "height")):
            sections[side] = value(side[0].upper(), None if dims is None else dims[index],
                                   size_per_unit, 5)
        body = s.separator.join(sections[name] for name in s.fields)
        return STX + b"MA" + body.encode("latin-1") + ETX + b"\r\n"
