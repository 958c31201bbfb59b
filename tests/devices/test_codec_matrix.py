"""The byte-stream matrix: every recorded frame of every profile, whole, byte by byte, split at
every point, glued to the profile's other frames, and with garbage before and after."""

from __future__ import annotations

import pytest
from frames import GARBAGE, IDLE_GAP_PROFILES, SAMPLES, Sample, samples_for

from edge_agent.devices.codec import make_codec
from edge_agent.devices.messages import message_to_dict
from edge_agent.devices.profiles import available_profiles, load_profile

BYTE_NS = 1_000_000  # 1 ms between the chunks of one read: well inside any idle gap
READ_GAP_NS = 500_000_000  # between two reads of an idle-gap scanner


def run(profile: str, chunks: list[tuple[bytes, int]]) -> list[dict]:
    """Feed (chunk, time) pairs, flush at the end, return the messages as dicts."""
    codec = make_codec(load_profile(profile))
    messages = []
    for chunk, now_ns in chunks:
        messages += codec.feed(chunk, now_ns)
        assert codec.buffered <= codec.max_buffer
    deadline = codec.next_deadline_ns()
    if deadline is not None:
        messages += codec.flush(deadline)
    assert codec.next_deadline_ns() is None
    return [message_to_dict(message) for message in messages]


def timed(pieces: list[bytes], start_ns: int = 0) -> list[tuple[bytes, int]]:
    return [(piece, start_ns + i * BYTE_NS) for i, piece in enumerate(pieces)]


def matches(got: dict, want: dict) -> bool:
    for key, value in want.items():
        if isinstance(value, float):
            if not isinstance(got.get(key), float) or got[key] != pytest.approx(value, rel=1e-9):
                return False
        elif got.get(key) != value:
            return False
    return True


def assert_decoded(got: list[dict], want: tuple[dict, ...] | list[dict]) -> None:
    assert len(got) == len(want), got
    for message, expected in zip(got, want, strict=True):
        assert matches(message, expected), (message, expected)


def assert_contains_in_order(got: list[dict], want: list[dict]) -> None:
    """`want` appears in `got` as a contiguous run."""
    for start in range(len(got) - len(want) + 1):
        if all(matches(got[start + i], w) for i, w in enumerate(want)):
            return
    raise AssertionError(f"{want} not found in {got}")


def sample_id(sample: Sample) -> str:
    return f"{sample.profile}:{sample.raw[:24]!r}"


def test_every_profile_has_samples():
    assert {sample.profile for sample in SAMPLES} == set(available_profiles())
    assert set(GARBAGE) == set(available_profiles())


@pytest.mark.parametrize("sample", SAMPLES, ids=sample_id)
def test_whole(sample: Sample):
    assert_decoded(run(sample.profile, [(sample.raw, 0)]), sample.expect)


@pytest.mark.parametrize("sample", SAMPLES, ids=sample_id)
def test_byte_by_byte(sample: Sample):
    pieces = [sample.raw[i : i + 1] for i in range(len(sample.raw))]
    assert_decoded(run(sample.profile, timed(pieces)), sample.expect)


@pytest.mark.parametrize("sample", SAMPLES, ids=sample_id)
def test_split_at_every_point(sample: Sample):
    for cut in range(1, len(sample.raw)):
        got = run(sample.profile, timed([sample.raw[:cut], sample.raw[cut:]]))
        assert_decoded(got, sample.expect)


@pytest.mark.parametrize("sample", SAMPLES, ids=sample_id)
def test_garbage_before_and_after(sample: Sample):
    before, after, extra_allowed = GARBAGE[sample.profile]
    if sample.profile in IDLE_GAP_PROFILES:
        # Noise is a read of its own when silence surrounds it: the real read stays intact.
        chunks = [
            (before + b"\x00\xff", 0),
            (sample.raw, READ_GAP_NS),
            (b"\x00\xff", 2 * READ_GAP_NS),
        ]
        assert_contains_in_order(run(sample.profile, chunks), list(sample.expect))
        return
    data = before + sample.raw + after
    for chunks in ([(data, 0)], timed([data[i : i + 1] for i in range(len(data))])):
        got = run(sample.profile, chunks)
        if extra_allowed:
            assert_contains_in_order(got, list(sample.expect))
        else:
            assert_decoded(got, sample.expect)


PROFILES = sorted({sample.profile for sample in SAMPLES})


@pytest.mark.parametrize("profile", PROFILES)
def test_glued_together(profile: str):
    samples = samples_for(profile)
    want = [message for sample in samples for message in sample.expect]
    if profile in IDLE_GAP_PROFILES:
        # One read after another, each ending in silence (or a terminator) before the next.
        chunks = [(sample.raw, i * READ_GAP_NS) for i, sample in enumerate(samples)]
        assert_decoded(run(profile, chunks), want)
        return
    glued = b"".join(sample.raw for sample in samples)
    assert_decoded(run(profile, [(glued, 0)]), want)
    assert_decoded(run(profile, timed([glued[i : i + 1] for i in range(len(glued))])), want)
    for size in (2, 3, 7, 16):
        assert_decoded(
            run(profile, timed([glued[i : i + size] for i in range(0, len(glued), size)])), want
        )


@pytest.mark.parametrize("profile", sorted(set(PROFILES) - IDLE_GAP_PROFILES))
def test_glued_with_garbage_between(profile: str):
    # (idle-gap reads are separated by time: covered by test_garbage_before_and_after)
    before, after, extra_allowed = GARBAGE[profile]
    samples = samples_for(profile)
    data = before + b"".join(before + sample.raw for sample in samples) + after
    got = run(profile, [(data, 0)])
    for sample in samples:
        assert_contains_in_order(got, list(sample.expect))
    if not extra_allowed:
        assert_decoded(got, [message for sample in samples for message in sample.expect])


def test_idle_gap_read_split_by_a_pause_shorter_than_the_gap():
    raw = b"RB123456785GB"
    got = run("zebra-ds", [(raw[:5], 0), (raw[5:], 40_000_000)])  # 40 ms < 50 ms gap
    assert_decoded(got, [{"kind": "scan", "data": "RB123456785GB"}])


def test_idle_gap_two_reads_separated_by_silence_without_flush_between():
    # The port loop may be late to call flush: the next chunk after the gap still ends the read.
    codec = make_codec(load_profile("zebra-ds"))
    assert codec.feed(b"AAA111", 1_000) == []
    first = codec.feed(b"BBB222", 1_000 + 60_000_000)
    assert [m.data for m in first] == ["AAA111"]
    assert first[0].received_ns == 1_000  # stamped with its last byte's arrival, not the flush
    assert codec.next_deadline_ns() == 1_000 + 60_000_000 + 50_000_000
    assert codec.flush(1_000 + 60_000_000 + 49_000_000) == []
    second = codec.flush(1_000 + 60_000_000 + 50_000_000)
    assert [m.data for m in second] == ["BBB222"]
    assert codec.next_deadline_ns() is None


def test_messages_are_stamped_with_the_chunk_time():
    codec = make_codec(load_profile("mt-sics"))
    assert codec.feed(b"S S     100.00 ", 10) == []
    (message,) = codec.feed(b"g\r\n", 20)
    assert message.received_ns == 20
