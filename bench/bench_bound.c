/* bench_bound.c - decode speed against the read bandwidth of the very memory the weights sit
 * in, measured in the same process (developer-run, never CI).
 *
 * bench/vs_llamacpp.py bounds decode by bench_membw, a separate process streaming its own
 * fresh 1 GiB, which on the machine this was written on read 30-36 GB/s at some moments and
 * 47-54 at others. Here the arena is a buffer this program reserves as el_arena_init would
 * (then el_arena_init_buffer); around every decode run it streams through that buffer
 * (weights, KV cache, scratch) with the same thread count, before and after, and through a
 * fresh buffer of the same size for comparison.
 *
 * usage: bench_bound MODEL.gguf [--threads N] [--runs N] [--ctx N]
 *   decode = 64 greedy tokens after a 128-token prompt (positions 128..191, as
 *   vs_llamacpp.py), tok/s after the first (el_generate's gen_tok_per_s).
 * Prints per run: arena GB/s before and after, fresh-buffer GB/s, tok/s, and the fraction
 * tok/s * weight bytes per token / mean(arena before, after); then medians. */
#include "bench/bench_util.h"
#include "edgeload.h"
#include "platform/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PROMPT_TOKENS 128
#define GEN_TOKENS 64
#define MAX_RUNS 21

static int fail(const char *what) {
    fprintf(stderr, "bench_bound: %s: %s\n", what, el_last_error());
    return 2;
}

/* Bytes one decoded token reads: every tensor, except that a model with its own output
 * matrix reads one row of token_embd (counted as none, as vs_llamacpp.py does). */
static uint64_t token_bytes(const el_model *m) {
    uint64_t total = 0, embd = 0;
    bool output = false;
    for (size_t i = 0; i < el_model_tensor_count(m); i++) {
        el_tensor_info t;
        if (el_model_tensor(m, i, &t) != EL_OK) continue;
        total += t.nbytes;
        if (!strcmp(t.name, "token_embd.weight")) embd = t.nbytes;
        if (!strcmp(t.name, "output.weight")) output = true;
    }
    return output ? total - embd : total;
}

/* A prompt of exactly PROMPT_TOKENS tokens (BOS included): words appended while they fit. */
static int make_prompt(el_model *m, char *text, size_t cap) {
    static const char *words[] = {"the", "small", "model", "loads", "like", "firmware", "into",
                                  "a", "fixed", "arena", "and", "streams", "its", "weights",
                                  "from", "flash", "while", "the", "board", "keeps", "running",
                                  "its", "control", "loop"};
    static int32_t ids[4096];
    size_t len = 0, n = 0;
    text[0] = '\0';
    for (size_t w = 0;; w++) {
        const char *word = words[w % (sizeof words / sizeof words[0])];
        size_t add = strlen(word) + (len > 0);
        if (len + add + 1 > cap) return -1;
        if (len) text[len] = ' ';
        memcpy(text + len + (len > 0), word, strlen(word));
        text[len + add] = '\0';
        if (el_tokenize(m, text, len + add, true, ids, 4096, &n) != EL_OK) return -1;
        if (n > PROMPT_TOKENS) {
            text[len] = '\0';
            return el_tokenize(m, text, len, true, ids, 4096, &n) == EL_OK &&
                           n == PROMPT_TOKENS
                       ? 0
                       : -1;
        }
        len += add;
    }
}

int main(int argc, char **argv) {
    const char *path = NULL;
    unsigned threads = 2;
    int runs = 5;
    uint32_t ctx = 256;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc) runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--ctx") && i + 1 < argc) ctx = (uint32_t)atoi(argv[++i]);
        else path = argv[i];
    }
    if (!path || threads < 1 || threads > BENCH_BW_MAX_THREADS || runs < 1 || runs > MAX_RUNS ||
        ctx < PROMPT_TOKENS + GEN_TOKENS) {
        fprintf(stderr, "usage: bench_bound MODEL [--threads 1..64] [--runs 1..21] [--ctx >= %d]\n",
                PROMPT_TOKENS + GEN_TOKENS);
        return 1;
    }
    el_model *m = NULL;
    if (el_model_open(path, NULL, &m) != EL_OK) return fail(path);
    el_plan_params pp = {ctx, 0, EL_DT_NONE, 0, EL_MEMORY_HOST, EL_DT_NONE}; /* as generate */
    el_plan plan;
    if (el_plan_make(m, &pp, &plan) != EL_OK) return fail("plan");
    el_arena_params ap;
    el_plan_arena_params(&plan, plan.total_bytes, 0, &ap);
    ap.memory = pp.memory;
    uint64_t cap;
    if (el_arena_buffer_bytes(&ap, &cap) != EL_OK) return fail("arena size");
    /* Both buffers from the platform's reserve with the arena's flags: the same mapping
     * (and transparent huge page advice) el_arena_init would make. */
    const el_platform_methods *pm = el_platform_get();
    void *buf = NULL, *fresh = NULL;
    if (pm->x_reserve(cap, ap.flags, &buf, NULL) != EL_OK ||
        pm->x_reserve(cap, ap.flags, &fresh, NULL) != EL_OK)
        return fail("reserve");
    memset(fresh, 1, cap);
    el_arena *a = NULL;
    if (el_arena_init_buffer(&a, &ap, buf, cap) != EL_OK) return fail("arena");
    if (el_model_load(m, &plan, a, NULL, NULL) != EL_OK) return fail("load");
    static char text[8192];
    if (make_prompt(m, text, sizeof text) != 0) {
        fprintf(stderr, "bench_bound: cannot make a %d-token prompt\n", PROMPT_TOKENS);
        return 2;
    }
    el_session_params sp = {threads, EL_DEVICE_CPU, 0, false};
    el_session *s = NULL;
    if (el_session_init(m, a, &plan, &sp, &s) != EL_OK) return fail("session");
    const uint64_t tb = token_bytes(m);
    const size_t words = cap / 8;
    el_sampler_params greedy = {0.0f, 0, 1.0f, 0};
    el_gen_stats st;
    el_session_reset(s); /* warm-up: faults in the KV cache and scratch */
    if (el_generate(s, text, GEN_TOKENS, &greedy, NULL, NULL, &st) != EL_OK)
        return fail("generate");
    printf("bench_bound: %s, %u thread(s), arena %.1f MiB, %.1f MB read per token\n", path,
           threads, (double)cap / (1 << 20), (double)tb / 1e6);
    printf("| run | arena GB/s before | after | fresh buffer GB/s | decode tok/s | of bound |\n"
           "|---|---|---|---|---|---|\n");
    double before[MAX_RUNS], after[MAX_RUNS], fr[MAX_RUNS], tok[MAX_RUNS], frac[MAX_RUNS];
    for (int r = 0; r < runs; r++) {
        before[r] = bench_read_bandwidth(buf, words, (int)threads, 5);
        el_session_reset(s);
        if (el_generate(s, text, GEN_TOKENS, &greedy, NULL, NULL, &st) != EL_OK)
            return fail("generate");
        if (st.prompt_tokens != PROMPT_TOKENS) {
            fprintf(stderr, "bench_bound: the prompt was %u tokens, not %d\n",
                    (unsigned)st.prompt_tokens, PROMPT_TOKENS);
            return 2;
        }
        tok[r] = st.gen_tok_per_s;
        after[r] = bench_read_bandwidth(buf, words, (int)threads, 5);
        fr[r] = bench_read_bandwidth(fresh, words, (int)threads, 5);
        frac[r] = tok[r] * (double)tb / ((before[r] + after[r]) / 2);
        printf("| %d | %.1f | %.1f | %.1f | %.1f | %.0f%% |\n", r + 1, before[r] / 1e9,
               after[r] / 1e9, fr[r] / 1e9, tok[r], 100 * frac[r]);
        fflush(stdout);
    }
    printf("| median | %.1f | %.1f | %.1f | %.1f | %.0f%% |\n", bench_median(before, runs) / 1e9,
           bench_median(after, runs) / 1e9, bench_median(fr, runs) / 1e9,
           bench_median(tok, runs), 100 * bench_median(frac, runs));
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
    pm->x_release(fresh, cap);
    pm->x_release(buf, cap);
    return 0;
}
