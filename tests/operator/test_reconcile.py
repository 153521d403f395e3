"""Reconciler logic against a fake kube: writes only on change, drift, conflicts, errors, status."""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any

import pytest

from usage_operator.kube import KubeError
from usage_operator.models import OperatorSettings, Reason
from usage_operator.reconcile import PolicySnapshot, Reconciler, World
from usage_operator.render import wasm_plugin_name

from .fake_kube import FakeKube

GW = "higress-system"


class Cluster:
    """Policies as the API server would hold them, plus the fake kube and a reconciler."""

    def __init__(self, **settings: Any) -> None:
        self.kube = FakeKube()
        self.settings = OperatorSettings(**settings)
        self.reconciler = Reconciler(
            self.kube, self.settings, now=lambda: dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
        )
        self.bodies: dict[tuple[str, str], dict[str, Any]] = {}
        self._seconds = itertools.count()
        self._uids = itertools.count()

    def apply(self, namespace: str, name: str, spec: dict[str, Any], created: str | None = None) -> None:
        key = (namespace, name)
        if key in self.bodies:
            body = self.bodies[key]
            if body["spec"] != spec:
                body["metadata"]["generation"] += 1
            body["spec"] = spec
        else:
            stamp = created or f"2026-01-01T00:00:{next(self._seconds):02d}Z"
            self.bodies[key] = {
                "metadata": {
                    "namespace": namespace,
                    "name": name,
                    "uid": f"uid-{next(self._uids)}",
                    "generation": 1,
                    "creationTimestamp": stamp,
                },
                "spec": spec,
            }

    def world(self) -> World:
        policies = {}
        for key, body in self.bodies.items():
            full = dict(body, status=self.kube.statuses.get(key, {}))
            policies[key] = PolicySnapshot.from_body(full)
        return World(policies, self.kube.live(self.settings.gateway_namespace))

    def reconcile(self, namespace: str, name: str, trigger: str = "create"):  # type: ignore[no-untyped-def]
        outcome = self.reconciler.reconcile((namespace, name), self.world(), trigger)
        self.reconciler.reconcile_affected(self.world(), exclude=(namespace, name))
        return outcome

    def delete(self, namespace: str, name: str) -> None:
        self.bodies[(namespace, name)]["metadata"]["deletionTimestamp"] = "2026-01-02T00:00:00Z"
        self.reconciler.delete((namespace, name), self.world())
        del self.bodies[(namespace, name)]
        self.kube.statuses.pop((namespace, name), None)

    def ready(self, namespace: str, name: str) -> dict[str, Any]:
        conditions = self.kube.statuses[(namespace, name)]["conditions"]
        return next(c for c in conditions if c["type"] == "Ready")

    def plugin(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.kube.plugins.get((GW, wasm_plugin_name(namespace, name)))


def test_create_writes_the_wasmplugin_and_status_once() -> None:
    c = Cluster()
    c.apply("team", "p", {"realIPToHeader": "X-Real-IP"})
    outcome = c.reconcile("team", "p")
    assert outcome is not None and outcome.reason is Reason.APPLIED
    plugin = c.plugin("team", "p")
    assert plugin is not None
    assert plugin["spec"]["defaultConfig"] == {"realIPToHeader": "X-Real-IP"}
    status = c.kube.statuses[("team", "p")]
    assert status["wasmPlugin"] == {"namespace": GW, "name": "team.p"}
    assert status["observedGeneration"] == 1
    assert status["appliedHash"] == plugin["metadata"]["annotations"]["gateway.gpustack.ai/applied-hash"]
    ready = c.ready("team", "p")
    assert (ready["status"], ready["reason"], ready["observedGeneration"]) == ("True", "Applied", 1)
    assert [e[2] for e in c.kube.events] == ["Applied"]


def test_second_reconcile_and_restart_write_nothing() -> None:
    c = Cluster()
    c.apply("team", "p", {})
    c.reconcile("team", "p")
    writes = list(c.kube.writes)
    reads = c.kube.reads
    c.reconcile("team", "p", trigger="resume")
    # a fresh reconciler (operator restart) sees the same world: no write, not even a read
    c.reconciler = Reconciler(c.kube, c.settings)
    c.reconcile("team", "p", trigger="resume")
    assert c.kube.writes == writes
    assert c.kube.reads == reads


def test_update_replaces_with_resource_version() -> None:
    c = Cluster()
    c.apply("team", "p", {})
    c.reconcile("team", "p")
    c.apply("team", "p", {"priority": 100, "targets": {"domains": ["a.example.com"]}})
    c.reconcile("team", "p", trigger="update")
    plugin = c.plugin("team", "p")
    assert plugin is not None
    assert plugin["spec"]["priority"] == 100
    assert plugin["spec"]["defaultConfigDisable"] is True
    assert plugin["spec"]["matchRules"] == [{"domain": ["a.example.com"], "config": {}}]
    assert "defaultConfig" not in plugin["spec"]
    assert c.kube.wasm_writes() == [("create", "wasmplugins", "team.p"), ("update", "wasmplugins", "team.p")]
    assert c.kube.statuses[("team", "p")]["observedGeneration"] == 2


def test_drift_edit_and_delete_are_repaired() -> None:
    c = Cluster()
    c.apply("team", "p", {})
    c.reconcile("team", "p")
    key = (GW, "team.p")
    c.kube.plugins[key]["spec"]["pluginConfig"] = {"x": 1}  # someone edits it
    c.kube.plugins[key]["metadata"]["resourceVersion"] = "999"
    c.reconciler.repair("team.p", c.world())
    assert "pluginConfig" not in c.kube.plugins[key]["spec"]
    del c.kube.plugins[key]  # someone deletes it
    c.reconciler.repair("team.p", c.world())
    assert key in c.kube.plugins
    # the status did not change, so no status write and no new event
    assert [w[0] for w in c.kube.writes].count("patch") == 1
    assert len(c.kube.events) == 1


def test_orphan_is_deleted_but_only_in_watched_namespaces() -> None:
    c = Cluster(watched_namespaces=["team"])
    c.apply("team", "p", {})
    c.reconcile("team", "p")
    c.apply("other", "q", {})  # not watched: the reconciler is never called for it
    c.bodies.pop(("team", "p"))  # the policy vanished without its delete handler
    c.reconciler.repair("team.p", c.world(), orphans_only=True)
    assert c.plugin("team", "p") is None
    foreign = {"metadata": {"name": "other.q", "namespace": GW, "labels": {"app.kubernetes.io/managed-by": "tokenusage-operator"}, "annotations": {"gateway.gpustack.ai/policy": "other/q"}}, "spec": {}}
    c.kube.plugins[(GW, "other.q")] = foreign
    c.bodies.pop(("other", "q"))
    c.reconciler.repair("other.q", c.world(), orphans_only=True)
    assert (GW, "other.q") in c.kube.plugins


def test_delete_removes_the_wasmplugin_and_missing_is_fine() -> None:
    c = Cluster()
    c.apply("team", "p", {})
    c.reconcile("team", "p")
    c.kube.plugins.clear()
    c.delete("team", "p")  # already gone: not an error
    c.apply("team", "q", {})
    c.reconcile("team", "q")
    c.delete("team", "q")
    assert c.kube.plugins == {}


@pytest.mark.parametrize(
    "first, second",
    [
        ({}, {}),
        ({"targets": {"domains": ["a.example.com"]}}, {"targets": {"domains": ["b.example.com", "a.example.com"]}}),
        ({"targets": {"ingresses": ["r1"]}}, {"targets": {"ingresses": ["r1"], "services": ["s:80"]}}),
        ({"targets": {"services": ["s:80"]}}, {"targets": {"services": ["s:80"]}}),
    ],
)
def test_conflict_older_wins_and_hands_over(first: dict[str, Any], second: dict[str, Any]) -> None:
    c = Cluster()
    c.apply("a", "old", first)
    c.apply("b", "young", second)
    c.reconcile("a", "old")
    outcome = c.reconcile("b", "young")
    assert outcome is not None and outcome.reason is Reason.CONFLICT
    assert "a/old" in outcome.message
    assert c.plugin("b", "young") is None
    ready = c.ready("b", "young")
    assert (ready["status"], ready["reason"]) == ("False", "Conflict")
    assert "wasmPlugin" not in c.kube.statuses[("b", "young")]
    assert ("b/young", "Warning", "Conflict") in [e[:3] for e in c.kube.events]
    c.delete("a", "old")  # the winner goes away: the loser takes effect
    assert c.plugin("b", "young") is not None
    assert c.ready("b", "young")["reason"] == "Applied"


def test_no_conflict_between_disjoint_targets_or_targeted_and_gateway_wide() -> None:
    c = Cluster()
    c.apply("a", "d1", {"targets": {"domains": ["a.example.com"]}})
    c.apply("a", "d2", {"targets": {"domains": ["b.example.com"]}})
    c.apply("a", "all", {})
    for name in ("d1", "d2", "all"):
        outcome = c.reconcile("a", name)
        assert outcome is not None and outcome.reason is Reason.APPLIED, name


def test_same_timestamp_ties_break_on_namespace_then_name_and_demote() -> None:
    c = Cluster()
    c.apply("b", "p", {}, created="2026-01-01T00:00:00Z")
    c.reconcile("b", "p")
    assert c.plugin("b", "p") is not None
    c.apply("a", "p", {}, created="2026-01-01T00:00:00Z")  # same second, sorts first
    c.reconcile("a", "p")
    assert c.plugin("a", "p") is not None
    assert c.plugin("b", "p") is None  # demoted by reconcile_affected
    assert c.ready("b", "p")["reason"] == "Conflict"


def test_retargeting_the_winner_releases_the_loser() -> None:
    c = Cluster()
    c.apply("a", "old", {"targets": {"domains": ["x.example.com"]}})
    c.apply("a", "young", {"targets": {"domains": ["x.example.com"]}})
    c.reconcile("a", "old")
    c.reconcile("a", "young")
    assert c.ready("a", "young")["reason"] == "Conflict"
    c.apply("a", "old", {"targets": {"domains": ["y.example.com"]}})
    c.reconcile("a", "old", trigger="update")
    assert c.ready("a", "young")["reason"] == "Applied"


def test_invalid_spec_is_permanent_status_and_event_no_wasmplugin() -> None:
    c = Cluster()
    c.apply("team", "bad", {"realIPToHeader": "Host", "priority": "high"})
    outcome = c.reconcile("team", "bad")
    assert outcome is not None and outcome.reason is Reason.INVALID_CONFIG
    assert not outcome.retryable
    assert "spec.realIPToHeader" in outcome.message and "spec.priority" in outcome.message
    assert c.kube.wasm_writes() == []
    assert c.ready("team", "bad")["reason"] == "InvalidConfig"
    assert c.kube.events[-1][1:3] == ("Warning", "InvalidConfig")
    # an invalid policy claims nothing
    c.apply("team", "good", {})
    assert c.reconcile("team", "good").reason is Reason.APPLIED


@pytest.mark.parametrize("status", [409, 500, 0, 403])
def test_api_errors_are_retryable_and_reported(status: int) -> None:
    c = Cluster()
    c.apply("team", "p", {})
    c.kube.fail_next = [KubeError(status, "boom")]
    outcome = c.reconcile("team", "p")
    assert outcome is not None and outcome.reason is Reason.APPLY_FAILED and outcome.retryable
    assert outcome.transient == (status != 403)
    assert c.ready("team", "p")["reason"] == "ApplyFailed"
    outcome = c.reconcile("team", "p")  # the retry
    assert outcome is not None and outcome.reason is Reason.APPLIED
    assert c.plugin("team", "p") is not None


def test_lagging_index_makes_no_duplicate_write() -> None:
    c = Cluster()
    c.apply("team", "p", {})
    world_before = c.world()  # the index has not seen the create yet
    c.reconciler.reconcile(("team", "p"), world_before, "create")
    c.reconciler.reconcile(("team", "p"), world_before, "resume")
    assert c.kube.wasm_writes() == [("create", "wasmplugins", "team.p")]
    assert [w[0] for w in c.kube.writes].count("patch") == 1


def test_name_taken_by_a_foreign_object_is_not_overwritten() -> None:
    c = Cluster()
    c.kube.plugins[(GW, "team.p")] = {"metadata": {"name": "team.p", "namespace": GW, "resourceVersion": "1"}, "spec": {"url": "oci://x/y"}}
    c.apply("team", "p", {})
    outcome = c.reconcile("team", "p")
    assert outcome is not None and outcome.reason is Reason.APPLY_FAILED
    assert c.kube.plugins[(GW, "team.p")]["spec"] == {"url": "oci://x/y"}


def test_events_failing_softly_does_not_fail_the_reconcile() -> None:
    c = Cluster()
    c.kube.events_fail = True
    c.apply("team", "p", {})
    assert c.reconcile("team", "p").reason is Reason.APPLIED


def test_status_write_failure_is_raised_for_retry() -> None:
    c = Cluster()
    c.apply("team", "p", {})
    c.kube.fail_next = []
    original = c.kube.patch_policy_status

    def failing(*args: Any) -> None:
        raise KubeError(503, "unavailable")

    c.kube.patch_policy_status = failing  # type: ignore[method-assign]
    with pytest.raises(KubeError):
        c.reconciler.reconcile(("team", "p"), c.world(), "create")
    c.kube.patch_policy_status = original  # type: ignore[method-assign]
    assert c.reconcile("team", "p").reason is Reason.APPLIED
    assert c.ready("team", "p")["reason"] == "Applied"


def test_policies_metric_counts_states() -> None:
    from prometheus_client import REGISTRY

    c = Cluster()
    c.apply("a", "one", {})
    c.apply("a", "two", {})
    c.apply("a", "bad", {"maxEventBytes": 1})
    for name in ("one", "two", "bad"):
        c.reconcile("a", name)
    assert REGISTRY.get_sample_value("tokenusage_operator_policies", {"state": "Applied"}) == 1
    assert REGISTRY.get_sample_value("tokenusage_operator_policies", {"state": "Conflict"}) == 1
    assert REGISTRY.get_sample_value("tokenusage_operator_policies", {"state": "InvalidConfig"}) == 1


def test_resync_reads_the_live_object_when_the_index_is_stale() -> None:
    c = Cluster()
    c.apply("team", "p", {})
    c.reconcile("team", "p")
    stale = c.world()  # the index still holds the WasmPlugin ...
    c.kube.plugins.clear()  # ... whose deletion event was lost
    c.reconciler.reconcile(("team", "p"), stale, "resync")
    assert c.plugin("team", "p") is None  # the index is trusted on ordinary events
    c.reconciler.reconcile(("team", "p"), stale, "resync", verify_live=True)
    assert c.plugin("team", "p") is not None
