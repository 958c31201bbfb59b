"""A DWS unit's record becomes a parcel as it is: nothing to pair, nothing to wait for.

A DWS unit (or a scan tunnel with a dimensioner and a scale) reads the labels, weighs and
measures each parcel in one place and sends one record, so the record *is* the parcel. Its
weight is the parcel's own by construction: `weight_pairing` says `dws_record`.
"""

from __future__ import annotations

from datetime import datetime

from edge_agent.devices.messages import DwsRecord
from edge_agent.sorting.decision import Parcel

DWS_RECORD = "dws_record"  # the parcel's weight_pairing (PAIRING_OUTCOMES)


def parcel_from_dws(record: DwsRecord, parcel_id: str, scanned_at: datetime,
                    min_weight_kg: float = 0.0) -> Parcel:
    """The parcel of one record. Every label goes in `labels` when there are several (the
    decision picks the one that names the parcel); a weight under `min_weight_kg` is an empty
    belt's reading, not the parcel's (as for a scale: PairingConfig.min_weight_kg)."""
    weight = record.weight_kg
    if weight is not None and weight < min_weight_kg:
        weight = None
    barcodes = record.barcodes
    return Parcel(
        parcel_id=parcel_id,
        barcode=barcodes[0] if barcodes else None,
        symbology=None,
        no_read=not barcodes,
        weight_kg=weight,
        weight_stable=weight is not None,
        weight_status="ok" if weight is not None else None,
        scanned_at=scanned_at,
        scanned_ns=record.received_ns,
        weight_pairing=DWS_RECORD,
        length_mm=record.length_mm,
        width_mm=record.width_mm,
        height_mm=record.height_mm,
        volume_cm3=record.volume_cm3,
        labels=barcodes if len(barcodes) > 1 else (),
    )
