/* platform.h - the OS layer: storage, memory backing, clock, RSS/meminfo, threads, errors.
 *
 * The core calls the thin el_* wrappers below; they dispatch to one methods table per
 * platform (SQLite os-layer style) and apply fault injection when a test asks for it.
 * Everything here is internal to the library. */
#ifndef EL_PLATFORM_H
#define EL_PLATFORM_H

#include "edgeload.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- errors ------------------------------------------------------------------------ */

/* Sets the calling thread's last-error message (printf-style) and returns s, so callers
 * write `return el_errorf(EL_E_INVALID, "%s: header length %llu past end", ...)`. */
el_status el_errorf(el_status s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Copies a message verbatim (used to carry a worker thread's message to the caller). */
el_status el_error_set(el_status s, const char *msg);
/* el_errorf with a va_list (the CUDA module's errors: platform/gpu_module.h). */
el_status el_verrorf(el_status s, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

/* ---- overflow-checked size arithmetic (every size from untrusted input goes here) -- */

static inline bool el_add_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_add_overflow(a, b, out);
}
static inline bool el_mul_u64(uint64_t a, uint64_t b, uint64_t *out) {
    return !__builtin_mul_overflow(a, b, out);
}
/* Rounds v up to a multiple of align (a power of two); false on overflow. */
static inline bool el_align_up_u64(uint64_t v, uint64_t align, uint64_t *out) {
    uint64_t t;
    if (!el_add_u64(v, align - 1, &t)) return false;
    *out = t & ~(align - 1);
    return true;
}

/* ---- storage ------------------------------------------------------------------------ */

enum {
    EL_FILE_DIRECT = 1u << 0, /* O_DIRECT: buffers, offsets and lengths 4 KiB aligned */
};

#define EL_DIRECT_ALIGN 4096u

/* One open file or block device. Caller-owned storage: opening allocates nothing. */
typedef struct el_file {
    int fd;            /* -1 when closed */
    uint64_t size;     /* bytes (st_size, or BLKGETSIZE64 for block devices) */
    bool is_blockdev;
    bool direct;       /* opened with O_DIRECT */
    char path[1024];   /* for messages; truncated if longer */
    void *handle;      /* el_storage callbacks: their handle (fd is EL_FILE_FD_CALLBACKS) */
    uint64_t base;     /* a window (EL_FILE_WINDOW path): where its byte 0 is in the file;
                          size is then the window's and reads past it are truncation */
    bool window;
} el_file;

/* A window onto part of a file, opened by el_file_open like a file of its own: the bytes
 * [offset, offset + size) of FILE, named NAME in messages ("FILE: NAME"). The path is
 * EL_FILE_WINDOW "OFFSET+SIZE:FILE:NAME" (NAME without ':' or '/'; FILE with a '/', "./"
 * added if needed, so a sibling lookup that replaces the last component finds no window);
 * el_file_window_path writes one (false if it does not fit in cap or NAME is bad). Files
 * stored inside an image are read in place through windows. */
#define EL_FILE_WINDOW "el-window:"
bool el_file_window_path(char *out, size_t cap, const char *file, uint64_t offset,
                         uint64_t size, const char *name);

#define EL_FILE_FD_CALLBACKS 0x7fffffff /* fd of a file opened through el_storage */

/* The per-platform methods. A read may be short or fail with EINTR; the wrappers loop. */
typedef struct el_platform_methods {
    const char *name;
    /* Opens path read-only; fills fd, size, is_blockdev, direct. */
    el_status (*x_open)(el_file *f, const char *path, unsigned flags);
    /* One read attempt: returns bytes read (0 at end of file) or -errno. */
    int64_t (*x_pread)(el_file *f, void *buf, size_t n, uint64_t off);
    void (*x_close)(el_file *f);
    /* Memory backing: an anonymous private mapping of bytes (page-rounded). */
    el_status (*x_reserve)(uint64_t bytes, unsigned flags, void **out, unsigned *flags_got);
    void (*x_release)(void *p, uint64_t bytes);
    double (*x_now)(void); /* monotonic seconds */
} el_platform_methods;

const el_platform_methods *el_platform_get(void);
/* Replaces the methods (tests); NULL restores the default. Not thread-safe: call before use. */
void el_platform_set(const el_platform_methods *m);

el_status el_file_open(el_file *f, const char *path, unsigned flags);
/* Reads exactly n bytes at off, looping over short reads and EINTR. End of file before n
 * bytes: EL_E_INVALID ("truncated"); a read error: EL_E_IO. Messages name the file. */
el_status el_file_read_at(el_file *f, void *buf, size_t n, uint64_t off);
void el_file_close(el_file *f); /* safe on a closed or zeroed-then-closed file */
/* True while el_storage_set callbacks are routing reads; then el_storage_exists(name) says
 * whether the storage has name (file-system probes such as stat are meaningless). */
bool el_storage_active(void);
bool el_storage_exists(const char *name);
/* Drops the file's pages from the page cache (posix_fadvise DONTNEED); for benchmarks. */
void el_file_drop_cache(el_file *f);

/* ---- I/O accounting and fault injection ------------------------------------------- */

typedef struct el_io_stats {
    uint64_t reads;    /* successful x_pread calls */
    uint64_t bytes;    /* bytes they returned */
} el_io_stats;

/* Process-wide counters of every read through el_file_read_at (atomic). */
void el_io_stats_get(el_io_stats *out);
void el_io_stats_reset(void);

typedef struct el_fault_plan {
    uint64_t fail_read_nth;   /* 1-based x_pread call that fails with EIO; 0 = never */
    uint32_t short_read_every;/* every Nth read returns at most half what was asked; 0 = never */
    uint32_t eintr_every;     /* every Nth read fails with EINTR first; 0 = never */
} el_fault_plan;

/* Fault injection (compiled in when EL_FAULT_INJECTION is defined; otherwise these
 * return false / do nothing). Counters restart at each set. */
bool el_fault_set(const el_fault_plan *p);
void el_fault_clear(void); /* clears the read and the write plans */
/* Write faults: the nth (1-based) write operation from now (el_fd_write_at, el_fd_sync,
 * el_path_rename) fails with an injected EIO; 0 = never. False without EL_FAULT_INJECTION. */
bool el_fault_set_write(uint64_t fail_write_nth);

/* ---- writing (pack, flash) ---------------------------------------------------------- */

/* Writes exactly n bytes at off (loops over short writes and EINTR). EL_E_IO naming what
 * (a path) on failure. Each call is one write operation for fault injection. */
el_status el_fd_write_at(int fd, const void *buf, size_t n, uint64_t off, const char *what);
/* fsync(fd); one write operation for fault injection. */
el_status el_fd_sync(int fd, const char *what);
/* rename(from, to); one write operation for fault injection. */
el_status el_path_rename(const char *from, const char *to);

/* ---- memory, clock, process facts -------------------------------------------------- */

double el_now(void); /* monotonic seconds */
/* Reads VmRSS/VmHWM from /proc/self/status and MemAvailable from /proc/meminfo. */
el_status el_mem_report_get(el_mem_report *out);
uint64_t el_page_size(void);
/* The folder part of path into out ("." if none, "/" for the root); NUL-terminated. */
void el_path_dir(const char *path, char *out, size_t cap);
/* Faults [p, p + n) in, writable, without changing its contents (MADV_POPULATE_WRITE), so
 * it is safe while another thread writes there. False where the kernel lacks it. */
bool el_mem_populate(void *p, uint64_t n);

/* ---- threads ------------------------------------------------------------------------ */

typedef struct el_thread {
    pthread_t handle;
    bool started;
} el_thread;

el_status el_thread_start(el_thread *t, void *(*fn)(void *), void *arg);
void el_thread_join(el_thread *t);
unsigned el_cpu_count(void); /* online CPUs, >= 1 */

/* ---- CPU features (aarch64) --------------------------------------------------------------
 * What the kernel reports in its HWCAP words (getauxval), read once and cached. On other
 * architectures, and on aarch64 systems that report nothing, every answer is false. */
bool el_cpu_has_dotprod(void); /* SDOT/UDOT (ASIMDDP): ARMv8.2 optional, v8.4 mandatory */
bool el_cpu_has_i8mm(void);    /* SMMLA/USMMLA/UMMLA (I8MM): ARMv8.6 */
bool el_cpu_has_fp16(void);    /* half-precision arithmetic, scalar and vector (FPHP+ASIMDHP) */

#endif /* EL_PLATFORM_H */
