"""`tokenusage gateway`: run a Proxy-Wasm module in front of one OpenAI-compatible upstream."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from usage_gateway.app import Gateway, RunningGateway, start_gateway
from usage_gateway.upstream import AiohttpTransport
from wasm_host import LogLevel, Vm, VmError

DEFAULT_LISTEN = "127.0.0.1:10000"


class StartError(Exception):
    """Refused at start; the message is one line for the operator."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--plugin", required=True, type=Path, help="the Proxy-Wasm module (.wasm)")
    parser.add_argument("--config", default="{}", help="plugin configuration: a JSON file path or inline JSON")
    parser.add_argument("--upstream", required=True, help="upstream base URL, e.g. http://127.0.0.1:8000")
    parser.add_argument("--listen", default=DEFAULT_LISTEN, help=f"HOST:PORT to listen on (default {DEFAULT_LISTEN})")
    parser.add_argument("--log-level", default="info", choices=[lvl.name.lower() for lvl in LogLevel],
                        help="lowest plugin log level shown")


def load_config(value: str) -> bytes:
    """A path to a JSON file, or inline JSON; either way it must hold a JSON object."""
    path = Path(value)
    if path.is_file():
        raw, origin = path.read_bytes(), str(path)
    elif not value.strip() or value.lstrip().startswith(("{", "[", '"')) or value.strip() in ("null", "true", "false"):
        raw, origin = value.encode(), "inline config"
    else:
        raise StartError(f"config {value!r} is neither a readable file nor inline JSON")
    try:
        parsed = json.loads(raw) if raw.strip() else None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise StartError(f"{origin} is not valid JSON: {exc}") from exc
    # Empty and null mean all defaults, as in the plugin's contract.
    if parsed is not None and not isinstance(parsed, dict):
        kind = {list: "an array", str: "a string", bool: "a boolean"}.get(type(parsed), "a number")
        raise StartError(f"{origin} must be a JSON object, not {kind}")
    return raw


def parse_listen(value: str) -> tuple[str, int]:
    host, sep, port = value.rpartition(":")
    if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
        raise StartError(f"--listen {value!r} is not HOST:PORT")
    return host.strip("[]") or "127.0.0.1", int(port)


def parse_upstream(value: str) -> str:
    if not value.startswith(("http://", "https://")) or len(value.split("://", 1)[1]) == 0:
        raise StartError(f"--upstream {value!r} is not an http(s) URL")
    return value


@dataclass(frozen=True)
class GatewayOptions:
    plugin: Path
    config: bytes
    upstream: str
    host: str
    port: int
    log_level: LogLevel = LogLevel.INFO


def load_vm(plugin: Path, config: bytes, log_level: LogLevel = LogLevel.INFO) -> Vm:
    if not plugin.is_file():
        raise StartError(f"plugin module not found: {plugin}")
    try:
        return Vm(plugin, plugin_config=config, log_level=log_level)
    except VmError as exc:
        raise StartError(f"{plugin}: {exc}") from exc


async def open_gateway(options: GatewayOptions) -> RunningGateway:
    vm = load_vm(options.plugin, options.config, options.log_level)
    gateway = Gateway(vm=vm, transport=AiohttpTransport(), upstream_url=options.upstream)
    try:
        return await start_gateway(gateway, options.host, options.port)
    except OSError as exc:
        raise StartError(f"cannot listen on {options.host}:{options.port}: {exc.strerror or exc}") from exc


async def _serve(options: GatewayOptions) -> None:
    running = await open_gateway(options)
    # Logging goes to stderr only once the gateway runs, so a refused start is one line.
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    # What the plugin said while starting (e.g. "unknown config key ... ignored") was logged
    # before the handler existed: show its warnings now.
    for message in running.gateway.vm.log_messages(LogLevel.WARN):
        print(f"plugin: {message}", file=sys.stderr, flush=True)
    print(f"gateway listening on {running.url} -> {options.upstream} (plugin {options.plugin})", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await running.stop()


def options_from(args: argparse.Namespace) -> GatewayOptions:
    host, port = parse_listen(args.listen)
    return GatewayOptions(plugin=args.plugin, config=load_config(args.config), upstream=parse_upstream(args.upstream),
                          host=host, port=port, log_level=LogLevel[args.log_level.upper()])


def run(args: argparse.Namespace) -> int:
    root = logging.getLogger()
    root.setLevel(logging.INFO)
    root.addHandler(logging.NullHandler())
    try:
        asyncio.run(_serve(options_from(args)))
    except StartError as exc:
        print(f"tokenusage gateway: error: {exc}", file=sys.stderr)
        return 2
    return 0
