"""Fixtures for the built module: `tokenusage build`'s own code, cached by input hash."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasm_build.build import ensure_built


@pytest.fixture(scope="session")
def plugin_wasm() -> Path:
    """dist/plugin.wasm for the current sources (a few ms when cached, 1-3 min to build)."""
    return ensure_built()
