/* test_kernels_matvec_f.c - the float-weight decode pass over several matrices
 * (el_cpu_matvec_f): F32, F16 and BF16 parts mixed, ragged outs, in not a multiple of the
 * vector width, an f32 and an f16 bias, every epilogue (stored, added, stored + GELU, gated +
 * SwiGLU), bit for bit against el_cpu_matmul of each part, then el_cpu_add_bias, the add and
 * the activation over the whole output; portable and this build's vector path, 1 and 3
 * threads (sizes above the pool's work threshold, so the rows are split); and what it does
 * not take. */
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/matmul_f_impl.h"
#include "kernels/fp16.h"
#include "tests/support/el_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define IN 300
#define OMAX 1000

static uint64_t g_rng = 0x9e3779b97f4a7c15ull;
static float frand(void) { /* [-1, 1) */
    return (float)(uint32_t)(el_test_xorshift64(&g_rng) >> 32) / 2147483648.0f - 1.0f;
}

/* Same float, or both NaN. */
static bool same_float(float a, float b) {
    if (isnan(a) || isnan(b)) return isnan(a) && isnan(b);
    return el_f32_bits(a) == el_f32_bits(b);
}

static void *make_weights(el_dtype dt, size_t n) {
    const size_t esz = dt == EL_DT_F32 ? 4 : 2;
    uint8_t *w = malloc(n * esz);
    EL_CHECK(w != NULL);
    for (size_t i = 0; w && i < n; i++) {
        const float v = frand();
        if (dt == EL_DT_F32) ((float *)(void *)w)[i] = v;
        else if (dt == EL_DT_F16) ((uint16_t *)(void *)w)[i] = el_fp32_to_fp16(v);
        else ((uint16_t *)(void *)w)[i] = (uint16_t)(el_f32_bits(v) >> 16);
    }
    return w;
}

typedef struct act_ctx {
    el_pool *p;
    bool gated;
} act_ctx;

static void act_rows(void *ctx, float *v, const float *up, size_t n) {
    const act_ctx *a = ctx;
    if (a->gated) el_cpu_swiglu(a->p, v, up, n);
    else el_cpu_gelu_tanh(a->p, v, n);
}

static void check_pool(el_pool *p, const el_dtype dts[3], void *const w[3], const float *x,
                       const float *b32, const uint16_t *b16, float y0[3][OMAX]) {
    static float want[3][OMAX], got[3][OMAX];
    const size_t outs[3] = {37, 13, OMAX - 50};
    /* STORE, ADD, STORE + GELU, GATED + SwiGLU */
    for (int k = 0; k < 4; k++) {
        const el_qmv_epi e = k == 1 ? EL_QMV_ADD : k == 3 ? EL_QMV_GATED : EL_QMV_STORE;
        const bool gated = e == EL_QMV_GATED, act = k >= 2;
        const size_t np = gated ? 2 : 3;
        el_qmv_part parts[3];
        for (size_t i = 0; i < np; i++) {
            const size_t out = gated ? OMAX : outs[i];
            parts[i] = (el_qmv_part){got[i], w[i], dts[i], out,
                                     i == 1 ? (const void *)b32
                                     : i == 2 ? (const void *)b16 : NULL,
                                     i == 1 ? EL_DT_F32 : EL_DT_F16, false};
            float *t = want[i];
            el_cpu_matmul(p, t, out, x, w[i], dts[i], 1, IN, out);
            if (parts[i].b) el_cpu_add_bias(t, out, parts[i].b, parts[i].bt, 1, out);
            for (size_t r = 0; r < out; r++) {
                if (e == EL_QMV_ADD) t[r] = y0[i][r] + t[r];
                got[i][r] = y0[i][r];
            }
            if (act && !gated) el_cpu_gelu_par(p, t, out, true);
        }
        if (gated) el_cpu_swiglu(p, want[0], want[1], OMAX);
        act_ctx a = {p, gated};
        EL_CHECK(el_cpu_matvec_f(p, x, IN, parts, np, e, act ? act_rows : NULL, &a));
        size_t bad = 0;
        for (size_t i = 0; i < np; i++)
            for (size_t r = 0; r < parts[i].out; r++) bad += !same_float(got[i][r], want[i][r]);
        if (bad)
            fprintf(stderr, "matvec_f %s+%s+%s epilogue %d, %u threads %s: %zu values differ\n",
                    el_dtype_name(dts[0]), el_dtype_name(dts[1]), el_dtype_name(dts[2]), k,
                    p->n_threads, el_isa_name(p->isa), bad);
        EL_CHECK(bad == 0);
    }
}

int main(void) {
    const el_isa best = el_cpu_isa_best();
    const struct { el_isa isa; unsigned nt; } cfg[] = {
        {EL_ISA_PORTABLE, 1}, {EL_ISA_PORTABLE, 3}, {best, 1}, {best, 3}};
    el_pool pools[4];
    for (size_t i = 0; i < 4; i++) EL_CHECK_OK(el_pool_init(&pools[i], cfg[i].nt, cfg[i].isa));
    static const el_dtype types[3] = {EL_DT_F32, EL_DT_F16, EL_DT_BF16};
    static float y0[3][OMAX];
    float x[IN], b32[OMAX];
    uint16_t b16[OMAX];
    for (size_t i = 0; i < IN; i++) x[i] = frand() * (i % 3 == 0 ? 2.0f : 1.0f);
    for (size_t r = 0; r < OMAX; r++) {
        b32[r] = frand();
        b16[r] = el_fp32_to_fp16(frand());
        for (size_t i = 0; i < 3; i++) y0[i][r] = frand() * 4.0f;
    }
    for (size_t ti = 0; ti < 3; ti++) {
        const el_dtype dts[3] = {types[ti], types[(ti + 1) % 3], types[ti]};
        void *w[3];
        for (size_t i = 0; i < 3; i++) w[i] = make_weights(dts[i], (size_t)OMAX * IN);
        for (size_t pi = 0; pi < 4; pi++) check_pool(&pools[pi], dts, w, x, b32, b16, y0);
        for (size_t i = 0; i < 3; i++) free(w[i]);
    }
    /* what it does not take: a block type, gated parts of unequal out, act with the add */
    float y[16];
    uint8_t blk[34 * 16] = {0};
    el_qmv_part q = {y, blk, EL_DT_Q8_0, 16, NULL, EL_DT_F32, false};
    EL_CHECK(!el_cpu_matvec_f(&pools[0], x, 32, &q, 1, EL_QMV_STORE, NULL, NULL));
    const float wf[16 * 32] = {0};
    el_qmv_part g[2] = {{y, wf, EL_DT_F32, 16, NULL, EL_DT_F32, false},
                        {y, wf, EL_DT_F32, 8, NULL, EL_DT_F32, false}};
    EL_CHECK(!el_cpu_matvec_f(&pools[0], x, 32, g, 2, EL_QMV_GATED, NULL, NULL));
    act_ctx a = {&pools[0], false};
    EL_CHECK(!el_cpu_matvec_f(&pools[0], x, 32, g, 1, EL_QMV_ADD, act_rows, &a));
    for (size_t i = 0; i < 4; i++) el_pool_deinit(&pools[i]);
    return el_test_finish("test_kernels_matvec_f");
}
