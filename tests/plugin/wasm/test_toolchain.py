"""The build's own pieces: the MainProgram.c patch, the Wizer stubs, the module reader."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from wasm_build.interface import check_proxy_wasm_interface, env_stubs_wat, read_interface
from wasm_build.toolchain import ToolchainError, nuitka_package_dir, patch_main_program


def test_main_program_patch_applies_to_the_installed_nuitka() -> None:
    source = (nuitka_package_dir() / "build" / "static_src" / "MainProgram.c").read_text()
    patched = patch_main_program(source)
    reactor = patched.index("#ifdef TOKENUSAGE_REACTOR\n")
    exit_call = patched.index("    Py_Exit(exit_code);\n", reactor)
    assert "    return exit_code;\n#endif\n" in patched[reactor:exit_call]
    assert patched.count("Py_Exit(exit_code);") == source.count("Py_Exit(exit_code);")


def test_main_program_patch_refuses_an_unknown_nuitka() -> None:
    with pytest.raises(ToolchainError, match="MainProgram.c changed"):
        patch_main_program("int main(int argc, char **argv) { Py_Exit(0); }\n")


def test_env_stubs_are_valid_wat_matching_the_imports(plugin_wasm: Path, tmp_path: Path) -> None:
    interface = read_interface(plugin_wasm.read_bytes())
    wat = tmp_path / "stubs.wat"
    wat.write_text(env_stubs_wat(interface))
    stub_wasm = tmp_path / "stubs.wasm"
    subprocess.run(["wat2wasm", str(wat), "-o", str(stub_wasm)], check=True)
    stubs = read_interface(stub_wasm.read_bytes())
    env_imports = {i.name: i.func_type for i in interface.imports if i.module == "env"}
    assert set(stubs.exports) == set(env_imports)


def test_interface_check_names_what_envoy_would_refuse(plugin_wasm: Path, tmp_path: Path) -> None:
    assert check_proxy_wasm_interface(read_interface(plugin_wasm.read_bytes())) == []
    wat = tmp_path / "bad.wat"
    wat.write_text(
        '(module (import "wasi_snapshot_preview1" "fd_seek" (func (param i32 i64 i32 i32) (result i32)))'
        ' (memory (export "memory") 1))'
    )
    subprocess.run(["wat2wasm", str(wat), "-o", str(tmp_path / "bad.wasm")], check=True)
    problems = check_proxy_wasm_interface(read_interface((tmp_path / "bad.wasm").read_bytes()))
    assert "imports wasi_snapshot_preview1.fd_seek, which Envoy does not provide" in problems
    assert "missing export proxy_abi_version_0_2_1" in problems
