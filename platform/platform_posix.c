/* platform_posix.c - the Linux platform: files and block devices (pread, O_DIRECT,
 * BLKGETSIZE64), the anonymous mapping behind the arena (huge pages, mlock, prefault),
 * the monotonic clock, /proc memory facts, pthreads and the CPU count.
 * Nothing here allocates on the heap: el_mem_report_get runs after the arena exists. */
#include "platform/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sched.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

/* ---- small /proc readers (stack buffers only) -------------------------------------- */

/* Reads up to cap-1 bytes of a small file into buf, NUL-terminated. Returns the length,
 * or -errno. */
static long read_small_file(const char *path, char *buf, size_t cap) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t len = 0;
    while (len + 1 < cap) {
        ssize_t r = read(fd, buf + len, cap - 1 - len);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            int e = errno;
            close(fd);
            return -e;
        }
        if (r == 0) break;
        len += (size_t)r;
    }
    close(fd);
    buf[len] = 0;
    return (long)len;
}

/* Finds "key:   <n> kB" at the start of a line of a /proc table; *out in bytes. */
static bool proc_find_kb(const char *text, const char *key, uint64_t *out) {
    size_t kl = strlen(key);
    const char *line = text;
    while (line && *line) {
        if (strncmp(line, key, kl) == 0 && line[kl] == ':') {
            const char *p = line + kl + 1;
            while (*p == ' ' || *p == '\t') p++;
            if (*p < '0' || *p > '9') return false;
            uint64_t v = 0;
            for (; *p >= '0' && *p <= '9'; p++)
                if (!el_mul_u64(v, 10, &v) || !el_add_u64(v, (uint64_t)(*p - '0'), &v))
                    return false;
            while (*p == ' ') p++;
            return el_mul_u64(v, p[0] == 'k' && p[1] == 'B' ? 1024 : 1, out);
        }
        line = strchr(line, '\n');
        if (line) line++;
    }
    return false;
}

el_status el_mem_report_get(el_mem_report *out) {
    if (!out) return el_errorf(EL_E_USAGE, "el_mem_report_get: out is NULL");
    memset(out, 0, sizeof *out);
    char buf[8192]; /* /proc/self/status is ~1.5 KiB, /proc/meminfo ~1.5 KiB */
    long n = read_small_file("/proc/self/status", buf, sizeof buf);
    if (n < 0)
        return el_errorf(EL_E_IO, "/proc/self/status: cannot read: %s (is /proc mounted?)",
                         strerror((int)-n));
    if (!proc_find_kb(buf, "VmRSS", &out->vm_rss) || !proc_find_kb(buf, "VmHWM", &out->vm_hwm))
        return el_errorf(EL_E_IO, "/proc/self/status: no VmRSS/VmHWM lines");
    n = read_small_file("/proc/meminfo", buf, sizeof buf);
    if (n < 0 || !proc_find_kb(buf, "MemAvailable", &out->mem_available))
        out->mem_available = 0; /* unknown: old kernels lack the line */
    return EL_OK;
}

uint64_t el_page_size(void) {
    static _Atomic uint64_t cached;
    uint64_t v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (!v) {
        long p = sysconf(_SC_PAGESIZE);
        v = p > 0 ? (uint64_t)p : 4096;
        atomic_store_explicit(&cached, v, memory_order_relaxed);
    }
    return v;
}

/* The default huge page size (what MAP_HUGETLB without a size flag gives); 0 if unknown. */
static uint64_t huge_page_size(void) {
    char buf[8192];
    uint64_t v = 0;
    if (read_small_file("/proc/meminfo", buf, sizeof buf) > 0 &&
        proc_find_kb(buf, "Hugepagesize", &v))
        return v;
    return 0;
}

/* ---- files -------------------------------------------------------------------------- */

static el_status posix_open(el_file *f, const char *path, unsigned flags) {
    /* O_NONBLOCK so that a FIFO given by mistake is rejected below instead of blocking
     * the open; it is cleared again for the regular file or device we accept. */
    int oflags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
    if (flags & EL_FILE_DIRECT) oflags |= O_DIRECT;
    int fd = open(path, oflags);
    if (fd < 0) {
        int e = errno;
        struct stat st;
        if (e == EINVAL && (flags & EL_FILE_DIRECT)) {
            if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
                return el_errorf(EL_E_INVALID, "%s: is a directory; expected a file or block "
                                 "device", path);
            return el_errorf(EL_E_IO, "%s: the filesystem refuses O_DIRECT (open: %s), as tmpfs "
                             "does; load without direct I/O or from a disk filesystem", path,
                             strerror(e));
        }
        return el_errorf(EL_E_IO, "%s: cannot open: %s", path, strerror(e));
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return el_errorf(EL_E_IO, "%s: fstat failed: %s", path, strerror(e));
    }
    uint64_t size = 0;
    bool blk = false;
    if (S_ISREG(st.st_mode)) {
        size = (uint64_t)st.st_size;
    } else if (S_ISBLK(st.st_mode)) {
        if (ioctl(fd, BLKGETSIZE64, &size) != 0) {
            int e = errno;
            close(fd);
            return el_errorf(EL_E_IO, "%s: cannot get the block device size (BLKGETSIZE64): %s",
                             path, strerror(e));
        }
        blk = true;
    } else {
        close(fd);
        return el_errorf(EL_E_INVALID, "%s: is a %s; expected a regular file or block device",
                         path, S_ISDIR(st.st_mode) ? "directory" : S_ISFIFO(st.st_mode) ? "FIFO"
                         : S_ISCHR(st.st_mode) ? "character device" : S_ISSOCK(st.st_mode)
                         ? "socket" : "special file");
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    f->fd = fd;
    f->size = size;
    f->is_blockdev = blk;
    f->direct = (flags & EL_FILE_DIRECT) != 0;
    return EL_OK;
}

static int64_t posix_pread(el_file *f, void *buf, size_t n, uint64_t off) {
    if (off > (uint64_t)INT64_MAX) return -EINVAL;
    ssize_t r = pread(f->fd, buf, n, (off_t)off);
    return r < 0 ? -(int64_t)errno : (int64_t)r;
}

static void posix_close(el_file *f) {
    if (f->fd >= 0) close(f->fd);
    f->fd = -1;
}

void el_file_drop_cache(el_file *f) {
    if (!f || f->fd < 0 || !f->path[0]) return;
    /* Advice only: a benchmark wants a cold cache, a failure changes nothing else. */
    (void)posix_fadvise(f->fd, 0, 0, POSIX_FADV_DONTNEED);
}

/* ---- memory backing ----------------------------------------------------------------- */

/* Writes one byte per page so that every page is backed now, not at first use. */
static void touch_pages(uint8_t *p, uint64_t len, uint64_t page) {
    for (uint64_t o = 0; o < len; o += page) ((volatile uint8_t *)p)[o] = 0;
}

/* Reservations at least this large get transparent huge page advice by default. */
#define EL_THP_DEFAULT_MIN (64ull * 1024 * 1024)

static el_status posix_reserve(uint64_t bytes, unsigned flags, void **out, unsigned *flags_got) {
    uint64_t page = el_page_size(), len;
    *out = NULL;
    if (flags_got) *flags_got = 0;
    if (bytes == 0 || !el_align_up_u64(bytes, page, &len) || len > (uint64_t)SIZE_MAX)
        return el_errorf(EL_E_NOMEM, "cannot map %llu bytes: not a size this address space "
                         "can hold", (unsigned long long)bytes);
    const int prot = PROT_READ | PROT_WRITE;
    const int mflags = MAP_PRIVATE | MAP_ANONYMOUS;
    const bool prefault = (flags & EL_ARENA_PREFAULT) != 0;
    unsigned got = 0;
    void *p = MAP_FAILED;
    bool populated = false;

#ifdef MAP_HUGETLB
    if (flags & EL_ARENA_HUGEPAGES) {
        /* munmap of a hugetlb mapping needs a whole number of huge pages, and x_release is
         * given back only the byte count, so explicit huge pages are tried only when the
         * size is already a multiple; other sizes get transparent huge pages below. */
        uint64_t hp = huge_page_size();
        if (hp && len % hp == 0) {
            p = mmap(NULL, (size_t)len, prot, mflags | MAP_HUGETLB | (prefault ? MAP_POPULATE : 0),
                     -1, 0);
            if (p != MAP_FAILED) {
                got |= EL_ARENA_HUGEPAGES;
                populated = prefault;
            }
        }
    }
#endif
    if (p == MAP_FAILED) {
        p = mmap(NULL, (size_t)len, prot, mflags, -1, 0);
        if (p == MAP_FAILED)
            return el_errorf(EL_E_NOMEM, "mmap of %llu bytes failed: %s",
                             (unsigned long long)len, strerror(errno));
#ifdef MADV_HUGEPAGE
        /* Advice before the first touch, or the pages are already small. Large arenas get
         * it by default: loading into 2 MiB pages takes 512x fewer faults (measured by
         * bench_load: 0.60x -> 1.10x of raw read bandwidth on 256 MiB), and the RSS cost is
         * at most a partly used 2 MiB page per region. */
        if ((flags & EL_ARENA_HUGEPAGES) || len >= EL_THP_DEFAULT_MIN)
            (void)madvise(p, (size_t)len, MADV_HUGEPAGE);
#endif
    }
    /* The raw syscall, not mlock(): sanitizer runtimes replace mlock() with a no-op that
     * returns 0, which would report a lock that never happened. */
    if ((flags & EL_ARENA_LOCK) && syscall(SYS_mlock, p, (size_t)len) == 0) {
        got |= EL_ARENA_LOCK;
        populated = true; /* mlock faults every page in */
    }
    if (prefault && !populated) {
        bool done = false;
#ifdef MADV_POPULATE_WRITE
        /* Unlike touching, this reports ENOMEM instead of waking the OOM killer. */
        if (madvise(p, (size_t)len, MADV_POPULATE_WRITE) == 0) {
            done = true;
        } else if (errno != EINVAL) { /* EINVAL: the kernel predates the advice */
            int e = errno;
            munmap(p, (size_t)len);
            return el_errorf(EL_E_NOMEM, "prefaulting %llu bytes failed: %s",
                             (unsigned long long)len, strerror(e));
        }
#endif
        if (!done) touch_pages(p, len, page); /* kernels before 5.14 */
        populated = true;
    }
    if (prefault && populated) got |= EL_ARENA_PREFAULT;
    *out = p;
    if (flags_got) *flags_got = got;
    return EL_OK;
}

static void posix_release(void *p, uint64_t bytes) {
    uint64_t len;
    if (!p || !el_align_up_u64(bytes, el_page_size(), &len)) return;
    munmap(p, (size_t)len);
}

static double posix_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

const el_platform_methods el_platform_os_methods = {
    .name = "posix",
    .x_open = posix_open,
    .x_pread = posix_pread,
    .x_close = posix_close,
    .x_reserve = posix_reserve,
    .x_release = posix_release,
    .x_now = posix_now,
};

/* ---- threads and CPUs --------------------------------------------------------------- */

el_status el_thread_start(el_thread *t, void *(*fn)(void *), void *arg) {
    if (!t || !fn) return el_errorf(EL_E_USAGE, "el_thread_start: NULL thread or function");
    t->started = false;
    int e = pthread_create(&t->handle, NULL, fn, arg);
    if (e != 0)
        return el_errorf(EL_E_NOMEM, "cannot start a thread: %s", strerror(e));
    t->started = true;
    return EL_OK;
}

void el_thread_join(el_thread *t) {
    if (!t || !t->started) return;
    pthread_join(t->handle, NULL);
    t->started = false;
}

unsigned el_cpu_count(void) {
    /* The affinity mask is what a container or taskset actually grants. */
    cpu_set_t set;
    if (sched_getaffinity(0, sizeof set, &set) == 0) {
        int c = CPU_COUNT(&set);
        if (c > 0) return (unsigned)c;
    }
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (unsigned)n : 1u;
}

bool el_mem_populate(void *p, uint64_t n) {
#ifdef MADV_POPULATE_WRITE
    uint64_t page = el_page_size();
    uintptr_t a = (uintptr_t)p & ~(uintptr_t)(page - 1);
    uintptr_t e = (uintptr_t)p + n;
    return n == 0 || madvise((void *)a, (size_t)(e - a), MADV_POPULATE_WRITE) == 0;
#else
    (void)p;
    (void)n;
    return false;
#endif
}
