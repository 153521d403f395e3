/* The WASI (preview1) functions libpython links against but Envoy's Proxy-Wasm host does not
 * provide. wasi-libc calls each through `__imported_wasi_snapshot_preview1_<name>`; defining
 * that symbol here makes the linker resolve it inside the module instead of importing it, so
 * Envoy can instantiate the module. What stays imported (Envoy provides these): environ_get,
 * environ_sizes_get, clock_time_get, fd_fdstat_get, fd_prestat_get, fd_prestat_dir_name,
 * fd_write, poll_oneoff, proc_exit, sched_yield, random_get.
 *
 * The filter has no files, sockets or stdin: everything fails with a WASI errno, except
 * fstat of the standard streams, which Python's start-up needs to open sys.stdout/stderr
 * (Envoy maps fd 1/2 to its log).
 */
#include <stdint.h>
#include <string.h>

#define WASI_ERRNO_BADF 8
#define WASI_ERRNO_NOENT 44
#define WASI_ERRNO_NOSYS 52
#define WASI_ERRNO_SPIPE 70
#define WASI_FILETYPE_CHARACTER_DEVICE 2

#define WASI_OVERRIDE(name) int32_t __imported_wasi_snapshot_preview1_##name

WASI_OVERRIDE(fd_filestat_get)(int32_t fd, int32_t filestat_ptr) {
    if (fd < 0 || fd > 2) return WASI_ERRNO_BADF;
    /* struct filestat: dev, ino (u64), filetype (u8 at 16), nlink, size, atim, mtim, ctim. */
    uint8_t *filestat = (uint8_t *)(uintptr_t)filestat_ptr;
    memset(filestat, 0, 64);
    filestat[16] = WASI_FILETYPE_CHARACTER_DEVICE;
    return 0;
}

/* Standard streams are not seekable. */
WASI_OVERRIDE(fd_seek)(int32_t fd, int64_t offset, int32_t whence, int32_t new_offset_ptr) {
    return WASI_ERRNO_SPIPE;
}
WASI_OVERRIDE(fd_tell)(int32_t fd, int32_t offset_ptr) { return WASI_ERRNO_SPIPE; }

/* No files: lookups find nothing. */
WASI_OVERRIDE(path_open)(int32_t fd, int32_t dirflags, int32_t path, int32_t path_len,
                         int32_t oflags, int64_t rights_base, int64_t rights_inheriting,
                         int32_t fdflags, int32_t fd_ptr) {
    return WASI_ERRNO_NOENT;
}
WASI_OVERRIDE(path_filestat_get)(int32_t fd, int32_t flags, int32_t path, int32_t path_len,
                                 int32_t filestat_ptr) {
    return WASI_ERRNO_NOENT;
}
WASI_OVERRIDE(path_readlink)(int32_t fd, int32_t path, int32_t path_len, int32_t buf,
                             int32_t buf_len, int32_t bufused_ptr) {
    return WASI_ERRNO_NOENT;
}

/* No open descriptors besides the standard streams. */
WASI_OVERRIDE(fd_close)(int32_t fd) { return WASI_ERRNO_BADF; }
WASI_OVERRIDE(fd_read)(int32_t fd, int32_t iovs, int32_t iovs_len, int32_t nread_ptr) {
    return WASI_ERRNO_BADF;
}
WASI_OVERRIDE(fd_pread)(int32_t fd, int32_t iovs, int32_t iovs_len, int64_t offset,
                        int32_t nread_ptr) {
    return WASI_ERRNO_BADF;
}
WASI_OVERRIDE(fd_pwrite)(int32_t fd, int32_t iovs, int32_t iovs_len, int64_t offset,
                         int32_t nwritten_ptr) {
    return WASI_ERRNO_BADF;
}
WASI_OVERRIDE(fd_readdir)(int32_t fd, int32_t buf, int32_t buf_len, int64_t cookie,
                          int32_t bufused_ptr) {
    return WASI_ERRNO_BADF;
}

/* Everything else the filter never needs. */
WASI_OVERRIDE(clock_res_get)(int32_t clock_id, int32_t resolution_ptr) { return WASI_ERRNO_NOSYS; }
WASI_OVERRIDE(fd_advise)(int32_t fd, int64_t offset, int64_t len, int32_t advice) {
    return WASI_ERRNO_NOSYS;
}
WASI_OVERRIDE(fd_datasync)(int32_t fd) { return WASI_ERRNO_NOSYS; }
WASI_OVERRIDE(fd_sync)(int32_t fd) { return WASI_ERRNO_NOSYS; }
WASI_OVERRIDE(fd_fdstat_set_flags)(int32_t fd, int32_t flags) { return WASI_ERRNO_NOSYS; }
WASI_OVERRIDE(fd_filestat_set_size)(int32_t fd, int64_t size) { return WASI_ERRNO_NOSYS; }
WASI_OVERRIDE(fd_filestat_set_times)(int32_t fd, int64_t atim, int64_t mtim, int32_t flags) {
    return WASI_ERRNO_NOSYS;
}
WASI_OVERRIDE(path_create_directory)(int32_t fd, int32_t path, int32_t path_len) {
    return WASI_ERRNO_NOSYS;
}
WASI_OVERRIDE(path_filestat_set_times)(int32_t fd, int32_t flags, int32_t path, int32_t path_len,
                                       int64_t atim, int64_t mtim, int32_t fst_flags) {
    return WASI_ERRNO_NOSYS;
}
WASI_OVERRIDE(path_link)(int32_t old_fd, int32_t old_flags, int32_t old_path, int32_t old_path_len,
                         int32_t new_fd, int32_t new_path, int32_t new_path_len) {
    return WASI_ERRNO_NOSYS;
}
WASI_OVERRIDE(path_remove_directory)(int32_t fd, int32_t path, int32_t path_len) {
    return WASI_ERRNO_NOSYS;
}
WASI_OVERRIDE(path_rename)(int32_t fd, int32_t old_path, int32_t old_path_len, int32_t new_fd,
                           int32_t new_path, int32_t new_path_len) {
    return WASI_ERRNO_NOSYS;
}
WASI_OVERRIDE(path_symlink)(int32_t old_path, int32_t old_path_len, int32_t fd, int32_t new_path,
                            int32_t new_path_len) {
    return WASI_ERRNO_NOSYS;
}
WASI_OVERRIDE(path_unlink_file)(int32_t fd, int32_t path, int32_t path_len) {
    return WASI_ERRNO_NOSYS;
}
WASI_OVERRIDE(sock_accept)(int32_t fd, int32_t flags, int32_t fd_ptr) { return WASI_ERRNO_NOSYS; }
WASI_OVERRIDE(sock_recv)(int32_t fd, int32_t ri_data, int32_t ri_data_len, int32_t ri_flags,
                         int32_t ro_datalen_ptr, int32_t ro_flags_ptr) {
    return WASI_ERRNO_NOSYS;
}
WASI_OVERRIDE(sock_send)(int32_t fd, int32_t si_data, int32_t si_data_len, int32_t si_flags,
                         int32_t so_datalen_ptr) {
    return WASI_ERRNO_NOSYS;
}
WASI_OVERRIDE(sock_shutdown)(int32_t fd, int32_t how) { return WASI_ERRNO_NOSYS; }
