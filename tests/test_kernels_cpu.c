/* test_kernels_cpu.c - every CPU kernel against a naive double-precision reference written
 * here, on odd sizes (tails of the vector loops), for the portable path and the vector path
 * of this build (AVX2 on x86-64 CPUs that have it, NEON on aarch64) and for pools of 1 and 2
 * threads; plus the thread pool itself. */
// ctest-labels: kernels
#include "kernels/cpu/cpu.h"
#include "kernels/fp16.h"
#include "tests/support/el_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { return el_test_frand(&g_rng); }
static void fill(float *x, size_t n) {
    for (size_t i = 0; i < n; i++) x[i] = frand();
}

/* Weight element i as stored (exactly what the kernels see). */
static double wval(const void *w, el_dtype wt, size_t i) {
    if (wt == EL_DT_F16) return el_fp16_to_fp32(((const uint16_t *)w)[i]);
    if (wt == EL_DT_BF16) return el_bf16_to_fp32(((const uint16_t *)w)[i]);
    return ((const float *)w)[i];
}

static void *make_weights(const float *src, size_t n, el_dtype wt) {
    if (wt == EL_DT_F32) {
        float *w = malloc(n * 4);
        memcpy(w, src, n * 4);
        return w;
    }
    uint16_t *w = malloc(n * 2);
    for (size_t i = 0; i < n; i++)
        w[i] = wt == EL_DT_F16 ? el_fp32_to_fp16(src[i]) : el_fp32_to_bf16(src[i]);
    return w;
}

/* |got - want| <= 1e-5 * scale + 1e-6, scale = the sum of |terms| that made want. */
static bool close_to(double got, double want, double scale) {
    return fabs(got - want) <= 1e-5 * scale + 1e-6;
}

static el_isa g_isas[2];
static int g_n_isas;

/* ---- thread pool ---------------------------------------------------------------------- */

typedef struct hit_ctx {
    _Atomic unsigned hits[4];
    _Atomic unsigned nth_seen;
} hit_ctx;

static void hit_fn(void *ctx, unsigned ith, unsigned nth) {
    hit_ctx *c = ctx;
    atomic_fetch_add(&c->hits[ith], 1);
    atomic_store(&c->nth_seen, nth);
}

static void test_pool(void) {
    for (unsigned nt = 1; nt <= 3; nt++) {
        el_pool p;
        EL_CHECK_OK(el_pool_init(&p, nt, EL_ISA_PORTABLE));
        EL_CHECK(p.n_threads == nt);
        hit_ctx c;
        memset(&c, 0, sizeof c);
        for (int rep = 0; rep < 500; rep++) el_pool_run(&p, hit_fn, &c);
        bool ok = atomic_load(&c.nth_seen) == nt;
        for (unsigned i = 0; i < 4; i++) ok = ok && atomic_load(&c.hits[i]) == (i < nt ? 500u : 0u);
        EL_CHECK(ok);
        /* Small work runs on the calling thread alone. */
        memset(&c, 0, sizeof c);
        el_pool_run_sized(&p, 10, hit_fn, &c);
        EL_CHECK(atomic_load(&c.hits[0]) == 1 && atomic_load(&c.nth_seen) == 1);
        el_pool_deinit(&p);
    }
    el_pool p;
    EL_CHECK_STATUS(el_pool_init(&p, EL_POOL_MAX_THREADS + 1, EL_ISA_PORTABLE), EL_E_USAGE);
    /* The other architecture's vector path, and a value that is no ISA, are refused. */
    el_isa foreign = el_cpu_isa_best() == EL_ISA_NEON ? EL_ISA_AVX2 : EL_ISA_NEON;
    EL_CHECK_STATUS(el_pool_init(&p, 1, foreign), EL_E_USAGE);
    EL_CHECK_STATUS(el_pool_init(&p, 1, (el_isa)99), EL_E_USAGE);
    el_pool_deinit(NULL);
    /* A pool whose workers went to sleep wakes up for the next job. */
    EL_CHECK_OK(el_pool_init(&p, 2, EL_ISA_PORTABLE));
    hit_ctx c;
    memset(&c, 0, sizeof c);
    el_pool_run(&p, hit_fn, &c);
    struct timespec ts = {0, 20 * 1000 * 1000};
    nanosleep(&ts, NULL);
    el_pool_run(&p, hit_fn, &c);
    EL_CHECK(atomic_load(&c.hits[1]) == 2);
    el_pool_deinit(&p);
}

/* ---- matmul --------------------------------------------------------------------------- */

static void test_matmul_case(el_pool *p, el_dtype wt, size_t n, size_t in, size_t out) {
    float *src = malloc(in * out * 4), *x = malloc(n * in * 4);
    size_t ldy = out + 3;
    float *y = malloc(n * ldy * 4);
    fill(src, in * out);
    fill(x, n * in);
    void *w = make_weights(src, in * out, wt);
    for (size_t i = 0; i < n * ldy; i++) y[i] = 12345.0f; /* padding must stay untouched */
    el_cpu_matmul(p, y, ldy, x, w, wt, n, in, out);
    int bad = 0;
    for (size_t t = 0; t < n; t++) {
        for (size_t r = 0; r < out; r++) {
            double want = 0, scale = 0;
            for (size_t i = 0; i < in; i++) {
                double term = wval(w, wt, r * in + i) * x[t * in + i];
                want += term;
                scale += fabs(term);
            }
            if (!close_to(y[t * ldy + r], want, scale)) bad++;
        }
        for (size_t r = out; r < ldy; r++)
            if (y[t * ldy + r] != 12345.0f) bad++;
    }
    if (bad)
        fprintf(stderr, "matmul %s isa %s threads %u n %zu in %zu out %zu: %d bad\n",
                el_dtype_name(wt), el_isa_name(p->isa), p->n_threads, n, in, out, bad);
    EL_CHECK(bad == 0);
    free(src);
    free(x);
    free(y);
    free(w);
}

static void test_matmul(el_pool *p) {
    static const el_dtype dts[] = {EL_DT_F32, EL_DT_F16, EL_DT_BF16};
    /* Sizes: below and above the vector widths, tails of 1..15 inputs and 1..3 rows, and
     * one case big enough to be split across threads (>= EL_POOL_MIN_WORK). */
    static const size_t cases[][3] = {
        {1, 1, 1}, {1, 7, 3}, {1, 8, 4}, {1, 16, 5}, {2, 17, 6}, {1, 64, 64},
        {1, 172, 64}, {3, 31, 9}, {5, 64, 172}, {4, 515, 203}, {1, 1031, 301},
    };
    for (size_t d = 0; d < 3; d++)
        for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++)
            test_matmul_case(p, dts[d], cases[c][0], cases[c][1], cases[c][2]);
}

/* ---- small kernels -------------------------------------------------------------------- */

static void test_rmsnorm(el_pool *p) {
    static const size_t dims[] = {1, 5, 8, 17, 64, 100};
    for (size_t d = 0; d < sizeof dims / sizeof dims[0]; d++) {
        size_t dim = dims[d], n = 3;
        float x[300], wsrc[100], out[300];
        fill(x, n * dim);
        fill(wsrc, dim);
        for (int f16 = 0; f16 < 2; f16++) {
            el_dtype wt = f16 ? EL_DT_F16 : EL_DT_F32;
            void *w = make_weights(wsrc, dim, wt);
            el_cpu_rmsnorm(p, out, x, w, wt, n, dim, 1e-5f);
            int bad = 0;
            for (size_t t = 0; t < n; t++) {
                double ss = 0;
                for (size_t i = 0; i < dim; i++) ss += (double)x[t * dim + i] * x[t * dim + i];
                double inv = 1.0 / sqrt(ss / (double)dim + 1e-5);
                for (size_t i = 0; i < dim; i++) {
                    double want = wval(w, wt, i) * x[t * dim + i] * inv;
                    if (!close_to(out[t * dim + i], want, fabs(want) * 4)) bad++;
                }
            }
            EL_CHECK(bad == 0);
            /* In place gives the same as out of place. */
            float y[300];
            memcpy(y, x, sizeof y);
            el_cpu_rmsnorm(p, y, y, w, wt, n, dim, 1e-5f);
            EL_CHECK(memcmp(y, out, n * dim * 4) == 0);
            /* Gemma's (1 + w). */
            el_cpu_rmsnorm_off(p, out, x, w, wt, n, dim, 1e-5f, 1.0f);
            bad = 0;
            for (size_t t = 0; t < n; t++) {
                double ss = 0;
                for (size_t i = 0; i < dim; i++) ss += (double)x[t * dim + i] * x[t * dim + i];
                double inv = 1.0 / sqrt(ss / (double)dim + 1e-5);
                for (size_t i = 0; i < dim; i++) {
                    double want = (1.0 + wval(w, wt, i)) * x[t * dim + i] * inv;
                    if (!close_to(out[t * dim + i], want, fabs(want) * 4)) bad++;
                }
            }
            EL_CHECK(bad == 0);
            free(w);
        }
    }
}

static void rope_table(size_t pos, size_t hd, double theta, float *c, float *s) {
    for (size_t i = 0; i < hd / 2; i++) {
        double a = (double)pos * pow(theta, -2.0 * (double)i / (double)hd);
        c[i] = (float)cos(a);
        s[i] = (float)sin(a);
    }
}

static void test_rope(void) {
    static const size_t hds[] = {2, 8, 14, 64};
    for (size_t k = 0; k < sizeof hds / sizeof hds[0]; k++) {
        size_t hd = hds[k], nh = 3, half = hd / 2;
        float c[32], s[32], x[192], a[192], b[192];
        rope_table(37, hd, 10000.0, c, s);
        fill(x, nh * hd);
        /* Interleaved against the formula. */
        memcpy(a, x, sizeof a);
        el_cpu_rope(a, nh, hd, c, s, true);
        int bad = 0;
        for (size_t h = 0; h < nh; h++)
            for (size_t i = 0; i < half; i++) {
                double x0 = x[h * hd + 2 * i], x1 = x[h * hd + 2 * i + 1];
                if (!close_to(a[h * hd + 2 * i], x0 * c[i] - x1 * s[i], 2)) bad++;
                if (!close_to(a[h * hd + 2 * i + 1], x0 * s[i] + x1 * c[i], 2)) bad++;
            }
        EL_CHECK(bad == 0);
        /* Rotate-half of a vector permuted the way HF orders q/k rows equals the permuted
         * interleaved result: the two layouts describe the same rotation. */
        for (size_t h = 0; h < nh; h++)
            for (size_t i = 0; i < half; i++) {
                b[h * hd + i] = x[h * hd + 2 * i];
                b[h * hd + half + i] = x[h * hd + 2 * i + 1];
            }
        el_cpu_rope(b, nh, hd, c, s, false);
        bad = 0;
        for (size_t h = 0; h < nh; h++)
            for (size_t i = 0; i < half; i++) {
                if (b[h * hd + i] != a[h * hd + 2 * i]) bad++;
                if (b[h * hd + half + i] != a[h * hd + 2 * i + 1]) bad++;
            }
        EL_CHECK(bad == 0);
    }
    /* Position 0 is the identity. */
    float c[4], s[4], x[8], y[8];
    rope_table(0, 8, 500000.0, c, s);
    fill(x, 8);
    memcpy(y, x, sizeof y);
    el_cpu_rope(y, 1, 8, c, s, false);
    EL_CHECK(memcmp(x, y, sizeof x) == 0);
}

static void test_elementwise(el_pool *p) {
    float x[77], y[77], z[77];
    fill(x, 77);
    for (size_t i = 0; i < 77; i++) x[i] *= 20; /* large logits: max-subtraction matters */
    memcpy(y, x, sizeof y);
    el_cpu_softmax(p, y, 77);
    double mx = x[0], sum = 0, tot = 0;
    /* Not fmax: gcc 12 for aarch64 has an internal compiler error vectorising an fmax
     * reduction over floats widened to double (the cross build in scripts/test.sh). */
    for (size_t i = 1; i < 77; i++) mx = x[i] > mx ? x[i] : mx;
    for (size_t i = 0; i < 77; i++) sum += exp((double)x[i] - mx);
    int bad = 0;
    for (size_t i = 0; i < 77; i++) {
        if (!close_to(y[i], exp((double)x[i] - mx) / sum, 1)) bad++;
        tot += y[i];
    }
    EL_CHECK(bad == 0);
    EL_CHECK(fabs(tot - 1.0) < 1e-5);
    for (size_t i = 0; i < 77; i++) y[i] = x[i] = (float)i * -3.0f; /* down to -228 */
    el_cpu_softmax(p, y, 77);
    mx = 0, sum = 0;
    for (size_t i = 0; i < 77; i++) sum += exp((double)x[i]);
    bad = 0;
    for (size_t i = 0; i < 77; i++)
        if (!(fabs(y[i] - exp((double)x[i]) / sum) <= 1e-6)) bad++;
    EL_CHECK(bad == 0);
    float one = 3.0f;
    el_cpu_softmax(p, &one, 1);
    EL_CHECK(one == 1.0f);

    fill(x, 77);
    fill(z, 77);
    memcpy(y, x, sizeof y);
    el_cpu_swiglu(p, y, z, 77);
    bad = 0;
    for (size_t i = 0; i < 77; i++) {
        double g = x[i], want = g / (1.0 + exp(-g)) * z[i];
        if (!close_to(y[i], want, 1)) bad++;
    }
    EL_CHECK(bad == 0);

    /* Large |x|: the vector exp clamps instead of overflowing; silu(-90) ~ 0, silu(90) = 90. */
    for (size_t i = 0; i < 77; i++) y[i] = x[i] = (float)((double)i - 38) * 2.5f;
    for (size_t i = 0; i < 77; i++) z[i] = 1.0f;
    el_cpu_swiglu(p, y, z, 77);
    bad = 0;
    for (size_t i = 0; i < 77; i++) {
        double g = x[i], want = g / (1.0 + exp(-g));
        if (!close_to(y[i], want, fabs(want) + 1e-30) || y[i] != y[i]) bad++;
    }
    EL_CHECK(bad == 0);
    fill(x, 77);
    fill(z, 77);
    memcpy(y, x, sizeof y);
    el_cpu_add(p, y, z, 77);
    bad = 0;
    for (size_t i = 0; i < 77; i++)
        if (y[i] != x[i] + z[i]) bad++;
    EL_CHECK(bad == 0);
}

static void test_embed_argmax(void) {
    float src[5 * 9], out[9];
    fill(src, 45);
    for (int f = 0; f < 3; f++) {
        el_dtype dt = f == 0 ? EL_DT_F32 : f == 1 ? EL_DT_F16 : EL_DT_BF16;
        void *w = make_weights(src, 45, dt);
        el_cpu_embed(out, w, dt, 9, 3);
        bool ok = true;
        for (size_t i = 0; i < 9; i++) ok = ok && out[i] == (float)wval(w, dt, 27 + i);
        EL_CHECK(ok);
        free(w);
    }
    float a[6] = {1, 5, -2, 5, 4, 0};
    EL_CHECK(el_cpu_argmax(a, 6) == 1); /* first of the ties */
    float b[4] = {NAN, -3, NAN, -1};
    EL_CHECK(el_cpu_argmax(b, 4) == 3);
    float c[1] = {7};
    EL_CHECK(el_cpu_argmax(c, 1) == 0);
    /* Past the vector width: ties, NaN and the maximum in the vector part and in the tail. */
    float d[37];
    for (size_t i = 0; i < 37; i++) d[i] = -(float)i;
    d[0] = NAN;
    d[5] = NAN;
    EL_CHECK(el_cpu_argmax(d, 37) == 1);
    d[20] = 3;
    d[9] = 3;
    EL_CHECK(el_cpu_argmax(d, 37) == 9);
    d[35] = 4;
    EL_CHECK(el_cpu_argmax(d, 37) == 35);
    for (size_t i = 0; i < 37; i++) d[i] = NAN;
    EL_CHECK(el_cpu_argmax(d, 37) == 0);
    d[36] = -INFINITY;
    EL_CHECK(el_cpu_argmax(d, 37) == 36);
}

/* Naive causal GQA attention in double. */
/* Naive causal GQA attention in double; window > 0: keys within window positions of the
 * query only; scale 0: 1 / sqrt(head_dim). */
static void ref_attention(double *out, const float *q, const float *k, const float *v,
                          size_t n, size_t pos0, size_t nh, size_t nkv, size_t hd,
                          size_t window, double scale) {
    size_t qd = nh * hd, kvd = nkv * hd;
    double sc[512];
    if (scale == 0) scale = 1.0 / sqrt((double)hd);
    for (size_t t = 0; t < n; t++)
        for (size_t h = 0; h < nh; h++) {
            size_t kh = h / (nh / nkv), len = pos0 + t + 1;
            size_t lo = window && len > window ? len - window : 0;
            double mx = -1e300, sum = 0;
            for (size_t s = lo; s < len; s++) {
                double d = 0;
                for (size_t i = 0; i < hd; i++)
                    d += (double)q[t * qd + h * hd + i] * k[s * kvd + kh * hd + i];
                sc[s] = d * scale;
                mx = fmax(mx, sc[s]);
            }
            for (size_t s = lo; s < len; s++) sum += (sc[s] = exp(sc[s] - mx));
            for (size_t i = 0; i < hd; i++) {
                double o = 0;
                for (size_t s = lo; s < len; s++) o += sc[s] / sum * v[s * kvd + kh * hd + i];
                out[t * qd + h * hd + i] = o;
            }
        }
}

static void test_attention(el_pool *p) {
    /* (n queries, pos0, heads, kv heads, head_dim); the last is big enough to be split. */
    static const size_t cases[][5] = {
        {1, 0, 1, 1, 2}, {1, 9, 8, 4, 8}, {5, 0, 8, 4, 8}, {3, 4, 6, 2, 12}, {2, 30, 4, 4, 17},
        {1, 2, 2, 1, 16}, {2, 5, 4, 2, 24}, {3, 11, 6, 3, 40}, {1, 6, 2, 2, 8},
        {7, 100, 8, 2, 64},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        size_t n = cases[c][0], pos0 = cases[c][1], nh = cases[c][2], nkv = cases[c][3];
        size_t hd = cases[c][4], len = pos0 + n, stride = len + 5;
        float *q = malloc(n * nh * hd * 4), *k = malloc(len * nkv * hd * 4);
        float *v = malloc(len * nkv * hd * 4), *out = malloc(n * nh * hd * 4);
        float *att = malloc(nh * stride * 4);
        double *want = malloc(n * nh * hd * 8);
        fill(q, n * nh * hd);
        fill(k, len * nkv * hd);
        fill(v, len * nkv * hd);
        el_cpu_attention(p, out, q, k, v, att, stride, n, pos0, nh, nkv, hd);
        ref_attention(want, q, k, v, n, pos0, nh, nkv, hd, 0, 0);
        int bad = 0;
        for (size_t i = 0; i < n * nh * hd; i++)
            if (!close_to(out[i], want[i], 4)) bad++;
        if (bad)
            fprintf(stderr, "attention case %zu isa %s threads %u: %d bad\n", c,
                    el_isa_name(p->isa), p->n_threads, bad);
        EL_CHECK(bad == 0);
        /* Sliding windows (shorter than, equal to and longer than the context) and a
         * score scale other than 1 / sqrt(head_dim) (Gemma's query_pre_attn_scalar). */
        static const size_t windows[] = {1, 3, 7, 1000};
        for (size_t wi = 0; wi < 4; wi++) {
            el_cpu_attention_ex(p, out, q, k, v, att, stride, n, pos0, nh, nkv, hd, windows[wi],
                                0.2f);
            ref_attention(want, q, k, v, n, pos0, nh, nkv, hd, windows[wi], (double)0.2f);
            bad = 0;
            for (size_t i = 0; i < n * nh * hd; i++)
                if (!close_to(out[i], want[i], 4)) bad++;
            if (bad)
                fprintf(stderr, "attention case %zu window %zu isa %s: %d bad\n", c,
                        windows[wi], el_isa_name(p->isa), bad);
            EL_CHECK(bad == 0);
        }
        free(q);
        free(k);
        free(v);
        free(out);
        free(att);
        free(want);
    }
}

/* LayerNorm against a double-precision reference (including a row with a large mean,
 * where a one-pass variance would cancel), GELU both ways against libm, bias adds. */
static void test_layernorm_gelu(el_pool *p) {
    enum { N = 3, D = 67 };
    float x[N * D], src_w[D], src_b[D], out[N * D];
    fill(x, N * D);
    for (size_t i = 0; i < D; i++) x[2 * D + i] = 1000.0f + x[2 * D + i];
    fill(src_w, D);
    fill(src_b, D);
    for (int f = 0; f < 3; f++) {
        el_dtype dt = f == 0 ? EL_DT_F32 : f == 1 ? EL_DT_F16 : EL_DT_BF16;
        void *w = make_weights(src_w, D, dt), *b = make_weights(src_b, D, dt);
        for (int with_b = 0; with_b < 2; with_b++) {
            el_cpu_layernorm(p, out, x, w, with_b ? b : NULL, dt, N, D, 1e-5f);
            int bad = 0;
            for (size_t t = 0; t < N; t++) {
                double mean = 0, var = 0;
                for (size_t i = 0; i < D; i++) mean += x[t * D + i];
                mean /= D;
                for (size_t i = 0; i < D; i++) var += (x[t * D + i] - mean) * (x[t * D + i] - mean);
                double inv = 1.0 / sqrt(var / D + 1e-5);
                for (size_t i = 0; i < D; i++) {
                    double want = (x[t * D + i] - mean) * inv * wval(w, dt, i) +
                                  (with_b ? wval(b, dt, i) : 0.0);
                    if (fabs(out[t * D + i] - want) > 1e-4 * (1 + fabs(want))) bad++;
                }
            }
            EL_CHECK(bad == 0);
        }
        float y[2 * 5];
        for (size_t i = 0; i < 10; i++) y[i] = (float)i;
        el_cpu_add_bias(y, 5, b, dt, 2, 4); /* the 5th column is padding: untouched */
        bool ok = y[4] == 4.0f && y[9] == 9.0f;
        for (size_t t = 0; t < 2; t++)
            for (size_t i = 0; i < 4; i++)
                ok = ok && y[t * 5 + i] == (float)(t * 5 + i) + (float)wval(b, dt, i);
        EL_CHECK(ok);
        free(w);
        free(b);
    }
    float g[41], h[41];
    for (size_t i = 0; i < 41; i++) g[i] = h[i] = (float)((double)i - 20) * 0.37f;
    el_cpu_gelu_tanh(p, g, 41);
    el_cpu_gelu_erf(p, h, 41);
    int bad = 0;
    for (size_t i = 0; i < 41; i++) {
        double v = ((double)i - 20) * 0.37f;
        double wt = 0.5 * v * (1 + tanh(sqrt(2 / M_PI) * (v + 0.044715 * v * v * v)));
        double we = 0.5 * v * (1 + erf(v / sqrt(2.0)));
        if (fabs(g[i] - wt) > 1e-6 * (1 + fabs(wt)) || fabs(h[i] - we) > 1e-6 * (1 + fabs(we)))
            bad++;
    }
    EL_CHECK(bad == 0);
    /* The two differ (by up to ~1e-3 near |x| = 2): the family must pick the right one. */
    EL_CHECK(fabs(g[15] - h[15]) > 1e-5);
}

int main(void) {
    test_pool();
    test_rope();
    test_embed_argmax();
    g_isas[g_n_isas++] = EL_ISA_PORTABLE;
    if (el_cpu_isa_best() != EL_ISA_PORTABLE)
        g_isas[g_n_isas++] = el_cpu_isa_best(); /* AVX2 (x86-64) or NEON (aarch64) */
    else
        fprintf(stderr, "note: no vector path for this CPU (x86-64 without AVX2/FMA/F16C): "
                        "only the portable path is tested\n");
    fprintf(stderr, "test_kernels_cpu: paths tested:");
    for (int i = 0; i < g_n_isas; i++) fprintf(stderr, " %s", el_isa_name(g_isas[i]));
    fprintf(stderr, "\n");
    for (int i = 0; i < g_n_isas; i++)
        for (unsigned nt = 1; nt <= 2; nt++) {
            el_pool p;
            EL_CHECK_OK(el_pool_init(&p, nt, g_isas[i]));
            test_matmul(&p);
            test_rmsnorm(&p);
            test_layernorm_gelu(&p);
            test_elementwise(&p);
            test_attention(&p);
            el_pool_deinit(&p);
        }
    return el_test_finish("test_kernels_cpu");
}
