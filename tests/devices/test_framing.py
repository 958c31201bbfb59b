"""Framers on their own: frames, garbage, overflow and resynchronisation, chunking, bounds."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from edge_agent.devices.framing import (
    FixedLengthFramer,
    Framer,
    StartEndFramer,
    StreamFramer,
)


def feed_all(framer: Framer, chunks: list[bytes]) -> list[bytes]:
    frames = []
    for chunk in chunks:
        frames += framer.feed(chunk, 0)
        assert framer.buffered <= framer.max_buffer
    return [frame.raw for frame in frames]


def bodies(framer: Framer, data: bytes) -> list[bytes]:
    return [frame.body for frame in framer.feed(data, 0)]


# --- terminators -----------------------------------------------------------------------------


def test_terminator_frames_and_bodies():
    framer = StreamFramer([b"\r\n"], max_length=32)
    frames = framer.feed(b"one\r\ntwo\r\nthr", 7)
    assert [(f.raw, f.body, f.received_ns) for f in frames] == [
        (b"one\r\n", b"one", 7),
        (b"two\r\n", b"two", 7),
    ]
    assert bodies(framer, b"ee\r\n") == [b"three"]
    assert framer.counters.frames == 3


def test_either_end_byte_ends_a_frame_and_empty_frames_are_skipped():
    framer = StreamFramer([b"\r", b"\n"], max_length=32)
    assert bodies(framer, b"a\r\nb\rc\n\n\nd\r") == [b"a", b"b", b"c", b"d"]


def test_terminator_split_across_chunks():
    framer = StreamFramer([b"\r\n"], max_length=32)
    assert feed_all(framer, [b"abc\r", b"\ndef\r", b"\n"]) == [b"abc\r\n", b"def\r\n"]


def test_overlong_line_is_dropped_up_to_its_terminator_then_framing_resumes():
    framer = StreamFramer([b"\r\n"], max_length=8)
    got = feed_all(framer, [b"0123456789", b"abcdef", b"\r\nok\r\n"])
    assert got == [b"ok\r\n"]
    assert framer.counters.overflows == 1
    assert framer.counters.garbage_bytes == 18


def test_overlong_complete_line_in_one_chunk_is_dropped_too():
    # The same bytes give the same frames however they are chunked.
    framer = StreamFramer([b"\r\n"], max_length=8)
    assert feed_all(framer, [b"0123456789abcdef\r\nok\r\n"]) == [b"ok\r\n"]
    assert framer.counters.overflows == 1


def test_a_frame_of_exactly_max_length_passes():
    framer = StreamFramer([b"\r\n"], max_length=8)
    assert feed_all(framer, [b"123456\r\n"]) == [b"123456\r\n"]
    assert feed_all(framer, [b"1234567\r\n"]) == []


def test_flood_without_terminator_stays_bounded():
    framer = StreamFramer([b"\r\n"], max_length=64)
    for _ in range(1000):
        framer.feed(b"x" * 1000, 0)
        assert framer.buffered <= framer.max_buffer
    assert framer.counters.overflows == 1
    assert bodies(framer, b"\r\nafter\r\n") == [b"after"]


def test_reset_drops_the_partial_frame():
    framer = StreamFramer([b"\r\n"], max_length=64)
    framer.feed(b"half a fra", 0)
    framer.reset()
    assert bodies(framer, b"me\r\nnext\r\n") == [b"me", b"next"]


# --- idle gap ----------------------------------------------------------------------------------


def test_idle_gap_frame_ends_with_silence():
    framer = StreamFramer([], max_length=64, gap_ns=50)
    assert framer.next_deadline_ns() is None
    assert framer.feed(b"abc", 100) == []
    assert framer.feed(b"def", 140) == []
    assert framer.next_deadline_ns() == 190
    assert framer.flush(189) == []
    (frame,) = framer.flush(190)
    assert (frame.raw, frame.body, frame.received_ns) == (b"abcdef", b"abcdef", 140)
    assert framer.next_deadline_ns() is None
    assert framer.flush(10_000) == []


def test_idle_gap_with_terminators_ends_at_either():
    framer = StreamFramer([b"\r"], max_length=64, gap_ns=50)
    assert [f.body for f in framer.feed(b"one\rtw", 0)] == [b"one"]
    assert [f.body for f in framer.flush(50)] == [b"tw"]


def test_idle_gap_overflow_discards_until_the_next_gap():
    framer = StreamFramer([], max_length=16, gap_ns=50)
    for i in range(10):
        framer.feed(b"y" * 10, i)  # one long burst: no gap inside
        assert framer.buffered <= framer.max_buffer
    assert framer.counters.overflows == 1
    assert framer.flush(100) == []  # the tail of the overlong burst is not a read
    assert framer.next_deadline_ns() is None
    framer.feed(b"good", 200)
    assert [f.body for f in framer.flush(250)] == [b"good"]


# --- start and end markers ---------------------------------------------------------------------


def test_stx_etx_skips_garbage_between_frames():
    framer = StartEndFramer(b"\x02", b"\x03", max_length=16)
    frames = framer.feed(b"noise\x02one\x03junk\x02two\x03tail", 0)
    assert [(f.raw, f.body) for f in frames] == [(b"\x02one\x03", b"one"), (b"\x02two\x03", b"two")]
    assert framer.counters.garbage_bytes == len(b"noise") + len(b"junk") + len(b"tail")
    assert framer.buffered == 0


def test_trailer_bytes_belong_to_the_frame_even_when_they_look_like_markers():
    framer = StartEndFramer(b"\x02", b"\r", max_length=16, trailer_length=1)
    frames = feed_all(framer, [b"\x02abc\r", b"\x02", b"\x02def\r\r"])
    assert frames == [b"\x02abc\r\x02", b"\x02def\r\r"]


def test_a_start_marker_inside_an_unfinished_frame_restarts_it():
    framer = StartEndFramer(b"\x02", b"\x03", max_length=16)
    assert feed_all(framer, [b"\x02cut off", b"\x02whole\x03"]) == [b"\x02whole\x03"]
    assert framer.counters.garbage_bytes == len(b"\x02cut off")


def test_without_restart_the_start_marker_may_appear_inside_a_frame():
    framer = StartEndFramer(b"\n", b"\x03", max_length=32, restart_on_start=False)
    assert feed_all(framer, [b"\n12.34lb\r\n00\r\x03"]) == [b"\n12.34lb\r\n00\r\x03"]


def test_lost_end_marker_overflows_and_resyncs_on_the_next_start():
    framer = StartEndFramer(b"\x02", b"\x03", max_length=8, restart_on_start=False)
    got = feed_all(framer, [b"\x02aaaaaaaaaaaa", b"aaaa\x02ok\x03"])
    assert got == [b"\x02ok\x03"]
    assert framer.counters.overflows == 1


def test_multi_byte_markers_split_across_chunks():
    framer = StartEndFramer(b"<<", b">>", max_length=32)
    assert feed_all(framer, [b"x<", b"<ab>", b">y<<c", b">", b">"]) == [b"<<ab>>", b"<<c>>"]


# --- fixed length ------------------------------------------------------------------------------


def test_fixed_length_with_start_and_end_markers_realigns():
    framer = FixedLengthFramer(6, start=b"[", end=b"]")
    frames = framer.feed(b"zz[[abcd][wxyz]", 0)
    assert [(f.raw, f.body) for f in frames] == [(b"[abcd]", b"abcd"), (b"[wxyz]", b"wxyz")]
    assert framer.counters.garbage_bytes == 3


def test_fixed_length_without_start_resyncs_after_an_end_marker():
    framer = FixedLengthFramer(4, end=b"\n")
    assert feed_all(framer, [b"zzab", b"c\nde", b"f\n"]) == [b"def\n"]
    assert framer.counters.garbage_bytes == len(b"zzabc\n")
    # Misaligned with no end marker in sight: the hunt for one goes on in the next chunk.
    assert feed_all(FixedLengthFramer(4, end=b"\n"), [b"zzzz", b"zab\n", b"def\n"]) == [b"def\n"]


def test_fixed_length_plain_chunks():
    framer = FixedLengthFramer(3)
    assert feed_all(framer, [b"abcd", b"efg", b"hi"]) == [b"abc", b"def", b"ghi"]
    assert framer.buffered == 0


# --- properties --------------------------------------------------------------------------------

# Small alphabets make markers frequent, so every resync path is exercised.
MARKER_BYTES = st.sampled_from([b"<", b">", b"<<", b">>", b"\r", b"\n", b"\r\n", b"|", b"a", b"b"])
STREAMS = st.lists(st.one_of(MARKER_BYTES, st.binary(max_size=6)), max_size=80).map(b"".join)


def make_framers() -> list[Framer]:
    return [
        StreamFramer([b"\r\n"], max_length=12),
        StreamFramer([b"\r", b"\n", b"|"], max_length=10),
        StreamFramer([b">>", b"|"], max_length=9),
        StartEndFramer(b"<", b">", max_length=10),
        StartEndFramer(b"<<", b">>", max_length=12, trailer_length=2),
        StartEndFramer(b"\n", b"|", max_length=10, restart_on_start=False),
        FixedLengthFramer(5, start=b"<", end=b">"),
        FixedLengthFramer(4, start=b"<<"),
        FixedLengthFramer(4, end=b"\n"),
    ]


@given(data=STREAMS, cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=12))
def test_frames_do_not_depend_on_chunking(data: bytes, cuts: list[int]):
    points = sorted({min(cut, len(data)) for cut in cuts})
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    # (Counters may differ: a chunk boundary can reveal an overlong frame that, seen whole, a
    # later start marker would have cut short anyway. The frames may not.)
    for whole, chunked in zip(make_framers(), make_framers(), strict=True):
        assert feed_all(chunked, chunks) == feed_all(whole, [data])


@given(chunks=st.lists(st.binary(max_size=300), max_size=40))
def test_arbitrary_bytes_never_raise_nor_grow_the_buffer(chunks: list[bytes]):
    for framer in make_framers():
        for chunk in chunks:
            for frame in framer.feed(chunk, 0):
                assert isinstance(frame.raw, bytes)
            assert framer.buffered <= framer.max_buffer
