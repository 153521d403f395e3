/* Proxy-Wasm ABI 0.2.1 <-> Python, for a py2wasm (Nuitka) build.
 *
 * What this file owns (nothing else in the module knows the ABI's C side):
 * - the exports Envoy looks for: the ABI version marker, `_initialize` (C constructors only),
 *   `proxy_on_memory_allocate` (the linker exports libc's `malloc` too), and one `proxy_on_*`
 *   per callback the filter uses, each a one-line forward of its integer arguments to the
 *   Python handler object registered by the entry module;
 * - the `env.proxy_*` imports, exposed to Python as the built-in module `_proxy_host`
 *   (usage_filter.binding.hostcalls is its only user);
 * - Python's start-up. It is lazy: Envoy allows only a few host calls during `_initialize`,
 *   and Python's start-up touches stdio. The first callback (or Wizer's `wizer.initialize`
 *   at build time, which snapshots the started interpreter) runs Nuitka's main(), patched to
 *   return after the entry module's top level so the interpreter stays alive.
 * - the last line of defence: a Python exception escaping a handler is logged on one line
 *   and turned into the callback's safe default; it never traps the VM.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define WASM_EXPORT(name) __attribute__((used, export_name(#name)))
#define WASM_IMPORT(name) __attribute__((import_module("env"), import_name(#name)))

/* ---- host functions (env.proxy_*): only those the filter uses ---------------------------- */

enum { LOG_ERROR = 4, LOG_CRITICAL = 5 };

WASM_IMPORT(proxy_log)
int32_t proxy_log(int32_t level, const char *message, size_t message_size);
WASM_IMPORT(proxy_get_buffer_bytes)
int32_t proxy_get_buffer_bytes(int32_t buffer_type, size_t start, size_t max_size, char **data,
                               size_t *size);
WASM_IMPORT(proxy_set_buffer_bytes)
int32_t proxy_set_buffer_bytes(int32_t buffer_type, size_t start, size_t size, const char *data,
                               size_t data_size);
WASM_IMPORT(proxy_get_header_map_pairs)
int32_t proxy_get_header_map_pairs(int32_t map_type, char **data, size_t *size);
WASM_IMPORT(proxy_replace_header_map_value)
int32_t proxy_replace_header_map_value(int32_t map_type, const char *key, size_t key_size,
                                       const char *value, size_t value_size);
WASM_IMPORT(proxy_remove_header_map_value)
int32_t proxy_remove_header_map_value(int32_t map_type, const char *key, size_t key_size);
WASM_IMPORT(proxy_get_property)
int32_t proxy_get_property(const char *path, size_t path_size, char **data, size_t *size);
WASM_IMPORT(proxy_get_current_time_nanoseconds)
int32_t proxy_get_current_time_nanoseconds(uint64_t *nanoseconds);

static void log_text(int32_t level, const char *text) { proxy_log(level, text, strlen(text)); }

/* ---- the Python handler ------------------------------------------------------------------- */

/* One entry per exported callback: the handler's method of the same name is looked up once at
 * registration. `fallback` is what the host gets when Python is unavailable or raised. */
typedef enum {
    CB_CONTEXT_CREATE,
    CB_VM_START,
    CB_CONFIGURE,
    CB_DONE,
    CB_LOG,
    CB_DELETE,
    CB_REQUEST_HEADERS,
    CB_REQUEST_BODY,
    CB_REQUEST_TRAILERS,
    CB_RESPONSE_HEADERS,
    CB_RESPONSE_BODY,
    CB_RESPONSE_TRAILERS,
    CB_COUNT
} callback_id;

typedef struct {
    const char *name;
    int32_t fallback;
} callback_spec;

static const callback_spec CALLBACKS[CB_COUNT] = {
    [CB_CONTEXT_CREATE] = {"proxy_on_context_create", 0},
    /* false refuses the VM / the configuration: a filter that cannot run says so at start-up
     * instead of silently passing traffic through. */
    [CB_VM_START] = {"proxy_on_vm_start", 0},
    [CB_CONFIGURE] = {"proxy_on_configure", 0},
    [CB_DONE] = {"proxy_on_done", 1},
    [CB_LOG] = {"proxy_on_log", 0},
    [CB_DELETE] = {"proxy_on_delete", 0},
    /* Action Continue: fail open. */
    [CB_REQUEST_HEADERS] = {"proxy_on_request_headers", 0},
    [CB_REQUEST_BODY] = {"proxy_on_request_body", 0},
    [CB_REQUEST_TRAILERS] = {"proxy_on_request_trailers", 0},
    [CB_RESPONSE_HEADERS] = {"proxy_on_response_headers", 0},
    [CB_RESPONSE_BODY] = {"proxy_on_response_body", 0},
    [CB_RESPONSE_TRAILERS] = {"proxy_on_response_trailers", 0},
};

static PyObject *handler_methods[CB_COUNT];
static int handler_registered = 0;

enum { PYTHON_NOT_STARTED, PYTHON_RUNNING, PYTHON_FAILED };
static int python_state = PYTHON_NOT_STARTED;

/* Nuitka's main(), compiled from the patched MainProgram.c: it initialises CPython, runs the
 * entry module's top level (which calls _proxy_host.register) and returns. */
int main(int argc, char **argv);

static int ensure_python(void) {
    if (python_state == PYTHON_NOT_STARTED) {
        static char program[] = "plugin.wasm";
        static char *argv[] = {program, NULL};
        python_state = PYTHON_FAILED; /* main() is never entered twice */
        int exit_code = main(1, argv);
        if (exit_code == 0 && handler_registered) {
            python_state = PYTHON_RUNNING;
        } else {
            log_text(LOG_CRITICAL, exit_code != 0
                                       ? "token-usage: the filter's Python entry module failed"
                                       : "token-usage: the entry module registered no handler");
        }
    }
    return python_state == PYTHON_RUNNING;
}

/* Log the pending Python exception on one line and clear it. */
static void log_python_error(const char *callback) {
    PyObject *type, *value, *traceback;
    PyErr_Fetch(&type, &value, &traceback);
    PyErr_NormalizeException(&type, &value, &traceback);
    const char *type_name = type != NULL ? ((PyTypeObject *)type)->tp_name : "?";
    const char *message = "";
    PyObject *text = value != NULL ? PyObject_Str(value) : NULL;
    if (text != NULL) {
        message = PyUnicode_AsUTF8(text);
        if (message == NULL) message = "";
    }
    PyErr_Clear();
    char line[512];
    snprintf(line, sizeof line, "token-usage: %s failed: %s: %s", callback, type_name, message);
    log_text(LOG_ERROR, line);
    Py_XDECREF(text);
    Py_XDECREF(type);
    Py_XDECREF(value);
    Py_XDECREF(traceback);
}

static int32_t dispatch(callback_id id, size_t nargs, int32_t a, int32_t b, int32_t c) {
    const callback_spec *spec = &CALLBACKS[id];
    if (!ensure_python()) return spec->fallback;
    PyObject *args[3] = {NULL, NULL, NULL};
    int32_t values[3] = {a, b, c};
    int32_t result = spec->fallback;
    for (size_t i = 0; i < nargs; i++) {
        args[i] = PyLong_FromLong(values[i]);
        if (args[i] == NULL) goto done;
    }
    PyObject *returned = PyObject_Vectorcall(handler_methods[id], args, nargs, NULL);
    if (returned == NULL) goto done;
    if (returned == Py_None) {
        result = spec->fallback;
    } else {
        long value = PyLong_AsLong(returned);
        if (!(value == -1 && PyErr_Occurred())) result = (int32_t)value;
    }
    Py_DECREF(returned);
done:
    if (PyErr_Occurred()) {
        log_python_error(spec->name);
        result = spec->fallback;
    }
    for (size_t i = 0; i < nargs; i++) Py_XDECREF(args[i]);
    return result;
}

/* ---- exports -------------------------------------------------------------------------------- */

WASM_EXPORT(proxy_abi_version_0_2_1) void proxy_abi_version_0_2_1(void) {}

void __wasm_call_ctors(void);

/* Runs C constructors once. After Wizer's snapshot the flag is already set, so the host's
 * `_initialize` call is a no-op and the snapshotted interpreter is left untouched. */
static int constructors_done = 0;
WASM_EXPORT(_initialize) void tokenusage_initialize(void) {
    if (constructors_done) return;
    constructors_done = 1;
    __wasm_call_ctors();
}

/* Wizer removes `_initialize` after calling it; the build renames this export back to it. */
WASM_EXPORT(tokenusage.initialize_again) void tokenusage_initialize_again(void) {
    tokenusage_initialize();
}

/* Wizer's pre-initialisation: start Python (and so run the entry module) into the snapshot. */
WASM_EXPORT(wizer.initialize) void tokenusage_wizer_initialize(void) {
    tokenusage_initialize();
    if (!ensure_python()) abort();
}

WASM_EXPORT(proxy_on_memory_allocate) void *proxy_on_memory_allocate(size_t size) {
    return malloc(size);
}

WASM_EXPORT(proxy_on_context_create)
void proxy_on_context_create(int32_t context_id, int32_t parent_context_id) {
    dispatch(CB_CONTEXT_CREATE, 2, context_id, parent_context_id, 0);
}
WASM_EXPORT(proxy_on_vm_start)
int32_t proxy_on_vm_start(int32_t root_context_id, int32_t vm_configuration_size) {
    return dispatch(CB_VM_START, 2, root_context_id, vm_configuration_size, 0);
}
WASM_EXPORT(proxy_on_configure)
int32_t proxy_on_configure(int32_t root_context_id, int32_t plugin_configuration_size) {
    return dispatch(CB_CONFIGURE, 2, root_context_id, plugin_configuration_size, 0);
}
WASM_EXPORT(proxy_on_done) int32_t proxy_on_done(int32_t context_id) {
    return dispatch(CB_DONE, 1, context_id, 0, 0);
}
WASM_EXPORT(proxy_on_log) void proxy_on_log(int32_t context_id) {
    dispatch(CB_LOG, 1, context_id, 0, 0);
}
WASM_EXPORT(proxy_on_delete) void proxy_on_delete(int32_t context_id) {
    dispatch(CB_DELETE, 1, context_id, 0, 0);
}
WASM_EXPORT(proxy_on_request_headers)
int32_t proxy_on_request_headers(int32_t context_id, int32_t num_headers, int32_t end_of_stream) {
    return dispatch(CB_REQUEST_HEADERS, 3, context_id, num_headers, end_of_stream);
}
WASM_EXPORT(proxy_on_request_body)
int32_t proxy_on_request_body(int32_t context_id, int32_t body_size, int32_t end_of_stream) {
    return dispatch(CB_REQUEST_BODY, 3, context_id, body_size, end_of_stream);
}
WASM_EXPORT(proxy_on_request_trailers)
int32_t proxy_on_request_trailers(int32_t context_id, int32_t num_trailers) {
    return dispatch(CB_REQUEST_TRAILERS, 2, context_id, num_trailers, 0);
}
WASM_EXPORT(proxy_on_response_headers)
int32_t proxy_on_response_headers(int32_t context_id, int32_t num_headers, int32_t end_of_stream) {
    return dispatch(CB_RESPONSE_HEADERS, 3, context_id, num_headers, end_of_stream);
}
WASM_EXPORT(proxy_on_response_body)
int32_t proxy_on_response_body(int32_t context_id, int32_t body_size, int32_t end_of_stream) {
    return dispatch(CB_RESPONSE_BODY, 3, context_id, body_size, end_of_stream);
}
WASM_EXPORT(proxy_on_response_trailers)
int32_t proxy_on_response_trailers(int32_t context_id, int32_t num_trailers) {
    return dispatch(CB_RESPONSE_TRAILERS, 2, context_id, num_trailers, 0);
}

/* ---- the built-in module _proxy_host --------------------------------------------------------
 * Thin: integers and bytes in, a status (or (status, bytes)) out. Statuses and enums are
 * interpreted in Python (usage_filter.binding.abi / hostcalls). */

static int arg_int(PyObject *const *args, Py_ssize_t i, int32_t *out) {
    long value = PyLong_AsLong(args[i]);
    if (value == -1 && PyErr_Occurred()) return -1;
    *out = (int32_t)value;
    return 0;
}

static int arg_bytes(PyObject *const *args, Py_ssize_t i, const char **data, Py_ssize_t *size) {
    if (!PyBytes_Check(args[i])) {
        PyErr_Format(PyExc_TypeError, "argument %zd must be bytes", i + 1);
        return -1;
    }
    *data = PyBytes_AS_STRING(args[i]);
    *size = PyBytes_GET_SIZE(args[i]);
    return 0;
}

static int check_nargs(const char *name, Py_ssize_t nargs, Py_ssize_t expected) {
    if (nargs == expected) return 0;
    PyErr_Format(PyExc_TypeError, "%s() takes %zd arguments (%zd given)", name, expected, nargs);
    return -1;
}

/* (status, bytes) from a host call that allocated `data` with our malloc; frees it. */
static PyObject *status_and_bytes(int32_t status, char *data, size_t size) {
    PyObject *payload = PyBytes_FromStringAndSize(data != NULL ? data : "", data != NULL ? size : 0);
    free(data);
    if (payload == NULL) return NULL;
    return Py_BuildValue("(iN)", status, payload);
}

static PyObject *host_register(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (check_nargs("register", nargs, 1) < 0) return NULL;
    PyObject *methods[CB_COUNT];
    for (int i = 0; i < CB_COUNT; i++) {
        methods[i] = PyObject_GetAttrString(args[0], CALLBACKS[i].name);
        if (methods[i] == NULL) {
            for (int j = 0; j < i; j++) Py_DECREF(methods[j]);
            return NULL;
        }
    }
    for (int i = 0; i < CB_COUNT; i++) {
        Py_XSETREF(handler_methods[i], methods[i]);
    }
    handler_registered = 1;
    Py_RETURN_NONE;
}

static PyObject *host_log(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    int32_t level;
    const char *message;
    Py_ssize_t size;
    if (check_nargs("log", nargs, 2) < 0 || arg_int(args, 0, &level) < 0 ||
        arg_bytes(args, 1, &message, &size) < 0)
        return NULL;
    return PyLong_FromLong(proxy_log(level, message, (size_t)size));
}

static PyObject *host_get_buffer_bytes(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    int32_t buffer_type, start, max_size;
    if (check_nargs("get_buffer_bytes", nargs, 3) < 0 || arg_int(args, 0, &buffer_type) < 0 ||
        arg_int(args, 1, &start) < 0 || arg_int(args, 2, &max_size) < 0)
        return NULL;
    char *data = NULL;
    size_t size = 0;
    int32_t status =
        proxy_get_buffer_bytes(buffer_type, (size_t)start, (size_t)max_size, &data, &size);
    return status_and_bytes(status, data, size);
}

static PyObject *host_set_buffer_bytes(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    int32_t buffer_type, start, size;
    const char *data;
    Py_ssize_t data_size;
    if (check_nargs("set_buffer_bytes", nargs, 4) < 0 || arg_int(args, 0, &buffer_type) < 0 ||
        arg_int(args, 1, &start) < 0 || arg_int(args, 2, &size) < 0 ||
        arg_bytes(args, 3, &data, &data_size) < 0)
        return NULL;
    return PyLong_FromLong(proxy_set_buffer_bytes(buffer_type, (size_t)start, (size_t)size, data,
                                                  (size_t)data_size));
}

static PyObject *host_get_header_map_pairs(PyObject *self, PyObject *const *args,
                                           Py_ssize_t nargs) {
    int32_t map_type;
    if (check_nargs("get_header_map_pairs", nargs, 1) < 0 || arg_int(args, 0, &map_type) < 0)
        return NULL;
    char *data = NULL;
    size_t size = 0;
    int32_t status = proxy_get_header_map_pairs(map_type, &data, &size);
    return status_and_bytes(status, data, size);
}

static PyObject *host_replace_header_map_value(PyObject *self, PyObject *const *args,
                                               Py_ssize_t nargs) {
    int32_t map_type;
    const char *key, *value;
    Py_ssize_t key_size, value_size;
    if (check_nargs("replace_header_map_value", nargs, 3) < 0 || arg_int(args, 0, &map_type) < 0 ||
        arg_bytes(args, 1, &key, &key_size) < 0 || arg_bytes(args, 2, &value, &value_size) < 0)
        return NULL;
    return PyLong_FromLong(proxy_replace_header_map_value(map_type, key, (size_t)key_size, value,
                                                          (size_t)value_size));
}

static PyObject *host_remove_header_map_value(PyObject *self, PyObject *const *args,
                                              Py_ssize_t nargs) {
    int32_t map_type;
    const char *key;
    Py_ssize_t key_size;
    if (check_nargs("remove_header_map_value", nargs, 2) < 0 || arg_int(args, 0, &map_type) < 0 ||
        arg_bytes(args, 1, &key, &key_size) < 0)
        return NULL;
    return PyLong_FromLong(proxy_remove_header_map_value(map_type, key, (size_t)key_size));
}

static PyObject *host_get_property(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    const char *path;
    Py_ssize_t path_size;
    if (check_nargs("get_property", nargs, 1) < 0 || arg_bytes(args, 0, &path, &path_size) < 0)
        return NULL;
    char *data = NULL;
    size_t size = 0;
    int32_t status = proxy_get_property(path, (size_t)path_size, &data, &size);
    return status_and_bytes(status, data, size);
}

static PyObject *host_get_current_time_nanoseconds(PyObject *self, PyObject *const *args,
                                                   Py_ssize_t nargs) {
    if (check_nargs("get_current_time_nanoseconds", nargs, 0) < 0) return NULL;
    uint64_t nanoseconds = 0;
    int32_t status = proxy_get_current_time_nanoseconds(&nanoseconds);
    return Py_BuildValue("(iK)", status, (unsigned long long)nanoseconds);
}

#define FASTCALL(name, doc) {#name, (PyCFunction)(void (*)(void))host_##name, METH_FASTCALL, doc}

static PyMethodDef host_methods[] = {
    FASTCALL(register, "register(handler): the object whose proxy_on_* methods get callbacks"),
    FASTCALL(log, "log(level, message: bytes) -> status"),
    FASTCALL(get_buffer_bytes, "get_buffer_bytes(type, start, max_size) -> (status, bytes)"),
    FASTCALL(set_buffer_bytes, "set_buffer_bytes(type, start, size, data) -> status"),
    FASTCALL(get_header_map_pairs, "get_header_map_pairs(map_type) -> (status, serialized)"),
    FASTCALL(replace_header_map_value, "replace_header_map_value(map_type, key, value) -> status"),
    FASTCALL(remove_header_map_value, "remove_header_map_value(map_type, key) -> status"),
    FASTCALL(get_property, "get_property(path: NUL-joined bytes) -> (status, bytes)"),
    FASTCALL(get_current_time_nanoseconds, "get_current_time_nanoseconds() -> (status, ns)"),
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef host_module = {
    PyModuleDef_HEAD_INIT, "_proxy_host", "Proxy-Wasm host calls (ABI 0.2.1), raw.", -1,
    host_methods,
};

static PyObject *PyInit__proxy_host(void) { return PyModule_Create(&host_module); }

/* Must happen before Py_Initialize (inside main()): a C constructor, run by _initialize. */
__attribute__((constructor)) static void register_builtin_module(void) {
    PyImport_AppendInittab("_proxy_host", PyInit__proxy_host);
}
