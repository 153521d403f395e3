"""The plugin's configuration: the one source of truth for its keys, defaults and limits.

`parse_config` turns the bytes Higress hands to `proxy_on_configure` into a frozen `Config`,
or raises `ConfigError` naming the key, the bad value and what is allowed. The operator imports
`FIELDS` and `parse_config` from here so that anything it accepts, the plugin accepts.

Standard library only: this module is compiled into the Wasm module.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Config",
    "ConfigError",
    "ParsedConfig",
    "Field",
    "FIELDS",
    "DEFAULT_PATH_SUFFIXES",
    "HEADER_NAME_RE",
    "RESERVED_HEADERS",
    "parse_config",
]

DEFAULT_PATH_SUFFIXES: tuple[str, ...] = (
    "/chat/completions",
    "/completions",
    "/embeddings",
    "/audio/transcriptions",
    "/audio/speech",
    "/images/generations",
    "/images/edits",
    "/rerank",
)

# RFC 9110 token: what a header field name may be.
HEADER_NAME_RE = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")
# Headers the real IP must never overwrite: they frame the request.
RESERVED_HEADERS: frozenset[str] = frozenset({"host", "content-length", "transfer-encoding"})

_SUFFIX_FORBIDDEN_CHARS = ("?", "#", " ", "\t", "\r", "\n")


@dataclass(frozen=True)
class Field:
    """One configuration key: its JSON name, JSON type, default and bounds (for ints)."""

    key: str
    json_type: str  # "string" | "array" | "boolean" | "integer"
    default: Any
    description: str
    minimum: int | None = None
    maximum: int | None = None


FIELDS: tuple[Field, ...] = (
    Field(
        "realIPToHeader",
        "string",
        None,
        "Request header that receives the real client IP (replaced, never appended). "
        "Alias: realIPHeader.",
    ),
    Field(
        "enableOnPathSuffix",
        "array",
        list(DEFAULT_PATH_SUFFIXES),
        "Path suffixes to process; a configured list replaces the defaults.",
    ),
    Field(
        "ensureStreamUsage",
        "boolean",
        True,
        "Make streaming /chat/completions and /completions upstreams report usage.",
    ),
    Field(
        "maxResponseBodyBytes",
        "integer",
        10 * 1024 * 1024,
        "Cap for buffering a non-streaming JSON body; larger bodies pass unmodified.",
        minimum=0,
        maximum=1024 * 1024 * 1024,
    ),
    Field(
        "maxEventBytes",
        "integer",
        1024 * 1024,
        "Cap for one SSE event held while incomplete; past it the bytes are flushed unmodified.",
        minimum=1024,
        maximum=64 * 1024 * 1024,
    ),
)
_FIELD_BY_KEY = {f.key: f for f in FIELDS}
REAL_IP_ALIAS = "realIPHeader"


@dataclass(frozen=True)
class Config:
    real_ip_header: str | None = None  # lower-cased
    path_suffixes: tuple[str, ...] = DEFAULT_PATH_SUFFIXES
    ensure_stream_usage: bool = True
    max_response_body_bytes: int = _FIELD_BY_KEY["maxResponseBodyBytes"].default
    max_event_bytes: int = _FIELD_BY_KEY["maxEventBytes"].default

    def tracks(self, path: str) -> bool:
        """True when the request path (query and fragment already removed) is processed."""
        if path.endswith("/") and len(path) > 1:
            path = path[:-1]
        return any(path.endswith(s) for s in self.path_suffixes)


@dataclass(frozen=True)
class ParsedConfig:
    config: Config
    warnings: tuple[str, ...]


class ConfigError(ValueError):
    """Invalid configuration. The message names the key, the bad value and what is allowed."""

    def __init__(self, key: str, value: Any, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"invalid config: {key}={_show(value)}: {allowed}")


def _show(value: Any) -> str:
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= 200 else text[:197] + "..."


def parse_config(raw: bytes | str | dict[str, Any] | None) -> ParsedConfig:
    """Validate a configuration (JSON bytes/text or an already-decoded object)."""
    data: Any
    if raw is None:
        data = {}
    elif isinstance(raw, dict):
        data = raw
    else:
        text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw
        if not text.strip():
            data = {}
        else:
            try:
                data = json.loads(text)
            except ValueError as exc:
                raise ConfigError("<root>", text, f"must be a JSON object ({exc})") from None
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError("<root>", data, "must be a JSON object")

    warnings = [
        f"unknown config key {_show(k)} ignored; known keys: "
        + ", ".join([f.key for f in FIELDS] + [REAL_IP_ALIAS])
        for k in data
        if k not in _FIELD_BY_KEY and k != REAL_IP_ALIAS
    ]
    return ParsedConfig(
        Config(
            real_ip_header=_real_ip_header(data),
            path_suffixes=_path_suffixes(data),
            ensure_stream_usage=_boolean(data, "ensureStreamUsage"),
            max_response_body_bytes=_integer(data, "maxResponseBodyBytes"),
            max_event_bytes=_integer(data, "maxEventBytes"),
        ),
        tuple(warnings),
    )


def _header_name(key: str, value: Any) -> str:
    allowed = (
        "a header name (RFC 9110 token), not a pseudo-header, not host, content-length "
        "or transfer-encoding"
    )
    if not isinstance(value, str) or not HEADER_NAME_RE.match(value):
        raise ConfigError(key, value, allowed)
    if value.lower() in RESERVED_HEADERS:
        raise ConfigError(key, value, allowed)
    return value.lower()


def _real_ip_header(data: dict[str, Any]) -> str | None:
    main = data.get("realIPToHeader")
    alias = data.get(REAL_IP_ALIAS)
    name = _header_name("realIPToHeader", main) if main is not None else None
    alias_name = _header_name(REAL_IP_ALIAS, alias) if alias is not None else None
    if name is not None and alias_name is not None and name != alias_name:
        raise ConfigError(
            REAL_IP_ALIAS,
            alias,
            f"an alias of realIPToHeader; both are set and differ ({_show(main)})",
        )
    return name if name is not None else alias_name


def _path_suffixes(data: dict[str, Any]) -> tuple[str, ...]:
    key = "enableOnPathSuffix"
    if key not in data or data[key] is None:
        return DEFAULT_PATH_SUFFIXES
    value = data[key]
    allowed = (
        "a list of distinct path suffixes, each starting with '/', at least one character "
        "after it, no '?', '#', whitespace or trailing '/'"
    )
    if not isinstance(value, list):
        raise ConfigError(key, value, allowed)
    seen: set[str] = set()
    for entry in value:
        if (
            not isinstance(entry, str)
            or len(entry) < 2
            or not entry.startswith("/")
            or entry.endswith("/")
            or any(c in entry for c in _SUFFIX_FORBIDDEN_CHARS)
        ):
            raise ConfigError(key, entry, allowed)
        if entry in seen:
            raise ConfigError(key, entry, "no duplicates: " + allowed)
        seen.add(entry)
    return tuple(value)


def _boolean(data: dict[str, Any], key: str) -> bool:
    field = _FIELD_BY_KEY[key]
    value = data.get(key)
    if value is None:
        return bool(field.default)
    if not isinstance(value, bool):
        raise ConfigError(key, value, "true or false")
    return value


def _integer(data: dict[str, Any], key: str) -> int:
    field = _FIELD_BY_KEY[key]
    value = data.get(key)
    if value is None:
        return int(field.default)
    allowed = f"an integer from {field.minimum} to {field.maximum}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(key, value, allowed)
    assert field.minimum is not None and field.maximum is not None
    if not field.minimum <= value <= field.maximum:
        raise ConfigError(key, value, allowed)
    return value
