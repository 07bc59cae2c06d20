/* test_platform_storage.c - el_file_*: exact reads, truncation, read errors, fault
 * injection (failures, short reads, EINTR) with I/O accounting, rejected file kinds,
 * O_DIRECT alignment rules and tail reads, and a custom platform methods table. */
// ctest-labels: platform;unit
#include "tests/support/el_test.h"

#include "platform/platform.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FILE_BYTES (1048576u + 123u) /* not a block multiple, so there is a tail */

static uint8_t *g_data; /* what the test file holds */

static bool contains(const char *hay, const char *needle) {
    bool ok = strstr(hay, needle) != NULL;
    if (!ok) fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", hay, needle);
    return ok;
}

/* Reads n bytes at off and compares them with the file's known content. */
static bool read_matches(el_file *f, size_t n, uint64_t off) {
    uint8_t *buf = malloc(n + 1);
    if (!buf) return false;
    buf[n] = 0x77; /* guard: nothing written past n */
    el_status s = el_file_read_at(f, buf, n, off);
    bool ok = s == EL_OK && memcmp(buf, g_data + off, n) == 0 && buf[n] == 0x77;
    if (s != EL_OK) fprintf(stderr, "  read_at(%zu, %llu): %s\n", n, (unsigned long long)off, el_last_error());
    free(buf);
    return ok;
}

static void test_exact(const char *path) {
    el_file f;
    EL_CHECK_OK(el_file_open(&f, path, 0));
    EL_CHECK(f.fd >= 0 && f.size == FILE_BYTES && !f.is_blockdev && !f.direct);
    EL_CHECK(strcmp(f.path, path) == 0);
    el_io_stats_reset();
    EL_CHECK(read_matches(&f, 1, 0));
    EL_CHECK(read_matches(&f, 4096, 0));
    EL_CHECK(read_matches(&f, 1000, 12345));
    EL_CHECK(read_matches(&f, FILE_BYTES, 0));
    EL_CHECK(read_matches(&f, 123, 1048576));
    EL_CHECK(read_matches(&f, 1, FILE_BYTES - 1));
    el_io_stats io;
    el_io_stats_get(&io);
    EL_CHECK(io.reads == 6);
    EL_CHECK(io.bytes == 1 + 4096 + 1000 + FILE_BYTES + 123 + 1);
    uint8_t b = 0;
    EL_CHECK_OK(el_file_read_at(&f, &b, 0, FILE_BYTES + 100)); /* nothing to read */

    /* truncation: needs bytes past the end */
    uint8_t buf[256];
    EL_CHECK_STATUS(el_file_read_at(&f, buf, 200, FILE_BYTES - 100), EL_E_INVALID);
    EL_CHECK(contains(el_last_error(), path));
    EL_CHECK(contains(el_last_error(), "truncated: needed 200 bytes at offset 1048599, file has "
                                       "1048699"));
    EL_CHECK_STATUS(el_file_read_at(&f, buf, 1, FILE_BYTES), EL_E_INVALID);
    EL_CHECK(contains(el_last_error(), "needed 1 bytes at offset 1048699, file has 1048699"));
    EL_CHECK_STATUS(el_file_read_at(&f, buf, 1, FILE_BYTES + 5000), EL_E_INVALID);
    EL_CHECK(contains(el_last_error(), "file has 1048699 bytes"));
    EL_CHECK_STATUS(el_file_read_at(&f, buf, 10, UINT64_MAX - 5), EL_E_USAGE);

    el_file_drop_cache(&f);
    EL_CHECK(read_matches(&f, 70000, 500000)); /* still reads after dropping the cache */
    el_file_close(&f);
    EL_CHECK(f.fd == -1);
    el_file_close(&f); /* twice is fine */
    EL_CHECK_STATUS(el_file_read_at(&f, buf, 1, 0), EL_E_USAGE);

    /* a zeroed struct has fd 0: closing it must not close stdin */
    int fd0_before = fcntl(0, F_GETFD);
    el_file z;
    memset(&z, 0, sizeof z);
    el_file_close(&z);
    EL_CHECK(fcntl(0, F_GETFD) == fd0_before);
}

static void test_faults(const char *path) {
    el_file f;
    EL_CHECK_OK(el_file_open(&f, path, 0));
    el_fault_plan plan = {.fail_read_nth = 1};
    if (!el_fault_set(&plan)) {
        printf("fault injection not compiled in (EL_FAULT_INJECTION off); fault checks not run\n");
        el_file_close(&f);
        return;
    }
    uint8_t buf[64];
    EL_CHECK_STATUS(el_file_read_at(&f, buf, sizeof buf, 0), EL_E_IO);
    EL_CHECK(contains(el_last_error(), path));
    EL_CHECK(contains(el_last_error(), "injected"));
    /* only the 1st read fails; the counter keeps going */
    EL_CHECK(read_matches(&f, 64, 100));

    /* Every read short: each returns half of what is left (at least 1 byte), so 64 KiB
     * takes 32K, 16K, ..., 1, 1 = 17 reads. */
    plan = (el_fault_plan){.short_read_every = 1};
    EL_CHECK(el_fault_set(&plan));
    el_io_stats_reset();
    EL_CHECK(read_matches(&f, 65536, 777));
    el_io_stats io;
    el_io_stats_get(&io);
    EL_CHECK(io.reads == 17);
    EL_CHECK(io.bytes == 65536);

    /* Every 2nd read short: 1000 bytes -> 1000 (read 1, full); then a second request of
     * 1000 -> 500 (read 2, short), 500 (read 3). */
    plan = (el_fault_plan){.short_read_every = 2};
    EL_CHECK(el_fault_set(&plan));
    el_io_stats_reset();
    EL_CHECK(read_matches(&f, 1000, 0));
    EL_CHECK(read_matches(&f, 1000, 5000));
    el_io_stats_get(&io);
    EL_CHECK(io.reads == 3 && io.bytes == 2000);

    /* an EINTR before every read: same bytes, same number of successful reads */
    plan = (el_fault_plan){.eintr_every = 1};
    EL_CHECK(el_fault_set(&plan));
    el_io_stats_reset();
    EL_CHECK(read_matches(&f, 4096, 4096));
    EL_CHECK(read_matches(&f, FILE_BYTES, 0));
    el_io_stats_get(&io);
    EL_CHECK(io.reads == 2 && io.bytes == 4096 + FILE_BYTES);

    /* combined: the 5th read fails after four short ones succeeded */
    plan = (el_fault_plan){.short_read_every = 1, .eintr_every = 2, .fail_read_nth = 5};
    EL_CHECK(el_fault_set(&plan));
    el_io_stats_reset();
    EL_CHECK_STATUS(el_file_read_at(&f, buf, 64, 0), EL_E_IO);
    el_io_stats_get(&io);
    EL_CHECK(io.reads == 4 && io.bytes == 32 + 16 + 8 + 4);

    /* set restarts the counters */
    plan = (el_fault_plan){.fail_read_nth = 2};
    EL_CHECK(el_fault_set(&plan));
    EL_CHECK(read_matches(&f, 10, 0));
    EL_CHECK(el_fault_set(&plan));
    EL_CHECK(read_matches(&f, 10, 0));
    EL_CHECK_STATUS(el_file_read_at(&f, buf, 10, 0), EL_E_IO);

    el_fault_clear();
    el_io_stats_reset();
    EL_CHECK(read_matches(&f, 65536, 0));
    el_io_stats_get(&io);
    EL_CHECK(io.reads == 1);
    el_file_close(&f);
}

static void test_rejects(void) {
    el_file f;
    EL_CHECK_STATUS(el_file_open(&f, el_test_tmpdir(), 0), EL_E_INVALID);
    EL_CHECK(f.fd == -1);
    EL_CHECK(contains(el_last_error(), "directory"));
    EL_CHECK(contains(el_last_error(), el_test_tmpdir()));
    EL_CHECK_STATUS(el_file_open(&f, el_test_tmpdir(), EL_FILE_DIRECT), EL_E_INVALID);

    const char *missing = el_test_path("no-such-file");
    EL_CHECK_STATUS(el_file_open(&f, missing, 0), EL_E_IO);
    EL_CHECK(contains(el_last_error(), missing));
    EL_CHECK(contains(el_last_error(), "No such file"));
    EL_CHECK(f.fd == -1);
    el_file_close(&f);

    /* a FIFO is rejected without blocking in open */
    const char *fifo = el_test_path("fifo");
    if (mkfifo(fifo, 0600) == 0) {
        EL_CHECK_STATUS(el_file_open(&f, fifo, 0), EL_E_INVALID);
        EL_CHECK(contains(el_last_error(), "FIFO"));
    }
    EL_CHECK_STATUS(el_file_open(&f, "/dev/null", 0), EL_E_INVALID);
    EL_CHECK(contains(el_last_error(), "character device"));
    EL_CHECK_STATUS(el_file_open(&f, "", 0), EL_E_USAGE);
    EL_CHECK_STATUS(el_file_open(&f, NULL, 0), EL_E_USAGE);
    EL_CHECK_STATUS(el_file_open(&f, missing, 1u << 7), EL_E_USAGE);
}

/* Writes the test data into dir/name; returns the path or NULL. */
static const char *write_data(const char *dir, const char *name) {
    static char path[1024];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return el_test_write_file(path, g_data, FILE_BYTES) ? path : NULL;
}

static void test_direct(void) {
    /* A temp folder on disk: $TMPDIR may be tmpfs, which refuses O_DIRECT, so fall back
     * to a folder in the build tree. */
    const char *path = write_data(el_test_tmpdir(), "direct.bin");
    el_file f;
    el_status s = path ? el_file_open(&f, path, EL_FILE_DIRECT) : EL_E_IO;
    char build_tmp[1024] = "";
    if (s != EL_OK) {
        printf("O_DIRECT in %s: %s; trying the build folder\n", el_test_tmpdir(), el_last_error());
        if (s == EL_E_IO && path) EL_CHECK(contains(el_last_error(), "O_DIRECT"));
        snprintf(build_tmp, sizeof build_tmp, "%s/direct.XXXXXX", EL_BINARY_DIR);
        if (mkdtemp(build_tmp)) {
            path = write_data(build_tmp, "direct.bin");
            s = path ? el_file_open(&f, path, EL_FILE_DIRECT) : EL_E_IO;
        } else {
            build_tmp[0] = 0;
        }
    }
    if (s != EL_OK) {
        printf("O_DIRECT sub-check not run: %s\n", el_last_error());
    } else {
        EL_CHECK(f.direct && f.size == FILE_BYTES);
        uint8_t *buf = aligned_alloc(EL_DIRECT_ALIGN, 3 * 65536);
        if (buf) {
            el_io_stats_reset();
            EL_CHECK_OK(el_file_read_at(&f, buf, 65536, 8192));
            EL_CHECK(memcmp(buf, g_data + 8192, 65536) == 0);
            /* alignment of buffer, offset and length is checked, not left to EINVAL */
            EL_CHECK_STATUS(el_file_read_at(&f, buf + 1, 4096, 0), EL_E_USAGE);
            EL_CHECK(contains(el_last_error(), "aligned"));
            EL_CHECK_STATUS(el_file_read_at(&f, buf, 4096, 100), EL_E_USAGE);
            EL_CHECK_STATUS(el_file_read_at(&f, buf, 100, 0), EL_E_USAGE);
            /* the last block: 123 bytes of file, then zeros up to the block end */
            memset(buf, 0xee, 8192);
            EL_CHECK_OK(el_file_read_at(&f, buf, 4096, 1048576));
            EL_CHECK(memcmp(buf, g_data + 1048576, 123) == 0);
            bool zeros = true;
            for (size_t i = 123; i < 4096; i++) zeros = zeros && buf[i] == 0;
            EL_CHECK(zeros);
            /* a span that ends with the tail block, read in one go */
            EL_CHECK_OK(el_file_read_at(&f, buf, 2 * 65536 + 4096, 1048576 - 2 * 65536));
            EL_CHECK(memcmp(buf, g_data + 1048576 - 2 * 65536, 2 * 65536 + 123) == 0);
            /* further than the block holding the end is truncation */
            EL_CHECK_STATUS(el_file_read_at(&f, buf, 8192, 1048576), EL_E_INVALID);
            EL_CHECK(contains(el_last_error(), "truncated"));
            EL_CHECK_STATUS(el_file_read_at(&f, buf, 4096, 1048576 + 4096), EL_E_INVALID);
            EL_CHECK(contains(el_last_error(), "file has 1048699 bytes"));
            /* short reads stay block-aligned under fault injection */
            el_fault_plan plan = {.short_read_every = 1, .eintr_every = 3};
            if (el_fault_set(&plan)) {
                el_io_stats_reset();
                EL_CHECK_OK(el_file_read_at(&f, buf, 65536, 65536));
                EL_CHECK(memcmp(buf, g_data + 65536, 65536) == 0);
                el_io_stats io;
                el_io_stats_get(&io);
                EL_CHECK(io.reads == 5); /* 32K, 16K, 8K, 4K, 4K */
                el_fault_clear();
            }
            free(buf);
        }
        el_file_close(&f);
        printf("O_DIRECT checked on %s\n", path);
    }
    if (build_tmp[0]) {
        if (path) unlink(path);
        rmdir(build_tmp);
    }
}

/* ---- a custom methods table: an in-memory "file" ----------------------------------- */

static int g_open_calls, g_pread_calls, g_close_calls;
static const char k_mem[] = "0123456789abcdefghijklmnopqrstuvwxyz";

static el_status mem_open(el_file *f, const char *path, unsigned flags) {
    g_open_calls++;
    if (strcmp(path, "mem:alphabet") != 0) return el_errorf(EL_E_IO, "%s: not in memory", path);
    f->fd = 1000;
    f->size = sizeof k_mem - 1;
    return EL_OK;
}

/* Serves at most 5 bytes per call and interrupts every other call. */
static int64_t mem_pread(el_file *f, void *buf, size_t n, uint64_t off) {
    g_pread_calls++;
    if (g_pread_calls % 2 == 0) return -EINTR;
    if (off >= f->size) return 0;
    size_t k = f->size - off < n ? (size_t)(f->size - off) : n;
    if (k > 5) k = 5;
    memcpy(buf, k_mem + off, k);
    return (int64_t)k;
}

static void mem_close(el_file *f) { g_close_calls++; }

static int64_t eio_pread(el_file *f, void *buf, size_t n, uint64_t off) { return -EIO; }

static void test_custom_methods(const char *path) {
    const el_platform_methods *os = el_platform_get();
    EL_CHECK(os && strcmp(os->name, "posix") == 0);
    el_platform_methods mem = {.name = "memory", .x_open = mem_open, .x_pread = mem_pread,
                               .x_close = mem_close};
    el_platform_set(&mem);
    EL_CHECK(strcmp(el_platform_get()->name, "memory") == 0);
    EL_CHECK(el_platform_get()->x_reserve == os->x_reserve); /* unset members: the OS's */
    el_file f;
    EL_CHECK_OK(el_file_open(&f, "mem:alphabet", 0));
    EL_CHECK(g_open_calls == 1 && f.size == 36);
    char buf[40] = {0};
    el_io_stats_reset();
    EL_CHECK_OK(el_file_read_at(&f, buf, 26, 10));
    EL_CHECK(memcmp(buf, "abcdefghijklmnopqrstuvwxyz", 26) == 0);
    el_io_stats io;
    el_io_stats_get(&io);
    EL_CHECK(io.reads == 6 && io.bytes == 26); /* 5+5+5+5+5+1, EINTRs not counted */
    EL_CHECK(g_pread_calls == 11);
    EL_CHECK_STATUS(el_file_read_at(&f, buf, 10, 30), EL_E_INVALID);
    EL_CHECK(contains(el_last_error(), "mem:alphabet: truncated: needed 10 bytes at offset 30, "
                                       "file has 36"));
    el_file_close(&f);
    EL_CHECK(g_close_calls == 1);
    EL_CHECK_STATUS(el_file_open(&f, path, 0), EL_E_IO); /* the real file is not reachable */
    EL_CHECK(contains(el_last_error(), "not in memory"));

    el_platform_methods eio = {.name = "eio", .x_pread = eio_pread};
    el_platform_set(&eio);
    EL_CHECK_OK(el_file_open(&f, path, 0)); /* the OS open, the failing read */
    EL_CHECK_STATUS(el_file_read_at(&f, buf, 10, 0), EL_E_IO);
    EL_CHECK(contains(el_last_error(), path));
    EL_CHECK(contains(el_last_error(), strerror(EIO)));
    el_file_close(&f);

    el_platform_set(NULL);
    EL_CHECK(el_platform_get() == os);
    EL_CHECK_OK(el_file_open(&f, path, 0));
    EL_CHECK(read_matches(&f, 100, 0));
    el_file_close(&f);
}

int main(void) {
    g_data = malloc(FILE_BYTES);
    if (!g_data) return 2;
    el_test_fill(7, 0, EL_DT_U8, 0, g_data, FILE_BYTES);
    const char *path = el_test_path("data.bin");
    if (!el_test_write_file(path, g_data, FILE_BYTES)) {
        fprintf(stderr, "cannot write %s\n", path);
        return 2;
    }
    char path_copy[1024];
    snprintf(path_copy, sizeof path_copy, "%s", path);
    test_exact(path_copy);
    test_faults(path_copy);
    test_rejects();
    test_direct();
    test_custom_methods(path_copy);
    free(g_data);
    return el_test_finish("test_platform_storage");
}
