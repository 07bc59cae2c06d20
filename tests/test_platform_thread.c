/* test_platform_thread.c - threads, CPU count and the monotonic clock, and the I/O
 * counters and fault plan staying exact when several threads read at once. */
// ctest-labels: platform;unit
#include "tests/support/el_test.h"

#include "platform/platform.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define THREADS 4
#define READS_PER_THREAD 200
#define FILE_BYTES 65536

static uint8_t g_data[FILE_BYTES];

typedef struct worker {
    el_file *file;
    unsigned index;
    int bad;         /* reads that failed or returned wrong bytes */
} worker;

static void *read_worker(void *arg) {
    worker *w = arg;
    uint8_t buf[1000];
    for (unsigned i = 0; i < READS_PER_THREAD; i++) {
        uint64_t off = ((uint64_t)w->index * 7919 + i * 104729) % (FILE_BYTES - sizeof buf);
        if (el_file_read_at(w->file, buf, sizeof buf, off) != EL_OK ||
            memcmp(buf, g_data + off, sizeof buf) != 0)
            w->bad++;
    }
    return NULL;
}

static void *set_flag(void *arg) {
    *(int *)arg = 42;
    return NULL;
}

int main(void) {
    /* clock */
    double t0 = el_now();
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    double t1 = el_now();
    EL_CHECK(t0 > 0 && t1 >= t0 + 0.019 && t1 < t0 + 5.0);

    unsigned cpus = el_cpu_count();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    printf("el_cpu_count %u (online %ld)\n", cpus, online);
    EL_CHECK(cpus >= 1 && (online <= 0 || cpus <= (unsigned)online));

    /* start/join */
    int flag = 0;
    el_thread t;
    memset(&t, 0, sizeof t);
    el_thread_join(&t); /* never started: no-op */
    EL_CHECK_OK(el_thread_start(&t, set_flag, &flag));
    EL_CHECK(t.started);
    el_thread_join(&t);
    EL_CHECK(flag == 42 && !t.started);
    el_thread_join(&t); /* twice: no-op */
    EL_CHECK_STATUS(el_thread_start(&t, NULL, NULL), EL_E_USAGE);

    /* concurrent reads through one file, counted exactly */
    el_test_fill(3, 0, EL_DT_U8, 0, g_data, FILE_BYTES);
    const char *path = el_test_path("data.bin");
    EL_CHECK(el_test_write_file(path, g_data, FILE_BYTES));
    el_file f;
    EL_CHECK_OK(el_file_open(&f, path, 0));
    worker w[THREADS];
    el_thread th[THREADS];
    for (int pass = 0; pass < 2; pass++) {
        /* pass 1: every 2nd read is short (500 then 500) */
        el_fault_plan plan = {.short_read_every = 2};
        bool faults = pass == 1 && el_fault_set(&plan);
        el_io_stats_reset();
        for (unsigned i = 0; i < THREADS; i++) {
            w[i] = (worker){.file = &f, .index = i};
            EL_CHECK_OK(el_thread_start(&th[i], read_worker, &w[i]));
        }
        int bad = 0;
        for (unsigned i = 0; i < THREADS; i++) {
            el_thread_join(&th[i]);
            bad += w[i].bad;
        }
        el_fault_clear();
        el_io_stats io;
        el_io_stats_get(&io);
        uint64_t calls = (uint64_t)THREADS * READS_PER_THREAD;
        printf("pass %d: %llu reads, %llu bytes\n", pass, (unsigned long long)io.reads,
               (unsigned long long)io.bytes);
        EL_CHECK(bad == 0);
        EL_CHECK(io.bytes == calls * 1000);
        if (pass == 0 || !faults) {
            EL_CHECK(io.reads == calls);
        } else {
            /* Attempts are numbered process-wide and every 2nd is short. A short attempt
             * costs one more attempt unless only 1 byte was left, which takes 10 halvings
             * of 1000 first; so with A attempts, S = A/2 short ones and at most S/11 free:
             * A >= calls + (10/11)(A-1)/2, i.e. A >= (11 calls - 5) / 6. */
            EL_CHECK(io.reads >= (11 * calls - 5) / 6 && io.reads <= 2 * calls);
        }
    }
    el_file_close(&f);
    return el_test_finish("test_platform_thread");
}
