"""Which devices one line may have: the valid combinations of device kinds.

A parcel enters the agent one of two ways, and a line uses exactly one of them:

- **scanner + scale** (the scale optional): each scan starts a parcel and pairing gives it the
  scale's reading for it (docs/PAIRING.md);
- **dws**: a DWS unit's record is the whole parcel (labels, weight, size), decided at once.

A sorter is optional with either (without one, decisions are recorded and published only).
A third way: a **sorter-driven** sorter (profile sorter-host-json) tracks parcels itself and
sends what its own scan tunnel read with each destination request, so it is the line's only
device: a scanner, scale or DWS unit beside it would start second parcels for its boxes.
At most one device of each kind. A DWS unit beside a scanner or a scale is refused: its
record is already the parcel, so a scan would start a second parcel for the same box and a
scale's reading would have no scan to pair with.
"""

from __future__ import annotations

from collections.abc import Mapping

VALID_LINES = "scanner [+ scale] [+ sorter], or dws [+ sorter], or a sorter-driven sorter alone"


def line_problems(kinds: Mapping[str, str], sorter_driven: bool = False) -> list[str]:
    """Problems with a line's devices, given each device's kind (device name -> kind);
    `sorter_driven`: the sorter asks for destinations (sorter-host)."""
    by_kind: dict[str, list[str]] = {}
    for name, kind in kinds.items():
        by_kind.setdefault(kind, []).append(name)
    problems = [
        f"devices: more than one {kind} ({', '.join(sorted(names))})"
        for kind, names in by_kind.items() if len(names) > 1
    ]
    if "dws" in by_kind:
        others = sorted(name for kind in ("scanner", "scale") for name in by_kind.get(kind, ()))
        if others:
            problems.append(
                f"devices: a DWS unit ({', '.join(sorted(by_kind['dws']))}) replaces the "
                f"scanner and the scale, its record is the whole parcel: remove "
                f"{', '.join(others)} (valid lines: {VALID_LINES})")
    if sorter_driven:
        others = sorted(name for name, kind in kinds.items() if kind != "sorter")
        if others:
            problems.append(
                f"devices: a sorter-driven sorter ({', '.join(sorted(by_kind['sorter']))}) "
                f"reports what it read with each request: remove {', '.join(others)} "
                f"(valid lines: {VALID_LINES})")
    return problems
