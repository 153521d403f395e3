"""A built-in OpenAI-compatible upstream that answers like vLLM, with realistic pacing.

Streaming chat: a role-only delta, content deltas 20-40 ms apart, a finish chunk, a usage-only
chunk when `stream_options.include_usage` is true, then `data: [DONE]`. Non-streaming chat and
completions carry usage; embeddings carry prompt/total usage; `/v1/models` is an untracked path.
For the demo and the gateway tests; never for production.
"""

from __future__ import annotations

import asyncio
import json
import random
import time
import uuid
from dataclasses import dataclass

from aiohttp import web

REPLY = ("Token usage statistics let an operator see how fast a model answers: the time to the "
         "first token, the time per output token and the tokens per second.")


@dataclass(frozen=True)
class Pacing:
    first_token_delay_ms: float = 120.0
    inter_token_delay_ms: tuple[float, float] = (20.0, 40.0)
    seed: int = 7


def _tokens(text: str) -> list[str]:
    words = text.split(" ")
    return [w if i == 0 else " " + w for i, w in enumerate(words)]


def _prompt_tokens(payload: dict[str, object]) -> int:
    messages = payload.get("messages") or []
    text = " ".join(str(m.get("content", "")) for m in messages if isinstance(m, dict)) if isinstance(messages, list) else ""
    text += " " + str(payload.get("prompt", ""))
    return max(1, len(text.split()))


def _sse(obj: object) -> bytes:
    return b"data: " + json.dumps(obj, separators=(",", ":")).encode() + b"\n\n"


class SampleUpstream:
    def __init__(self, pacing: Pacing = Pacing(), reply: str = REPLY) -> None:
        self.pacing = pacing
        self.reply = reply
        self.requests: list[dict[str, object]] = []
        self._random = random.Random(pacing.seed)

    def make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_post("/v1/completions", self.completions)
        app.router.add_post("/v1/embeddings", self.embeddings)
        app.router.add_get("/v1/models", self.models)
        return app

    async def _pause(self, delay_ms: float) -> None:
        if delay_ms > 0:
            await asyncio.sleep(delay_ms / 1000)

    def _gap_ms(self) -> float:
        low, high = self.pacing.inter_token_delay_ms
        return self._random.uniform(low, high)

    async def _payload(self, request: web.Request) -> dict[str, object]:
        payload = await request.json()
        self.requests.append({"path": request.path, "headers": dict(request.headers), "body": payload})
        return payload if isinstance(payload, dict) else {}

    async def chat(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=True)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        return await self._generate(request, chat=False)

    async def _generate(self, request: web.Request, *, chat: bool) -> web.StreamResponse:
        payload = await self._payload(request)
        model = str(payload.get("model", "sample-model"))
        tokens = _tokens(self.reply)
        prompt_tokens = _prompt_tokens(payload)
        usage = {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens + len(tokens),
                 "completion_tokens": len(tokens)}
        created = int(time.time())
        ident = ("chatcmpl-" if chat else "cmpl-") + uuid.uuid4().hex[:24]
        kind = "chat.completion" if chat else "text_completion"
        if not payload.get("stream"):
            await self._pause(self.pacing.first_token_delay_ms + sum(self._gap_ms() for _ in tokens[1:]))
            choice: dict[str, object] = (
                {"index": 0, "message": {"role": "assistant", "content": self.reply}, "logprobs": None,
                 "finish_reason": "stop"}
                if chat else {"index": 0, "text": self.reply, "logprobs": None, "finish_reason": "stop"})
            return web.json_response({"id": ident, "object": kind, "created": created, "model": model,
                                      "choices": [choice], "usage": usage})

        options = payload.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        response = web.StreamResponse(headers={"content-type": "text/event-stream; charset=utf-8",
                                               "cache-control": "no-cache"})
        await response.prepare(request)
        chunk_kind = "chat.completion.chunk" if chat else "text_completion"

        def chunk(choices: list[dict[str, object]]) -> dict[str, object]:
            return {"id": ident, "object": chunk_kind, "created": created, "model": model, "choices": choices}

        if chat:
            await response.write(_sse(chunk([{"index": 0, "delta": {"role": "assistant", "content": ""},
                                              "logprobs": None, "finish_reason": None}])))
        await self._pause(self.pacing.first_token_delay_ms)
        for i, token in enumerate(tokens):
            if i:
                await self._pause(self._gap_ms())
            piece: dict[str, object] = ({"index": 0, "delta": {"content": token}, "logprobs": None, "finish_reason": None}
                                        if chat else {"index": 0, "text": token, "logprobs": None, "finish_reason": None})
            await response.write(_sse(chunk([piece])))
        final: dict[str, object] = ({"index": 0, "delta": {}, "logprobs": None, "finish_reason": "stop"}
                                    if chat else {"index": 0, "text": "", "logprobs": None, "finish_reason": "stop"})
        await response.write(_sse(chunk([final])))
        if include_usage:
            await response.write(_sse({**chunk([]), "usage": usage}))
        await response.write(b"data: [DONE]\n\n")
        await response.write_eof()
        return response

    async def embeddings(self, request: web.Request) -> web.Response:
        payload = await self._payload(request)
        inputs = payload.get("input", "")
        items = inputs if isinstance(inputs, list) else [inputs]
        prompt_tokens = sum(max(1, len(str(i).split())) for i in items)
        data = [{"object": "embedding", "index": i, "embedding": [round(self._random.uniform(-1, 1), 6) for _ in range(8)]}
                for i in range(len(items))]
        return web.json_response({"object": "list", "data": data, "model": str(payload.get("model", "sample-embed")),
                                  "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens}})

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "sample-model", "object": "model",
                                                               "owned_by": "gpustack-token-usage-demo"}]})


@dataclass
class RunningUpstream:
    upstream: SampleUpstream
    runner: web.AppRunner
    url: str

    async def stop(self) -> None:
        await self.runner.cleanup()


async def start_sample_upstream(pacing: Pacing = Pacing(), host: str = "127.0.0.1", port: int = 0) -> RunningUpstream:
    upstream = SampleUpstream(pacing)
    runner = web.AppRunner(upstream.make_app(), access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound_port = runner.addresses[0][1]
    return RunningUpstream(upstream, runner, f"http://{host}:{bound_port}")
