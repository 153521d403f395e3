"""The host runs the original Go build (wasm-go, Higress ABI 0.2.100) the way Envoy would.

These tests prove the host is faithful to Envoy/Higress, not shaped to our own module: a plugin
written against the real Go SDK starts, rewrites requests and injects its statistics here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from wasm_host import ConfigRejected, HttpStream, LogLevel, ManualClock, Vm

CHAT = "/v1/chat/completions"


def _request(stream: HttpStream, path: str, body: dict[str, object]) -> tuple[list[tuple[str, str]], bytes]:
    raw = json.dumps(body).encode()
    headers_step = stream.on_request_headers(
        [(":method", "POST"), (":path", path), (":authority", "gw"), (":scheme", "http"),
         ("content-type", "application/json"), ("content-length", str(len(raw))), ("accept-encoding", "gzip")]
    )
    assert headers_step.headers is None, "wasm-go holds request headers until the body (Higress StopIteration)"
    body_step = stream.on_request_body(raw, True)
    assert body_step.headers is not None and body_step.end_of_stream
    return body_step.headers, body_step.body


@pytest.fixture()
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture()
def vm(go_build_wasm: Path, clock: ManualClock) -> Vm:
    return Vm(go_build_wasm, plugin_config="{}", clock=clock)


def test_starts_like_envoy(vm: Vm) -> None:
    assert vm.abi_version == "0.2.100"
    assert not vm.has_export("malloc")  # the host falls back to proxy_on_memory_allocate
    assert any("plugin start successfully" in m for m in vm.log_messages(LogLevel.INFO))


def test_invalid_json_config_is_refused(go_build_wasm: Path) -> None:
    with pytest.raises(ConfigRejected, match="not a valid json"):
        Vm(go_build_wasm, plugin_config="{not json")


def test_stream_gets_statistics_from_driven_clock(vm: Vm, clock: ManualClock) -> None:
    with HttpStream(vm, source_address="10.1.2.3:5555") as stream:
        headers, body = _request(stream, CHAT, {"model": "m", "stream": True, "messages": []})
        sent = json.loads(body)
        assert sent["stream_options"] == {"include_usage": True}
        names = [k for k, _ in headers]
        assert "content-length" not in names and "accept-encoding" not in names

        clock.advance(ms=100)
        response = stream.on_response_headers([(":status", "200"), ("content-type", "text/event-stream")])
        assert response.headers is not None
        events = [
            b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n',
            b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n',
            b'data: {"choices":[{"delta":{"content":" there"}}]}\n\n',
            b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n',
            b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}\n\n',
            b"data: [DONE]\n\n",
        ]
        out = []
        for event in events:
            clock.advance(ms=30)
            step = stream.on_response_body(event, False)
            assert step.action == 0
            out.append(step.body)
        stream.on_response_body(b"", True)
    assert out[:4] == events[:4] and out[5] == events[5]
    usage = json.loads(out[4][len(b"data: "):])["usage"]
    # The Go build counts the first body callback (here the role-only delta) as the first token.
    assert usage["time_to_first_token_ms"] == 130
    assert usage["time_per_output_token_ms"] == 60
    assert usage["tokens_per_second"] == 16.67
    assert stream.response.sent_body == b"".join(out)
    assert vm.live_contexts == 0


def test_usage_event_split_across_callbacks_is_held_then_completed(vm: Vm, clock: ManualClock) -> None:
    with HttpStream(vm) as stream:
        _request(stream, CHAT, {"model": "m", "stream": True})
        stream.on_response_headers([(":status", "200"), ("content-type", "text/event-stream")])
        clock.advance(ms=50)
        first = stream.on_response_body(
            b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\ndata: {"id":"x","choices":[],"usa', False)
        clock.advance(ms=50)
        second = stream.on_response_body(
            b'ge":{"prompt_tokens":32000,"completion_tokens":10,"total_tokens":32010}}\n\n', False)
        stream.on_response_body(b"data: [DONE]\n\n", True)
    assert first.body == b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'
    usage = json.loads(second.body[len(b"data: "):])["usage"]
    assert usage["completion_tokens"] == 10
    assert usage["time_to_first_token_ms"] == 50
    assert usage["tokens_per_second"] == 180


def test_untracked_path_passes_through_byte_for_byte(vm: Vm) -> None:
    payload = b'{"data":[],"usage":{"completion_tokens":3}}'
    with HttpStream(vm) as stream:
        _request(stream, "/v1/models", {"x": 1})
        response = stream.on_response_headers([(":status", "200"), ("content-type", "application/json")])
        step = stream.on_response_body(payload, True)
    assert response.headers == [(":status", "200"), ("content-type", "application/json")]
    assert step.body == payload


def test_non_streaming_response_headers_held_until_first_body_chunk(vm: Vm) -> None:
    body = b'{"object":"chat.completion","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
    with HttpStream(vm) as stream:
        _request(stream, CHAT, {"model": "m"})
        held = stream.on_response_headers(
            [(":status", "200"), ("content-type", "application/json"), ("content-length", str(len(body)))])
        first = stream.on_response_body(body[:20], False)
        rest = stream.on_response_body(body[20:], True)
    assert held.action == 1 and held.headers is None  # Higress StopIteration: held, body goes on
    assert first.headers is not None and ("content-length", str(len(body))) in first.headers
    assert first.body + rest.body == body  # the Go build does not rewrite non-streaming bodies


def test_many_streams_on_one_vm_delete_their_contexts(vm: Vm) -> None:
    ids = set()
    for _ in range(20):
        stream = HttpStream(vm)
        ids.add(stream.context_id)
        _request(stream, CHAT, {"model": "m", "stream": True})
        stream.close()
    assert len(ids) == 20
    assert vm.live_contexts == 0
