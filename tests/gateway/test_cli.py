"""`tokenusage gateway` refuses a bad start with one line and a non-zero exit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tokenusage.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[str]]:
    code = main(["gateway", *args])
    err = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    return code, err


def test_missing_module(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, err = _run(capsys, "--plugin", str(tmp_path / "nope.wasm"), "--upstream", "http://127.0.0.1:9")
    assert code == 2 and len(err) == 1 and "plugin module not found" in err[0]


def test_not_a_proxy_wasm_module(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    bogus = tmp_path / "bogus.wasm"
    bogus.write_bytes(b"\0asm\x01\0\0\0")  # a valid, empty module: no ABI marker
    code, err = _run(capsys, "--plugin", str(bogus), "--upstream", "http://127.0.0.1:9")
    assert code == 2 and len(err) == 1 and "proxy_abi_version" in err[0]


def test_invalid_json_config(capsys: pytest.CaptureFixture[str], go_build_wasm: Path) -> None:
    code, err = _run(capsys, "--plugin", str(go_build_wasm), "--config", "{broken", "--upstream", "http://127.0.0.1:9")
    assert code == 2 and len(err) == 1 and "not valid JSON" in err[0]


def test_config_refused_by_the_plugin(capsys: pytest.CaptureFixture[str], go_build_wasm: Path, tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text('{"additionalClusterNameRegexps": ["("]}')
    code, err = _run(capsys, "--plugin", str(go_build_wasm), "--config", str(config), "--upstream", "http://127.0.0.1:9")
    assert code == 2 and len(err) == 1 and "refused its configuration" in err[0]


def test_bad_listen_address(capsys: pytest.CaptureFixture[str], go_build_wasm: Path) -> None:
    code, err = _run(capsys, "--plugin", str(go_build_wasm), "--upstream", "http://127.0.0.1:9", "--listen", "nope")
    assert code == 2 and len(err) == 1 and "HOST:PORT" in err[0]


def test_config_must_be_an_object(capsys: pytest.CaptureFixture[str], go_build_wasm: Path) -> None:
    code, err = _run(capsys, "--plugin", str(go_build_wasm), "--config", "[1]", "--upstream", "http://127.0.0.1:9")
    assert code == 2 and len(err) == 1 and "must be a JSON object" in err[0]


def test_config_neither_file_nor_json(capsys: pytest.CaptureFixture[str], go_build_wasm: Path) -> None:
    code, err = _run(capsys, "--plugin", str(go_build_wasm), "--config", "no-such.json", "--upstream", "http://127.0.0.1:9")
    assert code == 2 and len(err) == 1 and "neither a readable file nor inline JSON" in err[0]


def test_gateway_process_serves_and_stops_cleanly_on_sigterm(go_build_wasm: Path) -> None:
    import json
    import signal
    import socket
    import subprocess
    import sys
    import urllib.error
    import urllib.request

    with socket.socket() as sock:  # a port nobody listens on: the upstream is unreachable
        sock.bind(("127.0.0.1", 0))
        dead_port = sock.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "tokenusage", "gateway", "--plugin", str(go_build_wasm), "--config", "{}",
         "--upstream", f"http://127.0.0.1:{dead_port}", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        banner = process.stdout.readline()
        assert banner.startswith("gateway listening on http://127.0.0.1:"), banner
        url = banner.split()[3]
        request = urllib.request.Request(url + "/v1/chat/completions", data=b'{"model":"m"}',
                                         headers={"content-type": "application/json"})
        try:
            urllib.request.urlopen(request, timeout=20)
            raise AssertionError("expected a 502")
        except urllib.error.HTTPError as exc:
            assert exc.code == 502
            assert json.loads(exc.read())["error"]["type"] == "upstream_unreachable"
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_plugin_start_up_warnings_are_shown(built_plugin_wasm: Path) -> None:
    # The plugin warns about unknown keys while it starts, before the gateway's log handler
    # exists; a user who misspells a key must still see it (a user report).
    import subprocess
    import sys
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "tokenusage", "gateway", "--plugin", str(built_plugin_wasm),
         "--config", '{"realIPToHeder":"x-real-ip"}', "--upstream", "http://127.0.0.1:9", "--listen", "127.0.0.1:0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # printed after the warnings
        assert "gateway listening" in line
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=30)
    assert '"realIPToHeder"' in err and "unknown config key" in err


@pytest.mark.parametrize("value", ["", "  ", "null", "{}"])
def test_empty_or_null_config_means_defaults(value: str) -> None:
    from usage_gateway.cli import load_config

    assert load_config(value) == value.encode()


@pytest.mark.parametrize("value,kind", [("[1]", "an array"), ('"x"', "a string"), ("true", "a boolean"), ("5", None)])
def test_non_object_config_named_in_json_terms(value: str, kind: str | None) -> None:
    from usage_gateway.cli import StartError, load_config

    if kind is None:  # not recognisable as inline JSON at all
        with pytest.raises(StartError, match="neither a readable file nor inline JSON"):
            load_config(value)
        return
    with pytest.raises(StartError, match=f"must be a JSON object, not {kind}$"):
        load_config(value)
