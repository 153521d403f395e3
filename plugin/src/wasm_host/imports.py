"""Host side of each `env.proxy_*` import, with Envoy's semantics (proxy-wasm-cpp-host + Envoy).

One `ProxyHost` per VM. Every import reads and writes module memory through the helpers here
and answers with a `Status`; a pointer outside memory answers INVALID_MEMORY_ACCESS instead of
trapping. Host calls act on the context whose callback is running, or on the one the module
chose with `proxy_set_effective_context`, as in Envoy.
"""

from __future__ import annotations

import logging
import struct
import weakref
from collections import deque
from collections.abc import Callable
from typing import Any

import wasmtime

from wasm_host.abi import BufferType, LogLevel, MapType, MetricType, Status, StreamType
from wasm_host.clock import Clock
from wasm_host.state import (
    ContextState,
    HeaderMap,
    LocalResponse,
    LogRecord,
    decode_pairs,
    encode_pairs,
    to_text,
)

_plugin_log = logging.getLogger("wasm_host.plugin")
_host_log = logging.getLogger("wasm_host")

_PY_LEVELS = {
    LogLevel.TRACE: logging.DEBUG,
    LogLevel.DEBUG: logging.DEBUG,
    LogLevel.INFO: logging.INFO,
    LogLevel.WARN: logging.WARNING,
    LogLevel.ERROR: logging.ERROR,
    LogLevel.CRITICAL: logging.CRITICAL,
}

# WASI errno values used by the clock override.
_WASI_ESUCCESS = 0
_WASI_EFAULT = 21
_WASI_ENOTSUP = 58

# Foreign functions Envoy registers that make sense without a real Envoy: accepted, no result.
_NOOP_FOREIGN_FUNCTIONS = frozenset({b"clear_route_cache", b"declare_property", b"set_envoy_filter_state"})

# Higress-only imports a module may declare; the host has no Redis or upstream table.
_UNIMPLEMENTED_IMPORTS = frozenset(
    {
        "proxy_redis_init",
        "proxy_redis_call",
        "proxy_inject_encoded_data_to_filter_chain",
        "proxy_get_upstream_hosts",
        "proxy_set_upstream_override_host",
        "proxy_grpc_call",
        "proxy_grpc_stream",
        "proxy_grpc_send",
        "proxy_grpc_cancel",
        "proxy_grpc_close",
    }
)

LOG_HISTORY_LIMIT = 10_000


class _MemoryFault(Exception):
    """A pointer or length from the module falls outside its memory."""


class ProxyHost:
    """State and import functions of one VM. `vm.py` binds memory and the allocator after
    instantiation and sets `active` around every callback."""

    def __init__(self, *, clock: Clock, log_level: LogLevel, vm_properties: dict[bytes, bytes]) -> None:
        self.clock = clock
        self.log_level = log_level
        self.vm_properties = vm_properties
        self.vm_context = ContextState(context_id=0)
        self.contexts: dict[int, ContextState] = {0: self.vm_context}
        self.active: ContextState = self.vm_context
        self.effective: ContextState | None = None
        self.logs: deque[LogRecord] = deque(maxlen=LOG_HISTORY_LIMIT)
        self.tick_period_ms: dict[int, int] = {}
        self.shared_data: dict[bytes, tuple[bytes, int]] = {}
        self.queues: dict[int, deque[bytes]] = {}
        self.queue_names: dict[bytes, int] = {}
        self.metrics: dict[int, tuple[MetricType, bytes, int]] = {}
        self.unimplemented_calls: list[str] = []
        # Weak: wasmtime-py keeps host functions (and so this object) alive for as long as
        # the store lives; a strong reference back would keep every store alive forever.
        self._store_ref: weakref.ReferenceType[wasmtime.Store] | None = None
        self._memory: wasmtime.Memory | None = None
        self._alloc: wasmtime.Func | None = None

    # --- wiring -------------------------------------------------------------------------

    def bind(self, store: wasmtime.Store, memory: wasmtime.Memory, alloc: wasmtime.Func) -> None:
        self._store_ref, self._memory, self._alloc = weakref.ref(store), memory, alloc

    def provides(self, name: str) -> bool:
        return name in _UNIMPLEMENTED_IMPORTS or callable(getattr(self, name, None)) and name.startswith("proxy_")

    def function_for(self, name: str, ty: wasmtime.FuncType) -> Callable[..., Any]:
        """A host function with the exact type the module declared for `name`."""
        if name in _UNIMPLEMENTED_IMPORTS:

            def impl(*_args: int) -> int:
                self.unimplemented_calls.append(name)
                _host_log.warning("module called %s, which this host does not implement", name)
                return Status.UNIMPLEMENTED

        else:
            impl = getattr(self, name)
        unsigned = [str(p) == "i32" for p in ty.params]
        returns = bool(ty.results)

        def host_fn(*args: int) -> int | None:
            # wasm i32 arrives signed; pointers and lengths are unsigned in the ABI.
            fixed = [a & 0xFFFFFFFF if u else a for a, u in zip(args, unsigned)]
            try:
                status = int(impl(*fixed))
            except _MemoryFault:
                status = Status.INVALID_MEMORY_ACCESS
            return status if returns else None

        return host_fn

    @property
    def context(self) -> ContextState:
        return self.effective if self.effective is not None else self.active

    # --- memory -------------------------------------------------------------------------

    def _mem(self) -> tuple[wasmtime.Store, wasmtime.Memory]:
        store = self._store_ref() if self._store_ref is not None else None
        if store is None or self._memory is None:
            raise _MemoryFault("memory not bound yet")
        return store, self._memory

    def read(self, ptr: int, size: int) -> bytes:
        store, memory = self._mem()
        if size == 0:
            return b""
        if ptr + size > memory.data_len(store):
            raise _MemoryFault(f"read {ptr}+{size} outside memory")
        return bytes(memory.read(store, ptr, ptr + size))

    def write(self, ptr: int, data: bytes) -> None:
        store, memory = self._mem()
        if ptr + len(data) > memory.data_len(store):
            raise _MemoryFault(f"write {ptr}+{len(data)} outside memory")
        if data:
            memory.write(store, data, ptr)

    def write_u32(self, ptr: int, value: int) -> None:
        self.write(ptr, struct.pack("<I", value & 0xFFFFFFFF))

    def write_u64(self, ptr: int, value: int) -> None:
        self.write(ptr, struct.pack("<Q", value & 0xFFFFFFFFFFFFFFFF))

    def allocate(self, size: int) -> int:
        """Memory inside the module, from `malloc` (or `proxy_on_memory_allocate`)."""
        store, _ = self._mem()
        assert self._alloc is not None
        ptr = int(self._alloc(store, size)) & 0xFFFFFFFF
        if ptr == 0 and size > 0:
            raise _MemoryFault("module allocator returned null")
        return ptr

    def return_bytes(self, data: bytes, ptr_ptr: int, size_ptr: int) -> int:
        ptr = self.allocate(len(data))
        self.write(ptr, data)
        self.write_u32(ptr_ptr, ptr)
        self.write_u32(size_ptr, len(data))
        return Status.OK

    # --- logging, time, ticks -----------------------------------------------------------

    def proxy_log(self, level: int, ptr: int, size: int) -> int:
        message = to_text(self.read(ptr, size))
        try:
            log_level = LogLevel(level)
        except ValueError:
            return Status.BAD_ARGUMENT
        record = LogRecord(log_level, message, self.context.context_id)
        self.logs.append(record)
        if log_level >= self.log_level:
            _plugin_log.log(_PY_LEVELS[log_level], "[ctx %d] %s", record.context_id, message)
        return Status.OK

    def proxy_get_log_level(self, ret_ptr: int) -> int:
        self.write_u32(ret_ptr, int(self.log_level))
        return Status.OK

    def proxy_get_current_time_nanoseconds(self, ret_ptr: int) -> int:
        self.write_u64(ret_ptr, self.clock.realtime_ns())
        return Status.OK

    def proxy_set_tick_period_milliseconds(self, period_ms: int) -> int:
        self.tick_period_ms[self.context.root_context_id or self.context.context_id] = period_ms
        return Status.OK

    def wasi_clock_time_get(self, clock_id: int, _precision: int, ret_ptr: int) -> int:
        # Envoy answers WASI's clock from its own time source, so the injected clock drives it too.
        if clock_id == 0:
            now_ns = self.clock.realtime_ns()
        elif clock_id == 1:
            now_ns = self.clock.monotonic_ns()
        else:
            return _WASI_ENOTSUP
        try:
            self.write_u64(ret_ptr & 0xFFFFFFFF, now_ns)
        except _MemoryFault:
            return _WASI_EFAULT
        return _WASI_ESUCCESS

    # --- properties -----------------------------------------------------------------------

    def proxy_get_property(self, path_ptr: int, path_size: int, ret_ptr_ptr: int, ret_size_ptr: int) -> int:
        path = self.read(path_ptr, path_size).rstrip(b"\0")
        value = self.context.properties.get(path)
        if value is None:
            root = self.contexts.get(self.context.root_context_id)
            value = root.properties.get(path) if root is not None else None
        if value is None:
            value = self.vm_properties.get(path)
        if value is None:
            _host_log.debug("property %r not found", path)
            return Status.NOT_FOUND
        return self.return_bytes(value, ret_ptr_ptr, ret_size_ptr)

    def proxy_set_property(self, path_ptr: int, path_size: int, value_ptr: int, value_size: int) -> int:
        path = self.read(path_ptr, path_size).rstrip(b"\0")
        self.context.properties[path] = self.read(value_ptr, value_size)
        return Status.OK

    # --- header maps ------------------------------------------------------------------------

    def _map(self, map_type: int) -> HeaderMap | None:
        try:
            kind = MapType(map_type)
        except ValueError:
            return None
        ctx = self.context
        found = ctx.maps.get(kind)
        if found is None and kind in ctx.allow_trailers_creation:
            found = ctx.maps[kind] = HeaderMap()
        return found

    def proxy_get_header_map_pairs(self, map_type: int, ret_ptr_ptr: int, ret_size_ptr: int) -> int:
        header_map = self._map(map_type)
        if header_map is None:
            return Status.BAD_ARGUMENT
        return self.return_bytes(encode_pairs(header_map.pairs()), ret_ptr_ptr, ret_size_ptr)

    def proxy_set_header_map_pairs(self, map_type: int, ptr: int, size: int) -> int:
        header_map = self._map(map_type)
        if header_map is None:
            return Status.BAD_ARGUMENT
        try:
            pairs = decode_pairs(self.read(ptr, size))
        except ValueError:
            return Status.BAD_ARGUMENT
        header_map.set_all(pairs)
        return Status.OK

    def proxy_get_header_map_size(self, map_type: int, ret_size_ptr: int) -> int:
        header_map = self._map(map_type)
        if header_map is None:
            return Status.BAD_ARGUMENT
        self.write_u32(ret_size_ptr, header_map.byte_size())
        return Status.OK

    def proxy_get_header_map_value(
        self, map_type: int, key_ptr: int, key_size: int, ret_ptr_ptr: int, ret_size_ptr: int
    ) -> int:
        header_map = self._map(map_type)
        if header_map is None:
            return Status.BAD_ARGUMENT
        value = header_map.get(to_text(self.read(key_ptr, key_size)))
        if value is None:
            return Status.NOT_FOUND
        return self.return_bytes(value.encode("utf-8", "surrogateescape"), ret_ptr_ptr, ret_size_ptr)

    def proxy_replace_header_map_value(
        self, map_type: int, key_ptr: int, key_size: int, value_ptr: int, value_size: int
    ) -> int:
        header_map = self._map(map_type)
        if header_map is None:
            return Status.BAD_ARGUMENT
        header_map.replace(to_text(self.read(key_ptr, key_size)), to_text(self.read(value_ptr, value_size)))
        return Status.OK

    def proxy_add_header_map_value(
        self, map_type: int, key_ptr: int, key_size: int, value_ptr: int, value_size: int
    ) -> int:
        header_map = self._map(map_type)
        if header_map is None:
            return Status.BAD_ARGUMENT
        header_map.add(to_text(self.read(key_ptr, key_size)), to_text(self.read(value_ptr, value_size)))
        return Status.OK

    def proxy_remove_header_map_value(self, map_type: int, key_ptr: int, key_size: int) -> int:
        header_map = self._map(map_type)
        if header_map is None:
            return Status.BAD_ARGUMENT
        header_map.remove(to_text(self.read(key_ptr, key_size)))
        return Status.OK

    # --- buffers ------------------------------------------------------------------------------

    def _buffer(self, buffer_type: int) -> tuple[bytearray | None, bool]:
        """(buffer or None, whether the module may change it)."""
        kind = BufferType(buffer_type)
        ctx = self.context
        found = ctx.buffers.get(kind)
        if found is None and ctx.root_context_id:
            # Configuration buffers live on the root context.
            root = self.contexts.get(ctx.root_context_id)
            found = root.buffers.get(kind) if root is not None else None
        mutable = kind in (BufferType.HTTP_REQUEST_BODY, BufferType.HTTP_RESPONSE_BODY,
                           BufferType.DOWNSTREAM_DATA, BufferType.UPSTREAM_DATA)
        return found, mutable

    def proxy_get_buffer_bytes(
        self, buffer_type: int, start: int, length: int, ret_ptr_ptr: int, ret_size_ptr: int
    ) -> int:
        if buffer_type > max(BufferType):
            return Status.BAD_ARGUMENT
        buffer, _ = self._buffer(buffer_type)
        if buffer is None:
            return Status.NOT_FOUND
        if start > len(buffer):
            return Status.BAD_ARGUMENT
        length = min(length, len(buffer) - start)
        if length == 0:
            # Envoy writes nothing here; SDKs pre-set null/0, which zeros reproduce.
            self.write_u32(ret_ptr_ptr, 0)
            self.write_u32(ret_size_ptr, 0)
            return Status.OK
        return self.return_bytes(bytes(buffer[start : start + length]), ret_ptr_ptr, ret_size_ptr)

    def proxy_get_buffer_status(self, buffer_type: int, ret_length_ptr: int, ret_flags_ptr: int) -> int:
        if buffer_type > max(BufferType):
            return Status.BAD_ARGUMENT
        buffer, _ = self._buffer(buffer_type)
        if buffer is None:
            return Status.NOT_FOUND
        self.write_u32(ret_length_ptr, len(buffer))
        self.write_u32(ret_flags_ptr, 0)
        return Status.OK

    def proxy_set_buffer_bytes(self, buffer_type: int, start: int, length: int, data_ptr: int, data_size: int) -> int:
        """Envoy's Buffer::copyFrom: start 0 drains `length` bytes and prepends the data;
        start at or past the end appends; any other start is BAD_ARGUMENT."""
        if buffer_type > max(BufferType):
            return Status.BAD_ARGUMENT
        buffer, mutable = self._buffer(buffer_type)
        if buffer is None:
            return Status.NOT_FOUND
        if not mutable:
            return Status.BAD_ARGUMENT
        data = self.read(data_ptr, data_size)
        if start == 0:
            del buffer[: min(length, len(buffer))]
            buffer[0:0] = data
        elif start >= len(buffer):
            buffer += data
        else:
            return Status.BAD_ARGUMENT
        return Status.OK

    # --- stream control -------------------------------------------------------------------------

    def proxy_continue_stream(self, stream_type: int) -> int:
        if stream_type > max(StreamType):
            return Status.BAD_ARGUMENT
        self.context.continue_requests.add(stream_type)
        return Status.OK

    def proxy_continue_request(self) -> int:
        return self.proxy_continue_stream(StreamType.REQUEST)

    def proxy_continue_response(self) -> int:
        return self.proxy_continue_stream(StreamType.RESPONSE)

    def proxy_close_stream(self, stream_type: int) -> int:
        if stream_type > max(StreamType):
            return Status.BAD_ARGUMENT
        self.context.close_requests.add(stream_type)
        return Status.OK

    def proxy_send_local_response(
        self,
        status_code: int,
        details_ptr: int,
        details_size: int,
        body_ptr: int,
        body_size: int,
        headers_ptr: int,
        headers_size: int,
        grpc_status: int,
    ) -> int:
        try:
            headers = decode_pairs(self.read(headers_ptr, headers_size))
        except ValueError:
            return Status.BAD_ARGUMENT
        self.context.local_response = LocalResponse(
            status_code=status_code,
            details=to_text(self.read(details_ptr, details_size)),
            body=self.read(body_ptr, body_size),
            headers=headers,
            grpc_status=grpc_status if grpc_status != 0xFFFFFFFF else -1,
        )
        return Status.OK

    def proxy_clear_route_cache(self) -> int:
        return Status.OK

    def proxy_set_effective_context(self, context_id: int) -> int:
        ctx = self.contexts.get(context_id)
        if ctx is None or ctx.deleted:
            return Status.BAD_ARGUMENT
        self.effective = ctx
        return Status.OK

    def proxy_done(self) -> int:
        # Envoy answers NOT_FOUND unless the root context is being shut down and waiting.
        return Status.NOT_FOUND

    def proxy_call_foreign_function(
        self, name_ptr: int, name_size: int, _args_ptr: int, _args_size: int, ret_ptr_ptr: int, ret_size_ptr: int
    ) -> int:
        name = self.read(name_ptr, name_size)
        if name in _NOOP_FOREIGN_FUNCTIONS:
            self.write_u32(ret_ptr_ptr, 0)
            self.write_u32(ret_size_ptr, 0)
            return Status.OK
        _host_log.debug("foreign function %r not available", name)
        return Status.NOT_FOUND

    # --- calls out: no cluster exists in this host -------------------------------------------

    def proxy_http_call(self, upstream_ptr: int, upstream_size: int, *_rest: int) -> int:
        upstream = to_text(self.read(upstream_ptr, upstream_size))
        _host_log.warning("module called proxy_http_call(%r): this host has no clusters", upstream)
        return Status.BAD_ARGUMENT

    def proxy_get_status(self, *_args: int) -> int:
        return Status.NOT_FOUND

    # --- shared data and queues (in memory, one VM) ----------------------------------------------

    def proxy_get_shared_data(
        self, key_ptr: int, key_size: int, ret_ptr_ptr: int, ret_size_ptr: int, ret_cas_ptr: int
    ) -> int:
        entry = self.shared_data.get(self.read(key_ptr, key_size))
        if entry is None:
            return Status.NOT_FOUND
        value, cas = entry
        self.return_bytes(value, ret_ptr_ptr, ret_size_ptr)
        self.write_u32(ret_cas_ptr, cas)
        return Status.OK

    def proxy_set_shared_data(self, key_ptr: int, key_size: int, value_ptr: int, value_size: int, cas: int) -> int:
        key = self.read(key_ptr, key_size)
        current = self.shared_data.get(key)
        if cas != 0 and current is not None and current[1] != cas:
            return Status.CAS_MISMATCH
        next_cas = (current[1] + 1) if current is not None else 1
        self.shared_data[key] = (self.read(value_ptr, value_size), next_cas)
        return Status.OK

    def proxy_register_shared_queue(self, name_ptr: int, name_size: int, ret_id_ptr: int) -> int:
        name = self.read(name_ptr, name_size)
        queue_id = self.queue_names.setdefault(name, len(self.queue_names) + 1)
        self.queues.setdefault(queue_id, deque())
        self.write_u32(ret_id_ptr, queue_id)
        return Status.OK

    def proxy_resolve_shared_queue(
        self, _vm_id_ptr: int, _vm_id_size: int, name_ptr: int, name_size: int, ret_id_ptr: int
    ) -> int:
        queue_id = self.queue_names.get(self.read(name_ptr, name_size))
        if queue_id is None:
            return Status.NOT_FOUND
        self.write_u32(ret_id_ptr, queue_id)
        return Status.OK

    def proxy_enqueue_shared_queue(self, queue_id: int, value_ptr: int, value_size: int) -> int:
        queue = self.queues.get(queue_id)
        if queue is None:
            return Status.NOT_FOUND
        queue.append(self.read(value_ptr, value_size))
        return Status.OK

    def proxy_dequeue_shared_queue(self, queue_id: int, ret_ptr_ptr: int, ret_size_ptr: int) -> int:
        queue = self.queues.get(queue_id)
        if queue is None:
            return Status.NOT_FOUND
        if not queue:
            return Status.EMPTY
        return self.return_bytes(queue.popleft(), ret_ptr_ptr, ret_size_ptr)

    # --- metrics (in memory) ------------------------------------------------------------------------

    def proxy_define_metric(self, metric_type: int, name_ptr: int, name_size: int, ret_id_ptr: int) -> int:
        try:
            kind = MetricType(metric_type)
        except ValueError:
            return Status.BAD_ARGUMENT
        metric_id = len(self.metrics) + 1
        self.metrics[metric_id] = (kind, self.read(name_ptr, name_size), 0)
        self.write_u32(ret_id_ptr, metric_id)
        return Status.OK

    def proxy_increment_metric(self, metric_id: int, offset: int) -> int:
        metric = self.metrics.get(metric_id)
        if metric is None:
            return Status.NOT_FOUND
        kind, name, value = metric
        if kind == MetricType.HISTOGRAM:
            return Status.BAD_ARGUMENT
        self.metrics[metric_id] = (kind, name, value + offset)
        return Status.OK

    def proxy_record_metric(self, metric_id: int, value: int) -> int:
        metric = self.metrics.get(metric_id)
        if metric is None:
            return Status.NOT_FOUND
        kind, name, _ = metric
        self.metrics[metric_id] = (kind, name, value)
        return Status.OK

    def proxy_get_metric(self, metric_id: int, ret_value_ptr: int) -> int:
        metric = self.metrics.get(metric_id)
        if metric is None:
            return Status.NOT_FOUND
        self.write_u64(ret_value_ptr, metric[2])
        return Status.OK
