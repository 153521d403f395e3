"""The behaviour suite's driver for a real .wasm in the embedded host (wasm_host).

Produces the same `Exchange` as `tests.plugin.exchange.run_core`, from what the host lets
through at each callback, with the host clock set to each callback's time.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.plugin.exchange import Driver, Exchange, Headers, Request, Response
from wasm_host.abi import LogLevel
from wasm_host.clock import ManualClock
from wasm_host.http import HttpStream, Step
from wasm_host.vm import Vm

_EPOCH_NS = 1_700_000_000_000_000_000


def _config_bytes(config: bytes | str | dict[str, object] | None) -> bytes:
    if config is None:
        return b""
    if isinstance(config, dict):
        return json.dumps(config).encode()
    return config.encode() if isinstance(config, str) else config


def run_wasm(wasm: bytes, config: bytes | str | dict[str, object] | None, request: Request, response: Response) -> Exchange:
    clock = ManualClock(_EPOCH_NS)
    vm = Vm(wasm, plugin_config=_config_bytes(config), clock=clock)

    def at(ns: int) -> None:
        clock.advance(ns=_EPOCH_NS + ns - clock.realtime_ns())

    upstream_headers: Headers = []
    client_headers: Headers = []
    upstream = b""
    forwarded: list[bytes] = []

    def take(step: Step, into_request: bool) -> bytes:
        nonlocal upstream_headers, client_headers
        if step.headers is not None:
            if into_request:
                upstream_headers = list(step.headers)
            else:
                client_headers = list(step.headers)
        return step.body

    stream = HttpStream(vm, source_address=request.source_address)
    try:
        at(request.start_ns)
        take(stream.on_request_headers(request.all_headers(), end_of_stream=not request.body), True)
        for i, chunk in enumerate(request.body):
            upstream += take(stream.on_request_body(chunk, i == len(request.body) - 1), True)
        at(response.headers_ns)
        take(stream.on_response_headers(response.all_headers(), end_of_stream=not response.chunks), False)
        for i, chunk in enumerate(response.chunks):
            at(response.time_of(i))
            forwarded.append(take(stream.on_response_body(chunk, i == len(response.chunks) - 1), False))
    finally:
        stream.close()
    errors = vm.log_messages(LogLevel.ERROR)
    vm.close()
    return Exchange(upstream_headers, upstream, client_headers, forwarded, errors)


def make_driver(request: pytest.FixtureRequest) -> Driver:
    wasm: Path = request.getfixturevalue("plugin_wasm")
    data = wasm.read_bytes()
    return lambda config, req, resp: run_wasm(data, config, req, resp)
