"""Proxy-Wasm ABI v0.2.1 numbers (proxy-wasm spec, abi-versions/v0.2.1): the one copy.

The binding (inside the .wasm) and the embedded host (wasm_host) both use these enums; they are
plain numbers from the spec, so sharing them couples nothing else.
"""

from __future__ import annotations

import enum

__all__ = [
    "Status",
    "HeadersAction",
    "DataAction",
    "MapType",
    "BufferType",
    "StreamType",
    "LogLevel",
    "MetricType",
]


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
    CONTINUE = 0
    STOP_ITERATION = 1
    CONTINUE_AND_END_STREAM = 2
    STOP_ALL_ITERATION_AND_BUFFER = 3
    STOP_ALL_ITERATION_AND_WATERMARK = 4


class DataAction(enum.IntEnum):
    CONTINUE = 0
    STOP_ITERATION_AND_BUFFER = 1
    STOP_ITERATION_AND_WATERMARK = 2
    STOP_ITERATION_NO_BUFFER = 3


class MapType(enum.IntEnum):
    REQUEST_HEADERS = 0
    REQUEST_TRAILERS = 1
    RESPONSE_HEADERS = 2
    RESPONSE_TRAILERS = 3
    GRPC_RECEIVE_INITIAL_METADATA = 4
    GRPC_RECEIVE_TRAILING_METADATA = 5
    HTTP_CALL_RESPONSE_HEADERS = 6
    HTTP_CALL_RESPONSE_TRAILERS = 7


class BufferType(enum.IntEnum):
    HTTP_REQUEST_BODY = 0
    HTTP_RESPONSE_BODY = 1
    DOWNSTREAM_DATA = 2
    UPSTREAM_DATA = 3
    HTTP_CALL_RESPONSE_BODY = 4
    GRPC_RECEIVE_BUFFER = 5
    VM_CONFIGURATION = 6
    PLUGIN_CONFIGURATION = 7
    CALL_DATA = 8


class StreamType(enum.IntEnum):
    REQUEST = 0
    RESPONSE = 1
    DOWNSTREAM = 2
    UPSTREAM = 3


class LogLevel(enum.IntEnum):
    TRACE = 0
    DEBUG = 1
    INFO = 2
    WARN = 3
    ERROR = 4
    CRITICAL = 5


class MetricType(enum.IntEnum):
    COUNTER = 0
    GAUGE = 1
    HISTOGRAM = 2
