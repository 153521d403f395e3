"""Behaviour reports from a first-time user (GPUStack/vLLM behind Higress), each a failing case
found by driving dist/plugin.wasm through `tokenusage gateway`. Run on the core and on the .wasm.
"""

from __future__ import annotations

import pytest

from tests.plugin.exchange import Driver, Request, Response

# vLLM's UsageInfo has `completion_tokens: Optional[int] = 0`, so its embeddings, score and
# rerank responses carry `"completion_tokens":0` even though nothing was generated.
VLLM_EMBEDDINGS = (
    b'{"id":"embd-1","object":"list","created":1,"model":"bge","data":[{"index":0,"object":"embedding",'
    b'"embedding":[0.1,0.2]}],"usage":{"prompt_tokens":3,"total_tokens":3,"completion_tokens":0,'
    b'"prompt_tokens_details":null}}'
)
VLLM_RERANK = (
    b'{"id":"rerank-1","model":"bge-reranker","usage":{"total_tokens":9,"prompt_tokens":9,'
    b'"completion_tokens":0},"results":[{"index":0,"document":{"text":"a"},"relevance_score":0.9}]}'
)


@pytest.mark.parametrize(
    "path,body",
    [("/v1/embeddings", VLLM_EMBEDDINGS), ("/v1/rerank", VLLM_RERANK)],
    ids=["embeddings", "rerank"],
)
def test_vllm_embeddings_and_rerank_with_zero_completion_tokens_never_modified(
    drive: Driver, path: str, body: bytes
) -> None:
    # plugin.md: "Embeddings and rerank (no output tokens) are never modified."
    resp = Response([body], headers=[("content-type", "application/json"), ("content-length", str(len(body)))])
    ex = drive(None, Request(path=path, body=[b'{"model":"bge","input":"hi"}']), resp)
    assert ex.client_body == body
    assert ex.client_header("content-length") == [str(len(body))]


def test_removed_usage_chunk_leaves_no_stray_lf_when_its_crlf_is_split(drive: Driver) -> None:
    # plugin.md: "A CR and its LF may arrive in different callbacks." and, for an explicit
    # include_usage:false, "remove the usage-only chunk ... so the client sees what it asked for".
    # Found through the gateway: the event ending "\r\n\r" is removed, its final "\n" (next
    # callback) still goes out, so the client gets an extra blank line.
    content = b'data: {"choices":[{"delta":{"content":"a"}}]}\r\n\r\n'
    usage = b'data: {"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"total_tokens":3}}\r\n\r\n'
    done = b"data: [DONE]\r\n\r\n"
    request = Request(body=[b'{"model":"m","stream":true,"stream_options":{"include_usage":false}}'])
    ex = drive(None, request, Response([content, usage[:20], usage[20:-1], usage[-1:] + done]))
    assert ex.client_body == content + done
