"""Proxy-Wasm ABI v0.2.1 numbers the binding uses (proxy-wasm spec, abi-versions/v0.2.1).

The host side keeps its own copy (wasm_host/abi.py), as Envoy does: the two meet only at the
module's imports and exports.
"""

from __future__ import annotations

import enum

__all__ = ["Status", "HeadersAction", "DataAction", "MapType", "BufferType", "LogLevel"]


class Status(enum.IntEnum):
    """WasmResult: what every proxy_* import returns."""

    OK = 0
    NOT_FOUND = 1
    BAD_ARGUMENT = 2
    SERIALIZATION_FAILURE = 3
    PARSE_FAILURE = 4
    BAD_EXPRESSION = 5
    INVALID_MEMORY_ACCESS = 6
    EMPTY = 7
    CAS_MISMATCH = 8
    RESULT_MISMATCH = 9
    INTERNAL_FAILURE = 10
    BROKEN_CONNECTION = 11
    UNIMPLEMENTED = 12


class HeadersAction(enum.IntEnum):
    """Returned from proxy_on_{request,response}_{headers,trailers}."""

    CONTINUE = 0
    STOP_ITERATION = 1


class DataAction(enum.IntEnum):
    """Returned from proxy_on_{request,response}_body."""

    CONTINUE = 0
    STOP_ITERATION_AND_BUFFER = 1


class MapType(enum.IntEnum):
    REQUEST_HEADERS = 0
    REQUEST_TRAILERS = 1
    RESPONSE_HEADERS = 2
    RESPONSE_TRAILERS = 3


class BufferType(enum.IntEnum):
    HTTP_REQUEST_BODY = 0
    HTTP_RESPONSE_BODY = 1
    VM_CONFIGURATION = 6
    PLUGIN_CONFIGURATION = 7


class LogLevel(enum.IntEnum):
    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4
    CRITICAL = 5
