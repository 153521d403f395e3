"""The committed CRD is the generated one, and what it accepts the model and the plugin accept.

The property test generates specs from the CRD's own schema (valid and near-miss values), checks
them the way the API server would (OpenAPI schema via jsonschema, list-type set uniqueness, the
CEL rules emulated in Python), and requires: accepted by the CRD <=> accepted by PolicySpec, and
accepted => the plugin's `parse_config` accepts both the raw plugin keys and the rendered config.
The real API server's enforcement is covered by the integration tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from usage_filter.core.config import parse_config
from usage_operator import crd
from usage_operator.models import PLUGIN_CONFIG_KEYS, PolicySpec
from usage_operator.render import render_wasm_plugin

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / crd.CRD_FILE_NAME
SPEC_SCHEMA = crd.build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]


def test_committed_crd_is_generated() -> None:
    assert CRD_PATH.read_text() == crd.crd_yaml(), "run: python -m usage_operator.crd"


def test_check_mode_reports_staleness(tmp_path: Path) -> None:
    stale = tmp_path / "crd.yaml"
    stale.write_text("old")
    assert crd.main(["--output", str(stale), "--check"]) == 1
    assert crd.main(["--output", str(stale)]) == 0
    assert crd.main(["--output", str(stale), "--check"]) == 0


def test_crd_shape() -> None:
    doc = yaml.safe_load(CRD_PATH.read_text())
    spec = doc["spec"]
    assert doc["metadata"]["name"] == "tokenusagepolicies.gateway.gpustack.ai"
    assert (spec["group"], spec["scope"], spec["names"]["shortNames"]) == (
        "gateway.gpustack.ai",
        "Namespaced",
        ["tup"],
    )
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    columns = [c["name"] for c in version["additionalPrinterColumns"] if not c.get("priority")]
    assert columns == ["Ready", "Reason", "Priority", "Phase", "WasmPlugin", "Age"]
    assert set(PLUGIN_CONFIG_KEYS) <= set(SPEC_SCHEMA["properties"])


def _is_structural(node: dict[str, Any], path: str = "spec") -> None:
    assert "type" in node, f"{path} has no type"
    for banned in ("anyOf", "oneOf", "allOf", "$ref", "additionalProperties", "title", "uniqueItems"):
        assert banned not in node, f"{path} has {banned}"
    for name, sub in (node.get("properties") or {}).items():
        _is_structural(sub, f"{path}.{name}")
    if "items" in node:
        _is_structural(node["items"], f"{path}[]")


def test_schema_is_structural() -> None:
    _is_structural(SPEC_SCHEMA)


# --- the API server's checks, emulated offline ---

_CEL: dict[str, Callable[[Any], bool]] = {
    '!(self.lowerAscii() in ["content-length", "host", "transfer-encoding"])': lambda v: v.lower()
    not in {"content-length", "host", "transfer-encoding"},
    "!has(self.realIPToHeader) || !has(self.realIPHeader) || "
    "self.realIPToHeader.lowerAscii() == self.realIPHeader.lowerAscii()": lambda v: not (
        "realIPToHeader" in v and "realIPHeader" in v
    )
    or v["realIPToHeader"].lower() == v["realIPHeader"].lower(),
}


def _cel_rules(node: dict[str, Any]) -> list[str]:
    rules = [r["rule"] for r in node.get("x-kubernetes-validations", [])]
    for sub in (node.get("properties") or {}).values():
        rules += _cel_rules(sub)
    if "items" in node:
        rules += _cel_rules(node["items"])
    return rules


def test_every_cel_rule_is_emulated() -> None:
    assert set(_cel_rules(SPEC_SCHEMA)) == set(_CEL)


def _server_accepts(node: dict[str, Any], value: Any) -> bool:
    """Schema rules the API server adds beyond JSON Schema: list-type set, CEL."""
    if node.get("x-kubernetes-list-type") == "set" and len(value) != len({json.dumps(v) for v in value}):
        return False
    if not all(_CEL[r["rule"]](value) for r in node.get("x-kubernetes-validations", [])):
        return False
    if node.get("type") == "object":
        return all(
            _server_accepts(node["properties"][k], v) for k, v in value.items() if k in node["properties"]
        )
    if node.get("type") == "array":
        return all(_server_accepts(node["items"], v) for v in value)
    return True


def crd_accepts(spec: dict[str, Any]) -> bool:
    try:
        jsonschema.validate(spec, {**SPEC_SCHEMA, "additionalProperties": False})
    except jsonschema.ValidationError:
        return False
    return _server_accepts(SPEC_SCHEMA, spec)


# --- generating specs from the schema: mostly valid, some near misses ---

_NEAR_MISS_STRINGS = st.sampled_from(
    ["", "Host", "content-length", "x real", "/", "/a/", "/a?b", "A.Example.com", "oci://x@sha256:12"]
)


def _strategy(node: dict[str, Any], noisy: bool) -> st.SearchStrategy[Any]:
    """Values for one schema node: valid ones, plus near misses when `noisy`."""
    kind = node["type"]
    if "enum" in node:
        valid: st.SearchStrategy[Any] = st.sampled_from(node["enum"])
        miss: st.SearchStrategy[Any] = st.just("bogus")
    elif kind == "string":
        pattern = node.get("pattern")
        base = st.from_regex(pattern, fullmatch=True) if pattern else st.text(max_size=20)
        limit = node.get("maxLength", 10_000)
        valid, miss = base.filter(lambda s: len(s) <= limit), _NEAR_MISS_STRINGS
    elif kind == "integer":
        low, high = node.get("minimum", -(2**31)), node.get("maximum", 2**31 - 1)
        valid, miss = st.integers(low, high), st.sampled_from([low - 1, high + 1, "1"])
    elif kind == "boolean":
        valid, miss = st.booleans(), st.just("true")
    elif kind == "array":
        valid = st.lists(_strategy(node["items"], False), max_size=4)
        miss = st.lists(_strategy(node["items"], True), min_size=1, max_size=4)
    elif kind == "object":
        valid = st.fixed_dictionaries(
            {}, optional={k: _strategy(v, False) for k, v in node["properties"].items()}
        )
        miss = st.fixed_dictionaries(
            {}, optional={k: _strategy(v, True) for k, v in node["properties"].items()}
        )
    else:
        raise AssertionError(kind)
    return (valid | miss) if noisy else valid


def _one_near_miss(node: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A valid spec with one key replaced by a near miss (so most keys are still exercised)."""
    keys = sorted(node["properties"])
    return st.tuples(_strategy(node, False), st.sampled_from(keys), st.data()).map(
        lambda t: {**t[0], t[1]: t[2].draw(_strategy(node["properties"][t[1]], True))}
    )


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(st.one_of(_strategy(SPEC_SCHEMA, False), _one_near_miss(SPEC_SCHEMA)))
def test_crd_and_model_agree_and_the_plugin_accepts(spec: dict[str, Any]) -> None:
    accepted = crd_accepts(spec)
    try:
        model = PolicySpec.model_validate(spec)
        model_accepts = True
    except ValidationError:
        model_accepts = False
    assert accepted == model_accepts, spec
    if accepted:
        parse_config({k: v for k, v in spec.items() if k in PLUGIN_CONFIG_KEYS})
        rendered = render_wasm_plugin(
            "ns", "name", model, gateway_namespace="higress-system", default_plugin_image="oci://x/y:1"
        )
        configs = [r["config"] for r in rendered.body["spec"].get("matchRules", [])]
        configs.append(rendered.body["spec"].get("defaultConfig", {}))
        for config in configs:
            parse_config(json.dumps(config))


@pytest.mark.parametrize(
    "pattern_path",
    [
        ("realIPToHeader",),
        ("enableOnPathSuffix", "items"),
        ("pluginImage",),
        ("targets", "domains", "items"),
    ],
)
def test_patterns_compile_as_re2_compatible_python_regex(pattern_path: tuple[str, ...]) -> None:
    node = SPEC_SCHEMA["properties"][pattern_path[0]]
    for step in pattern_path[1:]:
        node = node["items"] if step == "items" else node["properties"][step]
    pattern = node["pattern"]
    re.compile(pattern)
    assert not re.search(r"\(\?[=!<]|\\[dswDSW]", pattern), "keep to syntax RE2, Rust and Python share"
