"""Proxy-Wasm contexts: ABI callbacks in, core decisions applied through the host calls.

`RootContext` is the plugin (one per configured filter in a VM): it holds the parsed `Config`.
`HttpContext` is one HTTP stream: it holds one `core.stream.StreamState`, feeds it each ABI
event and applies its decisions (decisions.py says what each one means). All state of a stream
lives here and is dropped in `close()` (on_done / on_delete).

Body buffering: after a body callback returns StopIterationAndBuffer the host keeps buffering,
so the next callback's buffer holds everything since the last Continue. The core wants only
the new bytes, so each direction remembers how many of the buffered bytes it has already seen.
"""

from __future__ import annotations

from usage_filter.binding import hostcalls
from usage_filter.binding.abi import BufferType, DataAction, HeadersAction, LogLevel, MapType
from usage_filter.core.config import Config, ConfigError, parse_config
from usage_filter.core.decisions import BodyDecision, HeadersDecision
from usage_filter.core.stream import StreamState

__all__ = ["RootContext", "HttpContext"]

_SOURCE_ADDRESS = ("source", "address")


class RootContext:
    """The plugin's configuration, shared by the streams created under it."""

    def __init__(self, context_id: int) -> None:
        self.context_id = context_id
        self.config: Config | None = None  # None until a configuration was accepted

    def on_vm_start(self, vm_configuration_size: int) -> bool:
        return True

    def on_configure(self, plugin_configuration_size: int) -> bool:
        raw = b""
        if plugin_configuration_size > 0:
            raw = hostcalls.get_buffer_bytes(
                BufferType.PLUGIN_CONFIGURATION, 0, plugin_configuration_size
            )
        try:
            parsed = parse_config(raw)
        except ConfigError as exc:
            hostcalls.log(LogLevel.ERROR, str(exc))
            return False
        for warning in parsed.warnings:
            hostcalls.log(LogLevel.WARN, warning)
        self.config = parsed.config
        return True

    def new_http_context(self, context_id: int) -> HttpContext:
        return HttpContext(context_id, self.config)


class _Direction:
    """What one direction (request or response) of a stream needs between callbacks."""

    __slots__ = ("buffer_type", "headers_map", "seen_bytes")

    def __init__(self, buffer_type: BufferType, headers_map: MapType) -> None:
        self.buffer_type = buffer_type
        self.headers_map = headers_map
        self.seen_bytes = 0  # bytes of the host's current body buffer already given to the core

    def new_bytes(self, body_size: int) -> bytes:
        if body_size < self.seen_bytes:  # the host's buffer restarted: take it all
            self.seen_bytes = 0
        if body_size == self.seen_bytes:
            return b""
        return hostcalls.get_buffer_bytes(
            self.buffer_type, self.seen_bytes, body_size - self.seen_bytes
        )


class HttpContext:
    """One HTTP stream. Without a configuration (configure failed) it passes everything."""

    def __init__(self, context_id: int, config: Config | None) -> None:
        self.context_id = context_id
        self._state: StreamState | None = StreamState(config) if config is not None else None
        self._request = _Direction(BufferType.HTTP_REQUEST_BODY, MapType.REQUEST_HEADERS)
        self._response = _Direction(BufferType.HTTP_RESPONSE_BODY, MapType.RESPONSE_HEADERS)

    def close(self) -> None:
        """Drop the stream's state (buffers held by the core go with it)."""
        self._state = None

    # -- request -------------------------------------------------------------------------

    def on_request_headers(self, num_headers: int, end_of_stream: bool) -> int:
        state = self._state
        if state is None:
            return HeadersAction.CONTINUE
        headers = hostcalls.get_header_map_pairs(MapType.REQUEST_HEADERS)
        source = hostcalls.get_property(_SOURCE_ADDRESS)
        source_address = source.decode("utf-8", "replace") if source is not None else None
        now_ns = hostcalls.get_current_time_nanoseconds()
        decision = state.on_request_headers(headers, source_address, now_ns, end_of_stream)
        return _apply_headers(MapType.REQUEST_HEADERS, decision)

    def on_request_body(self, body_size: int, end_of_stream: bool) -> int:
        state = self._state
        if state is None or not state.wants_request_body:
            return DataAction.CONTINUE
        chunk = self._request.new_bytes(body_size)
        decision = state.on_request_body(chunk, end_of_stream)
        return _apply_body(self._request, decision, body_size)

    def on_request_trailers(self, num_trailers: int) -> int:
        # The body ends with the trailers: tell the core, then let the trailers through.
        state = self._state
        if state is not None and state.wants_request_body:
            decision = state.on_request_body(b"", True)
            _apply_body(self._request, decision, self._request.seen_bytes)
        return HeadersAction.CONTINUE

    # -- response ------------------------------------------------------------------------

    def on_response_headers(self, num_headers: int, end_of_stream: bool) -> int:
        state = self._state
        if state is None or not state.wants_response_headers:
            return HeadersAction.CONTINUE
        headers = hostcalls.get_header_map_pairs(MapType.RESPONSE_HEADERS)
        now_ns = hostcalls.get_current_time_nanoseconds()
        decision = state.on_response_headers(headers, now_ns, end_of_stream)
        return _apply_headers(MapType.RESPONSE_HEADERS, decision)

    def on_response_body(self, body_size: int, end_of_stream: bool) -> int:
        state = self._state
        if state is None or not state.wants_response_body:
            return DataAction.CONTINUE
        chunk = self._response.new_bytes(body_size)
        now_ns = hostcalls.get_current_time_nanoseconds()
        decision = state.on_response_body(chunk, end_of_stream, now_ns)
        return _apply_body(self._response, decision, body_size)

    def on_response_trailers(self, num_trailers: int) -> int:
        state = self._state
        if state is not None and state.wants_response_body:
            now_ns = hostcalls.get_current_time_nanoseconds()
            decision = state.on_response_body(b"", True, now_ns)
            _apply_body(self._response, decision, self._response.seen_bytes)
        return HeadersAction.CONTINUE


def _apply_header_edits(
    map_type: MapType, set_headers: tuple[tuple[str, str], ...], remove_headers: tuple[str, ...]
) -> None:
    for name in remove_headers:
        hostcalls.remove_header_map_value(map_type, name)
    for name, value in set_headers:
        hostcalls.replace_header_map_value(map_type, name, value)


def _apply_headers(map_type: MapType, decision: HeadersDecision) -> int:
    if decision.error is not None:
        hostcalls.log(LogLevel.ERROR, decision.error)
    if decision.set_headers or decision.remove_headers:
        _apply_header_edits(map_type, decision.set_headers, decision.remove_headers)
    return HeadersAction.STOP_ITERATION if decision.pause else HeadersAction.CONTINUE


def _apply_body(direction: _Direction, decision: BodyDecision, body_size: int) -> int:
    if decision.error is not None:
        hostcalls.log(LogLevel.ERROR, decision.error)
    if decision.pause:
        direction.seen_bytes = body_size
        return DataAction.STOP_ITERATION_AND_BUFFER
    if decision.body is not None:
        hostcalls.set_buffer_bytes(direction.buffer_type, 0, body_size, decision.body)
    if decision.set_headers or decision.remove_headers:
        _apply_header_edits(direction.headers_map, decision.set_headers, decision.remove_headers)
    direction.seen_bytes = 0
    return DataAction.CONTINUE
