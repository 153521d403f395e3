/* Minimal <dlfcn.h> for Debian's wasi-libc (2022), which ships none. WebAssembly has no
 * dynamic loading: the definitions (shim/dl_stubs.c) always fail, which libpython and Nuitka
 * handle as "extension module not found". Constants are musl's (libpython was built with them).
 */
#ifndef TOKENUSAGE_WASI_DLFCN_H
#define TOKENUSAGE_WASI_DLFCN_H

#ifdef __cplusplus
extern "C" {
#endif

#define RTLD_LAZY 1
#define RTLD_NOW 2
#define RTLD_NOLOAD 4
#define RTLD_NODELETE 4096
#define RTLD_GLOBAL 256
#define RTLD_LOCAL 0

typedef struct {
    const char *dli_fname;
    void *dli_fbase;
    const char *dli_sname;
    void *dli_saddr;
} Dl_info;

void *dlopen(const char *, int);
void *dlsym(void *__restrict, const char *__restrict);
int dlclose(void *);
char *dlerror(void);
int dladdr(const void *, Dl_info *);

#ifdef __cplusplus
}
#endif

#endif
