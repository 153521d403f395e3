"""The module under V8 (Node) with Envoy's engine flags: load, configure, one stream with a
usage event. Runs plugin/src/wasm_host_v8/host.mjs, the small JS Proxy-Wasm host."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
from pathlib import Path

import pytest

HOST = Path(__file__).resolve().parents[3] / "plugin" / "src" / "wasm_host_v8" / "host.mjs"
# As Envoy runs V8: optimising compiler only, whole module compiled up front.
NODE_FLAGS = ["--no-liftoff", "--no-wasm-lazy-compilation"]


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _run(scenario: dict[str, object], tmp_path: Path) -> dict[str, object]:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed (Debian package nodejs)")
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps(scenario))
    result = subprocess.run([node, *NODE_FLAGS, str(HOST), "run", str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    output: dict[str, object] = json.loads(result.stdout)
    return output


def test_stream_with_usage_event_gets_statistics_under_v8(plugin_wasm: Path, tmp_path: Path) -> None:
    request = json.dumps({"model": "m", "stream": True, "messages": []}).encode()
    events = [
        b'data: {"choices":[{"delta":{"content":"Hi"}}]}\n\n',
        b'data: {"choices":[{"delta":{"content":"!"}}]}\n\n',
        b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\n\n',
    ]
    steps = [
        {"call": "request_headers", "at_ms": 0, "headers": [[":method", "POST"], [":path", "/v1/chat/completions"],
                                                            ["content-type", "application/json"], ["x-real-ip", "6.6.6.6"]]},
        {"call": "request_body", "body_b64": _b64(request), "end_of_stream": True},
        {"call": "response_headers", "at_ms": 100, "headers": [[":status", "200"], ["content-type", "text/event-stream"]]},
        {"call": "response_body", "at_ms": 150, "body_b64": _b64(events[0])},
        {"call": "response_body", "at_ms": 250, "body_b64": _b64(events[1])},
        {"call": "response_body", "at_ms": 260, "body_b64": _b64(events[2]), "end_of_stream": True},
    ]
    result = _run(
        {"wasm": str(plugin_wasm), "config": {"realIPToHeader": "x-real-ip"}, "source_address": "10.9.8.7:4000", "steps": steps},
        tmp_path,
    )
    out = result["steps"]
    assert isinstance(out, list)
    sent_request = out[1]
    assert dict(sent_request["headers"])["x-real-ip"] == "10.9.8.7"
    assert json.loads(base64.b64decode(sent_request["body_b64"]))["stream_options"] == {"include_usage": True}
    bodies = [base64.b64decode(step["body_b64"]) for step in out[3:]]
    assert bodies[:2] == events[:2]
    assert bodies[2] == (
        b'data: {"choices":[],"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7,'
        b'"time_to_first_token_ms":150,"time_per_output_token_ms":100,"tokens_per_second":10}}\n\n'
    )
    assert [log for log in result["logs"] if log["level"] >= 4] == []  # type: ignore[union-attr,index]


def test_invalid_config_is_refused_under_v8(plugin_wasm: Path, tmp_path: Path) -> None:
    node = shutil.which("node")
    assert node is not None
    path = tmp_path / "scenario.json"
    path.write_text(json.dumps({"wasm": str(plugin_wasm), "config": {"maxEventBytes": "big"}, "steps": []}))
    result = subprocess.run([node, *NODE_FLAGS, str(HOST), "run", str(path)], capture_output=True, text=True, timeout=300)
    assert result.returncode != 0
    assert "proxy_on_configure returned false: invalid config: maxEventBytes=\"big\"" in result.stderr
