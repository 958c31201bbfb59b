"""What a decision looked at: the facts the rules match on, recorded in every decision."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import NamedTuple

from edge_agent.sorting.lanes import LaneState

# Inputs only a DWS unit or a scan tunnel provides; left out of the event when unknown.
MEASURED_ONLY_BY_DWS = ("length_mm", "width_mm", "height_mm", "volume_cm3",
                        "chargeable_weight_kg", "labels")
# Inputs most parcels lack (no order id in the manifest, no hold): left out when unknown too.
ONLY_WHEN_KNOWN = (*MEASURED_ONLY_BY_DWS, "order_id", "hold_id", "hold_reason",
                   "dangerous_goods", "declared_value", "currency", "customs_mode",
                   "customs_value", "customs_check")


class DecisionInputs(NamedTuple):
    """Everything a decision used. A NamedTuple: built on every decision, and a tuple costs a
    tenth of a frozen dataclass to make (the decision budget is 50 µs)."""

    symbology: str | None
    no_read: bool
    identifier_kind: str
    identifier_valid: bool
    identifier_problem: str | None
    weight_kg: float | None  # None: no stable weight paired
    weight_stable: bool
    weight_status: str | None
    declared_weight_kg: float | None
    country: str | None
    postal_code: str | None
    province: str | None
    service: str | None
    destination_source: str | None  # "barcode", "manifest" or None
    lane_states: Mapping[str, LaneState]  # every lane of the rule set, open when not told
    local_time: datetime  # in the site's time zone (ISO 8601 text in to_dict)
    destination_known: bool
    manifest_hit: bool
    late: bool
    # Added after the first contract version (consumers must accept their absence: a replayed
    # old event has None, meaning unknown):
    weight_pairing: str | None  # how the weight was matched (PAIRING_OUTCOMES)
    weight_offset_ms: float | None  # the reading's time from the scan
    clock_synchronised: bool | None  # the kernel said the wall clock was synchronised
    length_mm: float | None  # as measured (DWS); None: not measured
    width_mm: float | None
    height_mm: float | None
    volume_cm3: float | None  # as sent, or length x width x height
    chargeable_weight_kg: float | None  # max(actual, volume / the rules' divisor)
    labels: tuple[str, ...] | None  # every label read, when there were several
    # Defaulted (None: unknown), so a record built from fewer values still reads:
    order_id: str | None = None  # the manifest row's order id
    hold_id: str | None = None  # central's hold on the parcel (by barcode or order id), if any
    hold_reason: str | None = None  # central's reason for it
    # Air and customs (edge_agent.sorting.constraints), from the manifest; None: not declared.
    dangerous_goods: tuple[str, ...] | None = None  # declared flags; (): declared none
    declared_value: float | None = None
    currency: str | None = None
    customs_mode: str | None = None
    customs_value: float | None = None  # declared value in the rules' customs currency
    customs_check: str | None = None  # within_limit, over_limit, unknown_currency

    def to_dict(self) -> dict[str, object]:
        out: dict[str, object] = self._asdict()
        out["lane_states"] = {name: str(state) for name, state in self.lane_states.items()}
        out["local_time"] = self.local_time.isoformat()
        if self.labels is not None:
            out["labels"] = list(self.labels)
        if self.dangerous_goods is not None:
            out["dangerous_goods"] = list(self.dangerous_goods)
        # What a scanner-and-scale line never measures is left out rather than sent as null:
        # absent means unknown to a consumer either way, and every parcel event stays small
        # (two events fit in one of the outbox's 2 KB pages, not one).
        for name in ONLY_WHEN_KNOWN:
            if out[name] is None:
                del out[name]
        return out
