/* bench_llama.c - Llama prompt and decode speed on stories260K (or another Llama model):
 * for 1 and 2 threads, f32/f16 weights and f32/f16 KV caches, the median of 5 runs of
 *   prompt: one batched prefill of a 256-token prompt (tokens per second), and
 *   decode:  256 greedy tokens after "Once upon a time" through el_generate (tokens per
 *            second after the first, the way llama2.c's `run` reports).
 * Usage: bench_llama [MODEL] [--runs N] [--ctx N] [--stored]   (default
 * assets/stories260K/stories260K.bin, run from the repository root; --stored: the weights
 * as stored only, e.g. a quantized GGUF). Prints a table; never run by ctest. */
#include "bench/bench_util.h"
#include "edgeload.h"

#include <stdbool.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define PROMPT_TOKENS 256
#define DECODE_TOKENS 256
#define MAX_RUNS 21

static int fail(const char *what) {
    fprintf(stderr, "bench_llama: %s: %s\n", what, el_last_error());
    return 2;
}

/* One weight dtype: loads the model into its own arena and measures both thread counts. */
static int bench_dtype(const char *path, el_dtype dtype, el_dtype kv, uint32_t ctx, int runs) {
    el_plan_params pp = {ctx, 1, dtype, 64 * 1024, EL_MEMORY_HOST, kv};
    el_model *m;
    el_plan plan;
    el_arena *a;
    const char *err = bench_open_arena(path, &pp, &m, &plan, &a);
    if (err) return fail(err);
    if (el_model_load(m, &plan, a, NULL, NULL) != EL_OK) return fail("load");
    if (plan.params.ctx < PROMPT_TOKENS || plan.params.ctx < DECODE_TOKENS + 8) {
        fprintf(stderr, "bench_llama: the model's context (%u) is below %d tokens\n",
                plan.params.ctx, PROMPT_TOKENS);
        return 2;
    }
    /* A 256-token prompt: a story sentence repeated, BOS first. */
    static char text[16384];
    size_t len = 0;
    while (len + 200 < sizeof text)
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "Once upon a time, there was a little girl named Lily. She "
                                "loved to play outside in the park with her friends. ");
    static int32_t ids[16384 + 2];
    size_t n = 0;
    if (el_tokenize(m, text, len, true, ids, sizeof ids / sizeof ids[0], &n) != EL_OK)
        return fail("tokenize");
    if (n < PROMPT_TOKENS) {
        fprintf(stderr, "bench_llama: the prompt text gives only %zu tokens\n", n);
        return 2;
    }
    for (unsigned threads = 1; threads <= 2; threads++) {
        el_session_params sp = {threads, EL_DEVICE_CPU, 0, false};
        el_session *s = NULL;
        if (el_session_init(m, a, &plan, &sp, &s) != EL_OK) return fail("session");
        double prompt[MAX_RUNS], decode[MAX_RUNS];
        el_sampler_params greedy = {0.0f, 0, 1.0f, 0};
        const float *logits;
        el_gen_stats st;
        /* Warm-up (page faults in the KV cache and scratch). */
        el_session_reset(s);
        el_session_forward(s, ids, PROMPT_TOKENS, &logits);
        el_generate(s, "Once upon a time", DECODE_TOKENS, &greedy, NULL, NULL, &st);
        for (int r = 0; r < runs; r++) {
            el_session_reset(s);
            double t0 = bench_now();
            if (el_session_forward(s, ids, PROMPT_TOKENS, &logits) != EL_OK) return fail("forward");
            prompt[r] = PROMPT_TOKENS / (bench_now() - t0);
            el_status gs = el_generate(s, "Once upon a time", DECODE_TOKENS, &greedy, NULL,
                                       NULL, &st);
            if (gs != EL_OK) return fail("generate");
            decode[r] = st.gen_tok_per_s;
        }
        printf("| %-7s | %-3s | %7u | %24.0f | %24.0f |\n",
               dtype == EL_DT_NONE ? "stored" : el_dtype_name(dtype), el_dtype_name(kv), threads,
               bench_median(prompt, runs), bench_median(decode, runs));
        fflush(stdout);
        el_session_deinit(s);
    }
    el_arena_deinit(a);
    el_model_close(m);
    return 0;
}

int main(int argc, char **argv) {
    const char *path = "assets/stories260K/stories260K.bin";
    int runs = 5;
    uint32_t ctx = 0; /* the model's */
    bool stored = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--runs") && i + 1 < argc) {
            runs = atoi(argv[++i]);
            if (runs < 1 || runs > MAX_RUNS) runs = 5;
        } else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) {
            ctx = (uint32_t)strtoul(argv[++i], NULL, 10);
        } else if (!strcmp(argv[i], "--stored")) {
            stored = true;
        } else {
            path = argv[i];
        }
    }
    printf("bench_llama: %s, median of %d runs; prompt = one %d-token prefill, decode = %d "
           "greedy tokens\n\n", path, runs, PROMPT_TOKENS, DECODE_TOKENS);
    printf("| weights | KV  | threads | prompt tok/s (batched)   | decode tok/s             |\n");
    printf("|---------|-----|---------|--------------------------|--------------------------|\n");
    int rc = 0;
    for (int w = 0; w < (stored ? 1 : 2) && rc == 0; w++)
        for (int k = 0; k < 2 && rc == 0; k++)
            rc = bench_dtype(path, w ? EL_DT_F16 : EL_DT_NONE, k ? EL_DT_F16 : EL_DT_F32, ctx,
                             runs);
    return rc;
}
