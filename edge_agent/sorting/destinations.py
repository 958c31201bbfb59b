"""Where a parcel goes: from its barcode when it says so, otherwise from the manifest.

Mainland China postal codes (six digits) name their province in the first two digits; the table
below covers every province-level division. A code outside the table, a country code this
module does not know, or a malformed postal code leaves the destination unknown: a parcel goes
to EXCEPTION rather than to a guessed route.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

from edge_agent.sorting.identifiers import Identifier

if TYPE_CHECKING:
    from edge_agent.sorting.manifest import ManifestEntry

# First two digits of a mainland China postal code -> province-level division.
CN_POSTAL_PREFIX_PROVINCE: dict[str, str] = {
    **dict.fromkeys(("01", "02"), "Inner Mongolia"),
    **dict.fromkeys(("03", "04"), "Shanxi"),
    **dict.fromkeys(("05", "06", "07"), "Hebei"),
    "10": "Beijing",
    **dict.fromkeys(("11", "12"), "Liaoning"),
    "13": "Jilin",
    **dict.fromkeys(("15", "16"), "Heilongjiang"),
    "20": "Shanghai",
    **dict.fromkeys(("21", "22"), "Jiangsu"),
    **dict.fromkeys(("23", "24"), "Anhui"),
    **dict.fromkeys(("25", "26", "27"), "Shandong"),
    "30": "Tianjin",
    **dict.fromkeys(("31", "32"), "Zhejiang"),
    **dict.fromkeys(("33", "34"), "Jiangxi"),
    **dict.fromkeys(("35", "36"), "Fujian"),
    "40": "Chongqing",
    **dict.fromkeys(("41", "42"), "Hunan"),
    **dict.fromkeys(("43", "44"), "Hubei"),
    **dict.fromkeys(("45", "46", "47"), "Henan"),
    **dict.fromkeys(("51", "52"), "Guangdong"),
    **dict.fromkeys(("53", "54"), "Guangxi"),
    **dict.fromkeys(("55", "56"), "Guizhou"),
    "57": "Hainan",
    **dict.fromkeys(("61", "62", "63", "64"), "Sichuan"),
    **dict.fromkeys(("65", "66", "67"), "Yunnan"),
    **dict.fromkeys(("71", "72"), "Shaanxi"),
    **dict.fromkeys(("73", "74"), "Gansu"),
    "75": "Ningxia",
    "81": "Qinghai",
    **dict.fromkeys(("83", "84"), "Xinjiang"),
    "85": "Tibet",
}
CN_PROVINCES = frozenset(CN_POSTAL_PREFIX_PROVINCE.values())

# ISO 3166-1 numeric -> alpha-2, for GS1 AI 421. Only the codes this warehouse sees; any other
# number stays an unknown destination (never guessed from a near match).
ISO_NUMERIC_TO_ALPHA2: dict[str, str] = {
    "036": "AU", "040": "AT", "056": "BE", "076": "BR", "124": "CA", "156": "CN", "158": "TW",
    "203": "CZ", "208": "DK", "246": "FI", "250": "FR", "276": "DE", "344": "HK", "356": "IN",
    "360": "ID", "372": "IE", "376": "IL", "380": "IT", "392": "JP", "410": "KR", "446": "MO",
    "458": "MY", "484": "MX", "528": "NL", "554": "NZ", "578": "NO", "608": "PH", "616": "PL",
    "620": "PT", "643": "RU", "682": "SA", "702": "SG", "704": "VN", "710": "ZA", "724": "ES",
    "752": "SE", "756": "CH", "764": "TH", "784": "AE", "826": "GB", "840": "US",
}


class DestinationSource:
    BARCODE = "barcode"
    MANIFEST = "manifest"


class Destination(NamedTuple):
    country: str | None  # ISO 3166 alpha-2; None when unknown
    postal_code: str | None
    province: str | None  # mainland China only
    source: str | None  # DestinationSource, or None when nothing said where the parcel goes

    @property
    def known(self) -> bool:
        """A route can be chosen: a country, and for mainland China a province."""
        if self.country is None:
            return False
        return self.country != "CN" or self.province is not None


UNKNOWN_DESTINATION = Destination(None, None, None, None)
_MANIFEST = DestinationSource.MANIFEST
_make = tuple.__new__  # builds a NamedTuple from values in field order, skipping its __new__


def cn_province(postal_code: str | None) -> str | None:
    """The province of a mainland China postal code, or None if it is not a valid one."""
    if postal_code is None or len(postal_code) != 6 or not postal_code.isdigit():
        return None
    return CN_POSTAL_PREFIX_PROVINCE.get(postal_code[:2])


def make_destination(country: str | None, postal_code: str | None, source: str) -> Destination:
    province = cn_province(postal_code) if country == "CN" else None
    return _make(Destination, (country, postal_code, province, source))


def resolve_destination(
    identifier: Identifier, manifest_entry: ManifestEntry | None, default_country: str
) -> Destination:
    """The barcode's own destination (AI 421, then AI 420) first, then the manifest's."""
    fields = identifier.fields
    if fields:  # only a GS1 label's fields may say where it goes
        with_country = fields.get("421")
        if with_country is not None:
            # An unknown numeric country is kept as unknown: the barcode did say where, and a
            # manifest row disagreeing with a label is not a reason to trust the manifest.
            country = ISO_NUMERIC_TO_ALPHA2.get(with_country[:3])
            return make_destination(country, with_country[3:], DestinationSource.BARCODE)
        postal_only = fields.get("420")
        if postal_only is not None:
            return make_destination(default_country, postal_only, DestinationSource.BARCODE)
    if manifest_entry is not None:
        # Inline make_destination: this is the usual path, once per parcel.
        country, postal_code = manifest_entry.country, manifest_entry.postal_code
        province = None
        if country == "CN" and postal_code is not None and len(postal_code) == 6 \
                and postal_code.isdigit():
            province = CN_POSTAL_PREFIX_PROVINCE.get(postal_code[:2])
        return _make(Destination, (country, postal_code, province, _MANIFEST))
    return UNKNOWN_DESTINATION
