"""Cost of the filter core on CPython: per 1 KiB content chunk, per usage chunk, per 200-event stream.

    .venv/bin/python bench/core_bench.py [--repeat N]

Prints microseconds (median over repeats) so later changes can be compared. Not a test.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from usage_filter.core.config import Config
from usage_filter.core.stream import StreamState

CONTENT_1K = b"data: " + json.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1733000000,
        "model": "qwen",
        "choices": [{"index": 0, "delta": {"content": "x" * 850}, "finish_reason": None}],
    }
).encode() + b"\n\n"
USAGE = b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","choices":[],"usage":{"prompt_tokens":12,"completion_tokens":200,"total_tokens":212}}\n\n'
SMALL = b'data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1733000000,"model":"qwen","choices":[{"index":0,"delta":{"content":" token"},"finish_reason":null}]}\n\n'


def new_stream() -> StreamState:
    s = StreamState(Config())
    s.on_request_headers([(":path", "/v1/chat/completions"), (":method", "GET")], "10.0.0.1:1", 0, True)
    s.on_response_headers([(":status", "200"), ("content-type", "text/event-stream")], 1)
    return s


def per_call_us(chunk: bytes, calls: int) -> float:
    s = new_stream()
    t0 = time.perf_counter_ns()
    for i in range(calls):
        s.on_response_body(chunk, False, i)
    return (time.perf_counter_ns() - t0) / calls / 1000


def stream_us() -> float:
    t0 = time.perf_counter_ns()
    s = new_stream()
    for i in range(199):
        s.on_response_body(SMALL, False, i)
    s.on_response_body(USAGE + b"data: [DONE]\n\n", True, 200)
    return (time.perf_counter_ns() - t0) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    assert len(CONTENT_1K) >= 1000
    rows = {
        f"content chunk ({len(CONTENT_1K)} B)": [per_call_us(CONTENT_1K, 2000) for _ in range(args.repeat)],
        f"usage chunk ({len(USAGE)} B)": [per_call_us(USAGE, 2000) for _ in range(args.repeat)],
        "200-event stream (whole)": [stream_us() for _ in range(args.repeat)],
    }
    print("filter core on CPython (median of %d runs)" % args.repeat)
    for name, samples in rows.items():
        print(f"  {name:32s} {statistics.median(samples):9.2f} us   (min {min(samples):.2f})")


if __name__ == "__main__":
    main()
