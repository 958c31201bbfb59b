"""Lanes (the sorter's bins) and their states.

A lane's state comes from the sorter (bin full) or from a central command (blocked for
maintenance). A lane missing from the states mapping is open.
"""

from __future__ import annotations

from enum import StrEnum

from edge_agent.validation import StrictModel


class LaneState(StrEnum):
    OPEN = "open"
    FULL = "full"
    BLOCKED = "blocked"


class Lane(StrictModel):
    name: str
    bin: int
    # Parcels heavier than this cannot take this lane's route; they go to the overflow lane.
    weight_limit_kg: float | None = None
    # Where a parcel goes when this lane is full, blocked or over its weight limit.
    overflow: str | None = None
