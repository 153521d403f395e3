"""What the host keeps per context: header maps, body buffers, properties, a local reply.

Pure data, no wasmtime: `imports.py` reads and writes it on the module's behalf, `http.py`
fills it before each callback and reads it afterwards.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from wasm_host.abi import BufferType, LogLevel, MapType

# Header names and values are byte strings on the wire; the host holds them as str decoded
# with surrogateescape so that any byte survives a round trip.
_ENCODING = "utf-8"
_ERRORS = "surrogateescape"

Header = tuple[str, str]
PropertyValue = str | bytes | int | bool | Mapping[str, str] | list[Header]


def to_bytes(text: str) -> bytes:
    return text.encode(_ENCODING, _ERRORS)


def to_text(raw: bytes) -> str:
    return raw.decode(_ENCODING, _ERRORS)


class HeaderMap:
    """An ordered multi-map with lower-case keys, as Envoy's header maps behave for a module."""

    def __init__(self, pairs: Iterable[tuple[str, str]] = ()) -> None:
        self._pairs: list[list[str]] = [[k.lower(), v] for k, v in pairs]

    def pairs(self) -> list[Header]:
        return [(k, v) for k, v in self._pairs]

    def __len__(self) -> int:
        return len(self._pairs)

    def get(self, key: str) -> str | None:
        """First value (Envoy returns only the first one)."""
        key = key.lower()
        for k, v in self._pairs:
            if k == key:
                return v
        return None

    def get_all(self, key: str) -> list[str]:
        key = key.lower()
        return [v for k, v in self._pairs if k == key]

    def add(self, key: str, value: str) -> None:
        self._pairs.append([key.lower(), value])

    def replace(self, key: str, value: str) -> None:
        """Set the value in place of the first occurrence, drop the others; append if absent."""
        key = key.lower()
        kept: list[list[str]] = []
        replaced = False
        for pair in self._pairs:
            if pair[0] == key:
                if not replaced:
                    kept.append([key, value])
                    replaced = True
                continue
            kept.append(pair)
        if not replaced:
            kept.append([key, value])
        self._pairs = kept

    def remove(self, key: str) -> None:
        key = key.lower()
        self._pairs = [p for p in self._pairs if p[0] != key]

    def set_all(self, pairs: Iterable[tuple[str, str]]) -> None:
        self._pairs = [[k.lower(), v] for k, v in pairs]

    def byte_size(self) -> int:
        return sum(len(to_bytes(k)) + len(to_bytes(v)) for k, v in self._pairs)


def encode_pairs(pairs: Iterable[tuple[str, str]]) -> bytes:
    """Proxy-Wasm pair serialisation: count, (key len, value len)*, then `key\\0value\\0`*."""
    raw = [(to_bytes(k), to_bytes(v)) for k, v in pairs]
    sizes = b"".join(struct.pack("<II", len(k), len(v)) for k, v in raw)
    data = b"".join(k + b"\0" + v + b"\0" for k, v in raw)
    return struct.pack("<I", len(raw)) + sizes + data


def decode_pairs(raw: bytes) -> list[Header]:
    """Inverse of encode_pairs; raises ValueError on a malformed blob."""
    if len(raw) < 4:
        if not raw:
            return []
        raise ValueError("pairs blob shorter than its count")
    (count,) = struct.unpack_from("<I", raw, 0)
    offset = 4
    if offset + 8 * count > len(raw):
        raise ValueError("pairs blob shorter than its size table")
    sizes = [struct.unpack_from("<II", raw, offset + 8 * i) for i in range(count)]
    offset += 8 * count
    pairs: list[Header] = []
    for key_len, value_len in sizes:
        end = offset + key_len + 1 + value_len + 1
        if end > len(raw):
            raise ValueError("pairs blob shorter than its entries")
        key = raw[offset : offset + key_len]
        value = raw[offset + key_len + 1 : offset + key_len + 1 + value_len]
        pairs.append((to_text(key), to_text(value)))
        offset = end
    return pairs


def encode_property(value: PropertyValue) -> bytes:
    """Envoy's property serialisation: strings raw, integers int64 LE, bools one byte, maps as pairs."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return to_bytes(value)
    if isinstance(value, bool):
        return b"\x01" if value else b"\x00"
    if isinstance(value, int):
        return struct.pack("<q", value)
    if isinstance(value, Mapping):
        return encode_pairs(value.items())
    return encode_pairs(value)


def property_key(path: str) -> bytes:
    """`source.address` -> the module's form `source\\0address`."""
    return to_bytes(path.replace(".", "\0"))


@dataclass(frozen=True)
class LogRecord:
    level: LogLevel
    message: str
    context_id: int


@dataclass(frozen=True)
class LocalResponse:
    """What a module asked for with proxy_send_local_response."""

    status_code: int
    details: str
    body: bytes
    headers: list[Header]
    grpc_status: int


@dataclass
class ContextState:
    """One Proxy-Wasm context: the VM (id 0), a root context, or an HTTP stream."""

    context_id: int
    root_context_id: int = 0
    maps: dict[MapType, HeaderMap] = field(default_factory=dict)
    buffers: dict[BufferType, bytearray] = field(default_factory=dict)
    # Keys are the module's \0-separated paths.
    properties: dict[bytes, bytes] = field(default_factory=dict)
    local_response: LocalResponse | None = None
    # proxy_continue_stream / proxy_close_stream requests made during a callback.
    continue_requests: set[int] = field(default_factory=set)
    close_requests: set[int] = field(default_factory=set)
    # Trailers may be added by a module during the last body callback (Envoy creates the map).
    allow_trailers_creation: set[MapType] = field(default_factory=set)
    deleted: bool = False
