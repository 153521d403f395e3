"""Tiny hand-written Proxy-Wasm modules (WAT text, compiled by wasmtime) that each exercise one
host semantic exactly, independent of any SDK.

`proxy_module(...)` assembles a module from a fixed prelude (imports, a bump `malloc`, the ABI
marker, default callbacks) plus the callback bodies a test gives. Strings a body needs are
written `{name}` and expand to `i32.const OFFSET i32.const LENGTH` of a data segment.
"""

from __future__ import annotations

import re

import wasmtime

IMPORTS = {
    "proxy_log": 3,
    "proxy_get_buffer_bytes": 5,
    "proxy_set_buffer_bytes": 5,
    "proxy_get_header_map_value": 5,
    "proxy_replace_header_map_value": 5,
    "proxy_add_header_map_value": 5,
    "proxy_get_property": 4,
    "proxy_get_current_time_nanoseconds": 1,
    "proxy_send_local_response": 8,
    "proxy_continue_stream": 1,
}

# Scratch words the bodies use for returned pointers and sizes.
RET_PTR = 0
RET_SIZE = 4
SCRATCH = 16  # 16 bytes of free scratch (e.g. a time value, a status digit)
DATA_BASE = 1024
HEAP_BASE = 65536


def _escape(raw: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in raw)


def proxy_module(
    *,
    strings: dict[str, bytes] | None = None,
    configure: str = "i32.const 1",
    request_headers: str = "i32.const 0",
    request_body: str = "i32.const 0",
    response_headers: str = "i32.const 0",
    response_body: str = "i32.const 0",
    extra: str = "",
    marker: str = "proxy_abi_version_0_2_1",
    export_malloc: bool = True,
) -> bytes:
    layout: dict[str, tuple[int, int]] = {}
    data = []
    offset = DATA_BASE
    for name, raw in (strings or {}).items():
        layout[name] = (offset, len(raw))
        data.append(f'(data (i32.const {offset}) "{_escape(raw)}")')
        offset += len(raw) + 8

    def expand(body: str) -> str:
        return re.sub(r"\{(\w+)\}", lambda m: "i32.const {} i32.const {}".format(*layout[m.group(1)]), body)

    imports = "\n".join(
        f'(import "env" "{name}" (func ${name} (param {" ".join(["i32"] * arity)}) (result i32)))'
        for name, arity in IMPORTS.items()
    )
    malloc = "malloc" if export_malloc else "proxy_on_memory_allocate"
    text = f"""
(module
  {imports}
  (memory (export "memory") 4)
  (global $heap (mut i32) (i32.const {HEAP_BASE}))
  (func (export "{malloc}") (param $n i32) (result i32) (local $p i32)
    global.get $heap local.set $p
    global.get $heap local.get $n i32.add global.set $heap
    local.get $p)
  (func (export "{marker}"))
  (func (export "proxy_on_context_create") (param i32 i32))
  (func (export "proxy_on_vm_start") (param i32 i32) (result i32) i32.const 1)
  (func (export "proxy_on_configure") (param $ctx i32) (param $size i32) (result i32) {expand(configure)})
  (func (export "proxy_on_request_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    {expand(request_headers)})
  (func (export "proxy_on_request_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    {expand(request_body)})
  (func (export "proxy_on_response_headers") (param $ctx i32) (param $n i32) (param $eos i32) (result i32)
    {expand(response_headers)})
  (func (export "proxy_on_response_body") (param $ctx i32) (param $size i32) (param $eos i32) (result i32)
    {expand(response_body)})
  {expand(extra)}
  {" ".join(data)}
)"""
    return wasmtime.wat2wasm(text)


# Body snippets ------------------------------------------------------------------------------

def log_buffer(buffer_type: int) -> str:
    """Log (info) the whole buffer the module sees now."""
    return (f"(drop (call $proxy_get_buffer_bytes (i32.const {buffer_type}) (i32.const 0) (local.get $size) "
            f"(i32.const {RET_PTR}) (i32.const {RET_SIZE})))\n"
            f"(drop (call $proxy_log (i32.const 2) (i32.load (i32.const {RET_PTR})) (i32.load (i32.const {RET_SIZE}))))")


def log_status(call: str) -> str:
    """Run `call` (leaves a status on the stack) and log its status as one digit character."""
    return (f"(i32.store8 (i32.const {SCRATCH}) (i32.add (i32.const 48) {call}))\n"
            f"(drop (call $proxy_log (i32.const 2) (i32.const {SCRATCH}) (i32.const 1)))")


PAUSE_UNTIL_END = "(if (result i32) (local.get $eos) (then (i32.const 0)) (else (i32.const 1)))"
