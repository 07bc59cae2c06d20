/* test_llama_kvf16.c - the f16 KV cache (--kv-dtype f16) on the CPU.
 * Kernels, on every ISA this CPU has (portable, and AVX2+F16C or NEON):
 *   - el_cpu_f32_to_f16 (the cache store) gives el_fp32_to_fp16's bits (round to nearest
 *     even) for edge values and 2^20 random bit patterns (NaN: a NaN);
 *   - el_cpu_attention_kv over an f16 cache equals el_cpu_attention_ex over the same cache
 *     widened to f32, bit for bit (widening is exact; the arithmetic is the f32 kernel's),
 *     with windows, GQA and head sizes that take each path (8, 12, 64).
 * Models (decoders through the public API): the transformers fixtures tests/fixtures/
 * hf_llama_* (Llama, biases, Qwen2, Mistral, Phi-3, Llama 3 RoPE, Gemma 3), hf_gpt2_small
 * and the bundled stories260K, each with an f32 and an f16 cache:
 *   - plan: the KV region of f16 is half of f32's (both page multiples here, exactly);
 *   - logits at every prompt position (one token per pass) and after a batched prefill:
 *     f16 cache against f32 cache within KV_TOL (derived below), and against transformers'
 *     recorded float32 logits within F32_TOL + KV_TOL;
 *   - greedy ids after the prompt with the f16 cache equal transformers' (16 ids), and
 *     stories260K's 64 greedy ids equal the NumPy reference's;
 *   - the CLI: plan's two sizes (text, --json), --kv-dtype's values, generate's text.
 *
 * KV_TOL. Rounding to f16 keeps 11 significant bits: each cached key and value moves by at
 * most u = 2^-11 (4.9e-4) of itself. A score q.k then moves by at most u sum |q_i k_i| and
 * an attention output by at most u times the values' magnitude plus the softmax's response
 * to the scores; through the residual stream and the classifier this is a relative
 * perturbation of the logits of order (layers x u). The fixtures have 2 to 5 layers and
 * |logits| <= ~12: 5 x 4.9e-4 x 12 = 3e-2 is the bound this sets. We take
 * KV_TOL = 16 u max(1, max|logit|) (about 0.09 at |logit| 12; the first-order estimate
 * with 3x room for the softmax's gain) and report the measured difference, which is
 * 10-30x smaller (the errors are random, not aligned). Greedy ids are then decided where
 * transformers' top-2 margin (greedy_min_margin: >= 0.02 here) exceeds twice the measured
 * difference; a margin smaller than that would make the id comparison meaningless, so the
 * test checks that the measured difference stays under half the margin as well. */
// ctest-labels: llama;model;kernels
// ctest-timeout: 120
#include "tests/llama_fixture.h"

#include "kernels/cpu/cpu.h"
#include "kernels/fp16.h"

#include <math.h>
#include <string.h>

#define FIXDIR EL_SOURCE_DIR "/tests/fixtures"
#define U_F16 (1.0f / 2048.0f) /* 2^-11: f16's relative rounding bound */
#define F32_TOL 1e-4f           /* ours (f32 cache) against transformers (test_llama_hf) */
#define N_GREEDY 16
#define MAX_PROMPT 64

/* ---- kernels ---------------------------------------------------------------------------- */

static uint64_t g_rng = 0x2545F4914F6CDD1Dull;
static uint32_t rnd32(void) { return (uint32_t)(el_test_xorshift64(&g_rng) >> 32); }
static float frand(void) { return el_test_frand(&g_rng); }

static void check_store(el_pool *p) {
    enum { N = 1 << 20 };
    static float src[N];
    static uint16_t got[N];
    static const float edge[] = {0.0f, -0.0f, 1.0f, -1.0f, 65504.0f, 65519.99f, 65520.0f,
                                 -65520.0f, 1e9f, 6.1035156e-05f, 6.0975552e-05f,
                                 5.9604645e-08f, 2.9802322e-08f, 2.9802326e-08f,
                                 1.0004883f, 1.0014648f, 1e-30f, INFINITY, -INFINITY};
    size_t ne = sizeof edge / sizeof edge[0];
    for (size_t i = 0; i < N; i++) {
        uint32_t b = rnd32();
        memcpy(&src[i], &b, 4);
    }
    memcpy(src, edge, sizeof edge);
    src[ne] = NAN;
    el_cpu_f32_to_f16(p, got, src, N - 3); /* an odd tail for the vector paths */
    size_t bad = 0;
    for (size_t i = 0; i < N - 3; i++) {
        uint16_t want = el_fp32_to_fp16(src[i]);
        bool same = isnan(src[i]) ? (got[i] & 0x7c00u) == 0x7c00u && (got[i] & 0x3ffu)
                                  : got[i] == want;
        if (!same && bad++ < 5)
            fprintf(stderr, "   f32 -> f16 %.9g: got 0x%04x, want 0x%04x\n", src[i], got[i],
                    want);
    }
    fprintf(stderr, "   f32 -> f16 (%s): %zu of %d differ from round-to-nearest-even\n",
            el_isa_name(p->isa), bad, N - 3);
    EL_CHECK(bad == 0);
}

/* An f16 cache against the same values widened to f32: identical outputs. */
static void check_attention(el_pool *p) {
    static const struct {
        size_t nh, nkv, hd, n, pos0, window;
    } cases[] = {{4, 2, 64, 3, 37, 0}, {4, 2, 64, 1, 70, 16}, {6, 3, 8, 5, 9, 0},
                 {2, 1, 12, 4, 21, 7}, {8, 8, 64, 64, 0, 0}, {3, 1, 16, 2, 5, 100}};
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        const size_t nh = cases[c].nh, nkv = cases[c].nkv, hd = cases[c].hd, n = cases[c].n;
        const size_t pos0 = cases[c].pos0, ctx = pos0 + n, kvn = ctx * nkv * hd;
        float *q = malloc(n * nh * hd * 4), *kw = malloc(kvn * 4), *vw = malloc(kvn * 4);
        float *want = malloc(n * nh * hd * 4), *got = malloc(n * nh * hd * 4);
        float *att = malloc(nh * ctx * 4);
        uint16_t *kh = malloc(kvn * 2), *vh = malloc(kvn * 2);
        for (size_t i = 0; i < n * nh * hd; i++) q[i] = frand() * 2.0f;
        for (size_t i = 0; i < kvn; i++) {
            kh[i] = el_fp32_to_fp16(frand() * 3.0f);
            vh[i] = el_fp32_to_fp16(frand());
            kw[i] = el_fp16_to_fp32(kh[i]);
            vw[i] = el_fp16_to_fp32(vh[i]);
        }
        const float scale = 1.0f / sqrtf((float)hd);
        el_cpu_attention_ex(p, want, q, kw, vw, att, ctx, n, pos0, nh, nkv, hd,
                            cases[c].window, scale);
        el_cpu_attention_kv(p, got, q, kh, vh, EL_DT_F16, att, ctx, n, pos0, nh, nkv, hd,
                            cases[c].window, scale);
        EL_CHECK(memcmp(got, want, n * nh * hd * 4) == 0);
        /* The f32 instance is el_cpu_attention_ex. */
        el_cpu_attention_kv(p, got, q, kw, vw, EL_DT_F32, att, ctx, n, pos0, nh, nkv, hd,
                            cases[c].window, scale);
        EL_CHECK(memcmp(got, want, n * nh * hd * 4) == 0);
        free(q), free(kw), free(vw), free(want), free(got), free(att), free(kh), free(vh);
    }
    fprintf(stderr, "   attention over an f16 cache (%s): equal to f32 over the widened cache\n",
            el_isa_name(p->isa));
}

static void check_kernels(void) {
    el_isa isas[2] = {EL_ISA_PORTABLE, el_cpu_isa_best()};
    for (int i = 0; i < (isas[1] == EL_ISA_PORTABLE ? 1 : 2); i++) {
        el_pool p;
        EL_CHECK_OK(el_pool_init(&p, 2, isas[i]));
        check_store(&p);
        check_attention(&p);
        el_pool_deinit(&p);
    }
}

/* ---- models ----------------------------------------------------------------------------- */

typedef struct ref {
    const char *name;
    char path[512];        /* folder or checkpoint */
    int32_t prompt[MAX_PROMPT];
    size_t n_prompt;
    int32_t greedy[64];    /* the reference's greedy ids after the prompt */
    size_t n_greedy;
    float margin;          /* the reference's smallest top-2 margin on them (0: unknown) */
    float *logits;         /* [n_prompt][vocab] transformers float32, or NULL */
    uint32_t vocab;
} ref;

static bool ref_hf(const char *dir, ref *r) {
    memset(r, 0, sizeof *r);
    r->name = dir;
    snprintf(r->path, sizeof r->path, "%s/%s", FIXDIR, dir);
    cJSON *j = fixture_reference(r->path);
    r->vocab = (uint32_t)cJSON_GetObjectItem(j, "vocab_size")->valuedouble;
    r->n_prompt = fixture_ids_to(cJSON_GetObjectItem(j, "prompt_ids"), r->prompt, MAX_PROMPT);
    r->n_greedy = fixture_ids_to(cJSON_GetObjectItem(j, "greedy_ids"), r->greedy, N_GREEDY);
    r->margin = (float)cJSON_GetObjectItem(j, "greedy_min_margin")->valuedouble;
    cJSON_Delete(j);
    r->logits = fixture_read_floats(r->path, "logits_f32.bin", r->n_prompt * r->vocab);
    EL_CHECK(r->n_greedy == N_GREEDY && r->n_prompt >= 2);
    return r->logits != NULL;
}

static bool ref_stories(ref *r) {
    memset(r, 0, sizeof *r);
    r->name = "stories260K";
    snprintf(r->path, sizeof r->path, "%s", STORIES_BIN);
    cJSON *j = fixture_load(STORIES_FIXTURE);
    if (!j) return false;
    r->n_prompt = fixture_ids_to(cJSON_GetObjectItem(j, "prompt_ids"), r->prompt, MAX_PROMPT);
    r->n_greedy = fixture_ids_to(cJSON_GetObjectItem(j, "generated_ids"), r->greedy, 64);
    cJSON_Delete(j);
    r->vocab = 512;
    return r->n_prompt > 0 && r->n_greedy == 64;
}

typedef struct run_out {
    float *logits;     /* [n_prompt][vocab], one token per pass */
    float *batched;    /* [vocab] the last position after a batched prefill */
    int32_t ids[64];   /* greedy after the batched prefill */
    uint64_t kv_bytes; /* the plan's KV region */
} run_out;

static bool run(const ref *r, el_dtype kv, run_out *o) {
    memset(o, 0, sizeof *o);
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(r->path, NULL, &m));
    if (!m) return false;
    el_plan_params pp = {0, 1, EL_DT_NONE, 64 * 1024, EL_MEMORY_HOST, kv};
    el_plan plan;
    el_arena *a = NULL;
    el_session *s = NULL;
    bool ok = false;
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    EL_CHECK(plan.params.kv_dtype == kv);
    o->kv_bytes = plan.region_bytes[EL_REGION_KV];
    a = el_test_arena(&plan, EL_MEMORY_HOST);
    if (!a) goto done;
    EL_CHECK_OK(el_model_load(m, &plan, a, NULL, NULL));
    el_session_params sp = {2, EL_DEVICE_CPU, 0, false};
    EL_CHECK_OK(el_session_init(m, a, &plan, &sp, &s));
    if (!s) goto done;
    const size_t V = r->vocab, P = r->n_prompt;
    EL_CHECK(el_session_vocab(s) == V);
    o->logits = malloc(P * V * sizeof(float));
    o->batched = malloc(V * sizeof(float));
    const float *lg = NULL;
    for (size_t i = 0; i < P; i++) {
        EL_CHECK_OK(el_session_forward(s, &r->prompt[i], 1, &lg));
        if (!lg) goto done;
        memcpy(o->logits + i * V, lg, V * sizeof(float));
    }
    el_session_reset(s);
    EL_CHECK_OK(el_session_forward(s, r->prompt, P, &lg));
    if (!lg) goto done;
    memcpy(o->batched, lg, V * sizeof(float));
    for (size_t i = 0; i < r->n_greedy; i++) {
        o->ids[i] = el_test_argmax(lg, V);
        if (i + 1 < r->n_greedy && el_session_forward(s, &o->ids[i], 1, &lg) != EL_OK) goto done;
    }
    ok = true;
done:
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
    return ok;
}

static float max_abs(const float *x, size_t n) {
    float m = 0;
    for (size_t i = 0; i < n; i++) m = fmaxf(m, fabsf(x[i]));
    return m;
}

static void check_model(const ref *r) {
    run_out o32, o16;
    fprintf(stderr, "== %s\n", r->name);
    bool ok32 = run(r, EL_DT_F32, &o32), ok16 = run(r, EL_DT_F16, &o16);
    EL_CHECK(ok32 && ok16);
    if (ok32 && ok16) {
        const size_t V = r->vocab, PV = r->n_prompt * V;
        /* Both page multiples for these shapes: the f16 cache is exactly half. */
        fprintf(stderr, "   plan: kv %llu bytes (f32), %llu (f16)\n",
                (unsigned long long)o32.kv_bytes, (unsigned long long)o16.kv_bytes);
        EL_CHECK(o16.kv_bytes > 0 && 2 * o16.kv_bytes == o32.kv_bytes);
        const float tol = 16.0f * U_F16 * fmaxf(1.0f, max_abs(o32.logits, PV));
        float d = el_test_max_abs_diff(o16.logits, o32.logits, PV);
        float db = el_test_max_abs_diff(o16.batched, o32.batched, V);
        fprintf(stderr, "   f16 vs f32 cache: max |diff| %.3g at every prompt position (nmse "
                "%.3g), %.3g after a batched prefill (KV_TOL %.3g)\n", d,
                el_test_nmse(o16.logits, o32.logits, PV), db, tol);
        EL_CHECK(d <= tol && db <= tol);
        if (r->logits) {
            float dt = el_test_max_abs_diff(o16.logits, r->logits, PV);
            fprintf(stderr, "   f16 cache vs transformers float32: max |diff| %.3g (bound "
                    "%.3g); f32 cache: %.3g\n", dt, F32_TOL + tol,
                    el_test_max_abs_diff(o32.logits, r->logits, PV));
            EL_CHECK(dt <= F32_TOL + tol);
        }
        if (r->margin > 0) {
            fprintf(stderr, "   reference's smallest greedy margin %.3g: twice the "
                    "difference is %.3g\n", r->margin, 2 * fmaxf(d, db));
            EL_CHECK(2 * fmaxf(d, db) < r->margin);
        }
        size_t same = 0;
        while (same < r->n_greedy && o16.ids[same] == r->greedy[same]) same++;
        fprintf(stderr, "   greedy with the f16 cache: %zu of %zu ids equal the reference's\n",
                same, r->n_greedy);
        EL_CHECK(same == r->n_greedy);
    }
    free(o32.logits), free(o32.batched), free(o16.logits), free(o16.batched);
}

/* --kv-dtype's values through the plan: the default is f16, 0 (a zero-filled struct) f32,
 * anything else refused by name. */
static void check_plan_params(void) {
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(STORIES_BIN, NULL, &m));
    if (!m) return;
    el_plan p;
    el_plan_params pp = {512, 1, EL_DT_NONE, 0, EL_MEMORY_HOST, EL_DT_NONE};
    EL_CHECK_OK(el_plan_make(m, &pp, &p));
    EL_CHECK(p.params.kv_dtype == EL_DT_F16);
    /* stories260K: 5 layers x 512 positions x 4 KV heads x 8 x (K, V) x 2 bytes. */
    EL_CHECK(p.region_bytes[EL_REGION_KV] == 5ull * 512 * 32 * 2 * 2);
    el_plan_params zero;
    memset(&zero, 0, sizeof zero);
    zero.dtype = EL_DT_NONE;
    zero.ctx = 512;
    EL_CHECK_OK(el_plan_make(m, &zero, &p));
    EL_CHECK(p.params.kv_dtype == EL_DT_F32);
    EL_CHECK(p.region_bytes[EL_REGION_KV] == 5ull * 512 * 32 * 2 * 4);
    EL_CHECK_OK(el_plan_make(m, NULL, &p));
    EL_CHECK(p.params.kv_dtype == EL_DT_F16);
    pp.kv_dtype = EL_DT_BF16;
    EL_CHECK_STATUS(el_plan_make(m, &pp, &p), EL_E_USAGE);
    EL_CHECK(strstr(el_last_error(), "--kv-dtype BF16") != NULL);
    /* An f32 cache that does not fit: the message suggests the f16 one. */
    pp.kv_dtype = EL_DT_F32;
    EL_CHECK_OK(el_plan_make(m, &pp, &p));
    EL_CHECK_STATUS(el_plan_check(m, &p, p.total_bytes - 4096), EL_E_NOFIT);
    EL_CHECK(strstr(el_last_error(), "--kv-dtype f16 needs") != NULL);
    el_model_close(m);
}

/* The CLI: plan shows both cache sizes (text and --json), --kv-dtype takes f32 and f16 and
 * refuses anything else (exit 1), and generate gives the reference's greedy text with
 * either cache. */
static void check_cli(const ref *r) {
    char *out = NULL, *err = NULL;
    int rc = el_test_run_cli("plan " STORIES_BIN " --ctx 512", &out, &err);
    EL_CHECK(rc == 0 && out && strstr(out, "(327680 bytes)  f16; f32 would be 640.00 KiB"));
    free(out), free(err);
    rc = el_test_run_cli("plan " STORIES_BIN " --ctx 512 --kv-dtype f32 --json", &out, &err);
    EL_CHECK(rc == 0 && out && strstr(out, "\"kv\":655360") &&
             strstr(out, "\"kv_dtype\":\"f32\",\"kv_bytes\":{\"f32\":655360,\"f16\":327680}"));
    free(out), free(err);
    rc = el_test_run_cli("plan " STORIES_BIN " --kv-dtype bf16", &out, &err);
    EL_CHECK(rc == 1 && err && strstr(err, "--kv-dtype bf16: the KV cache holds f32 or f16"));
    free(out), free(err);
    rc = el_test_run_cli("generate " STORIES_BIN " --kv-dtype f16 --kv-dtype f32", &out, &err);
    EL_CHECK(rc == 1);
    free(out), free(err);
    cJSON *j = fixture_load(STORIES_FIXTURE);
    const cJSON *t = j ? cJSON_GetObjectItem(j, "generated_text") : NULL;
    static const char *const kv[] = {"f32", "f16"};
    for (int k = 0; k < 2 && cJSON_IsString(t); k++) {
        char args[700];
        snprintf(args, sizeof args, "generate %s -p \"Once upon a time\" -n %zu --temp 0 "
                 "--kv-dtype %s", STORIES_BIN, r->n_greedy, kv[k]);
        rc = el_test_run_cli(args, &out, &err);
        /* The text streams after the prompt; the reference's generated_text follows it. */
        EL_CHECK(rc == 0 && out && strstr(out, t->valuestring));
        if (rc != 0 || !out || !strstr(out, t->valuestring))
            fprintf(stderr, "   generate --kv-dtype %s: rc %d, out %s\n", kv[k], rc, out);
        free(out), free(err);
    }
    cJSON_Delete(j);
}

int main(void) {
    fixture_require_stories();
    fprintf(stderr, "== kernels\n");
    check_kernels();
    check_plan_params();
    static const char *const dirs[] = {"hf_llama_gqa",     "hf_llama_untied", "hf_llama_head_dim",
                                       "hf_llama_bias",    "hf_llama_qwen2",  "hf_llama_mistral",
                                       "hf_llama_llama3",  "hf_llama_linear", "hf_llama_phi3",
                                       "hf_llama_qwen2win", "hf_llama_gemma3", "hf_gpt2_small"};
    for (size_t i = 0; i < sizeof dirs / sizeof dirs[0]; i++) {
        ref r;
        if (ref_hf(dirs[i], &r)) check_model(&r);
        free(r.logits);
    }
    ref s;
    if (ref_stories(&s)) {
        check_model(&s);
        check_cli(&s);
    }
    return el_test_finish("test_llama_kvf16");
}
