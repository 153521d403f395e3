"""StreamState's own surface beyond the behaviour suite: what it asks the host for."""

from __future__ import annotations

from usage_filter.core.config import Config
from usage_filter.core.stream import StreamState, client_ip, request_path


def test_untracked_stream_wants_nothing() -> None:
    s = StreamState(Config())
    s.on_request_headers([(":path", "/v1/models"), (":method", "GET")], None, 0, True)
    assert not s.wants_request_body
    assert not s.wants_response_headers
    assert not s.wants_response_body


def test_tracked_stream_wants_what_it_inspects() -> None:
    s = StreamState(Config())
    s.on_request_headers([(":path", "/v1/chat/completions"), (":method", "POST")], None, 0)
    assert s.wants_request_body and s.wants_response_headers
    s.on_request_body(b'{"stream":true}', True)
    assert not s.wants_request_body
    assert not s.wants_response_body
    s.on_response_headers([(":status", "200"), ("content-type", "text/event-stream")], 1)
    assert s.wants_response_body
    other = StreamState(Config())
    other.on_request_headers([(":path", "/v1/chat/completions"), (":method", "POST")], None, 0)
    other.on_response_headers([(":status", "200"), ("content-type", "text/plain")], 1)
    assert not other.wants_response_body


def test_request_path_and_client_ip() -> None:
    assert request_path("/a/b?x=1#f") == "/a/b"
    assert request_path("/a#f?x") == "/a"
    assert client_ip("1.2.3.4:5") == "1.2.3.4"
    assert client_ip("[2001:db8::1]:5") == "2001:db8::1"
    assert client_ip("2001:db8::1") == "2001:db8::1"
    assert client_ip("1.2.3.4") == "1.2.3.4"
    assert client_ip("unix:/tmp/sock") is None
    assert client_ip("") is None and client_ip(None) is None
