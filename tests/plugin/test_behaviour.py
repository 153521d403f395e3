"""The filter's contract (shared/docs/plugin.md) and field cases F1-F14, per driver.

Every expected value is written out literally from the contract's formulas; nothing here calls
the code under test to compute an expectation.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.plugin import streams
from tests.plugin.exchange import MS, Driver, Request, Response

USAGE_ONLY = b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":3,"total_tokens":8}}\n\n'
STATS_RE = re.compile(rb',"time_to_first_token_ms":\d+,"time_per_output_token_ms":[0-9.]+,"tokens_per_second":[0-9.]+')


def usage_of(body: bytes, n: int = -1) -> dict[str, object]:
    """The usage object of the n-th usage event of an SSE body."""
    found = []
    for line in body.splitlines():
        if line.startswith(b"data:") and b'"usage":{' in line:
            found.append(json.loads(line[5:])["usage"])
    return found[n]


# -- providers ------------------------------------------------------------------------------


@pytest.mark.parametrize("name,chunks,usage", streams.PROVIDERS, ids=[p[0] for p in streams.PROVIDERS])
def test_provider_stream_gets_exact_statistics(drive: Driver, name: str, chunks: list[bytes], usage: bytes) -> None:
    ex = drive(None, Request(), Response(chunks))
    original = b"".join(chunks)
    assert ex.client_body == original.replace(usage, streams.with_stats(usage))
    # Each complete event goes out in the callback it arrived in.
    assert len(ex.forwarded) == len(chunks)
    for sent, got in zip(chunks, ex.forwarded):
        assert got == sent.replace(usage, streams.with_stats(usage))
    assert ex.errors == []


def test_rounding_two_decimals_half_away_from_zero(drive: Driver) -> None:
    # content at 120.5 ms and 190.5 ms (span 70 ms), 4 tokens: TPOT 70/3 = 23.333.., TPS 3000/70 = 42.857..
    chunks = [
        b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n',
        b'data: {"choices":[{"delta":{"content":"b"}}]}\n\n',
        b'data: {"choices":[],"usage":{"completion_tokens":4}}\n\n',
    ]
    times = [120_500_000, 190_500_000, 200 * MS]
    ex = drive(None, Request(), Response(chunks, times_ns=times))
    assert ex.forwarded[2] == (
        b'data: {"choices":[],"usage":{"completion_tokens":4,"time_to_first_token_ms":121,'
        b'"time_per_output_token_ms":23.33,"tokens_per_second":42.86}}\n\n'
    )


def test_whole_and_one_decimal_values_print_without_padding(drive: Driver) -> None:
    chunks = [
        b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n',
        b'data: {"choices":[{"delta":{"content":"b"}}]}\n\n',
        b'data: {"choices":[],"usage":{"completion_tokens":9}}\n\n',
    ]
    ex = drive(None, Request(), Response(chunks, times_ns=[60 * MS, 80 * MS, 81 * MS]))
    # span 20 ms, 8 steps: TPOT 2.5, TPS 400
    assert b'"time_to_first_token_ms":60,"time_per_output_token_ms":2.5,"tokens_per_second":400}' in ex.forwarded[2]


# -- field cases ----------------------------------------------------------------------------


def test_f1_siblings_keep_their_prefix(drive: Driver) -> None:
    finish = b'data: {"choices":[{"delta":{},"finish_reason":"stop"}]}\n\n'
    done = b"data: [DONE]\n\n"
    ex = drive(None, Request(), Response([finish + USAGE_ONLY + done]))
    body = ex.forwarded[0]
    assert body.startswith(finish)
    assert body.endswith(done)
    middle = body[len(finish) : -len(done)]
    assert STATS_RE.sub(b"", middle) == USAGE_ONLY
    assert middle.count(b"time_to_first_token_ms") == 1


def test_f2_split_usage_event_is_held_then_whole(drive: Driver) -> None:
    a = b'data: {"id":"x","choices":[],"usa'
    b = b'ge":{"prompt_tokens":32000,"completion_tokens":10,"total_tokens":32010}}\n\n'
    ex = drive(None, Request(), Response([a, b]))
    assert ex.forwarded[0] == b""
    event = ex.forwarded[1]
    assert event.startswith(b"data: ") and event.endswith(b"}\n\n")
    usage = json.loads(event[6:])["usage"]
    assert usage["completion_tokens"] == 10
    assert {"time_to_first_token_ms", "time_per_output_token_ms", "tokens_per_second"} <= set(usage)


def test_f3_usage_null_passes_and_counts_as_first_token(drive: Driver) -> None:
    hi = b'data: {"choices":[{"delta":{"content":"Hi"}}],"usage":null}\n\n'
    ex = drive(None, Request(), Response([hi, USAGE_ONLY], times_ns=[70 * MS, 90 * MS]))
    assert ex.forwarded[0] == hi
    assert usage_of(ex.client_body)["time_to_first_token_ms"] == 70


def test_f4_non_streaming_body_gets_exact_content_length(drive: Driver) -> None:
    body = b'{"object":"chat.completion","usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}'
    assert len(body) == 95
    req = Request(body=[b'{"model":"m","messages":[]}'])
    resp = Response([body], headers=[("content-type", "application/json"), ("content-length", "95")], times_ns=[500 * MS])
    ex = drive(None, req, resp)
    # 2 tokens in 500 ms: 4 tokens per second
    assert ex.client_body == body[:-2] + b',"tokens_per_second":4}}'
    assert ex.client_header("content-length") == [str(len(ex.client_body))]


def test_f5_json_answer_is_never_framed_as_sse(drive: Driver) -> None:
    a = b'{"object":"chat.completion","choices":[{"message":{"content":"ok"}}],'
    b = b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'
    req = Request(body=[b'{"model":"m"}'])
    resp = Response([a, b], headers=[("content-type", "application/json; charset=utf-8")], times_ns=[100 * MS, 250 * MS])
    ex = drive(None, req, resp)
    assert not ex.client_body.startswith(b"data:")
    doc = json.loads(ex.client_body)
    assert doc["usage"]["tokens_per_second"] == 4  # 1 token in 250 ms
    assert ex.client_header("content-length") == [str(len(ex.client_body))]


def test_f6_clients_that_do_not_ask_get_usage(drive: Driver) -> None:
    body = b'{"model":"m","stream":true,"messages":[{"role":"user","content":"hi"}]}'
    ex = drive(None, Request(body=[body]), Response([USAGE_ONLY]))
    assert ex.upstream_body == body[:-1] + b',"stream_options":{"include_usage":true}}'
    assert ex.upstream_header("content-length") == [str(len(ex.upstream_body))]
    assert b"time_to_first_token_ms" in ex.client_body


def test_f7_responses_api_usage_and_event_line(drive: Driver) -> None:
    delta = b'event: response.output_text.delta\ndata: {"type":"response.output_text.delta","delta":"Hi"}\n\n'
    done = b'event: response.output_text.done\ndata: {"type":"response.output_text.done","text":"Hi there"}\n\n'
    completed = (
        b'event: response.completed\ndata: {"type":"response.completed","response":{"usage":'
        b'{"input_tokens":5,"output_tokens":7,"total_tokens":12}}}\n\n'
    )
    config = {"enableOnPathSuffix": ["/responses"]}
    body = b'{"model":"m","stream":true,"input":"hi"}'
    ex = drive(config, Request(path="/v1/responses", body=[body]), Response([delta, done, completed], times_ns=[100 * MS, 160 * MS, 220 * MS]))
    assert ex.upstream_body == body  # never stream_options on the Responses API
    assert ex.forwarded[:2] == [delta, done]
    # one delta: first = last = 100 ms, 7 tokens over a zero span -> 0
    assert ex.forwarded[2] == completed.replace(
        b'"total_tokens":12}',
        b'"total_tokens":12,"time_to_first_token_ms":100,"time_per_output_token_ms":0,"tokens_per_second":0}',
    )


def test_f8_data_without_space_is_kept(drive: Driver) -> None:
    usage = b'data:{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\n\n'
    ex = drive(None, Request(), Response([usage + b"data:[DONE]\n\n"]))
    body = ex.client_body
    assert body.startswith(b'data:{"choices":[]')
    assert body.endswith(b"}}\n\ndata:[DONE]\n\n")
    assert STATS_RE.sub(b"", body) == usage + b"data:[DONE]\n\n"


def test_f9_zero_tokens_never_negative(drive: Driver) -> None:
    event = b'data: {"choices":[{"delta":{"role":"assistant"}}],"usage":{"prompt_tokens":16,"completion_tokens":0,"total_tokens":16}}\n\n'
    ex = drive(None, Request(), Response([event]))
    usage = usage_of(ex.client_body)
    assert usage["time_to_first_token_ms"] == 100
    assert usage["time_per_output_token_ms"] == 0
    assert usage["tokens_per_second"] == 0


def test_f10_usage_on_a_chunk_with_choices(drive: Driver) -> None:
    event = b'data: {"choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":4,"total_tokens":7}}\n\n'
    ex = drive(None, Request(), Response([event]))
    assert set(usage_of(ex.client_body)) >= {"time_to_first_token_ms", "tokens_per_second"}


def test_f11_no_usage_never_stalls(drive: Driver) -> None:
    a = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
    ex = drive(None, Request(), Response([a, b"data: [DONE]\n\n"]))
    assert ex.forwarded == [a, b"data: [DONE]\n\n"]


def test_f12_compressed_response_untouched_and_accept_encoding_removed(drive: Driver) -> None:
    gz = bytes(range(256)) * 3
    req = Request(headers=[("content-type", "application/json"), ("accept-encoding", "gzip, br")])
    resp = Response([gz], headers=[("content-type", "text/event-stream"), ("content-encoding", "gzip"), ("content-length", "768")])
    ex = drive(None, req, resp)
    assert ex.upstream_header("accept-encoding") == []
    assert ex.client_body == gz
    assert ex.client_header("content-length") == ["768"]


def test_f13_keepalive_and_typed_events_pass_and_do_not_count(drive: Driver) -> None:
    chunks = [b": keep-alive\n\n", b"event: ping\ndata: {}\n\n", b'data: {"choices":[{"delta":{"content":"x"}}]}\n\n', USAGE_ONLY]
    ex = drive(None, Request(), Response(chunks, times_ns=[100 * MS, 150 * MS, 300 * MS, 320 * MS]))
    assert ex.forwarded[:3] == chunks[:3]
    assert usage_of(ex.client_body)["time_to_first_token_ms"] == 300


def test_f14_existing_field_is_replaced_not_duplicated(drive: Driver) -> None:
    event = b'data: {"choices":[],"usage":{"completion_tokens":5,"tokens_per_second":1.5}}\n\n'
    ex = drive(None, Request(), Response([event]))
    line = ex.client_body
    assert line.count(b'"tokens_per_second"') == 1
    usage = json.loads(line[6:])["usage"]
    assert usage["tokens_per_second"] == 0  # single event: zero span
    assert list(usage) == ["completion_tokens", "tokens_per_second", "time_to_first_token_ms", "time_per_output_token_ms"]


# -- contract: request side -----------------------------------------------------------------


def test_real_ip_replaces_client_value_on_every_request(drive: Driver) -> None:
    config = {"realIPToHeader": "X-Real-IP"}
    for path in ("/v1/chat/completions", "/healthz"):
        req = Request(path=path, headers=[("x-real-ip", "6.6.6.6")], source_address="192.0.2.7:5123")
        ex = drive(config, req, Response([b"ok"], headers=[("content-type", "text/plain")]))
        assert ex.upstream_header("x-real-ip") == ["192.0.2.7"]


def test_real_ip_ipv6_and_alias(drive: Driver) -> None:
    req = Request(source_address="[2001:db8::1]:443")
    ex = drive({"realIPHeader": "x-forwarded-client"}, req, Response([USAGE_ONLY]))
    assert ex.upstream_header("x-forwarded-client") == ["2001:db8::1"]


def test_real_ip_unavailable_removes_spoofed_value(drive: Driver) -> None:
    req = Request(headers=[("x-real-ip", "6.6.6.6")], source_address=None)
    ex = drive({"realIPToHeader": "x-real-ip"}, req, Response([USAGE_ONLY]))
    assert ex.upstream_header("x-real-ip") == []


def test_untracked_request_is_untouched(drive: Driver) -> None:
    req = Request(path="/v1/models", method="GET", headers=[("accept-encoding", "gzip")], body=[])
    chunks = [b'data: {"choices":[],"usage":{"completion_tokens":3}}\n\n']
    ex = drive(None, req, Response(chunks, headers=[("content-type", "text/event-stream"), ("content-length", "52")]))
    assert ex.upstream_header("accept-encoding") == ["gzip"]
    assert ex.client_body == chunks[0]
    assert ex.client_header("content-length") == ["52"]


def test_trailing_slash_and_query_are_ignored_for_matching(drive: Driver) -> None:
    ex = drive(None, Request(path="/v1/chat/completions/?api-version=1#x"), Response([USAGE_ONLY]))
    assert b"tokens_per_second" in ex.client_body


def test_include_usage_false_is_measured_then_the_usage_chunk_removed(drive: Driver) -> None:
    body = b'{"model":"m","stream":true,"stream_options":{"include_usage":false}}'
    content = b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n'
    ex = drive(None, Request(body=[body]), Response([content, USAGE_ONLY, b"data: [DONE]\n\n"]))
    assert ex.upstream_body == b'{"model":"m","stream":true,"stream_options":{"include_usage":true}}'
    assert ex.client_body == content + b"data: [DONE]\n\n"


def test_include_usage_true_request_is_forwarded_unmodified(drive: Driver) -> None:
    body = b'{"stream": true, "stream_options": {"include_usage": true}}'
    ex = drive(None, Request(body=[body[:10], body[10:]]), Response([USAGE_ONLY]))
    assert ex.upstream_body == body
    assert ex.upstream_header("content-length") == [str(len(body))]


def test_null_stream_options_becomes_include_usage(drive: Driver) -> None:
    body = b'{"stream":true,"stream_options":null,"model":"m"}'
    ex = drive(None, Request(body=[body]), Response([USAGE_ONLY]))
    assert ex.upstream_body == b'{"stream":true,"stream_options":{"include_usage":true},"model":"m"}'


@pytest.mark.parametrize(
    "body",
    [
        b'{"model":"m","stream":false}',
        b"not json at all",
        b'{"model":"m","stream":"true"}',
        b'[{"stream":true}]',
    ],
)
def test_request_bodies_left_alone(drive: Driver, body: bytes) -> None:
    ex = drive(None, Request(body=[body]), Response([b"{}"], headers=[("content-type", "application/json")]))
    assert ex.upstream_body == body
    assert ex.upstream_header("content-length") == [str(len(body))]


def test_request_over_one_mib_forwarded_unmodified(drive: Driver) -> None:
    pad = b" " * (1024 * 1024)
    parts = [b'{"stream":true,"pad":"', pad, b'"}']
    ex = drive(None, Request(body=parts), Response([USAGE_ONLY]))
    assert ex.upstream_body == b"".join(parts)


def test_ensure_stream_usage_off(drive: Driver) -> None:
    body = b'{"stream":true}'
    ex = drive({"ensureStreamUsage": False}, Request(body=[body]), Response([USAGE_ONLY]))
    assert ex.upstream_body == body


def test_stream_options_only_on_completions_paths(drive: Driver) -> None:
    body = b'{"stream":true,"input":"x"}'
    ex = drive(None, Request(path="/v1/embeddings", body=[body]), Response([b"{}"], headers=[("content-type", "application/json")]))
    assert ex.upstream_body == body


# -- contract: response side ----------------------------------------------------------------


@pytest.mark.parametrize("status", [400, 500, 302])
def test_non_2xx_passes(drive: Driver, status: int) -> None:
    ex = drive(None, Request(), Response([USAGE_ONLY], status=status))
    assert ex.client_body == USAGE_ONLY


@pytest.mark.parametrize("ctype", ["TEXT/EVENT-STREAM; charset=utf-8", "text/event-stream;foo=bar"])
def test_event_stream_media_type_any_case_and_params(drive: Driver, ctype: str) -> None:
    ex = drive(None, Request(), Response([USAGE_ONLY], headers=[("content-type", ctype)]))
    assert b"tokens_per_second" in ex.client_body


def test_stream_loses_content_length(drive: Driver) -> None:
    resp = Response([USAGE_ONLY], headers=[("content-type", "text/event-stream"), ("content-length", str(len(USAGE_ONLY)))])
    ex = drive(None, Request(), resp)
    assert ex.client_header("content-length") == []


def test_other_media_types_pass(drive: Driver) -> None:
    body = b'{"usage":{"completion_tokens":3}}'
    ex = drive(None, Request(), Response([body], headers=[("content-type", "text/plain")]))
    assert ex.client_body == body


def test_problem_json_is_json(drive: Driver) -> None:
    body = b'{"usage":{"completion_tokens":3}}'
    ex = drive(None, Request(body=[b"{}"]), Response([body], headers=[("content-type", "application/vnd.api+json")], times_ns=[1000 * MS]))
    assert ex.client_body == b'{"usage":{"completion_tokens":3,"tokens_per_second":3}}'


@pytest.mark.parametrize(
    "path,body",
    [
        ("/v1/embeddings", b'{"object":"list","data":[{"object":"embedding","index":0,"embedding":[0.1,0.2]}],"model":"e","usage":{"prompt_tokens":4,"total_tokens":4}}'),
        ("/v1/rerank", b'{"id":"r","results":[{"index":0,"relevance_score":0.9}],"usage":{"total_tokens":12}}'),
    ],
)
def test_embeddings_and_rerank_never_modified(drive: Driver, path: str, body: bytes) -> None:
    resp = Response([body], headers=[("content-type", "application/json"), ("content-length", str(len(body)))])
    ex = drive(None, Request(path=path, body=[b'{"input":"x"}']), resp)
    assert ex.client_body == body
    assert ex.client_header("content-length") == [str(len(body))]


def test_non_streaming_over_cap_passes_unmodified(drive: Driver) -> None:
    body = b'{"usage":{"completion_tokens":3},"pad":"' + b"x" * 2000 + b'"}'
    resp = Response([body[:1000], body[1000:]], headers=[("content-type", "application/json")])
    ex = drive({"maxResponseBodyBytes": 1500}, Request(body=[b"{}"]), resp)
    assert ex.client_body == body


def test_non_streaming_declared_length_over_cap_is_not_held(drive: Driver) -> None:
    body = b'{"usage":{"completion_tokens":3}}'
    resp = Response([body], headers=[("content-type", "application/json"), ("content-length", "5000")])
    ex = drive({"maxResponseBodyBytes": 1024}, Request(body=[b"{}"]), resp)
    assert ex.client_body == body


def test_usage_on_every_chunk_each_gets_figures_as_of_arrival(drive: Driver) -> None:
    chunks = [
        b'data: {"choices":[{"delta":{"content":"a"}}],"usage":{"completion_tokens":1}}\n\n',
        b'data: {"choices":[{"delta":{"content":"b"}}],"usage":{"completion_tokens":2}}\n\n',
        b'data: {"choices":[{"delta":{"content":"c"}}],"usage":{"completion_tokens":3}}\n\n',
    ]
    ex = drive(None, Request(), Response(chunks, times_ns=[100 * MS, 150 * MS, 200 * MS]))
    assert b'"completion_tokens":1,"time_to_first_token_ms":100,"time_per_output_token_ms":0,"tokens_per_second":0}' in ex.forwarded[0]
    assert b'"completion_tokens":2,"time_to_first_token_ms":100,"time_per_output_token_ms":50,"tokens_per_second":20}' in ex.forwarded[1]
    assert b'"completion_tokens":3,"time_to_first_token_ms":100,"time_per_output_token_ms":50,"tokens_per_second":20}' in ex.forwarded[2]


@pytest.mark.parametrize(
    "delta",
    [
        b'{"reasoning_content":"hmm"}',
        b'{"reasoning":"hmm"}',
        b'{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"f","arguments":""}}]}',
        b'{"function_call":{"name":"f"}}',
    ],
)
def test_other_output_kinds_count_as_first_token(drive: Driver, delta: bytes) -> None:
    chunks = [
        b'data: {"choices":[{"delta":{"role":"assistant","content":""}}]}\n\n',
        b'data: {"choices":[{"delta":' + delta + b"}]}\n\n",
        USAGE_ONLY,
    ]
    ex = drive(None, Request(), Response(chunks, times_ns=[100 * MS, 140 * MS, 150 * MS]))
    assert usage_of(ex.client_body)["time_to_first_token_ms"] == 140


def test_completions_text_counts_as_output(drive: Driver) -> None:
    chunks = [
        b'data: {"object":"text_completion","choices":[{"text":"","index":0}]}\n\n',
        b'data: {"object":"text_completion","choices":[{"text":"Hi","index":0}]}\n\n',
        b'data: {"object":"text_completion","choices":[],"usage":{"completion_tokens":1}}\n\n',
    ]
    ex = drive(None, Request(path="/v1/completions"), Response(chunks, times_ns=[100 * MS, 130 * MS, 140 * MS]))
    assert usage_of(ex.client_body)["time_to_first_token_ms"] == 130


def test_logprobs_content_array_is_not_output_but_delta_is(drive: Driver) -> None:
    chunks = [
        b'data: {"choices":[{"delta":{"content":""},"logprobs":{"content":[]}}]}\n\n',
        b'data: {"choices":[{"delta":{"content":""},"logprobs":{"content":[{"token":"x","logprob":-0.1}]}}]}\n\n',
        b'data: {"choices":[{"delta":{"content":"y"},"logprobs":{"content":[{"token":"y","logprob":-0.1}]}}]}\n\n',
        USAGE_ONLY,
    ]
    ex = drive(None, Request(), Response(chunks, times_ns=[100 * MS, 110 * MS, 120 * MS, 130 * MS]))
    assert usage_of(ex.client_body)["time_to_first_token_ms"] == 120


def test_crlf_and_cr_line_endings_preserved(drive: Driver) -> None:
    content = b'data: {"choices":[{"delta":{"content":"a"}}]}\r\n\r\n'
    usage = b'data: {"choices":[],"usage":{"completion_tokens":1}}\r\r'
    done = b"data: [DONE]\r\n\r\n"
    # a CR and its LF in different callbacks
    stream = content + usage + done
    cut = len(content) - 1
    ex = drive(None, Request(), Response([stream[:cut], stream[cut:]]))
    assert STATS_RE.sub(b"", ex.client_body) == stream
    assert ex.forwarded[0] == content[:-1]


def test_multiline_data_event(drive: Driver) -> None:
    event = b'id: 7\nevent: message\ndata: {"choices":[],\ndata: "usage":{"completion_tokens":2}}\nretry: 1000\n\n'
    ex = drive(None, Request(), Response([event]))
    assert STATS_RE.sub(b"", ex.client_body) == event
    assert b'"completion_tokens":2,"time_to_first_token_ms"' in ex.client_body


@pytest.mark.parametrize(
    "event",
    [
        b'data: {"choices":[],"usage":{"completion_tokens":2},}\n\n',  # malformed JSON
        b'data: {"choices":[],"usage":{"completion_tokens":2},"x":"\xff\xfe"}\n\n',  # invalid UTF-8
        b"data: " + b"[" * 5000 + b"]" * 5000 + b"\n\n",  # deep nesting
        b'data: {"usage":{"completion_tokens":' + b"9" * 5000 + b"}}\n\n",  # huge number
        b'data: {"usage":{"completion_tokens":"7"}}\n\n',  # not a count
    ],
)
def test_bad_events_pass_unmodified(drive: Driver, event: bytes) -> None:
    ex = drive(None, Request(), Response([event, b"data: [DONE]\n\n"]))
    assert ex.client_body == event + b"data: [DONE]\n\n"


def test_event_over_cap_is_flushed_and_framing_resumes(drive: Driver) -> None:
    big = b'data: {"choices":[{"delta":{"content":"' + b"x" * 3000 + b'"}}]}\n\n'
    chunks = [big[:1500], big[1500:2500], big[2500:] + USAGE_ONLY]
    ex = drive({"maxEventBytes": 1024}, Request(), Response(chunks))
    assert ex.forwarded[0] == chunks[0]  # past the cap: flushed unmodified at once
    assert STATS_RE.sub(b"", ex.client_body) == big + USAGE_ONLY
    assert b"time_to_first_token_ms" in ex.forwarded[2]


def test_unterminated_last_event_is_forwarded_at_end(drive: Driver) -> None:
    chunks = [b'data: {"choices":[{"delta":{"content":"a"}}]}\n\n', b'data: {"choices":[],"usage":{"completion_tokens":1}}']
    ex = drive(None, Request(), Response(chunks))
    assert ex.client_body == b"".join(chunks)


def test_empty_config_means_defaults(drive: Driver) -> None:
    for config in (None, b"", b"{}", "null"):
        ex = drive(config, Request(), Response([USAGE_ONLY]))
        assert b"tokens_per_second" in ex.client_body
