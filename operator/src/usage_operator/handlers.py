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
    executor: ThreadPoolExecutor | None = None


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


@kopf.on.startup()
def startup(settings: kopf.OperatorSettings, **_: Any) -> None:
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
    # No settings.batching.worker_limit: each object's worker waits until every index is
    # populated, so a limit below the number of objects deadlocks the start-up.
    metrics.serve(op.metrics_host, op.metrics_port)
    api = load_api_client(op.kubeconfig, pool_size=op.workers * 2)

    def count(resource: str, verb: str) -> None:
        metrics.API_WRITES.labels(resource=resource, verb=verb).inc()

    _State.reconciler = Reconciler(KubeClient(api, on_write=count), op)
    _State.executor = ThreadPoolExecutor(max_workers=op.workers, thread_name_prefix="reconcile")
    _log.info(
        "operator started: gateway namespace %s, watching %s",
        op.gateway_namespace,
        ", ".join(op.watched_namespaces) or "all namespaces",
    )


# --- indices: every policy and every owned WasmPlugin, populated before any handler runs ---


@kopf.index(POLICY_GROUP, POLICY_VERSION, POLICY_PLURAL, when=_policy_watched)
async def policy_index(
    body: kopf.Body, namespace: str, name: str, **_: Any
) -> dict[tuple[str, str], PolicySnapshot]:
    return {(namespace, name): PolicySnapshot.from_body(body)}


@kopf.index(
    WASM_GROUP,
    WASM_VERSION,
    WASM_PLURAL,
    labels={LABEL_MANAGED_BY: OPERATOR_NAME},
    when=_in_gateway_namespace,
)
async def wasm_index(body: kopf.Body, name: str, **_: Any) -> dict[str, dict[str, Any]]:
    return {name: {"metadata": copy.deepcopy(dict(body["metadata"])), "spec": copy.deepcopy(dict(body.get("spec") or {}))}}


def _world(policy_index: kopf.Index[Any, Any], wasm_index: kopf.Index[Any, Any]) -> World:
    policies: dict[tuple[str, str], PolicySnapshot] = {}
    for key, store in policy_index.items():
        for snapshot in store:
            policies[key] = snapshot
    live: dict[str, Mapping[str, Any]] = {}
    for key, store in wasm_index.items():
        for body in store:
            live[key] = body
    return World(policies, live)


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
    policy_index: kopf.Index[Any, Any],
    wasm_index: kopf.Index[Any, Any],
    **_: Any,
) -> None:
    reconciler = _reconciler()
    world = _world(policy_index, wasm_index)
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
    policy_index: kopf.Index[Any, Any],
    wasm_index: kopf.Index[Any, Any],
    **_: Any,
) -> None:
    reconciler, world = _reconciler(), _world(policy_index, wasm_index)
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
    policy_index: kopf.Index[Any, Any],
    wasm_index: kopf.Index[Any, Any],
    **_: Any,
) -> None:
    reconciler, world = _reconciler(), _world(policy_index, wasm_index)
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
    name: str,
    policy_index: kopf.Index[Any, Any],
    wasm_index: kopf.Index[Any, Any],
    **_: Any,
) -> None:
    # type None: the initial listing. Resume handlers already compare every policy with what
    # is live, so only orphans need a look then.
    reconciler = _reconciler()
    world = _world(policy_index, wasm_index)
    try:
        await _blocking(lambda: reconciler.repair(name, world, orphans_only=type is None))
    except KubeError as exc:
        _log.warning("could not repair WasmPlugin %s: %s (next change retries)", name, exc)
