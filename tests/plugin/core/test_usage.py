from __future__ import annotations

import pytest

from usage_filter.core.usage import carries_output, find_usage, may_have_usage, parse_event, parse_json


def test_parse_event_fast_path_and_fields() -> None:
    ev = parse_event(b'data: {"a":1}\n\n')
    assert ev.data == b'{"a":1}' and ev.name is None and ev.data_spans == [(6, 13)]
    ev = parse_event(b"data:x\r\n\r\n")
    assert ev.data == b"x"
    ev = parse_event(b": c\nevent: e\ndata: 1\ndata:2\nid: 5\n\n")
    assert ev.data == b"1\n2" and ev.name == b"e"
    assert parse_event(b": only a comment\n\n").data is None
    assert parse_event(b"data\n\n").data == b""


@pytest.mark.parametrize(
    "data,expected",
    [
        (b'{"choices":[{"delta":{"content":"x"}}]}', True),
        (b'{"choices":[{"delta":{"content": "x"}}]}', True),
        (b'{"choices":[{"delta":{"content":""}}]}', False),
        (b'{"choices":[{"delta":{"content":null}}]}', False),
        (b'{"choices":[{"delta":{"role":"assistant"}}]}', False),
        (b'{"choices":[{"delta":{"tool_calls":[]}}]}', False),
        (b'{"choices":[{"delta":{"tool_calls":[{"index":0}]}}]}', True),
        (b'{"choices":[{"delta":{"content":[{"type":"text","text":"a"}]}}]}', True),
        (b'{"choices":[{"delta":{},"logprobs":{"content":[{"token":"a"}]}}]}', False),
        (b'{"choices":[{"text":"a"}]}', True),
        (b'{"type":"response.output_text.delta","delta":"a"}', True),
        (b'{"type":"response.output_text.done","text":"all"}', False),
        (b"[DONE]", False),
        (b'{"x":"\\"content\\":\\"y\\""}', False),
    ],
)
def test_carries_output(data: bytes, expected: bool) -> None:
    assert carries_output(parse_event(b"data: " + data + b"\n\n")) is expected


def test_event_name_decides_for_responses_api() -> None:
    assert carries_output(parse_event(b'event: response.reasoning_summary_text.delta\ndata: {}\n\n'))
    assert not carries_output(parse_event(b'event: response.created\ndata: {"text":"x"}\n\n'))


def test_may_have_usage() -> None:
    assert not may_have_usage(b'{"usage":null}')
    assert not may_have_usage(b'{"usage" : null,"a":1}')
    assert may_have_usage(b'{"usage":{"completion_tokens":1}}')
    assert not may_have_usage(b'{"choices":[]}')


def test_find_usage() -> None:
    assert find_usage({"usage": {"completion_tokens": 3}}) == (("usage",), 3)
    assert find_usage({"usage": {"output_tokens": 3}}) == (("usage",), 3)
    assert find_usage({"response": {"usage": {"output_tokens": 4}}}) == (("response", "usage"), 4)
    assert find_usage({"usage": {"total_tokens": 3}}) is None
    assert find_usage({"usage": {"completion_tokens": -1}}) is None
    assert find_usage({"usage": {"completion_tokens": True}}) is None
    assert find_usage({"usage": None}) is None
    assert find_usage([1]) is None


def test_parse_json_bounds() -> None:
    assert parse_json(b"[" * 65 + b"]" * 65) is None
    assert parse_json(b"[" * 64 + b"]" * 64) is not None
    assert parse_json(b'{"a":"' + b"[" * 100 + b'"}') == {"a": "[" * 100}
    assert parse_json(b'"\xff"') is None
    assert parse_json(b"1" * 5000) is None
