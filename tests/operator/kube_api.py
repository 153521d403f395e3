"""A real Kubernetes API server for the operator's tests, built from Go modules and cached.

The server (operator/testing/apiserver/, Go) is one process: an embedded etcd, the
apiextensions API server (the component that serves every CRD in a real cluster: OpenAPI
schema validation, defaulting, pruning, CEL rules, the status subresource, resourceVersion
conflicts, watch, server-side apply) and a small core/v1 group with **namespaces and events**
only (no pods, services, configmaps, secrets, leases; no namespace controller: deleting a
namespace removes it at once and leaves its objects; no admission webhooks, no garbage
collector, so ownerReferences are not followed). It listens on 127.0.0.1 over HTTPS with a
self-signed certificate, authenticates the bearer token in the kubeconfig it writes (anonymous
requests are accepted too) and authorizes everything. kubectl, kopf and the Python client
work against it through the kubeconfig only.

Fixtures (tests/operator/conftest.py; tests under tests/operator/ get them automatically):

``kube_api`` -> :class:`KubeApiServer`
    The session's shared server: started once per test session, with every CRD installed
    (``crds/*.yaml`` plus the test stand-ins in ``operator/testing/crds/``, e.g. Higress's
    WasmPlugin) and ``$KUBECONFIG`` pointing at it for the session; started again before a
    test if an earlier one left it stopped. Shared: use your own namespace.
    ``kube_api.restart()`` restarts it mid-test (same data dir, port, token: data, URL and
    kubeconfig stay valid; watches break and clients reconnect, as after a real restart;
    while it starts, requests get 503/429 with Retry-After, never a 404 for a served CRD).
``kube_api_session`` (session) -> :class:`KubeApiServer`
    The same object, for session-scoped fixtures (it is not restarted for you).
``kube_namespace`` (function) -> str
    A fresh namespace on ``kube_api`` (``t-<random>``), deleted afterwards.
``kube_api_private`` (function) -> :class:`KubeApiServer`
    A server of the test's own (about a second to start), CRDs installed, for tests that stop,
    kill or restart it or need an empty cluster. ``$KUBECONFIG`` is not changed: use
    ``.kubeconfig``.

:class:`KubeApiServer` gives ``kubeconfig`` (Path), ``url``, ``token``, ``ca_path``,
``port``, ``data_dir``; ``start()``, ``stop()``, ``kill()`` (SIGKILL, like a crash),
``restart()``, ``wait_ready()``, ``remove_data()``, ``kubectl(*args)``, ``apply(manifest)`` (dict, list of dicts,
YAML text or path), ``install_crds(paths)``. :func:`kopf_connection_info` turns a kubeconfig
into a ``kopf.ConnectionInfo`` for an ``@kopf.on.login`` handler (kopf's own login reads the
kubeconfig path fixed at import time, so always add one)::

    @kopf.on.login(registry=registry)
    def login(**_: object) -> kopf.ConnectionInfo:
        return kopf_connection_info(kube_api.kubeconfig)

Run kopf with ``--standalone`` (no peering objects) and cluster-wide (``-A``); posting
events works (core/v1 events are served).

The binary is built on first use with the machine's ``go`` (module proxy) under
``$GPUSTACK_TOKEN_USAGE_CACHE`` or ``~/.cache/gpustack-token-usage/test-apiserver/<hash>/``,
keyed on the Go sources, go.mod, go.sum and the Go version: a cold build takes minutes, a
cached one nothing. By hand: ``python -m tests.operator.kube_api [DATA_DIR]`` starts one and
prints the kubeconfig path.
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SOURCE_DIR = REPO_ROOT / "operator" / "testing" / "apiserver"
TEST_CRDS_DIR = REPO_ROOT / "operator" / "testing" / "crds"
PRODUCT_CRDS_DIR = REPO_ROOT / "crds"
BINARY_NAME = "test-apiserver"
KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"


class KubeApiError(RuntimeError):
    """The test API server could not be built, started or reached."""


def cache_dir() -> Path:
    configured = os.environ.get("GPUSTACK_TOKEN_USAGE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "gpustack-token-usage"


def _source_files() -> list[Path]:
    return sorted([SOURCE_DIR / "go.mod", SOURCE_DIR / "go.sum", *SOURCE_DIR.glob("*.go")])


def _go() -> str:
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        raise KubeApiError(
            "the test Kubernetes API server is built from Go modules, but `go` is not installed "
            "(install Go >= the version in operator/testing/apiserver/go.mod)"
        )
    return go


def _k8s_version() -> str:
    """v1.37.2 for k8s.io/apiextensions-apiserver v0.37.2: what /version reports."""
    match = re.search(r"k8s\.io/apiextensions-apiserver v0\.(\d+)\.(\d+)", (SOURCE_DIR / "go.mod").read_text())
    return f"v1.{match.group(1)}.{match.group(2)}" if match else "v1.0.0"


def build_binary(*, quiet: bool = True) -> Path:
    """The server binary, built once per source hash (file-locked, so concurrent runs wait)."""
    go = _go()
    go_version = subprocess.run([go, "env", "GOVERSION"], capture_output=True, text=True, check=True).stdout.strip()
    digest = hashlib.sha256(go_version.encode())
    for path in _source_files():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    target_dir = cache_dir() / BINARY_NAME / digest.hexdigest()[:16]
    binary = target_dir / BINARY_NAME
    if binary.exists():
        return binary
    target_dir.mkdir(parents=True, exist_ok=True)
    with open(target_dir / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if binary.exists():  # built by whoever held the lock
            return binary
        version = _k8s_version()
        major, minor = version[1:].split(".")[:2]
        ldflags = " ".join([
            "-s -w",
            f"-X k8s.io/component-base/version.gitVersion={version}-test",
            f"-X k8s.io/component-base/version.gitMajor={major}",
            f"-X k8s.io/component-base/version.gitMinor={minor}",
        ])
        goflags = f"{os.environ.get('GOFLAGS', '')} -mod=mod -buildvcs=false".strip()
        env = {**os.environ, "GOFLAGS": goflags, "CGO_ENABLED": "0"}
        partial = target_dir / f"{BINARY_NAME}.partial"
        if not quiet:
            print(f"building the test API server ({SOURCE_DIR}) -> {binary}", file=sys.stderr)
        started = time.monotonic()
        result = subprocess.run(
            ["nice", go, "build", "-trimpath", f"-ldflags={ldflags}", "-o", str(partial), "."],
            cwd=SOURCE_DIR, env=env, capture_output=True, text=True,
        )
        if result.returncode != 0:
            raise KubeApiError(f"go build of the test API server failed:\n{result.stdout}{result.stderr}")
        partial.rename(binary)
        (target_dir / "build.json").write_text(json.dumps({
            "go": go_version, "seconds": round(time.monotonic() - started, 1), "k8s": version,
        }))
    _prune_old_builds(keep=target_dir)
    return binary


def _prune_old_builds(keep: Path, newest: int = 2) -> None:
    """Each source change leaves a ~90 MB binary behind: keep the newest few builds."""
    builds = sorted((d for d in keep.parent.iterdir() if d.is_dir() and d != keep),
                    key=lambda d: d.stat().st_mtime, reverse=True)
    for old in builds[newest - 1:]:
        shutil.rmtree(old, ignore_errors=True)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _manifests(source: Any) -> list[dict[str, Any]]:
    """dict | list of dicts | YAML text | Path -> list of manifest dicts."""
    if isinstance(source, dict):
        return [source]
    if isinstance(source, Path):
        source = source.read_text()
    if isinstance(source, str):
        return [doc for doc in yaml.safe_load_all(source) if doc]
    return [doc for item in source for doc in _manifests(item)]


class KubeApiServer:
    """One test API server process: data dir, port and credentials survive restarts."""

    def __init__(self, binary: Path, data_dir: Path, port: int | None = None) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = port or free_port()
        self.kubeconfig = data_dir / "kubeconfig"
        self.ca_path = data_dir / "pki" / "apiserver.crt"
        self.log_path = data_dir / "server.log"
        self.url = f"https://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Any = None

    @property
    def token(self) -> str:
        return (self.data_dir / "token").read_text()

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.running and self._process else None

    def env(self) -> dict[str, str]:
        """os.environ with KUBECONFIG pointing at this server (for subprocesses)."""
        return {**os.environ, "KUBECONFIG": str(self.kubeconfig)}

    def start(self, timeout_s: float = 60.0) -> None:
        if self.running:
            return
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "ab")
        self._process = subprocess.Popen(
            [str(self.binary), "--data-dir", str(self.data_dir), "--port", str(self.port),
             "--kubeconfig", str(self.kubeconfig), "--exit-with-parent"],
            stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
        )
        self.wait_ready(timeout_s)

    def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Poll /readyz until it says ok (every post-start hook done: CRD informers synced)."""
        deadline = time.monotonic() + timeout_s
        context = ssl.create_default_context(cafile=str(self.ca_path)) if self.ca_path.exists() else None
        last_error = "not started"
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                raise KubeApiError(f"test API server exited with {self._process.returncode}:\n{self.log_tail()}")
            if context is None and self.ca_path.exists():
                context = ssl.create_default_context(cafile=str(self.ca_path))
            if context is not None and self.kubeconfig.exists():
                try:
                    with urllib.request.urlopen(f"{self.url}/readyz", context=context, timeout=2) as response:
                        if response.status == 200:
                            return
                except (urllib.error.URLError, ConnectionError, TimeoutError, ssl.SSLError) as error:
                    last_error = str(error)
            time.sleep(0.05)
        raise KubeApiError(f"test API server not ready within {timeout_s} s ({last_error}):\n{self.log_tail()}")

    def stop(self, timeout_s: float = 30.0) -> None:
        """SIGTERM and wait: a clean shutdown (etcd closed)."""
        self._end(signal.SIGTERM, timeout_s)

    def kill(self) -> None:
        """SIGKILL, like a crash; data written before it survives."""
        self._end(signal.SIGKILL, 10.0)

    def restart(self, timeout_s: float = 60.0) -> None:
        self.stop()
        self.start(timeout_s)

    def _end(self, sig: signal.Signals, timeout_s: float) -> None:
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.send_signal(sig)
            try:
                process.wait(timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def remove_data(self, *, keep_log: bool = True) -> None:
        """Delete the data dir of a stopped server (etcd preallocates tens of MB), log aside."""
        if self.running:
            raise KubeApiError("stop the server before removing its data")
        for child in self.data_dir.glob("*") if self.data_dir.exists() else []:
            if keep_log and child == self.log_path:
                continue
            if child.is_dir():
                shutil.rmtree(child, ignore_errors=True)
            else:
                child.unlink(missing_ok=True)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this server; raises with its stderr when check and it fails."""
        result = subprocess.run(
            [KUBECTL, "--kubeconfig", str(self.kubeconfig), *args],
            input=input, capture_output=True, text=True, timeout=timeout_s,
        )
        if check and result.returncode != 0:
            raise KubeApiError(f"kubectl {' '.join(args)} failed ({result.returncode}):\n{result.stderr}")
        return result

    def apply(self, source: Any) -> None:
        """kubectl apply (server-side validation strict): dict, list of dicts, YAML text or Path."""
        documents = _manifests(source)
        self.kubectl("apply", "-f", "-", input=yaml.safe_dump_all(documents))

    def install_crds(self, paths: Iterable[Path]) -> list[str]:
        """Apply CRD files and wait until each is Established (served). Returns their names."""
        names: list[str] = []
        documents: list[dict[str, Any]] = []
        for path in paths:
            for doc in _manifests(path):
                if doc.get("kind") == "CustomResourceDefinition":
                    documents.append(doc)
                    names.append(doc["metadata"]["name"])
        if not documents:
            return names
        self.apply(documents)
        self.kubectl("wait", "--for=condition=Established", "--timeout=60s",
                     *[f"crd/{name}" for name in names])
        return names

    def install_all_crds(self) -> list[str]:
        return self.install_crds(crd_files())


def crd_files() -> list[Path]:
    """Every CRD the tests install: the product's crds/ (if generated) and the test stand-ins."""
    files: list[Path] = []
    for directory in (PRODUCT_CRDS_DIR, TEST_CRDS_DIR):
        if directory.is_dir():
            files += sorted([*directory.glob("*.yaml"), *directory.glob("*.yml")])
    return files


def kubeconfig_credentials(kubeconfig: Path) -> dict[str, str]:
    """server, token, ca_pem and namespace of the kubeconfig's current context."""
    config = yaml.safe_load(Path(kubeconfig).read_text())
    context_name = config["current-context"]
    context = next(c["context"] for c in config["contexts"] if c["name"] == context_name)
    cluster = next(c["cluster"] for c in config["clusters"] if c["name"] == context["cluster"])
    user = next(u["user"] for u in config["users"] if u["name"] == context["user"])
    return {
        "server": cluster["server"],
        "token": user.get("token", ""),
        "ca_pem": base64.b64decode(cluster["certificate-authority-data"]).decode(),
        "namespace": context.get("namespace", "default"),
    }


def kopf_connection_info(kubeconfig: Path) -> Any:
    """A kopf.ConnectionInfo for this kubeconfig, read now (not at kopf's import time)."""
    import kopf

    credentials = kubeconfig_credentials(kubeconfig)
    return kopf.ConnectionInfo(
        server=credentials["server"],
        ca_data=credentials["ca_pem"].encode(),
        token=credentials["token"],
        default_namespace=credentials["namespace"],
    )


@contextlib.contextmanager
def running_server(data_dir: Path | None = None, *, install_crds: bool = True) -> Iterator[KubeApiServer]:
    """Build (cached), start, install CRDs, yield; stop at exit. data_dir None = a temp dir."""
    binary = build_binary()
    with contextlib.ExitStack() as stack:
        if data_dir is None:
            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="kube-api-")))
        server = KubeApiServer(binary, data_dir)
        stack.callback(server.stop)
        server.start()
        if install_crds:
            server.install_all_crds()
        yield server


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    data_dir = Path(args[0]).resolve() if args else None
    with running_server(data_dir) as server:
        print(f"export KUBECONFIG={server.kubeconfig}   # {server.url}; Ctrl-C stops it", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            while server.running:
                time.sleep(1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
