"""Host stalls the hub cannot see: a streaming scale's bursts tell pairing instead.

Found by bench/bench_pairing.py at 50 parcels a second on a loaded machine: the agent waiting in
select() was not run by the kernel for ~15 ms, twice in a row. The first stall delivered parcel
A's reading together with A's scan, the second B's reading with B's scan; the hub stamped each
batch when it read it (it had waited, so it reported no stamp error). A's reading then sat,
alone, in B's window, and B took A's weight. A streaming scale sends a frame every period, so a
read that brings several frames proves the host had been away since the port's previous read:
the readings set by such a read may date from then, and pairing must not place them closer.
"""

from __future__ import annotations

from edge_agent.devices.messages import Scan, Weight
from edge_agent.units import NS_PER_MS
from tests.sorting.test_pairing import make

FRAME_MS = 1
# parcel: (label, weight, scan ms, settle ms): readings settle ~8 ms before their scans.
PARCELS = [("Z", 1.0, 80.0, 72.5), ("A", 2.0, 100.0, 92.5), ("B", 3.0, 120.0, 113.5),
           ("C", 4.0, 140.0, 132.5), ("D", 5.0, 160.0, 151.5)]
# Where the host was away: whatever arrived in [start, end) is read at `end`, in one read.
STALLS = [(91.0, 107.8), (110.0, 119.2)]


def _arrivals() -> list[tuple[float, str, object]]:
    """(ms, port, what) as the devices sent it: scans, and a frame every FRAME_MS."""
    sent: list[tuple[float, str, object]] = [(at, "scanner", label)
                                             for label, _, at, _ in PARCELS]
    for tick in range(60, 175, FRAME_MS):
        kg, stable = 0.0, True
        for _, parcel_kg, _, settle in PARCELS:
            if settle - 2 * FRAME_MS <= tick < settle:
                kg, stable = round(parcel_kg * 0.8, 3), False  # arriving: motion
            elif settle <= tick < settle + 4 * FRAME_MS:
                kg = parcel_kg
        sent.append((float(tick), "scale", (kg, stable)))
    return sorted(sent, key=lambda s: s[0])


def _pair(stalls: list[tuple[float, float]]) -> dict[str, tuple[float | None, str]]:
    """Feed the pairer what the hub would read: each read's messages share its stamp."""
    pairer = make(mode="window", offset_ms=-8, window_ms=6)
    handed = []
    for at, port, what in _arrivals():
        for start, end in stalls:
            if start <= at < end:
                at = end
        stamp = int(at * NS_PER_MS)
        handed += pairer.ready(stamp)
        if port == "scanner":
            pairer.on_scan(Scan(data=str(what), received_ns=stamp))
        else:
            kg, stable = what
            pairer.on_weight(Weight(value=kg, unit="kg", value_kg=kg, stable=stable,
                                    received_ns=stamp))
    handed += pairer.ready(10**15)
    return {p.barcode: (p.weight_kg, p.weight_pairing) for p in handed}


def test_without_stalls_every_parcel_carries_its_own_weight() -> None:
    assert _pair([]) == {label: (kg, "paired") for label, kg, _, _ in PARCELS}


def test_two_unseen_stalls_cost_their_parcels_and_never_give_a_neighbours_weight() -> None:
    paired = _pair(STALLS)
    own = {label: kg for label, kg, _, _ in PARCELS}
    for label, (kg, _) in paired.items():
        assert kg in (None, own[label]), (label, kg, paired)
    assert paired["A"] == (None, "ambiguous")
    assert paired["B"] == (None, "ambiguous")
    # The parcels around them still carry their own weights.
    assert paired["Z"] == (1.0, "paired") and paired["D"] == (5.0, "paired")
