"""Load a Proxy-Wasm module and start it the way Envoy (proxy-wasm-cpp-host) does.

Order: ABI version from the exported marker; link WASI (wasmtime's, with Envoy's clock) and the
`env.proxy_*` imports; `_initialize` (then `main(0,0)` or `__main_void`) else `_start`;
`proxy_on_context_create(root)`, `proxy_on_vm_start`, `proxy_on_configure`. A false from either
start callback is a start failure, as Envoy refuses the VM or the configuration.
"""

from __future__ import annotations

import hashlib
import logging
import os
import tempfile
import threading
import weakref
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import wasmtime
from importlib.metadata import version as _package_version

from wasm_host.abi import ABI_MARKERS, UNSUPPORTED_ABI_MARKERS, BufferType, LogLevel
from wasm_host.clock import Clock, SystemClock
from wasm_host.imports import LOG_HISTORY_LIMIT, ProxyHost
from wasm_host.state import ContextState, LogRecord, PropertyValue, encode_property, property_key

_wasi_log = logging.getLogger("wasm_host.wasi")

_WASI = "wasi_snapshot_preview1"
_WASMTIME_VERSION = _package_version("wasmtime")


class VmError(Exception):
    """The module cannot be loaded or started. The message is one line for an operator."""


class ConfigRejected(VmError):
    """proxy_on_configure returned false: the plugin refused its configuration."""


class VmCrashed(VmError):
    """The module trapped; like Envoy, the VM is unusable afterwards."""


_engine_lock = threading.Lock()
_engine: wasmtime.Engine | None = None
_modules: dict[str, wasmtime.Module] = {}


def shared_engine() -> wasmtime.Engine:
    """One engine per process (modules compiled by it can be shared by many VMs)."""
    global _engine
    with _engine_lock:
        if _engine is None:
            _engine = wasmtime.Engine(wasmtime.Config())
        return _engine


def _compile_cache_dir() -> Path:
    configured = os.environ.get("GPUSTACK_TOKEN_USAGE_CACHE")
    base = Path(configured) if configured else Path.home() / ".cache" / "gpustack-token-usage"
    return base / "wasmtime"


def compile_module(wasm: bytes) -> wasmtime.Module:
    """Compile once per process and once per machine: compiled code is cached on disk, keyed by
    the module's digest and the wasmtime version. (wasmtime's own cache runs a background
    thread that can panic at interpreter exit, so it is not used.)"""
    digest = hashlib.sha256(wasm).hexdigest()
    with _engine_lock:
        cached = _modules.get(digest)
    if cached is not None:
        return cached
    engine = shared_engine()
    cache_file = _compile_cache_dir() / f"{digest}-wasmtime-{_WASMTIME_VERSION}.cwasm"
    module: wasmtime.Module | None = None
    if cache_file.is_file():
        try:
            module = wasmtime.Module.deserialize_file(engine, str(cache_file))
        except wasmtime.WasmtimeError:
            module = None
    if module is None:
        try:
            module = wasmtime.Module(engine, wasm)
        except wasmtime.WasmtimeError as exc:
            raise VmError(f"not a valid WebAssembly module: {_first_line(exc)}") from exc
        try:
            cache_file.parent.mkdir(parents=True, exist_ok=True)
            partial = cache_file.with_suffix(f".{os.getpid()}.part")
            partial.write_bytes(module.serialize())
            partial.replace(cache_file)
        except OSError:
            pass  # a read-only home: compile every time
    with _engine_lock:
        _modules[digest] = module
    return module


def _remove_files(paths: list[str]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except OSError:
            pass


def _first_line(exc: BaseException) -> str:
    """One line for an operator. For a trap: its cause and the innermost frame, not the
    'error while executing at wasm backtrace:' header wasmtime puts first."""
    text = str(exc).strip()
    if not text:
        return type(exc).__name__
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if len(lines) == 1:
        return lines[0]
    cause = next((line for line in lines if line.startswith("wasm trap:")), None)
    if cause is None and "Caused by:" in lines:
        after = lines[lines.index("Caused by:") + 1 :]
        cause = after[0] if after else None
    frame = next((line for line in lines if line.startswith("0:")), None)
    if cause is None:
        return lines[0]
    return f"{cause} (at {frame[2:].strip()})" if frame else cause


@dataclass(frozen=True)
class PluginIdentity:
    """What Envoy knows about the plugin and answers as properties."""

    plugin_name: str = "gpustack-token-usage"
    root_id: str = ""
    vm_id: str = ""


class Vm:
    """One module instance (one VM), its root context, and the host state behind its imports."""

    def __init__(
        self,
        wasm: bytes | Path | str,
        *,
        plugin_config: bytes | str = b"",
        vm_config: bytes | str = b"",
        clock: Clock | None = None,
        identity: PluginIdentity = PluginIdentity(),
        log_level: LogLevel = LogLevel.INFO,
        properties: Mapping[str, PropertyValue] | None = None,
    ) -> None:
        if isinstance(wasm, (str, Path)):
            path = Path(wasm)
            try:
                wasm = path.read_bytes()
            except OSError as exc:
                raise VmError(f"cannot read the module {path}: {exc.strerror or exc}") from exc
        self.clock: Clock = clock or SystemClock()
        self.identity = identity
        self.plugin_config = plugin_config.encode() if isinstance(plugin_config, str) else plugin_config
        self.vm_config = vm_config.encode() if isinstance(vm_config, str) else vm_config
        vm_properties = {
            property_key("plugin_name"): encode_property(identity.plugin_name),
            property_key("plugin_root_id"): encode_property(identity.root_id),
            property_key("plugin_vm_id"): encode_property(identity.vm_id),
        }
        for name, value in (properties or {}).items():
            vm_properties[property_key(name)] = encode_property(value)
        self.host = ProxyHost(clock=self.clock, log_level=log_level, vm_properties=vm_properties)
        self.wasi_output: deque[tuple[str, str]] = deque(maxlen=LOG_HISTORY_LIMIT)
        self.failure: VmCrashed | None = None
        self._next_context_id = 1

        self.module = compile_module(wasm)
        self.abi_version = self._abi_version()
        self._check_imports()
        self.store = wasmtime.Store(shared_engine())
        self.store.set_wasi(self._wasi_config())
        self.instance = self._instantiate()
        exports = self.instance.exports(self.store)
        self._exports = {name: exports[name] for name in self._export_names}
        memory = self._exports.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            raise VmError("module exports no memory")
        # Envoy looks up malloc first, then proxy_on_memory_allocate.
        alloc = self._exports.get("malloc") or self._exports.get("proxy_on_memory_allocate")
        if not isinstance(alloc, wasmtime.Func):
            raise VmError("module exports neither malloc nor proxy_on_memory_allocate")
        self.host.bind(self.store, memory, alloc)
        self._start()

    # --- loading --------------------------------------------------------------------------

    @property
    def _export_names(self) -> list[str]:
        return [e.name for e in self.module.exports]

    def _abi_version(self) -> str:
        names = set(self._export_names)
        for marker, version in ABI_MARKERS.items():
            if marker in names:
                return version
        for marker, version in UNSUPPORTED_ABI_MARKERS.items():
            if marker in names:
                raise VmError(f"module uses Proxy-Wasm ABI {version}, which this host does not support (0.2.x only)")
        raise VmError("module exports no proxy_abi_version_* marker: not a Proxy-Wasm module")

    def _check_imports(self) -> None:
        missing = []
        for imp in self.module.imports:
            if imp.module == "env":
                if imp.name is None or not self.host.provides(imp.name):
                    missing.append(f"env.{imp.name}")
            elif imp.module != _WASI:
                missing.append(f"{imp.module}.{imp.name}")
        if missing:
            raise VmError(f"module imports functions this host does not provide: {', '.join(missing)}")

    def _wasi_config(self) -> wasmtime.WasiConfig:
        # WASI stdout/stderr go to files that are read back after each call. (wasmtime's
        # custom-output callbacks panic a runtime thread at interpreter exit.)
        wasi = wasmtime.WasiConfig()
        self._wasi_files: dict[str, tuple[str, int]] = {}
        for stream in ("stdout", "stderr"):
            fd, path = tempfile.mkstemp(prefix=f"wasm-{stream}-")
            os.close(fd)
            self._wasi_files[stream] = (path, 0)
            setattr(wasi, f"{stream}_file", path)
        weakref.finalize(self, _remove_files, [p for p, _ in self._wasi_files.values()])
        return wasi

    def _drain_wasi_output(self) -> None:
        for stream, (path, offset) in self._wasi_files.items():
            try:
                size = os.stat(path).st_size
                if size <= offset:
                    continue
                with open(path, "rb") as handle:
                    handle.seek(offset)
                    data = handle.read(size - offset)
            except OSError:
                continue
            self._wasi_files[stream] = (path, offset + len(data))
            for line in data.decode("utf-8", "replace").splitlines():
                self.wasi_output.append((stream, line))
                _wasi_log.info("[%s] %s", stream, line)

    def _instantiate(self) -> wasmtime.Instance:
        engine = shared_engine()
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        linker.allow_shadowing = True
        clock_type = wasmtime.FuncType(
            [wasmtime.ValType.i32(), wasmtime.ValType.i64(), wasmtime.ValType.i32()], [wasmtime.ValType.i32()]
        )
        linker.define_func(_WASI, "clock_time_get", clock_type, self.host.wasi_clock_time_get)
        for imp in self.module.imports:
            if imp.module == "env" and imp.name is not None:
                ty = imp.type
                if not isinstance(ty, wasmtime.FuncType):
                    raise VmError(f"module imports env.{imp.name} as a non-function")
                linker.define_func("env", imp.name, ty, self.host.function_for(imp.name, ty))
        try:
            return linker.instantiate(self.store, self.module)
        except (wasmtime.WasmtimeError, wasmtime.Trap) as exc:
            raise VmError(f"cannot instantiate the module: {_first_line(exc)}") from exc

    def _start(self) -> None:
        try:
            if "_initialize" in self._exports:
                self._call_raw("_initialize")
                main = self._exports.get("main")
                if isinstance(main, wasmtime.Func) and len(main.type(self.store).params) == 2:
                    self._call_raw("main", 0, 0)
                elif "__main_void" in self._exports:
                    self._call_raw("__main_void")
            elif "_start" in self._exports:
                self._call_raw("_start")
        except VmCrashed as exc:
            raise VmError(f"module failed while starting: {exc}") from exc
        self.root = ContextState(context_id=self._new_context_id())
        self.host.contexts[self.root.context_id] = self.root
        self.call("proxy_on_context_create", self.root, self.root.context_id, 0)
        self.root.buffers[BufferType.VM_CONFIGURATION] = bytearray(self.vm_config)
        try:
            started = self.call("proxy_on_vm_start", self.root, self.root.context_id, len(self.vm_config), default=1)
        except VmCrashed as exc:
            raise VmError(f"module trapped in proxy_on_vm_start: {exc}") from exc
        finally:
            del self.root.buffers[BufferType.VM_CONFIGURATION]
        if not started:
            raise VmError(f"proxy_on_vm_start returned false{self._last_error_suffix()}")
        self.configure(self.plugin_config)

    def configure(self, plugin_config: bytes | str) -> None:
        """proxy_on_configure with this configuration; ConfigRejected if the plugin says no."""
        raw = plugin_config.encode() if isinstance(plugin_config, str) else plugin_config
        self.root.buffers[BufferType.PLUGIN_CONFIGURATION] = bytearray(raw)
        mark = len(self.host.logs)
        try:
            accepted = self.call("proxy_on_configure", self.root, self.root.context_id, len(raw), default=1)
        except VmCrashed as exc:
            raise VmError(f"module trapped in proxy_on_configure: {exc}") from exc
        finally:
            del self.root.buffers[BufferType.PLUGIN_CONFIGURATION]
        if not accepted:
            raise ConfigRejected(f"the plugin refused its configuration{self._last_error_suffix(mark)}")
        self.plugin_config = raw

    def _last_error_suffix(self, mark: int = 0) -> str:
        # The plugin's own words: its last error line, else its last warning.
        recent = list(self.host.logs)[mark:]
        for level in (LogLevel.ERROR, LogLevel.WARN):
            lines = [r.message for r in recent if r.level >= level]
            if lines:
                return f": {lines[-1]}"
        return ""

    # --- calling the module ---------------------------------------------------------------

    def _new_context_id(self) -> int:
        context_id = self._next_context_id
        self._next_context_id += 1
        return context_id

    def has_export(self, name: str) -> bool:
        return name in self._exports

    def _call_raw(self, name: str, *args: int) -> int:
        func = self._exports[name]
        assert isinstance(func, wasmtime.Func)
        mark = len(self.wasi_output)
        try:
            result = func(self.store, *args)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            self._drain_wasi_output()
            raise self._crash(name, exc, [t for s, t in list(self.wasi_output)[mark:] if s == "stderr"]) from exc
        finally:
            self._drain_wasi_output()
        return int(result) if result is not None else 0

    def _crash(self, name: str, exc: BaseException, stderr_lines: list[str]) -> VmCrashed:
        # What the module printed to stderr just before trapping usually says why.
        said = f" (stderr: {stderr_lines[-1][:300]})" if stderr_lines else ""
        self.failure = VmCrashed(f"module trapped in {name}: {_first_line(exc)}{said}")
        return self.failure

    def call(self, name: str, ctx: ContextState, *args: int, default: int = 0) -> int:
        """Run callback `name` with `ctx` as the current context. A callback the module does
        not export is skipped and answers `default` (Envoy treats it as Continue)."""
        if self.failure is not None:
            raise self.failure
        if name not in self._exports:
            return default
        previous_active, previous_effective = self.host.active, self.host.effective
        self.host.active, self.host.effective = ctx, None
        try:
            return self._call_raw(name, *args)
        finally:
            self.host.active, self.host.effective = previous_active, previous_effective

    def create_context(self) -> ContextState:
        """A new HTTP context under the root context (proxy_on_context_create)."""
        ctx = ContextState(context_id=self._new_context_id(), root_context_id=self.root.context_id)
        self.host.contexts[ctx.context_id] = ctx
        self.call("proxy_on_context_create", ctx, ctx.context_id, self.root.context_id)
        return ctx

    def delete_context(self, ctx: ContextState) -> None:
        """End of a stream: proxy_on_done, proxy_on_log, proxy_on_delete; always forgets it."""
        if ctx.deleted:
            return
        try:
            if self.failure is None:
                self.call("proxy_on_done", ctx, ctx.context_id)
                self.call("proxy_on_log", ctx, ctx.context_id)
                self.call("proxy_on_delete", ctx, ctx.context_id)
        finally:
            ctx.deleted = True
            self.host.contexts.pop(ctx.context_id, None)

    @property
    def live_contexts(self) -> int:
        """HTTP contexts created and not yet deleted (root and VM contexts excluded)."""
        return sum(1 for c in self.host.contexts.values() if c.root_context_id)

    @property
    def tick_period_ms(self) -> int:
        return self.host.tick_period_ms.get(self.root.context_id, 0)

    def tick(self) -> None:
        self.call("proxy_on_tick", self.root, self.root.context_id)

    def close(self) -> None:
        """Envoy's shutdown of a VM: proxy_on_done then proxy_on_delete on the root context."""
        if self.failure is None and not self.root.deleted:
            try:
                self.call("proxy_on_done", self.root, self.root.context_id)
                self.call("proxy_on_delete", self.root, self.root.context_id)
            except VmCrashed:
                pass
        self.root.deleted = True

    # --- what the module said -----------------------------------------------------------------

    @property
    def logs(self) -> list[LogRecord]:
        return list(self.host.logs)

    def log_messages(self, min_level: LogLevel = LogLevel.TRACE) -> list[str]:
        return [r.message for r in self.host.logs if r.level >= min_level]

    def clear_logs(self) -> None:
        self.host.logs.clear()
