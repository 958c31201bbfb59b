"""One manifest row: its fields, their validation, and the error that names what is wrong."""

from __future__ import annotations

import re
from typing import NamedTuple

from edge_agent.errors import ProblemsError
from edge_agent.safe_text import shown
from edge_agent.sorting.constraints import (
    check_currency,
    check_customs_mode,
    check_dangerous_goods,
    check_declared_value,
)

FIELDS = ("barcode", "country", "postal_code", "declared_weight_kg", "service", "order_id",
          "dangerous_goods", "declared_value", "currency", "customs_mode")
# Columns added after the first manifest format: optional in files, and added to an older
# store when it is opened (their rows read them as unknown).
LATER_FIELDS = ("order_id", "dangerous_goods", "declared_value", "currency", "customs_mode")
MAX_BARCODE_CHARS = 64
MAX_ORDER_ID_CHARS = 64
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
    barcode: object, country: object, postal_code: object, weight: object, service: object,
    order_id: object = None, dangerous_goods: object = None, declared_value: object = None,
    currency: object = None, customs_mode: object = None,
) -> tuple:
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
        _text("order_id", order_id, MAX_ORDER_ID_CHARS, required=False),
        check_dangerous_goods(dangerous_goods),
        check_declared_value(declared_value),
        check_currency(currency),
        check_customs_mode(customs_mode),
    )


class _EntryFields(NamedTuple):
    barcode: str
    country: str  # ISO 3166 alpha-2
    postal_code: str | None = None
    declared_weight_kg: float | None = None
    service: str | None = None
    order_id: str | None = None  # what central's holds by order id match
    # Air and customs (edge_agent.sorting.constraints); None: not declared.
    dangerous_goods: str | None = None  # "liquid;lithium_battery", or "none"
    declared_value: float | None = None
    currency: str | None = None  # ISO 4217
    customs_mode: str | None = None  # personal_postal | cross_border_ecommerce


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
        order_id: str | None = None,
        dangerous_goods: str | list[str] | None = None,
        declared_value: float | None = None,
        currency: str | None = None,
        customs_mode: str | None = None,
    ) -> ManifestEntry:
        try:
            checked = check_fields(barcode, country, postal_code, declared_weight_kg, service,
                                   order_id, dangerous_goods, declared_value, currency,
                                   customs_mode)
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
        """The row's fields; a column added later is left out while unknown (as in old rows)."""
        out = dict(self._asdict())
        for name in LATER_FIELDS:
            if out[name] is None:
                del out[name]
        return out
