"""The Proxy-Wasm binding: the only code that knows the ABI (runs inside the .wasm).

abi.py (numbers), hostcalls.py (the host's functions), contexts.py (callbacks -> core),
dispatcher.py (entry points, context table, fail-open guard).
"""
