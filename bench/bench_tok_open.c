/* bench_tok_open.c - the tokenizer's share of the time to first token: opening (parsing and
 * building the tables of) the real GPT-2 tokenizer (encoder.json + vocab.bpe from --models
 * DIR, else $EL_SHARED_MODELS, else ../shared/models) and a generated 128k-token /
 * 280k-merge byte-level BPE tokenizer.json (tests/tok_gen.h, written to a temp file). Peak
 * RSS is the CLI's to report (tests/test_tokenizer_arena.c prints it).
 *
 * Medians of N repetitions (default 5) of:
 *   heap   - el_tokenizer_open / el_tokenizer_gpt2_open: the tables in one heap block (on
 *            main before issue 18: the whole file, a cJSON tree, then malloc'd tables)
 *   arena  - (this branch) what el_model_open + el_model_load do: el_tok_measure (at open)
 *            then a build into a caller's block (the arena's tokenizer region), reported
 *            as measure + build
 * The same source builds against main's library (no tokenizer/hf_src.h there): then only
 * the heap rows print, for the before/after comparison.
 *
 * usage: bench_tok_open [--models DIR] [--reps N] */
#include "bench/bench_util.h"
#include "platform/platform.h"
#include "tests/tok_gen.h"
#include "tokenizer/tokenizer.h"

#if __has_include("tokenizer/hf_src.h")
#include "tokenizer/tok_mem.h"
#define HAVE_REGION 1
#else
#define HAVE_REGION 0
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct which {
    const char *name;
    const char *a, *b; /* GPT-2: vocab + merges; tokenizer.json: a only */
} which;

static el_status open_heap(const which *w, el_tokenizer **t) {
    return w->b ? el_tokenizer_gpt2_open(w->a, w->b, 0, t) : el_tokenizer_open(w->a, 0, t);
}

static int cmp_d(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return v[n / 2];
}

#if HAVE_REGION
typedef struct region_args {
    const which *w;
} region_args;

static el_status build_fn(const void *args, el_tok_mem *mem, el_tokenizer **out) {
    const which *w = ((const region_args *)args)->w;
    return w->b ? el_tokenizer_gpt2_open_mem(w->a, w->b, 0, mem, out)
                : el_tokenizer_open_mem(w->a, 0, mem, out);
}
#endif

static void run(const which *w, int reps) {
    double heap[64], meas[64], build[64];
    size_t bytes = 0;
    for (int r = 0; r < reps; r++) {
        el_tokenizer *t = NULL;
        double t0 = el_now();
        if (open_heap(w, &t) != EL_OK) {
            fprintf(stderr, "%s: %s\n", w->name, el_last_error());
            return;
        }
        heap[r] = el_now() - t0;
        el_tokenizer_close(t);
    }
    printf("%-22s heap   open %8.1f ms\n", w->name, median(heap, reps) * 1e3);
#if HAVE_REGION
    region_args ra = {w};
    void *block = NULL;
    for (int r = 0; r < reps; r++) {
        double t0 = el_now();
        if (el_tok_measure(build_fn, &ra, &bytes) != EL_OK) {
            fprintf(stderr, "%s: %s\n", w->name, el_last_error());
            return;
        }
        double t1 = el_now();
        if (!block && posix_memalign(&block, 4096, bytes ? bytes : 1)) return;
        el_tok_mem m;
        el_tok_mem_block(&m, block, bytes);
        el_tokenizer *t = NULL;
        if (build_fn(&ra, &m, &t) != EL_OK) {
            fprintf(stderr, "%s: %s\n", w->name, el_last_error());
            return;
        }
        meas[r] = t1 - t0;
        build[r] = el_now() - t1;
    }
    free(block);
    double mm = median(meas, reps), bm = median(build, reps);
    printf("%-22s arena  measure %6.1f ms + build %6.1f ms = %6.1f ms; region %.2f MiB\n",
           w->name, mm * 1e3, bm * 1e3, (mm + bm) * 1e3, (double)bytes / (1 << 20));
#else
    (void)bytes;
    (void)meas;
    (void)build;
#endif
}

int main(int argc, char **argv) {
    const char *models = getenv("EL_SHARED_MODELS");
    if (!models || !*models) models = "../shared/models";
    int reps = 5;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--models") && i + 1 < argc) models = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else {
            fprintf(stderr, "usage: bench_tok_open [--models DIR] [--reps N]\n");
            return 2;
        }
    }
    if (reps < 1 || reps > 64) reps = 5;
    char vocab[1024], merges[1024], gen[64];
    snprintf(vocab, sizeof vocab, "%s/gpt2-tokenizer/encoder.json", models);
    snprintf(merges, sizeof merges, "%s/gpt2-tokenizer/vocab.bpe", models);
    snprintf(gen, sizeof gen, "/tmp/bench_tok_open_%d.json", (int)getpid());
    char prompt[512];
    if (!tok_gen_write(gen, prompt, sizeof prompt)) {
        fprintf(stderr, "cannot write %s\n", gen);
        return 1;
    }
    printf("tokenizer open + build, medians of %d (%s)\n", reps,
           HAVE_REGION ? "tokenizer region branch" : "heap only: main");
    which gpt2 = {"gpt2 (real, 50k)", vocab, merges};
    which big = {"generated 128k/280k", gen, NULL};
    if (access(vocab, R_OK) == 0) run(&gpt2, reps);
    else printf("%s absent: GPT-2 skipped\n", vocab);
    run(&big, reps);
    unlink(gen);
    return 0;
}
