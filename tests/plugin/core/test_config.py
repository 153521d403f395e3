from __future__ import annotations

import pytest

from usage_filter.core.config import DEFAULT_PATH_SUFFIXES, Config, ConfigError, parse_config


def test_defaults() -> None:
    for raw in (None, b"", b"  ", b"{}", b"null", {}):
        parsed = parse_config(raw)
        assert parsed.config == Config()
        assert parsed.warnings == ()
    c = Config()
    assert c.real_ip_header is None
    assert c.path_suffixes == DEFAULT_PATH_SUFFIXES and len(c.path_suffixes) == 8
    assert c.ensure_stream_usage is True
    assert c.max_response_body_bytes == 10485760
    assert c.max_event_bytes == 1048576


def test_full_config() -> None:
    c = parse_config(
        b'{"realIPToHeader":"X-Real-IP","enableOnPathSuffix":["/v1/chat/completions","/responses"],'
        b'"ensureStreamUsage":false,"maxResponseBodyBytes":2048,"maxEventBytes":4096}'
    ).config
    assert c == Config("x-real-ip", ("/v1/chat/completions", "/responses"), False, 2048, 4096)


def test_alias_and_same_value() -> None:
    assert parse_config({"realIPHeader": "X-Client-IP"}).config.real_ip_header == "x-client-ip"
    assert parse_config({"realIPHeader": "x-a", "realIPToHeader": "X-A"}).config.real_ip_header == "x-a"


def test_configured_list_replaces_defaults_and_may_be_empty() -> None:
    assert parse_config({"enableOnPathSuffix": ["/rerank"]}).config.path_suffixes == ("/rerank",)
    assert parse_config({"enableOnPathSuffix": []}).config.path_suffixes == ()


def test_unknown_keys_warn() -> None:
    parsed = parse_config({"foo": 1, "realIPToHeader": "x-ip"})
    assert len(parsed.warnings) == 1 and '"foo"' in parsed.warnings[0]


@pytest.mark.parametrize(
    "raw,key",
    [
        ({"realIPToHeader": "bad header"}, "realIPToHeader"),
        ({"realIPToHeader": ":authority"}, "realIPToHeader"),
        ({"realIPToHeader": "Host"}, "realIPToHeader"),
        ({"realIPToHeader": "content-length"}, "realIPToHeader"),
        ({"realIPToHeader": "Transfer-Encoding"}, "realIPToHeader"),
        ({"realIPToHeader": ""}, "realIPToHeader"),
        ({"realIPToHeader": 5}, "realIPToHeader"),
        ({"realIPToHeader": "x-a", "realIPHeader": "x-b"}, "realIPHeader"),
        ({"realIPHeader": "a b"}, "realIPHeader"),
        ({"enableOnPathSuffix": "/chat/completions"}, "enableOnPathSuffix"),
        ({"enableOnPathSuffix": ["chat/completions"]}, "enableOnPathSuffix"),
        ({"enableOnPathSuffix": [""]}, "enableOnPathSuffix"),
        ({"enableOnPathSuffix": ["/"]}, "enableOnPathSuffix"),
        ({"enableOnPathSuffix": ["/a?b"]}, "enableOnPathSuffix"),
        ({"enableOnPathSuffix": ["/a#b"]}, "enableOnPathSuffix"),
        ({"enableOnPathSuffix": ["/a/"]}, "enableOnPathSuffix"),
        ({"enableOnPathSuffix": ["/a", "/a"]}, "enableOnPathSuffix"),
        ({"enableOnPathSuffix": [1]}, "enableOnPathSuffix"),
        ({"ensureStreamUsage": "true"}, "ensureStreamUsage"),
        ({"ensureStreamUsage": 1}, "ensureStreamUsage"),
        ({"maxResponseBodyBytes": -1}, "maxResponseBodyBytes"),
        ({"maxResponseBodyBytes": 1.5}, "maxResponseBodyBytes"),
        ({"maxResponseBodyBytes": True}, "maxResponseBodyBytes"),
        ({"maxResponseBodyBytes": 2**40}, "maxResponseBodyBytes"),
        ({"maxEventBytes": 10}, "maxEventBytes"),
        ({"maxEventBytes": "1MiB"}, "maxEventBytes"),
        (b"[1,2]", "<root>"),
        (b"{not json", "<root>"),
        (b'"text"', "<root>"),
    ],
)
def test_invalid_config_names_key_value_and_allowed(raw: object, key: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)  # type: ignore[arg-type]
    assert info.value.key == key
    message = str(info.value)
    assert message.startswith(f"invalid config: {key}=")
    assert ": " in message.split("=", 1)[1]  # the allowed values follow the bad value


def test_tracks_suffix_with_single_trailing_slash() -> None:
    c = Config()
    assert c.tracks("/v1/chat/completions")
    assert c.tracks("/v1/chat/completions/")
    assert not c.tracks("/v1/chat/completions//")
    assert not c.tracks("/v1/models")
    assert c.tracks("/v1/rerank")
