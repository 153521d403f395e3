"""SseFramer: every input whole, byte by byte, and cut at every offset (the h11 habit)."""

from __future__ import annotations

import pytest

from usage_filter.core.sse import Piece, SseFramer

STREAMS = [
    b"data: a\n\ndata: b\n\n",
    b"data: a\r\n\r\ndata: b\r\n\r\n",
    b"data: a\r\rdata: b\r\r",
    b"data: a\r\n\ndata: b\n\r\n: c\r\r",
    b": keep-alive\n\nevent: ping\ndata: {}\n\nid: 1\nretry: 10\ndata: x\ndata: y\n\n",
    b"\n\n\ndata: after blank lines\n\n",
    b"data:[DONE]\n\n",
]


def feed_all(framer: SseFramer, chunks: list[bytes]) -> tuple[list[Piece], bytes]:
    pieces: list[Piece] = []
    for chunk in chunks:
        pieces += framer.feed(chunk)
    return pieces, framer.flush()


def events_whole(stream: bytes) -> list[bytes]:
    pieces, rest = feed_all(SseFramer(1 << 20), [stream])
    assert rest == b""
    return [raw for is_event, raw in pieces if is_event]


def test_event_boundaries() -> None:
    assert events_whole(STREAMS[0]) == [b"data: a\n\n", b"data: b\n\n"]
    assert events_whole(STREAMS[2]) == [b"data: a\r\r", b"data: b\r\r"]
    assert events_whole(STREAMS[3]) == [b"data: a\r\n\n", b"data: b\n\r\n", b": c\r\r"]


@pytest.mark.parametrize("stream", STREAMS)
def test_every_cut_gives_the_same_bytes_and_events(stream: bytes) -> None:
    whole = events_whole(stream)
    for cut in range(len(stream) + 1):
        pieces, rest = feed_all(SseFramer(1 << 20), [stream[:cut], stream[cut:]])
        assert b"".join(raw for _, raw in pieces) + rest == stream
        # An LF split from its CR may come out as a pass-through piece of its own, so compare
        # the number of events, not their bytes.
        assert len([raw for ev, raw in pieces if ev]) == len(whole)


@pytest.mark.parametrize("stream", STREAMS)
def test_byte_by_byte(stream: bytes) -> None:
    pieces, rest = feed_all(SseFramer(1 << 20), [stream[i : i + 1] for i in range(len(stream))])
    assert b"".join(raw for _, raw in pieces) + rest == stream
    assert len([p for p in pieces if p[0]]) == len(events_whole(stream))


def test_lf_after_cr_in_next_chunk_is_passed_at_once() -> None:
    f = SseFramer(1024)
    assert f.feed(b"data: a\r\n\r") == [(True, b"data: a\r\n\r")]
    assert f.feed(b"\ndata: b") == [(False, b"\n")]
    assert f.held == b"data: b"


def test_cr_split_inside_an_event_is_one_line_ending() -> None:
    f = SseFramer(1024)
    assert f.feed(b"data: a\r") == []
    # the LF completes the CR: "\r\n" then a blank "\n" ends the event
    assert f.feed(b"\n\n") == [(True, b"data: a\r\n\n")]


def test_incomplete_event_is_held_and_flushed_at_end() -> None:
    f = SseFramer(1024)
    assert f.feed(b"data: partial") == []
    assert f.held == b"data: partial"
    assert f.flush() == b"data: partial"
    assert f.held == b""


def test_cap_flushes_and_resyncs_to_the_next_event() -> None:
    f = SseFramer(1024)
    big = b"data: " + b"x" * 1100
    assert f.feed(big) == [(False, big)]
    assert f.held == b"" and f.resyncing
    assert f.feed(b"yyy\n") == [(False, b"yyy\n")]
    assert f.feed(b"\ndata: ok\n\n") == [(False, b"\n"), (True, b"data: ok\n\n")]
    assert not f.resyncing


def test_resync_blank_line_split_across_chunks() -> None:
    f = SseFramer(1024)
    f.feed(b"data: " + b"x" * 2000 + b"\n")
    assert f.resyncing
    assert f.feed(b"\n") == [(False, b"\n")]
    assert not f.resyncing
    assert f.feed(b"data: z\n\n") == [(True, b"data: z\n\n")]


def test_cap_never_exceeded_while_feeding_small_chunks() -> None:
    f = SseFramer(1024)
    stream = (b"data: " + b"y" * 3000 + b"\n\n" + b"data: ok\n\n") * 3
    out = b""
    for i in range(0, len(stream), 7):
        out += b"".join(raw for _, raw in f.feed(stream[i : i + 7]))
        assert len(f.held) <= 1024
    assert out + f.flush() == stream
