"""`tokenusage build`: compile the Python filter into a Proxy-Wasm module (see plugin/BUILD.md).

The entry points live in `wasm_build.build` (`ensure_built()`, `build()`); they are not
re-exported here, so that `wasm_build.build` stays the module.
"""
