"""Prometheus metrics of the operator (prometheus-client, default registry)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from prometheus_client import REGISTRY, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

__all__ = [
    "API_WRITES",
    "DURATION",
    "ERRORS",
    "POLICIES",
    "RECONCILES",
    "observe_reconcile",
    "serve",
]

RECONCILES = Counter(
    "tokenusage_operator_reconciles",
    "Reconciles by trigger (create/update/resume/drift/handover/delete) and result (Ready reason).",
    ["trigger", "result"],
)
ERRORS = Counter(
    "tokenusage_operator_errors",
    "Errors by kind: api, conflict (HTTP 409), status, name_taken, exception.",
    ["kind"],
)
DURATION = Histogram(
    "tokenusage_operator_reconcile_duration_seconds",
    "Time spent in one reconcile, API calls included.",
    ["trigger"],
    buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
API_WRITES = Counter(
    "tokenusage_operator_api_writes",
    "Writes the operator sent to the API server (kopf's own patches not included).",
    ["resource", "verb"],
)


class _PolicyStates(Collector):
    """Gauge `tokenusage_operator_policies{state}`: policies by their Ready reason."""

    def __init__(self) -> None:
        self._source: Callable[[], dict[str, int]] = dict

    def set_function_source(self, source: Callable[[], dict[str, int]]) -> None:
        self._source = source

    def collect(self) -> Iterator[GaugeMetricFamily]:
        family = GaugeMetricFamily(
            "tokenusage_operator_policies", "Policies by state (Ready reason).", labels=["state"]
        )
        for state, count in sorted(self._source().items()):
            family.add_metric([state], count)
        yield family


POLICIES = _PolicyStates()
REGISTRY.register(POLICIES)


@contextmanager
def observe_reconcile(trigger: str) -> Iterator[Callable[[str], None]]:
    """Time a reconcile; the caller records its result, an exception records `error`."""
    started = time.perf_counter()
    results: list[str] = []
    try:
        yield results.append
    except BaseException:
        ERRORS.labels(kind="exception").inc()
        results.append("error")
        raise
    finally:
        DURATION.labels(trigger=trigger).observe(time.perf_counter() - started)
        if results:
            RECONCILES.labels(trigger=trigger, result=results[-1]).inc()


_serving: set[tuple[str, int]] = set()


def serve(host: str, port: int) -> None:
    """Start the /metrics endpoint in a daemon thread (port 0: none); once per address."""
    if port and (host, port) not in _serving:
        start_http_server(port, addr=host)
        _serving.add((host, port))
