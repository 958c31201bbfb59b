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
    # Whether this lane's route has an air leg. Unsaid (None) counts as flying for dangerous
    # goods: a parcel with a declared flag never takes such a lane (edge_agent.sorting
    # .constraints), but goes to `ground_lane` (a lane with flies = false) or to EXCEPTION.
    flies: bool | None = None
    ground_lane: str | None = None
