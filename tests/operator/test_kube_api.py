"""The test Kubernetes API server (tests/operator/kube_api.py) behaves like a cluster's API.

What the operator's integration tests rely on: kubectl works through the kubeconfig, CRD
schemas and CEL rules refuse bad objects, unknown fields are pruned, resourceVersion conflicts
and the status subresource behave, watches deliver events, data survives a restart, core
namespaces/events are served, and kopf runs against it.
"""

from __future__ import annotations

import json
import selectors
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml
from kopf.testing import KopfRunner
from kubernetes import client, config, watch

from tests.operator.kube_api import TEST_CRDS_DIR, KUBECTL, KubeApiServer, crd_files, kopf_connection_info

GROUP, VERSION, PLURAL = "extensions.higress.io", "v1alpha1", "wasmplugins"


def wasmplugin(name: str, namespace: str, **spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "WasmPlugin",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "url": "oci://registry.test/token-usage:1.0",
            "phase": "STATS",
            "priority": 910,
            "failStrategy": "FAIL_OPEN",
            "defaultConfig": {"realIPToHeader": "x-real-ip"},
            **spec,
        },
    }


@pytest.fixture
def custom_api(kube_api: KubeApiServer) -> Iterator[client.CustomObjectsApi]:
    api_client = config.new_client_from_config(config_file=str(kube_api.kubeconfig))
    with api_client:
        yield client.CustomObjectsApi(api_client)


def test_server_reports_a_kubernetes_version(kube_api: KubeApiServer) -> None:
    version = json.loads(kube_api.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["major"] == "1"
    assert version["serverVersion"]["gitVersion"].startswith("v1.")


def test_kubectl_lists_and_applies_wasmplugins(kube_api: KubeApiServer, kube_namespace: str) -> None:
    assert kube_api.kubectl("get", "wasmplugins", "-A").returncode == 0
    kube_api.apply(wasmplugin("demo", kube_namespace))
    listed = json.loads(kube_api.kubectl("get", "wasmplugins", "-A", "-o", "json").stdout)
    mine = [item for item in listed["items"] if item["metadata"]["namespace"] == kube_namespace]
    assert [item["metadata"]["name"] for item in mine] == ["demo"]
    stored = mine[0]
    assert stored["spec"]["phase"] == "STATS"
    assert stored["spec"]["priority"] == 910
    assert stored["metadata"]["uid"] and stored["metadata"]["resourceVersion"]
    assert stored["metadata"]["generation"] == 1
    # The printer columns of the CRD reach kubectl's table output.
    table = kube_api.kubectl("get", "wasmplugins", "-n", kube_namespace).stdout
    assert "PHASE" in table and "STATS" in table


def test_kubectl_apply_file_and_category(kube_api: KubeApiServer, kube_namespace: str, tmp_path: Path) -> None:
    manifest = tmp_path / "wp.yaml"
    manifest.write_text(yaml.safe_dump(wasmplugin("from-file", kube_namespace)))
    assert "created" in kube_api.kubectl("apply", "-f", str(manifest)).stdout
    assert "unchanged" in kube_api.kubectl("apply", "-f", str(manifest)).stdout
    # `higress-io` is the CRD's category: `kubectl get higress-io` finds the plugin.
    assert "from-file" in kube_api.kubectl("get", "higress-io", "-n", kube_namespace, "-o", "name").stdout


def test_schema_refuses_an_unknown_phase(kube_api: KubeApiServer, kube_namespace: str) -> None:
    bad = yaml.safe_dump(wasmplugin("bad-phase", kube_namespace, phase="BOGUS"))
    result = kube_api.kubectl("apply", "-f", "-", input=bad, check=False)
    assert result.returncode != 0
    assert "spec.phase" in result.stderr and "BOGUS" in result.stderr
    assert kube_api.kubectl("get", "wasmplugin", "bad-phase", "-n", kube_namespace, check=False).returncode != 0


def test_schema_refuses_a_wrong_type(kube_api: KubeApiServer, kube_namespace: str) -> None:
    bad = yaml.safe_dump(wasmplugin("bad-priority", kube_namespace, priority="high"))
    result = kube_api.kubectl("apply", "-f", "-", input=bad, check=False)
    assert result.returncode != 0
    assert "spec.priority" in result.stderr


def test_cel_rule_refuses_a_match_rule_without_target(kube_api: KubeApiServer, kube_namespace: str) -> None:
    bad = wasmplugin("bad-rule", kube_namespace, defaultConfigDisable=True,
                     matchRules=[{"config": {"a": 1}}])
    result = kube_api.kubectl("apply", "-f", "-", input=yaml.safe_dump(bad), check=False)
    assert result.returncode != 0
    assert "spec.matchRules[0]" in result.stderr and "ingress, domain or service" in result.stderr
    good = wasmplugin("good-rule", kube_namespace, defaultConfigDisable=True,
                      matchRules=[{"ingress": ["route-a"], "config": {"a": 1}}])
    kube_api.apply(good)


def test_strict_field_validation_and_pruning(kube_api: KubeApiServer, kube_namespace: str,
                                             custom_api: client.CustomObjectsApi) -> None:
    body = wasmplugin("pruned", kube_namespace, notAField="x")
    body["spec"]["defaultConfig"]["free"] = {"nested": True}  # preserved: free-form object
    strict = kube_api.kubectl("apply", "-f", "-", input=yaml.safe_dump(body), check=False)
    assert strict.returncode != 0 and 'unknown field "spec.notAField"' in strict.stderr
    # Without strict validation (the Python client's default) the field is pruned, not stored.
    custom_api.create_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, body)
    stored = custom_api.get_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, "pruned")
    assert "notAField" not in stored["spec"]
    assert stored["spec"]["defaultConfig"]["free"] == {"nested": True}


def test_stale_resource_version_is_a_conflict(kube_api: KubeApiServer, kube_namespace: str,
                                              custom_api: client.CustomObjectsApi) -> None:
    created = custom_api.create_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, PLURAL, wasmplugin("rv", kube_namespace))
    first = json.loads(json.dumps(created))
    created["spec"]["priority"] = 100
    updated = custom_api.replace_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, "rv", created)
    assert updated["metadata"]["generation"] == 2
    first["spec"]["priority"] = 200
    with pytest.raises(client.ApiException) as raised:
        custom_api.replace_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, "rv", first)
    assert raised.value.status == 409


def test_status_subresource_is_separate_from_spec(kube_api: KubeApiServer, kube_namespace: str,
                                                  custom_api: client.CustomObjectsApi) -> None:
    custom_api.create_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, PLURAL, wasmplugin("st", kube_namespace))
    custom_api.patch_namespaced_custom_object_status(
        GROUP, VERSION, kube_namespace, PLURAL, "st", {"status": {"note": "seen"}})
    stored = custom_api.get_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, "st")
    assert stored["status"] == {"note": "seen"}
    assert stored["metadata"]["generation"] == 1  # status writes do not bump generation
    # A status in a main-resource write is ignored.
    custom_api.patch_namespaced_custom_object(
        GROUP, VERSION, kube_namespace, PLURAL, "st", {"status": {"note": "overwritten"}})
    stored = custom_api.get_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, "st")
    assert stored["status"] == {"note": "seen"}


def test_watch_delivers_added_and_modified(kube_api: KubeApiServer, kube_namespace: str,
                                           custom_api: client.CustomObjectsApi) -> None:
    listed = custom_api.list_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL)
    since = listed["metadata"]["resourceVersion"]
    custom_api.create_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, wasmplugin("w", kube_namespace))
    custom_api.patch_namespaced_custom_object(GROUP, VERSION, kube_namespace, PLURAL, "w", {"spec": {"priority": 5}})
    seen: list[tuple[str, int]] = []
    stream = watch.Watch().stream(custom_api.list_namespaced_custom_object, GROUP, VERSION, kube_namespace, PLURAL,
                                  resource_version=since, timeout_seconds=10)
    for event in stream:
        seen.append((event["type"], event["object"]["spec"]["priority"]))
        if len(seen) == 2:
            break
    assert seen == [("ADDED", 910), ("MODIFIED", 5)]


def _read_lines(process: subprocess.Popen[str], count: int, timeout_s: float) -> list[str]:
    assert process.stdout is not None
    lines: list[str] = []
    deadline = time.monotonic() + timeout_s
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while len(lines) < count and time.monotonic() < deadline:
            if selector.select(timeout=max(0.0, deadline - time.monotonic())):
                line = process.stdout.readline()
                if not line:
                    break
                lines.append(line.strip())
    return lines


def test_kubectl_watch(kube_api: KubeApiServer, kube_namespace: str) -> None:
    watcher = subprocess.Popen(
        [KUBECTL, "--kubeconfig", str(kube_api.kubeconfig), "get", "wasmplugins", "-n", kube_namespace,
         "--watch", "--output-watch-events", "-o", "jsonpath={.type} {.object.metadata.name}{\"\\n\"}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(0.5)  # let the watch open; an object made earlier would still be listed
        kube_api.apply(wasmplugin("watched", kube_namespace))
        lines = _read_lines(watcher, 1, timeout_s=20)
    finally:
        watcher.kill()
        watcher.wait()
    assert lines == ["ADDED watched"]


def test_core_namespaces_and_events(kube_api: KubeApiServer, kube_namespace: str) -> None:
    names = kube_api.kubectl("get", "ns", "-o", "name").stdout.split()
    assert {"namespace/default", "namespace/kube-system", f"namespace/{kube_namespace}"} <= set(names)
    event = {
        "apiVersion": "v1", "kind": "Event",
        "metadata": {"name": "e1", "namespace": kube_namespace},
        "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "WasmPlugin", "name": "demo",
                           "namespace": kube_namespace},
        "reason": "Applied", "message": "hello", "type": "Normal",
    }
    kube_api.apply(event)
    selected = json.loads(kube_api.kubectl(
        "get", "events", "-n", kube_namespace, "--field-selector", "involvedObject.name=demo,reason=Applied",
        "-o", "json").stdout)
    assert [e["message"] for e in selected["items"]] == ["hello"]
    table = kube_api.kubectl("get", "events", "-n", kube_namespace).stdout
    assert "REASON" in table and "Applied" in table and "wasmplugin/demo" in table and "hello" in table
    assert "Active" in kube_api.kubectl("get", "namespace", kube_namespace).stdout
    none = json.loads(kube_api.kubectl(
        "get", "events", "-n", kube_namespace, "--field-selector", "involvedObject.name=other", "-o", "json").stdout)
    assert none["items"] == []
    bad_name = kube_api.kubectl("create", "namespace", "Not_A_Label", check=False)
    assert bad_name.returncode != 0 and "metadata.name" in bad_name.stderr


def test_restart_keeps_data_port_and_credentials(kube_api_private: KubeApiServer) -> None:
    server = kube_api_private
    server.kubectl("create", "namespace", "kept")
    server.apply(wasmplugin("kept", "kept"))
    before = json.loads(server.kubectl("get", "wasmplugin", "kept", "-n", "kept", "-o", "json").stdout)
    kubeconfig_before = server.kubeconfig.read_text()
    server.restart()
    assert server.kubeconfig.read_text() == kubeconfig_before
    after = json.loads(server.kubectl("get", "wasmplugin", "kept", "-n", "kept", "-o", "json").stdout)
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["spec"] == before["spec"]
    # A crash (SIGKILL) keeps what was written too, and the CRD is still served.
    server.apply(wasmplugin("after-restart", "kept"))
    server.kill()
    assert not server.running
    server.start()
    names = server.kubectl("get", "wasmplugins", "-n", "kept", "-o", "name").stdout.split()
    assert names == ["wasmplugin.extensions.higress.io/after-restart", "wasmplugin.extensions.higress.io/kept"]


def test_restart_of_the_shared_server_in_place(kube_api: KubeApiServer, kube_namespace: str) -> None:
    kube_api.apply(wasmplugin("survives", kube_namespace))
    port = kube_api.port
    kube_api.restart()
    assert kube_api.port == port
    assert "survives" in kube_api.kubectl("get", "wasmplugins", "-n", kube_namespace, "-o", "name").stdout


@pytest.mark.parametrize("scope", ["cluster-wide", "namespace-glob"])
def test_kopf_operator_sees_a_created_object(kube_api: KubeApiServer, kube_namespace: str, scope: str) -> None:
    # A glob makes kopf watch /api/v1/namespaces to find the namespaces that match.
    scope_args = ["--all-namespaces"] if scope == "cluster-wide" else [f"--namespace={kube_namespace[:-2]}*"]
    registry = kopf.OperatorRegistry()
    created: list[tuple[str, str]] = []

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf_connection_info(kube_api.kubeconfig)

    # Other tests' objects (cluster-wide, or in a namespace the glob also matches) are left alone.
    @kopf.on.create(GROUP, VERSION, PLURAL, id="on_create", registry=registry,
                    when=lambda namespace, **_: namespace == kube_namespace)
    def on_create(name: str, namespace: str, logger: Any, **_: Any) -> dict[str, str]:
        created.append((namespace, name))
        kopf.info({"apiVersion": f"{GROUP}/{VERSION}", "kind": "WasmPlugin",
                   "metadata": {"name": name, "namespace": namespace}},
                  reason="Seen", message="seen by the test operator")
        return {"seen": "yes"}

    settings = kopf.OperatorSettings()
    settings.posting.level = 20  # logging.INFO: handler logs become events too
    with KopfRunner(["run", "--standalone", *scope_args, "--verbose"],
                    registry=registry, settings=settings, timeout=60) as runner:
        kube_api.apply(wasmplugin("kopf-demo", kube_namespace))
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not _kopf_done(kube_api, kube_namespace):
            time.sleep(0.2)
    assert runner.exit_code == 0, runner.output
    assert runner.exception is None
    assert created == [(kube_namespace, "kopf-demo")]
    stored = json.loads(kube_api.kubectl("get", "wasmplugin", "kopf-demo", "-n", kube_namespace, "-o", "json").stdout)
    # kopf keeps its progress in annotations and the handler's result in status (subresource).
    assert stored["status"]["on_create"] == {"seen": "yes"}
    events = json.loads(kube_api.kubectl(
        "get", "events", "-n", kube_namespace, "--field-selector", "involvedObject.name=kopf-demo",
        "-o", "json").stdout)
    assert "Seen" in {e["reason"] for e in events["items"]}


def test_kopf_carries_on_after_an_api_server_restart(kube_api_private: KubeApiServer) -> None:
    server = kube_api_private
    server.kubectl("create", "namespace", "ops")
    registry = kopf.OperatorRegistry()
    created: list[str] = []

    @kopf.on.login(registry=registry)
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf_connection_info(server.kubeconfig)

    @kopf.on.create(GROUP, VERSION, PLURAL, id="on_create", registry=registry)
    def on_create(name: str, **_: Any) -> dict[str, str]:
        created.append(name)
        return {"seen": "yes"}

    with KopfRunner(["run", "--standalone", "--all-namespaces"], registry=registry, timeout=90) as runner:
        server.apply(wasmplugin("before", "ops"))
        _wait_until(lambda: _kopf_done(server, "ops", "before"), timeout_s=30)
        server.restart()
        server.apply(wasmplugin("after", "ops"))
        _wait_until(lambda: _kopf_done(server, "ops", "after"), timeout_s=60)
    assert runner.exception is None
    assert created == ["before", "after"]


def _wait_until(condition: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and not condition():
        time.sleep(0.2)


def test_every_crd_file_is_installed(kube_api: KubeApiServer) -> None:
    files = crd_files()
    assert any(path.parent.name == "crds" and path.parent.parent == TEST_CRDS_DIR.parent for path in files)
    for path in files:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                plural, group = doc["spec"]["names"]["plural"], doc["spec"]["group"]
                result = kube_api.kubectl("get", f"{plural}.{group}", "-A", check=False)
                assert result.returncode == 0, (path, result.stderr)


def _kopf_done(kube_api: KubeApiServer, namespace: str, name: str = "kopf-demo") -> bool:
    result = kube_api.kubectl("get", "wasmplugin", name, "-n", namespace, "-o", "json", check=False)
    if result.returncode != 0:
        return False
    status = json.loads(result.stdout).get("status", {})
    return "on_create" in status
