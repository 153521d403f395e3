/* dlopen & co. for libpython and Nuitka: Debian's wasi-libc has an empty libdl.a, and
 * WebAssembly cannot load code at run time anyway. Every call fails the documented way. */
#include <dlfcn.h>
#include <stddef.h>

static char dl_message[] = "dynamic loading is not available in WebAssembly";

void *dlopen(const char *filename, int flags) {
    (void)filename;
    (void)flags;
    return NULL;
}

void *dlsym(void *restrict handle, const char *restrict symbol) {
    (void)handle;
    (void)symbol;
    return NULL;
}

int dlclose(void *handle) {
    (void)handle;
    return 0;
}

char *dlerror(void) { return dl_message; }

int dladdr(const void *address, Dl_info *info) {
    (void)address;
    (void)info;
    return 0;
}
