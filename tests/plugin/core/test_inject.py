from __future__ import annotations

import json

import pytest

from usage_filter.core.inject import set_members, value_edits_at


def setm(buf: bytes, path: tuple[str, ...], updates: list[tuple[str, bytes]]) -> bytes:
    return set_members(buf, path, [(k, v.decode()) for k, v in updates])


def test_appends_after_existing_keys() -> None:
    assert setm(b'{"usage":{"a":1}}', ("usage",), [("x", b"2")]) == b'{"usage":{"a":1,"x":2}}'


def test_empty_object() -> None:
    assert setm(b'{"usage":{}}', ("usage",), [("x", b"2"), ("y", b"3")]) == b'{"usage":{"x":2,"y":3}}'
    assert setm(b'{"usage":{ }}', ("usage",), [("x", b"2")]) == b'{"usage":{ "x":2}}'


def test_existing_key_replaced_in_place_and_duplicates_removed() -> None:
    buf = b'{"usage":{"tokens_per_second":1,"a":2,"tokens_per_second":3}}'
    out = setm(buf, ("usage",), [("tokens_per_second", b"9")])
    assert out == b'{"usage":{"tokens_per_second":9,"a":2}}'


def test_separator_style_is_mimicked() -> None:
    buf = b'{"usage": {"a": 1, "b": 2}}'
    assert setm(buf, ("usage",), [("x", b"3")]) == b'{"usage": {"a": 1, "b": 2, "x": 3}}'
    pretty = b'{\n  "usage": {\n    "a": 1,\n    "b": 2\n  }\n}'
    out = setm(pretty, ("usage",), [("x", b"3")])
    assert out == b'{\n  "usage": {\n    "a": 1,\n    "b": 2,\n    "x": 3\n  }\n}'
    assert json.loads(out)["usage"] == {"a": 1, "b": 2, "x": 3}


def test_other_bytes_are_untouched() -> None:
    buf = b'{"z":"\\"usage\\": {}","usage":{"a":[1,{"b":"}"}]},"tail":[{}]}'
    out = setm(buf, ("usage",), [("x", b"1")])
    assert out == b'{"z":"\\"usage\\": {}","usage":{"a":[1,{"b":"}"}],"x":1},"tail":[{}]}'


def test_nested_path_and_last_duplicate_wins() -> None:
    buf = b'{"response":{"usage":{"a":1},"usage":{"b":2}}}'
    out = setm(buf, ("response", "usage"), [("x", b"1")])
    assert out == b'{"response":{"usage":{"a":1},"usage":{"b":2,"x":1}}}'


def test_missing_path_raises() -> None:
    with pytest.raises(ValueError):
        value_edits_at('{"a":1}', ("usage",), [("x", "1")])


def test_top_level_member() -> None:
    assert setm(b' {"stream":true} ', (), [("stream_options", b"{}")]) == b' {"stream":true,"stream_options":{}} '


def test_non_ascii_text_keeps_every_other_byte() -> None:
    # raw UTF-8 (2- and 4-byte sequences) and JSON escapes, surrogate pairs included
    buf = b'{"name":"h' + "\u00e9".encode() + rb' \u00e9 \ud83d\ude00 ' + "\U0001F600".encode() + b'","usage":{"a":1}}'
    out = setm(buf, ("usage",), [("x", b"1")])
    assert out == buf[:-2] + b',"x":1}}'


def test_escaped_keys_are_matched_decoded() -> None:
    buf = rb'{"us\u0061ge":{"a":1}}'
    assert setm(buf, ("usage",), [("x", b"2")]) == rb'{"us\u0061ge":{"a":1,"x":2}}'
