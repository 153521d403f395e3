"""Figures for the operator against the test API server: prints, asserts nothing.

    .venv/bin/python bench/operator_bench.py [--latency-policies 100] [--policies 1000]

- apply -> WasmPlugin: p50/p99 over N policies created one after another (time from the create
  call to the WasmPlugin's ADDED event on a watch);
- restart: time for a fresh operator to resume all M policies (until its reconcile counter for
  `resume` reaches M), and the writes it made doing so (its own counter, and resourceVersions of
  every policy and WasmPlugin before/after: both should be zero);
- operator RSS after the restart.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from kubernetes import client, config, watch  # noqa: E402

from tests.operator.kube_api import running_server  # noqa: E402
from tests.operator.operator_fixtures import OperatorProcess, wait_for  # noqa: E402

GROUP, VERSION = "gateway.gpustack.ai", "v1alpha1"
WASM = ("extensions.higress.io", "v1alpha1", "wasmplugins")
TEAM, GATEWAY = "team", "gw"


def policy(i: int) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "TokenUsagePolicy",
        "metadata": {"name": f"p{i:05d}", "namespace": TEAM},
        "spec": {"realIPToHeader": "X-Real-IP", "targets": {"domains": [f"d{i}.example.com"]}},
    }


class AddedWatcher:
    """Records when each WasmPlugin in the gateway namespace is first seen (ADDED)."""

    def __init__(self, api: client.CustomObjectsApi) -> None:
        self.seen: dict[str, float] = {}
        self._api = api
        self._watch = watch.Watch()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for event in self._watch.stream(
                self._api.list_namespaced_custom_object, *WASM[:2], GATEWAY, WASM[2], timeout_seconds=3600
            ):
                if event["type"] == "ADDED":
                    self.seen.setdefault(event["object"]["metadata"]["name"], time.monotonic())
        except Exception:  # stopped, or the server went away at the end
            pass

    def stop(self) -> None:
        self._watch.stop()


def resource_versions(api: client.CustomObjectsApi) -> dict[str, str]:
    versions = {}
    for group, version, namespace, plural in (
        (GROUP, VERSION, TEAM, "tokenusagepolicies"),
        (*WASM[:2], GATEWAY, WASM[2]),
    ):
        items = api.list_namespaced_custom_object(group, version, namespace, plural)["items"]
        for item in items:
            versions[f"{plural}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return versions


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency-policies", type=int, default=100)
    parser.add_argument("--policies", type=int, default=1000)
    args = parser.parse_args()
    total = max(args.policies, args.latency_policies)

    with running_server() as server, tempfile.TemporaryDirectory() as tmp:
        for ns in (TEAM, GATEWAY):
            server.kubectl("create", "namespace", ns)
        api = client.CustomObjectsApi(config.new_client_from_config(config_file=str(server.kubeconfig)))
        operator = OperatorProcess(server, [TEAM], GATEWAY, Path(tmp) / "operator-1.log").start()
        watcher = AddedWatcher(api)

        # 1. apply -> WasmPlugin, one policy at a time
        latencies = []
        for i in range(args.latency_policies):
            started = time.monotonic()
            api.create_namespaced_custom_object(GROUP, VERSION, TEAM, "tokenusagepolicies", policy(i))
            name = f"{TEAM}.p{i:05d}"
            seen = wait_for(lambda: watcher.seen.get(name), 30, f"WasmPlugin {name}")
            latencies.append(seen - started)
        print(
            f"apply -> WasmPlugin ({len(latencies)} policies, sequential): "
            f"p50 {percentile(latencies, 0.5) * 1000:.0f} ms, p99 {percentile(latencies, 0.99) * 1000:.0f} ms, "
            f"max {max(latencies) * 1000:.0f} ms"
        )

        # 2. fill up to `total` policies, wait until all are applied
        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(
                lambda i: api.create_namespaced_custom_object(GROUP, VERSION, TEAM, "tokenusagepolicies", policy(i)),
                range(args.latency_policies, total),
            ))
        wait_for(lambda: len(watcher.seen) >= total, 900, f"{total} WasmPlugins")
        fill_s = time.monotonic() - started
        print(f"created {total - args.latency_policies} more policies, all WasmPlugins present after {fill_s:.1f} s "
              f"({(total - args.latency_policies) / fill_s:.0f} policies/s)")
        print(f"operator RSS with {total} policies: {rss_mib(operator.pid):.0f} MiB")
        wait_for(
            lambda: operator.metric_sum("tokenusage_operator_policies", state="Applied") >= total,
            300, "all statuses Applied",
        )
        watcher.stop()
        # quiescent: no object changed for 3 s (kopf's last annotation patches are done)
        before = resource_versions(api)
        while True:
            time.sleep(3.0)
            now = resource_versions(api)
            if now == before:
                break
            before = now
        operator.stop()

        # 3. restart with nothing changed
        second = OperatorProcess(server, [TEAM], GATEWAY, Path(tmp) / "operator-2.log")
        started = time.monotonic()
        second.start()
        alive_s = time.monotonic() - started
        wait_for(
            lambda: second.metric_sum("tokenusage_operator_reconciles_total", trigger="resume") >= total,
            900, f"resume of {total} policies",
        )
        resume_s = time.monotonic() - started
        time.sleep(2.0)
        after = resource_versions(api)
        changed = sorted(key for key, rv in after.items() if before.get(key) != rv)
        print(f"restart: liveness after {alive_s:.1f} s, {total} policies resumed after {resume_s:.1f} s")
        print(f"restart writes: operator counter {second.writes():.0f}, objects with a new resourceVersion "
              f"{len(changed)} {changed[:5]}")
        print(f"operator RSS after restart: {rss_mib(second.pid):.0f} MiB")
        second.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
