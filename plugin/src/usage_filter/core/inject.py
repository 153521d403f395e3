"""Byte-preserving edits of JSON objects: set members without re-serialising anything else.

An edit is (start, end, replacement) on the decoded JSON text. Setting a key that exists
replaces the value of its first occurrence and removes later duplicates; a new key goes after
the object's existing members, in the object's own separator style (`": "` vs `":"`, `", "` vs
`","`). `set_members` applies edits to UTF-8 JSON bytes: decoding and re-encoding valid UTF-8 is
lossless, so only the edited bytes change.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import AnyStr

from usage_filter.core.jsonspan import member_value_span, object_members, top_level_start

__all__ = ["Edit", "object_member_edits", "apply_edits", "value_edits_at", "set_members"]

Edit = tuple[int, int, str]


def object_member_edits(text: str, obj_start: int, updates: Sequence[tuple[str, str]]) -> list[Edit]:
    """Edits that make the object at `obj_start` hold each (key, JSON value) of `updates`."""
    members, close = object_members(text, obj_start)
    edits: list[Edit] = []
    missing: list[tuple[str, str]] = []
    for key, value in updates:
        seen = False
        for idx, m in enumerate(members):
            if m.key != key:
                continue
            if not seen:
                edits.append((m.value_start, m.value_end, value))
                seen = True
            else:  # a later duplicate: remove ", key: value" (idx >= 1 here)
                edits.append((members[idx - 1].value_end, m.value_end, ""))
        if not seen:
            missing.append((key, value))
    if missing:
        colon = ":"
        comma = ","
        if members:
            first = members[0]
            colon = text[first.key_end : first.value_start]
            if len(members) > 1:
                comma = text[first.value_end : members[1].key_start]
        added = comma.join(_quote(k) + colon + v for k, v in missing)
        if members:
            edits.append((members[-1].value_end, members[-1].value_end, comma + added))
        else:
            edits.append((close, close, added))
    edits.sort()
    return edits


def _quote(key: str) -> str:
    # Our keys are plain ASCII names: skip json.dumps (a few microseconds each) for them.
    return '"' + key + '"' if key.isidentifier() and key.isascii() else json.dumps(key)


def apply_edits(text: AnyStr, edits: Sequence[tuple[int, int, AnyStr]]) -> AnyStr:
    """Apply non-overlapping edits given in ascending order (to text or to bytes)."""
    out: list[AnyStr] = []
    pos = 0
    for start, end, replacement in edits:
        out.append(text[pos:start])
        out.append(replacement)
        pos = end
    out.append(text[pos:])
    return text[:0].join(out)


def value_edits_at(text: str, path: tuple[str, ...], updates: Sequence[tuple[str, str]]) -> list[Edit]:
    """Edits setting `updates` in the object at `path` of the top-level object (empty path: it)."""
    top = top_level_start(text)
    if not path:
        return object_member_edits(text, top, updates)
    span = member_value_span(text, top, path)
    if span is None:
        raise ValueError(f"no object at {'.'.join(path)}")
    return object_member_edits(text, span[0], updates)


def set_members(data: bytes, path: tuple[str, ...], updates: Sequence[tuple[str, str]]) -> bytes:
    """UTF-8 JSON bytes with `updates` set in the object at `path`; every other byte unchanged."""
    text = data.decode("utf-8")
    return apply_edits(text, value_edits_at(text, path, updates)).encode("utf-8")
