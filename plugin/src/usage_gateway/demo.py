"""`tokenusage demo`: a sample vLLM-like upstream, the gateway running the real module, and the
official `openai` client, all on 127.0.0.1 with free ports; prints what the client received.

Bounded (--timeout-s) and shuts everything down on the way out, success or not.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from usage_gateway.app import Gateway, RunningGateway, start_gateway
from usage_gateway.cli import StartError, load_config, load_vm
from usage_gateway.sample_upstream import Pacing, RunningUpstream, start_sample_upstream
from usage_gateway.upstream import AiohttpTransport

if TYPE_CHECKING:
    from openai.types.chat import ChatCompletionMessageParam, ChatCompletionStreamOptionsParam

DEFAULT_PLUGIN = Path("dist/plugin.wasm")
STAT_FIELDS = ("time_to_first_token_ms", "time_per_output_token_ms", "tokens_per_second")


@dataclass
class DemoResult:
    """What the client saw, per call, for hooks that run after the demo."""

    plugin: Path
    calls: dict[str, dict[str, Any]] = field(default_factory=dict)


# Steps to run after the client calls (the lead adds rendering a sample policy here).
PostDemoHookFn = Callable[[DemoResult], None]
POST_DEMO_HOOKS: list[PostDemoHookFn] = []


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--plugin", type=Path, default=None,
                        help=f"the module to run (default {DEFAULT_PLUGIN}, built with `tokenusage build` if missing)")
    source.add_argument("--go-build", action="store_true",
                        help="run the original Go build of gpustack-token-usage instead (downloaded from PyPI)")
    parser.add_argument("--config", default="{}", help="plugin configuration: a JSON file path or inline JSON")
    parser.add_argument("--timeout-s", type=float, default=120.0, help="give up after this many seconds")


def resolve_plugin(args: argparse.Namespace) -> Path:
    if args.go_build:
        from wasm_host.reference_build import fetch_go_build

        return fetch_go_build()
    if args.plugin is not None:
        return Path(args.plugin)
    if not DEFAULT_PLUGIN.is_file():
        _build_default_plugin()
    return DEFAULT_PLUGIN


def _build_default_plugin() -> None:
    # The build helper owns the build (cached, offline); the demo only asks for its result.
    try:
        from wasm_build.build import ensure_built
    except ImportError as exc:
        raise StartError(f"{DEFAULT_PLUGIN} is missing and the build is not available: "
                         "pass --plugin PATH or --go-build") from exc
    print(f"{DEFAULT_PLUGIN} is missing: building it (first build takes minutes) ...", flush=True)
    ensure_built(DEFAULT_PLUGIN)
    if not DEFAULT_PLUGIN.is_file():
        raise StartError(f"the build did not produce {DEFAULT_PLUGIN}")


def _show_usage(usage: dict[str, Any] | None) -> str:
    if not usage:
        return "  usage: (none)"
    lines = ["  usage: " + json.dumps(usage)]
    injected = {k: usage[k] for k in STAT_FIELDS if k in usage}
    if injected:
        lines.append("  injected by the plugin: " + ", ".join(f"{k} = {v}" for k, v in injected.items()))
    else:
        lines.append("  injected by the plugin: nothing")
    return "\n".join(lines)


async def _client_calls(base_url: str, result: DemoResult) -> None:
    import openai

    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Why measure time to first token?"}]
    async with openai.AsyncOpenAI(base_url=base_url + "/v1", api_key="demo", max_retries=0) as client:
        for title, options in (
            ("1. streaming chat, stream_options.include_usage = true", {"include_usage": True}),
            ("2. streaming chat without stream_options", None),
        ):
            print(f"\n{title}")
            started = time.monotonic()
            stream = await client.chat.completions.create(
                model="sample-model", messages=messages, stream=True,
                stream_options=cast("ChatCompletionStreamOptionsParam", options) if options else openai.omit)
            text, usage, chunks, first_ms = "", None, 0, None
            async for chunk in stream:
                chunks += 1
                if chunk.choices and chunk.choices[0].delta.content:
                    if first_ms is None:
                        first_ms = (time.monotonic() - started) * 1000
                    text += chunk.choices[0].delta.content
                if chunk.usage is not None:
                    usage = chunk.usage.model_dump(exclude_none=True)
            print(f"  received {chunks} chunks; text: {text!r}")
            print(f"  (client clock: first content after {first_ms or 0:.0f} ms)")
            print(_show_usage(usage))
            result.calls[title] = {"text": text, "usage": usage}

        title = "3. non-streaming chat"
        print(f"\n{title}")
        chat = await client.chat.completions.create(model="sample-model", messages=messages)
        usage = chat.usage.model_dump(exclude_none=True) if chat.usage else None
        print(f"  text: {chat.choices[0].message.content!r}")
        print(_show_usage(usage))
        result.calls[title] = {"text": chat.choices[0].message.content, "usage": usage}

        title = "4. embeddings"
        print(f"\n{title}")
        embedding = await client.embeddings.create(model="sample-embed", input=["token usage", "statistics"])
        usage = embedding.usage.model_dump(exclude_none=True)
        print(f"  {len(embedding.data)} vectors of {len(embedding.data[0].embedding)} floats")
        print(_show_usage(usage))
        result.calls[title] = {"usage": usage}


async def run_session(plugin: Path, config: bytes, pacing: Pacing = Pacing()) -> DemoResult:
    vm = load_vm(plugin, config)
    upstream: RunningUpstream | None = None
    gateway: RunningGateway | None = None
    result = DemoResult(plugin=plugin)
    try:
        upstream = await start_sample_upstream(pacing)
        gateway = await start_gateway(Gateway(vm=vm, transport=AiohttpTransport(), upstream_url=upstream.url))
        print(f"sample upstream (vLLM-like): {upstream.url}")
        print(f"gateway: {gateway.url} running {plugin} (Proxy-Wasm ABI {vm.abi_version})")
        await _client_calls(gateway.url, result)
        stats = gateway.gateway.stats
        print(f"\ngateway: {stats.requests} requests, {stats.upstream_errors} upstream errors, "
              f"{vm.live_contexts} contexts left open")
    finally:
        if gateway is not None:
            await gateway.stop()
        if upstream is not None:
            await upstream.stop()
        vm.close()
    return result


def run(args: argparse.Namespace) -> int:
    try:
        plugin = resolve_plugin(args)
        config = load_config(args.config)
        result = asyncio.run(asyncio.wait_for(run_session(plugin, config), timeout=args.timeout_s))
    except StartError as exc:
        print(f"tokenusage demo: error: {exc}", file=sys.stderr)
        return 2
    except asyncio.TimeoutError:
        print(f"tokenusage demo: error: gave up after {args.timeout_s:.0f} s", file=sys.stderr)
        return 1
    for hook in POST_DEMO_HOOKS:
        hook(result)
    return 0
