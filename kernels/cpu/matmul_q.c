/* matmul_q.c - y = W x for f32 activations and GGUF block-type weights (Q8_0, Q4_0, Q4_1,
 * Q5_0, Q5_1, Q4_K, Q5_K, Q6_K), the way ggml's CPU backend does it: each x row is quantized
 * once per call to 8-bit blocks (q8a: 32 values, f32 scale, scaled sum, for the 32-blocks;
 * q8k: 256 values, f32 scale, sums per 16, for the K types), then every weight block is dotted
 * with integer multiply-adds and scaled once per block (per sub-block for the K types).
 *   x86 (AVX2, or AVX-512 VNNI's vpdpbusd on 256-bit vectors; matmul_q_x86.inc): a
 *         register-blocked GEMM of 8 weight rows x up to 8 tokens, the rows' blocks
 *         transposed in registers so each 32-bit lane is one row, for decode (n = 1) and
 *         prompt batches alike (a token's result does not depend on n); the row kernels
 *         (maddubs + madd, one weight row by 1 or 4 tokens, four rows for decode) only for
 *         rows too far apart for the GEMM's 32-bit gathers;
 *   NEON: weights unpacked in registers to bytes (all below 64, so signed), vdotq_s32 where
 *         the build targets the dot product extension (__ARM_FEATURE_DOTPROD), else
 *         vmull_s8 + vmlal_s8 + vpadalq_s16;
 *   portable: the same unpack with plain integer loops.
 * The quantized activations live in a fixed buffer on the caller's stack (EL_QMM_SCRATCH):
 * when x does not fit, tokens are taken in groups and, past one row, `in` in chunks whose
 * partial sums are added into y. Nothing is allocated. */
#include "kernels/cpu/matmul_q_impl.h"
#include "kernels/fp16.h"

#include <math.h>
#include <stdint.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

#define EL_QMM_SCRATCH (64u * 1024u) /* bytes of quantized activations per pass */

/* ---- activation quantization ------------------------------------------------------------ */

static inline int8_t q8_round(float v) {
    int q = (int)(v + (v >= 0 ? 0.5f : -0.5f));
    return (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
}

/* Scale of n floats for 8 bits: max |x| / 127, and its inverse (0 for an all-zero block). */
static inline float q8_scale(const float *x, int n, float *id) {
    float amax = 0;
    for (int j = 0; j < n; j++) {
        float a = fabsf(x[j]);
        if (a > amax) amax = a;
    }
    float d = amax / 127.0f;
    *id = d > 0 ? 1.0f / d : 0.0f;
    return d;
}

/* f rounded to f16 and back: the peers keep activation scales as f16 (ggml's block_q8_0 and
 * block_q8_1), so products match theirs. */
static inline float f16_round(float f) { return el_fp16_to_fp32(el_fp32_to_fp16(f)); }

static void quantize_q8a(const float *x, q8a *o, size_t nb) {
    for (size_t b = 0; b < nb; b++, x += 32) {
        float id, d = q8_scale(x, 32, &id);
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += o[b].qs[j] = q8_round(x[j] * id);
        o[b].d = f16_round(d);
        o[b].s = o[b].d * (float)sum; /* exactly d * sum: the paths that fold offsets into it
                                         agree with the ones that do not */
        o[b].s16 = f16_round(d * (float)sum);
        o[b].sum = sum;
    }
}

/* ggml's Q8_K: the value of largest magnitude maps to -127 exactly (iscale = -127 / max,
 * signed), the scale is 1 / iscale in f32. */
static void quantize_q8k(const float *x, q8k *o, size_t nb) {
    for (size_t b = 0; b < nb; b++, x += 256) {
        float amax = 0, max = 0;
        for (int j = 0; j < 256; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        if (amax == 0) {
            memset(&o[b], 0, sizeof o[b]);
            continue;
        }
        const float iscale = -127.0f / max;
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) {
                int v = (int)lrintf(iscale * x[16 * g + j]);
                sum += o[b].qs[16 * g + j] = (int8_t)(v > 127 ? 127 : v);
            }
            o[b].bsums[g] = (int16_t)sum;
        }
        o[b].d = 1.0f / iscale;
    }
}

/* ---- portable: unpacked blocks ---------------------------------------------------------- */

static inline int32_t dot_s8_c(const int8_t *a, const int8_t *b, int n) {
    int32_t s = 0;
    for (int i = 0; i < n; i++) s += (int32_t)a[i] * b[i];
    return s;
}

/* A weight row of nb blocks of wt dotted with quantized activations. The block's value is
 * d * (q - off) (+ m), or for the K types d * sc * q - m * mn per sub-block (quant.h). */
static float dot_portable(el_dtype wt, const uint8_t *w, const void *act, size_t nb) {
    const size_t bb = el_dtype_block_bytes(wt);
    el_qblock u;
    float sum = 0;
    if (el_dtype_block(wt) == 32) {
        const q8a *a = act;
        for (size_t b = 0; b < nb; b++) {
            el_quant_unpack(wt, w + bb * b, &u);
            const float m = u.has_min ? u.m : -(float)u.off * u.d;
            sum += u.d * a[b].d * (float)dot_s8_c(u.q, a[b].qs, 32) +
                   m * (u.has_min ? a[b].s16 : a[b].s);
        }
        return sum;
    }
    const q8k *a = act;
    for (size_t b = 0; b < nb; b++) {
        el_quant_unpack(wt, w + bb * b, &u);
        const int len = 256 / (int)u.nsub, per = len / 16;
        int32_t isum = 0, imin = 0;
        for (uint32_t j = 0; j < u.nsub; j++) {
            isum += u.sc[j] * dot_s8_c(u.q + len * j, a[b].qs + len * j, len);
            int32_t bs = 0;
            for (int k = 0; k < per; k++) bs += a[b].bsums[per * j + k];
            imin += u.mn[j] * bs;
        }
        sum += a[b].d * (u.d * (float)isum - u.m * (float)imin);
    }
    return sum;
}

#if defined(__aarch64__)
#define EL_NEON_INLINE static inline __attribute__((always_inline))

/* acc + the sums of 4 neighbouring products of a and b (int8). */
EL_NEON_INLINE int32x4_t dot16(int32x4_t acc, int8x16_t a, int8x16_t b) {
#if defined(__ARM_FEATURE_DOTPROD)
    return vdotq_s32(acc, a, b);
#else
    int16x8_t p = vmull_s8(vget_low_s8(a), vget_low_s8(b));
    p = vmlal_s8(p, vget_high_s8(a), vget_high_s8(b)); /* |sum| <= 2 * 128 * 127 */
    return vpadalq_s16(acc, p);
#endif
}

EL_NEON_INLINE float f16_at_neon(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, 2);
    return el_fp16_to_fp32(h);
}

/* Bits 16 * half .. 16 * half + 15 of the LE u32 at p -> 16 bytes, 0x10 where set. */
EL_NEON_INLINE uint8x16_t fifth_bits16(const uint8_t *p, int half) {
    static const uint8_t k_bit[16] = {1, 2, 4, 8, 16, 32, 64, 128, 1, 2, 4, 8, 16, 32, 64, 128};
    uint8x16_t v = vcombine_u8(vdup_n_u8(p[2 * half]), vdup_n_u8(p[2 * half + 1]));
    return vandq_u8(vtstq_u8(v, vld1q_u8(k_bit)), vdupq_n_u8(0x10));
}

/* The 32-blocks, unpacked in registers: low nibbles are elements 0..15, high 16..31. */
EL_NEON_INLINE float dot32_neon(el_dtype wt, const uint8_t *w, const void *act, size_t nb) {
    const q8a *a = act;
    const size_t bb = el_dtype_block_bytes(wt);
    const uint8x16_t m4 = vdupq_n_u8(0x0f);
    float sum = 0;
    for (size_t b = 0; b < nb; b++, w += bb) {
        int8x16_t q0, q1;
        float rest = 0;
        if (wt == EL_DT_Q8_0) {
            q0 = vld1q_s8((const int8_t *)w + 2);
            q1 = vld1q_s8((const int8_t *)w + 18);
        } else {
            const int off = wt == EL_DT_Q4_1 ? 4 : wt == EL_DT_Q5_0 ? 6 : wt == EL_DT_Q5_1 ? 8 : 2;
            const uint8x16_t raw = vld1q_u8(w + off);
            uint8x16_t u0 = vandq_u8(raw, m4), u1 = vshrq_n_u8(raw, 4);
            if (wt == EL_DT_Q5_0 || wt == EL_DT_Q5_1) {
                const uint8_t *qh = w + (wt == EL_DT_Q5_0 ? 2 : 4);
                u0 = vorrq_u8(u0, fifth_bits16(qh, 0));
                u1 = vorrq_u8(u1, fifth_bits16(qh, 1));
            }
            q0 = vreinterpretq_s8_u8(u0);
            q1 = vreinterpretq_s8_u8(u1);
            if (wt == EL_DT_Q4_1 || wt == EL_DT_Q5_1)
                rest = f16_at_neon(w + 2) * a[b].s16;
            else
                rest = -(wt == EL_DT_Q5_0 ? 16.0f : 8.0f) * f16_at_neon(w) * a[b].s;
        }
        const int32x4_t acc = dot16(dot16(vdupq_n_s32(0), q0, vld1q_s8(a[b].qs)), q1,
                                    vld1q_s8(a[b].qs + 16));
        sum += f16_at_neon(w) * a[b].d * (float)vaddvq_s32(acc) + rest;
    }
    return sum;
}

/* Q4_K / Q5_K: per sub-block j of 32, sc_j * sum(q x) and mn_j * (its activation sum). */
EL_NEON_INLINE float dot_q45k_neon(bool five, const uint8_t *w, const void *act, size_t nb) {
    const q8k *a = act;
    const size_t bb = five ? 176 : 144;
    const uint8x16_t m4 = vdupq_n_u8(0x0f), one = vdupq_n_u8(1);
    float sum = 0;
    for (size_t b = 0; b < nb; b++, w += bb) {
        const uint8_t *qs = w + (five ? 48 : 16);
        const uint8x16_t h0 = five ? vld1q_u8(w + 16) : vdupq_n_u8(0);
        const uint8x16_t h1 = five ? vld1q_u8(w + 32) : vdupq_n_u8(0);
        int32_t isum = 0, imin = 0;
        uint8_t scm[16];
        el_quant_k_scales(w + 4, scm);
        for (int j = 0; j < 8; j++) {
            const int32_t sc = scm[j], mn = scm[8 + j];
            const uint8x16_t r0 = vld1q_u8(qs + 32 * (j / 2)), r1 = vld1q_u8(qs + 32 * (j / 2) + 16);
            uint8x16_t u0 = (j & 1) ? vshrq_n_u8(r0, 4) : vandq_u8(r0, m4);
            uint8x16_t u1 = (j & 1) ? vshrq_n_u8(r1, 4) : vandq_u8(r1, m4);
            if (five) {
                const int8x16_t sh = vdupq_n_s8((int8_t)-j);
                u0 = vorrq_u8(u0, vshlq_n_u8(vandq_u8(vshlq_u8(h0, sh), one), 4));
                u1 = vorrq_u8(u1, vshlq_n_u8(vandq_u8(vshlq_u8(h1, sh), one), 4));
            }
            const int8_t *x = a[b].qs + 32 * j;
            int32x4_t acc = dot16(vdupq_n_s32(0), vreinterpretq_s8_u8(u0), vld1q_s8(x));
            acc = dot16(acc, vreinterpretq_s8_u8(u1), vld1q_s8(x + 16));
            isum += sc * vaddvq_s32(acc);
            imin += mn * (a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        }
        sum += a[b].d * (f16_at_neon(w) * (float)isum - f16_at_neon(w + 2) * (float)imin);
    }
    return sum;
}

/* Q6_K: per sub-block j of 16, sc_j * (sum(q x) - 32 * its activation sum). */
EL_NEON_INLINE float dot_q6k_neon(const uint8_t *w, const void *act, size_t nb) {
    const q8k *a = act;
    const uint8x16_t m4 = vdupq_n_u8(0x0f), m2 = vdupq_n_u8(3);
    float sum = 0;
    for (size_t b = 0; b < nb; b++, w += 210) {
        const int8_t *sc = (const int8_t *)(w + 192);
        int32_t isum = 0;
        for (int j = 0; j < 16; j++) {
            const int g = j / 8, r = (j % 8) / 2, h = j % 2; /* 128s, runs of 32, halves */
            const uint8x16_t l = vld1q_u8(w + 64 * g + 32 * (r & 1) + 16 * h);
            const uint8x16_t hh = vld1q_u8(w + 128 + 32 * g + 16 * h);
            const uint8x16_t lo = r < 2 ? vandq_u8(l, m4) : vshrq_n_u8(l, 4);
            const uint8x16_t hi = vandq_u8(vshlq_u8(hh, vdupq_n_s8((int8_t)(-2 * r))), m2);
            const int8x16_t q = vreinterpretq_s8_u8(vorrq_u8(lo, vshlq_n_u8(hi, 4)));
            const int32_t d = vaddvq_s32(dot16(vdupq_n_s32(0), q, vld1q_s8(a[b].qs + 16 * j)));
            isum += sc[j] * (d - 32 * a[b].bsums[j]);
        }
        sum += a[b].d * f16_at_neon(w + 208) * (float)isum;
    }
    return sum;
}

#define EL_QDOT_NEON(name, expr)                                                               \
    static void name(el_dtype wt, const uint8_t *w, const uint8_t *act, size_t arow, size_t nb, \
                     float *out) {                                                             \
        (void)arow;                                                                            \
        out[0] = expr;                                                                         \
    }
EL_QDOT_NEON(dot_neon_q8_0, dot32_neon(EL_DT_Q8_0, w, act, nb))
EL_QDOT_NEON(dot_neon_q4_0, dot32_neon(EL_DT_Q4_0, w, act, nb))
EL_QDOT_NEON(dot_neon_q4_1, dot32_neon(EL_DT_Q4_1, w, act, nb))
EL_QDOT_NEON(dot_neon_q5_0, dot32_neon(EL_DT_Q5_0, w, act, nb))
EL_QDOT_NEON(dot_neon_q5_1, dot32_neon(EL_DT_Q5_1, w, act, nb))
EL_QDOT_NEON(dot_neon_q4_k, dot_q45k_neon(false, w, act, nb))
EL_QDOT_NEON(dot_neon_q5_k, dot_q45k_neon(true, w, act, nb))
EL_QDOT_NEON(dot_neon_q6_k, dot_q6k_neon(w, act, nb))
#undef EL_QDOT_NEON
#endif


/* ---- dispatch ------------------------------------------------------------------------- */

static void dot_portable_x1(el_dtype wt, const uint8_t *w, const uint8_t *act, size_t arow,
                            size_t nb, float *out) {
    (void)arow;
    out[0] = dot_portable(wt, w, act, nb);
}
typedef struct qmm_job {
    float *y;           /* [n, ldy]: rows t0.. of the caller's y */
    size_t ldy;
    const uint8_t *w;   /* weight row 0 at block b0 */
    size_t wrow;        /* bytes per weight row */
    el_dtype wt;
    const uint8_t *act; /* [n] quantized rows of arow bytes (nb blocks each) */
    size_t arow;
    size_t n, nb, out;
    bool add;           /* add into y (a later chunk of in) */
    qdot_fn dot1, dot4; /* one / four activation rows per call (dot4 may be NULL) */
    qdot_r4_fn r4;      /* four weight rows, one activation row (may be NULL) */
    qgemm_fn gemm;      /* up to eight weight rows x every activation row (may be NULL) */
} qmm_job;

/* Thread ith takes a contiguous range of rows: multiples of 8 where the GEMM takes them (its
 * tile), else of 4, so rows stay in lines. */
static void qmm_run(void *ctx, unsigned ith, unsigned nth) {
    const qmm_job *j = ctx;
    const size_t unit = j->gemm ? 8 : 4, units = (j->out + unit - 1) / unit;
    size_t r0 = units * ith / nth * unit, r1 = units * (ith + 1) / nth * unit;
    if (r1 > j->out) r1 = j->out;
    if (j->gemm) { /* every row by every token, eight rows per pass */
        for (; r0 < r1; r0 += 8)
            j->gemm(j->w + r0 * j->wrow, j->wrow, r1 - r0 < 8 ? r1 - r0 : 8, j->act, j->arow,
                    j->nb, j->n, j->y + r0, j->ldy, j->add);
        return;
    }
    if (j->n == 1 && j->r4) {
        for (; r0 + 4 <= r1; r0 += 4) {
            float v[4];
            j->r4(j->w + r0 * j->wrow, j->wrow, j->act, j->nb, v);
            for (size_t i = 0; i < 4; i++) j->y[r0 + i] = j->add ? j->y[r0 + i] + v[i] : v[i];
        }
    }
    for (size_t r = r0; r < r1; r++) {
        const uint8_t *wr = j->w + r * j->wrow;
        size_t t = 0;
        while (t < j->n) {
            float v[4] = {0, 0, 0, 0};
            const size_t k = j->dot4 && j->n - t >= 4 ? 4 : 1;
            (k == 4 ? j->dot4 : j->dot1)(j->wt, wr, j->act + t * j->arow, j->arow, j->nb, v);
            for (size_t i = 0; i < k; i++, t++) {
                float *y = j->y + t * j->ldy + r;
                *y = j->add ? *y + v[i] : v[i];
            }
        }
    }
}

int el_qdot_no_vnni;

/* The row kernels of isa for wt: *dot4 (four activation rows at once), *r4 (four weight rows
 * at once) and *gemm (8 weight rows x every token), or NULL. x86: the AVX-512 VNNI variant
 * where the CPU has it, else AVX2. */
static qdot_fn pick_dot(el_isa isa, el_dtype wt, qdot_fn *dot4, qdot_r4_fn *r4,
                       qgemm_fn *gemm) {
    *dot4 = NULL;
    *r4 = NULL;
    *gemm = NULL;
#if defined(__x86_64__)
    if (isa == EL_ISA_AVX2) {
        static _Atomic int vnni = -1;
        int v = atomic_load_explicit(&vnni, memory_order_relaxed);
        if (v < 0) atomic_store_explicit(&vnni, v = el_cpu_has_avx512vnni(), memory_order_relaxed);
        const bool use = v && !el_qdot_no_vnni;
        qdot_fn f = use ? el_qdot_pick_vnni(wt, dot4, r4) : el_qdot_pick_avx2(wt, dot4, r4);
        *gemm = use ? el_qgemm_pick_vnni(wt) : el_qgemm_pick_avx2(wt);
        if (f) return f;
    }
#elif defined(__aarch64__)
    if (isa == EL_ISA_NEON) {
        switch (wt) {
        case EL_DT_Q8_0: return dot_neon_q8_0;
        case EL_DT_Q4_0: return dot_neon_q4_0;
        case EL_DT_Q4_1: return dot_neon_q4_1;
        case EL_DT_Q5_0: return dot_neon_q5_0;
        case EL_DT_Q5_1: return dot_neon_q5_1;
        case EL_DT_Q4_K: return dot_neon_q4_k;
        case EL_DT_Q5_K: return dot_neon_q5_k;
        default: return dot_neon_q6_k;
        }
    }
#endif
    (void)isa;
    (void)wt;
    return dot_portable_x1;
}

void el_cpu_matmul_q(el_pool *p, float *y, size_t ldy, const float *x, const void *w,
                     el_dtype wt, size_t n, size_t in, size_t out) {
    _Alignas(64) uint8_t scratch[EL_QMM_SCRATCH];
    const bool k = el_dtype_block(wt) == 256;
    const size_t blk = k ? 256 : 32, ab = k ? sizeof(q8k) : sizeof(q8a);
    const size_t total = in / blk, cap = EL_QMM_SCRATCH / ab;
    const size_t kb = total < cap ? total : cap; /* blocks of in per pass */
    const size_t tn = kb ? cap / kb : 1;         /* tokens per pass */
    qmm_job j = {.ldy = ldy, .wrow = total * el_dtype_block_bytes(wt), .wt = wt,
                 .out = out};
    j.dot1 = pick_dot(p->isa, wt, &j.dot4, &j.r4, &j.gemm);
    if (j.wrow > (size_t)INT32_MAX / 7) j.gemm = NULL; /* its gathers take 32-bit offsets */
    for (size_t b0 = 0; b0 < total; b0 += kb) {
        j.nb = total - b0 < kb ? total - b0 : kb;
        j.arow = j.nb * ab;
        j.w = (const uint8_t *)w + b0 * el_dtype_block_bytes(wt);
        j.add = b0 > 0;
        for (size_t t0 = 0; t0 < n; t0 += tn) {
            j.n = n - t0 < tn ? n - t0 : tn;
            for (size_t t = 0; t < j.n; t++) {
                const float *xr = x + (t0 + t) * in + b0 * blk;
                if (k) quantize_q8k(xr, (q8k *)(void *)(scratch + t * j.arow), j.nb);
                else quantize_q8a(xr, (q8a *)(void *)(scratch + t * j.arow), j.nb);
            }
            j.act = scratch;
            j.y = y + t0 * ldy;
            el_pool_run_sized(p, (uint64_t)j.n * j.nb * blk * out, qmm_run, &j);
        }
    }
    if (total == 0) /* in == 0: y = 0 as for the float weights */
        for (size_t t = 0; t < n; t++) memset(y + t * ldy, 0, out * sizeof *y);
}
