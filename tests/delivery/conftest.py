"""Fixtures for delivery tests: real OCI registries (Debian `docker-registry`) on loopback ports.

Two registries per session: anonymous, and htpasswd basic auth. Each test gets its own
repository name, so tests do not see each other's tags.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import socket
import subprocess
import sys
import time
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


def _start_registry(workdir: Path, *, with_auth: bool) -> Iterator[RunningRegistry]:
    binary = _require(REGISTRY_BINARY, "docker-registry")
    workdir.mkdir(parents=True, exist_ok=True)
    auth_block = ""
    if with_auth:
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
                status = requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code
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
