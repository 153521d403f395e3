"""Cost of the embedded host (wasmtime) per callback and of the gateway per streamed event.

    .venv/bin/python bench/host_bench.py [--plugin PATH | --go-build] [--streams N] [--events N]

Prints VM start time, microseconds per response-body callback (median and p90) for 1 KiB content
events through HttpStream, and events/s through the real gateway (sample upstream, no pacing).
Judge the module's own speed on V8, not here: wasmtime-py adds ~10-25 us per host call.
Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from pathlib import Path

import aiohttp

from usage_gateway.app import Gateway, start_gateway
from usage_gateway.sample_upstream import REPLY, Pacing, start_sample_upstream
from usage_gateway.upstream import AiohttpTransport
from wasm_host import HttpStream, Vm

CONTENT_1K = b"data: " + json.dumps({"choices": [{"index": 0, "delta": {"content": "x" * 950}}]}).encode() + b"\n\n"
USAGE = b'data: {"choices":[],"usage":{"prompt_tokens":12,"completion_tokens":200,"total_tokens":212}}\n\n'


def bench_callbacks(wasm: Path, streams: int, events: int) -> None:
    started = time.perf_counter()
    vm = Vm(wasm, plugin_config="{}")
    print(f"VM start (compiled code cached): {(time.perf_counter() - started) * 1000:.1f} ms")
    body = json.dumps({"model": "m", "stream": True}).encode()
    samples_us: list[float] = []
    for _ in range(streams):
        with HttpStream(vm) as stream:
            stream.on_request_headers([(":method", "POST"), (":path", "/v1/chat/completions"), (":authority", "bench"),
                                       ("content-type", "application/json")])
            stream.on_request_body(body, True)
            stream.on_response_headers([(":status", "200"), ("content-type", "text/event-stream")])
            for _ in range(events):
                t0 = time.perf_counter()
                stream.on_response_body(CONTENT_1K, False)
                samples_us.append((time.perf_counter() - t0) * 1e6)
            stream.on_response_body(USAGE, False)
            stream.on_response_body(b"data: [DONE]\n\n", True)
    samples_us.sort()
    print(f"1 KiB content event callback: median {statistics.median(samples_us):.0f} us, "
          f"p90 {samples_us[int(len(samples_us) * 0.9)]:.0f} us ({len(samples_us)} samples)")


async def bench_gateway(wasm: Path, streams: int) -> None:
    upstream = await start_sample_upstream(Pacing(first_token_delay_ms=0, inter_token_delay_ms=(0, 0)))
    gateway = await start_gateway(Gateway(vm=Vm(wasm, plugin_config="{}"), transport=AiohttpTransport(),
                                          upstream_url=upstream.url))
    events = len(REPLY.split(" ")) + 4
    try:
        async with aiohttp.ClientSession() as session:
            t0 = time.perf_counter()
            for _ in range(streams):
                async with session.post(gateway.url + "/v1/chat/completions",
                                        json={"model": "m", "stream": True, "messages": []}) as response:
                    await response.read()
            elapsed = time.perf_counter() - t0
    finally:
        await gateway.stop()
        await upstream.stop()
    print(f"gateway, sequential streams of {events} events: {streams / elapsed:.1f} streams/s, "
          f"{streams * events / elapsed:.0f} events/s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--plugin", type=Path, default=None)
    source.add_argument("--go-build", action="store_true")
    parser.add_argument("--streams", type=int, default=20)
    parser.add_argument("--events", type=int, default=50)
    args = parser.parse_args()
    if args.plugin is None:
        from wasm_host.reference_build import fetch_go_build

        wasm = fetch_go_build()
    else:
        wasm = args.plugin
    print(f"module: {wasm}")
    bench_callbacks(wasm, args.streams, args.events)
    asyncio.run(bench_gateway(wasm, args.streams))


if __name__ == "__main__":
    main()
