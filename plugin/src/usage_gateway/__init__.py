"""Local gateway: an async reverse proxy that runs every request through a Proxy-Wasm module."""
