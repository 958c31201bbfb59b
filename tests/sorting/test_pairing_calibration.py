"""Calibrating window pairing: the statistics of `diag pairing`, on generated offsets, gaps and
lines, and the proposal checked against the pairer that will use it."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge_agent.config import PairingConfig
from edge_agent.devices.messages import Scan, Weight
from edge_agent.sorting.pairing_calibration import (
    MIN_PARCELS,
    WINDOW_SLACK_MS,
    best_matching,
    calibrate,
    histogram,
    parcel_scans,
    percentile,
    platter_episodes,
    propose,
)
from edge_agent.units import NS_PER_MS
from tests.sorting.line_model import PARCEL_FRAMES_MS, window_line
from tests.sorting.test_pairing import make


def line_times(count: int, offset_ms: float, jitter_ms: float, gap_ms: tuple[float, float],
               *, seed: int = 1, lost: frozenset[int] = frozenset()) -> tuple[list[int], list[int]]:
    """Scan and settled-reading times (ns) of `count` parcels; the parcels in `lost` have no
    reading."""
    rng = random.Random(seed)
    scans, readings, t = [], [], 10_000.0
    for index in range(count):
        t += rng.uniform(*gap_ms)
        scans.append(int(t * NS_PER_MS))
        if index not in lost:
            readings.append(int((t + offset_ms + rng.uniform(-jitter_ms, jitter_ms)) * NS_PER_MS))
    return scans, readings


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))
    assert [percentile(values, q) for q in (1, 50, 99, 100)] == [1, 50, 99, 100]
    assert percentile([7.0], 1) == percentile([7.0], 99) == 7.0
    with pytest.raises(ValueError):
        percentile([], 50)


def test_a_clean_line_gives_its_offset_and_a_window_over_its_jitter():
    scans, readings = line_times(200, offset_ms=-45, jitter_ms=4, gap_ms=(150, 300))
    result = calibrate(scans, readings)
    proposal = result.proposal
    assert proposal is not None and result.unmatched == []
    assert abs(proposal.offset_ms - (-45)) <= 1
    assert 3.5 <= proposal.jitter_ms <= 5  # the 99th percentile of a uniform ±4 ms
    assert proposal.window_ms >= 4 + WINDOW_SLACK_MS
    assert proposal.separable and proposal.warnings == []
    assert 150 <= result.gap_percentiles()["p1"] < result.gap_percentiles()["p50"] <= 300


def test_an_offset_longer_than_the_gaps_is_found():
    # The scale is far down the belt: two other parcels are scanned before a parcel's reading.
    scans, readings = line_times(150, offset_ms=600, jitter_ms=5, gap_ms=(200, 320), seed=4)
    proposal = calibrate(scans, readings).proposal
    assert proposal is not None and abs(proposal.offset_ms - 600) <= 1


def test_an_even_line_where_a_neighbours_reading_fits_as_well_is_called_ambiguous():
    # Gaps of 95-96 ms, readings 45 ms before their scans: each scan has its own reading 45 ms
    # before it and the next parcel's 50 ms after it, both as regular.
    scans, readings = line_times(120, offset_ms=-45, jitter_ms=2, gap_ms=(95, 96), seed=3)
    proposal = calibrate(scans, readings, max_offset_ms=300).proposal
    assert proposal is not None
    assert any("neighbour's weight" in warning for warning in proposal.warnings)


def test_on_a_belt_with_uneven_gaps_the_tighter_candidate_is_the_parcels_own():
    # The neighbour's reading is 45-95 ms after each scan (gaps 90-140 ms): its differences
    # spread over the gaps' range, the parcel's own sit within ±3 ms of -45.
    scans, readings = line_times(120, offset_ms=-45, jitter_ms=3, gap_ms=(90, 140), seed=5)
    matched, warning = best_matching(scans, readings, max_offset_ms=300)
    assert warning is None
    offsets = [(r - s) / NS_PER_MS for s, r in zip(scans, matched, strict=True) if r is not None]
    assert len(offsets) >= 110 and all(abs(o + 45) <= 3 for o in offsets)
    proposal = calibrate(scans, readings, max_offset_ms=300).proposal
    assert proposal is not None and abs(proposal.offset_ms + 45) <= 1
    assert proposal.warnings == []


def test_missing_readings_are_counted_and_do_not_shift_the_offset():
    lost = frozenset(range(5, 200, 10))  # one parcel in ten never settled
    scans, readings = line_times(200, offset_ms=80, jitter_ms=3, gap_ms=(200, 260), lost=lost)
    result = calibrate(scans, readings)
    assert set(result.unmatched) == set(lost)
    assert result.no_reading_share == pytest.approx(0.1)
    assert result.proposal is not None and abs(result.proposal.offset_ms - 80) <= 1
    assert any("no reading nearby" in warning for warning in result.proposal.warnings)


def test_parcels_read_late_by_a_busy_host_are_left_out():
    scans, readings = line_times(200, offset_ms=-45, jitter_ms=2, gap_ms=(150, 250))
    # A stall: for 20 parcels the host read both ports late, in one turn, stamping the scan
    # and the reading alike; the hub says how late they may be.
    late = range(50, 70)
    scan_errors = [0] * 200
    for index in late:
        scans[index] = readings[index] = scans[index] + 30 * NS_PER_MS
        scan_errors[index] = 30 * NS_PER_MS
    reading_errors = [30 * NS_PER_MS if index in late else 0 for index in range(200)]
    result = calibrate(scans, readings, scan_errors_ns=scan_errors,
                       reading_errors_ns=reading_errors)
    assert result.blurred == list(late) and result.unmatched == []
    assert len(result.offsets_ms) == 180
    assert result.proposal is not None and abs(result.proposal.offset_ms - (-45)) <= 1
    assert result.proposal.window_ms < 15  # the stall's zero offsets did not widen it
    assert any("host was busy" in warning for warning in result.proposal.warnings)


def test_traffic_closer_than_the_jitter_allows_is_flagged():
    scans, readings = line_times(200, offset_ms=0, jitter_ms=40, gap_ms=(90, 200))
    proposal = calibrate(scans, readings).proposal
    assert proposal is not None and not proposal.separable
    assert proposal.shortest_gap_ms is not None
    assert 2 * proposal.window_ms >= proposal.shortest_gap_ms
    assert "Slow the induction" in proposal.warnings[0]


def test_too_few_parcels_propose_nothing():
    scans, readings = line_times(MIN_PARCELS - 1, offset_ms=10, jitter_ms=2, gap_ms=(200, 300))
    result = calibrate(scans, readings)
    assert result.proposal is None and len(result.offsets_ms) == MIN_PARCELS - 1


def test_a_proposal_the_agent_would_refuse_says_so():
    # A reading 1.2 s after its scan: the parcel would wait past the decision deadline.
    proposal = propose([1200.0] * 60, [3000.0] * 59, PairingConfig())
    assert any("decision_deadline_ms" in warning for warning in proposal.warnings)
    assert propose([1200.0] * 60, [3000.0] * 59,
                   PairingConfig(decision_deadline_ms=5000)).warnings == []


def test_repeated_reads_are_one_parcel_and_no_reads_are_each_one():
    ms = NS_PER_MS
    scans = [(0, "A"), (3 * ms, "A"), (5 * ms, None), (6 * ms, None), (900 * ms, "A")]
    assert parcel_scans(scans, debounce_ms=500) == [0, 5 * ms, 6 * ms, 900 * ms]


def test_a_long_stream_keeps_every_episode():
    weights = []
    for index in range(3000):  # more parcels than the agent's detector remembers
        t = index * 100 * NS_PER_MS
        kg = 1.0 + index / 1000
        weights += [Weight(kg, "kg", kg, stable=False, received_ns=t),
                    Weight(kg, "kg", kg, stable=True, received_ns=t + 10 * NS_PER_MS),
                    Weight(0.0, "kg", 0.0, stable=True, received_ns=t + 50 * NS_PER_MS)]
    episodes = platter_episodes(weights, min_weight_kg=0.01, settle_gap_ms=200)
    assert len(episodes) == 3000
    assert episodes[0].received_ns == 10 * NS_PER_MS and episodes[0].value_kg == 1.0


def test_histogram_has_round_edges_and_counts_everything():
    rng = random.Random(3)
    values = [rng.gauss(-45, 4) for _ in range(500)]
    rows = histogram(values)
    assert 1 < len(rows) <= 12
    assert sum(count for _, _, count in rows) == 500
    width = rows[0][1] - rows[0][0]
    assert width in (0.5, 1.0, 2.0, 5.0, 10.0)
    assert rows[0][0] <= min(values) and rows[-1][1] > max(values)


# -- properties --------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(centre=st.floats(-3000, 3000), spread=st.floats(0, 300),
       noise=st.lists(st.floats(-1, 1), min_size=MIN_PARCELS, max_size=400),
       outliers=st.lists(st.floats(-5000, 5000), max_size=3))
def test_the_proposed_window_covers_99_percent_of_the_offsets(centre, spread, noise, outliers):
    offsets = [centre + spread * value for value in noise] + outliers
    proposal = propose(offsets, [10_000.0] * 10)
    covered = sum(abs(value - proposal.offset_ms) <= proposal.window_ms for value in offsets)
    assert covered >= 0.99 * len(offsets)
    assert proposal.window_ms >= WINDOW_SLACK_MS


@settings(max_examples=300, deadline=None)
@given(window=st.integers(1, 500), gaps=st.lists(st.floats(1, 5000), min_size=1, max_size=300))
def test_separable_means_twice_the_window_is_below_the_gaps_p1(window, gaps):
    offsets = [0.0] * 60 + [float(window)]  # some jitter so the window is not just the slack
    proposal = propose(offsets, gaps)
    shortest = percentile(gaps, 1)
    assert proposal.separable == (2 * proposal.window_ms < shortest)
    assert proposal.gaps_too_close == sum(gap < 2 * proposal.window_ms for gap in gaps)
    if proposal.separable:
        assert proposal.gaps_too_close <= 0.01 * len(gaps)
    assert sum(gap < shortest for gap in gaps) <= 0.01 * len(gaps)


@st.composite
def clean_lines(draw):
    jitter = draw(st.integers(0, 20))
    offset = draw(st.integers(-150, 150))
    count = draw(st.integers(MIN_PARCELS + 5, 120))
    # Gaps the proposal must call separable: 2 x (1.25 x jitter + slack + rounding) below the
    # shortest, and no parcel on the platter with another.
    shortest = max(PARCEL_FRAMES_MS + 2 * jitter, 3 * jitter + 2 * WINDOW_SLACK_MS + 6)
    gaps = draw(st.lists(st.integers(shortest, shortest + 400), min_size=count,
                         max_size=count))
    jitters = draw(st.lists(st.tuples(st.integers(-jitter // 2, 0),
                                      st.integers(-jitter // 2, jitter // 2)),
                            min_size=count, max_size=count))
    return offset, gaps, jitters


@settings(max_examples=150, deadline=None)
@given(clean_lines())
def test_the_proposal_pairs_the_clean_line_it_was_measured_on_without_ambiguity(case):
    offset, gaps, jitters = case
    line = window_line(gaps, offset, jitters, [None] * len(gaps))
    scans = [m for m, _ in line.messages if isinstance(m, Scan)]
    weights = [m for m, _ in line.messages if isinstance(m, Weight)]
    episodes = platter_episodes(weights, min_weight_kg=0.01, settle_gap_ms=200)
    result = calibrate([s.received_ns for s in scans],
                       [e.received_ns for e in episodes if e.value_kg is not None])
    proposal = result.proposal
    assert proposal is not None and proposal.separable and proposal.gaps_too_close == 0
    assert abs(proposal.offset_ms - offset) <= 20

    pairer = make(offset_ms=proposal.offset_ms, window_ms=proposal.window_ms,
                  decision_deadline_ms=10_000)
    handed = []
    for message, _ in line.messages:
        handed += pairer.ready(message.received_ns)
        if isinstance(message, Scan):
            pairer.on_scan(message)
        else:
            pairer.on_weight(message)
    handed += pairer.ready(10**15)
    own = {f"P{p.index}": p.weight_kg for p in line.parcels}
    assert [(p.barcode, p.weight_kg) for p in handed] == list(own.items())
    assert pairer.counts["ambiguous"] == 0 and pairer.counts["scans_too_close"] == 0
