"""Air and customs constraints, as data: what the manifest declares about a parcel's contents and
value, what the rules file says about routes that fly and customs limits, and the checks that
join the two. Sources and figures: docs/CONSTRAINTS.md.

- Dangerous goods. Mail with lithium batteries or cells, liquids or powders may not go by air
  on the mainland routes; a parcel with any declared flag never takes a lane whose route flies
  (or may fly: a lane that does not say is taken to fly). The lane's `ground_lane` takes it when
  the rules name one, else the exception lane; reason `air_restricted` either way.
- Customs value. The declared value, converted with the rules' rates into the limits' currency,
  against the limit of the parcel's customs mode. A currency without a rate is not guessed at:
  `customs_check` "unknown_currency". A value without a mode, or no value, is unknown (None).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from pydantic import Field, field_validator, model_validator

from edge_agent.safe_text import shown
from edge_agent.validation import StrictModel

DANGEROUS_GOODS = ("lithium_battery", "liquid", "powder", "other")
# Declared in the manifest as "no dangerous goods": a known empty set, not an unknown one.
NO_DANGEROUS_GOODS = "none"
CUSTOMS_MODES = ("personal_postal", "cross_border_ecommerce")
CUSTOMS_CHECKS = ("within_limit", "over_limit", "unknown_currency")
# A declared value above this is a unit mistake (cents for yuan), not a parcel on this line.
MAX_DECLARED_VALUE = 100_000_000.0
CURRENCY_PATTERN = r"^[A-Z]{3}$"


# -- manifest fields ------------------------------------------------------------------------------

def check_dangerous_goods(value: object) -> str | None:
    """Flags as stored: sorted, `;`-joined ("liquid;lithium_battery"), or "none"; None when not
    declared. Text (flags separated by `;`, `|` or spaces) or, from JSON, a list of flags."""
    if value is None or value == "":
        return None
    if isinstance(value, str):
        items = value.replace("|", ";").replace(" ", ";").split(";")
    elif isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        items = list(value)
    else:
        raise ValueError(f"dangerous_goods: {shown(value)} must be flags separated by ';'")
    flags = sorted({item.strip().lower() for item in items if item.strip()})
    if flags == [NO_DANGEROUS_GOODS]:
        return NO_DANGEROUS_GOODS
    unknown = [flag for flag in flags if flag not in DANGEROUS_GOODS]
    if unknown or not flags:
        raise ValueError(f"dangerous_goods: {shown(unknown[0] if unknown else value)} is not a "
                         f"flag; flags: {', '.join(DANGEROUS_GOODS)}, or '{NO_DANGEROUS_GOODS}'")
    return ";".join(flags)


def check_declared_value(value: object) -> float | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError(f"declared_value: {shown(value)} is not a number")
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ValueError(f"declared_value: {shown(value)} is not a number") from None
    if not (math.isfinite(number) and 0 <= number <= MAX_DECLARED_VALUE):
        raise ValueError(f"declared_value: {shown(value)} must be 0 to {MAX_DECLARED_VALUE:,.0f}")
    return number


def check_currency(value: object) -> str | None:
    if value is None or value == "":
        return None
    if not (isinstance(value, str) and len(value.strip()) == 3 and value.strip().isalpha()
            and value.strip().isascii()):
        raise ValueError(f"currency: {shown(value)} must be an ISO 4217 code such as CNY")
    return value.strip().upper()


def check_customs_mode(value: object) -> str | None:
    if value is None or value == "":
        return None
    if value not in CUSTOMS_MODES:
        raise ValueError(f"customs_mode: {shown(value)} must be one of {', '.join(CUSTOMS_MODES)}")
    return str(value)


def dangerous_goods_flags(stored: str | None) -> tuple[str, ...] | None:
    """The stored text as the decision records it: a tuple of flags, () for declared none,
    None for not declared."""
    if stored is None:
        return None
    return () if stored == NO_DANGEROUS_GOODS else tuple(stored.split(";"))


# -- the rules file -------------------------------------------------------------------------------

class CustomsLimits(StrictModel):
    """[customs] in the rules file: limits per customs mode, in `currency`, and the rates that
    convert a declared value into it (1 unit of the key's currency = this many of `currency`)."""

    currency: str = Field(default="CNY", pattern=CURRENCY_PATTERN)
    personal_postal: float = Field(default=800.0, gt=0)
    cross_border_ecommerce: float = Field(default=5000.0, gt=0)
    rates: dict[str, float] = Field(default_factory=lambda: {"CNY": 1.0}, max_length=200)

    @field_validator("rates")
    @classmethod
    def _rates(cls, rates: dict[str, float]) -> dict[str, float]:
        for code, rate in rates.items():
            if not (len(code) == 3 and code.isascii() and code.isalpha() and code.isupper()):
                raise ValueError(f"rates: {code!r} must be an ISO 4217 code such as HKD")
            if not (math.isfinite(rate) and rate > 0):
                raise ValueError(f"rates.{code}: must be a positive number")
        return rates

    @model_validator(mode="after")
    def _own_currency(self) -> CustomsLimits:
        rate = self.rates.setdefault(self.currency, 1.0)
        if rate != 1.0:
            raise ValueError(f"rates.{self.currency}: the limits' own currency converts at 1")
        return self

    def check(self, value: float | None, currency: str | None,
              mode: str | None) -> tuple[float | None, str | None]:
        """(value in `currency`, customs_check) for a declared value; (None, None) when no
        value was declared."""
        if value is None:
            return None, None
        rate = self.rates.get(currency) if currency is not None else None
        if rate is None:
            return None, "unknown_currency"
        converted = round(value * rate, 2)
        if mode is None:
            return converted, None  # which limit applies is unknown: not guessed
        limit = self.personal_postal if mode == "personal_postal" else self.cross_border_ecommerce
        return converted, ("over_limit" if converted > limit else "within_limit")


# -- the air guard --------------------------------------------------------------------------------

def air_problems(lanes: Mapping, exception_lane: str, hold_lane: str) -> list[str]:
    """What the rules validation adds: ground lanes exist and stay on the ground, and the lanes
    that take restricted parcels (exception, hold) are not said to fly."""
    problems = []
    for name, lane in lanes.items():
        ground = lane.ground_lane
        if ground is None:
            continue
        if ground not in lanes:
            problems.append(f"lanes.{name}.ground_lane: unknown lane {ground!r}")
        elif lanes[ground].flies is not False:
            problems.append(f"lanes.{name}.ground_lane: lane {ground} must say flies = false")
    for role, name in (("exception_lane", exception_lane), ("hold_lane", hold_lane)):
        if name in lanes and lanes[name].flies:
            problems.append(f"lanes.{name}.flies: the {role} keeps parcels in the warehouse; "
                            "it cannot fly")
    return problems
