/* test_bert_attention.c - el_cpu_attention_bidir and el_cpu_gelu_par against plain double
 * references: a padded [batch, seq] layout whose padding rows hold NaN (any read of them
 * would poison the result, and any write would change them), a packed layout, out == q,
 * head sizes that do and do not fill the AVX2 registers, the portable and AVX2 paths,
 * 1 to 3 threads. */
// ctest-labels: bert;kernels
#include "tests/support/el_test.h"

#include "kernels/cpu/cpu.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t g_rng = 88172645463325252ull;
static float frand(void) {
    return (float)((el_test_xorshift64(&g_rng) >> 11) * (1.0 / 9007199254740992.0)) * 2.0f - 1.0f;
}

/* softmax(q k^T / sqrt(hd)) v for one sequence, in double. */
static void reference(double *out, const float *q, const float *k, const float *v, size_t ld,
                      size_t r0, size_t len, size_t n_heads, size_t hd) {
    double sc[64];
    for (size_t h = 0; h < n_heads; h++)
        for (size_t t = 0; t < len; t++) {
            double mx = -INFINITY, sum = 0;
            for (size_t s = 0; s < len; s++) {
                double d = 0;
                for (size_t i = 0; i < hd; i++)
                    d += (double)q[(r0 + t) * ld + h * hd + i] * k[(r0 + s) * ld + h * hd + i];
                sc[s] = d / sqrt((double)hd);
                if (sc[s] > mx) mx = sc[s];
            }
            for (size_t s = 0; s < len; s++) sum += sc[s] = exp(sc[s] - mx);
            for (size_t i = 0; i < hd; i++) {
                double o = 0;
                for (size_t s = 0; s < len; s++) o += sc[s] / sum * v[(r0 + s) * ld + h * hd + i];
                out[(t * n_heads + h) * hd + i] = o;
            }
        }
}

static void check_layout(el_pool *p, size_t n_heads, size_t hd, bool packed, bool in_place) {
    enum { B = 4, S = 37 };
    static const uint32_t lengths[B] = {37, 1, 20, 9};
    uint32_t starts[B];
    size_t rows = 0;
    for (size_t b = 0; b < B; b++) {
        starts[b] = packed ? (uint32_t)rows : (uint32_t)(b * S);
        rows = packed ? rows + lengths[b] : (b + 1) * S;
    }
    const size_t ld = n_heads * hd + 3; /* a row stride wider than the heads */
    float *q = malloc(rows * ld * sizeof *q), *k = malloc(rows * ld * sizeof *k);
    float *v = malloc(rows * ld * sizeof *v), *out = malloc(rows * ld * sizeof *out);
    float *att = malloc(B * n_heads * S * sizeof *att);
    double *want = malloc(S * n_heads * hd * sizeof *want);
    for (size_t i = 0; i < rows * ld; i++) {
        q[i] = 2 * frand();
        k[i] = 2 * frand();
        v[i] = frand();
        out[i] = -7.0f;
    }
    /* Padding rows: NaN in q, k and v; their out rows must stay untouched. */
    for (size_t b = 0; !packed && b < B; b++)
        for (size_t r = starts[b] + lengths[b]; r < starts[b] + S; r++)
            for (size_t i = 0; i < ld; i++) q[r * ld + i] = k[r * ld + i] = v[r * ld + i] = NAN;
    float *qc = malloc(rows * ld * sizeof *qc);
    memcpy(qc, q, rows * ld * sizeof *q);
    float *dst = in_place ? q : out;
    el_cpu_attention_bidir(p, dst, in_place ? q : qc, k, v, ld, starts, lengths, B, n_heads, hd,
                           att, S);
    double worst = 0;
    bool pad_ok = true, nan_free = true;
    for (size_t b = 0; b < B; b++) {
        reference(want, qc, k, v, ld, starts[b], lengths[b], n_heads, hd);
        for (size_t t = 0; t < lengths[b]; t++)
            for (size_t h = 0; h < n_heads; h++)
                for (size_t i = 0; i < hd; i++) {
                    float got = dst[(starts[b] + t) * ld + h * hd + i];
                    if (isnan(got)) nan_free = false;
                    double d = fabs(got - want[(t * n_heads + h) * hd + i]);
                    if (d > worst) worst = d;
                }
        for (size_t r = starts[b] + lengths[b]; !packed && r < starts[b] + S; r++)
            for (size_t i = 0; i < n_heads * hd; i++)
                if (in_place ? !isnan(dst[r * ld + i]) : dst[r * ld + i] != -7.0f) pad_ok = false;
    }
    /* the 3 floats past the heads in each row are never written */
    for (size_t r = 0; r < rows && !in_place; r++)
        for (size_t i = n_heads * hd; i < ld; i++)
            if (out[r * ld + i] != -7.0f) pad_ok = false;
    fprintf(stderr, "  %s, %u thread(s), heads %zu x %zu, %s%s: max |diff| %.3g\n",
            el_isa_name(p->isa), p->n_threads, n_heads, hd, packed ? "packed" : "padded",
            in_place ? ", out == q" : "", worst);
    EL_CHECK(nan_free);
    EL_CHECK(worst < 2e-6);
    EL_CHECK(pad_ok);
    free(q);
    free(qc);
    free(k);
    free(v);
    free(out);
    free(att);
    free(want);
}

static void check_gelu(el_pool *p) {
    /* A long array split across the threads equals the serial kernels of ops.c. */
    enum { N = 100003 };
    float *x = malloc(N * sizeof *x), *y = malloc(N * sizeof *y);
    float *xs = malloc(N * sizeof *xs), *ys = malloc(N * sizeof *ys);
    for (size_t i = 0; i < N; i++) x[i] = y[i] = xs[i] = ys[i] = 8.0f * frand();
    el_cpu_gelu_par(p, x, N, false);
    el_cpu_gelu_par(p, y, N, true);
    el_cpu_gelu_erf(p, xs, N);
    el_cpu_gelu_tanh(p, ys, N);
    EL_CHECK(!memcmp(x, xs, N * sizeof *x) && !memcmp(y, ys, N * sizeof *y));
    free(x);
    free(y);
    free(xs);
    free(ys);
    double we = 0, wt = 0;
    /* Against double formulas on known points. */
    static const float pts[] = {-6.0f, -3.0f, -1.0f, -0.5f, 0.0f, 0.25f, 1.0f, 2.5f, 7.0f};
    float a[9], b[9];
    memcpy(a, pts, sizeof a);
    memcpy(b, pts, sizeof b);
    el_cpu_gelu_par(p, a, 9, false);
    el_cpu_gelu_par(p, b, 9, true);
    for (size_t i = 0; i < 9; i++) {
        double xv = pts[i];
        double e = 0.5 * xv * (1 + erf(xv / sqrt(2.0)));
        double t = 0.5 * xv * (1 + tanh(sqrt(2 / M_PI) * (xv + 0.044715 * xv * xv * xv)));
        we = fmax(we, fabs(a[i] - e));
        wt = fmax(wt, fabs(b[i] - t));
    }
    EL_CHECK(we < 1e-6 && wt < 1e-6);
    /* The two forms differ (so the flag is honoured). */
    EL_CHECK(fabsf(a[2] - b[2]) > 1e-5f || fabsf(a[7] - b[7]) > 1e-5f);
}

int main(void) {
    el_isa isas[2] = {EL_ISA_PORTABLE, el_cpu_isa_best()};
    size_t n_isa = isas[1] == EL_ISA_PORTABLE ? 1 : 2;
    for (size_t ii = 0; ii < n_isa; ii++)
        for (unsigned th = 1; th <= 3; th++) {
            static el_pool pool;
            EL_CHECK_OK(el_pool_init(&pool, th, isas[ii]));
            static const size_t shapes[][2] = {{4, 8}, {3, 6}, {2, 32}, {1, 20}, {8, 64}, {5, 36}};
            for (size_t s = 0; s < 6; s++) {
                check_layout(&pool, shapes[s][0], shapes[s][1], false, false);
                check_layout(&pool, shapes[s][0], shapes[s][1], true, false);
                check_layout(&pool, shapes[s][0], shapes[s][1], false, true);
            }
            check_gelu(&pool);
            el_pool_deinit(&pool);
        }
    return el_test_finish("test_bert_attention");
}
