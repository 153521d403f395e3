"""One HTTP exchange through the filter, as a client and an upstream would see it.

`Exchange` is what the behaviour tests assert on; a driver produces it. `run_core` drives the
pure-Python core the way Envoy drives the module (header holds, body buffering on pause, body
replacement, header edits while held). The Wasm suite runs the same cases through the real
.wasm in the embedded host with a driver that returns the same `Exchange`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from usage_filter.core.config import parse_config
from usage_filter.core.decisions import BodyDecision, HeadersDecision
from usage_filter.core.stream import StreamState

Headers = list[tuple[str, str]]
MS = 1_000_000


@dataclass
class Request:
    path: str = "/v1/chat/completions"
    method: str = "POST"
    headers: Headers = field(default_factory=lambda: [("content-type", "application/json")])
    body: Sequence[bytes] = (b'{"model":"m","stream":true}',)
    source_address: str | None = "10.1.2.3:40000"
    start_ns: int = 0

    def all_headers(self) -> Headers:
        hs = [(":method", self.method), (":path", self.path), (":authority", "gw")]
        hs += self.headers
        if self.body and not any(k == "content-length" for k, _ in self.headers):
            hs.append(("content-length", str(sum(len(b) for b in self.body))))
        return hs


@dataclass
class Response:
    chunks: Sequence[bytes]
    headers: Headers = field(default_factory=lambda: [("content-type", "text/event-stream")])
    status: int = 200
    # arrival time of each body callback; default: 100 ms + 20 ms per callback
    times_ns: Sequence[int] | None = None
    headers_ns: int = 50 * MS

    def all_headers(self) -> Headers:
        return [(":status", str(self.status))] + self.headers

    def time_of(self, i: int) -> int:
        return self.times_ns[i] if self.times_ns is not None else (100 + 20 * i) * MS


@dataclass
class Exchange:
    upstream_headers: Headers
    upstream_body: bytes
    client_headers: Headers
    forwarded: list[bytes]  # bytes released to the client at each response body callback
    errors: list[str]

    @property
    def client_body(self) -> bytes:
        return b"".join(self.forwarded)

    def header(self, side: Headers, name: str) -> list[str]:
        return [v for k, v in side if k == name]

    def upstream_header(self, name: str) -> list[str]:
        return self.header(self.upstream_headers, name)

    def client_header(self, name: str) -> list[str]:
        return self.header(self.client_headers, name)


Driver = Callable[[bytes | str | dict[str, object] | None, Request, Response], Exchange]


def _edit(headers: Headers, sets: Sequence[tuple[str, str]], removes: Sequence[str]) -> Headers:
    names = {n for n, _ in sets} | set(removes)
    kept = [(k, v) for k, v in headers if k.lower() not in names]
    return kept + list(sets)


def run_core(config: bytes | str | dict[str, object] | None, request: Request, response: Response) -> Exchange:
    """Drive StreamState with Envoy's semantics for the decisions it returns."""
    state = StreamState(parse_config(config).config)
    errors: list[str] = []

    def note(d: HeadersDecision | BodyDecision) -> None:
        if d.error:
            errors.append(d.error)

    req_headers = request.all_headers()
    d = state.on_request_headers(req_headers, request.source_address, request.start_ns, not request.body)
    note(d)
    req_headers = _edit(req_headers, d.set_headers, d.remove_headers)
    upstream = b""
    pending = b""
    for i, chunk in enumerate(request.body):
        eos = i == len(request.body) - 1
        b = state.on_request_body(chunk, eos)
        note(b)
        pending += chunk
        if b.pause and not eos:
            continue
        upstream += pending if b.body is None else b.body
        pending = b""
        req_headers = _edit(req_headers, b.set_headers, b.remove_headers)

    resp_headers = response.all_headers()
    h = state.on_response_headers(resp_headers, response.headers_ns, not response.chunks)
    note(h)
    resp_headers = _edit(resp_headers, h.set_headers, h.remove_headers)
    forwarded: list[bytes] = []
    pending = b""
    for i, chunk in enumerate(response.chunks):
        eos = i == len(response.chunks) - 1
        b = state.on_response_body(chunk, eos, response.time_of(i))
        note(b)
        pending += chunk
        if b.pause and not eos:
            forwarded.append(b"")
            continue
        forwarded.append(pending if b.body is None else b.body)
        pending = b""
        resp_headers = _edit(resp_headers, b.set_headers, b.remove_headers)
    return Exchange(req_headers, upstream, resp_headers, forwarded, errors)
