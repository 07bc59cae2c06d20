/* matmul.c - y = W x for f32 activations and f32/f16/bf16 weights, W row-major [out, in].
 * Rows of W are split across the pool; each thread walks its rows four at a time and dots
 * them with every x row, so a batch of prompt tokens reads each weight row once. On x86-64
 * the kernels are matmul_f_x86.inc, compiled for AVX2 + FMA + F16C and for AVX-512
 * (F/BW/VL) and picked at run time by CPUID (register-tiled decode; prompt batches as a GEMM
 * over weight blocks converted once). The NEON path (aarch64) keeps 8 accumulators in flight
 * (4 rows x 2 halves of 16 inputs) with 4-wide vectors, 4 FMAs per row per step; the
 * portable path is plain C. */
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/matmul_f_impl.h"
#include "kernels/cpu/quant.h"
#include "kernels/fp16.h"

#if defined(__aarch64__)
#include <arm_neon.h>
#endif

typedef el_mm_job mm_job;

#define MR 4 /* weight rows per block */

static inline float w_at(const void *w, el_dtype wt, size_t i) {
    switch (wt) {
    case EL_DT_F16: return el_fp16_to_fp32(((const uint16_t *)w)[i]);
    case EL_DT_BF16: return el_bf16_to_fp32(((const uint16_t *)w)[i]);
    default: return ((const float *)w)[i];
    }
}

static inline const void *w_row(const void *w, el_dtype wt, size_t row, size_t in) {
    return (const char *)w + row * in * (wt == EL_DT_F32 ? 4u : 2u);
}

/* ---- portable ------------------------------------------------------------------------- */

static inline __attribute__((always_inline)) float dot_portable(const void *wr, el_dtype wt,
                                                                const float *x, size_t in) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t j = 0;
    for (; j + 4 <= in; j += 4) {
        s0 += w_at(wr, wt, j + 0) * x[j + 0];
        s1 += w_at(wr, wt, j + 1) * x[j + 1];
        s2 += w_at(wr, wt, j + 2) * x[j + 2];
        s3 += w_at(wr, wt, j + 3) * x[j + 3];
    }
    for (; j < in; j++) s0 += w_at(wr, wt, j) * x[j];
    return (s0 + s1) + (s2 + s3);
}

static inline __attribute__((always_inline)) void mm_portable_body(const mm_job *j, size_t r0,
                                                                   size_t r1, el_dtype wt) {
    for (size_t r = r0; r < r1; r++) {
        const void *wr = w_row(j->w, wt, r, j->in);
        for (size_t t = 0; t < j->n; t++)
            j->y[t * j->ldy + r] = dot_portable(wr, wt, j->x + t * j->in, j->in);
    }
}

static void mm_portable(const mm_job *j, size_t r0, size_t r1) {
    switch (j->wt) {
    case EL_DT_F16: mm_portable_body(j, r0, r1, EL_DT_F16); break;
    case EL_DT_BF16: mm_portable_body(j, r0, r1, EL_DT_BF16); break;
    default: mm_portable_body(j, r0, r1, EL_DT_F32); break;
    }
}

/* ---- NEON (aarch64) ------------------------------------------------------------------- */

#if defined(__aarch64__)
/* 4 weights from row pointer wr at element i, as f32. F16 widens with FCVTL (base ARMv8),
 * BF16 is the top half of an f32. wt is a constant after inlining. */
static inline __attribute__((always_inline)) float32x4_t load4(const void *wr, el_dtype wt,
                                                                size_t i) {
    switch (wt) {
    case EL_DT_F16:
        return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)wr + i)));
    case EL_DT_BF16:
        return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)wr + i), 16));
    default: return vld1q_f32((const float *)wr + i);
    }
}

/* Two groups of 4 weights at i and i + 4: one 128-bit load for the 16-bit types. */
static inline __attribute__((always_inline)) void load8n(const void *wr, el_dtype wt, size_t i,
                                                         float32x4_t *lo, float32x4_t *hi) {
    switch (wt) {
    case EL_DT_F16: {
        float16x8_t h = vreinterpretq_f16_u16(vld1q_u16((const uint16_t *)wr + i));
        *lo = vcvt_f32_f16(vget_low_f16(h));
        *hi = vcvt_high_f32_f16(h);
        return;
    }
    case EL_DT_BF16: {
        uint16x8_t h = vld1q_u16((const uint16_t *)wr + i);
        *lo = vreinterpretq_f32_u32(vshll_n_u16(vget_low_u16(h), 16));
        *hi = vreinterpretq_f32_u32(vshll_high_n_u16(h, 16));
        return;
    }
    default:
        *lo = vld1q_f32((const float *)wr + i);
        *hi = vld1q_f32((const float *)wr + i + 4);
        return;
    }
}

/* One weight row's share of a 16-input step (x0..x3 = inputs i..i+15) into accumulators
 * a (inputs 0-3, 8-11) and b (4-7, 12-15). */
static inline __attribute__((always_inline)) void step16(const void *wr, el_dtype wt, size_t i,
                                                         const float32x4_t xv[4],
                                                         float32x4_t *a, float32x4_t *b) {
    float32x4_t w0, w1, w2, w3;
    load8n(wr, wt, i, &w0, &w1);
    load8n(wr, wt, i + 8, &w2, &w3);
    *a = vfmaq_f32(*a, w0, xv[0]);
    *b = vfmaq_f32(*b, w1, xv[1]);
    *a = vfmaq_f32(*a, w2, xv[2]);
    *b = vfmaq_f32(*b, w3, xv[3]);
}

static inline __attribute__((always_inline)) void mm_neon_body(const mm_job *j, size_t r0,
                                                               size_t r1, el_dtype wt) {
    const size_t in = j->in, in16 = in & ~(size_t)15, in4 = in & ~(size_t)3;
    size_t r = r0;
    for (; r + MR <= r1; r += MR) {
        const void *w0 = w_row(j->w, wt, r + 0, in), *w1 = w_row(j->w, wt, r + 1, in);
        const void *w2 = w_row(j->w, wt, r + 2, in), *w3 = w_row(j->w, wt, r + 3, in);
        for (size_t t = 0; t < j->n; t++) {
            const float *x = j->x + t * in;
            float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
            float32x4_t b0 = a0, b1 = a0, b2 = a0, b3 = a0;
            size_t i = 0;
            for (; i < in16; i += 16) {
                const float32x4_t xv[4] = {vld1q_f32(x + i), vld1q_f32(x + i + 4),
                                           vld1q_f32(x + i + 8), vld1q_f32(x + i + 12)};
                step16(w0, wt, i, xv, &a0, &b0);
                step16(w1, wt, i, xv, &a1, &b1);
                step16(w2, wt, i, xv, &a2, &b2);
                step16(w3, wt, i, xv, &a3, &b3);
            }
            for (; i < in4; i += 4) {
                float32x4_t xv = vld1q_f32(x + i);
                a0 = vfmaq_f32(a0, load4(w0, wt, i), xv);
                a1 = vfmaq_f32(a1, load4(w1, wt, i), xv);
                a2 = vfmaq_f32(a2, load4(w2, wt, i), xv);
                a3 = vfmaq_f32(a3, load4(w3, wt, i), xv);
            }
            /* Pairwise adds leave [sum a0, sum a1, sum a2, sum a3] in one register. */
            float32x4_t s01 = vpaddq_f32(vaddq_f32(a0, b0), vaddq_f32(a1, b1));
            float32x4_t s23 = vpaddq_f32(vaddq_f32(a2, b2), vaddq_f32(a3, b3));
            float out[MR];
            vst1q_f32(out, vpaddq_f32(s01, s23));
            for (; i < in; i++) {
                out[0] += w_at(w0, wt, i) * x[i];
                out[1] += w_at(w1, wt, i) * x[i];
                out[2] += w_at(w2, wt, i) * x[i];
                out[3] += w_at(w3, wt, i) * x[i];
            }
            float *y = j->y + t * j->ldy + r;
            y[0] = out[0];
            y[1] = out[1];
            y[2] = out[2];
            y[3] = out[3];
        }
    }
    for (; r < r1; r++) {
        const void *w0 = w_row(j->w, wt, r, in);
        for (size_t t = 0; t < j->n; t++) {
            const float *x = j->x + t * in;
            float32x4_t a0 = vdupq_n_f32(0), b0 = a0;
            size_t i = 0;
            for (; i < in16; i += 16) {
                const float32x4_t xv[4] = {vld1q_f32(x + i), vld1q_f32(x + i + 4),
                                           vld1q_f32(x + i + 8), vld1q_f32(x + i + 12)};
                step16(w0, wt, i, xv, &a0, &b0);
            }
            for (; i < in4; i += 4) a0 = vfmaq_f32(a0, load4(w0, wt, i), vld1q_f32(x + i));
            float s = vaddvq_f32(vaddq_f32(a0, b0));
            for (; i < in; i++) s += w_at(w0, wt, i) * x[i];
            j->y[t * j->ldy + r] = s;
        }
    }
}

static void mm_neon_f32(const mm_job *j, size_t r0, size_t r1) {
    mm_neon_body(j, r0, r1, EL_DT_F32);
}
static void mm_neon_f16(const mm_job *j, size_t r0, size_t r1) {
    mm_neon_body(j, r0, r1, EL_DT_F16);
}
static void mm_neon_bf16(const mm_job *j, size_t r0, size_t r1) {
    mm_neon_body(j, r0, r1, EL_DT_BF16);
}
#endif

/* ---- dispatch ------------------------------------------------------------------------- */

int el_mm_no_avx512;

typedef struct mm_task {
    mm_job job;
    void (*rows)(const mm_job *j, size_t r0, size_t r1);
} mm_task;

/* Thread ith takes a contiguous range of MR-row blocks. */
static void mm_run(void *ctx, unsigned ith, unsigned nth) {
    const mm_task *t = ctx;
    size_t blocks = (t->job.out + MR - 1) / MR;
    size_t b0 = blocks * ith / nth, b1 = blocks * (ith + 1) / nth;
    size_t r0 = b0 * MR, r1 = b1 * MR;
    if (r1 > t->job.out) r1 = t->job.out;
    if (r0 < r1) t->rows(&t->job, r0, r1);
}

/* The rows kernel for wt on p's instruction set. */
static el_mm_rows_fn mm_pick(const el_pool *p, el_dtype wt) {
#if defined(__x86_64__)
    if (p->isa == EL_ISA_AVX2) {
        static _Atomic int avx512 = -1;
        int v = atomic_load_explicit(&avx512, memory_order_relaxed);
        if (v < 0) atomic_store_explicit(&avx512, v = el_cpu_has_avx512(), memory_order_relaxed);
        return v && !el_mm_no_avx512 ? el_mm_pick_avx512(wt) : el_mm_pick_avx2(wt);
    }
#elif defined(__aarch64__)
    if (p->isa == EL_ISA_NEON)
        return wt == EL_DT_F16 ? mm_neon_f16 : wt == EL_DT_BF16 ? mm_neon_bf16 : mm_neon_f32;
#endif
    (void)wt;
    return mm_portable;
}

void el_cpu_matmul(el_pool *p, float *y, size_t ldy, const float *x, const void *w,
                   el_dtype wt, size_t n, size_t in, size_t out) {
    if (el_dtype_is_block(wt)) {
        el_cpu_matmul_q(p, y, ldy, x, w, wt, n, in, out, false);
        return;
    }
    mm_task t = {{y, ldy, x, w, wt, n, in, out}, mm_pick(p, wt)};
    el_pool_run_sized(p, (uint64_t)n * in * out, mm_run, &t);
}

/* ---- decode: one activation row, several matrices, one pool run -------------------------- */

#define FMV_TILE 8u  /* rows: a multiple of MR, so every row takes el_cpu_matmul's path */
#define FMV_ACT 64u  /* rows per tile with an activation: a multiple of its vectors */

typedef struct fmv_job {
    el_mm_rows_fn rows[EL_QMV_MAX_PARTS];
    const float *x;
    size_t in;
    const el_qmv_part *parts;
    size_t n_parts, tiles, tile;
    el_qmv_epi e;
    el_qmv_act_fn act;
    void *act_ctx;
} fmv_job;

/* Rows r0 .. r1 of part i: W x (+ b), stored or added (linear's, add_bias's and add's f32
 * operations in their order); then, not gated, act over them. */
static void fmv_part_rows(const fmv_job *q, size_t i, size_t r0, size_t r1) {
    const el_qmv_part *pt = &q->parts[i];
    const size_t esz = pt->wt == EL_DT_F32 ? 4u : 2u;
    const void *w = (const uint8_t *)pt->w + r0 * q->in * esz;
    el_mm_job j = {pt->y + r0, r1 - r0, q->x, w, pt->wt, 1, q->in, r1 - r0};
    if (q->e != EL_QMV_ADD) {
        q->rows[i](&j, 0, r1 - r0);
        if (pt->b)
            el_cpu_add_bias(pt->y + r0, r1 - r0,
                            (const uint8_t *)pt->b + r0 * el_dtype_size(pt->bt), pt->bt, 1,
                            r1 - r0);
        if (q->act && q->e == EL_QMV_STORE) q->act(q->act_ctx, pt->y + r0, NULL, r1 - r0);
        return;
    }
    float tmp[FMV_ACT];
    for (size_t r = r0; r < r1; r += FMV_ACT) {
        const size_t m = r1 - r < FMV_ACT ? r1 - r : FMV_ACT;
        j = (el_mm_job){tmp, m, q->x, (const uint8_t *)pt->w + r * q->in * esz, pt->wt, 1,
                        q->in, m};
        q->rows[i](&j, 0, m);
        if (pt->b)
            el_cpu_add_bias(tmp, m, (const uint8_t *)pt->b + r * el_dtype_size(pt->bt), pt->bt,
                            1, m);
        float *y = pt->y + r;
        for (size_t k = 0; k < m; k++) y[k] += tmp[k];
    }
}

void el_qmv_share(const el_qmv_part *parts, size_t n_parts, el_qmv_epi e, size_t tiles,
                  size_t tile, el_qmv_act_fn act, void *act_ctx, el_qmv_rows_fn rows,
                  const void *ctx, unsigned ith, unsigned nth) {
    const size_t t0 = tiles * ith / nth, t1 = tiles * (ith + 1) / nth;
    if (t0 == t1) return;
    if (e == EL_QMV_GATED) {
        const size_t out = parts[0].out, r0 = t0 * tile;
        const size_t r1 = t1 * tile < out ? t1 * tile : out;
        rows(ctx, 0, r0, r1);
        rows(ctx, 1, r0, r1);
        if (act) act(act_ctx, parts[0].y + r0, parts[1].y + r0, r1 - r0);
        return;
    }
    size_t c = 0; /* the first tile of part i */
    for (size_t i = 0; i < n_parts; i++) {
        const size_t out = parts[i].out, n = (out + tile - 1) / tile;
        const size_t a = t0 > c ? t0 - c : 0, b = t1 - c < n ? t1 - c : n;
        if (t1 > c && a < b) rows(ctx, i, a * tile, b * tile < out ? b * tile : out);
        c += n;
    }
}

static void fmv_rows(const void *ctx, size_t i, size_t r0, size_t r1) {
    fmv_part_rows(ctx, i, r0, r1);
}

static void fmv_run(void *ctx, unsigned ith, unsigned nth) {
    const fmv_job *q = ctx;
    el_qmv_share(q->parts, q->n_parts, q->e, q->tiles, q->tile, q->act, q->act_ctx, fmv_rows, q,
                 ith, nth);
}

bool el_cpu_matvec_f(el_pool *p, const float *x, size_t in, const el_qmv_part *parts,
                     size_t n_parts, el_qmv_epi e, el_qmv_act_fn act, void *act_ctx) {
    if (n_parts == 0 || n_parts > EL_QMV_MAX_PARTS || in == 0) return false;
    if (e == EL_QMV_GATED && (n_parts != 2 || parts[0].out != parts[1].out)) return false;
    if (e == EL_QMV_ADD && act) return false;
    fmv_job q = {.x = x, .in = in, .parts = parts, .n_parts = n_parts, .e = e, .act = act,
                 .act_ctx = act_ctx, .tile = act ? FMV_ACT : FMV_TILE};
    size_t rows = 0;
    for (size_t i = 0; i < n_parts; i++) {
        const el_dtype wt = parts[i].wt;
        if (el_dtype_is_block(wt) || (parts[i].b && el_dtype_is_block(parts[i].bt)))
            return false;
        q.rows[i] = mm_pick(p, wt);
        rows += parts[i].out;
        if (e != EL_QMV_GATED) q.tiles += (parts[i].out + q.tile - 1) / q.tile;
    }
    if (e == EL_QMV_GATED) q.tiles = (parts[0].out + q.tile - 1) / q.tile;
    el_pool_run_sized(p, (uint64_t)in * rows, fmv_run, &q);
    return true;
}
