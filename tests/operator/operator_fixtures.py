"""Run the real operator (`tokenusage operator`, a subprocess) against the test API server.

`operator_factory` (function fixture): `start(server, watched=[...], gateway=...)` launches an
operator watching those namespaces, waits for its liveness endpoint, and returns an
`OperatorProcess` (metrics scraping, logs, stop). Every operator started is stopped at the end.
Import the fixture into a test module: `from .operator_fixtures import operator_factory`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.operator.kube_api import KubeApiServer, free_port

T = TypeVar("T")


def wait_for(fn: Callable[[], T | None], timeout_s: float = 30.0, what: str = "condition") -> T:
    """Poll `fn` until it returns something truthy; fail with `what` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")
        time.sleep(0.05)


def get_json(server: KubeApiServer, *args: str) -> dict[str, Any] | None:
    """`kubectl get ... -o json`, or None when it does not exist."""
    result = server.kubectl("get", *args, "-o", "json", check=False)
    if result.returncode != 0:
        if "NotFound" in result.stderr or "not found" in result.stderr:
            return None
        raise AssertionError(result.stderr)
    found: dict[str, Any] = json.loads(result.stdout)
    return found


class OperatorProcess:
    def __init__(
        self, server: KubeApiServer, watched: list[str], gateway: str, log_path: Path,
        extra_env: dict[str, str] | None = None,
    ) -> None:
        self.extra_env = extra_env or {}
        self.server = server
        self.watched = watched
        self.gateway = gateway
        self.log_path = log_path
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self._process: subprocess.Popen[bytes] | None = None

    def start(self, timeout_s: float = 60.0) -> OperatorProcess:
        args = [sys.executable, "-m", "tokenusage", "operator", "--gateway-namespace", self.gateway]
        for namespace in self.watched:
            args += ["--namespace", namespace]
        args += [
            "--metrics-port", str(self.metrics_port),
            "--liveness-port", str(self.liveness_port),
            "--kubeconfig", str(self.server.kubeconfig),
            "--log-format", "json",
        ]
        env = {
            **os.environ,
            "PYTHONUNBUFFERED": "1",
            "TOKENUSAGE_OPERATOR_METRICS_HOST": "127.0.0.1",
            "TOKENUSAGE_OPERATOR_LIVENESS_HOST": "127.0.0.1",
            "TOKENUSAGE_OPERATOR_RETRY_BACKOFF_SECONDS": "0.5",
            "TOKENUSAGE_OPERATOR_RETRY_BACKOFF_MAX_SECONDS": "2",
            **self.extra_env,
        }
        log = open(self.log_path, "ab")
        self._process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        wait_for(self._alive, timeout_s, f"operator liveness (log: {self.log_path})")
        return self

    def _alive(self) -> bool:
        if self._process is None or self._process.poll() is not None:
            raise AssertionError(f"operator exited:\n{self.log_tail()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.liveness_port}/healthz", timeout=1) as r:
                return bool(r.status == 200)
        except OSError:
            return False

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int:
        assert self._process is not None
        return self._process.pid

    def stop(self, timeout_s: float = 20.0) -> None:
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

    def metrics(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as r:
            text = r.read().decode()
        samples = {}
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
        return samples

    def metric_sum(self, name: str, **labels: str) -> float:
        return sum(
            value
            for (sample, sample_labels), value in self.metrics().items()
            if sample == name and all((k, v) in sample_labels for k, v in labels.items())
        )

    def writes(self) -> float:
        return self.metric_sum("tokenusage_operator_api_writes_total")

    def log_tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def log_records(self) -> list[dict[str, Any]]:
        records = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            try:
                records.append(json.loads(line))
            except ValueError:
                pass
        return records


@pytest.fixture
def operator_factory(tmp_path: Path) -> Iterator[Callable[..., OperatorProcess]]:
    started: list[OperatorProcess] = []

    def start(
        server: KubeApiServer, watched: list[str], gateway: str, **env: str
    ) -> OperatorProcess:
        log_path = tmp_path / f"operator-{len(started)}.log"
        process = OperatorProcess(server, watched, gateway, log_path, extra_env=env)
        started.append(process)
        return process.start()

    yield start
    for process in started:
        process.stop()
