"""The real operator (`tokenusage operator`) against a real API server, driven with kubectl.

Each test gets its own policy and gateway namespaces and its own operator process watching only
them, so tests sharing the session's API server do not see each other.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml

from tests.operator.kube_api import KubeApiServer

from .operator_fixtures import OperatorProcess, get_json, operator_factory, wait_for

__all__ = ["operator_factory"]  # the fixture, imported for pytest


@pytest.fixture
def namespaces(kube_api: KubeApiServer) -> Iterator[tuple[str, str]]:
    suffix = secrets.token_hex(3)
    team, gateway = f"team-{suffix}", f"gw-{suffix}"
    for ns in (team, gateway):
        kube_api.kubectl("create", "namespace", ns)
    yield team, gateway
    for ns in (team, gateway):
        kube_api.kubectl("delete", "namespace", ns, "--wait=false", check=False)


@pytest.fixture
def running(
    kube_api: KubeApiServer,
    namespaces: tuple[str, str],
    operator_factory: Callable[..., OperatorProcess],
) -> OperatorProcess:
    team, gateway = namespaces
    return operator_factory(kube_api, [team], gateway)


def policy(name: str, namespace: str, **spec: Any) -> str:
    return yaml.safe_dump(
        {
            "apiVersion": "gateway.gpustack.ai/v1alpha1",
            "kind": "TokenUsagePolicy",
            "metadata": {"name": name, "namespace": namespace},
            "spec": spec,
        }
    )


def apply(server: KubeApiServer, manifest: str) -> None:
    server.kubectl("apply", "-f", "-", input=manifest)


def wasm_plugin(server: KubeApiServer, gateway: str, name: str) -> dict[str, Any] | None:
    return get_json(server, "wasmplugins.extensions.higress.io", "-n", gateway, name)


def ready(server: KubeApiServer, namespace: str, name: str) -> dict[str, Any]:
    body = get_json(server, "tup", "-n", namespace, name) or {}
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition["type"] == "Ready":
            return dict(condition)
    return {}


def resource_versions(server: KubeApiServer, *namespaces: str) -> dict[str, str]:
    versions = {}
    for ns in namespaces:
        listed = json.loads(
            server.kubectl("get", "tup,wasmplugins.extensions.higress.io", "-n", ns, "-o", "json").stdout
        )
        for item in listed["items"]:
            versions[f"{item['kind']}/{ns}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return versions


def test_apply_update_delete(kube_api: KubeApiServer, namespaces: tuple[str, str], running: OperatorProcess) -> None:
    team, gateway = namespaces
    started = time.monotonic()
    apply(kube_api, policy("usage", team, realIPToHeader="X-Real-IP", targets={"domains": ["llm.example.com"]}))
    plugin = wait_for(lambda: wasm_plugin(kube_api, gateway, f"{team}.usage"), 15, "the WasmPlugin")
    print(f"apply -> WasmPlugin: {time.monotonic() - started:.3f} s")
    assert plugin["spec"]["defaultConfigDisable"] is True
    assert plugin["spec"]["matchRules"] == [
        {"domain": ["llm.example.com"], "config": {"realIPToHeader": "X-Real-IP"}}
    ]
    assert plugin["metadata"]["labels"]["gateway.gpustack.ai/policy-namespace"] == team
    condition = wait_for(lambda: ready(kube_api, team, "usage").get("reason") == "Applied" and ready(kube_api, team, "usage"), 15, "Ready")
    assert condition["status"] == "True" and condition["observedGeneration"] == 1
    status = get_json(kube_api, "tup", "-n", team, "usage")["status"]  # type: ignore[index]
    assert status["wasmPlugin"] == {"namespace": gateway, "name": f"{team}.usage"}
    assert status["appliedHash"] == plugin["metadata"]["annotations"]["gateway.gpustack.ai/applied-hash"]

    # update: new config, gateway-wide now
    apply(kube_api, policy("usage", team, maxEventBytes=4096, phase="STATS"))
    plugin = wait_for(
        lambda: (p := wasm_plugin(kube_api, gateway, f"{team}.usage")) and "defaultConfig" in p["spec"] and p,
        15,
        "the updated WasmPlugin",
    )
    assert plugin["spec"]["defaultConfig"] == {"maxEventBytes": 4096}
    assert plugin["spec"]["phase"] == "STATS"
    assert "matchRules" not in plugin["spec"]
    wait_for(lambda: ready(kube_api, team, "usage").get("observedGeneration") == 2, 15, "observedGeneration 2")

    # Events are posted (this server serves core/v1 events)
    events = json.loads(kube_api.kubectl("get", "events", "-n", team, "-o", "json").stdout)["items"]
    assert any(e.get("reason") == "Applied" and e["involvedObject"]["name"] == "usage" for e in events)

    # delete: the WasmPlugin goes, then the finalizer
    kube_api.kubectl("delete", "tup", "-n", team, "usage", "--wait=false")
    wait_for(lambda: wasm_plugin(kube_api, gateway, f"{team}.usage") is None, 15, "WasmPlugin deleted")
    wait_for(lambda: get_json(kube_api, "tup", "-n", team, "usage") is None, 15, "policy gone")


@pytest.mark.parametrize(
    "spec, expected",
    [
        ({"realIPToHeader": "Host"}, "realIPToHeader"),
        ({"realIPToHeader": "x real ip"}, "realIPToHeader"),
        ({"realIPToHeader": "X-A", "realIPHeader": "X-B"}, "realIPHeader"),
        ({"enableOnPathSuffix": ["/chat/completions", "/chat/completions"]}, "enableOnPathSuffix"),
        ({"enableOnPathSuffix": ["chat"]}, "enableOnPathSuffix"),
        ({"maxEventBytes": 10}, "maxEventBytes"),
        ({"pluginImage": "ghcr.io/x/y:1"}, "pluginImage"),
        ({"phase": "LATE"}, "phase"),
        ({"imagePullPolicy": "Never"}, "imagePullPolicy"),
        ({"targets": {"domains": ["Bad Domain"]}}, "targets.domains"),
        ({"ensureStreamUsage": "yes"}, "ensureStreamUsage"),
    ],
)
def test_invalid_policy_is_refused_at_apply(
    kube_api: KubeApiServer, kube_namespace: str, spec: dict[str, Any], expected: str
) -> None:
    result = kube_api.kubectl("apply", "-f", "-", input=policy("bad", kube_namespace, **spec), check=False)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr


def test_unknown_field_is_refused_by_kubectl(kube_api: KubeApiServer, kube_namespace: str) -> None:
    result = kube_api.kubectl("apply", "-f", "-", input=policy("typo", kube_namespace, realIpToHeader="X"), check=False)
    assert result.returncode != 0 and "realIpToHeader" in result.stderr


def test_drift_is_repaired(kube_api: KubeApiServer, namespaces: tuple[str, str], running: OperatorProcess) -> None:
    team, gateway = namespaces
    apply(kube_api, policy("usage", team, priority=500))
    name = f"{team}.usage"
    original = wait_for(lambda: wasm_plugin(kube_api, gateway, name), 15, "the WasmPlugin")
    kube_api.kubectl(
        "patch", "wasmplugins.extensions.higress.io", "-n", gateway, name, "--type=merge",
        "-p", json.dumps({"spec": {"priority": 1, "pluginConfig": {"x": 1}}}),
    )
    repaired = wait_for(
        lambda: (p := wasm_plugin(kube_api, gateway, name)) and p["spec"] == original["spec"] and p,
        15,
        "the edit to be reverted",
    )
    assert "pluginConfig" not in repaired["spec"]
    kube_api.kubectl("delete", "wasmplugins.extensions.higress.io", "-n", gateway, name)
    recreated = wait_for(lambda: wasm_plugin(kube_api, gateway, name), 15, "the WasmPlugin to come back")
    assert recreated["spec"] == original["spec"]
    assert recreated["metadata"]["uid"] != original["metadata"]["uid"]


def test_conflict_and_hand_over(kube_api: KubeApiServer, namespaces: tuple[str, str], running: OperatorProcess) -> None:
    team, gateway = namespaces
    apply(kube_api, policy("first", team, targets={"ingresses": ["ai-route"]}))
    wait_for(lambda: wasm_plugin(kube_api, gateway, f"{team}.first"), 15, "the winner's WasmPlugin")
    time.sleep(1.1)  # creationTimestamp has one-second resolution: make the order unambiguous
    apply(kube_api, policy("second", team, targets={"ingresses": ["ai-route", "other"]}))
    condition = wait_for(lambda: ready(kube_api, team, "second").get("reason") == "Conflict" and ready(kube_api, team, "second"), 15, "Conflict")
    assert condition["status"] == "False"
    assert f"{team}/first" in condition["message"]
    assert wasm_plugin(kube_api, gateway, f"{team}.second") is None
    table = kube_api.kubectl("get", "tup", "-n", team).stdout
    assert "Conflict" in table

    kube_api.kubectl("delete", "tup", "-n", team, "first")
    wait_for(lambda: wasm_plugin(kube_api, gateway, f"{team}.second"), 15, "the loser to take over")
    wait_for(lambda: ready(kube_api, team, "second").get("reason") == "Applied", 15, "Applied after hand-over")


def test_kubectl_get_tup_columns(kube_api: KubeApiServer, namespaces: tuple[str, str], running: OperatorProcess) -> None:
    team, gateway = namespaces
    apply(kube_api, policy("usage", team, phase="STATS", priority=42))
    wait_for(lambda: ready(kube_api, team, "usage").get("reason") == "Applied", 15, "Applied")
    lines = kube_api.kubectl("get", "tup", "-n", team).stdout.splitlines()
    assert lines[0].split() == ["NAME", "READY", "REASON", "PRIORITY", "PHASE", "WASMPLUGIN", "AGE"]
    assert lines[1].split()[:6] == ["usage", "True", "Applied", "42", "STATS", f"{team}.usage"]
    wide = kube_api.kubectl("get", "tokenusagepolicies", "-n", team, "-o", "wide").stdout
    assert "MESSAGE" in wide and "up to date" in wide


def test_restart_rewrites_nothing(
    kube_api: KubeApiServer,
    namespaces: tuple[str, str],
    operator_factory: Callable[..., OperatorProcess],
) -> None:
    team, gateway = namespaces
    first = operator_factory(kube_api, [team], gateway)
    apply(kube_api, "---\n".join(
        [policy(f"p{i}", team, targets={"domains": [f"d{i}.example.com"]}) for i in range(5)]
        + [policy("all", team), policy("z-loser", team, targets={"domains": ["d0.example.com"]})]
    ))
    wait_for(lambda: all(ready(kube_api, team, f"p{i}").get("reason") == "Applied" for i in range(5)), 30, "all applied")
    wait_for(lambda: ready(kube_api, team, "z-loser").get("reason") == "Conflict", 15, "loser in conflict")
    before = resource_versions(kube_api, team, gateway)
    while True:  # quiescent: kopf's last annotation patches are done
        time.sleep(2.0)
        now = resource_versions(kube_api, team, gateway)
        if now == before:
            break
        before = now
    first.stop()

    second = operator_factory(kube_api, [team], gateway)
    wait_for(lambda: second.metric_sum("tokenusage_operator_reconciles_total", trigger="resume") >= 7, 30, "resume of all 7")
    time.sleep(1.0)
    assert resource_versions(kube_api, team, gateway) == before
    assert second.writes() == 0


def test_api_server_restart_mid_run(
    kube_api_private: KubeApiServer, operator_factory: Callable[..., OperatorProcess]
) -> None:
    server = kube_api_private
    for ns in ("team", "gw"):
        server.kubectl("create", "namespace", ns)
    operator = operator_factory(server, ["team"], "gw", TOKENUSAGE_OPERATOR_RESYNC_SECONDS="3")
    apply(server, policy("before", "team"))
    wait_for(lambda: wasm_plugin(server, "gw", "team.before"), 15, "WasmPlugin before the restart")
    server.stop()
    time.sleep(1.0)  # the operator's watches and calls fail meanwhile
    server.start()
    # deleted while the operator's watches reconnect: its watch event may never arrive
    server.kubectl("delete", "wasmplugins.extensions.higress.io", "-n", "gw", "team.before")
    apply(server, policy("after", "team", priority=7, targets={"services": ["llm:80"]}))
    try:
        plugin = wait_for(lambda: wasm_plugin(server, "gw", "team.after"), 60, "WasmPlugin after the restart")
        wait_for(lambda: wasm_plugin(server, "gw", "team.before"), 30, "the lost deletion repaired")
    except AssertionError:
        print(operator.log_tail(80))
        raise
    assert plugin["spec"]["priority"] == 7
    wait_for(lambda: ready(server, "team", "after").get("reason") == "Applied", 15, "status after the restart")
    assert operator.running


def test_logs_are_structured_and_metrics_served(
    kube_api: KubeApiServer, namespaces: tuple[str, str], running: OperatorProcess
) -> None:
    team, _ = namespaces
    apply(kube_api, policy("usage", team))
    wait_for(lambda: ready(kube_api, team, "usage").get("reason") == "Applied", 15, "Applied")
    records = running.log_records()
    assert records and all("message" in r for r in records)
    assert any((r.get("object") or {}).get("name") == "usage" for r in records)
    assert running.metric_sum("tokenusage_operator_reconciles_total", trigger="create") >= 1
    assert running.metric_sum("tokenusage_operator_policies", state="Applied") == 1
    assert running.metric_sum("tokenusage_operator_reconcile_duration_seconds_count") >= 1


def test_policies_outside_watched_namespaces_are_left_alone(
    kube_api: KubeApiServer, namespaces: tuple[str, str], running: OperatorProcess, kube_namespace: str
) -> None:
    team, gateway = namespaces
    apply(kube_api, policy("elsewhere", kube_namespace))
    apply(kube_api, policy("usage", team))
    wait_for(lambda: ready(kube_api, team, "usage").get("reason") == "Applied", 15, "Applied")
    elsewhere = get_json(kube_api, "tup", "-n", kube_namespace, "elsewhere")
    assert elsewhere is not None
    assert "status" not in elsewhere and not elsewhere["metadata"].get("finalizers")
    assert wasm_plugin(kube_api, gateway, f"{kube_namespace}.elsewhere") is None
