"""One manifest row: its fields, their validation, and the error that names what is wrong."""

from __future__ import annotations

import re
from typing import NamedTuple

from edge_agent.errors import ProblemsError
from edge_agent.safe_text import shown

FIELDS = ("barcode", "country", "postal_code", "declared_weight_kg", "service")
MAX_BARCODE_CHARS = 64
MAX_POSTAL_CHARS = 16
MAX_SERVICE_CHARS = 32
# No parcel on this line weighs more; a bigger number is a unit mistake (grams for kg).
MAX_DECLARED_WEIGHT_KG = 1000.0

class ManifestError(ProblemsError):
    """A manifest entry, file or store is bad; `problems` names each line or field."""


# The usual field: printable ASCII with no space at either end. One C-level match accepts it;
# anything else takes the careful path below (a million-row import runs this 3 million times).
_CLEAN_TEXT = re.compile(r"[!-~](?:[ -~]*[!-~])?")
_COUNTRY = re.compile(r"[A-Za-z]{2}")


def _text(name: str, value: object, limit: int, required: bool) -> str | None:
    if isinstance(value, str) and len(value) <= limit and _CLEAN_TEXT.fullmatch(value):
        return value
    if value is None or value == "":
        if required:
            raise ValueError(f"{name}: required")
        return None
    if not isinstance(value, str):
        raise ValueError(f"{name}: expected text, got {type(value).__name__}")
    value = value.strip()
    if not value or len(value) > limit or not value.isprintable():
        raise ValueError(f"{name}: {shown(value)} must be 1-{limit} printable characters")
    return value


def check_fields(
    barcode: object, country: object, postal_code: object, weight: object, service: object
) -> tuple[str, str, str | None, float | None, str | None]:
    """Validated, normalised fields of one entry; ValueError names the first bad field."""
    barcode_text = _text("barcode", barcode, MAX_BARCODE_CHARS, required=True)
    if not (isinstance(country, str) and _COUNTRY.fullmatch(country)):
        raise ValueError(
            f"country: {shown(country)} must be an ISO 3166 alpha-2 code such as CN")
    if weight is None or weight == "":
        weight_kg = None
    else:
        try:
            weight_kg = float(weight)  # type: ignore[arg-type]
        except (TypeError, ValueError):
            raise ValueError(f"declared_weight_kg: {shown(weight)} is not a number") from None
        if isinstance(weight, bool) or not (0 < weight_kg <= MAX_DECLARED_WEIGHT_KG):
            raise ValueError(
                f"declared_weight_kg: {shown(weight)} must be above 0 and at most "
                f"{MAX_DECLARED_WEIGHT_KG:g}"
            )
    assert barcode_text is not None
    return (
        barcode_text,
        country.upper(),
        _text("postal_code", postal_code, MAX_POSTAL_CHARS, required=False),
        weight_kg,
        _text("service", service, MAX_SERVICE_CHARS, required=False),
    )


class _EntryFields(NamedTuple):
    barcode: str
    country: str  # ISO 3166 alpha-2
    postal_code: str | None = None
    declared_weight_kg: float | None = None
    service: str | None = None


class ManifestEntry(_EntryFields):
    """One manifest row, validated when made (ManifestError names the field).

    A NamedTuple so that building one from a stored row costs a fraction of a microsecond;
    rows read back from the store were validated on the way in and skip the checks.
    """

    __slots__ = ()

    def __new__(
        cls,
        barcode: str,
        country: str,
        postal_code: str | None = None,
        declared_weight_kg: float | None = None,
        service: str | None = None,
    ) -> ManifestEntry:
        try:
            checked = check_fields(barcode, country, postal_code, declared_weight_kg, service)
        except ValueError as exc:
            raise ManifestError("manifest entry", [str(exc)]) from None
        return tuple.__new__(cls, checked)

    @classmethod
    def from_dict(cls, data: dict) -> ManifestEntry:
        unknown = sorted(set(data) - set(FIELDS))
        if unknown:
            raise ManifestError("manifest entry", [f"{unknown[0]}: unknown field (a typo?)"])
        return cls(**data)

    def to_dict(self) -> dict[str, object]:
        return dict(self._asdict())
