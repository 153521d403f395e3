"""The operator's Helm chart, with real Helm (helm-python-sdk: Helm's Go SDK) and offline schemas.

lint, render every ci/*-values.yaml, validate built-in kinds against Kubernetes' OpenAPI schemas
(kubernetes-validate, strict), values.schema.json in step with values.yaml, RBAC equal to what the
operator declares it calls, env equal to what the operator's settings accept.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import helm_python as helm
import kubernetes_validate
import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "charts" / "gpustack-token-usage-operator"
CI_VALUES = sorted((CHART / "ci").glob("*-values.yaml"))
# The chart's kubeVersion floor (Chart.yaml) and the newest schemas kubernetes-validate ships.
_FLOOR = re.match(r">=(\d+\.\d+\.\d+)", yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"])
assert _FLOOR is not None
KUBE_VERSIONS = (_FLOOR.group(1), "1.37.0")
RELEASE, NAMESPACE = "tu", "tu-system"


@pytest.fixture(scope="module")
def chart() -> Iterator[helm.Chart]:
    with helm.Chart.load(CHART) as loaded:
        yield loaded


def _render(chart: helm.Chart, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    manifests = chart.render(values or {}, name=RELEASE, namespace=NAMESPACE, is_install=True)
    docs: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if path.endswith("NOTES.txt"):
            continue
        docs.extend(d for d in yaml.safe_load_all(text) if d)
    return docs


def _values(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def _kinds(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d["kind"] == kind]


def _deployment(docs: list[dict[str, Any]]) -> dict[str, Any]:
    (deployment,) = _kinds(docs, "Deployment")
    return deployment


# -- lint and render ------------------------------------------------------------------------


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_lint_strict_has_no_warnings(values_file: Path) -> None:
    report = helm.lint(CHART, _values(values_file), strict=True, namespace=NAMESPACE)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_rendered_builtin_kinds_validate_offline(chart: helm.Chart, values_file: Path) -> None:
    docs = _render(chart, _values(values_file))
    assert _kinds(docs, "Deployment"), "every scenario deploys the operator"
    for doc in docs:
        if doc["apiVersion"].startswith("monitoring.coreos.com/"):
            continue  # not a built-in kind: checked by test_service_monitor_selects_the_metrics_service
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(doc, version, strict=True)


def test_crds_validate_and_are_the_generated_ones(chart: helm.Chart, tmp_path: Path) -> None:
    top_level = {p.name: p.read_bytes() for p in sorted((REPO / "crds").glob("*.yaml"))}
    assert top_level, "the operator's generated CRDs live in crds/"
    in_chart = {p.name: p.read_bytes() for p in sorted((CHART / "crds").glob("*.yaml"))}
    assert in_chart == top_level  # one source of truth: charts/.../crds -> ../../crds
    for name, raw in top_level.items():
        for version in KUBE_VERSIONS:
            kubernetes_validate.validate(yaml.safe_load(raw), version, strict=True)
    # The packaged chart carries the same bytes (Helm follows the symlink).
    archive = helm.package(CHART, destination=tmp_path)
    import tarfile

    with tarfile.open(archive) as tar:
        packaged = {
            Path(m.name).name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if "/crds/" in m.name
        }
    assert packaged == top_level


# -- values.yaml and values.schema.json -----------------------------------------------------


def _schema() -> dict[str, Any]:
    data: dict[str, Any] = json.loads((CHART / "values.schema.json").read_text())
    return data


def _schema_sections(schema: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """(dotted key, schema) for every key the schema enumerates."""
    for key, sub in schema.get("properties", {}).items():
        dotted = f"{prefix}{key}"
        yield dotted, sub
        if sub.get("additionalProperties") is False and "properties" in sub and key != "resources":
            yield from _schema_sections(sub, dotted + ".")


def _value_keys(values: dict[str, Any], schema: dict[str, Any], prefix: str = "") -> Iterator[str]:
    for key, value in values.items():
        dotted = f"{prefix}{key}"
        yield dotted
        sub = schema.get("properties", {}).get(key, {})
        if isinstance(value, dict) and sub.get("additionalProperties") is False and key != "resources":
            yield from _value_keys(value, sub, dotted + ".")


def test_schema_and_values_have_the_same_keys() -> None:
    schema = _schema()
    values = _values(CHART / "values.yaml")
    schema_keys = {k for k, _ in _schema_sections(schema)}
    assert set(_value_keys(values, schema)) == schema_keys
    # Strict at every level it enumerates: unknown keys are refused, not ignored.
    assert schema["additionalProperties"] is False
    for key, sub in _schema_sections(schema):
        if "properties" in sub:
            assert sub.get("additionalProperties") is False, key
        assert sub.get("description"), f"{key} has no description in values.schema.json"


def test_every_values_key_has_a_comment() -> None:
    lines = (CHART / "values.yaml").read_text().splitlines()
    schema_keys = {k for k, _ in _schema_sections(_schema())}
    path: list[tuple[int, str]] = []  # (indent, key) of the enclosing mappings
    documented: set[str] = set()
    for number, line in enumerate(lines):
        match = re.match(r"^( *)([A-Za-z][\w]*):", line)
        if not match:
            continue
        indent = len(match.group(1))
        path = [(i, k) for i, k in path if i < indent] + [(indent, match.group(2))]
        dotted = ".".join(k for _, k in path)
        previous = lines[number - 1].strip() if number else ""
        if previous.startswith("# --"):
            documented.add(dotted)
    assert schema_keys - documented == set()


def test_defaults_validate(chart: helm.Chart) -> None:
    chart.validate_schema({})
    for values_file in CI_VALUES:
        chart.validate_schema(_values(values_file))


@pytest.mark.parametrize(
    "values",
    [
        {"unknownKey": 1},
        {"operator": {"watchedNamespaces": ["a"]}},  # typo of watchNamespaces
        {"operator": {"gatewayNamespace": "Higress_System"}},
        {"operator": {"logLevel": "TRACE"}},
        {"operator": {"workers": 0}},
        {"operator": {"defaultPluginImage": "ghcr.io/x/y:1"}},  # needs a scheme
        {"image": {"digest": "sha256:abc"}},
        {"image": {"pullPolicy": "Sometimes"}},
        {"replicaCount": "2"},
        {"metrics": {"port": 70000}},
        {"metrics": {"serviceMonitor": {"interval": "often"}}},
        {"resources": {"request": {"cpu": "1"}}},  # typo of requests
    ],
    ids=repr,
)
def test_schema_rejects_bad_values(chart: helm.Chart, values: dict[str, Any]) -> None:
    with pytest.raises(helm.HelmError):
        chart.validate_schema(values)


def test_replicas_without_peering_fail_to_render(chart: helm.Chart) -> None:
    with pytest.raises(helm.HelmError, match="peering"):
        _render(chart, {"replicaCount": 2})


# -- the Deployment -------------------------------------------------------------------------


def test_pod_is_locked_down(chart: helm.Chart) -> None:
    spec = _deployment(_render(chart))["spec"]["template"]["spec"]
    assert spec["securityContext"]["runAsNonRoot"] is True
    assert spec["securityContext"]["runAsUser"] != 0
    assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    (container,) = spec["containers"]
    sc = container["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True
    assert sc["allowPrivilegeEscalation"] is False
    assert sc["capabilities"] == {"drop": ["ALL"]}
    assert container["resources"]["requests"] and container["resources"]["limits"]
    probe = container["livenessProbe"]["httpGet"]
    assert probe["path"] == "/healthz"
    port = next(p for p in container["ports"] if p["name"] == probe["port"])
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["TOKENUSAGE_OPERATOR_LIVENESS_PORT"] == str(port["containerPort"])
    assert container["image"] == "ghcr.io/gpustack/gpustack-token-usage-operator:0.1.0"


def test_digest_pins_the_image(chart: helm.Chart) -> None:
    digest = "sha256:" + "2" * 64
    (container,) = _deployment(_render(chart, {"image": {"digest": digest, "tag": "9.9"}}))["spec"]["template"]["spec"][
        "containers"
    ]
    assert container["image"] == f"ghcr.io/gpustack/gpustack-token-usage-operator@{digest}"


def _settings_class() -> Any:
    try:
        from usage_operator.models.settings import OperatorSettings
    except ImportError:  # pragma: no cover - the operator package is not importable
        pytest.fail("usage_operator.models.settings.OperatorSettings is the contract for the chart's env")
    return OperatorSettings


@pytest.mark.parametrize("values_file", CI_VALUES, ids=lambda p: p.name)
def test_env_is_what_the_operator_settings_accept(
    chart: helm.Chart, values_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_cls = _settings_class()
    values = _values(values_file)
    (container,) = _deployment(_render(chart, values))["spec"]["template"]["spec"]["containers"]
    prefix = "TOKENUSAGE_OPERATOR_"
    fields = set(settings_cls.model_fields)
    for item in container["env"]:
        name = item["name"]
        if name.startswith(prefix):
            assert name[len(prefix) :].lower() in fields, f"{name} is not an operator setting"
            monkeypatch.setenv(name, item["value"])
    settings = settings_cls()
    operator_values = values.get("operator", {})
    assert settings.gateway_namespace == operator_values.get("gatewayNamespace", "higress-system")
    assert list(settings.watched_namespaces) == operator_values.get("watchNamespaces", [])
    assert settings.peering is operator_values.get("peering", False)
    metrics_on = values.get("metrics", {}).get("enabled", True)
    assert settings.metrics_port == (9090 if metrics_on else 0)


# -- Services -------------------------------------------------------------------------------


def test_metrics_service_selects_the_pod_by_selector_labels_only(chart: helm.Chart) -> None:
    docs = _render(chart)
    (service,) = _kinds(docs, "Service")
    deployment = _deployment(docs)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert "app.kubernetes.io/version" not in service["spec"]["selector"]  # selectors must survive upgrades
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    assert service["spec"]["ports"][0]["targetPort"] in {p["name"] for p in container["ports"]}
    assert _kinds(_render(chart, {"metrics": {"enabled": False}}), "Service") == []


def test_service_monitor_selects_the_metrics_service(chart: helm.Chart) -> None:
    docs = _render(chart, _values(CHART / "ci" / "monitoring-values.yaml"))
    (monitor,) = _kinds(docs, "ServiceMonitor")
    (service,) = _kinds(docs, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] == service["spec"]["ports"][0]["name"]
    assert monitor["metadata"]["labels"]["release"] == "prometheus"
    assert _kinds(_render(chart), "ServiceMonitor") == []


# -- RBAC: exactly what the operator declares --------------------------------------------------

# Used only if the operator package does not declare its calls (usage_operator.kube.RBAC_RULES).
_OPERATOR_MD_RULES = (
    ("gateway.gpustack.ai", "tokenusagepolicies", ("get", "list", "watch", "patch"), "watched-namespaces", False),
    ("gateway.gpustack.ai", "tokenusagepolicies/status", ("get", "patch"), "watched-namespaces", False),
    ("extensions.higress.io", "wasmplugins", ("list", "watch"), "watched-and-gateway-namespaces", False),
    ("extensions.higress.io", "wasmplugins", ("get", "create", "update", "delete"), "gateway-namespace", False),
    ("", "events", ("create",), "watched-namespaces", False),
    ("kopf.dev", "kopfpeerings", ("get", "list", "watch", "patch"), "watched-namespaces", True),
    ("kopf.dev", "clusterkopfpeerings", ("get", "list", "watch", "patch"), "watched-namespaces", True),
)
_CLUSTER_SCOPED = {("kopf.dev", "clusterkopfpeerings")}
_ALL = "*"  # "every namespace" (a ClusterRole)

Grant = tuple[str, str, str, str]  # (namespace or *, apiGroup, resource, verb)


def _declared_rules() -> list[tuple[str, str, tuple[str, ...], str, bool]]:
    try:
        from usage_operator.kube import RBAC_RULES
    except ImportError:
        return list(_OPERATOR_MD_RULES)
    return [
        (r.api_group, res, tuple(r.verbs), r.scope, r.only_with_peering) for r in RBAC_RULES for res in r.resources
    ]


def _expected_grants(watch: list[str], gateway: str, peering: bool) -> set[Grant]:
    cluster_wide = not watch
    grants: set[Grant] = set()
    for group, resource, verbs, scope, only_with_peering in _declared_rules():
        if only_with_peering and not peering:
            continue
        cluster_scoped = (group, resource) in _CLUSTER_SCOPED
        # kopf peers through ClusterKopfPeerings when cluster-wide, KopfPeerings per namespace otherwise.
        if only_with_peering and cluster_scoped != cluster_wide:
            continue
        if scope == "cluster":
            namespaces = {_ALL}
        elif scope == "gateway-namespace":
            namespaces = {gateway}
        elif cluster_wide:
            namespaces = {_ALL}
        else:
            # kopf watches every handled kind in one namespace set: the listed namespaces plus the
            # gateway's (usage_operator.cli.run_operator), so both watch scopes cover the gateway too.
            namespaces = {*watch, gateway}
        grants |= {(ns, group, resource, verb) for ns in namespaces for verb in verbs}
    return grants


def _rendered_grants(docs: list[dict[str, Any]], namespace: str) -> set[Grant]:
    """What the rendered RBAC lets the release's ServiceAccount do, as (namespace, group, resource, verb)."""
    roles = {(d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in docs}
    grants: set[Grant] = set()
    for binding in docs:
        if binding["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subjects = binding["subjects"]
        assert subjects == [{"kind": "ServiceAccount", "name": subjects[0]["name"], "namespace": namespace}]
        ref = binding["roleRef"]
        role_ns = "" if ref["kind"] == "ClusterRole" else binding["metadata"]["namespace"]
        role = roles[(ref["kind"], role_ns, ref["name"])]
        where = _ALL if binding["kind"] == "ClusterRoleBinding" else binding["metadata"]["namespace"]
        for rule in role["rules"]:
            assert "*" not in rule["verbs"] and "*" not in rule["resources"] and "*" not in rule["apiGroups"]
            assert not rule.get("resourceNames") and not rule.get("nonResourceURLs")
            for group in rule["apiGroups"]:
                for resource in rule["resources"]:
                    grants |= {(where, group, resource, verb) for verb in rule["verbs"]}
    return grants


@pytest.mark.parametrize(
    ("watch", "gateway", "peering"),
    [
        ([], "higress-system", False),
        ([], "higress-system", True),
        (["team-a", "team-b"], "gateway", False),
        (["llm", "higress-system"], "higress-system", True),
    ],
    ids=["cluster-wide", "cluster-wide-peering", "namespaced", "namespaced-peering-incl-gateway"],
)
def test_rbac_grants_exactly_what_the_operator_declares(
    chart: helm.Chart, watch: list[str], gateway: str, peering: bool
) -> None:
    values = {
        "operator": {"watchNamespaces": watch, "gatewayNamespace": gateway, "peering": peering},
        "replicaCount": 2 if peering else 1,
    }
    docs = _render(chart, values)
    assert _rendered_grants(docs, NAMESPACE) == _expected_grants(watch, gateway, peering)
    # The discovery ClusterRole (kopf's CRD and namespace observers) exists in every mode; the
    # policy/WasmPlugin rules are a ClusterRole only when cluster-wide.
    assert len(_kinds(docs, "ClusterRole")) == (1 if watch else 2)


def test_rbac_can_be_left_to_the_cluster_admin(chart: helm.Chart) -> None:
    docs = _render(chart, {"rbac": {"create": False}})
    assert not [d for d in docs if d["apiVersion"].startswith("rbac.authorization.k8s.io/")]
    docs = _render(chart, {"serviceAccount": {"create": False, "name": "ops"}})
    assert _kinds(docs, "ServiceAccount") == []
    assert _deployment(docs)["spec"]["template"]["spec"]["serviceAccountName"] == "ops"
    assert {s["name"] for b in _kinds(docs, "ClusterRoleBinding") for s in b["subjects"]} == {"ops"}
