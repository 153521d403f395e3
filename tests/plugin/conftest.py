"""The `drive` fixture: one behaviour suite, two drivers: the pure-Python core, and the real
`dist/plugin.wasm` in the embedded host (built by the session, cached by input digest)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugin.exchange import Driver, run_core


@pytest.fixture(scope="session")
def plugin_wasm() -> Path:
    """dist/plugin.wasm, built from plugin/ if missing or stale (the build caches by input digest)."""
    from wasm_build.build import ensure_built

    return ensure_built()


@pytest.fixture(params=["core", "wasm"])
def drive(request: pytest.FixtureRequest) -> Driver:
    if request.param == "core":
        return run_core
    from tests.plugin.host.wasm_driver import make_driver

    return make_driver(request)
