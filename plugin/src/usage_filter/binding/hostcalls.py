"""One wrapper per Proxy-Wasm host call the filter makes: the only code that touches the host.

The host functions come from `_proxy_host`, a built-in module that exists only inside the
.wasm (its C side is wasm_build/shim/proxy_wasm_abi.c). The wrappers turn status codes into
return values or `HostCallError`, and bytes into the types the rest of the binding uses.
Header names and values are decoded as Latin-1, which maps every byte to one character and
back, so nothing a client or upstream sent is altered on the way through.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence

import _proxy_host

from usage_filter.binding.abi import BufferType, LogLevel, MapType, Status

__all__ = [
    "HostCallError",
    "register",
    "log",
    "get_buffer_bytes",
    "set_buffer_bytes",
    "get_header_map_pairs",
    "replace_header_map_value",
    "remove_header_map_value",
    "get_property",
    "get_current_time_nanoseconds",
    "decode_header_map",
]

_HEADER_ENCODING = "latin-1"
_U32 = struct.Struct("<I")


class HostCallError(RuntimeError):
    """A host call returned a status other than Ok where the binding needs success."""

    def __init__(self, call: str, status: int) -> None:
        self.call = call
        self.status = status
        try:
            name = Status(status).name
        except ValueError:
            name = str(status)
        super().__init__(f"{call} failed: {name}")


def register(handler: object) -> None:
    """Make `handler`'s proxy_on_* methods receive the module's callbacks."""
    _proxy_host.register(handler)


def log(level: LogLevel, message: str) -> None:
    _proxy_host.log(level, message.encode("utf-8", "backslashreplace"))


def get_buffer_bytes(buffer_type: BufferType, start: int, max_size: int) -> bytes:
    """Bytes [start, start + max_size) of a host buffer; b"" when it is empty or absent."""
    status, data = _proxy_host.get_buffer_bytes(buffer_type, start, max_size)
    if status == Status.OK:
        return data
    if status in (Status.NOT_FOUND, Status.EMPTY):
        return b""
    raise HostCallError("proxy_get_buffer_bytes", status)


def set_buffer_bytes(buffer_type: BufferType, start: int, size: int, data: bytes) -> None:
    """Replace bytes [start, start + size) of a host buffer with `data`."""
    status = _proxy_host.set_buffer_bytes(buffer_type, start, size, data)
    if status != Status.OK:
        raise HostCallError("proxy_set_buffer_bytes", status)


def get_header_map_pairs(map_type: MapType) -> list[tuple[str, str]]:
    status, raw = _proxy_host.get_header_map_pairs(map_type)
    if status in (Status.NOT_FOUND, Status.EMPTY):
        return []
    if status != Status.OK:
        raise HostCallError("proxy_get_header_map_pairs", status)
    return decode_header_map(raw)


def replace_header_map_value(map_type: MapType, name: str, value: str) -> None:
    """Set `name` to `value`, replacing every existing value (adds it when absent)."""
    status = _proxy_host.replace_header_map_value(
        map_type, name.encode(_HEADER_ENCODING), value.encode(_HEADER_ENCODING)
    )
    if status != Status.OK:
        raise HostCallError("proxy_replace_header_map_value", status)


def remove_header_map_value(map_type: MapType, name: str) -> None:
    status = _proxy_host.remove_header_map_value(map_type, name.encode(_HEADER_ENCODING))
    if status not in (Status.OK, Status.NOT_FOUND):
        raise HostCallError("proxy_remove_header_map_value", status)


def get_property(path: Sequence[str]) -> bytes | None:
    """A host property such as ("source", "address"); None when the host has none."""
    status, value = _proxy_host.get_property("\0".join(path).encode("utf-8"))
    if status == Status.OK:
        return value
    if status in (Status.NOT_FOUND, Status.EMPTY):
        return None
    raise HostCallError("proxy_get_property", status)


def get_current_time_nanoseconds() -> int:
    """Wall-clock time from the host (Envoy's dispatcher time)."""
    status, now_ns = _proxy_host.get_current_time_nanoseconds()
    if status != Status.OK:
        raise HostCallError("proxy_get_current_time_nanoseconds", status)
    return now_ns


def decode_header_map(raw: bytes) -> list[tuple[str, str]]:
    """Proxy-Wasm's serialised map: u32 count, count x (u32 name size, u32 value size), then
    each name and value followed by a NUL byte (all little-endian)."""
    if len(raw) < 4:
        return []
    (count,) = _U32.unpack_from(raw, 0)
    sizes = struct.unpack_from(f"<{2 * count}I", raw, 4)
    pairs: list[tuple[str, str]] = []
    offset = 4 + 8 * count
    for i in range(count):
        name_size = sizes[2 * i]
        value_size = sizes[2 * i + 1]
        name = raw[offset : offset + name_size].decode(_HEADER_ENCODING)
        offset += name_size + 1
        value = raw[offset : offset + value_size].decode(_HEADER_ENCODING)
        offset += value_size + 1
        pairs.append((name, value))
    return pairs
