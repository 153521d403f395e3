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
