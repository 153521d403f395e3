"""Reconciliation: a policy and what is live -> API writes (only when something differs) -> status.

Framework-free: `handlers.py` feeds it a `World` (every policy and every owned WasmPlugin, listed
at start-up and kept current from watch events) and turns its outcomes into kopf errors; unit
tests feed it plain dicts and a fake `KubePort`. Reads come from the World, so a restart with
nothing changed makes no API call at all; before any write the live object is fetched again (the
World may lag behind the API).
"""

from __future__ import annotations

import copy
import datetime as _dt
import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

from pydantic import ValidationError

from . import metrics
from .conflicts import Claim, PolicyKey, arbitrate, claim_for
from .kube import KubeError
from .models import (
    ANNOTATION_APPLIED_HASH,
    ANNOTATION_POLICY,
    LABEL_MANAGED_BY,
    OPERATOR_NAME,
    POLICY_API_VERSION,
    POLICY_KIND,
    READY,
    OperatorSettings,
    PolicySpec,
    Reason,
    spec_errors,
)
from .render import RenderedPlugin, RenderError, render_wasm_plugin, wasm_plugin_name

__all__ = [
    "KubePort",
    "NameTaken",
    "Outcome",
    "PolicySnapshot",
    "Reconciler",
    "World",
    "owner_of",
]

_log = logging.getLogger(__name__)


class KubePort(Protocol):
    """The API calls the reconciler makes (implemented by `kube.KubeClient`)."""

    def get_wasm_plugin(self, namespace: str, name: str) -> dict[str, Any] | None: ...
    def create_wasm_plugin(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def replace_wasm_plugin(self, body: dict[str, Any]) -> dict[str, Any]: ...
    def delete_wasm_plugin(self, namespace: str, name: str) -> bool: ...
    def patch_policy_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None: ...
    def post_event(
        self, involved: dict[str, str], event_type: str, reason: str, message: str
    ) -> None: ...


class NameTaken(Exception):
    """The WasmPlugin name is held by an object this operator does not own."""


@dataclass(frozen=True)
class PolicySnapshot:
    """What the reconciler needs of a TokenUsagePolicy (a copy: kopf bodies are live views)."""

    namespace: str
    name: str
    uid: str
    generation: int
    created: str
    deleting: bool
    spec: Mapping[str, Any]
    status: Mapping[str, Any]

    @property
    def key(self) -> PolicyKey:
        return (self.namespace, self.name)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> PolicySnapshot:
        meta = body.get("metadata", {})
        return cls(
            namespace=meta.get("namespace", ""),
            name=meta.get("name", ""),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation") or 0),
            created=meta.get("creationTimestamp") or "",
            deleting=bool(meta.get("deletionTimestamp")),
            spec=copy.deepcopy(dict(body.get("spec") or {})),
            status=copy.deepcopy(dict(body.get("status") or {})),
        )


@dataclass(frozen=True)
class World:
    """What is known without asking the API: every policy, and the owned WasmPlugins by name."""

    policies: Mapping[PolicyKey, PolicySnapshot]
    live: Mapping[str, Mapping[str, Any]]


@dataclass(frozen=True)
class Outcome:
    reason: Reason
    message: str
    wasm_plugin: str | None = None
    applied_hash: str | None = None
    retryable: bool = False
    # A transient failure (409, 429, 5xx, no answer) is retried with exponential backoff; the
    # others (403, 404 for a missing CRD, 422) wait for a person, retried at the longest delay.
    transient: bool = True

    @property
    def ready(self) -> bool:
        return self.reason is Reason.APPLIED


def owner_of(wasm_plugin: Mapping[str, Any]) -> PolicyKey | None:
    """The policy a WasmPlugin belongs to, from its annotation; None when not ours."""
    meta = wasm_plugin.get("metadata") or {}
    if (meta.get("labels") or {}).get(LABEL_MANAGED_BY) != OPERATOR_NAME:
        return None
    ref = (meta.get("annotations") or {}).get(ANNOTATION_POLICY, "")
    namespace, _, name = ref.partition("/")
    return (namespace, name) if namespace and name else None


def _matches(live: Mapping[str, Any] | None, rendered: RenderedPlugin) -> bool:
    """True when the live WasmPlugin is exactly what was rendered (spec, our labels/annotations)."""
    if live is None:
        return False
    meta = live.get("metadata") or {}
    want = rendered.body["metadata"]
    labels = meta.get("labels") or {}
    annotations = meta.get("annotations") or {}
    return (
        live.get("spec") == rendered.body["spec"]
        and all(labels.get(k) == v for k, v in want["labels"].items())
        and all(annotations.get(k) == v for k, v in want["annotations"].items())
    )


def _utc_now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


class Reconciler:
    """Turns policies into WasmPlugins. Thread-safe: one lock per policy."""

    def __init__(
        self,
        kube: KubePort,
        settings: OperatorSettings,
        *,
        now: Callable[[], _dt.datetime] = _utc_now,
    ) -> None:
        self._kube = kube
        self._settings = settings
        self._now = now
        self._locks: dict[PolicyKey, threading.Lock] = {}
        self._locks_guard = threading.Lock()
        # Parsed specs by (uid, generation): a spec only changes with the generation.
        self._specs: dict[tuple[str, int], PolicySpec | str] = {}
        # Per (uid, generation) too: the claim and the rendered WasmPlugin (or why not).
        self._claim_of: dict[tuple[str, int], Claim | None] = {}
        self._rendered: dict[tuple[str, int], RenderedPlugin | str] = {}
        # The last arbitration and the claims it was made for (most reconciles see the same).
        self._verdicts: tuple[frozenset[tuple[str, int]], Mapping[PolicyKey, PolicyKey | None]] | None = None
        # Status last written per policy, so a lagging index does not cause a second write.
        self._written_status: dict[PolicyKey, dict[str, Any]] = {}
        self._states: dict[PolicyKey, Reason] = {}
        metrics.POLICIES.set_function_source(self._state_counts)

    # --- public entry points ---

    def reconcile(
        self, key: PolicyKey, world: World, trigger: str, *, verify_live: bool = False
    ) -> Outcome | None:
        """Make one policy's WasmPlugin and status match its spec. None: nothing to do (gone).

        verify_live: read the WasmPlugin from the API instead of trusting the index (a watch
        that lost events, e.g. across an API server restart, leaves the index stale)."""
        with self._locked(key), metrics.observe_reconcile(trigger) as record:
            snapshot = world.policies.get(key)
            if snapshot is None or snapshot.deleting:
                _log.debug("policy %s/%s is gone or being deleted: not reconciled", *key)
                return None
            if verify_live:
                world = self._with_live(world, wasm_plugin_name(*key))
            outcome = self._reconcile_locked(snapshot, world)
            self._report(snapshot, outcome)
            record(outcome.reason.value)
            return outcome

    def delete(self, key: PolicyKey, world: World) -> None:
        """The policy is being deleted: remove its WasmPlugin (missing is fine), hand over."""
        with self._locked(key), metrics.observe_reconcile("delete") as record:
            name = wasm_plugin_name(*key)
            live = world.live.get(name)
            if live is None or owner_of(live) == key:
                self._kube.delete_wasm_plugin(self._settings.gateway_namespace, name)
            self._written_status.pop(key, None)
            self._states.pop(key, None)
            record("Deleted")
        remaining = {k: v for k, v in world.policies.items() if k != key}
        self.reconcile_affected(World(remaining, world.live), exclude=key)

    def reconcile_affected(self, world: World, exclude: PolicyKey | None = None) -> None:
        """Reconcile the policies whose arbitration no longer matches their status: a loser
        whose winner went away, or an applied policy that an older one now overrides."""
        verdicts = self._arbitrate(world)
        for key, winner in verdicts.items():
            if key == exclude:
                continue
            snapshot = world.policies[key]
            reason = self._recorded_reason(snapshot)
            stale = (winner is None and reason is Reason.CONFLICT) or (
                winner is not None and reason is Reason.APPLIED
            )
            if stale:
                try:
                    self.reconcile(key, world, trigger="handover")
                except Exception:  # one policy's trouble must not stop the others
                    _log.exception("hand-over reconcile of %s/%s failed", *key)

    def repair(self, name: str, world: World, *, orphans_only: bool = False) -> None:
        """A WasmPlugin changed or vanished: put back what its policy renders, or remove an
        orphan (its policy is gone from a watched namespace)."""
        owner = next((k for k in world.policies if wasm_plugin_name(*k) == name), None)
        if owner is not None:
            if not orphans_only:
                self.reconcile(owner, world, trigger="drift")
            return
        live = world.live.get(name)
        orphan_of = owner_of(live) if live is not None else None
        if orphan_of is not None and self._watches(orphan_of[0]):
            _log.info("deleting orphaned WasmPlugin %s (policy %s/%s is gone)", name, *orphan_of)
            self._kube.delete_wasm_plugin(self._settings.gateway_namespace, name)

    # --- internals ---

    def _with_live(self, world: World, name: str) -> World:
        live = dict(world.live)
        fresh = self._kube.get_wasm_plugin(self._settings.gateway_namespace, name)
        if fresh is None:
            live.pop(name, None)
        else:
            live[name] = fresh
        return World(world.policies, live)

    @contextmanager
    def _locked(self, key: PolicyKey) -> Iterator[None]:
        with self._locks_guard:
            lock = self._locks.setdefault(key, threading.Lock())
        with lock:
            yield

    def _watches(self, namespace: str) -> bool:
        watched = self._settings.watched_namespaces
        return not watched or namespace in watched

    def _parse(self, snapshot: PolicySnapshot) -> PolicySpec | str:
        """The parsed spec, or the validation message (cached per uid and generation)."""
        cache_key = (snapshot.uid, snapshot.generation)
        cached = self._specs.get(cache_key)
        if cached is None:
            try:
                cached = PolicySpec.model_validate(dict(snapshot.spec))
            except ValidationError as exc:
                cached = "; ".join(spec_errors(exc))
            if len(self._specs) > 100_000:
                self._specs.clear()
            self._specs[cache_key] = cached
        return cached

    def _claims(self, world: World) -> list[Claim]:
        claims = []
        for snapshot in world.policies.values():
            if snapshot.deleting or not self._watches(snapshot.namespace):
                continue
            cache_key = (snapshot.uid, snapshot.generation)
            if cache_key not in self._claim_of:
                spec = self._parse(snapshot)
                self._claim_of[cache_key] = (
                    claim_for(snapshot.key, snapshot.created, spec.targets)
                    if isinstance(spec, PolicySpec)
                    else None
                )
            claim = self._claim_of[cache_key]
            if claim is not None:
                claims.append(claim)
        return claims

    def _arbitrate(self, world: World) -> Mapping[PolicyKey, PolicyKey | None]:
        """Who blocks whom, recomputed only when the set of live policy versions changed."""
        identity = frozenset(
            (s.uid, s.generation) for s in world.policies.values() if not s.deleting
        )
        cached = self._verdicts
        if cached is not None and cached[0] == identity:
            return cached[1]
        verdicts = arbitrate(self._claims(world))
        self._verdicts = (identity, verdicts)
        return verdicts

    def _render(self, snapshot: PolicySnapshot, spec: PolicySpec) -> RenderedPlugin:
        """Render (cached per uid and generation: the settings do not change at run time)."""
        cache_key = (snapshot.uid, snapshot.generation)
        cached = self._rendered.get(cache_key)
        if cached is None:
            try:
                cached = render_wasm_plugin(
                    snapshot.namespace,
                    snapshot.name,
                    spec,
                    gateway_namespace=self._settings.gateway_namespace,
                    default_plugin_image=self._settings.default_plugin_image,
                )
            except RenderError as exc:
                cached = str(exc)
            if len(self._rendered) > 100_000:
                self._rendered.clear()
                self._claim_of.clear()
            self._rendered[cache_key] = cached
        if isinstance(cached, str):
            raise RenderError(cached)
        return cached

    def _reconcile_locked(self, snapshot: PolicySnapshot, world: World) -> Outcome:
        name = wasm_plugin_name(snapshot.namespace, snapshot.name)
        spec = self._parse(snapshot)
        try:
            if isinstance(spec, str):
                self._ensure_absent(name, snapshot.key, world)
                return Outcome(Reason.INVALID_CONFIG, spec)
            try:
                rendered = self._render(snapshot, spec)
            except RenderError as exc:
                self._ensure_absent(name, snapshot.key, world)
                return Outcome(Reason.INVALID_CONFIG, str(exc))
            winner = self._arbitrate(world).get(snapshot.key)
            if winner is not None:
                self._ensure_absent(name, snapshot.key, world)
                return Outcome(
                    Reason.CONFLICT,
                    f"TokenUsagePolicy {winner[0]}/{winner[1]} is older and claims the same "
                    "targets" + (" (gateway-wide)" if spec.targets.gateway_wide else "")
                    + "; this policy takes effect when that one is deleted or retargeted",
                )
            self._ensure_present(rendered, snapshot.key, world)
            return Outcome(
                Reason.APPLIED,
                f"WasmPlugin {rendered.namespace}/{rendered.name} is up to date",
                wasm_plugin=rendered.name,
                applied_hash=rendered.applied_hash,
            )
        except KubeError as exc:
            metrics.ERRORS.labels(kind="conflict" if exc.conflict else "api").inc()
            return Outcome(
                Reason.APPLY_FAILED,
                f"API error, will retry: {exc}",
                retryable=True,
                transient=exc.retryable,
            )
        except NameTaken as exc:
            metrics.ERRORS.labels(kind="name_taken").inc()
            return Outcome(Reason.APPLY_FAILED, str(exc), retryable=True, transient=False)

    def _ensure_present(self, rendered: RenderedPlugin, key: PolicyKey, world: World) -> None:
        if _matches(world.live.get(rendered.name), rendered):
            return
        fresh = self._kube.get_wasm_plugin(rendered.namespace, rendered.name)
        if fresh is None:
            self._kube.create_wasm_plugin(copy.deepcopy(rendered.body))
            _log.info("created WasmPlugin %s/%s for %s/%s", rendered.namespace, rendered.name, *key)
            return
        if owner_of(fresh) != key:
            raise NameTaken(
                f"WasmPlugin {rendered.namespace}/{rendered.name} exists and is not managed by "
                f"this policy (labels/annotation {ANNOTATION_POLICY}); delete or rename it"
            )
        if _matches(fresh, rendered):
            return
        body = copy.deepcopy(rendered.body)
        body["metadata"]["resourceVersion"] = fresh["metadata"]["resourceVersion"]
        self._kube.replace_wasm_plugin(body)
        _log.info("updated WasmPlugin %s/%s for %s/%s", rendered.namespace, rendered.name, *key)

    def _ensure_absent(self, name: str, key: PolicyKey, world: World) -> None:
        live = world.live.get(name)
        if live is not None and owner_of(live) == key:
            self._kube.delete_wasm_plugin(self._settings.gateway_namespace, name)
            _log.info("deleted WasmPlugin %s/%s of %s/%s", self._settings.gateway_namespace, name, *key)

    def _recorded_reason(self, snapshot: PolicySnapshot) -> Reason | None:
        status = self._written_status.get(snapshot.key) or snapshot.status
        for condition in status.get("conditions") or []:
            if condition.get("type") == READY:
                try:
                    return Reason(condition.get("reason"))
                except ValueError:
                    return None
        return None

    def _desired_status(self, snapshot: PolicySnapshot, outcome: Outcome) -> dict[str, Any]:
        status = "True" if outcome.ready else "False"
        previous = next(
            (c for c in snapshot.status.get("conditions") or [] if c.get("type") == READY), None
        )
        if previous is not None and previous.get("status") == status:
            transition = previous.get("lastTransitionTime")
        else:
            transition = self._now().strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "conditions": [
                {
                    "type": READY,
                    "status": status,
                    "reason": outcome.reason.value,
                    "message": outcome.message,
                    "observedGeneration": snapshot.generation,
                    "lastTransitionTime": transition,
                }
            ],
            "observedGeneration": snapshot.generation,
            "wasmPlugin": (
                {"namespace": self._settings.gateway_namespace, "name": outcome.wasm_plugin}
                if outcome.wasm_plugin
                else None
            ),
            "appliedHash": outcome.applied_hash,
        }

    def _report(self, snapshot: PolicySnapshot, outcome: Outcome) -> None:
        """Write status and post an Event, each only when something changed."""
        self._states[snapshot.key] = outcome.reason
        desired = self._desired_status(snapshot, outcome)
        current = {k: snapshot.status.get(k) for k in desired}
        if desired == current or desired == self._written_status.get(snapshot.key):
            return
        previous_ready: dict[str, Any] = next(
            (c for c in current.get("conditions") or [] if c.get("type") == READY), {}
        )
        try:
            self._kube.patch_policy_status(snapshot.namespace, snapshot.name, desired)
        except KubeError:
            metrics.ERRORS.labels(kind="status").inc()
            raise
        self._written_status[snapshot.key] = desired
        new_ready = desired["conditions"][0]
        if (previous_ready.get("reason"), previous_ready.get("message")) != (
            new_ready["reason"],
            new_ready["message"],
        ) and self._settings.post_events:
            self._kube.post_event(
                {
                    "apiVersion": POLICY_API_VERSION,
                    "kind": POLICY_KIND,
                    "namespace": snapshot.namespace,
                    "name": snapshot.name,
                    "uid": snapshot.uid,
                },
                "Normal" if outcome.ready else "Warning",
                outcome.reason.value,
                outcome.message,
            )

    def _state_counts(self) -> dict[str, int]:
        counts = {reason.value: 0 for reason in Reason}
        for reason in list(self._states.values()):
            counts[reason.value] += 1
        return counts

