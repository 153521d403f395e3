"""The core's stream properties, through the real module: many streams on ONE VM.

Sharing the VM across examples also checks that no state leaks from one stream to the next
and that the module's memory stays flat (per-stream state dies with its context).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.plugin.core.test_stream_properties import CAP, STATS_RE, stream_and_cuts
from wasm_host.abi import LogLevel
from wasm_host.http import HttpStream
from wasm_host.vm import Vm


@pytest.fixture(scope="module")
def vm(plugin_wasm: Path) -> Vm:
    return Vm(plugin_wasm, plugin_config=json.dumps({"maxEventBytes": CAP}))


def run_stream(vm: Vm, chunks: list[bytes], ctype: str = "text/event-stream") -> list[bytes]:
    out: list[bytes] = []
    with HttpStream(vm) as stream:
        stream.on_request_headers([(":method", "GET"), (":path", "/v1/chat/completions")], end_of_stream=True)
        stream.on_response_headers([(":status", "200"), ("content-type", ctype)])
        for i, chunk in enumerate(chunks):
            out.append(stream.on_response_body(chunk, i == len(chunks) - 1).body)
    return out


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(case=stream_and_cuts())
def test_bytes_preserved_except_usage_for_any_cut(vm: Vm, case: tuple[bytes, int, list[bytes]]) -> None:
    data, usage_events, chunks = case
    out = run_stream(vm, chunks)
    fed = 0
    for i, chunk in enumerate(chunks):
        fed += len(chunk)
        assert fed - len(STATS_RE.sub(b"", b"".join(out[: i + 1]))) <= CAP
    assert STATS_RE.sub(b"", b"".join(out)) == data
    assert b"".join(out).count(b'"time_to_first_token_ms"') == usage_events


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(chunks=st.lists(st.binary(max_size=300), min_size=1, max_size=6), ctype=st.sampled_from(["text/event-stream", "application/json"]))
def test_garbage_passes_and_never_traps(vm: Vm, chunks: list[bytes], ctype: str) -> None:
    out = run_stream(vm, chunks, ctype)
    assert b"".join(out) == b"".join(chunks)
    assert vm.failure is None


def test_streams_leave_nothing_behind(vm: Vm) -> None:
    event = b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n'
    usage = b'data: {"choices":[],"usage":{"completion_tokens":2}}\n\n'
    # Warm-up: the allocator and the GC settle within a few hundred streams (measured: one
    # extra 64 KiB page by stream 300, then flat to 3,000).
    for _ in range(500):
        run_stream(vm, [event, b"data: {partial", usage])
    memory = vm.instance.exports(vm.store)["memory"]
    assert isinstance(memory, wasmtime.Memory)
    pages = memory.size(vm.store)
    for _ in range(1000):
        run_stream(vm, [event, b"data: {partial", usage])
    assert vm.live_contexts == 0
    assert memory.size(vm.store) == pages
    assert vm.log_messages(LogLevel.ERROR) == []
