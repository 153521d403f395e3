"""`tokenusage build`: compile the Python filter into a Proxy-Wasm module (see plugin/BUILD.md)."""

from wasm_build.build import BuildError, BuildResult, build, ensure_built

__all__ = ["BuildError", "BuildResult", "build", "ensure_built"]
