"""`tokenusage check-config` and `tokenusage replay`: the filter core without a gateway.

This module is never compiled into the Wasm module (it reads files and prints).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from usage_filter.core.config import ConfigError, parse_config
from usage_filter.core.stream import StreamState

_MS = 1_000_000


class _InputError(Exception):
    """A file or argument that cannot be read: one line for the user."""


def _read_config(value: str | None) -> bytes | None:
    """A JSON file or inline JSON (the same inputs `tokenusage gateway --config` takes)."""
    if value is None:
        return None
    path = Path(value)
    if path.is_file():
        return path.read_bytes()
    stripped = value.strip()
    if not stripped or stripped[0] in '{["' or stripped in ("null", "true", "false"):
        return value.encode()
    raise _InputError(f"config {value!r} is neither a readable file nor inline JSON")


def add_arguments_check_config(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="JSON text, or a file holding it")


def run_check_config(args: argparse.Namespace) -> int:
    try:
        parsed = parse_config(_read_config(args.config))
    except (ConfigError, _InputError) as exc:
        print(exc, file=sys.stderr)
        return 1
    for warning in parsed.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    c = parsed.config
    print(f"ok: realIPToHeader={c.real_ip_header} enableOnPathSuffix={list(c.path_suffixes)} "
          f"ensureStreamUsage={c.ensure_stream_usage} maxResponseBodyBytes={c.max_response_body_bytes} "
          f"maxEventBytes={c.max_event_bytes}")
    return 0


def add_arguments_replay(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("stream", help="a recorded SSE response body (file), or - for stdin")
    parser.add_argument("--config", help="plugin configuration: JSON text or file")
    parser.add_argument("--path", default="/v1/chat/completions", help="request path (default %(default)s)")
    parser.add_argument("--chunk-bytes", type=int, default=0, help="cut the body into callbacks of this size (default: one per event)")
    parser.add_argument("--interval-ms", type=int, default=20, help="time between callbacks (default %(default)s)")


def replay(body: bytes, config: bytes | None, path: str, chunk_bytes: int, interval_ms: int) -> bytes:
    """Run one recorded SSE body through the core as a gateway would, with a synthetic clock."""
    state = StreamState(parse_config(config).config)
    state.on_request_headers([(":path", path), (":method", "POST")], "127.0.0.1:1", 0, True)
    state.on_response_headers([(":status", "200"), ("content-type", "text/event-stream")], 0)
    if chunk_bytes > 0:
        chunks = [body[i : i + chunk_bytes] for i in range(0, len(body), chunk_bytes)]
    else:
        chunks = [c + b"\n\n" for c in body.split(b"\n\n") if c] or [body]
    out = []
    for i, chunk in enumerate(chunks):
        d = state.on_response_body(chunk, i == len(chunks) - 1, (i + 1) * interval_ms * _MS)
        if d.error:
            print(d.error, file=sys.stderr)
        out.append(chunk if d.body is None else d.body)
    return b"".join(out)


def run_replay(args: argparse.Namespace) -> int:
    try:
        config = _read_config(args.config)
        parse_config(config)
        body = sys.stdin.buffer.read() if args.stream == "-" else Path(args.stream).read_bytes()
    except (ConfigError, _InputError) as exc:
        print(exc, file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"error: cannot read {args.stream}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    sys.stdout.buffer.write(replay(body, config, args.path, args.chunk_bytes, args.interval_ms))
    return 0
