"""Offsets inside JSON text that `json.loads` has already accepted.

Only what byte-preserving edits need: an object's members with the offsets of their keys and
values. Works on the decoded text (str): UTF-8 decoding and re-encoding of valid input is
lossless, so an edit made here changes exactly the bytes it covers. Values are skipped with
the json module's own C scanner, so walking costs a few calls per member, not a loop per byte.
The input is assumed valid (callers parse it first), so nothing here re-validates.
"""

from __future__ import annotations

import json
import json.decoder
import re
from collections.abc import Callable
from typing import Any, NamedTuple

__all__ = ["Member", "object_members", "member_value_span", "top_level_start"]

# The json module's scanners (C-accelerated; not in typeshed, hence getattr):
# scan_once(text, index) -> (value, end); scanstring(text, index after the quote) -> (str, end)
_SCAN_VALUE: Callable[[str, int], tuple[Any, int]] = getattr(json.JSONDecoder(), "scan_once")
_SCAN_STRING: Callable[[str, int], tuple[str, int]] = getattr(json.decoder, "scanstring")
_OPEN = re.compile(r"\{[ \t\r\n]*(\})?")
_COLON = re.compile(r"[ \t\r\n]*:[ \t\r\n]*")
_SEPARATOR = re.compile(r"[ \t\r\n]*([,}])[ \t\r\n]*")
_WS = re.compile(r"[ \t\r\n]*")


class Member(NamedTuple):
    key: str
    key_start: int
    key_end: int
    value_start: int
    value_end: int


def top_level_start(text: str) -> int:
    m = _WS.match(text)
    return m.end() if m else 0


def object_members(text: str, i: int) -> tuple[list[Member], int]:
    """`i` at `{`: its members in order and the offset of its closing `}`."""
    members: list[Member] = []
    m = _OPEN.match(text, i)
    if m is None:
        raise ValueError("expected a JSON object")
    if m.group(1):
        return members, m.end() - 1
    j = m.end()
    while True:
        key, key_end = _SCAN_STRING(text, j + 1)
        colon = _COLON.match(text, key_end)
        assert colon is not None
        vs = colon.end()
        try:
            _, ve = _SCAN_VALUE(text, vs)
        except StopIteration:
            raise ValueError("expected a JSON value") from None
        members.append(Member(key, j, key_end, vs, ve))
        sep = _SEPARATOR.match(text, ve)
        if sep is None:
            raise ValueError("expected , or } after a JSON value")
        if sep.group(1) == "}":
            return members, sep.end() - 1
        j = sep.end()


def member_value_span(text: str, obj_start: int, path: tuple[str, ...]) -> tuple[int, int] | None:
    """Span of the value at `path` of nested objects. The last duplicate key wins, as in json.loads."""
    start = obj_start
    end = -1
    for key in path:
        if text[start : start + 1] != "{":
            return None
        members, _ = object_members(text, start)
        found = [m for m in members if m.key == key]
        if not found:
            return None
        start, end = found[-1].value_start, found[-1].value_end
    return start, end
