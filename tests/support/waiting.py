"""Waiting on a condition with a deadline: the one way tests synchronise with other threads and
processes (never a bare sleep)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

# Generous for a loaded 2-core machine; every wait ends as soon as its condition holds.
WAIT_S = 30.0
POLL_S = 0.01


def wait_for(condition: Callable[[], Any], timeout_s: float = WAIT_S, what: str = "") -> Any:
    """The condition's first truthy value; AssertionError naming `what` at the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(POLL_S)  # polling a condition, with a deadline
    raise AssertionError(f"timed out waiting for {what or condition}")
