/* bench_membw.c - memory read bandwidth (a streaming sum, bench_util.h), for scripts that need
 * the bandwidth bound measured in the same run as what they compare (bench/vs_llamacpp.sh).
 *
 * usage: bench_membw [--bytes N] [--threads N] [--runs N]   (default 1 GiB, 1 thread, 5 runs)
 * prints one line: "<GB/s> GB/s read, <threads> threads over <MiB> MiB, median of <runs>".
 * Never run by ctest. */
#include "bench/bench_util.h"

#include <string.h>

int main(int argc, char **argv) {
    size_t bytes = (size_t)1 << 30;
    int threads = 1, runs = 5;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--bytes")) bytes = (size_t)strtoull(argv[i + 1], NULL, 10);
        else if (!strcmp(argv[i], "--threads")) threads = atoi(argv[i + 1]);
        else if (!strcmp(argv[i], "--runs")) runs = atoi(argv[i + 1]);
    }
    if (threads < 1 || runs < 1 || bytes < 4096) {
        fprintf(stderr, "bench_membw: --threads and --runs >= 1, --bytes >= 4096\n");
        return 1;
    }
    bytes &= ~(size_t)4095;
    uint64_t *buf = aligned_alloc(4096, bytes);
    if (!buf) {
        fprintf(stderr, "bench_membw: out of memory for %zu bytes\n", bytes);
        return 1;
    }
    memset(buf, 1, bytes); /* fault every page in before timing */
    double bw = bench_read_bandwidth(buf, bytes / 8, threads, runs);
    printf("%.2f GB/s read, %d threads over %zu MiB, median of %d\n", bw / 1e9, threads,
           bytes >> 20, runs);
    free(buf);
    return 0;
}
