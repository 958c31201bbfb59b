"""Destinations: the mainland China postal table, AI 421 numeric countries, manifest fallback."""

import pytest

from edge_agent.sorting.destinations import (
    CN_POSTAL_PREFIX_PROVINCE,
    CN_PROVINCES,
    cn_province,
    resolve_destination,
)
from edge_agent.sorting.identifiers import parse_identifier
from edge_agent.sorting.manifest import ManifestEntry

# Real post codes of each province-level division's capital (or main city).
CAPITALS = {
    "010000": "Inner Mongolia", "030000": "Shanxi", "050000": "Hebei", "100000": "Beijing",
    "110000": "Liaoning", "130000": "Jilin", "150000": "Heilongjiang", "200000": "Shanghai",
    "210000": "Jiangsu", "230000": "Anhui", "250000": "Shandong", "300000": "Tianjin",
    "310000": "Zhejiang", "330000": "Jiangxi", "350000": "Fujian", "400000": "Chongqing",
    "410000": "Hunan", "430000": "Hubei", "450000": "Henan", "510000": "Guangdong",
    "530000": "Guangxi", "550000": "Guizhou", "570000": "Hainan", "610000": "Sichuan",
    "650000": "Yunnan", "710000": "Shaanxi", "730000": "Gansu", "750000": "Ningxia",
    "810000": "Qinghai", "830000": "Xinjiang", "850000": "Tibet",
    # Second prefixes of provinces that have several: Suzhou, Wenzhou, Qingdao, Shenzhen...
    "215000": "Jiangsu", "325000": "Zhejiang", "266000": "Shandong", "518000": "Guangdong",
    "221000": "Jiangsu", "321000": "Zhejiang", "361000": "Fujian", "471000": "Henan",
}


@pytest.mark.parametrize(("postal", "province"), sorted(CAPITALS.items()))
def test_postal_table(postal, province):
    assert cn_province(postal) == province


def test_every_province_level_division_is_covered():
    assert len(CN_PROVINCES) == 31  # 22 provinces, 5 autonomous regions, 4 municipalities
    assert set(CAPITALS.values()) == CN_PROVINCES


@pytest.mark.parametrize("postal", ["", "20000", "2000001", "20000A", "990000", "000000", None])
def test_not_a_mainland_postal_code(postal):
    assert cn_province(postal) is None


def test_prefix_table_holds_only_two_digit_keys():
    assert all(len(k) == 2 and k.isdigit() for k in CN_POSTAL_PREFIX_PROVINCE)


@pytest.mark.parametrize(("numeric", "alpha2"), [
    ("156", "CN"), ("344", "HK"), ("446", "MO"), ("158", "TW"), ("840", "US"), ("999", None),
])
def test_ai_421_country(numeric, alpha2):
    identifier = parse_identifier(f"]C1421{numeric}200000")
    destination = resolve_destination(identifier, None, "CN")
    assert destination.country == alpha2
    assert destination.source == "barcode"
    assert destination.known is (alpha2 is not None)


def test_manifest_fallback_and_nothing():
    identifier = parse_identifier("RB123456785GB")
    entry = ManifestEntry("RB123456785GB", "CN", "310000")
    from_manifest = resolve_destination(identifier, entry, "CN")
    assert (from_manifest.province, from_manifest.source) == ("Zhejiang", "manifest")
    nothing = resolve_destination(identifier, None, "CN")
    assert (nothing.known, nothing.source) == (False, None)
