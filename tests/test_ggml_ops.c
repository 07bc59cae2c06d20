/* test_ggml_ops.c - the --numerics ggml kernels (kernels/cpu/ggml_ops.c):
 * 1. against llama.cpp itself: its layer-0 tensors for the first recorded prompt of SmolLM2
 *    and Gemma 3 270M (tests/fixtures/ggml_ops, recorded from its AVX-512 build by
 *    scripts/ref_ggml_ops.py): RMSNorm, RoPE (Llama's interleaved pairs with base 1e5, Gemma's
 *    NEOX halves with its sliding layers' base 1e4), the flash attention over the f16 cache
 *    (GQA 9/3 scaled, 4/1 prescaled) and SwiGLU / GEGLU, every entry bit for bit, and the
 *    exact kernels differ from them (the comparison can fail);
 * 2. SwiGLU against a scalar model of ggml_v_expf of both x86 builds written here (inputs
 *    over the ranges of its overflow paths);
 * 4. the option (check_option): parsing, a GGUF session's default, switching both ways, the CLI;
 * 5. the K-type matrix products (check_kquant) against llama.cpp's own (AVX-512 build, recorded
 *    by scripts/ref_ggml_kquant.py: Gemma 3 270M's layer-0 Q4_K attention output projection,
 *    which llama.cpp repacks and runs by its gemv (one token) and gemm (groups of four)
 *    kernels, and its Q6_K FFN down projection, ggml_vec_dot_q6_K_q8_K; then matrices
 *    llama.cpp does not repack, quantized by ggml's quantizer and run through its MUL_MAT:
 *    a Q5_K one and a Q4_K one of 61 rows, ggml_vec_dot_q5_K_q8_K / _q4_K_) for batches of
 *    1, 4, 5 and 7 tokens, and of 8 and 13 (ggml's tiled matmul): every output bit for bit
 *    with the ggml order, on every pool (portable and the CPU's best, 1 and 3 threads), and
 *    the exact order differs (the check can fail); and end to end (check_kquant_e2e): the
 *    small Q5_K_M and Q4_K_M Llama fixtures' last-token logits for prompts of those sizes
 *    equal llama.cpp's bit for bit, the exact numerics' differ;
 * 3. el_cpu_attention_ggml against a scalar model of llama.cpp's CPU flash-attention row
 *    written here from ggml's source (ggml-cpu ops.cpp
 *    ggml_compute_forward_flash_attn_ext_f16_one_chunk; vec.cpp ggml_vec_dot_f16 / _f32;
 *    vec.h ggml_vec_mad_f16 / _scale_f16; simd-mappings.h's GGML_F32x8/x16_REDUCE), the SIMD
 *    registers spelled out as arrays of lanes:
 *   - bit for bit, portable and AVX2 kernels, 1 and 3 threads, f16 and f32 caches, the
 *     AVX2 build's 8-lane sums and the AVX-512 build's 16-lane ones, head sizes 64 and 256
 *     (whole steps), 40 and 96 (tails added in double), 12 (a tail that is not a whole
 *     vector), GQA, a sliding window, the query prescaled (Gemma 3) or the scores scaled
 *     (Llama), decode (1 row) and prefill (5 rows) after a filled cache;
 *   - within 4e-3 of el_cpu_attention_kv (the same attention) and not equal to it on every
 *     entry (the rounding differs, so the comparison above can fail). */
// ctest-labels: kernels
#include "tests/support/el_test.h"

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/quant.h"
#include "kernels/fp16.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- 1. llama.cpp's own tensors ------------------------------------------------------- */

typedef struct fixture {
    const char *name;
    float rope_base;   /* layer 0's */
    bool interleaved;  /* GGML_ROPE_TYPE_NORMAL (llama) or NEOX (gemma3) */
    bool prescale;     /* the query scaled before the attention (gemma3) */
    bool geglu;
} fixture;

/* name_what.bin of count floats (NULL, checked, when it is not that size). */
static float *fx_read(const char *name, const char *what, size_t count) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/ggml_ops/%s_%s.bin", EL_SOURCE_DIR, name, what);
    size_t n = 0;
    float *v = (float *)(void *)el_test_read_file(path, &n);
    EL_CHECK(v != NULL && n == count * sizeof(float));
    if (v && n != count * sizeof(float)) free(v), v = NULL;
    return v;
}

/* Entries of n floats that differ in their bits from want (want NULL: n). */
static size_t fx_diff(const float *got, const float *want, size_t n) {
    size_t d = 0;
    for (size_t i = 0; i < n; i++) d += !want || memcmp(&got[i], &want[i], sizeof *got) != 0;
    return d;
}

static void fx_check(const char *name, const char *what, size_t diff, size_t diff_exact,
                     size_t n) {
    if (diff || getenv("EL_TEST_VERBOSE"))
        fprintf(stderr, "   %s %s: %zu of %zu entries differ from llama.cpp's (exact: %zu)\n",
                name, what, diff, n, diff_exact);
    EL_CHECK(diff == 0);
    EL_CHECK(diff_exact > 0);
}

static void run_fixture(const fixture *f, el_pool *p) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/ggml_ops/%s.json", EL_SOURCE_DIR, f->name);
    char *text = el_test_read_file(path, NULL);
    cJSON *j = text ? cJSON_Parse(text) : NULL;
    free(text);
    EL_CHECK(j != NULL);
    if (!j) return;
    const cJSON *files = cJSON_GetObjectItem(j, "files");
    const cJSON *ne_q = cJSON_GetObjectItem(cJSON_GetObjectItem(files, "q_post"), "ne");
    const cJSON *ne_g = cJSON_GetObjectItem(cJSON_GetObjectItem(files, "gate"), "ne");
    const size_t hd = (size_t)cJSON_GetArrayItem(ne_q, 0)->valueint;
    const size_t nh = (size_t)cJSON_GetObjectItem(j, "heads")->valueint;
    const size_t nkv = (size_t)cJSON_GetObjectItem(j, "kv_heads")->valueint;
    const size_t T = (size_t)cJSON_GetArrayItem(ne_q, 2)->valueint;
    const size_t hid = (size_t)cJSON_GetArrayItem(ne_g, 0)->valueint;
    const size_t dim = (size_t)cJSON_GetArrayItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(files, "norm_in"), "ne"), 0)->valueint;
    const float eps = (float)cJSON_GetObjectItem(j, "eps")->valuedouble;
    const size_t qd = nh * hd, kvd = nkv * hd;
    float *in = fx_read(f->name, "norm_in", T * dim), *nw = fx_read(f->name, "norm_w", dim);
    float *nout = fx_read(f->name, "norm_out", T * dim), *qpre = fx_read(f->name, "q_pre", T * qd);
    float *qpost = fx_read(f->name, "q_post", T * qd), *k = fx_read(f->name, "k", T * kvd);
    float *v = fx_read(f->name, "v", T * kvd), *ao = fx_read(f->name, "att_out", T * qd);
    float *gate = fx_read(f->name, "gate", T * hid), *up = fx_read(f->name, "up", T * hid);
    float *act = fx_read(f->name, "act", T * hid);
    float *buf = malloc(T * (hid > qd ? hid : qd > dim ? qd : dim) * sizeof *buf);
    float *buf2 = malloc(T * (hid > qd ? hid : qd > dim ? qd : dim) * sizeof *buf2);
    float *cs = malloc(T * hd / 2 * sizeof *cs), *sn = malloc(T * hd / 2 * sizeof *sn);
    float *att = malloc(nh * T * sizeof *att);
    uint16_t *kh = malloc(T * kvd * sizeof *kh), *vh = malloc(T * kvd * sizeof *vh);
    if (in && nw && nout && qpre && qpost && k && v && ao && gate && up && act && buf && buf2 &&
        cs && sn && att && kh && vh) {
        /* RMSNorm (Gemma's weight is stored as 1 + w already) */
        el_cpu_rmsnorm_ggml(buf, in, nw, EL_DT_F32, T, dim, eps, 0.0f);
        el_cpu_rmsnorm(p, buf2, in, nw, EL_DT_F32, T, dim, eps);
        fx_check(f->name, "RMSNorm", fx_diff(buf, nout, T * dim), fx_diff(buf2, nout, T * dim),
                 T * dim);
        /* RoPE for positions 0..T-1 */
        el_cpu_rope_table_ggml(cs, sn, T, hd, f->rope_base, 1.0f);
        memcpy(buf, qpre, T * qd * sizeof *buf);
        for (size_t t = 0; t < T; t++)
            el_cpu_rope_ggml(buf + t * qd, nh, hd, cs + t * hd / 2, sn + t * hd / 2,
                             f->interleaved);
        memcpy(buf2, qpre, T * qd * sizeof *buf2);
        for (size_t t = 0; t < T; t++)
            el_cpu_rope(buf2 + t * qd, nh, hd, cs + t * hd / 2, sn + t * hd / 2, f->interleaved);
        fx_check(f->name, "RoPE", fx_diff(buf, qpost, T * qd), fx_diff(buf2, qpost, T * qd),
                 T * qd);
        /* attention over the f16 cache, as llama.cpp's AVX-512 build sums */
        for (size_t i = 0; i < T * kvd; i++) {
            kh[i] = el_fp32_to_fp16(k[i]);
            vh[i] = el_fp32_to_fp16(v[i]);
        }
        const float scale = 1.0f / sqrtf((float)hd);
        el_cpu_attention_ggml(p, buf, qpost, kh, vh, EL_DT_F16, att, T, T, 0, nh, nkv, hd, 0,
                              scale, f->prescale, 16);
        el_cpu_attention_kv(p, buf2, qpost, kh, vh, EL_DT_F16, att, T, T, 0, nh, nkv, hd, 0,
                            scale);
        fx_check(f->name, "attention", fx_diff(buf, ao, T * qd), fx_diff(buf2, ao, T * qd),
                 T * qd);
        /* the gated activation */
        memcpy(buf, gate, T * hid * sizeof *buf);
        memcpy(buf2, gate, T * hid * sizeof *buf2);
        if (f->geglu) {
            el_cpu_geglu_ggml(buf, up, T * hid);
            el_cpu_gelu_tanh(p, buf2, T * hid);
        } else {
            el_cpu_swiglu_ggml(buf, up, T * hid, 16);
            el_cpu_swiglu(p, buf2, up, T * hid);
        }
        if (f->geglu)
            for (size_t i = 0; i < T * hid; i++) buf2[i] *= up[i];
        fx_check(f->name, f->geglu ? "GEGLU" : "SwiGLU", fx_diff(buf, act, T * hid),
                 fx_diff(buf2, act, T * hid), T * hid);
    }
    free(in), free(nw), free(nout), free(qpre), free(qpost), free(k), free(v), free(ao);
    free(gate), free(up), free(act), free(buf), free(buf2), free(cs), free(sn), free(att);
    free(kh), free(vh);
    cJSON_Delete(j);
}

/* ---- 2. SwiGLU's exp ------------------------------------------------------------------ */

static float bits_f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static uint32_t f_bits(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

/* ggml_v_expf (vec.h) of one lane: n = round(x / ln 2) by the 1.5 * 2^23 shifter, b the
 * reduced argument in two steps of ln 2, a degree-5 polynomial; the AVX-512 build scales
 * by 2^n with scalef and gives inf / 0 past |n| > 192; the AVX2 build builds 2^n in the
 * exponent bits (k), fma(j, k, k), and past |n| > 126 splits the scale in two (s1, s2). */
static float model_expf(float x, int w) {
    const float shifter = 0x1.8p23f, log2e = 0x1.715476p+0f;
    const float ln2_hi = 0x1.62e4p-1f, ln2_lo = 0x1.7f7d1cp-20f;
    const float z = fmaf(x, log2e, shifter);
    const float n = z - shifter;
    const float b = fmaf(-n, ln2_lo, fmaf(-n, ln2_hi, x));
    const float u = b * b;
    const float c4 = 0x1.0e4020p-7f, c3 = 0x1.573e2ep-5f, c2 = 0x1.555e66p-3f;
    const float c1 = 0x1.fffdb6p-2f, c0 = 0x1.ffffecp-1f;
    const float p = fmaf(fmaf(c4, b, c3), u, fmaf(c2, b, c1));
    if (w == 16) {
        if (fabsf(n) > 192.0f) return n > 0.0f ? INFINITY : 0.0f;
        return ldexpf(fmaf(p, u, fmaf(c0, b, 1.0f)), (int)n);
    }
    const float j = fmaf(p, u, c0 * b);
    const uint32_t e = f_bits(z) << 23;
    const float k = bits_f(e + 0x3f800000u);
    if (fabsf(n) <= 126.0f) return fmaf(j, k, k);
    const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
    const float s1 = bits_f(g + 0x7f000000u), s2 = bits_f(e - g);
    return fabsf(n) > 192.0f ? s1 * s1 : fmaf(s2, j, s2) * s1;
}

static void check_swiglu(void) {
    enum { N = 4099 }; /* 256 whole vectors of 16 and a tail of 3 */
    float *x = malloc(N * sizeof *x), *g = malloc(N * sizeof *g), *y = malloc(N * sizeof *y);
    uint32_t s = 99;
    for (int w = 8; w <= 16; w += 8) {
        size_t bad = 0;
        for (int i = 0; i < N; i++) {
            s = s * 1664525u + 1013904223u;
            /* most within +-20, some past the overflow thresholds (|x| up to 150) */
            const float r = (float)(s >> 8) / 16777216.0f * 2.0f - 1.0f;
            x[i] = i % 7 == 0 ? 150.0f * r : 20.0f * r;
            g[i] = 1.0f + 0.5f * r;
            y[i] = x[i];
        }
        el_cpu_swiglu_ggml(y, g, N, (unsigned)w);
        const int nv = N / w * w;
        for (int i = 0; i < N; i++) {
            const float e = i < nv ? model_expf(0.0f - x[i], w) : expf(-x[i]);
            const float want = x[i] / (1.0f + e) * g[i];
            bad += memcmp(&want, &y[i], sizeof want) != 0;
        }
        if (bad) fprintf(stderr, "   SwiGLU, %d lanes: %zu of %d differ from the model\n", w, bad, N);
        EL_CHECK(bad == 0);
    }
    free(x), free(g), free(y);
}

/* ---- 4. the option -------------------------------------------------------------------- */

/* Logits of 3 tokens with numerics nu on session s (reset first), into lg[3 * V]. */
static void run3(el_session *s, el_numerics nu, float *lg, size_t V) {
    el_session_reset(s);
    EL_CHECK_OK(el_session_set_numerics(s, nu));
    static const int32_t ids[3] = {5, 300, 77};
    for (int i = 0; i < 3; i++) {
        const float *l = NULL;
        EL_CHECK_OK(el_session_forward(s, &ids[i], 1, &l));
        if (l) memcpy(lg + i * V, l, V * sizeof *lg);
    }
}

/* el_numerics_parse; a GGUF session starts with exact (auto), switches both ways (the RoPE
 * tables rebuilt: exact after ggml gives exact's logits again, and ggml's differ); a bad value
 * is refused; --numerics on the CLI. The model: a tiny GGUF of tests/fixtures/gguf_pretok. */
/* path opened, planned for 32 positions with an f16 KV cache, loaded and given a session
 * (NULL, checked, on failure); the caller deinits the session and arena, closes the model. */
static el_session *open_session(const char *path, el_model **m, el_arena **a) {
    EL_CHECK_OK(el_model_open(path, NULL, m));
    el_plan plan;
    el_plan_params pp = {32, 1, EL_DT_NONE, 0, EL_MEMORY_HOST, EL_DT_F16};
    el_session *s = NULL;
    if (*m && el_plan_make(*m, &pp, &plan) == EL_OK) {
        *a = el_test_arena(&plan, EL_MEMORY_HOST);
        if (*a) EL_CHECK_OK(el_model_load(*m, &plan, *a, NULL, NULL));
        if (*a) EL_CHECK_OK(el_session_init(*m, *a, &plan, NULL, &s));
    }
    EL_CHECK(s != NULL);
    return s;
}

static void check_option(void) {
    el_numerics nu = EL_NUMERICS_AUTO;
    EL_CHECK_OK(el_numerics_parse("ggml", &nu));
    EL_CHECK(nu == EL_NUMERICS_GGML && !strcmp(el_numerics_name(nu), "ggml"));
    EL_CHECK_STATUS(el_numerics_parse("fast", &nu), EL_E_USAGE);
    const char *path = EL_SOURCE_DIR "/tests/fixtures/gguf_pretok/smollm.gguf";
    el_model *m = NULL;
    el_arena *a = NULL;
    el_session *s = open_session(path, &m, &a);
    if (s) {
        EL_CHECK(el_session_numerics(s) == EL_NUMERICS_EXACT);
        const size_t V = el_session_vocab(s);
        float *e1 = malloc(3 * V * sizeof *e1), *g = malloc(3 * V * sizeof *g);
        float *e2 = malloc(3 * V * sizeof *e2);
        run3(s, EL_NUMERICS_AUTO, e1, V);
        EL_CHECK(el_session_numerics(s) == EL_NUMERICS_EXACT);
        run3(s, EL_NUMERICS_GGML, g, V);
        EL_CHECK(el_session_numerics(s) == EL_NUMERICS_GGML);
        run3(s, EL_NUMERICS_EXACT, e2, V);
        EL_CHECK(!memcmp(e1, e2, 3 * V * sizeof *e1));
        EL_CHECK(memcmp(e1, g, 3 * V * sizeof *e1) != 0);
        EL_CHECK_STATUS(el_session_set_numerics(s, (el_numerics)7), EL_E_USAGE);
        free(e1), free(g), free(e2);
    }
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
    char *out = NULL, *err = NULL;
    int rc = el_test_run_cli("generate " EL_SOURCE_DIR "/tests/fixtures/gguf_pretok/smollm.gguf "
                             "-p hello -n 3 --numerics bogus", &out, &err);
    EL_CHECK(rc == 1 && err && strstr(err, "--numerics: numerics 'bogus': use auto, exact or ggml"));
    free(out), free(err);
    for (int i = 0; i < 2; i++) {
        rc = el_test_run_cli(i ? "generate " EL_SOURCE_DIR "/tests/fixtures/gguf_pretok/smollm.gguf "
                                 "-p hello -n 3 --numerics exact"
                               : "generate " EL_SOURCE_DIR "/tests/fixtures/gguf_pretok/smollm.gguf "
                                 "-p hello -n 3 --numerics ggml", &out, &err);
        EL_CHECK(rc == 0);
        free(out), free(err);
    }
}

/* ---- 3. the attention row ------------------------------------------------------------- */

/* ---- the model ------------------------------------------------------------------------- */

typedef struct vec16 {
    float l[16];
} vec16;

static float h2f(uint16_t h) { return el_fp16_to_fp32(h); }

/* ggml_vec_dot_f16 or ggml_vec_dot_f32 (x and y as f32 values already widened) as the AVX2
 * build (EPR 8: GGML_F16_STEP 32, ARR 4) or the AVX-512 one (EPR 16: STEP 64, ARR 4)
 * compiles it: GGML_F32x8_REDUCE / GGML_F32x16_REDUCE, the latter ending in GCC's
 * _mm512_reduce_add_ps (avx512fintrin.h: 256-bit halves added, then 128-bit halves, then
 * lanes {2,3} onto {0,1}, then lane 1 onto lane 0). */
static float model_dot(const float *x, const float *y, int n, int epr) {
    vec16 sum[4];
    memset(sum, 0, sizeof sum);
    const int step = 4 * epr, np = n / step * step;
    for (int i = 0; i < np; i += step)
        for (int j = 0; j < 4; j++)
            for (int l = 0; l < epr; l++) /* GGML_F32x8_FMA(a, b, c): fmadd(b, c, a) */
                sum[j].l[l] = fmaf(x[i + j * epr + l], y[i + j * epr + l], sum[j].l[l]);
    /* REDUCE: offset = ARR >> 1 = 2, then 1, then 0 */
    for (int off = 2; off > 0; off >>= 1)
        for (int i = 0; i < off; i++)
            for (int l = 0; l < epr; l++) sum[i].l[l] = sum[i].l[l] + sum[off + i].l[l];
    const float *a = sum[0].l;
    double sumf;
    if (epr == 8) {
        float t0[4], t1[2];
        for (int l = 0; l < 4; l++) t0[l] = a[l] + a[l + 4]; /* lo128 + hi128 */
        t1[0] = t0[0] + t0[1];                               /* _mm_hadd_ps(t0, t0) */
        t1[1] = t0[2] + t0[3];
        sumf = (double)(t1[0] + t1[1]);                      /* hadd(t1, t1)[0] */
    } else {
        float t3[8], t6[4], t8[2];
        for (int l = 0; l < 8; l++) t3[l] = a[l + 8] + a[l];   /* __T1 + __T2 */
        for (int l = 0; l < 4; l++) t6[l] = t3[l + 4] + t3[l]; /* __T4 + __T5 */
        t8[0] = t6[0] + t6[2];                                 /* __T6 + shuffle {2,3,0,1} */
        t8[1] = t6[1] + t6[3];
        sumf = (double)(t8[0] + t8[1]);
    }
    for (int i = np; i < n; i++) sumf += (double)(x[i] * y[i]); /* leftovers */
    return (float)sumf;
}

/* One query row: the body of ..._one_chunk for a row whose mask is 0 on keys [lo, pos]. */
static void model_row(float *out, const float *q, const void *K, const void *V, bool f16,
                      size_t kb, size_t kvd, size_t len, int D, float scale, bool prescale,
                      int epr) {
    float qv[512], kr[512], acc[512];
    for (int d = 0; d < D; d++) {
        float x = prescale ? q[d] * scale : q[d]; /* ggml_scale(Qcur, ...) in the graph */
        qv[d] = f16 ? h2f(el_fp32_to_fp16(x)) : x; /* q_to_vec_dot: fp32 -> fp16 */
        acc[d] = 0.0f;
    }
    if (prescale) scale = 1.0f; /* build_attn(..., kq_scale 1.0f) */
    float S = 0.0f, M = -INFINITY;
    for (size_t ic = 0; ic < len; ic++) {
        const size_t e = kb + ic * kvd;
        for (int d = 0; d < D; d++)
            kr[d] = f16 ? h2f(((const uint16_t *)K)[e + d]) : ((const float *)K)[e + d];
        float s = model_dot(kr, qv, D, epr);
        s = s * scale;
        const float Mold = M;
        float ms = 1.0f, vs = 1.0f;
        if (s > M) {
            M = s;
            ms = expf(Mold - M);
            for (int d = 0; d < D; d++) { /* ggml_vec_scale_f16 / _f32 */
                acc[d] = acc[d] * ms;
                if (f16) acc[d] = h2f(el_fp32_to_fp16(acc[d]));
            }
        } else {
            vs = expf(s - M);
        }
        for (int d = 0; d < D; d++) { /* ggml_vec_mad_f16 / _f32 */
            const float v = f16 ? h2f(((const uint16_t *)V)[e + d]) : ((const float *)V)[e + d];
            acc[d] = fmaf(v, vs, acc[d]);
            if (f16) acc[d] = h2f(el_fp32_to_fp16(acc[d]));
        }
        S = fmaf(S, ms, vs); /* S = S*ms + vs, contracted (-ffp-contract=fast, -mfma) */
    }
    const float S_inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (int d = 0; d < D; d++) out[d] = acc[d] * S_inv;
}

/* ---- the cases ------------------------------------------------------------------------- */

static float frand(uint32_t *s) {
    *s = *s * 1664525u + 1013904223u;
    return (float)((*s >> 8) & 0xFFFF) / 32768.0f - 1.0f;
}

typedef struct gcase {
    size_t hd, nh, nkv, pos0, n, window;
    bool prescale;
} gcase;

static void run_case(const gcase *c, bool f16, int epr, el_pool *pools, int n_pools,
                     uint32_t seed) {
    const size_t T = c->pos0 + c->n, qd = c->nh * c->hd, kvd = c->nkv * c->hd;
    float *q = malloc(c->n * qd * sizeof *q), *kf = malloc(T * kvd * sizeof *kf);
    float *vf = malloc(T * kvd * sizeof *vf), *want = malloc(c->n * qd * sizeof *want);
    float *got = malloc(c->n * qd * sizeof *got), *ex = malloc(c->n * qd * sizeof *ex);
    uint16_t *kh = malloc(T * kvd * sizeof *kh), *vh = malloc(T * kvd * sizeof *vh);
    float *att = malloc(c->nh * T * sizeof *att);
    for (size_t i = 0; i < c->n * qd; i++) q[i] = 3.0f * frand(&seed);
    for (size_t i = 0; i < T * kvd; i++) {
        kh[i] = el_fp32_to_fp16(2.0f * frand(&seed));
        vh[i] = el_fp32_to_fp16(frand(&seed));
        /* an f32 cache holds values that are not f16 (the query rounding shows) */
        kf[i] = h2f(kh[i]) + (f16 ? 0.0f : 1e-4f * frand(&seed));
        vf[i] = h2f(vh[i]);
    }
    const void *K = f16 ? (const void *)kh : (const void *)kf;
    const void *V = f16 ? (const void *)vh : (const void *)vf;
    const float scale = c->prescale ? 1.0f / sqrtf((float)c->hd) * 1.1f : 1.0f / sqrtf((float)c->hd);
    const size_t group = c->nh / c->nkv;
    for (size_t t = 0; t < c->n; t++)
        for (size_t h = 0; h < c->nh; h++) {
            const size_t pos = c->pos0 + t;
            const size_t lo = c->window && pos + 1 > c->window ? pos + 1 - c->window : 0;
            model_row(want + t * qd + h * c->hd, q + t * qd + h * c->hd, K, V, f16,
                      lo * kvd + (h / group) * c->hd, kvd, pos + 1 - lo, (int)c->hd, scale,
                      c->prescale, epr);
        }
    el_cpu_attention_kv(&pools[0], ex, q, K, V, f16 ? EL_DT_F16 : EL_DT_F32, att, T, c->n,
                        c->pos0, c->nh, c->nkv, c->hd, c->window, scale);
    for (int p = 0; p < n_pools; p++) {
        memset(got, 0xff, c->n * qd * sizeof *got);
        el_cpu_attention_ggml(&pools[p], got, q, K, V, f16 ? EL_DT_F16 : EL_DT_F32, att, T,
                              c->n, c->pos0, c->nh, c->nkv, c->hd, c->window, scale,
                              c->prescale, (unsigned)epr);
        size_t bad = 0, diff_ex = 0;
        double maxd = 0;
        for (size_t i = 0; i < c->n * qd; i++) {
            bad += memcmp(&got[i], &want[i], sizeof got[i]) != 0;
            diff_ex += got[i] != ex[i];
            double d = fabs((double)got[i] - ex[i]);
            if (d > maxd) maxd = d;
        }
        if (bad)
            fprintf(stderr, "   hd %zu heads %zu/%zu pos0 %zu n %zu window %zu prescale %d "
                    "%s, %d lanes, pool %d: %zu of %zu entries differ from the model\n", c->hd,
                    c->nh, c->nkv, c->pos0, c->n, c->window, c->prescale, f16 ? "f16" : "f32",
                    epr, p,
                    bad, c->n * qd);
        EL_CHECK(bad == 0);
        if (maxd >= 4e-3) fprintf(stderr, "   hd %zu f16 %d: max |ggml - exact| %g\n", c->hd, f16, maxd);
        EL_CHECK(maxd < 4e-3);
        if (f16 || !c->prescale) EL_CHECK(diff_ex > 0); /* the rounding is not exact's */
    }
    free(q), free(kf), free(vf), free(want), free(got), free(ex), free(kh), free(vh), free(att);
}

/* ---- 5. the K-type matrix products ------------------------------------------------------ */

static void check_kquant_type(const cJSON *meta, const char *key, el_dtype wt, el_pool *pools,
                              int np) {
    const cJSON *m = cJSON_GetObjectItem(cJSON_GetObjectItem(meta, "types"), key);
    EL_CHECK(m != NULL);
    if (!m) return;
    const size_t in = (size_t)cJSON_GetObjectItem(m, "in")->valuedouble;
    const size_t rb = (size_t)cJSON_GetObjectItem(m, "row_bytes")->valuedouble;
    /* the requantized matrices (REQUANT in the script): their own row count, and the
     * recorded input of the product whose weights they came from */
    const cJSON *own = cJSON_GetObjectItem(m, "rows"), *input = cJSON_GetObjectItem(m, "input");
    const size_t rows = (size_t)cJSON_GetObjectItem(own ? m : meta, "rows")->valuedouble;
    const char *xkey = cJSON_IsString(input) ? input->valuestring : key;
    EL_CHECK(rb == in / 256 * el_dtype_block_bytes(wt));
    char path[512], what[32];
    snprintf(path, sizeof path, "%s/tests/fixtures/ggml_ops/gemma3_kquant_%s_w.bin",
             EL_SOURCE_DIR, key);
    size_t wn = 0;
    uint8_t *w = (uint8_t *)el_test_read_file(path, &wn);
    EL_CHECK(w != NULL && wn == rows * rb);
    const cJSON *ns = cJSON_GetObjectItem(meta, "ns"), *nj;
    const size_t nmax = (size_t)cJSON_GetArrayItem(ns, cJSON_GetArraySize(ns) - 1)->valuedouble;
    snprintf(what, sizeof what, "%s_in", xkey);
    float *x = fx_read("gemma3_kquant", what, nmax * in); /* a batch of n: its first n rows */
    cJSON_ArrayForEach(nj, ns) {
        const size_t n = (size_t)nj->valuedouble;
        EL_CHECK(n <= nmax);
        if (n > nmax) break;
        snprintf(what, sizeof what, "%s_out%zu", key, n);
        float *want = fx_read("gemma3_kquant", what, n * rows);
        float *y = malloc(n * rows * sizeof *y);
        if (w && wn == rows * rb && x && want && y) {
            el_cpu_matmul_q(&pools[0], y, rows, x, w, wt, n, in, rows, false);
            const size_t diff_exact = fx_diff(y, want, n * rows);
            for (int p = 0; p < np; p++) {
                memset(y, 0xff, n * rows * sizeof *y);
                el_cpu_matmul_q(&pools[p], y, rows, x, w, wt, n, in, rows, true);
                fx_check("gemma3 layer 0", what, fx_diff(y, want, n * rows), diff_exact,
                         n * rows);
            }
        }
        free(want), free(y);
    }
    free(x), free(w);
}

/* End to end: the small K-quant Llama fixtures (tests/fixtures/gguf/llama_kq_<ftype>.gguf:
 * Q5_K or repacked Q4_K matrices and Q6_K ones, 2 layers) decode the first n recorded ids in
 * one batch: the last token's logits with --numerics ggml equal llama.cpp's (recorded by
 * scripts/ref_ggml_kquant.py from its AVX-512 build, so computed as that build sums whatever
 * this CPU: el_cpu_ggml_width_force 16) bit for bit, exact numerics' differ. */
static void run_kquant_e2e(const char *ft, const cJSON *meta) {
    char path[512], what[64];
    snprintf(path, sizeof path, "%s/tests/fixtures/gguf/llama_kq_%s.gguf", EL_SOURCE_DIR, ft);
    el_model *m = NULL;
    el_arena *a = NULL;
    el_session *s = open_session(path, &m, &a);
    el_cpu_ggml_width_force = 16;
    const cJSON *jids = cJSON_GetObjectItem(meta, "ids"), *nj;
    int32_t ids[32];
    size_t nid = 0;
    cJSON_ArrayForEach(nj, jids) if (nid < 32) ids[nid++] = (int32_t)nj->valuedouble;
    const size_t V = (size_t)cJSON_GetObjectItem(meta, "vocab")->valuedouble;
    cJSON_ArrayForEach(nj, cJSON_GetObjectItem(meta, "ns")) {
        const size_t n = (size_t)nj->valuedouble;
        snprintf(what, sizeof what, "%s_logits%zu", ft, n);
        float *want = fx_read("llama_kq", what, V), *ex = malloc(V * sizeof *ex);
        EL_CHECK(n <= nid);
        if (!s || !want || !ex || n > nid || el_session_vocab(s) != V) {
            EL_CHECK(s == NULL || el_session_vocab(s) == V);
            free(want), free(ex);
            continue;
        }
        const float *l = NULL;
        el_session_reset(s);
        EL_CHECK_OK(el_session_set_numerics(s, EL_NUMERICS_EXACT));
        EL_CHECK_OK(el_session_forward(s, ids, n, &l));
        if (l) memcpy(ex, l, V * sizeof *ex);
        el_session_reset(s);
        EL_CHECK_OK(el_session_set_numerics(s, EL_NUMERICS_GGML));
        l = NULL;
        EL_CHECK_OK(el_session_forward(s, ids, n, &l));
        if (l) fx_check("llama_kq", what, fx_diff(l, want, V), fx_diff(ex, want, V), V);
        free(want), free(ex);
    }
    el_cpu_ggml_width_force = 0;
    if (s) el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
}

static void check_kquant_e2e(void) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/ggml_ops/llama_kq_logits.json",
             EL_SOURCE_DIR);
    char *text = el_test_read_file(path, NULL);
    cJSON *meta = text ? cJSON_Parse(text) : NULL;
    free(text);
    EL_CHECK(meta != NULL);
    if (!meta) return;
    const cJSON *fj;
    cJSON_ArrayForEach(fj, cJSON_GetObjectItem(meta, "models"))
        if (cJSON_IsString(fj)) run_kquant_e2e(fj->valuestring, meta);
    cJSON_Delete(meta);
}

static void check_kquant(el_pool *pools, int np) {
    char path[512];
    snprintf(path, sizeof path, "%s/tests/fixtures/ggml_ops/gemma3_kquant.json", EL_SOURCE_DIR);
    char *text = el_test_read_file(path, NULL);
    cJSON *meta = text ? cJSON_Parse(text) : NULL;
    free(text);
    EL_CHECK(meta != NULL);
    if (!meta) return;
    check_kquant_type(meta, "q4_k", EL_DT_Q4_K, pools, np);
    check_kquant_type(meta, "q6_k", EL_DT_Q6_K, pools, np);
    check_kquant_type(meta, "q5_k", EL_DT_Q5_K, pools, np);   /* never repacked on x86 */
    check_kquant_type(meta, "q4_k61", EL_DT_Q4_K, pools, np); /* 61 rows: not repacked */
    cJSON_Delete(meta);
}

int main(void) {
    el_pool pools[4];
    int np = 0;
    el_isa isas[2] = {EL_ISA_PORTABLE, el_cpu_isa_best()};
    for (int i = 0; i < (isas[1] == EL_ISA_PORTABLE ? 1 : 2); i++)
        for (unsigned th = 1; th <= 3; th += 2) EL_CHECK_OK(el_pool_init(&pools[np++], th, isas[i]));
    const gcase cases[] = {
        {64, 9, 3, 20, 1, 0, false},  /* SmolLM2's shape, decode */
        {64, 9, 3, 15, 5, 0, false},  /* prefill rows after a cache */
        {256, 4, 1, 30, 2, 0, true},  /* Gemma 3 270M's: prescaled query */
        {256, 4, 1, 30, 3, 8, true},  /* its sliding layers */
        {40, 2, 2, 7, 3, 0, false},   /* a tail of 8 past 32 (AVX2), of 40 (AVX-512) */
        {96, 2, 1, 6, 2, 0, false},   /* whole steps of 32, a tail of 32 past 64 */
        {12, 3, 1, 9, 2, 4, false},   /* a tail that is not a whole vector */
    };
    uint32_t seed = 7;
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        for (int f = 0; f < 4; f++) run_case(&cases[i], f & 1, f & 2 ? 16 : 8, pools, np, seed++);
    const fixture fx[] = {
        {"smollm2_q4_1", 100000.0f, true, false, false},
        {"gemma3_270m_q4_k_m", 10000.0f, false, true, true},
    };
    for (size_t i = 0; i < sizeof fx / sizeof *fx; i++)
        for (int p = 0; p < np; p++) run_fixture(&fx[i], &pools[p]);
    check_swiglu();
    check_kquant(pools, np);
    check_kquant_e2e();
    check_option();
    for (int i = 0; i < np; i++) el_pool_deinit(&pools[i]);
    return el_test_finish("test_ggml_ops");
}
