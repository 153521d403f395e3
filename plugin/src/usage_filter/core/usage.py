"""What an SSE event or JSON body says: its data, whether it carries output, where its usage is.

Cheap byte scans decide the common cases (a content delta, a keep-alive, `"usage":null`);
JSON is parsed only where a scan cannot decide: events that may carry usage, and events whose
output markers are ambiguous (a `content` list, for instance).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any


__all__ = [
    "SseEvent",
    "parse_event",
    "parse_json",
    "may_have_usage",
    "carries_output",
    "find_usage",
    "MAX_JSON_DEPTH",
]

MAX_JSON_DEPTH = 64  # Nuitka-compiled code ignores the recursion limit: bound nesting ourselves

_LINE_END = re.compile(rb"\r\n|\r|\n")
_STRUCTURAL = re.compile(rb'["\[\]{}]')
_OUTPUT_KEY = re.compile(
    rb'"(content|reasoning_content|reasoning|tool_calls|function_call|text)"[ \t\r\n]*:[ \t\r\n]*(.)',
    re.DOTALL,
)
_RESPONSES_TYPE = re.compile(rb'"type"[ \t\r\n]*:[ \t\r\n]*"response\.')
_OUTPUT_KEYS = ("content", "reasoning_content", "reasoning", "tool_calls", "function_call")
_TOKEN_KEYS = ("completion_tokens", "output_tokens")
_BYTES_WS = re.compile(rb"[ \t\r\n]*")
# "unrolled" string pattern: runs of plain bytes, each escape a two-byte step (no backtracking)
_BYTES_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def skip_ws(data: bytes, i: int) -> int:
    m = _BYTES_WS.match(data, i)
    return m.end() if m else i


@dataclass(slots=True)
class SseEvent:
    raw: bytes
    data: bytes | None  # the data lines joined with LF; None when the event has no data field
    name: bytes | None  # the `event:` field
    data_spans: list[tuple[int, int]]  # raw offsets of each data line's value


def parse_event(raw: bytes) -> SseEvent:
    """Fields of one complete event (as the framer cut it: it ends with a blank line)."""
    if raw.startswith(b"data:"):
        # Fast path: one data line, then the blank line.
        lf = raw.find(b"\n")
        cr = raw.find(b"\r", 0, lf if lf >= 0 else len(raw))
        end = cr if cr >= 0 else lf
        if end >= 0 and raw[end:] in (b"\n\n", b"\r\n\r\n", b"\r\r"):
            start = 6 if raw[5:6] == b" " else 5
            return SseEvent(raw, raw[start:end], None, [(start, end)])
    data_lines: list[bytes] = []
    spans: list[tuple[int, int]] = []
    name: bytes | None = None
    pos = 0
    for m in _LINE_END.finditer(raw):
        line_start, line_end = pos, m.start()
        pos = m.end()
        if line_end == line_start or raw[line_start] == 0x3A:  # blank line or `:` comment
            continue
        colon = raw.find(b":", line_start, line_end)
        if colon < 0:
            field, value_start = raw[line_start:line_end], line_end
        else:
            field = raw[line_start:colon]
            value_start = colon + 1
            if value_start < line_end and raw[value_start] == 0x20:
                value_start += 1
        if field == b"data":
            data_lines.append(raw[value_start:line_end])
            spans.append((value_start, line_end))
        elif field == b"event":
            name = raw[value_start:line_end]
    data = b"\n".join(data_lines) if data_lines else None
    return SseEvent(raw, data, name, spans)


def _too_deep(data: bytes) -> bool:
    if data.count(b"{") + data.count(b"[") <= MAX_JSON_DEPTH:
        return False
    depth = 0
    i = 0
    while (m := _STRUCTURAL.search(data, i)) is not None:
        ch = data[m.start()]
        if ch == 0x22:
            end = _BYTES_STRING.match(data, m.start())
            if end is None:  # unterminated string: json.loads refuses it anyway
                return False
            i = end.end()
            continue
        depth += 1 if ch in b"{[" else -1
        if depth > MAX_JSON_DEPTH:
            return True
        i = m.end()
    return False


def parse_json(data: bytes) -> Any:
    """The decoded JSON, or None when it is not strict UTF-8 JSON of bounded depth."""
    if _too_deep(data):
        return None
    try:
        return json.loads(data.decode("utf-8"))
    except (ValueError, RecursionError):
        return None


def may_have_usage(data: bytes) -> bool:
    """False when every `"usage"` key (if any) is null: SGLang sends that on every chunk."""
    i = data.find(b'"usage"')
    while i >= 0:
        j = skip_ws(data, i + 7)
        if j < len(data) and data[j] == 0x3A:
            if not data.startswith(b"null", skip_ws(data, j + 1)):
                return True
        i = data.find(b'"usage"', i + 7)
    return False


def _non_empty(value: Any) -> bool:
    return isinstance(value, (str, list, dict)) and len(value) > 0


def _obj_carries_output(obj: Any) -> bool:
    if not isinstance(obj, dict):
        return False
    kind = obj.get("type")
    if isinstance(kind, str) and kind.startswith("response."):
        return kind.endswith(".delta")
    choices = obj.get("choices")
    if not isinstance(choices, list):
        return False
    for choice in choices:
        if not isinstance(choice, dict):
            continue
        delta = choice.get("delta")
        if isinstance(delta, dict) and any(_non_empty(delta.get(k)) for k in _OUTPUT_KEYS):
            return True
        if _non_empty(choice.get("text")):
            return True
    return False


def _scan_output(data: bytes) -> bool | None:
    """Byte scan: True/False when the markers decide, None when only a parse can."""
    if b'"response.' in data and _RESPONSES_TYPE.search(data):
        return None
    for m in _OUTPUT_KEY.finditer(data):
        first = m.group(2)
        after = m.end()
        if first == b'"':
            if data[after : after + 1] != b'"':
                return True
        elif first == b"n":
            continue
        elif first in (b"[", b"{"):
            j = skip_ws(data, after)
            if data[j : j + 1] in (b"]", b"}"):
                continue
            if m.group(1) in (b"tool_calls", b"function_call"):
                return True
            return None
        else:
            return None
    return False


def carries_output(event: SseEvent, obj: Any = None) -> bool:
    """Does this data event carry generated output (the first/last-token rule of the contract)?"""
    if event.name is not None:
        if event.name.endswith(b".delta"):
            return True
        if event.name.startswith(b"response."):
            return False
    if obj is not None:
        return _obj_carries_output(obj)
    data = event.data
    if data is None:
        return False
    verdict = _scan_output(data)
    if verdict is None:
        return _obj_carries_output(parse_json(data))
    return verdict


def _tokens(usage: Any) -> int | None:
    if not isinstance(usage, dict):
        return None
    for key in _TOKEN_KEYS:
        value = usage.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return None


def find_usage(obj: Any) -> tuple[tuple[str, ...], int] | None:
    """The path of the usage object and its output-token count, or None if there is none."""
    if not isinstance(obj, dict):
        return None
    n = _tokens(obj.get("usage"))
    if n is not None:
        return ("usage",), n
    response = obj.get("response")
    if isinstance(response, dict):
        n = _tokens(response.get("usage"))
        if n is not None:
            return ("response", "usage"), n
    return None
