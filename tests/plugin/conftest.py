"""The `drive` fixture: one behaviour suite, several drivers (the core now; the .wasm in a host)."""

from __future__ import annotations

import pytest

from tests.plugin.exchange import Driver, run_core

DRIVERS: dict[str, str] = {"core": "tests.plugin.exchange:run_core"}


@pytest.fixture(params=sorted(DRIVERS))
def drive(request: pytest.FixtureRequest) -> Driver:
    if request.param == "core":
        return run_core
    module_name, _, attr = DRIVERS[request.param].partition(":")
    module = __import__(module_name, fromlist=[attr])
    driver: Driver = getattr(module, attr)(request)
    return driver
