"""`tokenusage render POLICY.yaml` and `tokenusage operator` (rows in tokenusage.cli.SUBCOMMANDS)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from .models import POLICY_API_VERSION, POLICY_KIND, OperatorSettings, PolicySpec, spec_errors
from .render import RenderError, render_wasm_plugin

__all__ = ["add_arguments_operator", "add_arguments_render", "run_operator", "run_render"]


# --- render ---


def add_arguments_render(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("policy", type=Path, help="TokenUsagePolicy YAML file ('-': stdin)")
    parser.add_argument(
        "--gateway-namespace",
        default=None,
        help="namespace the WasmPlugin goes to (default: the operator setting, higress-system)",
    )
    parser.add_argument(
        "--default-plugin-image",
        default=None,
        help="plugin image when the policy names none (default: the operator setting)",
    )


def _policy_documents(text: str) -> list[dict[str, Any]]:
    docs = [d for d in yaml.safe_load_all(text) if d is not None]
    policies = [d for d in docs if isinstance(d, dict) and d.get("kind") == POLICY_KIND]
    if not policies:
        raise ValueError(f"no {POLICY_KIND} ({POLICY_API_VERSION}) document found")
    return policies


def run_render(args: argparse.Namespace) -> int:
    settings = OperatorSettings()
    try:
        text = sys.stdin.read() if str(args.policy) == "-" else args.policy.read_text()
    except OSError as exc:
        print(f"error: cannot read {args.policy}: {exc.strerror or exc}", file=sys.stderr)
        return 2
    try:
        policies = _policy_documents(text)
    except (ValueError, yaml.YAMLError) as exc:
        print(f"error: {args.policy}: {exc}", file=sys.stderr)
        return 2
    out = []
    for doc in policies:
        meta = doc.get("metadata") or {}
        namespace, name = meta.get("namespace") or "default", meta.get("name")
        if not name:
            print(f"error: {args.policy}: metadata.name is required", file=sys.stderr)
            return 2
        try:
            spec = PolicySpec.model_validate(doc.get("spec") or {})
            rendered = render_wasm_plugin(
                namespace,
                name,
                spec,
                gateway_namespace=args.gateway_namespace or settings.gateway_namespace,
                default_plugin_image=args.default_plugin_image or settings.default_plugin_image,
            )
        except ValidationError as exc:
            for line in spec_errors(exc):
                print(f"error: {namespace}/{name}: {line}", file=sys.stderr)
            return 1
        except RenderError as exc:
            print(f"error: {namespace}/{name}: {exc}", file=sys.stderr)
            return 1
        out.append(rendered.body)
    sys.stdout.write(yaml.safe_dump_all(out, sort_keys=False, allow_unicode=True, width=100))
    return 0


# --- operator ---


def add_arguments_operator(parser: argparse.ArgumentParser) -> None:
    parser.description = (
        "Run the operator (kopf). Settings come from TOKENUSAGE_OPERATOR_* environment "
        "variables; these flags override them."
    )
    parser.add_argument("--gateway-namespace", help="where WasmPlugins are written")
    parser.add_argument(
        "--namespace",
        action="append",
        dest="watched_namespaces",
        help="watch policies in this namespace (repeat); default: all namespaces",
    )
    parser.add_argument("--default-plugin-image", help="plugin image for policies naming none")
    parser.add_argument("--metrics-port", type=int, help="Prometheus port (0: off)")
    parser.add_argument("--liveness-port", type=int, help="liveness endpoint port (0: off)")
    parser.add_argument("--log-format", choices=["json", "text"])
    parser.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    parser.add_argument("--kubeconfig", help="kubeconfig path (default: $KUBECONFIG, in-cluster)")
    parser.add_argument("--peering", action="store_true", default=None, help="use kopf peering")


def _settings_from(args: argparse.Namespace) -> OperatorSettings:
    overrides = {
        key: value
        for key, value in vars(args).items()
        if value is not None and key in OperatorSettings.model_fields
    }
    return OperatorSettings(**overrides)


def _configure_logging(settings: OperatorSettings) -> None:
    import kopf

    kopf.configure(
        log_format=kopf.LogFormat.JSON if settings.log_format == "json" else kopf.LogFormat.FULL,
        verbose=settings.log_level == "DEBUG",
        log_refkey="object",
    )
    logging.getLogger().setLevel(settings.log_level)
    for noisy in ("urllib3", "kubernetes.client.rest", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def run_operator(args: argparse.Namespace) -> int:
    import kopf

    from . import handlers

    settings = _settings_from(args)
    _configure_logging(settings)
    handlers.configure(settings)
    namespaces: list[str] = []
    if settings.watched_namespaces:
        # kopf watches every resource in the same namespaces: add the gateway's for WasmPlugins.
        namespaces = sorted({*settings.watched_namespaces, settings.gateway_namespace})
    liveness = (
        f"http://{settings.liveness_host}:{settings.liveness_port}/healthz"
        if settings.liveness_port
        else None
    )
    kopf.run(
        standalone=not settings.peering,
        clusterwide=not namespaces,
        namespaces=namespaces,
        liveness_endpoint=liveness,
    )
    return 0
