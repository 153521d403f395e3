"""The binding on native CPython, against a recording stand-in for the `_proxy_host` built-in
module that exists only inside the .wasm. (The real host is exercised by tests/plugin/wasm.)"""

from __future__ import annotations

import importlib
import struct
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest


class FakeHost(types.ModuleType):
    """Host state per the Proxy-Wasm ABI, for one stream at a time. Statuses as integers."""

    def __init__(self) -> None:
        super().__init__("_proxy_host")
        self.handler: Any = None
        self.logs: list[tuple[int, str]] = []
        self.buffers: dict[int, bytes] = {0: b"", 1: b"", 7: b""}
        self.maps: dict[int, list[tuple[str, str]]] = {0: [], 2: []}
        self.properties: dict[bytes, bytes] = {b"source\0address": b"10.0.0.1:5555"}
        self.now_ns = 0
        self.calls: list[str] = []
        self.fail: set[str] = set()  # host calls that answer INTERNAL_FAILURE

    def _status(self, name: str) -> int:
        self.calls.append(name)
        return 10 if name in self.fail else 0

    def register(self, handler: Any) -> None:
        self.handler = handler

    def log(self, level: int, message: bytes) -> int:
        self.logs.append((int(level), message.decode()))
        return 0

    def get_buffer_bytes(self, buffer_type: int, start: int, max_size: int) -> tuple[int, bytes]:
        return self._status("get_buffer_bytes"), self.buffers[buffer_type][start : start + max_size]

    def set_buffer_bytes(self, buffer_type: int, start: int, size: int, data: bytes) -> int:
        status = self._status("set_buffer_bytes")
        old = self.buffers[buffer_type]
        self.buffers[buffer_type] = old[:start] + data + old[start + size :]
        return status

    def get_header_map_pairs(self, map_type: int) -> tuple[int, bytes]:
        pairs = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in self.maps[map_type]]
        raw = struct.pack("<I", len(pairs)) + b"".join(struct.pack("<II", len(k), len(v)) for k, v in pairs)
        raw += b"".join(k + b"\0" + v + b"\0" for k, v in pairs)
        return self._status("get_header_map_pairs"), raw

    def replace_header_map_value(self, map_type: int, key: bytes, value: bytes) -> int:
        name = key.decode("latin-1")
        self.maps[map_type] = [p for p in self.maps[map_type] if p[0] != name] + [(name, value.decode("latin-1"))]
        return self._status("replace_header_map_value")

    def remove_header_map_value(self, map_type: int, key: bytes) -> int:
        name = key.decode("latin-1")
        self.maps[map_type] = [p for p in self.maps[map_type] if p[0] != name]
        return self._status("remove_header_map_value")

    def get_property(self, path: bytes) -> tuple[int, bytes]:
        if path in self.properties:
            return self._status("get_property"), self.properties[path]
        return 1, b""

    def get_current_time_nanoseconds(self) -> tuple[int, int]:
        return self._status("get_current_time_nanoseconds"), self.now_ns


@pytest.fixture()
def host() -> Iterator[FakeHost]:
    fake = FakeHost()
    saved = {name: sys.modules.get(name) for name in ("_proxy_host",)}
    sys.modules["_proxy_host"] = fake
    for name in [n for n in sys.modules if n.startswith("usage_filter.binding")]:
        del sys.modules[name]
    importlib.import_module("usage_filter.wasm_entry")
    sys.modules.pop("usage_filter.wasm_entry", None)
    yield fake
    for name in [n for n in sys.modules if n.startswith("usage_filter.binding")]:
        del sys.modules[name]
    for name, module in saved.items():
        if module is None:
            sys.modules.pop(name, None)
        else:
            sys.modules[name] = module
