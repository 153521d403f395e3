"""Fixtures for the wasm_host tests: the original Go build (downloaded once, cached)."""

from __future__ import annotations

from pathlib import Path

import pytest

from wasm_host.reference_build import fetch_go_build


@pytest.fixture(scope="session")
def go_build_wasm() -> Path:
    """The upstream gpustack-token-usage 1.2.2 plugin.wasm (wasm-go), from PyPI via pip."""
    return fetch_go_build()
