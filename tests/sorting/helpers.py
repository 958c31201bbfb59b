"""Builders shared by the sorting tests."""

from datetime import UTC, datetime

from edge_agent.cli.main import main
from edge_agent.sorting.decision import Parcel

# 10:00 in Hong Kong (UTC+8): before the Zhuhai route's 20:00 cutoff.
MORNING = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
# 20:30 in Hong Kong: after the cutoff.
EVENING = datetime(2026, 11, 20, 12, 30, tzinfo=UTC)


def gs1_to(country_numeric: str, postal: str, sscc: str = "376130321109103420") -> str:
    """A GS1-128 label addressed with AI 421 (country + postal code)."""
    return f"]C100{sscc}421{country_numeric}{postal}"


def parcel(barcode: str | None = "RB123456785GB", weight: float | None = 2.0, *,
           stable: bool = True, no_read: bool = False, status: str | None = "ok",
           late: bool = False, pairing: str | None = None) -> Parcel:
    return Parcel(
        parcel_id="p1", barcode=barcode, symbology=None, no_read=no_read, weight_kg=weight,
        weight_stable=stable, weight_status=status, scanned_at=MORNING, scanned_ns=0, late=late,
        weight_pairing=pairing,
    )


def run(capsys, *argv: str) -> tuple[int, str, str]:
    """`edge-agent ARGV...` in this process: (exit code, stdout, stderr)."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err
