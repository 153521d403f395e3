"""HttpStream: drive one HTTP stream through a VM with Envoy's (Higress's) filter semantics.

Per direction (request, response) the host holds what the module has not let through yet:
- Headers: Continue sends them; StopIteration holds them while body callbacks go on (Higress;
  stock Envoy 0.2.x would turn it into StopAll). Edits made to held headers during body
  callbacks apply; they go out just before the first body bytes that are let through, or at end
  of stream. StopAllIteration* holds headers and body without calling the module again until it
  asks to continue (proxy_continue_stream).
- Body: the module sees everything held since the last Continue (body_size = its length).
  Pause (StopIterationAndBuffer/Watermark) keeps it; Continue sends the buffer as the module left
  it. At end of stream anything still held is sent and the stream is marked `stalled` (Envoy
  would wait for the module until the route timeout).
Each call returns a `Step`: what leaves the filter in that direction because of this callback.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from wasm_host.abi import BufferType, DataAction, HeadersAction, MapType, StreamType
from wasm_host.state import (
    ContextState,
    Header,
    HeaderMap,
    LocalResponse,
    PropertyValue,
    encode_property,
    property_key,
)
from wasm_host.vm import Vm


@dataclass(frozen=True)
class Step:
    """What one callback let through. `headers` is set once per direction, when they go out."""

    callback: str
    action: int
    headers: list[Header] | None = None
    body: bytes = b""
    trailers: list[Header] | None = None
    end_of_stream: bool = False
    local_response: LocalResponse | None = None


@dataclass(frozen=True)
class CallbackRecord:
    """One module callback as the host saw it (for tests and debugging)."""

    callback: str
    args: tuple[int, ...]
    action: int
    buffer_in: bytes | None = None
    buffer_out: bytes | None = None


@dataclass
class Direction:
    """Host-side state of one direction of the stream."""

    name: str
    headers_map: MapType
    trailers_map: MapType
    body_buffer: BufferType
    stream_type: StreamType
    headers_seen: bool = False
    headers_sent: list[Header] | None = None
    headers_held: bool = False
    stopped_all: bool = False
    held_body: bytearray = field(default_factory=bytearray)
    sent_body: bytearray = field(default_factory=bytearray)
    sent_trailers: list[Header] | None = None
    ended: bool = False
    stalled: bool = False

    @property
    def released(self) -> bool:
        return self.headers_sent is not None


class StreamClosed(Exception):
    """A callback was driven after the stream ended, or out of order."""


class HttpStream:
    """One HTTP stream (one context) on a VM. Call `close()` when the stream ends, however it ends."""

    def __init__(
        self,
        vm: Vm,
        *,
        source_address: str | None = "127.0.0.1:40000",
        destination_address: str | None = None,
        properties: Mapping[str, PropertyValue] | None = None,
        keep_records: bool = True,
    ) -> None:
        # keep_records=False (the gateway) keeps no per-callback copies of buffers and steps.
        self.vm = vm
        self.keep_records = keep_records
        self.records: list[CallbackRecord] = []
        self.steps: list[Step] = []
        self.request = Direction("request", MapType.REQUEST_HEADERS, MapType.REQUEST_TRAILERS,
                                 BufferType.HTTP_REQUEST_BODY, StreamType.REQUEST)
        self.response = Direction("response", MapType.RESPONSE_HEADERS, MapType.RESPONSE_TRAILERS,
                                  BufferType.HTTP_RESPONSE_BODY, StreamType.RESPONSE)
        self.local_response: LocalResponse | None = None
        self.closed = False
        self.ctx: ContextState = vm.create_context()
        props: dict[str, PropertyValue] = {}
        if source_address is not None:
            props["source.address"] = source_address
            port = source_address.rsplit(":", 1)[-1]
            if port.isdigit():
                props["source.port"] = int(port)
        if destination_address is not None:
            props["destination.address"] = destination_address
        props.update(properties or {})
        self.set_properties(props)

    @property
    def context_id(self) -> int:
        return self.ctx.context_id

    def set_properties(self, properties: Mapping[str, PropertyValue]) -> None:
        for name, value in properties.items():
            self.ctx.properties[property_key(name)] = encode_property(value)

    # --- request ---------------------------------------------------------------------------

    def on_request_headers(self, headers: Iterable[tuple[str, str]], end_of_stream: bool = False) -> Step:
        header_map = HeaderMap(headers)
        self._request_properties(header_map)
        return self._headers(self.request, "proxy_on_request_headers", header_map, end_of_stream)

    def on_request_body(self, chunk: bytes, end_of_stream: bool) -> Step:
        return self._body(self.request, "proxy_on_request_body", chunk, end_of_stream)

    def on_request_trailers(self, trailers: Iterable[tuple[str, str]]) -> Step:
        return self._trailers(self.request, "proxy_on_request_trailers", HeaderMap(trailers))

    # --- response --------------------------------------------------------------------------

    def on_response_headers(self, headers: Iterable[tuple[str, str]], end_of_stream: bool = False) -> Step:
        header_map = HeaderMap(headers)
        status = header_map.get(":status")
        if status is not None and status.isdigit():
            self.set_properties({"response.code": int(status)})
        return self._headers(self.response, "proxy_on_response_headers", header_map, end_of_stream)

    def on_response_body(self, chunk: bytes, end_of_stream: bool) -> Step:
        return self._body(self.response, "proxy_on_response_body", chunk, end_of_stream)

    def on_response_trailers(self, trailers: Iterable[tuple[str, str]]) -> Step:
        return self._trailers(self.response, "proxy_on_response_trailers", HeaderMap(trailers))

    # --- end -------------------------------------------------------------------------------

    def close(self) -> None:
        """proxy_on_done, proxy_on_log, proxy_on_delete (once). Safe after a crash."""
        if self.closed:
            return
        self.closed = True
        self.vm.delete_context(self.ctx)

    def __enter__(self) -> HttpStream:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    # --- the machinery ------------------------------------------------------------------------

    def _request_properties(self, header_map: HeaderMap) -> None:
        # The request.* attributes Envoy derives from the request headers.
        path = header_map.get(":path")
        derived: dict[str, PropertyValue] = {}
        if path is not None:
            derived["request.path"] = path
            derived["request.url_path"] = path.split("?", 1)[0]
            derived["request.query"] = path.split("?", 1)[1] if "?" in path else ""
        for name, header in (("request.method", ":method"), ("request.host", ":authority"),
                             ("request.scheme", ":scheme"), ("request.id", "x-request-id"),
                             ("request.useragent", "user-agent"), ("request.referer", "referer")):
            value = header_map.get(header)
            if value is not None:
                derived[name] = value
        derived["request.protocol"] = "HTTP/1.1"
        derived["request.time"] = self.vm.clock.realtime_ns()
        self.set_properties(derived)

    def _check_open(self, direction: Direction) -> None:
        if self.closed:
            raise StreamClosed("stream already closed")
        if direction.ended:
            raise StreamClosed(f"{direction.name} already ended")

    def _invoke(self, callback: str, *args: int, buffer: bytearray | None = None) -> int:
        before = bytes(buffer) if buffer is not None and self.keep_records else None
        self.ctx.continue_requests.clear()
        action = self.vm.call(callback, self.ctx, self.ctx.context_id, *args)
        if self.keep_records:
            after = bytes(buffer) if buffer is not None else None
            self.records.append(CallbackRecord(callback, args, action, before, after))
        if self.ctx.local_response is not None and self.local_response is None:
            self.local_response = self.ctx.local_response
        return action

    def _headers(self, direction: Direction, callback: str, header_map: HeaderMap, end_of_stream: bool) -> Step:
        self._check_open(direction)
        if direction.headers_seen:
            raise StreamClosed(f"{direction.name} headers already seen")
        direction.headers_seen = True
        self.ctx.maps[direction.headers_map] = header_map
        action = self._invoke(callback, len(header_map), int(end_of_stream))
        if self.local_response is not None:
            return self._emit(Step(callback, action, local_response=self.local_response, end_of_stream=True))
        if action in (HeadersAction.STOP_ALL_ITERATION_AND_BUFFER, HeadersAction.STOP_ALL_ITERATION_AND_WATERMARK):
            direction.stopped_all = True
        continuing = action in (HeadersAction.CONTINUE, HeadersAction.CONTINUE_AND_END_STREAM)
        held = not continuing and not self._resumed(direction)
        direction.headers_held = held
        if held and not end_of_stream:
            return self._emit(Step(callback, action))
        if held:
            direction.stalled = True
        return self._release(direction, callback, action, end_of_stream=end_of_stream)

    def _body(self, direction: Direction, callback: str, chunk: bytes, end_of_stream: bool) -> Step:
        self._check_open(direction)
        if not direction.headers_seen:
            raise StreamClosed(f"{direction.name} body before its headers")
        if self.local_response is not None:
            return self._emit(Step(callback, -1, end_of_stream=True))
        direction.held_body += chunk
        if direction.stopped_all:
            # StopAll: Envoy buffers without calling the module until it continues the stream.
            if end_of_stream:
                direction.stalled = True
                return self._release(direction, callback, -1, end_of_stream=True)
            return self._emit(Step(callback, -1))
        buffer = direction.held_body
        self.ctx.buffers[direction.body_buffer] = buffer
        if end_of_stream:
            # Envoy lets the last body callback add trailers.
            self.ctx.allow_trailers_creation.add(direction.trailers_map)
        try:
            action = self._invoke(callback, len(buffer), int(end_of_stream), buffer=buffer)
        finally:
            self.ctx.buffers.pop(direction.body_buffer, None)
            self.ctx.allow_trailers_creation.discard(direction.trailers_map)
        if self.local_response is not None:
            return self._emit(Step(callback, action, local_response=self.local_response, end_of_stream=True))
        if action == DataAction.CONTINUE or self._resumed(direction):
            return self._release(direction, callback, action, end_of_stream=end_of_stream)
        if action == DataAction.STOP_ITERATION_NO_BUFFER:
            direction.held_body.clear()
        if end_of_stream:
            direction.stalled = True
            return self._release(direction, callback, action, end_of_stream=True)
        return self._emit(Step(callback, action))

    def _trailers(self, direction: Direction, callback: str, trailers: HeaderMap) -> Step:
        self._check_open(direction)
        self.ctx.maps[direction.trailers_map] = trailers
        if direction.stopped_all:
            direction.stalled = True
            return self._release(direction, callback, -1, end_of_stream=True)
        action = self._invoke(callback, len(trailers))
        if self.local_response is not None:
            return self._emit(Step(callback, action, local_response=self.local_response, end_of_stream=True))
        if action != HeadersAction.CONTINUE and not self._resumed(direction):
            direction.stalled = True
        return self._release(direction, callback, action, end_of_stream=True)

    def _resumed(self, direction: Direction) -> bool:
        """The module called proxy_continue_stream for this direction during the callback."""
        if int(direction.stream_type) in self.ctx.continue_requests:
            direction.stopped_all = False
            return True
        return False

    def _release(self, direction: Direction, callback: str, action: int, *, end_of_stream: bool) -> Step:
        headers = None
        if direction.headers_sent is None:
            headers = self.ctx.maps[direction.headers_map].pairs()
            direction.headers_sent = headers
            direction.headers_held = False
        body = bytes(direction.held_body)
        direction.held_body.clear()
        if self.keep_records:
            direction.sent_body += body
        trailers = None
        if end_of_stream:
            direction.ended = True
            trailer_map = self.ctx.maps.get(direction.trailers_map)
            if trailer_map is not None and len(trailer_map):
                trailers = trailer_map.pairs()
                direction.sent_trailers = trailers
        return self._emit(Step(callback, action, headers=headers, body=body, trailers=trailers,
                               end_of_stream=end_of_stream))

    def _emit(self, step: Step) -> Step:
        if self.keep_records:
            self.steps.append(step)
        return step
