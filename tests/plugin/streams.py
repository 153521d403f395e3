"""Recorded-style streams in the exact shapes the servers send (from their public docs/output).

Each stream is a list of body callbacks; with the default pacing of `exchange.Response`
(callback i arrives at 100 + 20*i ms, request at 0) the content deltas are callbacks 1..4
(120..180 ms) and the usage reports 7 completion tokens, so every provider must get
time_to_first_token_ms=120, time_per_output_token_ms=10 (60 ms / 6), tokens_per_second=100.
`USAGE` is the exact usage object text in each stream, `STATS` what must follow its last key.
"""

from __future__ import annotations

STATS = b',"time_to_first_token_ms":120,"time_per_output_token_ms":10,"tokens_per_second":100'


def _chat(prefix: bytes, delta: bytes, tail: bytes = b"") -> bytes:
    return b'data: {' + prefix + b'"choices":[{"index":0,"delta":' + delta + b',"logprobs":null,"finish_reason":null}]' + tail + b"}\n\n"


_VLLM_ID = b'"id":"chatcmpl-9f1","object":"chat.completion.chunk","created":1733000000,"model":"qwen2.5-7b",'
VLLM_USAGE = b'{"prompt_tokens":12,"total_tokens":19,"completion_tokens":7,"prompt_tokens_details":null}'
VLLM = [
    _chat(_VLLM_ID, b'{"role":"assistant","content":""}'),
    _chat(_VLLM_ID, b'{"content":"Hello"}'),
    _chat(_VLLM_ID, b'{"content":" there"}'),
    _chat(_VLLM_ID, b'{"content":","}'),
    _chat(_VLLM_ID, b'{"content":" friend"}'),
    b'data: {' + _VLLM_ID + b'"choices":[{"index":0,"delta":{"content":""},"logprobs":null,"finish_reason":"stop","stop_reason":null}]}\n\n',
    b'data: {' + _VLLM_ID + b'"choices":[],"usage":' + VLLM_USAGE + b"}\n\n",
    b"data: [DONE]\n\n",
]

_SGL_ID = b'"id":"a1b2","object":"chat.completion.chunk","created":1733000000,"model":"llama-3.1-8b",'
SGLANG_USAGE = b'{"prompt_tokens":9,"total_tokens":16,"completion_tokens":7,"prompt_tokens_details":null}'
SGLANG = [
    _chat(_SGL_ID, b'{"role":"assistant","content":null,"reasoning_content":null,"tool_calls":null}', b',"usage":null'),
    _chat(_SGL_ID, b'{"role":null,"content":"Hel","reasoning_content":null,"tool_calls":null}', b',"usage":null'),
    _chat(_SGL_ID, b'{"role":null,"content":"lo","reasoning_content":null,"tool_calls":null}', b',"usage":null'),
    _chat(_SGL_ID, b'{"role":null,"content":" wor","reasoning_content":null,"tool_calls":null}', b',"usage":null'),
    _chat(_SGL_ID, b'{"role":null,"content":"ld","reasoning_content":null,"tool_calls":null}', b',"usage":null'),
    b'data: {' + _SGL_ID + b'"choices":[{"index":0,"delta":{"role":null,"content":null,"reasoning_content":null,"tool_calls":null},"logprobs":null,"finish_reason":"stop","matched_stop":128009}],"usage":null}\n\n',
    b'data: {' + _SGL_ID + b'"choices":[],"usage":' + SGLANG_USAGE + b"}\n\n",
    b"data: [DONE]\n\n",
]

# llama.cpp server: usage (and timings) on the final chunk, whose choices are not empty.
LLAMACPP_USAGE = b'{"completion_tokens":7,"prompt_tokens":8,"total_tokens":15}'
_LC = b'"created":1733000000,"id":"chatcmpl-Xy","model":"gpt-3.5-turbo","system_fingerprint":"b4200","object":"chat.completion.chunk"'
LLAMACPP = [
    b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"role":"assistant","content":null}}],' + _LC + b"}\n\n",
    b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"Hi"}}],' + _LC + b"}\n\n",
    b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":" the"}}],' + _LC + b"}\n\n",
    b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"re"}}],' + _LC + b"}\n\n",
    b'data: {"choices":[{"finish_reason":null,"index":0,"delta":{"content":"!"}}],' + _LC + b"}\n\n",
    b'data: {"choices":[{"finish_reason":"stop","index":0,"delta":{}}],' + _LC
    + b',"usage":' + LLAMACPP_USAGE + b',"timings":{"prompt_n":8,"prompt_ms":12.5,"predicted_n":7,"predicted_ms":61.2}}\n\n',
    b"data: [DONE]\n\n",
]

# Ollama's OpenAI-compatible endpoint.
OLLAMA_USAGE = b'{"prompt_tokens":26,"completion_tokens":7,"total_tokens":33}'
_OL = b'"id":"chatcmpl-123","object":"chat.completion.chunk","created":1733000000,"model":"llama3.2","system_fingerprint":"fp_ollama",'
OLLAMA = [
    b'data: {' + _OL + b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}\n\n',
    b'data: {' + _OL + b'"choices":[{"index":0,"delta":{"role":"assistant","content":"The"},"finish_reason":null}]}\n\n',
    b'data: {' + _OL + b'"choices":[{"index":0,"delta":{"role":"assistant","content":" sky"},"finish_reason":null}]}\n\n',
    b'data: {' + _OL + b'"choices":[{"index":0,"delta":{"role":"assistant","content":" is"},"finish_reason":null}]}\n\n',
    b'data: {' + _OL + b'"choices":[{"index":0,"delta":{"role":"assistant","content":" blue"},"finish_reason":null}]}\n\n',
    b'data: {' + _OL + b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":"stop"}]}\n\n',
    b'data: {' + _OL + b'"choices":[],"usage":' + OLLAMA_USAGE + b"}\n\n",
    b"data: [DONE]\n\n",
]

# TGI (Messages API): "data:" with a space, usage on the final chunk with a non-empty choices list.
TGI_USAGE = b'{"prompt_tokens":15,"completion_tokens":7,"total_tokens":22}'
_TGI = b'"object":"chat.completion.chunk","id":"","created":1733000000,"model":"tgi","system_fingerprint":"3.0.1-native",'
TGI = [
    b'data: {' + _TGI + b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b'data: {' + _TGI + b'"choices":[{"index":0,"delta":{"role":"assistant","content":"Deep"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b'data: {' + _TGI + b'"choices":[{"index":0,"delta":{"role":"assistant","content":" learning"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b'data: {' + _TGI + b'"choices":[{"index":0,"delta":{"role":"assistant","content":" is"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b'data: {' + _TGI + b'"choices":[{"index":0,"delta":{"role":"assistant","content":" fun"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b'data: {' + _TGI + b'"choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":"stop"}],"usage":' + TGI_USAGE + b"}\n\n",
    b"data: [DONE]\n\n",
]

# OpenAI itself (include_usage: every chunk has "usage":null except the last, usage-only one).
OPENAI_USAGE = (
    b'{"prompt_tokens":19,"completion_tokens":7,"total_tokens":26,"prompt_tokens_details":{"cached_tokens":0,'
    b'"audio_tokens":0},"completion_tokens_details":{"reasoning_tokens":0,"audio_tokens":0,'
    b'"accepted_prediction_tokens":0,"rejected_prediction_tokens":0}}'
)
_OA = b'"id":"chatcmpl-Ab1","object":"chat.completion.chunk","created":1733000000,"model":"gpt-4o-mini-2024-07-18","service_tier":"default","system_fingerprint":"fp_0ba0d124f1",'
OPENAI = [
    b'data: {' + _OA + b'"choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b'data: {' + _OA + b'"choices":[{"index":0,"delta":{"content":"Hello"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b'data: {' + _OA + b'"choices":[{"index":0,"delta":{"content":"!"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b'data: {' + _OA + b'"choices":[{"index":0,"delta":{"content":" How"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b'data: {' + _OA + b'"choices":[{"index":0,"delta":{"content":" can"},"logprobs":null,"finish_reason":null}],"usage":null}\n\n',
    b'data: {' + _OA + b'"choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}],"usage":null}\n\n',
    b'data: {' + _OA + b'"choices":[],"usage":' + OPENAI_USAGE + b"}\n\n",
    b"data: [DONE]\n\n",
]

# (name, callbacks, exact usage object text)
PROVIDERS = [
    ("vllm", VLLM, VLLM_USAGE),
    ("sglang", SGLANG, SGLANG_USAGE),
    ("llamacpp", LLAMACPP, LLAMACPP_USAGE),
    ("ollama", OLLAMA, OLLAMA_USAGE),
    ("tgi", TGI, TGI_USAGE),
    ("openai", OPENAI, OPENAI_USAGE),
]


def with_stats(usage: bytes, stats: bytes = STATS) -> bytes:
    """The usage object text with the statistics after its existing keys."""
    assert usage.endswith(b"}")
    return usage[:-1] + stats + b"}"
