/* test_kernels_pool.c - the thread pool runs every share of every job exactly once, whichever
 * thread claims it, also with more threads than cores (workers preempted and waking late:
 * the case claim-based shares exist for). */
// ctest-labels: kernels
#include "kernels/cpu/cpu.h"
#include "tests/support/el_test.h"

#include <stdatomic.h>
#include <string.h>

#define JOBS 20000
#define MAX_SHARES 8

typedef struct job {
    _Atomic unsigned runs[MAX_SHARES]; /* times each share ran in this job */
    unsigned bad_nth;                  /* calls with an out-of-range share or count */
} job;

static void run(void *ctx, unsigned ith, unsigned nth) {
    job *j = ctx;
    if (ith >= MAX_SHARES || nth > MAX_SHARES) {
        j->bad_nth++;
        return;
    }
    atomic_fetch_add_explicit(&j->runs[ith], 1, memory_order_relaxed);
}

int main(void) {
    static const unsigned threads[] = {2, 3, 4, 8};
    for (size_t k = 0; k < sizeof threads / sizeof threads[0]; k++) {
        el_pool pool;
        EL_CHECK_OK(el_pool_init(&pool, threads[k], EL_ISA_PORTABLE));
        static job j;
        unsigned wrong = 0, bad = 0;
        for (unsigned s = 0; s < JOBS; s++) {
            memset(&j, 0, sizeof j);
            el_pool_run(&pool, run, &j);
            for (unsigned i = 0; i < threads[k]; i++)
                if (atomic_load(&j.runs[i]) != 1) wrong++;
            bad += j.bad_nth;
        }
        fprintf(stderr, "%u threads: %d jobs, %u shares not run exactly once\n", threads[k],
                JOBS, wrong);
        EL_CHECK(wrong == 0 && bad == 0);
        el_pool_deinit(&pool);
    }
    return el_test_finish("test_kernels_pool");
}
