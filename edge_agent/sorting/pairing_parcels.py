"""What both pairing modes share: a parcel waiting for its weight, and how its weight matched."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import NamedTuple

from edge_agent.devices.messages import Scan

# How a parcel's weight was matched (`weight_pairing` in every decision's inputs):
PAIRING_OUTCOMES: dict[str, str] = {
    "paired": "a reading that provably belongs to this parcel",
    "none": "no reading at all where this parcel's reading was due",
    "unsettled": "the scale was in motion and never settled on this parcel",
    "overload": "the scale reported overload for this parcel",
    "ambiguous": "more than one reading could be this parcel's, or a neighbour's window holds "
    "the same reading: the settings cannot tell the parcels apart",
    "no_reply": "a polled scale did not answer this parcel's request in time",
    "reply_corrupt": "the polled scale's answer arrived garbled",
    "scale_busy": "a polled scale was still answering or resynchronising for another parcel",
    "scale_offline": "the scale's port was disconnected",
    "dws_record": "a DWS unit measured the parcel whole: the weight is its record's, nothing "
    "was paired (none when the record has no weight)",
}


class WeightMatch(NamedTuple):
    value_kg: float | None
    pairing: str  # a key of PAIRING_OUTCOMES
    offset_ms: float | None = None  # reading (or reply) time minus scan time

    @classmethod
    def without(cls, why: str) -> WeightMatch:
        return cls(None, why)


@dataclass(slots=True)
class Waiting:
    """A scanned parcel waiting for its weight."""

    scan: Scan
    parcel_id: str
    scanned_at: datetime
    stamp_error_ns: int = 0  # the scan's stamp may be this late (edge_agent.devices.hub)
    match: WeightMatch | None = None  # poll mode: set when its request is answered or lost
    requested_ns: int | None = None  # poll mode: when its request went to the scale
    reply_ns: int | None = None  # poll mode: when the reply to it arrived
