"""Proxy-Wasm ABI numbers as the host sees them: the spec's enums (one copy, in the binding's
abi module) plus the exported markers a host recognises.

The host reaches a plugin only through the module's exports and imports; the enum numbers are
the spec's, shared so they are written down once.
"""

from __future__ import annotations

from usage_filter.binding.abi import (
    BufferType,
    DataAction,
    HeadersAction,
    LogLevel,
    MapType,
    MetricType,
    Status,
    StreamType,
)

__all__ = [
    "ABI_MARKERS",
    "UNSUPPORTED_ABI_MARKERS",
    "BufferType",
    "DataAction",
    "HeadersAction",
    "LogLevel",
    "MapType",
    "MetricType",
    "Status",
    "StreamType",
]

# Exported markers a module may carry; the host picks the ABI from the one present.
# `proxy_abi_version_0_2_100` is Higress's extension of 0.2.1 (the Go/wasm-go builds carry it).
ABI_MARKERS: dict[str, str] = {
    "proxy_abi_version_0_2_1": "0.2.1",
    "proxy_abi_version_0_2_100": "0.2.100",
    "proxy_abi_version_0_2_0": "0.2.0",
}
UNSUPPORTED_ABI_MARKERS: dict[str, str] = {"proxy_abi_version_0_1_0": "0.1.0"}
