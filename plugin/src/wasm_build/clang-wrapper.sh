#!/usr/bin/env bash
# The `clang` that py2wasm/Nuitka calls (written into .cache by wasm_build.toolchain from this
# template; @NAME@ are filled in there). Why a wrapper:
# - Debian's clang-19 + wasi-libc stand in for wasi-sdk-21 (no download): --sysroot points at the
#   sysroot the toolchain module lays out (Debian's headers/libs plus pthread.h/dlfcn.h stubs).
# - Nuitka plugins cannot add link flags, so link steps get them here: no crt1 / no entry (we are
#   a reactor with our own _initialize), a 1 MiB stack placed first (an overflow traps cleanly
#   instead of corrupting data), malloc exported (Envoy looks it up before
#   proxy_on_memory_allocate), and no --export-dynamic (it would export ~1,700 symbols).
# - Nuitka's MainProgram.c ends main() with Py_Exit; we compile a patched copy that returns, so
#   the interpreter stays alive between host callbacks.
# - PATH holds only LLVM's bin dir: clang runs wasm-opt by itself when it finds one on PATH, and
#   that leaves ~79k data segments; the build runs wasm-opt itself afterwards.
set -euo pipefail

LLVM_BIN='@LLVM_BIN@'
SYSROOT='@SYSROOT@'
MAIN_PROGRAM_PATCHED='@MAIN_PROGRAM_PATCHED@'

link=1
info=0
for arg in "$@"; do
  case "$arg" in
    -c|-S|-E|-M|-MM) link=0 ;;
    --version|-v|-dumpversion|-dumpmachine|--help|-print-*) info=1 ;;
  esac
done
[ "$#" -eq 0 ] && info=1

args=()
for arg in "$@"; do
  case "$arg" in
    -Wl,--export-dynamic) continue ;;
    */static_src/MainProgram.c|static_src/MainProgram.c) arg="$MAIN_PROGRAM_PATCHED" ;;
  esac
  args+=("$arg")
done

if [ "$link" -eq 1 ] && [ "$info" -eq 0 ]; then
  args+=(-fuse-ld="$LLVM_BIN/wasm-ld" -nostartfiles -Wl,--no-entry -Wl,-z,stack-size=1048576 -Wl,--stack-first
         -Wl,--export=malloc)
fi

export PATH="$LLVM_BIN"
exec "$LLVM_BIN/clang" --target=wasm32-wasi --sysroot="$SYSROOT" "${args[@]}"
