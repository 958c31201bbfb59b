"""Pairing under generated lines with random faults: never a wrong reading, and each fault
costs at most two parcels (the one it hit and a neighbour it cannot be told from)."""

from hypothesis import example, given, settings
from hypothesis import strategies as st

from edge_agent.devices.messages import Scan
from edge_agent.units import NS_PER_MS
from tests.sorting.line_model import (
    FAULTS,
    PARCEL_FRAMES_MS,
    POLL_FAULTS,
    PolledParcel,
    run_polled_line,
    window_line,
)
from tests.sorting.test_pairing import make


@st.composite
def lines(draw):
    window = draw(st.integers(5, 120))
    offset = draw(st.integers(-150, 150))
    jitter = draw(st.integers(0, min(window, 20)))  # jitter the settings were chosen to cover
    count = draw(st.integers(5, 60))
    # Gaps the settings can tell apart (over 2 x window), and from time to time ones they
    # cannot: those parcels must then go without a weight, never with a neighbour's. No gap is
    # shorter than one parcel's time on the platter.
    shortest = PARCEL_FRAMES_MS + 2 * jitter
    separable = max(shortest, 2 * window + 2 * jitter + 1)
    gap = st.one_of(st.integers(separable, separable + 400),
                    st.integers(shortest, max(shortest, separable)))
    gaps = draw(st.lists(gap, min_size=count, max_size=count))
    jitters = draw(st.lists(st.tuples(st.integers(-jitter // 2, 0), st.integers(-jitter // 2,
                                                                                jitter // 2)),
                            min_size=count, max_size=count))
    fault_rate = draw(st.sampled_from([0.0, 0.01, 0.05, 0.2]))
    faults = [draw(st.sampled_from(FAULTS)) if draw(st.floats(0, 1)) < fault_rate else None
              for _ in range(count)]
    # A parcel the scanner never saw (not even as a no-read) is invisible to the agent: its
    # reading is told from a neighbour's only when the settings separate the traffic. So such
    # a parcel keeps separable gaps on both sides; every other fault meets any gap.
    for index, fault in enumerate(faults):
        if fault == "missed_scan":
            for near in (index, index + 1):
                if near < count:
                    gaps[near] = max(gaps[near], separable)
    return window, offset, gaps, jitters, faults


# Found by this property: a host stall (parcel 21) longer than two gaps, with readings 88 ms
# before their scans, blurs the bytes of three parcels; all three go safe, none wrong.
STALL_OVER_THREE_PARCELS = (5, -88, [50] * 24, [(0, 0)] * 24,
                            [None] * 12 + ["no_read", None, "no_read"] + [None] * 6
                            + ["busy", None, None])


@settings(max_examples=400, deadline=None)
@given(lines())
@example(STALL_OVER_THREE_PARCELS)
def test_never_a_neighbours_reading_and_a_fault_costs_two_parcels_at_most(case):
    window, offset, gaps, jitters, faults = case
    line = window_line(gaps, offset, jitters, faults)
    pairer = make(offset_ms=offset, window_ms=window, debounce_ms=50,
                  decision_deadline_ms=10_000)
    handed = []
    for message, error_ns in line.messages:
        handed += pairer.ready(message.received_ns)  # all that arrived before was handed over
        if isinstance(message, Scan):
            pairer.on_scan(message, error_ns)
        else:
            pairer.on_weight(message, error_ns)
    handed += pairer.ready(10**15)
    own_by_scan = line.own_weight_by_scan_ns()
    wrong = [(p.barcode, p.weight_kg, p.weight_pairing) for p in handed
             if p.weight_kg is not None and p.weight_kg != _own_weight(line, p, own_by_scan)]
    assert wrong == []
    right = sum(1 for p in handed if p.weight_kg is not None)
    # A fault costs the parcel it hit and at most a neighbour; a host stall hits every parcel
    # whose bytes it held back (several, when it lasts longer than the gap between them).
    costly = line.parcels_hit()
    too_close = pairer.counts["scans_too_close"]
    assert right >= len(line.parcels) - 2 * (costly + too_close), (right, costly, too_close)


def _own_weight(line, parcel, own_by_scan):
    """The weight of the parcel that was really scanned: by its label, or for a no-read by the
    time of its scan (a no-read is never also stamped late in this model)."""
    if parcel.barcode is not None:
        return line.parcels[int(parcel.barcode[1:])].weight_kg
    return own_by_scan[parcel.scanned_ns]


@st.composite
def polled_lines(draw):
    timeout = draw(st.integers(50, 400))
    resync = draw(st.integers(0, timeout))
    count = draw(st.integers(3, 40))
    spacious = draw(st.booleans())
    # A scale needs a few milliseconds at least to answer (real ones tens): over the margin.
    reply = st.floats(2.5, timeout * 0.8)
    if spacious:  # every request is answered before the next parcel: the bound holds
        gap = st.integers(2 * timeout + resync + 10, 2 * timeout + resync + 300)
    else:  # parcels may queue behind each other's requests
        gap = st.integers(1, 2 * timeout)
    gaps = draw(st.lists(gap, min_size=count, max_size=count))
    reorder = draw(st.lists(st.floats(-1.5, 1.5), min_size=count, max_size=count))
    fault_rate = draw(st.sampled_from([0.0, 0.01, 0.05, 0.2]))
    faults = [draw(st.sampled_from(POLL_FAULTS)) if draw(st.floats(0, 1)) < fault_rate else None
              for _ in range(count)]
    replies = draw(st.lists(reply, min_size=1, max_size=count))
    return timeout, resync, spacious, gaps, reorder, faults, replies


@settings(max_examples=400, deadline=None)
@given(polled_lines())
def test_polled_scale_never_gives_a_neighbours_weight(case):
    timeout, resync, spacious, gaps, reorder, faults, replies = case
    parcels, t = [], 1000.0
    for index, (gap, shift, fault) in enumerate(zip(gaps, reorder, faults, strict=True)):
        t += gap
        parcels.append(PolledParcel(index, t, t + shift, round(1 + index * 0.137, 3), fault))
    pairer = make("poll-after-scan", poll_timeout_ms=timeout, resync_ms=resync,
                  poll_reorder_ms=2.0, debounce_ms=50, decision_deadline_ms=60_000)
    handed = run_polled_line(pairer, parcels, replies, late_by_ms=timeout + 5)
    assert len(handed) == len(parcels)
    by_scan = {int(p.scan_ms * NS_PER_MS): p.weight_kg for p in parcels}
    wrong = [(p.barcode, p.weight_kg, p.weight_pairing) for p in handed
             if p.weight_kg is not None and p.weight_kg != (
                 parcels[int(p.barcode[1:])].weight_kg if p.barcode else by_scan[p.scanned_ns])]
    assert wrong == []
    if spacious:
        right = sum(1 for p in handed if p.weight_kg is not None)
        costly = sum(1 for p in parcels if p.fault and p.fault not in {"no_read", "double_scan"})
        assert right >= len(parcels) - 2 * costly, (right, costly)
