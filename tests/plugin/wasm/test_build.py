"""`tokenusage build` as a function: cached by input hash, installed where asked."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tokenusage.cli import main as tokenusage
from wasm_build.build import build


def test_unchanged_sources_reuse_the_cached_build(plugin_wasm: Path, tmp_path: Path) -> None:
    output = tmp_path / "out" / "plugin.wasm"
    result = build(output=output)
    assert result.cached  # the session fixture built this exact tree already
    assert output.read_bytes() == plugin_wasm.read_bytes()
    assert result.sha256 == hashlib.sha256(output.read_bytes()).hexdigest()
    assert result.raw_bytes > result.stripped_bytes and result.wizer_bytes > result.gzip_bytes


def test_cli_prints_sizes_and_digest(plugin_wasm: Path, tmp_path: Path, capsys: object) -> None:
    output = tmp_path / "cli.wasm"
    assert tokenusage(["build", "--output", str(output)]) == 0
    printed = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "(cached)" in printed and "gzip" in printed
    assert f"sha256: {hashlib.sha256(output.read_bytes()).hexdigest()}" in printed
