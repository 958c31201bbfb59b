"""Which serial ports this machine has, under which stable names.

pyserial's `list_ports` knows vendor, product and serial number for USB adapters; the
/dev/serial/by-id links are the names a config should use, because /dev/ttyUSB0 and
/dev/ttyUSB1 swap when adapters are replugged in a different order. This module joins both.
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

BY_ID_DIR = Path("/dev/serial/by-id")


@dataclass
class SerialPortInfo:
    device: str  # the device node, e.g. /dev/ttyUSB0
    by_id: list[str] = field(default_factory=list)  # stable links pointing at it
    description: str | None = None
    manufacturer: str | None = None
    product: str | None = None
    serial_number: str | None = None
    vid: int | None = None
    pid: int | None = None
    hwid: str | None = None

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def by_id_links(by_id_dir: Path | None = None) -> dict[str, list[str]]:
    """Resolved device -> the by-id links that point at it (dangling links are left out)."""
    links: dict[str, list[str]] = {}
    try:
        entries = sorted((by_id_dir or BY_ID_DIR).iterdir())
    except (FileNotFoundError, NotADirectoryError, PermissionError):
        return links  # no USB-serial adapter plugged in: udev has not made the directory
    for entry in entries:
        target = os.path.realpath(entry)
        if os.path.exists(target):
            links.setdefault(target, []).append(str(entry))
    return links


def list_serial_ports(by_id_dir: Path | None = None) -> list[SerialPortInfo]:
    """Every serial port pyserial finds, plus any by-id link target it does not, sorted."""
    from serial.tools import list_ports

    links = by_id_links(by_id_dir)
    found: dict[str, SerialPortInfo] = {}
    for port in list_ports.comports():
        device = os.path.realpath(port.device)
        found[device] = SerialPortInfo(
            device=port.device,
            by_id=links.get(device, []),
            description=None if port.description in (None, "n/a") else port.description,
            manufacturer=port.manufacturer,
            product=port.product,
            serial_number=port.serial_number,
            vid=port.vid,
            pid=port.pid,
            hwid=None if port.hwid in (None, "n/a") else port.hwid,
        )
    for device, names in links.items():
        if device not in found:
            found[device] = SerialPortInfo(device=device, by_id=names)
    return sorted(found.values(), key=lambda info: info.device)
