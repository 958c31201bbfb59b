"""A DWS record becomes its parcel: labels, weight and size as measured, nothing paired."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge_agent.devices.messages import DwsRecord
from edge_agent.sorting.dws_parcels import parcel_from_dws
from edge_agent.sorting.pairing_parcels import PAIRING_OUTCOMES

AT = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def record(barcodes=("LP1",), weight=1.5, dims=(300.0, 200.0, 100.0), volume=6000.0):
    return DwsRecord(tuple(barcodes), not barcodes, weight, *dims, volume, None, None, b"", 77)


@pytest.mark.parametrize(
    ("made", "barcode", "labels", "no_read"),
    [
        (record(), "LP1", (), False),
        (record(["RB1", "LP1"]), "RB1", ("RB1", "LP1"), False),
        (record([]), None, (), True),
    ],
)
def test_labels(made, barcode, labels, no_read):
    parcel = parcel_from_dws(made, "p1", AT)
    assert (parcel.barcode, parcel.labels, parcel.no_read) == (barcode, labels, no_read)
    assert (parcel.parcel_id, parcel.scanned_at, parcel.scanned_ns) == ("p1", AT, 77)
    assert parcel.weight_pairing == "dws_record" and "dws_record" in PAIRING_OUTCOMES
    assert not parcel.late


@pytest.mark.parametrize(
    ("weight", "min_weight", "want"),
    [(1.5, 0.01, 1.5), (0.0, 0.01, None), (0.005, 0.01, None), (None, 0.01, None),
     (0.0, 0.0, 0.0)],
)
def test_weight_below_the_empty_belt_limit_is_no_weight(weight, min_weight, want):
    parcel = parcel_from_dws(record(weight=weight), "p1", AT, min_weight)
    assert parcel.weight_kg == want
    assert parcel.weight_stable is (want is not None)
    assert parcel.weight_status == ("ok" if want is not None else None)


def test_sizes_go_through_unmeasured_as_none():
    parcel = parcel_from_dws(record(dims=(None, None, None), volume=None), "p1", AT)
    assert (parcel.length_mm, parcel.width_mm, parcel.height_mm, parcel.volume_cm3) == (
        None, None, None, None)
    measured = parcel_from_dws(record(), "p1", AT)
    assert (measured.length_mm, measured.width_mm, measured.height_mm,
            measured.volume_cm3) == (300.0, 200.0, 100.0, 6000.0)
