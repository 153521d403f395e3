"""Fixtures for delivery tests: real OCI registries (Debian `docker-registry`) on loopback ports.

Two registries per session: anonymous, and htpasswd basic auth. Each test gets its own
repository name, so tests do not see each other's tags.
"""

from __future__ import annotations

import base64
import hashlib
import http.server
import itertools
import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
import wasmtime

REGISTRY_BINARY = "docker-registry"  # Debian package docker-registry (CNCF distribution 2.8)
REGISTRY_USER = "pusher"
REGISTRY_PASSWORD = "s3cret-pass"
_READY_TIMEOUT_S = 15.0
_repo_counter = itertools.count()


@dataclass(frozen=True)
class RunningRegistry:
    host: str  # 127.0.0.1:PORT
    username: str | None
    password: str | None
    log_path: Path

    def repo(self, name: str) -> str:
        """A fresh repository reference prefix for one test: host/tests/<name>-<n>."""
        return f"{self.host}/tests/{name}-{next(_repo_counter)}"

    def auth_args(self) -> list[str]:
        return ["--username", self.username, "--password", self.password] if self.username else []  # type: ignore[list-item]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _require(binary: str, package: str) -> str:
    path = shutil.which(binary)
    if path is None:
        pytest.fail(f"{binary} not found: install the Debian package {package} (`make system-deps`)")
    return path


def _start_registry(
    workdir: Path, *, with_auth: bool, auth_block: str = "", tls: tuple[Path, Path] | None = None
) -> Iterator[RunningRegistry]:
    binary = _require(REGISTRY_BINARY, "docker-registry")
    workdir.mkdir(parents=True, exist_ok=True)
    if with_auth and not auth_block:
        _require("htpasswd", "apache2-utils")
        htpasswd = subprocess.run(
            ["htpasswd", "-Bbn", REGISTRY_USER, REGISTRY_PASSWORD], check=True, capture_output=True, text=True
        ).stdout
        (workdir / "htpasswd").write_text(htpasswd)
        auth_block = f"auth:\n  htpasswd:\n    realm: tests\n    path: {workdir / 'htpasswd'}\n"
    port = _free_port()
    (workdir / "config.yml").write_text(
        "version: 0.1\n"
        "log:\n  level: info\n"
        f"storage:\n  filesystem:\n    rootdirectory: {workdir / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
        + (f"  tls:\n    certificate: {tls[0]}\n    key: {tls[1]}\n" if tls else "")
        + auth_block
    )
    log_path = workdir / "registry.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([binary, "serve", str(workdir / "config.yml")], stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"docker-registry exited with {proc.returncode}: {log_path.read_text()[-2000:]}")
            try:
                scheme = "https" if tls else "http"
                with warnings.catch_warnings():  # the self-signed test certificate is not verified here
                    warnings.simplefilter("ignore")
                    status = requests.get(f"{scheme}://127.0.0.1:{port}/v2/", timeout=1, verify=False).status_code
                if status in (200, 401):
                    break
            except requests.ConnectionError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"docker-registry not ready after {_READY_TIMEOUT_S} s: {log_path.read_text()[-2000:]}")
            time.sleep(0.05)
        yield RunningRegistry(
            host=f"127.0.0.1:{port}",
            username=REGISTRY_USER if with_auth else None,
            password=REGISTRY_PASSWORD if with_auth else None,
            log_path=log_path,
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    yield from _start_registry(tmp_path_factory.mktemp("registry-open"), with_auth=False)


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    yield from _start_registry(tmp_path_factory.mktemp("registry-auth"), with_auth=True)


class _TokenServer:
    """A Docker token service (the Bearer flow of Docker Hub, GHCR, Harbor) for docker-registry.

    GET /token with Basic credentials -> a JWT (RS256, x5c header) granting the requested scope,
    signed with a throwaway self-signed certificate that the registry trusts (rootcertbundle).
    """

    def __init__(self, workdir: Path, service: str, issuer: str) -> None:
        _require("openssl", "openssl")
        self.key, self.cert = workdir / "token.key", workdir / "token.crt"
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=token-issuer",
             "-keyout", str(self.key), "-out", str(self.cert)],
            check=True, capture_output=True,
        )
        der = subprocess.run(
            ["openssl", "x509", "-in", str(self.cert), "-outform", "DER"], check=True, capture_output=True
        ).stdout
        self._x5c = base64.b64encode(der).decode()
        self.service, self.issuer = service, issuer
        self.requests = 0
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                server.requests += 1
                query = urllib.parse.parse_qs(urllib.parse.urlparse(self.path).query)
                expected = "Basic " + base64.b64encode(f"{REGISTRY_USER}:{REGISTRY_PASSWORD}".encode()).decode()
                if self.headers.get("Authorization") != expected:
                    self.send_response(401)
                    self.end_headers()
                    return
                body = json.dumps({"token": server.token(query.get("scope", [])), "expires_in": 300}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: object) -> None:
                pass

        self._httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()

    def token(self, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":", 2)
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [self._x5c]}
        claims = {"iss": self.issuer, "sub": REGISTRY_USER, "aud": self.service, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": f"t{now}{self.requests}", "access": access}
        signing_input = f"{_b64url(json.dumps(header).encode())}.{_b64url(json.dumps(claims).encode())}"
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)], input=signing_input.encode(),
            check=True, capture_output=True,
        ).stdout
        return f"{signing_input}.{_b64url(signature)}"

    def close(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@pytest.fixture(scope="session")
def token_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """A registry that answers 401 with a Bearer challenge and trusts a local token service."""
    workdir = tmp_path_factory.mktemp("registry-token")
    tokens = _TokenServer(workdir, service="test-registry", issuer="test-issuer")
    auth_block = (
        "auth:\n  token:\n"
        f"    realm: http://127.0.0.1:{tokens.port}/token\n"
        "    service: test-registry\n    issuer: test-issuer\n"
        f"    rootcertbundle: {tokens.cert}\n"
    )
    try:
        yield from _start_registry(workdir, with_auth=True, auth_block=auth_block)
    finally:
        tokens.close()


def _leb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def make_wasm(seed: str, payload_bytes: int = 64 * 1024) -> bytes:
    """A valid Wasm module (wat2wasm) carrying a custom section of seed-derived bytes.

    Distinct seeds give distinct modules; the payload gives a realistic, incompressible size.
    """
    base = wasmtime.wat2wasm('(module (func (export "_start")))')
    blocks = (hashlib.sha256(f"{seed}:{i}".encode()).digest() for i in itertools.count())
    payload = b"".join(itertools.islice(blocks, payload_bytes // 32 + 1))[:payload_bytes]
    name = b"tokenusage-test"
    body = _leb128(len(name)) + name + payload
    module = bytes(base) + b"\x00" + _leb128(len(body)) + body
    wasmtime.Module.validate(wasmtime.Engine(), module)
    return module


@pytest.fixture
def wasm_file(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    path = tmp_path / "plugin.wasm"
    path.write_bytes(make_wasm(request.node.name))
    return path


@dataclass(frozen=True)
class CliResult:
    returncode: int
    stdout: str
    stderr: str

    def fields(self) -> dict[str, str]:
        """`key: value` lines of stdout as a dict."""
        return dict(line.split(": ", 1) for line in self.stdout.splitlines() if ": " in line)


def run_cli(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None) -> CliResult:
    """The real `tokenusage` command in a subprocess, with HOME isolated from the user's Docker login."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("TOKENUSAGE_REGISTRY_")}
    full_env.setdefault("DOCKER_CONFIG", "/nonexistent-docker-config")
    full_env.update(env or {})
    proc = subprocess.run(
        [sys.executable, "-m", "tokenusage", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=120,
    )
    return CliResult(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def wasm_factory() -> Callable[..., bytes]:
    """`wasm_factory(seed, payload_bytes=...)` -> bytes of a valid, seed-specific module."""
    return make_wasm


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """`cli(*args, env=...)` runs the real `tokenusage` command; returns CliResult."""
    return run_cli


_GGCR_FETCH_SOURCE = Path(__file__).parent / "ggcr_fetch"


@pytest.fixture(scope="session")
def ggcr_fetch() -> Path:
    """tests/delivery/ggcr_fetch built with Go (cached by source hash under ~/.cache)."""
    go = shutil.which("go") or ("/usr/local/go/bin/go" if Path("/usr/local/go/bin/go").exists() else None)
    if go is None:
        pytest.fail("Go toolchain not found: go-containerregistry checks build tests/delivery/ggcr_fetch")
    digest = hashlib.sha256()
    for name in ("go.mod", "go.sum", "main.go"):
        digest.update((_GGCR_FETCH_SOURCE / name).read_bytes())
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "gpustack-token-usage"
    binary = cache / f"ggcr-fetch-{digest.hexdigest()[:16]}"
    if not binary.exists():
        cache.mkdir(parents=True, exist_ok=True)
        tmp = binary.with_suffix(".tmp")
        subprocess.run(
            [go, "build", "-buildvcs=false", "-trimpath", "-o", str(tmp), "."], cwd=_GGCR_FETCH_SOURCE, check=True, timeout=900,
            env={**os.environ, "CGO_ENABLED": "0"},
        )
        tmp.rename(binary)
    return binary


@pytest.fixture(scope="session")
def tls_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """An HTTPS registry with a self-signed certificate for 127.0.0.1 (no auth)."""
    _require("openssl", "openssl")
    workdir = tmp_path_factory.mktemp("registry-tls")
    cert, key = workdir / "tls.crt", workdir / "tls.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True, capture_output=True,
    )
    yield from _start_registry(workdir, with_auth=False, tls=(cert, key))
