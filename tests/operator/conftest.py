"""Fixtures for the operator's tests: a real Kubernetes API server (see kube_api.py).

- ``kube_api``: the session's shared server (started once, all CRDs installed, ``$KUBECONFIG``
  set for the session), checked to be running before each test; ``kube_api.restart()``
  restarts it in place. ``kube_api_session`` is the same object for session-scoped fixtures.
- ``kube_namespace`` (function): a fresh namespace on ``kube_api``.
- ``kube_api_private`` (function): a server of the test's own, CRDs installed.

Tests that use them are marked ``k8s`` automatically. The server binary is built (cached)
while tests are collected, so a cold build does not eat into any test's timeout.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.operator.kube_api import KubeApiError, KubeApiServer, build_binary

_KUBE_FIXTURES = {"kube_api", "kube_api_session", "kube_namespace", "kube_api_private", "kube_api_binary"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    uses_kube = [item for item in items if _KUBE_FIXTURES & set(getattr(item, "fixturenames", ()))]
    for item in uses_kube:
        item.add_marker(pytest.mark.k8s)
    if uses_kube and not config.option.collectonly:
        try:
            build_binary(quiet=False)  # outside any test's timeout; a no-op when cached
        except KubeApiError:
            pass  # each test that needs it fails with the reason (the fixture builds again)


@pytest.fixture(scope="session")
def kube_api_binary() -> Path:
    return build_binary()


@pytest.fixture(scope="session")
def kube_api_session(kube_api_binary: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeApiServer]:
    server = KubeApiServer(kube_api_binary, tmp_path_factory.mktemp("kube-api"))
    previous = os.environ.get("KUBECONFIG")
    try:
        server.start()
        server.install_all_crds()
        os.environ["KUBECONFIG"] = str(server.kubeconfig)
        yield server
    finally:
        server.stop()
        server.remove_data(keep_log=True)
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous


@pytest.fixture
def kube_api(kube_api_session: KubeApiServer) -> KubeApiServer:
    """The shared server, started again if an earlier test stopped it."""
    if not kube_api_session.running:
        kube_api_session.start()
    return kube_api_session


@pytest.fixture
def kube_namespace(kube_api: KubeApiServer) -> Iterator[str]:
    name = f"t-{secrets.token_hex(4)}"
    kube_api.kubectl("create", "namespace", name)
    yield name
    if kube_api.running:
        kube_api.kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture
def kube_api_private(kube_api_binary: Path, tmp_path: Path) -> Iterator[KubeApiServer]:
    server = KubeApiServer(kube_api_binary, tmp_path / "kube-api")
    try:
        server.start()
        server.install_all_crds()
        yield server
    finally:
        server.stop()
        server.remove_data(keep_log=True)
