"""Byte-preserving edits of JSON objects: set members without re-serialising anything else.

An edit is (start, end, replacement) on the JSON text. Setting a key that exists replaces the
value of its first occurrence and removes later duplicates; a new key goes after the object's
existing members, in the object's own separator style (`": "` vs `":"`, `", "` vs `","`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from usage_filter.core.jsonspan import member_value_span, object_members, skip_ws, string_end

__all__ = ["Edit", "object_member_edits", "apply_edits", "value_edits_at"]

Edit = tuple[int, int, bytes]


def object_member_edits(buf: bytes, obj_start: int, updates: Sequence[tuple[str, bytes]]) -> list[Edit]:
    """Edits that make the object at `obj_start` hold each (key, JSON value) of `updates`."""
    members, close = object_members(buf, obj_start)
    edits: list[Edit] = []
    missing: list[tuple[str, bytes]] = []
    for key, value in updates:
        seen = False
        for idx, m in enumerate(members):
            if m.key != key:
                continue
            if not seen:
                edits.append((m.value_start, m.value_end, value))
                seen = True
            else:  # a later duplicate: remove ", key: value" (idx >= 1 here)
                edits.append((members[idx - 1].value_end, m.value_end, b""))
        if not seen:
            missing.append((key, value))
    if missing:
        colon = b":"
        comma = b","
        if members:
            first = members[0]
            colon = buf[string_end(buf, first.key_start) : first.value_start]
            if len(members) > 1:
                comma = buf[first.value_end : members[1].key_start]
        text = comma.join(json.dumps(k).encode() + colon + v for k, v in missing)
        if members:
            edits.append((members[-1].value_end, members[-1].value_end, comma + text))
        else:
            edits.append((close, close, text))
    edits.sort()
    return edits


def apply_edits(buf: bytes, edits: Sequence[Edit]) -> bytes:
    """Apply non-overlapping edits given in ascending order."""
    out: list[bytes] = []
    pos = 0
    for start, end, replacement in edits:
        out.append(buf[pos:start])
        out.append(replacement)
        pos = end
    out.append(buf[pos:])
    return b"".join(out)


def value_edits_at(buf: bytes, path: tuple[str, ...], updates: Sequence[tuple[str, bytes]]) -> list[Edit]:
    """Edits setting `updates` in the object at `path` of the top-level object (empty path: it)."""
    top = skip_ws(buf, 0)
    if not path:
        return object_member_edits(buf, top, updates)
    span = member_value_span(buf, top, path)
    if span is None:
        raise ValueError(f"no object at {'.'.join(path)}")
    return object_member_edits(buf, span[0], updates)
