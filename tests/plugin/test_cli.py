"""`tokenusage check-config` and `tokenusage replay`: one-line errors, the gateway's inputs."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.plugin import streams
from tokenusage.cli import main


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_check_config_ok_and_defaults(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for value in ("null", "", "{}"):
        code, out, _ = _run(capsys, "check-config", value)
        assert code == 0 and "maxEventBytes=1048576" in out
    config = tmp_path / "c.json"
    config.write_text('{"realIPToHeader": "X-Real-IP", "bogus": 1}')
    code, out, err = _run(capsys, "check-config", str(config))
    assert code == 0 and "realIPToHeader=x-real-ip" in out and 'unknown config key "bogus"' in err


def test_check_config_errors_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = _run(capsys, "check-config", '{"maxEventBytes": 5}')
    assert code == 1 and err.strip().splitlines() == [err.strip()] and "maxEventBytes=5" in err
    code, _, err = _run(capsys, "check-config", "/no/such/file.json")
    assert code == 1 and "neither a readable file nor inline JSON" in err and "Traceback" not in err


def test_replay_injects_and_reports_missing_files(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    recorded = tmp_path / "vllm.sse"
    recorded.write_bytes(b"".join(streams.VLLM))
    code = main(["replay", str(recorded)])
    out = capsys.readouterr().out
    assert code == 0 and '"time_to_first_token_ms":' in out and out.endswith("data: [DONE]\n\n")
    code, _, err = _run(capsys, "replay", str(tmp_path / "missing.sse"))
    assert code == 1 and err.startswith("error: cannot read") and "Traceback" not in err
