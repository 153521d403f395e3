"""Context table, fail-open guard and body bookkeeping of the binding (native CPython)."""

from __future__ import annotations

import json

from tests.plugin.binding.conftest import FakeHost

ERROR, WARN = 4, 3
CONTINUE, PAUSE = 0, 1
SSE = [(":status", "200"), ("content-type", "text/event-stream")]


def _configured(host: FakeHost, config: dict[str, object] | None = None) -> None:
    host.handler.proxy_on_context_create(1, 0)
    assert host.handler.proxy_on_vm_start(1, 0) == 1
    host.buffers[7] = json.dumps(config or {}).encode()
    assert host.handler.proxy_on_configure(1, len(host.buffers[7])) == 1


def _stream(host: FakeHost, context_id: int = 2, path: str = "/v1/chat/completions") -> None:
    host.handler.proxy_on_context_create(context_id, 1)
    host.maps[0] = [(":method", "POST"), (":path", path), ("content-type", "application/json")]
    host.handler.proxy_on_request_headers(context_id, 3, 0)


def test_entry_module_registers_the_dispatcher(host: FakeHost) -> None:
    assert hasattr(host.handler, "proxy_on_response_body")


def test_bad_config_refused_with_exactly_one_error_line(host: FakeHost) -> None:
    host.handler.proxy_on_context_create(1, 0)
    host.buffers[7] = b'{"enableOnPathSuffix": ["no-slash"]}'
    assert host.handler.proxy_on_configure(1, len(host.buffers[7])) == 0
    errors = [m for level, m in host.logs if level == ERROR]
    assert len(errors) == 1 and "enableOnPathSuffix" in errors[0] and "no-slash" in errors[0]


def test_each_config_warning_is_logged(host: FakeHost) -> None:
    _configured(host, {"a": 1, "b": 2})
    warnings = [m for level, m in host.logs if level == WARN]
    assert len(warnings) == 2 and '"a"' in warnings[0] and '"b"' in warnings[1]


def test_empty_config_means_defaults(host: FakeHost) -> None:
    host.handler.proxy_on_context_create(1, 0)
    assert host.handler.proxy_on_configure(1, 0) == 1
    assert host.logs == []


def test_unknown_context_fails_loudly_and_open(host: FakeHost) -> None:
    _configured(host)
    assert host.handler.proxy_on_response_body(42, 10, 0) == CONTINUE
    assert host.handler.proxy_on_request_headers(42, 1, 0) == CONTINUE
    assert host.handler.proxy_on_configure(42, 0) == 0
    errors = [m for level, m in host.logs if level == ERROR]
    assert len(errors) == 3 and all("42" in e for e in errors)


def test_stream_under_unknown_root_is_an_error(host: FakeHost) -> None:
    host.handler.proxy_on_context_create(5, 99)
    assert any("unknown root context 99" in m for level, m in host.logs if level == ERROR)


def test_paused_body_feeds_the_core_only_the_new_tail(host: FakeHost) -> None:
    _configured(host)
    _stream(host)
    body = b'{"model":"m","stream":true,"messages":[]}'
    host.buffers[0] = body[:7]
    assert host.handler.proxy_on_request_body(2, 7, 0) == PAUSE
    host.buffers[0] = body  # the host kept buffering: everything since the last Continue
    assert host.handler.proxy_on_request_body(2, len(body), 1) == CONTINUE
    sent = json.loads(host.buffers[0])
    assert sent["model"] == "m" and sent["stream_options"] == {"include_usage": True}
    assert host.buffers[0].count(b'"model"') == 1  # the first 7 bytes were not fed twice


def test_held_event_is_forwarded_with_its_end(host: FakeHost) -> None:
    _configured(host)
    _stream(host)
    host.maps[2] = list(SSE)
    host.handler.proxy_on_response_headers(2, 2, 0)
    first = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\ndata: {"cho'
    host.buffers[1] = first
    assert host.handler.proxy_on_response_body(2, len(first), 0) == CONTINUE
    assert host.buffers[1] == b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
    rest = b'ices":[]}\n\n'
    host.buffers[1] = rest
    host.handler.proxy_on_response_body(2, len(rest), 1)
    assert host.buffers[1] == b'data: {"choices":[]}\n\n'


def test_trailers_end_the_body(host: FakeHost) -> None:
    _configured(host)
    _stream(host)
    host.maps[2] = list(SSE)
    host.handler.proxy_on_response_headers(2, 2, 0)
    host.buffers[1] = b'data: {"x":1}'
    host.handler.proxy_on_response_body(2, len(host.buffers[1]), 0)
    host.buffers[1] = b""
    assert host.handler.proxy_on_response_trailers(2, 1) == CONTINUE
    assert host.buffers[1] == b'data: {"x":1}'  # the held tail goes out at end of stream


def test_host_failure_logs_once_and_stream_passes_through(host: FakeHost) -> None:
    _configured(host)
    _stream(host)
    host.maps[2] = list(SSE)
    host.handler.proxy_on_response_headers(2, 2, 0)
    host.fail.add("get_buffer_bytes")
    host.buffers[1] = b"data: {}\n\n"
    assert host.handler.proxy_on_response_body(2, 10, 0) == CONTINUE
    host.fail.clear()
    calls = len(host.calls)
    assert host.handler.proxy_on_response_body(2, 10, 0) == CONTINUE
    assert len(host.calls) == calls  # no more processing for this stream
    errors = [m for level, m in host.logs if level == ERROR]
    assert len(errors) == 1 and "proxy_get_buffer_bytes failed: INTERNAL_FAILURE" in errors[0]


def test_state_dies_with_the_stream(host: FakeHost) -> None:
    _configured(host)
    _stream(host)
    assert host.handler.proxy_on_done(2) == 1
    host.handler.proxy_on_delete(2)
    assert host.handler.proxy_on_response_body(2, 0, 1) == CONTINUE  # gone: unknown now
    assert any("unknown HTTP context 2" in m for level, m in host.logs if level == ERROR)
    assert host.handler._streams == {} and set(host.handler._roots) == {1}


def test_real_ip_from_source_address_replaces_client_value(host: FakeHost) -> None:
    _configured(host, {"realIPToHeader": "x-real-ip"})
    host.handler.proxy_on_context_create(2, 1)
    host.properties[b"source\0address"] = b"[2001:db8::1]:443"
    host.maps[0] = [(":method", "GET"), (":path", "/other"), ("x-real-ip", "1.1.1.1")]
    assert host.handler.proxy_on_request_headers(2, 3, 1) == CONTINUE
    assert dict(host.maps[0])["x-real-ip"] == "2001:db8::1"
