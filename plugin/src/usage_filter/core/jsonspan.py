"""Byte offsets inside JSON text that `json.loads` has already accepted.

Only what byte-preserving edits need: where a value ends, where an object's members are. The
input is assumed valid (callers parse it first), so nothing here re-validates.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

__all__ = ["Member", "skip_ws", "string_end", "value_end", "object_members", "member_value_span"]

_STRUCTURAL = re.compile(rb'["\[\]{}]')
_LITERAL_END = re.compile(rb"[,}\]\s]")
_WS = b" \t\r\n"


@dataclass(frozen=True, slots=True)
class Member:
    key: str
    key_start: int
    value_start: int
    value_end: int


def skip_ws(buf: bytes, i: int) -> int:
    n = len(buf)
    while i < n and buf[i] in _WS:
        i += 1
    return i


def string_end(buf: bytes, i: int) -> int:
    """`i` at an opening quote; the offset just past the closing quote."""
    j = i + 1
    while True:
        q = buf.index(b'"', j)
        k = q - 1
        while buf[k] == 0x5C:  # backslash
            k -= 1
        if (q - 1 - k) % 2 == 0:
            return q + 1
        j = q + 1


def value_end(buf: bytes, i: int) -> int:
    """`i` at the first byte of a value; the offset just past it."""
    c = buf[i]
    if c == 0x22:  # "
        return string_end(buf, i)
    if c == 0x7B or c == 0x5B:  # { [
        depth = 0
        j = i
        while True:
            m = _STRUCTURAL.search(buf, j)
            if m is None:
                raise ValueError("unterminated JSON container")
            ch = buf[m.start()]
            if ch == 0x22:
                j = string_end(buf, m.start())
                continue
            depth += 1 if ch in b"{[" else -1
            j = m.end()
            if depth == 0:
                return j
    m = _LITERAL_END.search(buf, i)
    return m.start() if m else len(buf)


def object_members(buf: bytes, i: int) -> tuple[list[Member], int]:
    """`i` at `{`: its members in order and the offset of its closing `}`."""
    members: list[Member] = []
    j = skip_ws(buf, i + 1)
    if buf[j] == 0x7D:
        return members, j
    while True:
        key_end = string_end(buf, j)
        key = json.loads(buf[j:key_end])
        vs = skip_ws(buf, skip_ws(buf, key_end) + 1)  # past the colon
        ve = value_end(buf, vs)
        members.append(Member(key, j, vs, ve))
        j = skip_ws(buf, ve)
        if buf[j] == 0x7D:
            return members, j
        j = skip_ws(buf, j + 1)  # past the comma


def member_value_span(buf: bytes, obj_start: int, path: tuple[str, ...]) -> tuple[int, int] | None:
    """Span of the value at `path` of nested objects. The last duplicate key wins, as in json.loads."""
    start = obj_start
    end = -1
    for key in path:
        if buf[start] != 0x7B:
            return None
        members, _ = object_members(buf, start)
        found = [m for m in members if m.key == key]
        if not found:
            return None
        start, end = found[-1].value_start, found[-1].value_end
    return start, end
