"""Whether a USB-serial adapter holds back bytes long enough to blur the line's timing.

An FTDI adapter (ftdi_sio) hands received bytes to the host when its buffer fills or when its
latency timer runs out: 16 ms by default. A short frame such as a scanner's barcode or a scale's
reply therefore reaches the agent up to 16 ms after it left the device. Pairing compares those
arrival times (a poll reply must come `poll_reorder_ms` after its scan and before the next
scan; a streaming reading must fall inside `window_ms`), so a timer longer than those margins
costs parcels: they go to EXCEPTION as ambiguous (safe, but not sorted). Linux exposes the timer
as /sys/bus/usb-serial/devices/ttyUSB*/latency_timer (milliseconds, 1-255) and a udev rule can
set it to 1 ms when the adapter is plugged in (systemd/99-edge-agent-serial.rules). Adapters of
other makes have no such file: nothing to check.
"""

from __future__ import annotations

import os
from pathlib import Path

from edge_agent.diagnostics.results import CheckResult, passed, warned

# A timer above this blurs arrival times by more than the pairing margins are meant to absorb
# (the default poll_reorder_ms is 2 ms).
LATENCY_TIMER_MAX_MS = 2
FIX = ("set it to 1 ms: install systemd/99-edge-agent-serial.rules (its latency_timer line), "
       "or now: echo 1 | sudo tee {path}")


def latency_timer_file(port: str, sysfs: Path = Path("/sys")) -> Path:
    tty = os.path.basename(os.path.realpath(port))
    return sysfs / "bus" / "usb-serial" / "devices" / tty / "latency_timer"


def check_latency_timer(name: str, port: str, sysfs: Path = Path("/sys")) -> CheckResult | None:
    """A warning when the port's adapter delays bytes by more than LATENCY_TIMER_MAX_MS; None
    when the adapter has no latency timer."""
    path = latency_timer_file(port, sysfs)
    check = f"device {name}: USB adapter latency"
    try:
        text = path.read_text().strip()
    except FileNotFoundError:
        return None
    except OSError as exc:
        return warned(check, f"cannot read {path}: {exc.strerror}", "run the doctor as root")
    try:
        timer_ms = int(text)
    except ValueError:
        return warned(check, f"{path} holds {text[:20]!r}, not a number of milliseconds",
                      "check the adapter's driver (ftdi_sio)")
    if timer_ms > LATENCY_TIMER_MAX_MS:
        return warned(check, f"the adapter holds received bytes up to {timer_ms} ms before the "
                      "host sees them: pairing may find scans and readings too close to tell "
                      "apart (parcels to EXCEPTION as ambiguous)", FIX.format(path=path))
    return passed(check, f"latency timer {timer_ms} ms")
