"""Render a TokenUsagePolicy into its Higress WasmPlugin. No I/O (templates ship in the package).

Pipeline: model values -> jinja2 template (every value through `tojson`) -> `yaml.safe_load` ->
`models.WasmPlugin` validation -> the plugin's own `parse_config` on every configuration it
carries. Anything that fails raises `RenderError`: the policy cannot work as written.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any, Final

import jinja2
import yaml
from pydantic import ValidationError
from usage_filter.core.config import ConfigError, parse_config

from ..models import (
    ANNOTATION_APPLIED_HASH,
    ANNOTATION_POLICY,
    LABEL_MANAGED_BY,
    LABEL_POLICY_NAME,
    LABEL_POLICY_NAMESPACE,
    OPERATOR_NAME,
    WASM_API_VERSION,
    WASM_KIND,
    PolicySpec,
    WasmPlugin,
    image_digest,
)

__all__ = [
    "RenderError",
    "RenderedPlugin",
    "label_value",
    "render_wasm_plugin",
    "spec_hash",
    "wasm_plugin_name",
]

_MAX_NAME: Final = 63
_HASH_CHARS: Final = 10
_LABEL_VALUE_RE: Final = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")


_SAFE_LOADER: Final = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class RenderError(ValueError):
    """The policy cannot be rendered into a WasmPlugin the gateway would accept."""


@dataclass(frozen=True)
class RenderedPlugin:
    """A validated WasmPlugin body and the hash of its spec (what `appliedHash` records)."""

    body: dict[str, Any]
    applied_hash: str

    @property
    def name(self) -> str:
        return str(self.body["metadata"]["name"])

    @property
    def namespace(self) -> str:
        return str(self.body["metadata"]["namespace"])


def _short_hash(text: str, chars: int = _HASH_CHARS) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:chars]


def _shorten(text: str, seed: str) -> str:
    """`text` when it fits in 63 characters, else a prefix plus a hash of `seed`."""
    if len(text) <= _MAX_NAME:
        return text
    prefix = text[: _MAX_NAME - _HASH_CHARS - 1].rstrip(".-_")
    return f"{prefix}-{_short_hash(seed)}"


def wasm_plugin_name(policy_namespace: str, policy_name: str) -> str:
    """`<namespace>.<name>` (a namespace has no dots, so this is one-to-one), shortened with a
    hash of both when longer than 63 characters. Always a DNS-1123 subdomain."""
    return _shorten(f"{policy_namespace}.{policy_name}", f"{policy_namespace}/{policy_name}")


def label_value(value: str) -> str:
    """A label value for `value` (<= 63 characters, hashed suffix when longer)."""
    result = _shorten(value, value)
    assert _LABEL_VALUE_RE.match(result), result
    return result


def spec_hash(spec: dict[str, Any]) -> str:
    """Hash of a WasmPlugin spec, independent of key order: 16 hex characters of sha256."""
    canonical = json.dumps(spec, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
    return _short_hash(canonical, 16)


@cache
def _environment() -> jinja2.Environment:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("usage_operator.render", "templates"),
        undefined=jinja2.StrictUndefined,
        autoescape=False,
        keep_trailing_newline=True,
    )
    environment.policies["json.dumps_function"] = _json_for_yaml
    return environment


# In JSON output, an escaped backslash or a surrogate-pair escape (a character beyond U+FFFF).
_ESCAPE_RE: Final = re.compile(r"\\\\|\\u(d[89ab][0-9a-f]{2})\\u(d[c-f][0-9a-f]{2})")


def _yaml_escape(match: re.Match[str]) -> str:
    if match.group(1) is None:
        return match.group(0)  # an escaped backslash: keep, and stay aligned
    high, low = int(match.group(1), 16), int(match.group(2), 16)
    return f"\\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08x}"


def _json_for_yaml(value: Any, **kwargs: Any) -> str:
    """json.dumps for `tojson` whose output is read as YAML: YAML has no surrogate-pair escapes
    (each half would become a character of its own), so write those as one \\U escape."""
    return _ESCAPE_RE.sub(_yaml_escape, json.dumps(value, **kwargs))


def _match_rules(spec: PolicySpec) -> list[dict[str, Any]]:
    # One rule per kind of target: Higress matches a rule's ingress, domain and service lists
    # separately, and a rule with none of them is an error.
    rules = []
    for key, values in (
        ("ingress", spec.targets.ingresses),
        ("domain", spec.targets.domains),
        ("service", spec.targets.services),
    ):
        if values:
            rules.append({"key": key, "targets": list(values)})
    return rules


def render_wasm_plugin(
    policy_namespace: str,
    policy_name: str,
    spec: PolicySpec,
    *,
    gateway_namespace: str,
    default_plugin_image: str,
) -> RenderedPlugin:
    """The WasmPlugin for one policy, validated, with its spec hash in an annotation."""
    config = spec.plugin_config()
    try:
        parse_config(json.dumps(config))
    except ConfigError as exc:
        raise RenderError(str(exc)) from None

    url = spec.plugin_image or default_plugin_image
    values = {
        "api_version": WASM_API_VERSION,
        "kind": WASM_KIND,
        "name": wasm_plugin_name(policy_namespace, policy_name),
        "namespace": gateway_namespace,
        "labels": {
            LABEL_MANAGED_BY: OPERATOR_NAME,
            LABEL_POLICY_NAMESPACE: label_value(policy_namespace),
            LABEL_POLICY_NAME: label_value(policy_name),
        },
        "annotations": {ANNOTATION_POLICY: f"{policy_namespace}/{policy_name}"},
        "url": url,
        "sha256": image_digest(url),
        "image_pull_policy": spec.image_pull_policy.value if spec.image_pull_policy else None,
        "image_pull_secret": spec.image_pull_secret,
        "phase": spec.phase.value,
        "priority": spec.priority,
        "fail_strategy": spec.fail_strategy.value,
        "match_rules": _match_rules(spec),
        "config": config,
    }
    text = _environment().get_template("wasmplugin.yaml.j2").render(**values)
    # yaml.safe_load, with libyaml's loader when PyYAML has it (same safe subset, faster)
    body = yaml.load(text, Loader=_SAFE_LOADER)
    try:
        plugin = WasmPlugin.model_validate(body)
    except ValidationError as exc:
        raise RenderError(f"rendered WasmPlugin is invalid: {exc}") from None
    for plugin_config in plugin.plugin_configs():
        try:
            parse_config(json.dumps(plugin_config))
        except ConfigError as exc:  # the template changed something it must not
            raise RenderError(f"rendered plugin config is refused by the plugin: {exc}") from None
    applied_hash = spec_hash(body["spec"])
    body["metadata"]["annotations"][ANNOTATION_APPLIED_HASH] = applied_hash
    return RenderedPlugin(body=body, applied_hash=applied_hash)
