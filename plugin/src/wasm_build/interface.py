"""Read a Wasm module's imports and exports (binary format, no runtime needed) and state what
a Proxy-Wasm module built here must export and may import.

Used by the build (to check its output and to write Wizer's stubs for `env.*`) and by the
tests. Parses only the type, import and export sections.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "FuncType",
    "Import",
    "ModuleInterface",
    "read_interface",
    "REQUIRED_EXPORTS",
    "ENVOY_WASI_FUNCTIONS",
    "check_proxy_wasm_interface",
    "env_stubs_wat",
]

# What Envoy's Proxy-Wasm host needs to start the module and run an HTTP filter.
REQUIRED_EXPORTS: frozenset[str] = frozenset(
    {
        "memory",
        "proxy_abi_version_0_2_1",
        "_initialize",
        "malloc",
        "proxy_on_memory_allocate",
        "proxy_on_context_create",
        "proxy_on_vm_start",
        "proxy_on_configure",
        "proxy_on_done",
        "proxy_on_delete",
        "proxy_on_request_headers",
        "proxy_on_request_body",
        "proxy_on_response_headers",
        "proxy_on_response_body",
    }
)
# The WASI functions Envoy's host (proxy-wasm-cpp-host) provides; any other import fails there.
ENVOY_WASI_FUNCTIONS: frozenset[str] = frozenset(
    {
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
)
_WASI_MODULE = "wasi_snapshot_preview1"
_VALTYPES = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x7B: "v128", 0x70: "funcref", 0x6F: "externref"}
_KINDS = {0: "func", 1: "table", 2: "memory", 3: "global", 4: "tag"}


@dataclass(frozen=True)
class FuncType:
    params: tuple[str, ...]
    results: tuple[str, ...]


@dataclass(frozen=True)
class Import:
    module: str
    name: str
    kind: str  # func | table | memory | global | tag
    func_type: FuncType | None  # for functions


@dataclass(frozen=True)
class ModuleInterface:
    imports: tuple[Import, ...]
    exports: dict[str, str]  # name -> kind


class _Reader:
    def __init__(self, data: bytes, offset: int = 0, end: int | None = None) -> None:
        self.data = data
        self.offset = offset
        self.end = len(data) if end is None else end

    def byte(self) -> int:
        if self.offset >= self.end:
            raise ValueError("truncated Wasm module")
        value = self.data[self.offset]
        self.offset += 1
        return value

    def uleb(self) -> int:
        result = shift = 0
        while True:
            byte = self.byte()
            result |= (byte & 0x7F) << shift
            if byte < 0x80:
                return result
            shift += 7

    def name(self) -> str:
        size = self.uleb()
        raw = self.data[self.offset : self.offset + size]
        self.offset += size
        return raw.decode("utf-8")

    def limits(self) -> None:
        flags = self.byte()
        self.uleb()
        if flags & 1:
            self.uleb()


def read_interface(wasm: bytes) -> ModuleInterface:
    if wasm[:4] != b"\0asm":
        raise ValueError("not a Wasm module")
    reader = _Reader(wasm, 8)
    types: list[FuncType] = []
    raw_imports: list[tuple[str, str, str, int]] = []
    exports: dict[str, str] = {}
    while reader.offset < reader.end:
        section_id = reader.byte()
        size = reader.uleb()
        section = _Reader(wasm, reader.offset, reader.offset + size)
        reader.offset += size
        if section_id == 1:
            types = [_func_type(section) for _ in range(section.uleb())]
        elif section_id == 2:
            raw_imports = [_import(section) for _ in range(section.uleb())]
        elif section_id == 7:
            for _ in range(section.uleb()):
                name = section.name()
                kind = _KINDS.get(section.byte(), "?")
                section.uleb()
                exports[name] = kind
    imports = tuple(
        Import(module, name, kind, types[index] if kind == "func" else None)
        for module, name, kind, index in raw_imports
    )
    return ModuleInterface(imports, exports)


def _func_type(section: _Reader) -> FuncType:
    if section.byte() != 0x60:
        raise ValueError("unsupported type section entry")
    params = tuple(_VALTYPES[section.byte()] for _ in range(section.uleb()))
    results = tuple(_VALTYPES[section.byte()] for _ in range(section.uleb()))
    return FuncType(params, results)


def _import(section: _Reader) -> tuple[str, str, str, int]:
    module = section.name()
    name = section.name()
    kind = section.byte()
    index = -1
    if kind == 0:
        index = section.uleb()
    elif kind == 1:
        section.byte()
        section.limits()
    elif kind == 2:
        section.limits()
    elif kind == 3:
        section.byte()
        section.byte()
    elif kind == 4:
        section.byte()
        index = section.uleb()
    return module, name, _KINDS.get(kind, "?"), index


def check_proxy_wasm_interface(interface: ModuleInterface) -> list[str]:
    """Problems that would stop Envoy from loading the module (empty when it is fine)."""
    problems = [f"missing export {name}" for name in sorted(REQUIRED_EXPORTS - interface.exports.keys())]
    for item in interface.imports:
        if item.kind != "func":
            problems.append(f"imports a {item.kind}: {item.module}.{item.name}")
        elif item.module == "env" and item.name.startswith("proxy_"):
            continue
        elif item.module == _WASI_MODULE and item.name in ENVOY_WASI_FUNCTIONS:
            continue
        else:
            problems.append(f"imports {item.module}.{item.name}, which Envoy does not provide")
    return problems


def env_stubs_wat(interface: ModuleInterface) -> str:
    """A module exporting a trapping stub for each `env.*` function import: Wizer instantiates
    the module with it (`--preload env=...`); pre-initialisation must not call the host."""
    lines = [";; generated by wasm_build: Wizer stand-ins for the Proxy-Wasm host functions", "(module"]
    for item in interface.imports:
        if item.module != "env" or item.func_type is None:
            continue
        signature = ""
        if item.func_type.params:
            signature += " (param " + " ".join(item.func_type.params) + ")"
        if item.func_type.results:
            signature += " (result " + " ".join(item.func_type.results) + ")"
        lines.append(f'  (func (export "{item.name}"){signature} unreachable)')
    lines.append(")")
    return "\n".join(lines) + "\n"
