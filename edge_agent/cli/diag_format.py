"""How `diag` commands show a device's message to a technician: one line of at most 80 columns
(`describe`), and how long a weight has held its value (`SteadyClock`)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from edge_agent.safe_text import terminal_safe
from edge_agent.units import NS_PER_S

# Technicians' terminals: one line per message, never wrapped.
WATCH_WIDTH = 80


class SteadyClock:
    """How long each device's weight has been stable at the same value: the number a
    technician watches when a parcel sits on the scale."""

    def __init__(self) -> None:
        self._since: dict[str, tuple[float | None, int]] = {}

    def steady_s(self, name: str, message: Any) -> float | None:
        if message.kind != "weight":
            return None
        if not message.stable:
            self._since.pop(name, None)
            return None
        value, since = self._since.get(name, (None, 0))
        if value != message.value_kg or since == 0:
            self._since[name] = (message.value_kg, message.received_ns)
            return 0.0
        return (message.received_ns - since) / NS_PER_S


def describe(name: str, message: Any, steady_s: float | None = None) -> str:
    """One human line per message: time it arrived, device, what it says (at most 80 columns)."""
    stamp = datetime.now().strftime("%H:%M:%S.%f")[:-3]
    kind = message.kind
    if kind == "weight":
        value = "-" if message.value is None else f"{message.value:g} {message.unit}"
        flags = ["stable" if message.stable else "motion"]
        if message.status != "ok":
            flags.append(str(message.status))
        if message.net:
            flags.append("net")
        text = f"weight {value} ({', '.join(flags)})"
        if steady_s is not None:
            text += f" steady {steady_s:.1f} s"
    elif kind == "scan":
        symbology = f" {message.symbology}" if message.symbology else ""
        text = "no-read" if message.no_read else f"scan {message.data!r}{symbology}"
    elif kind == "dws_record":
        text = _describe_dws(message)
    elif kind == "sorter_ack":
        verdict = "ACK" if message.accepted else "NAK"
        text = f"{verdict} parcel {message.parcel_id} bin {message.bin}"
    elif kind == "lane_full":
        text = f"bin {message.bin} {'FULL' if message.full else 'clear'}"
    elif kind == "error":
        text = f"decode error: {message.reason} raw={message.raw.hex(' ')}"
    else:
        text = f"reply {message.text!r}"
    # A scanner's data, a sorter's parcel id, a device's reply: shown, never obeyed.
    line = terminal_safe(f"{stamp} {name}: {text}")
    return line if len(line) <= WATCH_WIDTH else line[: WATCH_WIDTH - 1] + "…"


def _describe_dws(record: Any) -> str:
    """A DWS unit's record: its labels, weight and size, and why a value is missing."""
    labels = ", ".join(repr(label) for label in record.barcodes) or "no-read"
    weight = "no weight" if record.weight_kg is None else f"{record.weight_kg:g} kg"
    size = ("not measured" if record.length_mm is None else
            f"{record.length_mm:g}x{record.width_mm:g}x{record.height_mm:g} mm")
    problem = f" ({record.problem})" if record.problem else ""
    return f"dws {labels} {weight} {size}{problem}"
