"""A realistic stream of parcels for the simulated line, with matching manifest rows.

The mix follows what this warehouse sees: most parcels bound for Shanghai, Zhejiang and Jiangsu
(the Zhuhai route), other mainland provinces, exports, and the awkward ones the line must catch:
no-reads, bad check digits, unknown destinations, heavy parcels, weights that disagree with the
manifest, and parcels that never settle on the scale. Every parcel gets a weight that differs
from its neighbours' so a mis-pairing (a parcel given its neighbour's weight) is visible.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from edge_agent.sorting.identifiers import (
    GS,
    gs1_check_digit,
    parse_identifier,
    s10_check_digit,
)

# (category, share of parcels). Shares are what a busy evening looks like, roughly.
MIX = (
    ("yrd", 0.44),  # Shanghai/Zhejiang/Jiangsu: ZHUHAI before the cutoff, SHANGHAI after
    ("yrd_heavy", 0.05),  # over the Zhuhai route's 30 kg: SHANGHAI
    ("mainland_other", 0.14),  # other provinces: SHANGHAI
    ("export", 0.15),
    ("no_read", 0.04),
    ("bad_check_digit", 0.03),
    ("unknown_destination", 0.03),
    ("weight_mismatch", 0.04),
    ("overweight", 0.02),  # over 50 kg
    ("unstable", 0.03),  # never a stable weight
    ("hk_local", 0.03),
)

YRD_POSTCODES = ("200120", "201203", "310012", "315040", "210008", "215021", "226001")
OTHER_MAINLAND_POSTCODES = ("100027", "510620", "610041", "430071", "710061", "300202")
EXPORT_DESTINATIONS = (("US", "94105"), ("GB", "EC1A1BB"), ("JP", "1500001"), ("AU", "2000"),
                       ("SG", "018956"), ("DE", "10115"))
ORIGIN_COUNTRIES = ("US", "GB", "JP", "DE", "AU", "KR")


@dataclass(frozen=True)
class SimParcel:
    index: int
    category: str
    barcode: str | None  # None: the scanner reports a no-read
    symbology: str | None  # AIM id the scanner sends in front of the data
    weight_kg: float | None  # None: the scale never settles for this parcel
    manifest: dict[str, Any] | None  # the manifest row central would have sent

    def expected_lane_hint(self) -> str:
        """The lane the default rules give before the Zhuhai cutoff (for humans reading logs)."""
        return {
            "yrd": "ZHUHAI", "yrd_heavy": "SHANGHAI", "mainland_other": "SHANGHAI",
            "export": "EXPORT",
        }.get(self.category, "EXCEPTION")


def _s10(rng: random.Random, prefix: str, country: str, valid: bool = True) -> str:
    serial = f"{rng.randrange(10**8):08d}"
    check = s10_check_digit(serial)
    if not valid:
        check = (check + 1 + rng.randrange(9)) % 10
    return f"{prefix}{serial}{check}{country}"


def _sscc(rng: random.Random, index: int) -> str:
    body = f"0{rng.randrange(10**7):07d}{index % 10**9:09d}"
    return body + str(gs1_check_digit(body))


def _weight(rng: random.Random, low: float, high: float, previous: float | None) -> float:
    while True:
        value = round(rng.uniform(low, high), 2)
        if previous is None or abs(value - previous) >= 0.01:
            return value


def parcel_mix(count: int, seed: int = 7) -> list[SimParcel]:
    """`count` parcels in a shuffled, repeatable mix (same seed, same parcels)."""
    rng = random.Random(seed)
    categories = [name for name, _ in MIX]
    weights = [share for _, share in MIX]
    parcels: list[SimParcel] = []
    previous_weight: float | None = None
    for index in range(count):
        category = rng.choices(categories, weights)[0]
        parcel = _make(rng, index, category, previous_weight)
        parcels.append(parcel)
        if parcel.weight_kg is not None:
            previous_weight = parcel.weight_kg
    return parcels


def _make(rng: random.Random, index: int, category: str, previous: float | None) -> SimParcel:
    weight = _weight(rng, 0.2, 28.0, previous)
    declared = weight
    country, postcode = "CN", rng.choice(YRD_POSTCODES)
    barcode: str | None = _s10(rng, rng.choice("CERL") + rng.choice("ABCDEFGHJ"),
                               rng.choice(ORIGIN_COUNTRIES))
    symbology: str | None = "]C0"
    with_manifest = True
    if category == "yrd" and rng.random() < 0.3:
        # A GS1-128 label that carries its own destination (AI 421: 156 = China).
        barcode = f"00{_sscc(rng, index)}3102{round(weight * 100):06d}{GS}421156{postcode}"
        symbology = "]C1"
        with_manifest = rng.random() < 0.5
    elif category == "yrd_heavy":
        weight = declared = _weight(rng, 31.0, 48.0, previous)
    elif category == "mainland_other":
        postcode = rng.choice(OTHER_MAINLAND_POSTCODES)
    elif category == "export":
        country, postcode = rng.choice(EXPORT_DESTINATIONS)
    elif category == "hk_local":
        country, postcode = "HK", ""
    elif category == "no_read":
        barcode, symbology, with_manifest = None, None, False
    elif category == "bad_check_digit":
        barcode = _s10(rng, "CP", rng.choice(ORIGIN_COUNTRIES), valid=False)
    elif category == "unknown_destination":
        barcode = f"LP00{rng.randrange(10**12):012d}"
        with_manifest = False
    elif category == "weight_mismatch":
        declared = round(weight * rng.choice((0.5, 1.6)) + 0.5, 2)
    elif category == "overweight":
        weight = declared = _weight(rng, 51.0, 58.0, previous)
    elif category == "unstable":
        weight = None  # type: ignore[assignment]
    manifest = None
    if with_manifest and barcode is not None:
        manifest = {
            # Keyed as the agent looks it up: the S10 number, the SSCC of a GS1 label...
            "barcode": parse_identifier(barcode, symbology).key or barcode,
            "country": country, "postal_code": postcode or None,
            "declared_weight_kg": declared, "service": "standard",
        }
    return SimParcel(index, category, barcode, symbology, weight, manifest)
