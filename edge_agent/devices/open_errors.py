"""Why a serial port would not open, said the same way by everything that opens one.

The agent's supervised port, the doctor's "port free" check and `diag capture` all open ports
exclusively, as the agent does, and a technician acts on the answer: a port held by another
program (the running agent, a `diag watch`, minicom) needs that program stopped, any other
failure needs the path or the adapter checked. pyserial says "held" in two ways: its exclusive
flock fails with EAGAIN ("Could not exclusively lock port ...: [Errno 11] Resource temporarily
unavailable"), and some drivers refuse a second open with EBUSY.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass

# What every busy reason starts with: `last_error` is a string in the status document, and the
# CLI tells a busy port from a missing one by it.
BUSY_PREFIX = "port busy"
BUSY_ERRNOS = frozenset({errno.EAGAIN, errno.EBUSY})
# pyserial wraps the OSError in a SerialException whose errno is lost: its text remains.
BUSY_TEXTS = ("exclusively lock", "Resource temporarily unavailable", "Device or resource busy")


@dataclass(frozen=True)
class OpenFailure:
    busy: bool
    reason: str  # one line a technician can act on; starts with BUSY_PREFIX when busy


def classify_open_error(exc: BaseException) -> OpenFailure:
    text = str(exc) or type(exc).__name__
    busy = getattr(exc, "errno", None) in BUSY_ERRNOS or any(t in text for t in BUSY_TEXTS)
    if busy:
        return OpenFailure(True, f"{BUSY_PREFIX} (held by another program): {text}")
    return OpenFailure(False, text)


def is_busy(reason: str | None) -> bool:
    """Whether a reason (a port's `last_error`) says the port is held by another program."""
    return reason is not None and reason.startswith(BUSY_PREFIX)
