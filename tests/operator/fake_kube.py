"""An in-memory `KubePort` for reconciler unit tests: WasmPlugins, statuses, events, a write log."""

from __future__ import annotations

import copy
import itertools
from dataclasses import dataclass, field
from typing import Any

from usage_operator.kube import KubeError


@dataclass
class FakeKube:
    plugins: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    statuses: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    events: list[tuple[str, str, str, str]] = field(default_factory=list)  # ns/name, type, reason, msg
    writes: list[tuple[str, str, str]] = field(default_factory=list)  # verb, resource, name
    reads: int = 0
    fail_next: list[KubeError] = field(default_factory=list)  # raised by the next calls, in order
    events_fail: bool = False
    _rv: itertools.count = field(default_factory=lambda: itertools.count(1))

    def _maybe_fail(self) -> None:
        if self.fail_next:
            raise self.fail_next.pop(0)

    def get_wasm_plugin(self, namespace: str, name: str) -> dict[str, Any] | None:
        self.reads += 1
        self._maybe_fail()
        found = self.plugins.get((namespace, name))
        return copy.deepcopy(found) if found else None

    def create_wasm_plugin(self, body: dict[str, Any]) -> dict[str, Any]:
        self._maybe_fail()
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        self.writes.append(("create", "wasmplugins", meta["name"]))
        if key in self.plugins:
            raise KubeError(409, "AlreadyExists")
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(next(self._rv))
        self.plugins[key] = stored
        return copy.deepcopy(stored)

    def replace_wasm_plugin(self, body: dict[str, Any]) -> dict[str, Any]:
        self._maybe_fail()
        meta = body["metadata"]
        key = (meta["namespace"], meta["name"])
        self.writes.append(("update", "wasmplugins", meta["name"]))
        current = self.plugins.get(key)
        if current is None:
            raise KubeError(404, "NotFound")
        if current["metadata"]["resourceVersion"] != meta.get("resourceVersion"):
            raise KubeError(409, "Conflict")
        stored = copy.deepcopy(body)
        stored["metadata"]["resourceVersion"] = str(next(self._rv))
        self.plugins[key] = stored
        return copy.deepcopy(stored)

    def delete_wasm_plugin(self, namespace: str, name: str) -> bool:
        self._maybe_fail()
        self.writes.append(("delete", "wasmplugins", name))
        return self.plugins.pop((namespace, name), None) is not None

    def patch_policy_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        self._maybe_fail()
        self.writes.append(("patch", "tokenusagepolicies/status", name))
        status = self.statuses.setdefault((namespace, name), {})
        for key, value in patch.items():
            if value is None:
                status.pop(key, None)
            else:
                status[key] = copy.deepcopy(value)

    def post_event(self, involved: dict[str, str], event_type: str, reason: str, message: str) -> None:
        if self.events_fail:
            return  # the real client swallows failures too
        self.events.append((f"{involved['namespace']}/{involved['name']}", event_type, reason, message))

    # helpers for tests
    def live(self, gateway_namespace: str = "higress-system") -> dict[str, dict[str, Any]]:
        """What a kopf index of owned WasmPlugins would hold now."""
        return {
            name: copy.deepcopy(body)
            for (ns, name), body in self.plugins.items()
            if ns == gateway_namespace
        }

    def wasm_writes(self) -> list[tuple[str, str, str]]:
        return [w for w in self.writes if w[1] == "wasmplugins"]
