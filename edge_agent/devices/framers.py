"""The framer a profile's `framing` section describes: the one place that knows every kind.

Apart from framing.py so that a framer built on `Framer` in a module of its own
(length_framing.py) needs no import back into the module that chooses it.
"""

from __future__ import annotations

from edge_agent.devices.framing import (
    Counters,
    FixedLengthFramer,
    Framer,
    StartEndFramer,
    StreamFramer,
)
from edge_agent.devices.length_framing import LengthHeaderFramer
from edge_agent.devices.profiles import (
    FixedLengthFraming,
    IdleGapFraming,
    LengthHeaderFraming,
    StxEtxFraming,
    TerminatorFraming,
)
from edge_agent.units import NS_PER_MS


def make_framer(
    framing: TerminatorFraming | StxEtxFraming | FixedLengthFraming | IdleGapFraming
    | LengthHeaderFraming,
    counters: Counters | None = None,
) -> Framer:
    """The framer a profile's `framing` section describes."""
    if isinstance(framing, LengthHeaderFraming):
        return LengthHeaderFramer(framing, counters)
    if isinstance(framing, TerminatorFraming):
        return StreamFramer(list(framing.terminators), framing.max_length, counters=counters)
    if isinstance(framing, IdleGapFraming):
        return StreamFramer(
            list(framing.terminators),
            framing.max_length,
            gap_ns=framing.gap_ms * NS_PER_MS,
            counters=counters,
        )
    if isinstance(framing, StxEtxFraming):
        return StartEndFramer(
            framing.start,
            framing.end,
            framing.max_length,
            framing.trailer_length,
            framing.restart_on_start,
            counters=counters,
        )
    return FixedLengthFramer(framing.length, framing.start, framing.end, counters=counters)
