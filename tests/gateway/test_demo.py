"""`tokenusage demo` runs end to end, with our build and with the original Go build."""

from __future__ import annotations

from pathlib import Path

import pytest

from usage_gateway.demo import STAT_FIELDS, run_session
from usage_gateway.sample_upstream import Pacing


async def test_demo_session_shows_injected_statistics(
    module_wasm: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    result = await run_session(module_wasm[1], b"{}", Pacing(first_token_delay_ms=20, inter_token_delay_ms=(1, 2)))
    out = capsys.readouterr().out
    streamed = [call for title, call in result.calls.items() if "streaming chat" in title and "non" not in title]
    assert len(streamed) == 2
    for call in streamed:
        assert all(name in call["usage"] for name in STAT_FIELDS)
    assert "injected by the plugin: time_to_first_token_ms" in out
    assert "0 contexts left open" in out


def test_demo_refuses_a_missing_module(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tokenusage.cli import main

    assert main(["demo", "--plugin", str(tmp_path / "missing.wasm")]) == 2
    assert "plugin module not found" in capsys.readouterr().err
