"""Property tests over every shipped profile: arbitrary bytes never raise, never grow a buffer
past its bound, and decode the same however they are chunked."""

from __future__ import annotations

import pytest
from frames import IDLE_GAP_PROFILES, samples_for
from hypothesis import given
from hypothesis import strategies as st

from edge_agent.devices.codec import make_codec
from edge_agent.devices.messages import (
    DecodeError,
    DeviceReply,
    DwsRecord,
    LaneFull,
    Scan,
    SorterAck,
    SorterOutcome,
    Weight,
    message_to_dict,
)
from edge_agent.devices.profiles import available_profiles, load_profile

PROFILES = {name: load_profile(name) for name in available_profiles()}
MESSAGE_TYPES = (Scan, Weight, DwsRecord, SorterAck, SorterOutcome, LaneFull, DeviceReply,
                 DecodeError)
# Bytes that matter to some framer or decoder, so random streams hit real paths often.
SPECIAL = st.sampled_from(
    [
        *(b"\x02", b"\x03", b"\r", b"\n", b"\r\n", b"\x1d", b"S S ", b"S I", b" 1G ", b"ST,"),
        *(b"]C1", b"ACK p 3", b"FULL 9", b"SORTED p 3 ", b"RECIRC p 3 ", b"LOST p 3",
           b"^^^", b"------", b"00", b"12.5", b"kg", b"lb"),
        *(b"\x82", b"\xff", b",", b"noread,", b"MA", b"MN", b",L020.0", b"~", b"_"),
    ]
)
STREAMS = st.lists(st.one_of(SPECIAL, st.binary(max_size=8)), max_size=100).map(b"".join)


def stream_with_samples(profile: str):
    """Random bytes with the profile's own recorded frames mixed in."""
    frames = st.sampled_from([sample.raw for sample in samples_for(profile)])
    return st.lists(st.one_of(SPECIAL, frames, st.binary(max_size=8)), max_size=60).map(b"".join)


@pytest.mark.parametrize("name", sorted(PROFILES))
@given(
    chunks=st.lists(
        st.tuples(st.binary(max_size=400) | STREAMS, st.integers(0, 200_000_000)), max_size=30
    )
)
def test_arbitrary_bytes_never_raise_nor_grow_the_buffer(name: str, chunks):
    codec = make_codec(PROFILES[name])
    now = 0
    for chunk, pause_ns in chunks:
        now += pause_ns
        deadline = codec.next_deadline_ns()
        if deadline is not None and deadline <= now:
            messages = codec.flush(now)
            assert codec.buffered == 0
        else:
            messages = codec.feed(chunk, now)
        assert codec.buffered <= codec.max_buffer
        for message in messages:
            assert isinstance(message, MESSAGE_TYPES)
            # The codec's safety net turns a decoder exception into this: there must be none.
            assert not getattr(message, "reason", "").startswith("decoder failed"), message
            message_to_dict(message)
    counters = codec.counters
    assert min(counters.as_dict().values()) >= 0


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_a_flood_without_frame_ends_stays_bounded(name: str):
    codec = make_codec(PROFILES[name])
    for i in range(200):
        codec.feed(b"A" * 4096, i)  # 800 KB, one burst, no terminator or marker
        assert codec.buffered <= codec.max_buffer
    assert codec.max_buffer <= 4096


@pytest.mark.parametrize("name", sorted(set(PROFILES) - IDLE_GAP_PROFILES))
@given(data=st.data())
def test_messages_do_not_depend_on_chunking(name: str, data):
    stream = data.draw(stream_with_samples(name))
    cuts = data.draw(st.lists(st.integers(0, len(stream)), max_size=10))
    points = sorted(set(cuts))
    chunks = [stream[a:b] for a, b in zip([0, *points], [*points, len(stream)], strict=True)]
    whole, chunked = make_codec(PROFILES[name]), make_codec(PROFILES[name])
    want = [message_to_dict(m) for m in whole.feed(stream, 0)]
    got = [message_to_dict(m) for chunk in chunks for m in chunked.feed(chunk, 0)]
    assert got == want


@pytest.mark.parametrize(
    "name", ["toledo-continuous", "nci-scp01", "sma-scp0499", "cubiscan-style"])
@given(data=st.data())
def test_marker_framed_frames_survive_any_garbage_without_a_start_marker(name: str, data):
    start = PROFILES[name].framing.start
    sample = data.draw(st.sampled_from(samples_for(name)))
    garbage = st.binary(max_size=40).map(lambda b: b.replace(start, b"").replace(b"\x82", b""))
    before, after = data.draw(garbage), data.draw(garbage)
    codec = make_codec(PROFILES[name])
    got = [message_to_dict(m) for m in codec.feed(before + sample.raw + after, 0)]
    want = [message_to_dict(m) for m in make_codec(PROFILES[name]).feed(sample.raw, 0)]
    assert got == want
