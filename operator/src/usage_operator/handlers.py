"""kopf handlers: declarations that hand kopf's events and indices to the `Reconciler`.

Importing this module registers the handlers in kopf's default registry; `cli.run_operator`
calls `configure(settings)` first. Error policy: an invalid spec is permanent (status + Event,
no retry); API errors are retried with exponential backoff; no handler lets an exception of one
object reach another.
"""

from __future__ import annotations

import asyncio
import copy
import logging
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

import kopf

from . import metrics
from .kube import KubeClient, KubeError, connection_info, load_api_client
from .models import (
    FINALIZER,
    LABEL_MANAGED_BY,
    OPERATOR_NAME,
    POLICY_GROUP,
    POLICY_PLURAL,
    POLICY_VERSION,
    WASM_GROUP,
    WASM_PLURAL,
    WASM_VERSION,
    OperatorSettings,
    Reason,
)
from .reconcile import Outcome, PolicySnapshot, Reconciler, World

__all__ = ["configure"]

_log = logging.getLogger(__name__)


_T = TypeVar("_T")


class _State:
    settings: OperatorSettings = OperatorSettings()
    reconciler: Reconciler | None = None
    kube: KubeClient | None = None
    executor: ThreadPoolExecutor | None = None
    # What is known without asking the API: filled by a LIST at start-up (so every policy is
    # known before the first one is reconciled: conflicts are decided on the whole set), then
    # kept current by the event handlers below, on the event loop only.
    policies: dict[tuple[str, str], PolicySnapshot] = {}
    live: dict[str, dict[str, Any]] = {}
    unconfirmed: set[tuple[str, str]] = set()  # listed at start-up, no watch event yet


async def _blocking(fn: Callable[[], _T]) -> _T:
    """Run blocking reconciler work (the kubernetes client) off the event loop.

    Handlers are async on purpose: kopf's indices are mutated on the event loop, so the World
    snapshot is taken there, never from a worker thread."""
    return await asyncio.get_running_loop().run_in_executor(_State.executor, fn)


def configure(settings: OperatorSettings) -> None:
    """Set the operator settings before kopf starts (the reconciler is built at startup)."""
    _State.settings = settings
    _State.reconciler = None


def _reconciler() -> Reconciler:
    if _State.reconciler is None:
        raise kopf.TemporaryError("operator is still starting", delay=1)
    return _State.reconciler


def _policy_watched(namespace: str | None, **_: Any) -> bool:
    watched = _State.settings.watched_namespaces
    return not watched or namespace in watched


def _in_gateway_namespace(namespace: str | None, **_: Any) -> bool:
    return namespace == _State.settings.gateway_namespace


# Every policy is compared with what is live this often, even without events (see
# OperatorSettings.resync_seconds). kopf fixes timer intervals when handlers are registered,
# so this one setting is read from the environment at import.
RESYNC_SECONDS = OperatorSettings().resync_seconds
# Delay before kopf retries a handler that raised something unexpected (a bug, not an API
# error: those carry their own exponential delay).
_UNEXPECTED_ERROR_BACKOFF_S = 10.0


def _backoff_seconds(retry: int) -> float:
    s = _State.settings
    return float(min(s.retry_backoff_seconds * (2 ** min(retry, 16)), s.retry_backoff_max_seconds))


# --- start-up: credentials, kopf settings, metrics, the API client ---


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    # kopf's default login reads the kubeconfig path fixed at import time; read it now.
    return connection_info(_State.settings.kubeconfig)


@kopf.on.startup(errors=kopf.ErrorsMode.TEMPORARY, backoff=2.0)
async def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
    op = _State.settings
    settings.persistence.finalizer = FINALIZER
    # Handler state in annotations: the status schema belongs to the operator's own fields.
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=POLICY_GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=POLICY_GROUP, key="last-handled-configuration"
    )
    settings.posting.enabled = False  # the reconciler posts its own Events, on changes only
    settings.execution.max_workers = op.workers
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 5
    settings.watching.reconnect_backoff = 0.5
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 5
    # No settings.batching.worker_limit and no kopf indices: with indices, every object's worker
    # waits until all are indexed (a limit below the number of objects deadlocks, and the wait
    # costs O(objects^2)); the start-up LIST below gives the same guarantee.
    metrics.serve(op.metrics_host, op.metrics_port)
    api = load_api_client(op.kubeconfig, pool_size=op.workers * 2)

    def count(resource: str, verb: str) -> None:
        metrics.API_WRITES.labels(resource=resource, verb=verb).inc()

    kube = KubeClient(api, on_write=count)
    _State.kube = kube
    _State.reconciler = Reconciler(kube, op)
    if _State.executor is None:  # start-up is retried when the LIST fails
        _State.executor = ThreadPoolExecutor(max_workers=op.workers, thread_name_prefix="reconcile")
    try:
        policies = await _blocking(lambda: kube.list_policies(op.watched_namespaces))
        plugins = await _blocking(
            lambda: kube.list_wasm_plugins(op.gateway_namespace, f"{LABEL_MANAGED_BY}={OPERATOR_NAME}")
        )
    except KubeError as exc:
        raise kopf.TemporaryError(f"cannot list policies and WasmPlugins: {exc}", delay=2) from None
    _State.policies = {
        (p["metadata"]["namespace"], p["metadata"]["name"]): PolicySnapshot.from_body(p)
        for p in policies
        if _policy_watched(p["metadata"]["namespace"])
    }
    _State.live = {p["metadata"]["name"]: _plain(p) for p in plugins}
    _State.unconfirmed = set(_State.policies)
    asyncio.get_running_loop().call_later(
        _CONFIRM_AFTER_S, lambda: asyncio.ensure_future(_drop_unconfirmed())
    )
    _log.info(
        "operator started: gateway namespace %s, watching %s",
        op.gateway_namespace,
        ", ".join(op.watched_namespaces) or "all namespaces",
    )
    _log.info("known at start-up: %d policies, %d WasmPlugins", len(policies), len(plugins))


# A policy listed at start-up but deleted before kopf's own listing never gets an event; after
# this long, such entries are checked with a GET and dropped when gone.
_CONFIRM_AFTER_S = 60.0


async def _drop_unconfirmed() -> None:
    kube, reconciler = _State.kube, _State.reconciler
    if kube is None or reconciler is None:
        return
    gone = []
    for key in sorted(_State.unconfirmed):
        try:
            if not await _blocking(lambda: kube.policy_exists(*key)):
                gone.append(key)
        except KubeError as exc:
            _log.warning("could not check policy %s/%s: %s", *key, exc)
    _State.unconfirmed.clear()
    for key in gone:
        _log.info("policy %s/%s vanished before it was watched: forgotten", *key)
        _State.policies.pop(key, None)
    if gone:
        world = _world()
        await _blocking(lambda: reconciler.reconcile_affected(world))


# --- what is known: every policy and every owned WasmPlugin, updated before any handler ---
# (kopf runs event handlers before the create/update/resume handlers of the same event.)


def _plain(body: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "metadata": copy.deepcopy(dict(body["metadata"])),
        "spec": copy.deepcopy(dict(body.get("spec") or {})),
    }


@kopf.on.event(POLICY_GROUP, POLICY_VERSION, POLICY_PLURAL, when=_policy_watched)
async def policy_event(type: str | None, body: kopf.Body, namespace: str, name: str, **_: Any) -> None:
    key = (namespace, name)
    _State.unconfirmed.discard(key)
    if type == "DELETED":
        _State.policies.pop(key, None)
    else:
        _State.policies[key] = PolicySnapshot.from_body(body)


def _world() -> World:
    # Copies taken on the event loop: the reconciler's threads never see the stores change.
    return World(dict(_State.policies), dict(_State.live))


def _raise_for(outcome: Outcome | None, retry: int) -> None:
    if outcome is None:
        return
    if outcome.reason is Reason.INVALID_CONFIG:
        raise kopf.PermanentError(outcome.message)
    if outcome.retryable:
        delay = (
            _backoff_seconds(retry)
            if outcome.transient
            else _State.settings.retry_backoff_max_seconds
        )
        raise kopf.TemporaryError(outcome.message, delay=delay)


# --- policies ---


@kopf.on.resume(POLICY_GROUP, POLICY_VERSION, POLICY_PLURAL, when=_policy_watched, backoff=_UNEXPECTED_ERROR_BACKOFF_S)
@kopf.on.create(POLICY_GROUP, POLICY_VERSION, POLICY_PLURAL, when=_policy_watched, backoff=_UNEXPECTED_ERROR_BACKOFF_S)
@kopf.on.update(POLICY_GROUP, POLICY_VERSION, POLICY_PLURAL, when=_policy_watched, backoff=_UNEXPECTED_ERROR_BACKOFF_S)
async def reconcile_policy(
    namespace: str,
    name: str,
    reason: str,
    retry: int,
    **_: Any,
) -> None:
    reconciler = _reconciler()
    world = _world()
    key = (namespace, name)
    try:
        outcome = await _blocking(lambda: reconciler.reconcile(key, world, trigger=str(reason)))
    except KubeError as exc:  # status could not be written
        raise kopf.TemporaryError(str(exc), delay=_backoff_seconds(retry)) from None
    if str(reason) != "resume":
        # Targets changed or a policy appeared: others may win or lose because of it.
        await _blocking(lambda: reconciler.reconcile_affected(world, exclude=key))
    _raise_for(outcome, retry)


@kopf.on.delete(POLICY_GROUP, POLICY_VERSION, POLICY_PLURAL, when=_policy_watched, backoff=_UNEXPECTED_ERROR_BACKOFF_S)
async def delete_policy(
    namespace: str,
    name: str,
    retry: int,
    **_: Any,
) -> None:
    reconciler, world = _reconciler(), _world()
    try:
        await _blocking(lambda: reconciler.delete((namespace, name), world))
    except KubeError as exc:
        raise kopf.TemporaryError(str(exc), delay=_backoff_seconds(retry)) from None


@kopf.timer(
    POLICY_GROUP,
    POLICY_VERSION,
    POLICY_PLURAL,
    interval=RESYNC_SECONDS,
    initial_delay=RESYNC_SECONDS,
    when=_policy_watched,
)
async def resync_policy(
    namespace: str,
    name: str,
    retry: int,
    **_: Any,
) -> None:
    reconciler, world = _reconciler(), _world()
    try:
        outcome = await _blocking(
            lambda: reconciler.reconcile((namespace, name), world, "resync", verify_live=True)
        )
    except KubeError as exc:
        _log.warning("resync of %s/%s failed: %s", namespace, name, exc)
        return
    if outcome is not None and outcome.retryable:
        _log.warning("resync of %s/%s: %s", namespace, name, outcome.message)


# --- drift: someone edited or deleted a WasmPlugin this operator owns ---


@kopf.on.event(
    WASM_GROUP,
    WASM_VERSION,
    WASM_PLURAL,
    labels={LABEL_MANAGED_BY: OPERATOR_NAME},
    when=_in_gateway_namespace,
)
async def wasm_plugin_changed(
    type: str | None,
    body: kopf.Body,
    name: str,
    **_: Any,
) -> None:
    if type == "DELETED":
        _State.live.pop(name, None)
    else:
        _State.live[name] = _plain(body)
    # type None: the initial listing. Resume handlers already compare every policy with what
    # is live, so only orphans need a look then.
    reconciler = _reconciler()
    world = _world()
    try:
        await _blocking(lambda: reconciler.repair(name, world, orphans_only=type is None))
    except KubeError as exc:
        _log.warning("could not repair WasmPlugin %s: %s (next change retries)", name, exc)
