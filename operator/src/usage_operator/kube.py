"""The only module that talks to the Kubernetes API (besides kopf's own watching and patching).

`RBAC_RULES` lists every API call the operator makes, kopf's included, so the Helm chart's RBAC
can be tested against it. `KubeClient` wraps the blocking `kubernetes` client: one method per
call, errors mapped to `KubeError` (with `retryable`), a timeout on every request, and Events
that fail softly (some API servers serve no core kinds).
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final, Literal

import kopf
import urllib3
from kubernetes import client as k8s
from kubernetes import config as k8s_config
from kubernetes.client.exceptions import ApiException

from .models import (
    OPERATOR_NAME,
    POLICY_GROUP,
    POLICY_PLURAL,
    POLICY_VERSION,
    WASM_GROUP,
    WASM_PLURAL,
    WASM_VERSION,
)

__all__ = [
    "ApiRule",
    "KubeClient",
    "KubeError",
    "RBAC_RULES",
    "connection_info",
    "load_api_client",
]

_log = logging.getLogger(__name__)

Scope = Literal[
    "cluster", "watched-namespaces", "gateway-namespace", "watched-and-gateway-namespaces"
]


@dataclass(frozen=True)
class ApiRule:
    """One RBAC rule the operator needs: API group, resources, verbs, and where.

    scope: `cluster` (a ClusterRole whatever the mode), `watched-namespaces` (every namespace
    whose policies are handled: a ClusterRole when cluster-wide), `gateway-namespace` (only there), `watched-and-gateway-namespaces` (kopf
    watches every handled resource in the same set of namespaces).
    """

    api_group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    scope: Scope
    why: str
    only_with_peering: bool = False

    def as_policy_rule(self) -> dict[str, list[str]]:
        """The rule as a Role/ClusterRole `rules[]` entry."""
        return {
            "apiGroups": [self.api_group],
            "resources": list(self.resources),
            "verbs": list(self.verbs),
        }


RBAC_RULES: Final[tuple[ApiRule, ...]] = (
    ApiRule(
        POLICY_GROUP,
        (POLICY_PLURAL,),
        ("get", "list", "watch", "patch"),
        "watched-namespaces",
        "the operator lists policies at start-up and checks unconfirmed ones; kopf watches "
        "them and patches their finalizer and handler-state annotations",
    ),
    ApiRule(
        POLICY_GROUP,
        (f"{POLICY_PLURAL}/status",),
        ("get", "patch"),
        "watched-namespaces",
        "the operator writes status (conditions, observedGeneration, wasmPlugin, appliedHash)",
    ),
    ApiRule(
        WASM_GROUP,
        (WASM_PLURAL,),
        ("list", "watch"),
        "watched-and-gateway-namespaces",
        "the operator lists its WasmPlugins at start-up; kopf watches them to detect drift",
    ),
    ApiRule(
        WASM_GROUP,
        (WASM_PLURAL,),
        ("get", "create", "update", "delete"),
        "gateway-namespace",
        "one WasmPlugin per policy, written only when it differs from what is live",
    ),
    ApiRule(
        "",
        ("events",),
        ("create",),
        "watched-namespaces",
        "Events on policies (Applied, InvalidConfig, Conflict, ApplyFailed); failures ignored",
    ),
    ApiRule(
        "apiextensions.k8s.io",
        ("customresourcedefinitions",),
        ("list", "watch"),
        "cluster",
        "kopf's resource observer (discovers the served CRDs)",
    ),
    ApiRule(
        "",
        ("namespaces",),
        ("list", "watch"),
        "cluster",
        "kopf's namespace observer",
    ),
    ApiRule(
        "kopf.dev",
        ("kopfpeerings",),
        ("get", "list", "watch", "patch"),
        "watched-namespaces",
        "kopf peering between replicas (settings.peering)",
        only_with_peering=True,
    ),
    ApiRule(
        "kopf.dev",
        ("clusterkopfpeerings",),
        ("get", "list", "watch", "patch"),
        "watched-namespaces",
        "kopf peering when cluster-wide (settings.peering)",
        only_with_peering=True,
    ),
)

# (connect, read) seconds for every request: a dead API server must not hold a worker.
_TIMEOUT: Final = (3.0, 15.0)
_RETRYABLE_STATUSES: Final = frozenset({0, 408, 409, 425, 429, 500, 502, 503, 504})


class KubeError(Exception):
    """An API call failed. `status` is the HTTP status (0: no answer)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status or 'no answer'}: {message}")
        self.status = status
        self.message = message

    @property
    def retryable(self) -> bool:
        """Worth retrying with backoff; the others wait for a change (RBAC, a missing CRD)."""
        return self.status in _RETRYABLE_STATUSES or self.status >= 500

    @property
    def conflict(self) -> bool:
        return self.status == 409


def _kube_error(exc: Exception) -> KubeError:
    if isinstance(exc, ApiException):
        reason = exc.reason or ""
        body = exc.body.decode() if isinstance(exc.body, bytes) else (exc.body or "")
        return KubeError(int(exc.status or 0), f"{reason} {body}".strip()[:2000])
    return KubeError(0, f"{type(exc).__name__}: {exc}")


_TRANSPORT_ERRORS: Final = (ApiException, urllib3.exceptions.HTTPError, OSError)
_RAISE: Final = object()  # `if_absent` default: a 404 is an error like any other
_GONE: Final = object()  # `if_absent` marker for "the object is not there"


def _call(fn: Callable[..., Any], *args: Any, if_absent: Any = _RAISE, **kwargs: Any) -> Any:
    """One API call with the request timeout; every failure becomes a KubeError, except a 404
    when the caller says what an absent object means (`if_absent`)."""
    try:
        return fn(*args, _request_timeout=_TIMEOUT, **kwargs)
    except ApiException as exc:
        if exc.status == 404 and if_absent is not _RAISE:
            return if_absent
        raise _kube_error(exc) from None
    except _TRANSPORT_ERRORS as exc:
        raise _kube_error(exc) from None


def _kubeconfig_path(explicit: str | None) -> str | None:
    # Read $KUBECONFIG now, not when the kubernetes package was imported.
    if explicit:
        return explicit
    env = os.environ.get("KUBECONFIG")
    return env.split(os.pathsep)[0] if env else None


def _load_configuration(kubeconfig: str | None) -> k8s.Configuration:
    configuration = k8s.Configuration()
    path = _kubeconfig_path(kubeconfig)
    if path is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        k8s_config.load_incluster_config(client_configuration=configuration)
    else:
        k8s_config.load_kube_config(config_file=path, client_configuration=configuration)
    return configuration


def load_api_client(kubeconfig: str | None, pool_size: int = 8) -> k8s.ApiClient:
    """An ApiClient from a kubeconfig (or in-cluster credentials when none is found)."""
    configuration = _load_configuration(kubeconfig)
    configuration.connection_pool_maxsize = max(pool_size, 4)
    configuration.retries = False  # retries are the reconciler's business (with backoff)
    return k8s.ApiClient(configuration)


def connection_info(kubeconfig: str | None) -> kopf.ConnectionInfo:
    """kopf's credentials, taken from the same kubeconfig as `load_api_client`."""
    c = _load_configuration(kubeconfig)
    token: str | None = None
    auth = (c.api_key or {}).get("authorization")
    if auth and auth.lower().startswith("bearer "):
        token = auth[7:]
    return kopf.ConnectionInfo(
        server=c.host,
        ca_path=c.ssl_ca_cert,
        insecure=not c.verify_ssl,
        username=c.username or None,
        password=c.password or None,
        token=token,
        certificate_path=c.cert_file,
        private_key_path=c.key_file,
    )


WriteObserver = Callable[[str, str], None]  # (resource, verb)


class KubeClient:
    """Blocking API calls for the reconciler. Thread-safe (one urllib3 pool)."""

    def __init__(self, api_client: k8s.ApiClient, on_write: WriteObserver | None = None) -> None:
        self._custom = k8s.CustomObjectsApi(api_client)
        self._core = k8s.CoreV1Api(api_client)
        self._on_write = on_write or (lambda resource, verb: None)
        self._events_unavailable = False

    # --- WasmPlugins (gateway namespace) ---

    def get_wasm_plugin(self, namespace: str, name: str) -> dict[str, Any] | None:
        result: dict[str, Any] | None = _call(
            self._custom.get_namespaced_custom_object,
            WASM_GROUP, WASM_VERSION, namespace, WASM_PLURAL, name, if_absent=None,
        )
        return result

    def create_wasm_plugin(self, body: dict[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        self._on_write(WASM_PLURAL, "create")
        result: dict[str, Any] = _call(
            self._custom.create_namespaced_custom_object,
            WASM_GROUP, WASM_VERSION, meta["namespace"], WASM_PLURAL, body,
        )
        return result

    def replace_wasm_plugin(self, body: dict[str, Any]) -> dict[str, Any]:
        """PUT; `body.metadata.resourceVersion` makes a concurrent change a 409."""
        meta = body["metadata"]
        self._on_write(WASM_PLURAL, "update")
        result: dict[str, Any] = _call(
            self._custom.replace_namespaced_custom_object,
            WASM_GROUP, WASM_VERSION, meta["namespace"], WASM_PLURAL, meta["name"], body,
        )
        return result

    def delete_wasm_plugin(self, namespace: str, name: str) -> bool:
        """Delete; False when it was already gone (not an error)."""
        self._on_write(WASM_PLURAL, "delete")
        result = _call(
            self._custom.delete_namespaced_custom_object,
            WASM_GROUP, WASM_VERSION, namespace, WASM_PLURAL, name, if_absent=_GONE,
        )
        return result is not _GONE

    def list_wasm_plugins(self, namespace: str, label_selector: str) -> list[dict[str, Any]]:
        result = _call(
            self._custom.list_namespaced_custom_object,
            WASM_GROUP, WASM_VERSION, namespace, WASM_PLURAL, label_selector=label_selector,
        )
        return list(result.get("items") or [])

    # --- TokenUsagePolicies ---

    def list_policies(self, namespaces: list[str]) -> list[dict[str, Any]]:
        """Every policy in these namespaces (empty: all namespaces)."""
        items: list[dict[str, Any]] = []
        if not namespaces:
            result = _call(self._custom.list_cluster_custom_object, POLICY_GROUP, POLICY_VERSION, POLICY_PLURAL)
            items.extend(result.get("items") or [])
        for namespace in namespaces:
            result = _call(
                self._custom.list_namespaced_custom_object,
                POLICY_GROUP, POLICY_VERSION, namespace, POLICY_PLURAL,
            )
            items.extend(result.get("items") or [])
        return items

    def policy_exists(self, namespace: str, name: str) -> bool:
        result = _call(
            self._custom.get_namespaced_custom_object,
            POLICY_GROUP, POLICY_VERSION, namespace, POLICY_PLURAL, name, if_absent=_GONE,
        )
        return result is not _GONE

    # --- TokenUsagePolicy status ---

    def patch_policy_status(self, namespace: str, name: str, patch: dict[str, Any]) -> None:
        """JSON merge patch of the status subresource (`None` values delete keys)."""
        self._on_write(f"{POLICY_PLURAL}/status", "patch")
        # A policy that is gone (404) has nothing to report on.
        _call(
            self._custom.patch_namespaced_custom_object_status,
            POLICY_GROUP, POLICY_VERSION, namespace, POLICY_PLURAL, name, {"status": patch},
            _content_type="application/merge-patch+json", if_absent=None,
        )

    # --- Events (soft) ---

    def post_event(
        self, involved: dict[str, str], event_type: str, reason: str, message: str
    ) -> None:
        """Create an Event on a policy. Never raises: Events are a courtesy, not state."""
        if self._events_unavailable:
            return
        now = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        body = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{involved['name'][:200]}.", "namespace": involved["namespace"]},
            "involvedObject": involved,
            "type": event_type,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": OPERATOR_NAME},
            "reportingComponent": OPERATOR_NAME,
            "reportingInstance": os.environ.get("HOSTNAME", OPERATOR_NAME)[:128],
            "firstTimestamp": now[:19] + "Z",
            "lastTimestamp": now[:19] + "Z",
            "count": 1,
        }
        self._on_write("events", "create")
        try:
            self._core.create_namespaced_event(
                involved["namespace"], body, _request_timeout=_TIMEOUT
            )
        except ApiException as exc:
            if exc.status == 404:
                # The server serves no core Events (e.g. a bare apiextensions server): stop trying.
                self._events_unavailable = True
                _log.warning("events are not served by this API server; not posting events")
            else:
                _log.warning("could not post event %s on %s: %s", reason, involved, _kube_error(exc))
        except _TRANSPORT_ERRORS as exc:
            _log.warning("could not post event %s on %s: %s", reason, involved, _kube_error(exc))
