"""Whether the wall clock can be trusted: the kernel's own synchronisation status.

A Raspberry Pi has no battery-backed clock. After a power cut it boots with the time it last
saved (or 1970) and keeps it until NTP answers, and a cutoff rule ("before 20:00") would route
on that wrong hour. The kernel knows: an NTP client (systemd-timesyncd, chrony, ntpd) clears
STA_UNSYNC once it has disciplined the clock, and adjtimex(2) then stops returning TIME_ERROR.
Reading it costs one system call and changes nothing (modes = 0). systemd-timesyncd also
creates /run/systemd/timesync/synchronized once it has synchronised, which `flag-file` reads.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
from collections.abc import Callable

from edge_agent.config import ClockConfig

# adjtimex(2): the return value TIME_ERROR means "clock not synchronised" (STA_UNSYNC is set,
# or the kernel's own error bound ran out).
TIME_ERROR = 5
# struct timex is 208 bytes on 64-bit Linux and smaller on 32-bit; a larger zeroed buffer
# (modes = 0: read only) fits every layout.
TIMEX_BUFFER_BYTES = 512


@functools.cache
def _adjtimex() -> Callable[[ctypes.Array[ctypes.c_char]], int] | None:
    try:
        return ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True).adjtimex
    except (OSError, AttributeError, TypeError):
        return None


def kernel_clock_synchronised() -> bool | None:
    """True or False as the kernel says; None where it cannot be asked (not Linux)."""
    adjtimex = _adjtimex()
    if adjtimex is None:
        return None
    buffer = ctypes.create_string_buffer(TIMEX_BUFFER_BYTES)
    state = adjtimex(buffer)
    if state < 0:
        return None
    return state != TIME_ERROR


def clock_check(config: ClockConfig) -> Callable[[], bool | None]:
    """The check the agent polls for the configured `clock.source`."""
    if config.source == "assume-synchronised":
        return lambda: True
    if config.source == "flag-file":
        flag = config.flag_file
        return flag.exists
    return kernel_clock_synchronised
