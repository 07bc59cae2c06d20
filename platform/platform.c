/* platform.c - the OS-neutral half of the platform layer: the methods-table dispatch, the
 * el_file_* wrappers (exact reads over short reads and EINTR, O_DIRECT alignment rules),
 * process-wide I/O accounting and fault injection. Each OS supplies one platform_<os>.c
 * with its methods table and the process facts (memory report, threads, CPU count). */
#include "platform/platform.h"

#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Defined by the one platform_<os>.c compiled for this target. */
extern const el_platform_methods el_platform_os_methods;

/* ---- methods table ------------------------------------------------------------------ */

/* A custom table is copied here with its NULL members filled from the OS table, so a test
 * can override only x_pread, say. The pointer is atomic only so that a reader on an I/O
 * thread never sees a torn value; swapping tables while files are open is still a bug. */
static el_platform_methods g_custom;
static const el_platform_methods *_Atomic g_methods = &el_platform_os_methods;

const el_platform_methods *el_platform_get(void) {
    return atomic_load_explicit(&g_methods, memory_order_acquire);
}

void el_platform_set(const el_platform_methods *m) {
    if (!m) {
        atomic_store_explicit(&g_methods, &el_platform_os_methods, memory_order_release);
        return;
    }
    const el_platform_methods *d = &el_platform_os_methods;
    el_platform_methods c = *m;
    if (!c.name) c.name = "custom";
    if (!c.x_open) c.x_open = d->x_open;
    if (!c.x_pread) c.x_pread = d->x_pread;
    if (!c.x_close) c.x_close = d->x_close;
    if (!c.x_reserve) c.x_reserve = d->x_reserve;
    if (!c.x_release) c.x_release = d->x_release;
    if (!c.x_now) c.x_now = d->x_now;
    g_custom = c;
    atomic_store_explicit(&g_methods, &g_custom, memory_order_release);
}

/* ---- storage callbacks (el_storage_set): a methods table over the caller's functions --- */

static el_storage g_storage;

static el_status storage_open(el_file *f, const char *path, unsigned flags) {
    if (flags & EL_FILE_DIRECT)
        return el_errorf(EL_E_UNSUPPORTED, "%s: direct I/O needs a file descriptor and reads "
                         "go through storage callbacks (el_storage_set); load without "
                         "--direct", path);
    void *h = NULL;
    uint64_t size = 0;
    int e = g_storage.open(g_storage.user, path, &h, &size);
    if (e != 0)
        return el_errorf(EL_E_IO, "%s: %s (storage callbacks)", path,
                         e > 0 ? strerror(e) : "open failed");
    f->fd = EL_FILE_FD_CALLBACKS;
    f->handle = h;
    f->size = size;
    return EL_OK;
}

static int64_t storage_pread(el_file *f, void *buf, size_t n, uint64_t off) {
    return g_storage.read(g_storage.user, f->handle, buf, n, off);
}

static void storage_close(el_file *f) {
    if (g_storage.close) g_storage.close(g_storage.user, f->handle);
    f->handle = NULL;
}

static const el_platform_methods k_storage_methods = {
    .name = "storage callbacks", .x_open = storage_open, .x_pread = storage_pread,
    .x_close = storage_close};

el_status el_storage_set(const el_storage *s) {
    if (!s) {
        el_platform_set(NULL);
        memset(&g_storage, 0, sizeof g_storage);
        return EL_OK;
    }
    if (!s->open || !s->read)
        return el_errorf(EL_E_USAGE, "el_storage_set: open and read callbacks are required");
    g_storage = *s;
    el_platform_set(&k_storage_methods);
    return EL_OK;
}

bool el_storage_active(void) { return el_platform_get()->x_open == storage_open; }

bool el_storage_exists(const char *name) {
    void *h = NULL;
    uint64_t size = 0;
    if (!el_storage_active()) return false;
    int e = g_storage.open(g_storage.user, name, &h, &size);
    if (e != 0) {
        errno = e > 0 ? e : EIO; /* for the caller's "not found" message */
        return false;
    }
    if (g_storage.close) g_storage.close(g_storage.user, h);
    return true;
}

double el_now(void) { return el_platform_get()->x_now(); }

/* ---- I/O accounting ----------------------------------------------------------------- */

static _Atomic uint64_t g_io_reads;  /* successful x_pread calls */
static _Atomic uint64_t g_io_bytes;  /* bytes they returned */

void el_io_stats_get(el_io_stats *out) {
    out->reads = atomic_load_explicit(&g_io_reads, memory_order_relaxed);
    out->bytes = atomic_load_explicit(&g_io_bytes, memory_order_relaxed);
}

void el_io_stats_reset(void) {
    atomic_store_explicit(&g_io_reads, 0, memory_order_relaxed);
    atomic_store_explicit(&g_io_bytes, 0, memory_order_relaxed);
}

/* ---- fault injection ---------------------------------------------------------------- */

/* What the fault plan says about one read attempt. */
typedef struct fault_decision {
    bool fail;      /* fail this read with an injected EIO */
    bool eintr;     /* deliver one EINTR before the real read */
    bool shorten;   /* return at most half of what was asked */
} fault_decision;

#ifdef EL_FAULT_INJECTION
/* Atomics because the loader reads on an I/O thread while tests set plans on the main one. */
static _Atomic uint64_t g_fault_fail_nth;
static _Atomic uint32_t g_fault_short_every;
static _Atomic uint32_t g_fault_eintr_every;
static _Atomic uint64_t g_fault_calls; /* read attempts since the last el_fault_set */
static _Atomic uint64_t g_fault_write_nth;
static _Atomic uint64_t g_fault_writes; /* write operations since the last el_fault_set */

bool el_fault_set(const el_fault_plan *p) {
    el_fault_plan z = {0};
    if (!p) p = &z;
    atomic_store(&g_fault_fail_nth, p->fail_read_nth);
    atomic_store(&g_fault_short_every, p->short_read_every);
    atomic_store(&g_fault_eintr_every, p->eintr_every);
    atomic_store(&g_fault_calls, 0);
    return true;
}

bool el_fault_set_write(uint64_t fail_write_nth) {
    atomic_store(&g_fault_write_nth, fail_write_nth);
    atomic_store(&g_fault_writes, 0);
    return true;
}

/* True if this write operation is the one the plan fails. */
static bool fault_write_next(void) {
    uint64_t nth = atomic_load_explicit(&g_fault_write_nth, memory_order_relaxed);
    if (!nth) return false;
    return atomic_fetch_add_explicit(&g_fault_writes, 1, memory_order_relaxed) + 1 == nth;
}

void el_fault_clear(void) {
    el_fault_set(NULL);
    el_fault_set_write(0);
}

/* Claims the number of the next read attempt (1-based) and decides its faults. */
static fault_decision fault_next(void) {
    fault_decision d = {false, false, false};
    uint64_t nth = atomic_load_explicit(&g_fault_fail_nth, memory_order_relaxed);
    uint32_t se = atomic_load_explicit(&g_fault_short_every, memory_order_relaxed);
    uint32_t ee = atomic_load_explicit(&g_fault_eintr_every, memory_order_relaxed);
    if (!nth && !se && !ee) return d;
    uint64_t k = atomic_fetch_add_explicit(&g_fault_calls, 1, memory_order_relaxed) + 1;
    d.fail = nth != 0 && k == nth;
    d.eintr = ee != 0 && k % ee == 0;
    d.shorten = se != 0 && k % se == 0;
    return d;
}
#else
bool el_fault_set(const el_fault_plan *p) {
    (void)p;
    return false;
}
void el_fault_clear(void) {}
bool el_fault_set_write(uint64_t fail_write_nth) {
    (void)fail_write_nth;
    return false;
}
static fault_decision fault_next(void) {
    fault_decision d = {false, false, false};
    return d;
}
static bool fault_write_next(void) { return false; }
#endif

/* ---- writing ------------------------------------------------------------------------ */

el_status el_fd_write_at(int fd, const void *buf, size_t n, uint64_t off, const char *what) {
    if (fault_write_next())
        return el_errorf(EL_E_IO, "%s: write of %zu bytes at offset %llu failed: injected I/O "
                         "error (fault injection)", what, n, (unsigned long long)off);
    const uint8_t *p = buf;
    size_t done = 0;
    while (done < n) {
        ssize_t w = pwrite(fd, p + done, n - done, (off_t)(off + done));
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0)
            return el_errorf(EL_E_IO, "%s: write of %zu bytes at offset %llu failed: %s", what,
                             n - done, (unsigned long long)(off + done),
                             w < 0 ? strerror(errno) : "no progress");
        done += (size_t)w;
    }
    return EL_OK;
}

el_status el_fd_sync(int fd, const char *what) {
    if (fault_write_next())
        return el_errorf(EL_E_IO, "%s: fsync failed: injected I/O error (fault injection)", what);
    if (fsync(fd) != 0) return el_errorf(EL_E_IO, "%s: fsync failed: %s", what, strerror(errno));
    return EL_OK;
}

el_status el_path_rename(const char *from, const char *to) {
    if (fault_write_next())
        return el_errorf(EL_E_IO, "rename %s -> %s failed: injected I/O error (fault injection)",
                         from, to);
    if (rename(from, to) != 0)
        return el_errorf(EL_E_IO, "rename %s -> %s failed: %s", from, to, strerror(errno));
    return EL_OK;
}

/* ---- files -------------------------------------------------------------------------- */

/* A zeroed el_file has fd 0 and an empty path; an open one always has a path, so checking
 * both keeps a close on a zeroed struct from closing stdin. */
static bool file_is_open(const el_file *f) { return f && f->fd >= 0 && f->path[0] != 0; }

bool el_file_window_path(char *out, size_t cap, const char *file, uint64_t offset,
                         uint64_t size, const char *name) {
    if (!file || !*file || !name || !*name || strpbrk(name, ":/")) return false;
    /* FILE always holds a '/', so replacing the last path component (how a sibling file
     * is looked up) eats NAME and leaves no window. */
    int k = snprintf(out, cap, EL_FILE_WINDOW "%llu+%llu:%s%s:%s", (unsigned long long)offset,
                     (unsigned long long)size, strchr(file, '/') ? "" : "./", file, name);
    return k > 0 && (size_t)k < cap;
}

/* Splits a window path into its file, offset, size and name (after the last ':', without
 * '/'); false if it is not one. */
static bool window_parse(const char *path, char *file, size_t file_cap, uint64_t *offset,
                         uint64_t *size, const char **name) {
    const size_t pl = sizeof EL_FILE_WINDOW - 1;
    if (strncmp(path, EL_FILE_WINDOW, pl)) return false;
    const char *p = path + pl;
    char *end;
    if (*p < '0' || *p > '9') return false;
    errno = 0;
    unsigned long long o = strtoull(p, &end, 10);
    if (errno || *end != '+' || end[1] < '0' || end[1] > '9') return false;
    unsigned long long n = strtoull(end + 1, &end, 10);
    if (errno || *end != ':') return false;
    const char *colon = strrchr(end + 1, ':');
    if (!colon || colon == end + 1 || !colon[1] || strchr(colon + 1, '/')) return false;
    int k = snprintf(file, file_cap, "%.*s", (int)(colon - (end + 1)), end + 1);
    if (k < 0 || (size_t)k >= file_cap) return false;
    *offset = o;
    *size = n;
    *name = colon + 1;
    return true;
}

el_status el_file_open(el_file *f, const char *path, unsigned flags) {
    if (!f) return el_errorf(EL_E_USAGE, "el_file_open: f is NULL");
    memset(f, 0, sizeof *f);
    f->fd = -1;
    if (!path || !*path) return el_errorf(EL_E_USAGE, "el_file_open: empty path");
    if (flags & ~(unsigned)EL_FILE_DIRECT)
        return el_errorf(EL_E_USAGE, "%s: unknown open flags 0x%x", path, flags);
    char file[sizeof f->path];
    const char *name = NULL;
    uint64_t woff = 0, wsize = 0, wend = 0;
    bool window = window_parse(path, file, sizeof file, &woff, &wsize, &name);
    if (window && (flags & EL_FILE_DIRECT))
        return el_errorf(EL_E_USAGE, "%s: a window is read without O_DIRECT", path);
    if (window) /* for messages: cut when longer */
        snprintf(f->path, sizeof f->path, "%.900s: %.100s", file, name);
    else
        snprintf(f->path, sizeof f->path, "%s", path);
    el_status s = el_platform_get()->x_open(f, window ? file : path, flags);
    if (s == EL_OK && window && (!el_add_u64(woff, wsize, &wend) || wend > f->size)) {
        s = el_errorf(EL_E_INVALID, "%s: stored at %llu..%llu, past the end of the file (%llu "
                      "bytes)", f->path, (unsigned long long)woff, (unsigned long long)wend,
                      (unsigned long long)f->size);
        el_platform_get()->x_close(f);
    }
    if (s != EL_OK) {
        f->fd = -1; /* x_open closes what it opened before failing */
        f->path[0] = 0;
        return s;
    }
    if (window) {
        f->window = true;
        f->base = woff;
        f->size = wsize;
    }
    return s;
}

void el_file_close(el_file *f) {
    if (!file_is_open(f)) return;
    el_platform_get()->x_close(f);
    f->fd = -1;
}

/* Reads exactly n bytes at off. For a direct file, buf, off and n must be multiples of
 * EL_DIRECT_ALIGN; because the last block of a file is then only reachable by reading past
 * its end, a direct read may extend past end of file up to the next EL_DIRECT_ALIGN
 * boundary and the bytes beyond the end are zero-filled. Anything further is truncation. */
el_status el_file_read_at(el_file *f, void *buf, size_t n, uint64_t off) {
    if (!file_is_open(f)) return el_errorf(EL_E_USAGE, "el_file_read_at: file is not open");
    if (n == 0) return EL_OK;
    if (!buf) return el_errorf(EL_E_USAGE, "%s: el_file_read_at with a NULL buffer", f->path);
    uint64_t end;
    if (!el_add_u64(off, n, &end))
        return el_errorf(EL_E_USAGE, "%s: read of %zu bytes at offset %llu overflows", f->path,
                         n, (unsigned long long)off);
    if (f->window && end > f->size)
        return el_errorf(EL_E_INVALID, "%s: truncated: needed %zu bytes at offset %llu, the "
                         "stored file has %llu bytes", f->path, n, (unsigned long long)off,
                         (unsigned long long)f->size);
    if (f->direct && (((uintptr_t)buf | off | n) & (EL_DIRECT_ALIGN - 1)))
        return el_errorf(EL_E_USAGE,
                         "%s: O_DIRECT read needs buffer, offset and length aligned to %u "
                         "bytes (buffer %p, offset %llu, length %zu); use aligned staging",
                         f->path, EL_DIRECT_ALIGN, buf, (unsigned long long)off, n);

    const el_platform_methods *m = el_platform_get();
    uint8_t *dst = buf;
    size_t got = 0;
    fault_decision d = {false, false, false};
    bool have_d = false; /* a decision claimed but not yet spent on a real read */
    while (got < n) {
        if (!have_d) {
            d = fault_next();
            have_d = true;
        }
        if (d.fail)
            return el_errorf(EL_E_IO, "%s: read of %zu bytes at offset %llu failed: injected "
                             "I/O error (fault injection)", f->path, n - got,
                             (unsigned long long)(off + got));
        size_t want = n - got;
        if (d.shorten) {
            if (f->direct) /* keep the next read aligned: shorten only by whole blocks */
                want = want >= 2 * EL_DIRECT_ALIGN ? (want / 2) & ~(size_t)(EL_DIRECT_ALIGN - 1)
                                                   : want;
            else
                want = want >= 2 ? want / 2 : 1;
        }
        int64_t r;
        if (d.eintr) {
            d.eintr = false; /* once: the retry below does the real read */
            r = -EINTR;
        } else {
            r = m->x_pread(f, dst + got, want, f->base + off + got); /* base: a window's */
            have_d = false;
        }
        if (r == -EINTR) continue;
        if (r < 0)
            return el_errorf(EL_E_IO, "%s: read of %zu bytes at offset %llu failed: %s",
                             f->path, n - got, (unsigned long long)(off + got),
                             strerror(r >= -4095 ? (int)-r : EIO));
        if ((uint64_t)r > want)
            return el_errorf(EL_E_IO, "%s: platform '%s' returned %lld bytes for a read of %zu",
                             f->path, m->name, (long long)r, want);
        atomic_fetch_add_explicit(&g_io_reads, 1, memory_order_relaxed);
        atomic_fetch_add_explicit(&g_io_bytes, (uint64_t)r, memory_order_relaxed);
        got += (size_t)r;
        /* Direct I/O cannot continue from an unaligned position: a short direct read that
         * leaves one means end of file, as does 0. */
        bool eof = r == 0 || (f->direct && (got & (EL_DIRECT_ALIGN - 1)));
        if (!eof || got == n) continue;
        /* Data then end of file pins the size exactly; end of file at the first read only
         * says the file ends at or before off, so fall back to the size seen at open. */
        uint64_t file_end = got > 0 ? off + got : f->size <= off ? f->size : off, tail_limit;
        if (f->direct && el_align_up_u64(file_end, EL_DIRECT_ALIGN, &tail_limit) &&
            end <= tail_limit) {
            memset(dst + got, 0, n - got);
            return EL_OK;
        }
        return el_errorf(EL_E_INVALID,
                         "%s: truncated: needed %zu bytes at offset %llu, file has %llu bytes; "
                         "the file is incomplete or its header is wrong", f->path, n,
                         (unsigned long long)off, (unsigned long long)file_end);
    }
    return EL_OK;
}

void el_path_dir(const char *path, char *out, size_t cap) {
    snprintf(out, cap, "%s", path);
    char *slash = strrchr(out, '/');
    if (!slash)
        snprintf(out, cap, ".");
    else if (slash == out)
        out[1] = 0;
    else
        *slash = 0;
}
