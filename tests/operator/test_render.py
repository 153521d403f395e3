"""Rendering: golden WasmPlugin YAML, names, every value surviving tojson -> YAML unchanged."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from usage_filter.core.config import parse_config
from usage_operator.models import PolicySpec, WasmPlugin
from usage_operator.render import RenderError, render_wasm_plugin, wasm_plugin_name

from .test_crd import SPEC_SCHEMA, _strategy

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
CASES = sorted(p.name.removesuffix(".policy.yaml") for p in GOLDEN.glob("*.policy.yaml"))
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")


def render_file(path: Path) -> str:
    doc = yaml.safe_load(path.read_text())
    rendered = render_wasm_plugin(
        doc["metadata"].get("namespace", "default"),
        doc["metadata"]["name"],
        PolicySpec.model_validate(doc.get("spec") or {}),
        gateway_namespace="higress-system",
        default_plugin_image="oci://ghcr.io/gpustack/gpustack-token-usage-plugin:0.1.0",
    )
    return yaml.safe_dump(rendered.body, sort_keys=False, allow_unicode=True, width=100)


def _check_golden(policy: Path, golden: Path) -> None:
    text = render_file(policy)
    if UPDATE:
        golden.write_text(text)
    assert golden.read_text() == text, f"UPDATE_GOLDEN=1 pytest {__file__} to accept"


@pytest.mark.parametrize("case", CASES)
def test_golden(case: str) -> None:
    _check_golden(GOLDEN / f"{case}.policy.yaml", GOLDEN / f"{case}.wasmplugin.yaml")


def test_golden_example_policy() -> None:
    _check_golden(ROOT / "examples" / "policy.yaml", GOLDEN / "example.wasmplugin.yaml")


def test_golden_outputs_are_valid_wasmplugins_with_plugin_accepted_configs() -> None:
    for path in GOLDEN.glob("*.wasmplugin.yaml"):
        plugin = WasmPlugin.model_validate(yaml.safe_load(path.read_text()))
        assert "pluginConfig" not in path.read_text()
        for config in plugin.plugin_configs():
            parse_config(json.dumps(config))


def test_gateway_wide_vs_targeted() -> None:
    wide = render_wasm_plugin("a", "b", PolicySpec(), gateway_namespace="gw", default_plugin_image="oci://x/y")
    assert wide.body["spec"]["defaultConfig"] == {}
    assert "matchRules" not in wide.body["spec"] and "defaultConfigDisable" not in wide.body["spec"]
    targeted = render_wasm_plugin(
        "a",
        "b",
        PolicySpec.model_validate({"targets": {"ingresses": ["r"], "domains": ["d.example.com"], "services": ["s"]}}),
        gateway_namespace="gw",
        default_plugin_image="oci://x/y",
    )
    spec = targeted.body["spec"]
    assert spec["defaultConfigDisable"] is True and "defaultConfig" not in spec
    assert [sorted(k for k in r if k != "config") for r in spec["matchRules"]] == [["ingress"], ["domain"], ["service"]]
    assert targeted.body["metadata"]["namespace"] == "gw"


def test_hash_changes_with_the_spec_only() -> None:
    def h(spec: dict[str, Any], name: str = "b") -> str:
        return render_wasm_plugin("a", name, PolicySpec.model_validate(spec), gateway_namespace="gw", default_plugin_image="oci://x/y").applied_hash

    assert h({}) == h({})
    assert h({}) != h({"priority": 1})
    assert h({"maxEventBytes": 2048}) != h({"maxEventBytes": 4096})


def test_render_refuses_what_the_plugin_refuses() -> None:
    spec = PolicySpec.model_construct(**PolicySpec().__dict__)
    object.__setattr__(spec, "max_event_bytes", 1)  # bypass the model's own check
    with pytest.raises(RenderError, match="maxEventBytes"):
        render_wasm_plugin("a", "b", spec, gateway_namespace="gw", default_plugin_image="oci://x/y")


_label = st.from_regex(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", fullmatch=True)
_subdomain = st.lists(_label, min_size=1, max_size=5).map(".".join).filter(lambda s: len(s) <= 253)


@given(_label, _subdomain, _label, _subdomain)
def test_names_are_dns1123_short_and_one_to_one(ns1: str, n1: str, ns2: str, n2: str) -> None:
    a, b = wasm_plugin_name(ns1, n1), wasm_plugin_name(ns2, n2)
    for name in (a, b):
        assert len(name) <= 63 and DNS1123_SUBDOMAIN.match(name), name
    if (ns1, n1) != (ns2, n2):
        assert a != b


@settings(max_examples=200, deadline=None)
@given(_strategy(SPEC_SCHEMA, False))
def test_values_survive_tojson_and_yaml(raw: dict[str, Any]) -> None:
    try:
        spec = PolicySpec.model_validate(raw)
    except ValueError:
        return  # CEL-level refusals (alias mismatch, reserved names): covered in test_crd
    body = render_wasm_plugin("ns", "name", spec, gateway_namespace="gw", default_plugin_image="oci://d/e:1").body
    configs = [r["config"] for r in body["spec"].get("matchRules", [])] or [body["spec"]["defaultConfig"]]
    for config in configs:
        assert config == spec.plugin_config()
    assert body["spec"]["url"] == (spec.plugin_image or "oci://d/e:1")
    assert body["spec"]["priority"] == spec.priority
    targets = {k: v for r in body["spec"].get("matchRules", []) for k, v in r.items() if k != "config"}
    assert targets.get("ingress", []) == spec.targets.ingresses
    assert targets.get("domain", []) == spec.targets.domains
    assert targets.get("service", []) == spec.targets.services


@pytest.mark.parametrize(
    "header",
    ["X-\U0001f600-ip", "x\\ud800\\udc00", "\\\U0001f600", "plain"],
)
def test_characters_beyond_the_bmp_and_backslashes_round_trip(header: str) -> None:
    from usage_operator.render import _json_for_yaml

    text = _json_for_yaml({"h": header}, sort_keys=True)
    assert yaml.safe_load(text) == {"h": header}
    assert yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)) == {"h": header}
