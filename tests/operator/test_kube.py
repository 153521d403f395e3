"""RBAC_RULES declares every API call KubeClient makes (the Helm chart is tested against it)."""

from __future__ import annotations

import inspect

from usage_operator.kube import RBAC_RULES, KubeClient

# KubeClient method -> (API group, resource, verb) it calls. A new method must be added here,
# and its call to RBAC_RULES, or this test fails.
CALLS = {
    "get_wasm_plugin": ("extensions.higress.io", "wasmplugins", "get"),
    "create_wasm_plugin": ("extensions.higress.io", "wasmplugins", "create"),
    "replace_wasm_plugin": ("extensions.higress.io", "wasmplugins", "update"),
    "delete_wasm_plugin": ("extensions.higress.io", "wasmplugins", "delete"),
    "patch_policy_status": ("gateway.gpustack.ai", "tokenusagepolicies/status", "patch"),
    "post_event": ("", "events", "create"),
    "list_wasm_plugins": ("extensions.higress.io", "wasmplugins", "list"),
    "list_policies": ("gateway.gpustack.ai", "tokenusagepolicies", "list"),
    "policy_exists": ("gateway.gpustack.ai", "tokenusagepolicies", "get"),
}
# What kopf itself does with the handlers registered in usage_operator.handlers.
KOPF_CALLS = [
    ("gateway.gpustack.ai", "tokenusagepolicies", verb) for verb in ("list", "watch", "patch")
] + [("extensions.higress.io", "wasmplugins", verb) for verb in ("list", "watch")] + [
    # kopf's observers (seen in its debug log against the test API server)
    ("apiextensions.k8s.io", "customresourcedefinitions", "list"),
    ("apiextensions.k8s.io", "customresourcedefinitions", "watch"),
    ("", "namespaces", "list"),
    ("", "namespaces", "watch"),
]


def _allowed(group: str, resource: str, verb: str) -> bool:
    return any(
        r.api_group == group and resource in r.resources and verb in r.verbs for r in RBAC_RULES
    )


def test_every_client_method_is_declared() -> None:
    methods = {
        name for name, _ in inspect.getmembers(KubeClient, inspect.isfunction) if not name.startswith("_")
    }
    assert methods == set(CALLS)
    for call in [*CALLS.values(), *KOPF_CALLS]:
        assert _allowed(*call), call


def test_rules_grant_nothing_unused() -> None:
    used = set(CALLS.values()) | set(KOPF_CALLS) | {("gateway.gpustack.ai", "tokenusagepolicies", "get"), ("gateway.gpustack.ai", "tokenusagepolicies/status", "get")}
    for rule in RBAC_RULES:
        if rule.only_with_peering:
            continue
        for resource in rule.resources:
            for verb in rule.verbs:
                assert (rule.api_group, resource, verb) in used, (rule, resource, verb)


class _FailingCore:
    def __init__(self, status: int) -> None:
        self.status = status
        self.calls = 0

    def create_namespaced_event(self, *args: object, **kwargs: object) -> None:
        from kubernetes.client.exceptions import ApiException

        self.calls += 1
        raise ApiException(status=self.status, reason="nope")


def _client_with(core: _FailingCore) -> KubeClient:
    from kubernetes import client

    kube = KubeClient(client.ApiClient(client.Configuration()))
    kube._core = core  # type: ignore[assignment]
    return kube


INVOLVED = {"apiVersion": "gateway.gpustack.ai/v1alpha1", "kind": "TokenUsagePolicy", "namespace": "n", "name": "p", "uid": "u"}


def test_events_fail_softly_and_stop_when_not_served() -> None:
    core = _FailingCore(404)
    kube = _client_with(core)
    kube.post_event(INVOLVED, "Normal", "Applied", "ok")  # no exception
    kube.post_event(INVOLVED, "Normal", "Applied", "ok")
    assert core.calls == 1  # a server without Events is not asked again


def test_event_errors_other_than_404_are_swallowed_and_retried_next_time() -> None:
    core = _FailingCore(500)
    kube = _client_with(core)
    kube.post_event(INVOLVED, "Warning", "Conflict", "x")
    kube.post_event(INVOLVED, "Warning", "Conflict", "x")
    assert core.calls == 2


def test_kube_error_classification() -> None:
    from usage_operator.kube import KubeError

    assert KubeError(409, "").retryable and KubeError(409, "").conflict
    assert KubeError(0, "").retryable and KubeError(503, "").retryable
    assert not KubeError(403, "").retryable and not KubeError(422, "").retryable


def test_rules_render_as_rbac_policy_rules() -> None:
    rules = [r.as_policy_rule() for r in RBAC_RULES]
    assert {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]} in rules
    assert all(set(r) == {"apiGroups", "resources", "verbs"} for r in rules)
