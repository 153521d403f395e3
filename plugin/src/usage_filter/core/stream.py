"""Per-stream state machine: the events a gateway delivers in, decisions out.

    state = StreamState(config)
    state.on_request_headers(headers, source_address, now_ns, end_of_stream=False)
    state.on_request_body(chunk, end_of_stream)
    state.on_response_headers(headers, now_ns, end_of_stream=False)
    state.on_response_body(chunk, end_of_stream, now_ns)

`headers` are (name, value) pairs as the host gives them, pseudo-headers (`:path`, `:method`,
`:status`) included. `chunk` is only the bytes that are new since the previous body callback
of that direction (after a paused callback the host's buffer holds more: the binding passes the
new tail only). When a direction ends with trailers, the binding calls the body method with
`b""` and `end_of_stream=True` from the trailers callback. No method raises: on an internal
error the stream turns pass-through and the decision carries `error` and every byte not yet
forwarded. Decisions are explained in `decisions.py`.

Request modes: PASS, or BUFFER (a streaming-candidate completions body being collected to make
the upstream report usage). Response modes: PASS, SSE (framed and inspected event by event),
JSON (collected, then `tokens_per_second` injected), FAILED (pass-through after an error).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from typing import Any

from usage_filter.core.config import Config
from usage_filter.core.decisions import CONTINUE_BODY, CONTINUE_HEADERS, BodyDecision, HeadersDecision
from usage_filter.core.inject import Edit, apply_edits, set_members, value_edits_at
from usage_filter.core.metrics import body_tokens_per_second, stream_stats
from usage_filter.core.sse import SseFramer
from usage_filter.core.usage import SseEvent, carries_output, find_usage, may_have_usage, parse_event, parse_json

__all__ = ["StreamState", "MAX_REQUEST_BODY_BYTES", "client_ip", "request_path"]

MAX_REQUEST_BODY_BYTES = 1024 * 1024  # larger request bodies are forwarded unmodified

_PASS, _BUFFER, _SSE, _JSON, _FAILED = "pass", "buffer", "sse", "json", "failed"
_INCLUDE_USAGE = '{"include_usage":true}'


def request_path(raw_path: str) -> str:
    """`:path` without query and fragment."""
    for sep in ("?", "#"):
        cut = raw_path.find(sep)
        if cut >= 0:
            raw_path = raw_path[:cut]
    return raw_path


def client_ip(source_address: str | None) -> str | None:
    """`1.2.3.4:5` -> `1.2.3.4`, `[2001:db8::1]:5` -> `2001:db8::1`; None if not an IP."""
    if not source_address:
        return None
    text = source_address.strip()
    if text.startswith("["):
        end = text.find("]")
        text = text[1:end] if end > 0 else ""
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def _header_map(headers: Sequence[tuple[str, str]]) -> dict[str, str]:
    found: dict[str, str] = {}
    for name, value in headers:
        found.setdefault(name.lower(), value)
    return found


def _is_completions(path: str) -> bool:
    if path.endswith("/") and len(path) > 1:
        path = path[:-1]
    return path.endswith("/completions")


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


class _OverCap:
    """What `_HeldBody.collect` answers once a body is past its cap."""


_OVER_CAP = _OverCap()


class _HeldBody:
    """A body collected while the host holds it, up to a cap."""

    __slots__ = ("_chunks", "_size")

    def __init__(self) -> None:
        self._chunks: list[bytes] = []
        self._size = 0

    def collect(self, chunk: bytes, end_of_stream: bool, cap_bytes: int) -> bytes | _OverCap | None:
        """None: keep holding. `_OVER_CAP`: past the cap, let it all go as it came. Else the
        whole body. Either answer but None leaves nothing held."""
        if chunk:
            self._chunks.append(chunk)
            self._size += len(chunk)
        if self._size > cap_bytes:
            self.clear()
            return _OVER_CAP
        if not end_of_stream:
            return None
        body = b"".join(self._chunks)
        self.clear()
        return body

    def clear(self) -> None:
        self._chunks = []
        self._size = 0


class StreamState:
    """One HTTP stream through the filter."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.start_ns = 0
        self.tracked = False
        self._request_mode = _PASS
        self._request_body_held = _HeldBody()
        self._request_has_length = False
        self._strip_usage_only_chunk = False  # the client explicitly asked for no usage
        self._drop_split_lf = False  # a removed event ended in CR: its LF may come next
        self._response_mode = _PASS
        self._framer: SseFramer | None = None
        self._json_body_held = _HeldBody()
        self._first_data_ns: int | None = None
        self._first_output_ns: int | None = None
        self._last_output_ns: int | None = None

    # What the host needs to hand over: a binding skips fetching headers and buffers (the
    # costliest host calls) when the answer is False, and just continues.

    @property
    def wants_request_body(self) -> bool:
        return self._request_mode == _BUFFER

    @property
    def wants_response_headers(self) -> bool:
        return self.tracked and self._response_mode != _FAILED

    @property
    def wants_response_body(self) -> bool:
        return self._response_mode == _SSE or self._response_mode == _JSON

    # -- request ---------------------------------------------------------------------------

    def on_request_headers(
        self,
        headers: Sequence[tuple[str, str]],
        source_address: str | None,
        now_ns: int,
        end_of_stream: bool = False,
    ) -> HeadersDecision:
        try:
            return self._request_headers(headers, source_address, now_ns, end_of_stream)
        except Exception as exc:  # noqa: BLE001 - the stream must survive any input
            return HeadersDecision(error=self._fail("request headers", exc))

    def _request_headers(
        self,
        headers: Sequence[tuple[str, str]],
        source_address: str | None,
        now_ns: int,
        end_of_stream: bool,
    ) -> HeadersDecision:
        self.start_ns = now_ns
        found = _header_map(headers)
        set_headers: list[tuple[str, str]] = []
        remove_headers: list[str] = []
        real_ip_header = self.config.real_ip_header
        if real_ip_header is not None:
            ip = client_ip(source_address)
            if ip is None:
                remove_headers.append(real_ip_header)
            else:
                set_headers.append((real_ip_header, ip))
        path = request_path(found.get(":path", ""))
        self.tracked = self.config.tracks(path)
        if not self.tracked:
            return HeadersDecision(tuple(set_headers), tuple(remove_headers))
        if "accept-encoding" in found:
            remove_headers.append("accept-encoding")
        pause = False
        if (
            self.config.ensure_stream_usage
            and not end_of_stream
            and _is_completions(path)
            and found.get(":method", "POST").upper() == "POST"
            and (found.get("content-type") is None or "json" in found["content-type"].lower())
        ):
            self._request_mode = _BUFFER
            self._request_has_length = "content-length" in found
            pause = True
        return HeadersDecision(tuple(set_headers), tuple(remove_headers), pause)

    def on_request_body(self, chunk: bytes, end_of_stream: bool) -> BodyDecision:
        if self._request_mode != _BUFFER:
            return CONTINUE_BODY
        try:
            return self._request_body(chunk, end_of_stream)
        except Exception as exc:  # noqa: BLE001
            return BodyDecision(error=self._fail("request body", exc))

    def _request_body(self, chunk: bytes, end_of_stream: bool) -> BodyDecision:
        body = self._request_body_held.collect(chunk, end_of_stream, MAX_REQUEST_BODY_BYTES)
        if body is None:
            return BodyDecision(pause=True)
        self._request_mode = _PASS
        if isinstance(body, _OverCap):
            return CONTINUE_BODY
        new_body = self._with_include_usage(body)
        if new_body is None:
            return CONTINUE_BODY
        set_headers = (("content-length", str(len(new_body))),) if self._request_has_length else ()
        return BodyDecision(body=new_body, set_headers=set_headers)

    def _with_include_usage(self, body: bytes) -> bytes | None:
        """The body with stream_options.include_usage = true, or None to leave it alone."""
        obj = parse_json(body)
        if not isinstance(obj, dict) or obj.get("stream") is not True:
            return None
        options = obj.get("stream_options")
        if isinstance(options, dict):
            if options.get("include_usage") is True:
                return None
            self._strip_usage_only_chunk = options.get("include_usage") is False
            return set_members(body, ("stream_options",), [("include_usage", "true")])
        return set_members(body, (), [("stream_options", _INCLUDE_USAGE)])

    # -- response --------------------------------------------------------------------------

    def on_response_headers(
        self, headers: Sequence[tuple[str, str]], now_ns: int, end_of_stream: bool = False
    ) -> HeadersDecision:
        if not self.tracked or self._response_mode == _FAILED:
            return CONTINUE_HEADERS
        try:
            return self._response_headers(headers, end_of_stream)
        except Exception as exc:  # noqa: BLE001
            return HeadersDecision(error=self._fail("response headers", exc))

    def _response_headers(self, headers: Sequence[tuple[str, str]], end_of_stream: bool) -> HeadersDecision:
        found = _header_map(headers)
        status = found.get(":status", "")
        encoding = found.get("content-encoding", "identity").strip().lower()
        if end_of_stream or not (status.isdigit() and status.startswith("2") and len(status) == 3):
            return CONTINUE_HEADERS
        if encoding not in ("", "identity"):
            return CONTINUE_HEADERS
        media = _media_type(found.get("content-type"))
        if media == "text/event-stream":
            self._response_mode = _SSE
            self._framer = SseFramer(self.config.max_event_bytes)
            if "content-length" in found:
                return HeadersDecision(remove_headers=("content-length",))
            return CONTINUE_HEADERS
        if media == "application/json" or media.endswith("+json"):
            cap = self.config.max_response_body_bytes
            length = found.get("content-length", "")
            if cap == 0 or (length.isdigit() and int(length) > cap):
                return CONTINUE_HEADERS
            self._response_mode = _JSON
            return HeadersDecision(pause=True)
        return CONTINUE_HEADERS

    def on_response_body(self, chunk: bytes, end_of_stream: bool, now_ns: int) -> BodyDecision:
        mode = self._response_mode
        if mode == _SSE:
            return self._sse_body(chunk, end_of_stream, now_ns)
        if mode == _JSON:
            try:
                return self._json_body(chunk, end_of_stream, now_ns)
            except Exception as exc:  # noqa: BLE001
                return BodyDecision(error=self._fail("response body", exc))
        return CONTINUE_BODY

    def _json_body(self, chunk: bytes, end_of_stream: bool, now_ns: int) -> BodyDecision:
        body = self._json_body_held.collect(chunk, end_of_stream, self.config.max_response_body_bytes)
        if body is None:
            return BodyDecision(pause=True)
        self._response_mode = _PASS
        if isinstance(body, _OverCap):
            return CONTINUE_BODY
        found = find_usage(parse_json(body))
        # No output tokens (embeddings, rerank; vLLM reports `completion_tokens: 0` there): no
        # rate to report, so the body is not touched.
        if found is None or found[0] != ("usage",) or found[1] == 0:
            return CONTINUE_BODY
        tps = body_tokens_per_second(self.start_ns, now_ns, found[1])
        new_body = set_members(body, ("usage",), [("tokens_per_second", tps)])
        return BodyDecision(body=new_body, set_headers=(("content-length", str(len(new_body))),))

    def _sse_body(self, chunk: bytes, end_of_stream: bool, now_ns: int) -> BodyDecision:
        framer = self._framer
        assert framer is not None
        held_before = framer.held
        try:
            pieces = framer.feed(chunk)
        except Exception as exc:  # noqa: BLE001 - framer state is unchanged when it raises
            framer.flush()
            return BodyDecision(body=held_before + chunk, error=self._fail("SSE framing", exc))
        if len(pieces) == 1 and not end_of_stream and pieces[0][0] and pieces[0][1] is chunk:
            # The common case: the callback is exactly one complete event.
            self._drop_split_lf = False
            try:
                raw = self._on_event(chunk, now_ns)
            except Exception as exc:  # noqa: BLE001
                return BodyDecision(error=self._fail("SSE event", exc))
            return CONTINUE_BODY if raw is chunk else BodyDecision(body=raw)
        out: list[bytes] = []
        error: str | None = None
        for is_event, raw in pieces:
            if self._drop_split_lf:
                # The LF of a removed event's final CRLF, split into this callback, goes too.
                self._drop_split_lf = False
                if not is_event and raw == b"\n":
                    continue
            if is_event and error is None:
                try:
                    raw = self._on_event(raw, now_ns)
                except Exception as exc:  # noqa: BLE001 - this event and the rest go out as they came
                    error = self._fail("SSE event", exc)
            out.append(raw)
        if end_of_stream or error is not None:
            out.append(framer.flush())
        body = b"".join(out)
        return BodyDecision(body=None if body == chunk else body, error=error)

    def _on_event(self, raw: bytes, now_ns: int) -> bytes:
        """The event's bytes as they go out: unchanged, with statistics, or b"" (removed)."""
        event = parse_event(raw)
        data = event.data
        if data is None:
            return raw
        if self._first_data_ns is None:
            self._first_data_ns = now_ns
        obj: Any = parse_json(data) if may_have_usage(data) else None
        if carries_output(event, obj):
            if self._first_output_ns is None:
                self._first_output_ns = now_ns
            self._last_output_ns = now_ns
        found = find_usage(obj)
        if found is None:
            return raw
        path, output_tokens = found
        first_ns = self._first_output_ns if self._first_output_ns is not None else self._first_data_ns
        last_ns = self._last_output_ns if self._last_output_ns is not None else now_ns
        if self._strip_usage_only_chunk and obj.get("choices") == []:
            self._drop_split_lf = raw.endswith(b"\r")
            return b""
        stats = stream_stats(self.start_ns, first_ns, last_ns, output_tokens)
        text = data.decode("utf-8")
        edits = value_edits_at(text, path, stats.fields())
        spliced = _splice_event(event, text, edits)
        return raw if spliced is None else spliced

    # -- failure ---------------------------------------------------------------------------

    def _fail(self, where: str, exc: BaseException) -> str:
        self._response_mode = _FAILED
        self._request_mode = _PASS
        self._request_body_held.clear()
        self._json_body_held.clear()
        return f"token-usage: {where}: {type(exc).__name__}: {exc}; stream passes through unmodified"


def _splice_event(event: SseEvent, text: str, edits: list[Edit]) -> bytes | None:
    """Apply edits made on the joined data (decoded as `text`) to the raw event bytes (None: an
    edit would cross a data line boundary, so the event goes out unmodified)."""
    raw = event.raw
    spans = event.data_spans
    if len(spans) == 1:
        start, end = spans[0]
        return raw[:start] + apply_edits(text, edits).encode("utf-8") + raw[end:]
    # Several data lines: each edit must fall within one line of the joined data.
    raw_edits: list[tuple[int, int, bytes]] = []
    offset = 0
    lines: list[tuple[int, int, int]] = []  # (joined start, joined end, raw start), in bytes
    for start, end in spans:
        lines.append((offset, offset + end - start, start))
        offset += end - start + 1
    for start_char, end_char, replacement in edits:
        start = len(text[:start_char].encode("utf-8"))
        end = start + len(text[start_char:end_char].encode("utf-8"))
        for j_start, j_end, r_start in lines:
            if j_start <= start <= j_end:
                if end > j_end:
                    return None
                raw_edits.append((r_start + start - j_start, r_start + end - j_start, replacement.encode("utf-8")))
                break
    return apply_edits(raw, raw_edits)
