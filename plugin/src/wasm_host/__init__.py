"""An embedded Proxy-Wasm (ABI 0.2.1) host on wasmtime that starts and drives modules as Envoy does.

Used by the tests and the local gateway; never compiled into the .wasm. It reaches a plugin only
through the module's exports, so it runs our build and the original Go build alike.
"""

from wasm_host.abi import BufferType, DataAction, HeadersAction, LogLevel, MapType, Status
from wasm_host.clock import Clock, ManualClock, SystemClock
from wasm_host.http import CallbackRecord, HttpStream, Step, StreamClosed
from wasm_host.state import HeaderMap, LocalResponse, LogRecord
from wasm_host.vm import ConfigRejected, PluginIdentity, Vm, VmCrashed, VmError

__all__ = [
    "BufferType",
    "CallbackRecord",
    "Clock",
    "ConfigRejected",
    "DataAction",
    "HeaderMap",
    "HeadersAction",
    "HttpStream",
    "LocalResponse",
    "LogLevel",
    "LogRecord",
    "ManualClock",
    "MapType",
    "PluginIdentity",
    "Status",
    "Step",
    "StreamClosed",
    "SystemClock",
    "Vm",
    "VmCrashed",
    "VmError",
]
