"""The latency window: percentiles from its histogram agree with sorting the same samples."""

from __future__ import annotations

import random

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.runtime.latency_window import PERCENTILES, LatencyWindow, bucket_middle, bucket_of


def exact(samples: list[float]) -> dict[str, float]:
    ordered = sorted(samples)
    return {name: ordered[min(len(ordered) - 1, int(q * len(ordered)))] for name, q in PERCENTILES}


def close_enough(reported: float, true: float) -> bool:
    # The middle of the sample's bucket: within 0.5 µs below 1,024 µs, 0.8 % above (+ rounding).
    return abs(reported - true) <= max(0.55, 0.008 * true + 0.05)


latencies = st.floats(min_value=0.0, max_value=3.6e9, allow_nan=False, allow_infinity=False)


@given(st.lists(latencies, min_size=1, max_size=300), st.integers(min_value=1, max_value=120))
def test_percentiles_match_sorting_the_samples_in_the_window(samples, size):
    window = LatencyWindow(size)
    for value in samples:
        window.append(value)
    in_window = samples[-size:]  # only the last `size` count
    report = window.percentiles()
    assert report["count"] == len(in_window) == len(window)
    for name, true in exact(in_window).items():
        assert close_enough(report[name], true), (name, report[name], true)
    assert report["max_us"] == round(max(in_window), 1)


@given(latencies)
def test_a_value_lies_in_its_own_bucket(value):
    assert close_enough(bucket_middle(bucket_of(value)), value)


def test_a_realistic_stream_keeps_the_tail():
    rng = random.Random(3)
    window = LatencyWindow(20_000)
    samples = [rng.lognormvariate(6, 0.6) for _ in range(50_000)]  # ~400 µs, long tail
    for value in samples:
        window.append(value)
    report = window.percentiles()
    for name, true in exact(samples[-20_000:]).items():
        assert close_enough(report[name], true)


def test_an_empty_window_reports_no_figures():
    assert LatencyWindow(10).percentiles() == {
        "count": 0, "p50_us": None, "p99_us": None, "p999_us": None, "max_us": None}


@given(st.lists(st.floats(min_value=0, max_value=1e7, allow_nan=False), min_size=1,
                max_size=300))
def test_no_percentile_reads_above_the_maximum(samples):
    # One sample of 8,160.7 µs sat in a bucket whose middle was above it: p99 read 8,192.
    window = LatencyWindow(1000)
    for value in samples:
        window.append(value)
    figures = window.percentiles()
    assert figures["p50_us"] <= figures["p99_us"] <= figures["p999_us"] <= figures["max_us"]
