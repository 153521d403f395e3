"""PolicySpec, status and settings models: the plugin's facts, the checks, the defaults."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from usage_filter.core.config import FIELDS, REAL_IP_ALIAS
from usage_operator.models import (
    DEFAULT_PLUGIN_IMAGE,
    PLUGIN_CONFIG_KEYS,
    FailStrategy,
    OperatorSettings,
    Phase,
    PolicySpec,
    image_digest,
)

DIGEST = "0123456789abcdef" * 4


def test_every_plugin_key_is_a_spec_field() -> None:
    aliases = {f.alias for f in PolicySpec.model_fields.values()}
    assert set(PLUGIN_CONFIG_KEYS) == {f.key for f in FIELDS} | {REAL_IP_ALIAS}
    assert set(PLUGIN_CONFIG_KEYS) <= aliases


def test_bounds_and_descriptions_come_from_the_plugin() -> None:
    for field in FIELDS:
        info = next(f for f in PolicySpec.model_fields.values() if f.alias == field.key)
        assert info.description is not None and info.description.startswith(field.description)
        if field.minimum is not None:
            with pytest.raises(ValidationError):
                PolicySpec.model_validate({field.key: field.minimum - 1})
            with pytest.raises(ValidationError):
                PolicySpec.model_validate({field.key: field.maximum + 1})
            PolicySpec.model_validate({field.key: field.maximum})


def test_defaults() -> None:
    spec = PolicySpec.model_validate({})
    assert spec.priority == 910
    assert spec.phase is Phase.UNSPECIFIED_PHASE
    assert spec.fail_strategy is FailStrategy.FAIL_OPEN
    assert spec.targets.gateway_wide
    assert spec.plugin_config() == {}  # the plugin applies its own defaults


def test_alias_folds_into_real_ip_to_header() -> None:
    assert PolicySpec.model_validate({"realIPHeader": "X-Forwarded-For"}).plugin_config() == {
        "realIPToHeader": "X-Forwarded-For"
    }
    same = PolicySpec.model_validate({"realIPHeader": "x-real-ip", "realIPToHeader": "X-Real-IP"})
    assert same.plugin_config() == {"realIPToHeader": "X-Real-IP"}


@pytest.mark.parametrize(
    "spec, field",
    [
        ({"realIPToHeader": "Host"}, "realIPToHeader"),
        ({"realIPToHeader": "content-length"}, "realIPToHeader"),
        ({"realIPHeader": "Transfer-Encoding"}, "realIPHeader"),
        ({"realIPToHeader": ":authority"}, "realIPToHeader"),
        ({"realIPToHeader": "x real ip"}, "realIPToHeader"),
        ({"realIPToHeader": ""}, "realIPToHeader"),
        ({"realIPToHeader": "a", "realIPHeader": "b"}, "realIPHeader"),
        ({"enableOnPathSuffix": ["/a", "/a"]}, "enableOnPathSuffix"),
        ({"enableOnPathSuffix": ["a"]}, "enableOnPathSuffix"),
        ({"enableOnPathSuffix": ["/"]}, "enableOnPathSuffix"),
        ({"enableOnPathSuffix": ["/a/"]}, "enableOnPathSuffix"),
        ({"enableOnPathSuffix": ["/a?b"]}, "enableOnPathSuffix"),
        ({"enableOnPathSuffix": ["/a#b"]}, "enableOnPathSuffix"),
        ({"enableOnPathSuffix": ["/a b"]}, "enableOnPathSuffix"),
        ({"ensureStreamUsage": "yes"}, "ensureStreamUsage"),
        ({"maxEventBytes": 1023}, "maxEventBytes"),
        ({"pluginImage": "ghcr.io/x/y:1"}, "pluginImage"),
        ({"pluginImage": "oci://x/y@sha256:abc"}, "pluginImage"),
        ({"pluginImage": "ftp://x/y"}, "pluginImage"),
        ({"imagePullPolicy": "Never"}, "imagePullPolicy"),
        ({"imagePullSecret": "Bad_Name"}, "imagePullSecret"),
        ({"priority": 2**31}, "priority"),
        ({"phase": "LATE"}, "phase"),
        ({"failStrategy": "FAIL_SOMETIMES"}, "failStrategy"),
        ({"targets": {"domains": ["A.example.com"]}}, "targets"),
        ({"targets": {"domains": ["a.example.com", "a.example.com"]}}, "targets"),
        ({"targets": {"routes": ["x"]}}, "targets"),
        ({"unknownKey": 1}, "unknownKey"),
    ],
)
def test_invalid_specs_name_the_field(spec: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        PolicySpec.model_validate(spec)
    assert field in str(info.value)


@pytest.mark.parametrize(
    "url, digest",
    [
        (f"oci://ghcr.io/a/b:1@sha256:{DIGEST}", DIGEST),
        (f"oci://ghcr.io/a/b@sha256:{DIGEST}", DIGEST),
        ("oci://ghcr.io/a/b:1", None),
        ("https://example.com/plugin.wasm", None),
        ("file:///opt/plugins/plugin.wasm", None),
    ],
)
def test_image_urls_and_digest(url: str, digest: str | None) -> None:
    assert PolicySpec.model_validate({"pluginImage": url}).plugin_image == url
    assert image_digest(url) == digest


def test_settings_from_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert OperatorSettings().gateway_namespace == "higress-system"
    assert OperatorSettings().default_plugin_image == DEFAULT_PLUGIN_IMAGE
    monkeypatch.setenv("TOKENUSAGE_OPERATOR_GATEWAY_NAMESPACE", "gw")
    monkeypatch.setenv("TOKENUSAGE_OPERATOR_WATCHED_NAMESPACES", "a, b")
    settings = OperatorSettings()
    assert settings.gateway_namespace == "gw"
    assert settings.watched_namespaces == ["a", "b"]


def test_every_setting_has_a_docstring() -> None:
    import ast
    import inspect

    from usage_operator.models import settings as module

    tree = ast.parse(inspect.getsource(module))
    cls = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "OperatorSettings")
    documented = set()
    for stmt, following in zip(cls.body, cls.body[1:]):
        if isinstance(stmt, ast.AnnAssign) and isinstance(following, ast.Expr):
            documented.add(stmt.target.id)  # type: ignore[union-attr]
    assert documented == set(OperatorSettings.model_fields)
