"""The local gateway: an aiohttp server that runs every request through one Proxy-Wasm VM and
forwards it to one upstream through a Transport.

Per request: request headers (with `source.address` = the client's ip:port) -> request body
chunks -> upstream -> response headers -> response body chunk by chunk as it arrives -> end of
stream, each through the module, sending exactly what the module lets through, in order.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field

from aiohttp import web
from multidict import CIMultiDict

from usage_gateway.upstream import (
    MockResponse,
    Transport,
    UpstreamError,
    UpstreamRequest,
    UpstreamResponse,
    strip_hop_by_hop,
)
from wasm_host import HttpStream, LocalResponse, Step, Vm, VmCrashed
from wasm_host.state import PropertyValue

_log = logging.getLogger("usage_gateway")

Header = tuple[str, str]
_NO_BODY_STATUSES = frozenset({204, 304})
_TICK_TASK = web.AppKey("tick_task", asyncio.Task)


def json_error(status: int, error_type: str, message: str) -> tuple[list[Header], bytes]:
    body = json.dumps({"error": {"type": error_type, "message": message, "code": status}}).encode()
    return [("content-type", "application/json"), ("content-length", str(len(body)))], body


@dataclass
class GatewayStats:
    requests: int = 0
    active_streams: int = 0
    upstream_errors: int = 0
    client_disconnects: int = 0
    plugin_failures: int = 0


@dataclass
class Gateway:
    vm: Vm
    transport: Transport
    upstream_url: str
    max_request_body_bytes: int = 32 * 1024 * 1024
    # Properties every stream answers besides source.address (e.g. cluster_name, route_name).
    stream_properties: Mapping[str, PropertyValue] = field(default_factory=dict)
    stats: GatewayStats = field(default_factory=GatewayStats)

    def __post_init__(self) -> None:
        self.upstream_url = self.upstream_url.rstrip("/")

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        app.on_startup.append(self._start_ticks)
        app.on_cleanup.append(self._cleanup)
        return app

    # --- lifecycle ---------------------------------------------------------------------------

    async def _start_ticks(self, app: web.Application) -> None:
        app[_TICK_TASK] = asyncio.create_task(self._tick_loop())

    async def _tick_loop(self) -> None:
        while True:
            period_ms = self.vm.tick_period_ms
            await asyncio.sleep(period_ms / 1000 if period_ms > 0 else 1.0)
            if period_ms > 0 and self.vm.failure is None:
                try:
                    self.vm.tick()
                except VmCrashed:
                    _log.error("plugin crashed in proxy_on_tick")

    async def _cleanup(self, app: web.Application) -> None:
        app[_TICK_TASK].cancel()
        await self.transport.aclose()

    # --- one request ---------------------------------------------------------------------------

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.stats.requests += 1
        if self.vm.failure is not None:
            return _plain(503, *json_error(503, "plugin_failed", f"the plugin VM is down: {self.vm.failure}"))
        stream = HttpStream(self.vm, source_address=_peer(request), destination_address=_local(request),
                            properties=self.stream_properties, keep_records=False)
        self.stats.active_streams += 1
        exchange = _Exchange(self, request, stream)
        try:
            return await exchange.run()
        except VmCrashed as exc:
            self.stats.plugin_failures += 1
            _log.error("plugin crashed: %s", exc)
            if exchange.client_response is None:
                return _plain(500, *json_error(500, "plugin_failed", str(exc)))
            raise
        except UpstreamError as exc:
            # The upstream broke off mid-response.
            self.stats.upstream_errors += 1
            _log.warning("upstream %s broke off: %s", self.upstream_url, exc)
            if exchange.client_response is None:
                return _plain(502, *json_error(502, "upstream_broke_off", str(exc)))
            raise ConnectionResetError("upstream broke off after the response started") from exc
        except (ConnectionResetError, asyncio.CancelledError):
            self.stats.client_disconnects += 1
            raise
        finally:
            self.stats.active_streams -= 1
            await exchange.close_upstream()
            try:
                stream.close()
            except VmCrashed as exc:
                _log.error("plugin crashed while closing a stream: %s", exc)


class _Exchange:
    """One client request and its upstream response, driven through one HttpStream."""

    def __init__(self, gateway: Gateway, request: web.Request, stream: HttpStream) -> None:
        self.gateway = gateway
        self.request = request
        self.stream = stream
        self.client_response: web.StreamResponse | None = None
        self.upstream_response: UpstreamResponse | None = None
        self.request_headers: list[Header] | None = None
        self.request_body = bytearray()

    async def run(self) -> web.StreamResponse:
        local = await self._request_phase()
        if local is not None:
            return _plain(local.status_code, local.headers, local.body)
        assert self.request_headers is not None
        pseudo = {k: v for k, v in self.request_headers if k.startswith(":")}
        method = pseudo.get(":method", self.request.method)
        upstream_request = UpstreamRequest(
            method=method,
            url=self.gateway.upstream_url + pseudo.get(":path", self.request.raw_path),
            headers=[(k, v) for k, v in self.request_headers if not k.startswith(":") and k != "host"],
            body=bytes(self.request_body),
        )
        try:
            self.upstream_response = await self.gateway.transport.send(upstream_request)
        except UpstreamError as exc:
            self.gateway.stats.upstream_errors += 1
            _log.warning("upstream %s unreachable: %s", self.gateway.upstream_url, exc)
            headers, body = json_error(502, "upstream_unreachable",
                                       f"upstream {self.gateway.upstream_url} unreachable: {exc}")
            # Like an Envoy local reply, the error still passes through the module's response path.
            self.upstream_response = MockResponse(status=502, headers=headers, body_chunks=[body])
        return await self._response_phase(method)

    async def _request_phase(self) -> LocalResponse | None:
        request = self.request
        headers: list[Header] = [
            (":method", request.method),
            (":path", request.raw_path),
            (":authority", request.host),
            (":scheme", request.scheme),
        ]
        raw = [(k.decode("utf-8", "surrogateescape"), v.decode("utf-8", "surrogateescape"))
               for k, v in request.raw_headers]
        # `expect: 100-continue` was answered here (aiohttp sends the 100 and reads the body), as
        # Envoy does; forwarded, it would make the upstream client wait for a second 100.
        headers += [(k.lower(), v) for k, v in strip_hop_by_hop(raw) if k.lower() not in ("host", "expect")]
        has_body = request.body_exists
        if self._take(self.stream.on_request_headers(headers, end_of_stream=not has_body)):
            return self.stream.local_response
        if not has_body:
            return None
        received = 0
        async for chunk in request.content.iter_any():
            received += len(chunk)
            if received > self.gateway.max_request_body_bytes:
                error_headers, error_body = json_error(
                    413, "request_too_large", f"request body over {self.gateway.max_request_body_bytes} bytes")
                return LocalResponse(413, "request_too_large", error_body, error_headers, 0)
            if self._take(self.stream.on_request_body(chunk, False)):
                return self.stream.local_response
        if self._take(self.stream.on_request_body(b"", True)):
            return self.stream.local_response
        return None

    def _take(self, step: Step) -> bool:
        """Collect what the request step let through; True if the module answered locally."""
        if step.local_response is not None:
            return True
        if step.headers is not None:
            self.request_headers = step.headers
        self.request_body += step.body
        return False

    async def _response_phase(self, method: str) -> web.StreamResponse:
        upstream = self.upstream_response
        assert upstream is not None
        headers = [(":status", str(upstream.status))] + [(k.lower(), v) for k, v in strip_hop_by_hop(upstream.headers)]
        no_body = method == "HEAD" or upstream.status in _NO_BODY_STATUSES or upstream.status < 200
        await self._send(self.stream.on_response_headers(headers, end_of_stream=no_body), head=method == "HEAD")
        if not no_body:
            async for chunk in upstream.chunks():
                if not chunk:
                    continue
                await self._send(self.stream.on_response_body(chunk, False))
                if self.stream.local_response is not None:
                    break
            if not self.stream.response.ended and self.stream.local_response is None:
                await self._send(self.stream.on_response_body(b"", True))
        if self.stream.local_response is not None and self.client_response is None:
            local = self.stream.local_response
            return _plain(local.status_code, local.headers, local.body)
        assert self.client_response is not None
        return self.client_response

    async def _send(self, step: Step, head: bool = False) -> None:
        if step.local_response is not None:
            if self.client_response is not None:
                # Too late for a local reply: Envoy resets the stream.
                raise ConnectionResetError("plugin sent a local reply after the response started")
            return
        if step.headers is not None:
            status = 200
            pairs: list[Header] = []
            for k, v in step.headers:
                if k == ":status":
                    status = int(v) if v.isdigit() else 502
                elif not k.startswith(":"):
                    pairs.append((k, v))
            if step.end_of_stream and not head:
                pairs = _exact_length(pairs, len(step.body))
            response = web.StreamResponse(status=status, headers=CIMultiDict(pairs))
            await response.prepare(self.request)
            self.client_response = response
        if step.body:
            assert self.client_response is not None
            await self.client_response.write(step.body)
        if step.end_of_stream and self.client_response is not None:
            await self.client_response.write_eof()

    async def close_upstream(self) -> None:
        if self.upstream_response is not None:
            await self.upstream_response.aclose()


def _exact_length(pairs: list[Header], body_size: int) -> list[Header]:
    """The whole body is known when headers go out: make a stated Content-Length true."""
    stated = [v for k, v in pairs if k == "content-length"]
    if stated and stated[0] != str(body_size):
        _log.warning("plugin left content-length %s for a %d-byte body; corrected", stated[0], body_size)
        return [(k, str(body_size) if k == "content-length" else v) for k, v in pairs]
    return pairs


def _plain(status: int, headers: list[Header], body: bytes) -> web.Response:
    pairs = CIMultiDict((k, v) for k, v in headers if not k.startswith(":") and k != "content-length")
    return web.Response(status=status, body=body, headers=pairs)


def _format_address(peer: object) -> str | None:
    if isinstance(peer, tuple) and len(peer) >= 2:
        host, port = str(peer[0]), int(peer[1])
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    return None


def _peer(request: web.Request) -> str | None:
    transport = request.transport
    return _format_address(transport.get_extra_info("peername")) if transport is not None else None


def _local(request: web.Request) -> str | None:
    transport = request.transport
    return _format_address(transport.get_extra_info("sockname")) if transport is not None else None


@dataclass
class RunningGateway:
    gateway: Gateway
    runner: web.AppRunner
    url: str

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_gateway(gateway: Gateway, host: str = "127.0.0.1", port: int = 0) -> RunningGateway:
    """Serve `gateway` on host:port (0 = a free port); returns its base URL."""
    # handler_cancellation: a client that goes away cancels its handler, so its context is
    # deleted even while the upstream is silent.
    runner = web.AppRunner(gateway.make_app(), access_log=None, handle_signals=False, handler_cancellation=True,
                           shutdown_timeout=5.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_host, bound_port = runner.addresses[0][:2]
    shown = f"[{bound_host}]" if ":" in bound_host else bound_host
    return RunningGateway(gateway, runner, f"http://{shown}:{bound_port}")
