"""The gateway's upstream boundary: one small `Transport` protocol (httpx's idea), a real
aiohttp implementation, and a mock for tests. The gateway never touches a client socket
to the upstream except through a Transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from multidict import CIMultiDict
from yarl import URL

Header = tuple[str, str]

# Headers that describe one connection, not the message (RFC 9110 7.6.1); a proxy drops them,
# and any header a Connection header names.
HOP_BY_HOP = frozenset(
    {"connection", "keep-alive", "proxy-connection", "proxy-authenticate", "proxy-authorization",
     "te", "trailer", "trailers", "transfer-encoding", "upgrade"}
)


def strip_hop_by_hop(headers: Iterable[Header]) -> list[Header]:
    pairs = list(headers)
    named = {
        token.strip().lower()
        for name, value in pairs
        if name.lower() == "connection"
        for token in value.split(",")
        if token.strip()
    }
    return [(k, v) for k, v in pairs if k.lower() not in HOP_BY_HOP and k.lower() not in named]


class UpstreamError(Exception):
    """The upstream could not be reached or broke off before answering."""


@dataclass(frozen=True)
class UpstreamRequest:
    method: str
    url: str  # absolute, already percent-encoded
    headers: list[Header]
    body: bytes


class UpstreamResponse(Protocol):
    status: int
    reason: str
    headers: list[Header]

    def chunks(self) -> AsyncIterator[bytes]:
        """Body bytes as they arrive."""
        ...

    async def aclose(self) -> None: ...


class Transport(Protocol):
    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        """Send the request; raise UpstreamError if no response can be had."""
        ...

    async def aclose(self) -> None: ...


# --- aiohttp -------------------------------------------------------------------------------


class _AiohttpResponse:
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.reason = response.reason or ""
        self.headers = [
            (k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
            for k, v in response.raw_headers
        ]

    async def chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
            raise UpstreamError(f"upstream broke off the response: {exc}") from exc

    async def aclose(self) -> None:
        self._response.close()


class AiohttpTransport:
    """HTTP/1.1 to the upstream, bytes untouched: no automatic decompression, no added
    Accept-Encoding or User-Agent, no redirects followed."""

    _SKIP_AUTO_HEADERS = ("Accept-Encoding", "User-Agent", "Content-Type", "Accept")

    def __init__(self, *, connect_timeout_s: float = 10.0, read_timeout_s: float = 600.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=None, connect=connect_timeout_s, sock_read=read_timeout_s)
        self._session: aiohttp.ClientSession | None = None

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(auto_decompress=False, timeout=self._timeout)
        return self._session

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        # Content-Length is recomputed from the exact body the module let through.
        headers = [(k, v) for k, v in request.headers if k.lower() != "content-length"]
        try:
            response = await self._client().request(
                request.method,
                URL(request.url, encoded=True),
                headers=_multidict(headers),
                data=request.body if request.body or request.method not in ("GET", "HEAD") else None,
                allow_redirects=False,
                skip_auto_headers=self._SKIP_AUTO_HEADERS,
            )
        except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
            raise UpstreamError(str(exc) or type(exc).__name__) from exc
        return _AiohttpResponse(response)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _multidict(headers: list[Header]) -> CIMultiDict[str]:
    return CIMultiDict(headers)


# --- mock ----------------------------------------------------------------------------------


@dataclass
class MockResponse:
    status: int = 200
    headers: list[Header] = field(default_factory=list)
    body_chunks: list[bytes] = field(default_factory=list)
    reason: str = ""
    delay_between_chunks_s: float = 0.0

    async def chunks(self) -> AsyncIterator[bytes]:
        for chunk in self.body_chunks:
            if self.delay_between_chunks_s:
                await asyncio.sleep(self.delay_between_chunks_s)
            yield chunk

    async def aclose(self) -> None:
        return None


MockHandlerFn = Callable[[UpstreamRequest], Awaitable[MockResponse] | MockResponse]


class MockTransport:
    """Answers from a function; records every request it was sent."""

    def __init__(self, handler: MockHandlerFn) -> None:
        self._handler = handler
        self.requests: list[UpstreamRequest] = []

    async def send(self, request: UpstreamRequest) -> UpstreamResponse:
        self.requests.append(request)
        result = self._handler(request)
        if asyncio.iscoroutine(result):
            result = await result
        assert isinstance(result, MockResponse)
        return result

    async def aclose(self) -> None:
        return None
