"""The built module in the embedded wasmtime host (started as Envoy starts it): the binding's
contract end to end. Filter behaviour in depth is the behaviour suite's job."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import wasmtime

from wasm_host import ConfigRejected, HttpStream, LogLevel, ManualClock, Vm

CHAT = "/v1/chat/completions"
SSE = [(":status", "200"), ("content-type", "text/event-stream")]


@pytest.fixture()
def clock() -> ManualClock:
    return ManualClock()


def _memory_bytes(vm: Vm) -> int:
    memory = vm.instance.exports(vm.store)["memory"]
    assert isinstance(memory, wasmtime.Memory)
    return memory.data_len(vm.store)


def _vm(wasm: Path, clock: ManualClock, config: object = None) -> Vm:
    return Vm(wasm, plugin_config=json.dumps(config) if config is not None else b"", clock=clock)


def test_starts_and_configures_with_defaults(plugin_wasm: Path, clock: ManualClock) -> None:
    vm = _vm(plugin_wasm, clock)
    assert vm.abi_version == "0.2.1"
    assert vm.log_messages(LogLevel.WARN) == []
    vm.close()


def test_invalid_config_is_refused_with_one_error_line(plugin_wasm: Path, clock: ManualClock) -> None:
    with pytest.raises(ConfigRejected) as caught:
        _vm(plugin_wasm, clock, {"maxEventBytes": 5})
    assert "maxEventBytes=5" in str(caught.value)


def test_invalid_config_logs_exactly_one_error(plugin_wasm: Path, clock: ManualClock) -> None:
    vm = _vm(plugin_wasm, clock)
    vm.clear_logs()
    with pytest.raises(ConfigRejected):
        vm.configure('{"realIPToHeader": "host"}')
    errors = vm.log_messages(LogLevel.ERROR)
    assert len(errors) == 1
    assert "realIPToHeader" in errors[0] and '"host"' in errors[0]
    vm.close()


def test_unknown_key_is_one_warning(plugin_wasm: Path, clock: ManualClock) -> None:
    vm = _vm(plugin_wasm, clock, {"bogus": 1})
    warnings = vm.log_messages(LogLevel.WARN)
    assert len(warnings) == 1 and '"bogus"' in warnings[0]
    vm.close()


def test_stream_gets_statistics_and_real_ip(plugin_wasm: Path, clock: ManualClock) -> None:
    vm = _vm(plugin_wasm, clock, {"realIPToHeader": "X-Real-IP"})
    body = json.dumps({"model": "m", "stream": True, "messages": []}).encode()
    with HttpStream(vm, source_address="10.1.2.3:5555") as stream:
        held = stream.on_request_headers(
            [(":method", "POST"), (":path", CHAT + "?x=1"), (":authority", "gw"),
             ("content-type", "application/json"), ("content-length", str(len(body))),
             ("x-real-ip", "6.6.6.6"), ("accept-encoding", "gzip")]
        )
        assert held.headers is None  # held until the body is rewritten
        sent = stream.on_request_body(body, True)
        assert sent.headers is not None
        headers = dict(sent.headers)
        assert headers["x-real-ip"] == "10.1.2.3"
        assert "accept-encoding" not in headers
        assert json.loads(sent.body)["stream_options"] == {"include_usage": True}
        assert headers["content-length"] == str(len(sent.body))

        clock.advance(ms=100)
        stream.on_response_headers(SSE)
        events = [
            b'data: {"choices":[{"delta":{"role":"assistant"}}]}\n\n',
            b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n',
            b'data: {"choices":[{"delta":{"content":" there"}}]}\n\n',
            b'data: {"choices":[{"delta":{"content":"!"}}]}\n\ndata: {"choices":[],"usa',
            b'ge":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}\n\ndata: [DONE]\n\n',
        ]
        out = []
        for event in events:
            clock.advance(ms=30)
            out.append(stream.on_response_body(event, False).body)
        out.append(stream.on_response_body(b"", True).body)
    # Content at 160 ms (first token) and 220 ms (last), 3 tokens: TPOT 30 ms, TPS 33.33.
    assert out[:3] == events[:3]
    assert out[3] == b'data: {"choices":[{"delta":{"content":"!"}}]}\n\n'
    assert out[4] == (
        b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8,'
        b'"time_to_first_token_ms":160,"time_per_output_token_ms":30,"tokens_per_second":33.33}}\n\n'
        b"data: [DONE]\n\n"
    )
    assert vm.log_messages(LogLevel.ERROR) == []
    assert vm.live_contexts == 0
    vm.close()


def test_missing_source_address_removes_client_value(plugin_wasm: Path, clock: ManualClock) -> None:
    vm = _vm(plugin_wasm, clock, {"realIPToHeader": "x-real-ip"})
    with HttpStream(vm, source_address=None) as stream:
        step = stream.on_request_headers([(":method", "GET"), (":path", "/v1/models"), ("x-real-ip", "6.6.6.6")], True)
    assert step.headers is not None and "x-real-ip" not in dict(step.headers)
    vm.close()


def test_many_streams_leave_no_contexts_and_flat_memory(plugin_wasm: Path, clock: ManualClock) -> None:
    vm = _vm(plugin_wasm, clock)
    memory = []
    for round_ in range(3):
        for _ in range(50):
            with HttpStream(vm) as stream:
                stream.on_request_headers([(":method", "POST"), (":path", CHAT)])
                stream.on_request_body(b'{"stream":true}', True)
                stream.on_response_headers(SSE)
                stream.on_response_body(b'data: {"choices":[{"delta":{"content":"x"}}]}\n\ndata: {"cho', False)
        memory.append(_memory_bytes(vm))
    assert vm.live_contexts == 0
    assert memory[-1] == memory[1]
    vm.close()
