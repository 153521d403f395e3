"""What Envoy sees of the module: its exports and imports, read with wabt's wasm-objdump."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ENVOY_WASI = {
    "environ_get",
    "environ_sizes_get",
    "clock_time_get",
    "fd_fdstat_get",
    "fd_prestat_get",
    "fd_prestat_dir_name",
    "fd_write",
    "poll_oneoff",
    "proc_exit",
    "sched_yield",
    "random_get",
}
HTTP_CALLBACKS = {
    "proxy_on_context_create",
    "proxy_on_vm_start",
    "proxy_on_configure",
    "proxy_on_done",
    "proxy_on_log",
    "proxy_on_delete",
    "proxy_on_request_headers",
    "proxy_on_request_body",
    "proxy_on_request_trailers",
    "proxy_on_response_headers",
    "proxy_on_response_body",
    "proxy_on_response_trailers",
}


def _section(wasm: Path, name: str) -> str:
    return subprocess.run(
        ["wasm-objdump", "-x", "-j", name, str(wasm)], check=True, capture_output=True, text=True
    ).stdout


def _imports(wasm: Path) -> list[tuple[str, str, str]]:
    # " - func[3] sig=2 <proxy_log> <- env.proxy_log"
    found = re.findall(r"^ - (\w+)\[\d+\].*<- ([\w.]+?)\.(\w+)$", _section(wasm, "Import"), re.M)
    return [(kind, module, name) for kind, module, name in found]


def _exports(wasm: Path) -> set[str]:
    return set(re.findall(r'^ - \w+\[\d+\].* -> "([^"]+)"$', _section(wasm, "Export"), re.M))


def test_exports_what_envoy_looks_up(plugin_wasm: Path) -> None:
    exports = _exports(plugin_wasm)
    required = {"memory", "proxy_abi_version_0_2_1", "_initialize", "malloc", "proxy_on_memory_allocate"}
    assert required | HTTP_CALLBACKS <= exports


def test_exports_nothing_else(plugin_wasm: Path) -> None:
    # Wizer's init function and the build's rename source are gone; no --export-dynamic leak.
    extra = _exports(plugin_wasm) - {"memory", "proxy_abi_version_0_2_1", "_initialize", "malloc", "proxy_on_memory_allocate"} - HTTP_CALLBACKS
    assert extra == set()


def test_imports_only_proxy_calls_and_the_wasi_envoy_provides(plugin_wasm: Path) -> None:
    imports = _imports(plugin_wasm)
    assert imports, "wasm-objdump output not understood"
    assert all(kind == "func" for kind, _, _ in imports)
    wasi = {name for _, module, name in imports if module == "wasi_snapshot_preview1"}
    env = {name for _, module, name in imports if module == "env"}
    others = {(module, name) for _, module, name in imports if module not in ("env", "wasi_snapshot_preview1")}
    assert others == set()
    assert wasi <= ENVOY_WASI
    assert env and all(name.startswith("proxy_") for name in env)
