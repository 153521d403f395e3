"""The gateway end to end: real sockets, the Go build as the module, the official openai client."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import openai
import pytest
from yarl import URL

from usage_gateway.app import Gateway, RunningGateway, start_gateway
from usage_gateway.sample_upstream import REPLY, RunningUpstream

from .conftest import FAST
from usage_gateway.upstream import AiohttpTransport, MockResponse, MockTransport, UpstreamRequest
from wasm_host import Vm

STAT_FIELDS = ("time_to_first_token_ms", "time_per_output_token_ms", "tokens_per_second")
MESSAGES = [{"role": "user", "content": "how fast are you?"}]


def _client(gateway: RunningGateway) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=gateway.url + "/v1", api_key="unused", max_retries=0)


async def test_stream_with_include_usage_gets_statistics(module_gateway: RunningGateway) -> None:
    async with _client(module_gateway) as client:
        stream = await client.chat.completions.create(
            model="m", messages=MESSAGES, stream=True, stream_options={"include_usage": True})
        text, usage = "", None
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage is not None:
                usage = chunk.usage.model_dump()
    assert text == REPLY
    assert usage is not None and usage["completion_tokens"] > 1
    for name in STAT_FIELDS:
        assert isinstance(usage[name], (int, float)) and usage[name] >= 0, name
    assert module_gateway.gateway.vm.live_contexts == 0


async def test_stream_without_stream_options_still_gets_usage(
    module_gateway: RunningGateway, sample_upstream: RunningUpstream
) -> None:
    async with _client(module_gateway) as client:
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        usages = [c.usage.model_dump() for c in [c async for c in stream] if c.usage is not None]
    sent = sample_upstream.upstream.requests[-1]["body"]
    assert isinstance(sent, dict) and sent["stream_options"] == {"include_usage": True}
    assert len(usages) == 1 and all(name in usages[0] for name in STAT_FIELDS)


async def test_non_streaming_and_embeddings_pass(module_gateway: RunningGateway) -> None:
    async with _client(module_gateway) as client:
        chat = await client.chat.completions.create(model="m", messages=MESSAGES)
        embedding = await client.embeddings.create(model="e", input=["a b", "c"])
    assert chat.choices[0].message.content == REPLY and chat.usage is not None
    assert embedding.usage.prompt_tokens == 3 and len(embedding.data) == 2


async def _gateway_with(go_build_wasm: Path, transport: MockTransport) -> RunningGateway:
    return await start_gateway(Gateway(vm=Vm(go_build_wasm, plugin_config="{}"), transport=transport,
                                       upstream_url="http://upstream.invalid"))


async def test_untracked_path_bytes_and_headers_preserved(go_build_wasm: Path) -> None:
    chunks = [b"\x00\xffbinary\r\n", b"data: {\"usage\":{\"completion_tokens\":2}}\r\r\n", b"tail"]
    transport = MockTransport(lambda _req: MockResponse(
        200, [("content-type", "application/octet-stream"), ("x-upstream", "kept"), ("connection", "x-hop"),
              ("x-hop", "dropped"), ("keep-alive", "timeout=5")], chunks))
    running = await _gateway_with(go_build_wasm, transport)
    try:
        async with aiohttp.ClientSession(auto_decompress=False) as session:
            async with session.get(URL(running.url + "/files/blob?x=%2F1", encoded=True), headers={"x-client": "c"}) as response:
                body = await response.read()
                headers = response.headers
    finally:
        await running.stop()
    assert body == b"".join(chunks)
    assert headers["x-upstream"] == "kept" and "x-hop" not in headers and "keep-alive" not in headers
    sent = transport.requests[0]
    assert sent.url == "http://upstream.invalid/files/blob?x=%2F1"
    assert ("x-client", "c") in sent.headers


async def test_response_chunks_are_forwarded_as_they_arrive(go_build_wasm: Path) -> None:
    release_rest = asyncio.Event()

    class Paced(MockResponse):
        async def chunks(self) -> AsyncIterator[bytes]:
            yield b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'
            await release_rest.wait()  # the client must see the first event before this
            yield b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\n\n'
            yield b"data: [DONE]\n\n"

    transport = MockTransport(lambda _req: Paced(200, [("content-type", "text/event-stream")]))
    running = await _gateway_with(go_build_wasm, transport)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(running.url + "/v1/chat/completions", json={"model": "m", "stream": True}) as resp:
                first = await asyncio.wait_for(resp.content.readuntil(b"\n\n"), timeout=20)
                release_rest.set()
                rest = await asyncio.wait_for(resp.content.read(), timeout=20)
    finally:
        await running.stop()
    assert first == b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'
    usage = json.loads(rest.split(b"\n\n")[0][len(b"data: "):])["usage"]
    assert all(name in usage for name in STAT_FIELDS)
    assert rest.endswith(b"data: [DONE]\n\n")


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_unreachable_upstream_is_502_json(go_build_wasm: Path) -> None:
    gateway = Gateway(vm=Vm(go_build_wasm, plugin_config="{}"), transport=AiohttpTransport(),
                      upstream_url=f"http://127.0.0.1:{_closed_port()}")
    running = await start_gateway(gateway)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(running.url + "/v1/chat/completions", json={"model": "m"}) as response:
                status, payload = response.status, await response.json()
    finally:
        await running.stop()
    assert status == 502
    assert payload["error"]["type"] == "upstream_unreachable"
    assert gateway.stats.upstream_errors == 1 and gateway.vm.live_contexts == 0


async def test_client_disconnect_mid_stream_releases_the_context(go_build_wasm: Path) -> None:
    never = asyncio.Event()

    class Endless(MockResponse):
        async def chunks(self) -> AsyncIterator[bytes]:
            yield b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n'
            await never.wait()
            yield b""

    running = await _gateway_with(go_build_wasm, MockTransport(lambda _r: Endless(200, [("content-type", "text/event-stream")])))
    gateway = running.gateway
    try:
        session = aiohttp.ClientSession()
        response = await session.post(running.url + "/v1/chat/completions", json={"model": "m", "stream": True})
        await asyncio.wait_for(response.content.readuntil(b"\n\n"), timeout=20)
        assert gateway.vm.live_contexts == 1
        response.close()
        await session.close()
        for _ in range(200):  # bounded wait for the server to notice
            if gateway.vm.live_contexts == 0 and gateway.stats.active_streams == 0:
                break
            await asyncio.sleep(0.05)
    finally:
        await running.stop()
    assert gateway.vm.live_contexts == 0
    assert gateway.stats.active_streams == 0


async def test_request_reaches_upstream_as_the_module_rewrote_it(go_build_wasm: Path) -> None:
    def answer(request: UpstreamRequest) -> MockResponse:
        return MockResponse(200, [("content-type", "application/json")], [b"{}"])

    transport = MockTransport(answer)
    running = await _gateway_with(go_build_wasm, transport)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(running.url + "/v1/chat/completions", json={"model": "m", "stream": True},
                                    headers={"accept-encoding": "gzip"}) as response:
                await response.read()
    finally:
        await running.stop()
    sent = transport.requests[0]
    assert json.loads(sent.body)["stream_options"] == {"include_usage": True}
    assert "accept-encoding" not in {k for k, _ in sent.headers}


async def test_time_to_first_token_counts_content_not_the_role_delta(our_gateway: RunningGateway) -> None:
    # The sample upstream sends the role-only delta at once and the first content after
    # first_token_delay_ms (a sleep: a lower bound, not a timing guess). The Go build fails
    # this: it counts the first body callback (the role delta) as the first token.
    async with _client(our_gateway) as client:
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        usage = [c.usage.model_dump() for c in [c async for c in stream] if c.usage is not None][0]
    assert usage["time_to_first_token_ms"] >= FAST.first_token_delay_ms


async def test_our_module_adds_tokens_per_second_to_non_streaming_chat(our_gateway: RunningGateway) -> None:
    async with _client(our_gateway) as client:
        chat = await client.chat.completions.create(model="m", messages=MESSAGES)
        embedding = await client.embeddings.create(model="e", input="x")
    assert chat.usage is not None and chat.usage.model_dump()["tokens_per_second"] > 0
    assert "tokens_per_second" not in embedding.usage.model_dump()


async def test_tracked_stream_bytes_preserved_except_inside_usage(built_plugin_wasm: Path) -> None:
    events = [
        b": keep-alive comment\r\n\r\n",
        b"event: message\r\nid: 1\r\ndata:{\"choices\":[{\"delta\":{\"role\":\"assistant\"}}]}\r\n\r\n",
        b'data: {"choices":[{"delta":{"content":"caf\xc3\xa9"}}]}\n\n',
        b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}\n\n',
        b"data:[DONE]\n\n",
    ]
    # Split the stream at awkward places: inside a CRLF, inside the usage JSON.
    raw = b"".join(events)
    cuts = [raw.index(b"\r\n") + 1, raw.index(b"usage") + 3, len(raw) - 3]
    chunks = [raw[a:b] for a, b in zip([0, *cuts], [*cuts, len(raw)])]
    transport = MockTransport(lambda _r: MockResponse(200, [("content-type", "text/event-stream")], chunks))
    running = await start_gateway(Gateway(vm=Vm(built_plugin_wasm, plugin_config="{}"), transport=transport,
                                          upstream_url="http://upstream.invalid"))
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(running.url + "/v1/chat/completions",
                                    json={"model": "m", "stream": True, "stream_options": {"include_usage": True}}) as r:
                received = await r.read()
    finally:
        await running.stop()
    usage_at = raw.index(b'"total_tokens":2') + len(b'"total_tokens":2')
    assert received.startswith(raw[:usage_at])
    injected, rest = received[usage_at:].split(b"}", 1)
    assert injected.startswith(b',"time_to_first_token_ms":')
    assert all(name.encode() in injected for name in STAT_FIELDS)
    assert b"}" + rest == raw[usage_at:]


async def test_concurrent_streams_share_one_vm_and_each_get_their_usage(module_gateway: RunningGateway) -> None:
    async def one(client: openai.AsyncOpenAI) -> tuple[str, dict[str, object]]:
        stream = await client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        text, usage = "", {}
        async for chunk in stream:
            if chunk.choices and chunk.choices[0].delta.content:
                text += chunk.choices[0].delta.content
            if chunk.usage is not None:
                usage = chunk.usage.model_dump()
        return text, usage

    async with _client(module_gateway) as client:
        results = await asyncio.gather(*(one(client) for _ in range(6)))
    assert all(text == REPLY for text, _ in results)
    assert all(all(name in usage for name in STAT_FIELDS) for _, usage in results)
    assert module_gateway.gateway.vm.live_contexts == 0


async def test_expect_100_continue_is_answered_here_not_forwarded(go_build_wasm: Path) -> None:
    # curl sends `Expect: 100-continue` for bodies over 1 MiB; forwarded, the upstream client
    # would wait for a second 100 that a plain upstream never sends (a user report).
    transport = MockTransport(lambda _req: MockResponse(200, [("content-type", "application/json")], [b"{}"]))
    running = await _gateway_with(go_build_wasm, transport)
    try:
        async with aiohttp.ClientSession() as session:
            async with session.post(running.url + "/v1/files", data=b"x" * 2048, expect100=True) as response:
                assert response.status == 200
    finally:
        await running.stop()
    sent = transport.requests[0]
    assert all(name.lower() != "expect" for name, _ in sent.headers)
