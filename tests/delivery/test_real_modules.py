"""The real modules through a real registry: the upstream Go build and our own `tokenusage build`."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import pytest

from .conftest import CliResult, RunningRegistry

pytestmark = pytest.mark.registry

Cli = Callable[..., CliResult]


@pytest.fixture(scope="module")
def go_build_wasm() -> Path:
    from wasm_host.reference_build import fetch_go_build

    return fetch_go_build()


@pytest.fixture(scope="module")
def our_wasm() -> Path:
    from wasm_build.build import ensure_built

    return ensure_built()


def _round_trip(registry: RunningRegistry, cli: Cli, module: Path, tmp_path: Path, name: str, *extra: str) -> None:
    ref = registry.repo(name) + ":1.0.0"
    pushed = cli("push", ref, "--plugin", str(module), *extra)
    assert pushed.returncode == 0, pushed.stderr
    fields = pushed.fields()
    assert fields["module_sha256"] == hashlib.sha256(module.read_bytes()).hexdigest()
    verified = cli("verify-image", fields["url"], "--plugin", str(module))
    assert verified.returncode == 0, verified.stderr
    out = tmp_path / f"{name}.wasm"
    pulled = cli("pull", fields["url"], "-o", str(out))
    assert pulled.returncode == 0, pulled.stderr
    assert out.read_bytes() == module.read_bytes()
    again = cli("push", ref, "--plugin", str(module), *extra)
    assert again.fields()["status"] == "unchanged"


@pytest.mark.parametrize("extra", [[], ["--compat"]], ids=["higress", "compat"])
def test_upstream_go_build(registry: RunningRegistry, cli: Cli, go_build_wasm: Path, tmp_path: Path, extra: list[str]) -> None:
    _round_trip(registry, cli, go_build_wasm, tmp_path, "go-build", *extra)


@pytest.mark.wasm
def test_our_build(registry: RunningRegistry, cli: Cli, our_wasm: Path, tmp_path: Path) -> None:
    _round_trip(registry, cli, our_wasm, tmp_path, "our-build")
