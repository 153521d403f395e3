"""Gateway behaviour pinned with tiny hand-written modules: the client's address, local replies,
a crashing module, and byte-exact streaming through a module that holds and releases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp

from tests.plugin.host.wat_modules import PAUSE_UNTIL_END, proxy_module
from usage_gateway.app import Gateway, RunningGateway, start_gateway
from usage_gateway.upstream import MockResponse, MockTransport, UpstreamError
from wasm_host import Vm
from wasm_host.state import encode_pairs

COPY_SOURCE_ADDRESS = (
    "(if (i32.eqz (call $proxy_get_property {path} (i32.const 0) (i32.const 4))) (then "
    "(drop (call $proxy_add_header_map_value (i32.const 0) {name} (i32.load (i32.const 0)) (i32.load (i32.const 4))))))"
    "i32.const 0"
)


async def _start(wasm: bytes, transport: MockTransport) -> RunningGateway:
    return await start_gateway(Gateway(vm=Vm(wasm), transport=transport, upstream_url="http://upstream.invalid"))


def _ok(_request: object) -> MockResponse:
    return MockResponse(200, [("content-type", "text/plain")], [b"fine"])


async def test_source_address_is_the_client_ip_and_port() -> None:
    transport = MockTransport(_ok)
    running = await _start(proxy_module(strings={"path": b"source\0address", "name": b"x-source"},
                                        request_headers=COPY_SOURCE_ADDRESS), transport)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(running.url + "/v1/models") as response:
                assert await response.read() == b"fine"
    finally:
        await running.stop()
    sources = [v for k, v in transport.requests[0].headers if k == "x-source"]
    assert len(sources) == 1
    host, port = sources[0].rsplit(":", 1)
    assert host == "127.0.0.1" and port.isdigit() and int(port) != int(running.url.rsplit(":", 1)[1])


async def test_local_reply_answers_without_calling_the_upstream() -> None:
    body = ("(drop (call $proxy_send_local_response (i32.const 429) {details} {body} {headers} (i32.const -1)))"
            "i32.const 1")
    wasm = proxy_module(strings={"details": b"slow down", "body": b'{"error":"slow down"}',
                                 "headers": encode_pairs([("content-type", "application/json")])},
                        request_headers=body)
    transport = MockTransport(_ok)
    running = await _start(wasm, transport)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(running.url + "/v1/chat/completions", json={"model": "m"}) as response:
                status, payload = response.status, await response.json()
    finally:
        await running.stop()
    assert (status, payload) == (429, {"error": "slow down"})
    assert transport.requests == []


async def test_a_module_crashing_before_the_response_starts_gives_500_then_503() -> None:
    running = await _start(proxy_module(response_headers="unreachable"), MockTransport(_ok))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(running.url + "/a") as first:
                first_status, first_body = first.status, await first.json()
            async with session.get(running.url + "/b") as second:
                second_status = second.status
    finally:
        await running.stop()
    assert first_status == 500 and first_body["error"]["type"] == "plugin_failed"
    assert "unreachable" in first_body["error"]["message"]
    assert second_status == 503
    assert running.gateway.vm.live_contexts == 0


async def test_a_module_crashing_mid_body_cuts_the_response_off() -> None:
    transport = MockTransport(lambda _r: MockResponse(200, [("content-type", "text/plain")], [b"one", b"two"]))
    running = await _start(proxy_module(response_body="unreachable"), transport)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(running.url + "/a") as response:
                assert response.status == 200  # headers were already sent
                try:
                    await response.read()
                    completed = True
                except aiohttp.ClientPayloadError:
                    completed = False
    finally:
        await running.stop()
    assert not completed  # like Envoy resetting the stream: never a silently truncated "success"
    assert running.gateway.stats.plugin_failures == 1


async def test_module_that_buffers_the_whole_body_gets_an_exact_content_length() -> None:
    # Holds headers and body to the end, then lets everything through unchanged.
    wasm = proxy_module(response_headers="i32.const 1", response_body=PAUSE_UNTIL_END)
    chunks = [b"part one, ", b"part two, ", b"\r\npart three"]
    transport = MockTransport(lambda _r: MockResponse(200, [("content-type", "text/plain")], chunks))
    running = await _start(wasm, transport)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(running.url + "/x") as response:
                body = await response.read()
                length = response.headers.get("content-length")
    finally:
        await running.stop()
    assert body == b"".join(chunks)
    assert length is None or int(length) == len(body)


async def test_request_body_over_the_cap_is_413_without_calling_the_upstream() -> None:
    transport = MockTransport(_ok)
    gateway = Gateway(vm=Vm(proxy_module()), transport=transport, upstream_url="http://upstream.invalid",
                      max_request_body_bytes=1000)
    running = await start_gateway(gateway)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(running.url + "/v1/chat/completions", data=b"x" * 5000) as response:
                status, payload = response.status, await response.json()
    finally:
        await running.stop()
    assert status == 413 and payload["error"]["type"] == "request_too_large"
    assert transport.requests == [] and gateway.vm.live_contexts == 0


class _BreaksOff(MockResponse):
    async def chunks(self) -> AsyncIterator[bytes]:
        yield b"first "
        raise UpstreamError("connection reset by upstream")


async def test_upstream_breaking_off_while_headers_are_held_is_502() -> None:
    # The module holds headers and body to the end, so nothing reached the client yet.
    wasm = proxy_module(response_headers="i32.const 1", response_body=PAUSE_UNTIL_END)
    running = await _start(wasm, MockTransport(lambda _r: _BreaksOff(200, [("content-type", "text/plain")])))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(running.url + "/x") as response:
                status, payload = response.status, await response.json()
    finally:
        await running.stop()
    assert status == 502 and payload["error"]["type"] == "upstream_broke_off"
    assert running.gateway.vm.live_contexts == 0


async def test_upstream_breaking_off_after_the_response_started_cuts_the_client_off() -> None:
    running = await _start(proxy_module(), MockTransport(lambda _r: _BreaksOff(200, [("content-type", "text/plain")])))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(running.url + "/x") as response:
                try:
                    await response.read()
                    completed = True
                except aiohttp.ClientPayloadError:
                    completed = False
    finally:
        await running.stop()
    assert not completed
    assert running.gateway.vm.live_contexts == 0
