"""Gateway fixtures: the original Go build, the sample upstream, a running gateway."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from usage_gateway.app import Gateway, RunningGateway, start_gateway
from usage_gateway.sample_upstream import Pacing, RunningUpstream, start_sample_upstream
from usage_gateway.upstream import AiohttpTransport
from wasm_host import Vm
from wasm_host.reference_build import fetch_go_build

FAST = Pacing(first_token_delay_ms=30, inter_token_delay_ms=(1, 3))


@pytest.fixture(scope="session")
def go_build_wasm() -> Path:
    return fetch_go_build()


@pytest.fixture()
async def sample_upstream() -> AsyncIterator[RunningUpstream]:
    running = await start_sample_upstream(FAST)
    yield running
    await running.stop()


@pytest.fixture(scope="session")
def built_plugin_wasm() -> Path:
    """Our own dist/plugin.wasm for the current sources (built once, cached by the build)."""
    from wasm_build.build import ensure_built

    return ensure_built()


@pytest.fixture(params=["go-build", "ours"])
def module_wasm(request: pytest.FixtureRequest) -> tuple[str, Path]:
    """Each end-to-end test runs with the original Go build and with our build."""
    name = str(request.param)
    fixture = "go_build_wasm" if name == "go-build" else "built_plugin_wasm"
    return name, request.getfixturevalue(fixture)


@pytest.fixture()
async def module_gateway(module_wasm: tuple[str, Path], sample_upstream: RunningUpstream) -> AsyncIterator[RunningGateway]:
    gateway = Gateway(vm=Vm(module_wasm[1], plugin_config="{}"), transport=AiohttpTransport(),
                      upstream_url=sample_upstream.url)
    running = await start_gateway(gateway)
    yield running
    await running.stop()


@pytest.fixture()
async def our_gateway(built_plugin_wasm: Path, sample_upstream: RunningUpstream) -> AsyncIterator[RunningGateway]:
    gateway = Gateway(vm=Vm(built_plugin_wasm, plugin_config="{}"), transport=AiohttpTransport(),
                      upstream_url=sample_upstream.url)
    running = await start_gateway(gateway)
    yield running
    await running.stop()


@pytest.fixture()
async def go_gateway(go_build_wasm: Path, sample_upstream: RunningUpstream) -> AsyncIterator[RunningGateway]:
    gateway = Gateway(vm=Vm(go_build_wasm, plugin_config="{}"), transport=AiohttpTransport(),
                      upstream_url=sample_upstream.url)
    running = await start_gateway(gateway)
    yield running
    await running.stop()
