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
 *         --numerics ggml's row order (rowwise);
 *   NEON: weights unpacked in registers to bytes (all below 64, so signed), vdotq_s32 where
 *         the CPU has the dot product extension, else vmull_s8 + vmlal_s8 + vpadalq_s16, and
 *         vmmlaq_s32 for prompt batches where it has i8mm: chosen at run time
 *         (matmul_q_neon.h, matmul_q_neon.inc);
 *   portable: the same unpack with plain integer loops.
 * The quantized activations live in a fixed buffer on the caller's stack (EL_QMM_SCRATCH):
 * when x does not fit, tokens are taken in groups and, past one row, `in` in chunks whose
 * partial sums are added into y. Nothing is allocated. */
#include "kernels/cpu/matmul_q_impl.h"
#include "kernels/fp16.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#include "kernels/cpu/matmul_q_neon.h"
#endif

#define EL_QMM_SCRATCH (64u * 1024u) /* bytes of quantized activations per pass */

/* ---- activation quantization ------------------------------------------------------------ */

/* v (|v| < 2^22) to the nearest integer, ties to even: adding 1.5 * 2^23 leaves it in the
 * low mantissa bits (the FPU's default rounding), inline where lrintf is a libm call. */
static inline int32_t nearest_even(float v) {
    float f = v + 12582912.0f;
    int32_t bits;
    memcpy(&bits, &f, sizeof bits);
    return (bits & 0x007fffff) - 0x00400000;
}

/* v to the nearest integer, ties to even, clamped to 8 bits. */
static inline int8_t q8_round(float v) {
    int32_t q = nearest_even(v);
    return (int8_t)(q > 127 ? 127 : q < -127 ? -127 : q);
}

/* 127 / amax, or 0 where amax is 0 or below 127 / FLT_MAX, where it would overflow: such a
 * block's f16 scale is 0 anyway, and its values become 0 rather than whatever this ISA's
 * conversion makes of an infinite product. */
static inline float q8_mult(float amax) {
    const float id = amax > 0 ? 127.0f / amax : 0.0f;
    return id <= FLT_MAX ? id : 0.0f;
}

/* Q8_K's multiplier -127 / max into *iscale; false (the block is stored as zeros) where max
 * is 0 or so small that it overflows. */
static inline bool q8k_mult(float max, float *iscale) {
    *iscale = -127.0f / max;
    return fabsf(*iscale) <= FLT_MAX;
}

/* Scale of n floats for 8 bits: max |x| / 127, and the multiplier 127 / max |x| (0 for an
 * all-zero block). Multiplier and ties to even are ggml's x86 quantize_row_q8_0/q8_1 (its
 * AVX2/AVX-512 code; its scalar reference divides by d and rounds ties away), so llama.cpp's
 * x86 builds and edgeload quantize an activation block to the same bytes. */
static inline float q8_scale(const float *x, int n, float *id) {
    float amax = 0;
    for (int j = 0; j < n; j++) {
        float a = fabsf(x[j]);
        if (a > amax) amax = a;
    }
    *id = q8_mult(amax);
    return amax / 127.0f;
}

/* f rounded to f16 and back: the peers keep activation scales as f16 (ggml's block_q8_0 and
 * block_q8_1), so products match theirs. */
static inline float f16_round(float f) { return el_fp16_to_fp32(el_fp32_to_fp16(f)); }

/* A q8a block's scale and sums, from its scale d and sum(qs) (every path). */
static inline void q8a_sums(q8a *o, float d, int sum) {
    o->d = f16_round(d);
    o->s = o->d * (float)sum; /* exactly d * sum: the paths that fold offsets into it agree
                                 with the ones that do not */
    o->s16 = f16_round(d * (float)sum);
    o->sum = sum;
}

static void quantize_q8a(const float *x, q8a *o, size_t nb) {
    for (size_t b = 0; b < nb; b++, x += 32) {
        float id, d = q8_scale(x, 32, &id);
        int sum = 0;
        for (int j = 0; j < 32; j++) sum += o[b].qs[j] = q8_round(x[j] * id);
        q8a_sums(o + b, d, sum);
    }
}

/* ggml's Q8_K: the value of largest magnitude maps to -127 exactly (iscale = -127 / max,
 * signed), the scale is 1 / iscale in f32. (ggml's x86 4x8 quantizer, for its four-token
 * Q4_K kernel, takes max = +amax where +amax and -amax both occur, the first otherwise: that
 * negates qs, bsums and d together, so every product it feeds is the same.) */
static void quantize_q8k(const float *x, q8k *o, size_t nb) {
    for (size_t b = 0; b < nb; b++, x += 256) {
        float amax = 0, max = 0;
        for (int j = 0; j < 256; j++)
            if (fabsf(x[j]) > amax) {
                amax = fabsf(x[j]);
                max = x[j];
            }
        float iscale;
        if (!q8k_mult(max, &iscale)) {
            memset(&o[b], 0, sizeof o[b]);
            continue;
        }
        for (int g = 0; g < 16; g++) {
            int sum = 0;
            for (int j = 0; j < 16; j++) {
                int v = nearest_even(iscale * x[16 * g + j]);
                sum += o[b].qs[16 * g + j] = (int8_t)(v > 127 ? 127 : v);
            }
            o[b].bsums[g] = (int16_t)sum;
        }
        o[b].d = 1.0f / iscale;
    }
}

#if defined(__x86_64__)
#define QA_AVX2 __attribute__((target("avx2,fma")))

/* The largest |x| of the 8n floats at x, NaNs skipped as q8_scale's compare skips them
 * (maxps returns its second operand where either is NaN: the running max goes second). */
static inline QA_AVX2 float amax_avx2(const float *x, size_t n) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    __m256 m = _mm256_setzero_ps();
    for (size_t i = 0; i < n; i++) m = _mm256_max_ps(_mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * i)), m);
    __m128 h = _mm_max_ps(_mm256_castps256_ps128(m), _mm256_extractf128_ps(m, 1));
    h = _mm_max_ps(h, _mm_movehl_ps(h, h));
    return _mm_cvtss_f32(_mm_max_ss(h, _mm_movehdup_ps(h)));
}

/* round(x * s) to nearest even for 8 floats: cvtps2dq in the default rounding mode is
 * nearest_even for these magnitudes; a NaN (0 * inf) gives 0, as nearest_even gives for the
 * default NaN. */
static inline QA_AVX2 __m256i round8_avx2(const float *x, __m256 s) {
    __m256 v = _mm256_mul_ps(_mm256_loadu_ps(x), s);
    return _mm256_cvtps_epi32(_mm256_and_ps(v, _mm256_cmp_ps(v, v, _CMP_ORD_Q)));
}

static inline QA_AVX2 int hsum8_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
}

/* 32 int32 (four vectors, in order) to 32 int8 at dst; values are within [-127, 127]. */
static inline QA_AVX2 void pack32_avx2(int8_t *dst, __m256i a, __m256i b, __m256i c, __m256i d) {
    __m256i v = _mm256_packs_epi16(_mm256_packs_epi32(a, b), _mm256_packs_epi32(c, d));
    v = _mm256_permutevar8x32_epi32(v, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
    _mm256_storeu_si256((__m256i *)(void *)dst, v);
}

/* quantize_q8a, the same bytes: the same scale, product and rounding, eight at a time. */
static QA_AVX2 void quantize_q8a_avx2(const float *x, q8a *o, size_t nb) {
    const __m256i lim = _mm256_set1_epi32(127), nlim = _mm256_set1_epi32(-127);
    for (size_t b = 0; b < nb; b++, x += 32) {
        const float amax = amax_avx2(x, 4);
        const float id = q8_mult(amax), d = amax / 127.0f;
        const __m256 s = _mm256_set1_ps(id);
        __m256i q[4];
        for (int i = 0; i < 4; i++)
            q[i] = _mm256_max_epi32(_mm256_min_epi32(round8_avx2(x + 8 * i, s), lim), nlim);
        pack32_avx2(o[b].qs, q[0], q[1], q[2], q[3]);
        const int sum = hsum8_epi32(_mm256_add_epi32(_mm256_add_epi32(q[0], q[1]),
                                                     _mm256_add_epi32(q[2], q[3])));
        q8a_sums(o + b, d, sum);
    }
}

/* quantize_q8k, the same bytes: max is the first x of the largest magnitude. */
static QA_AVX2 void quantize_q8k_avx2(const float *x, q8k *o, size_t nb) {
    const __m256 sign = _mm256_set1_ps(-0.0f);
    const __m256i lim = _mm256_set1_epi32(127);
    for (size_t b = 0; b < nb; b++, x += 256) {
        const float amax = amax_avx2(x, 32);
        if (!(amax > 0)) {
            memset(&o[b], 0, sizeof o[b]);
            continue;
        }
        const __m256 am = _mm256_set1_ps(amax);
        size_t at = 0;
        for (size_t i = 0; i < 32; i++) {
            const __m256 a = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + 8 * i));
            const int hit = _mm256_movemask_ps(_mm256_cmp_ps(a, am, _CMP_EQ_OQ));
            if (hit) {
                at = 8 * i + (size_t)__builtin_ctz((unsigned)hit);
                break;
            }
        }
        float iscale;
        if (!q8k_mult(x[at], &iscale)) {
            memset(&o[b], 0, sizeof o[b]);
            continue;
        }
        const __m256 s = _mm256_set1_ps(iscale);
        for (int g = 0; g < 16; g += 2) {
            const float *xg = x + 16 * g;
            const __m256i q0 = _mm256_min_epi32(round8_avx2(xg, s), lim);
            const __m256i q1 = _mm256_min_epi32(round8_avx2(xg + 8, s), lim);
            const __m256i q2 = _mm256_min_epi32(round8_avx2(xg + 16, s), lim);
            const __m256i q3 = _mm256_min_epi32(round8_avx2(xg + 24, s), lim);
            pack32_avx2(o[b].qs + 16 * g, q0, q1, q2, q3);
            o[b].bsums[g] = (int16_t)hsum8_epi32(_mm256_add_epi32(q0, q1));
            o[b].bsums[g + 1] = (int16_t)hsum8_epi32(_mm256_add_epi32(q2, q3));
        }
        o[b].d = 1.0f / iscale;
    }
}
#elif defined(__aarch64__)
/* The largest |x| of the 4n floats at x; vmaxnm skips a NaN as q8_scale's compare does. */
static inline float amax_neon(const float *x, size_t n) {
    float32x4_t m = vdupq_n_f32(0.0f);
    for (size_t i = 0; i < n; i++) m = vmaxnmq_f32(m, vabsq_f32(vld1q_f32(x + 4 * i)));
    return vmaxnmvq_f32(m);
}

/* round(x * s) to nearest even for 4 floats (fcvtns: a NaN gives 0, as on the AVX2 path). */
static inline int32x4_t round4_neon(const float *x, float32x4_t s) {
    return vcvtnq_s32_f32(vmulq_f32(vld1q_f32(x), s));
}

/* 16 int32 (four vectors, in order), within [-127, 127], to 16 int8 at dst. */
static inline void pack16_neon(int8_t *dst, int32x4_t a, int32x4_t b, int32x4_t c,
                               int32x4_t d) {
    const int16x8_t lo = vcombine_s16(vqmovn_s32(a), vqmovn_s32(b));
    const int16x8_t hi = vcombine_s16(vqmovn_s32(c), vqmovn_s32(d));
    vst1q_s8(dst, vcombine_s8(vqmovn_s16(lo), vqmovn_s16(hi)));
}

/* quantize_q8a, the same bytes: the same scale, product and rounding, four at a time. */
static void quantize_q8a_neon(const float *x, q8a *o, size_t nb) {
    const int32x4_t lim = vdupq_n_s32(127), nlim = vdupq_n_s32(-127);
    for (size_t b = 0; b < nb; b++, x += 32) {
        const float amax = amax_neon(x, 8);
        const float id = q8_mult(amax), d = amax / 127.0f;
        const float32x4_t s = vdupq_n_f32(id);
        int32x4_t q[8], t = vdupq_n_s32(0);
        for (int i = 0; i < 8; i++) {
            q[i] = vmaxq_s32(vminq_s32(round4_neon(x + 4 * i, s), lim), nlim);
            t = vaddq_s32(t, q[i]);
        }
        pack16_neon(o[b].qs, q[0], q[1], q[2], q[3]);
        pack16_neon(o[b].qs + 16, q[4], q[5], q[6], q[7]);
        const int sum = vaddvq_s32(t);
        q8a_sums(o + b, d, sum);
    }
}

/* quantize_q8k, the same bytes: max is the first x of the largest magnitude. */
static void quantize_q8k_neon(const float *x, q8k *o, size_t nb) {
    const int32x4_t lim = vdupq_n_s32(127);
    for (size_t b = 0; b < nb; b++, x += 256) {
        const float amax = amax_neon(x, 64);
        if (!(amax > 0)) {
            memset(&o[b], 0, sizeof o[b]);
            continue;
        }
        const float32x4_t am = vdupq_n_f32(amax);
        size_t at = 0;
        for (size_t i = 0; i < 64; i++)
            if (vmaxvq_u32(vceqq_f32(vabsq_f32(vld1q_f32(x + 4 * i)), am))) {
                at = 4 * i;
                while (fabsf(x[at]) != amax) at++;
                break;
            }
        float iscale;
        if (!q8k_mult(x[at], &iscale)) {
            memset(&o[b], 0, sizeof o[b]);
            continue;
        }
        const float32x4_t s = vdupq_n_f32(iscale);
        for (int g = 0; g < 16; g++) {
            const float *xg = x + 16 * g;
            const int32x4_t q0 = vminq_s32(round4_neon(xg, s), lim);
            const int32x4_t q1 = vminq_s32(round4_neon(xg + 4, s), lim);
            const int32x4_t q2 = vminq_s32(round4_neon(xg + 8, s), lim);
            const int32x4_t q3 = vminq_s32(round4_neon(xg + 12, s), lim);
            pack16_neon(o[b].qs + 16 * g, q0, q1, q2, q3);
            o[b].bsums[g] = (int16_t)vaddvq_s32(vaddq_s32(vaddq_s32(q0, q1), vaddq_s32(q2, q3)));
        }
        o[b].d = 1.0f / iscale;
    }
}
#endif

void el_quantize_act(el_isa isa, bool k, const float *x, void *o, size_t nb) {
#if defined(__x86_64__)
    if (isa == EL_ISA_AVX2) {
        if (k) quantize_q8k_avx2(x, o, nb);
        else quantize_q8a_avx2(x, o, nb);
        return;
    }
#elif defined(__aarch64__)
    if (isa == EL_ISA_NEON) {
        if (k) quantize_q8k_neon(x, o, nb);
        else quantize_q8a_neon(x, o, nb);
        return;
    }
#endif
    (void)isa;
    if (k) quantize_q8k(x, o, nb);
    else quantize_q8a(x, o, nb);
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
    qdot_r4_fn r8;      /* aarch64: eight weight rows, one activation row (may be NULL) */
    qdot_r8t4_fn r8t4;  /* aarch64: eight weight rows, four activation rows (may be NULL) */
    bool x8;            /* w in el_q_x8_repack's tiles: w + r * wrow is row r's tile (r % 8
                           == 0), and a block of it 8 times a row's */
    qx8_fn x8f;         /* x8: one token by a tile (NULL: rowwise, or no tile kernel) */
} qmm_job;

/* Row r (its nb blocks at wr) by every token into y (row r of token t at y[t * j->ldy + r -
 * base]): the one-row kernels, four tokens at a time where there is a dot4. */
static void qmm_row(const qmm_job *j, size_t r, const uint8_t *wr, size_t base, float *y) {
    size_t t = 0;
    while (t < j->n) {
        float v[4] = {0, 0, 0, 0};
        const size_t k = j->dot4 && j->n - t >= 4 ? 4 : 1;
        (k == 4 ? j->dot4 : j->dot1)(j->wt, wr, j->act + t * j->arow, j->arow, j->nb, v);
        for (size_t i = 0; i < k; i++, t++) {
            float *o = y + t * j->ldy + (r - base);
            *o = j->add ? *o + v[i] : v[i];
        }
    }
}

/* Rows r0 .. r1 (multiples of 8) of tiled weights: the tile kernel for one token, the tile
 * GEMM for a batch, else (rowwise, no vector kernels) each row copied back to GGUF's layout
 * for the one-row kernels. Every path gives the untiled bits. */
static void x8_rows(const qmm_job *j, size_t r0, size_t r1, float *y) {
    const size_t base = r0;
    if (j->x8f && j->n == 1) {
        for (; r0 < r1; r0 += 8) {
            float v[8], *o = y + (r0 - base);
            j->x8f(j->w + r0 * j->wrow, j->act, j->nb, v);
            for (size_t i = 0; i < 8; i++) o[i] = j->add ? o[i] + v[i] : v[i];
        }
    } else if (j->gemm) {
        for (; r0 < r1; r0 += 8)
            j->gemm(j->w + r0 * j->wrow, j->wrow, 8, j->act, j->arow, j->nb, j->n,
                    y + (r0 - base), j->ldy, j->add);
    } else {
        /* one row of a pass: its nb blocks take fewer bytes than their activations (34 < 48
         * per 32-block, 210 < 292 per 256) */
        uint8_t buf[EL_QMM_SCRATCH];
        for (size_t r = r0; r < r1; r++) {
            /* j->w is this pass's first block of tile 0; el_q_x8_row takes rows nb blocks
             * wide: the tile's, then the block within it */
            const uint8_t *tile = j->w + (r - r % 8) * j->wrow;
            el_q_x8_row(j->wt, tile, j->nb, r % 8, 0, j->nb, buf);
            qmm_row(j, r, buf, base, y);
        }
    }
}

/* Rows r0 .. r1 of j (r0 a multiple of the kernels' row tile: 8 where j->gemm or j->x8, else
 * 4) by every token, into y: row r of token t at y[t * j->ldy + r - r0]. */
static void qmm_rows(const qmm_job *j, size_t r0, size_t r1, float *y) {
    const size_t base = r0;
    if (j->x8) {
        x8_rows(j, r0, r1, y);
        return;
    }
    if (j->gemm) { /* every row by every token, eight rows per pass */
        for (; r0 < r1; r0 += 8)
            j->gemm(j->w + r0 * j->wrow, j->wrow, r1 - r0 < 8 ? r1 - r0 : 8, j->act, j->arow,
                    j->nb, j->n, y + (r0 - base), j->ldy, j->add);
        return;
    }
    if (j->n > 1 && j->r8t4) /* prompt batches: eight rows by four tokens, the rest by one */
        for (; r0 + 8 <= r1; r0 += 8) {
            float v[32];
            size_t t = 0;
            for (; t + 4 <= j->n; t += 4) {
                j->r8t4(j->w + r0 * j->wrow, j->wrow, j->act + t * j->arow, j->arow, j->nb, v);
                for (size_t k = 0; k < 4; k++)
                    for (size_t i = 0; i < 8; i++) {
                        float *o = y + (t + k) * j->ldy + (r0 - base) + i;
                        *o = j->add ? *o + v[8 * k + i] : v[8 * k + i];
                    }
            }
            for (; t < j->n; t++) {
                j->r8(j->w + r0 * j->wrow, j->wrow, j->act + t * j->arow, j->nb, v);
                for (size_t i = 0; i < 8; i++) {
                    float *o = y + t * j->ldy + (r0 - base) + i;
                    *o = j->add ? *o + v[i] : v[i];
                }
            }
        }
    if (j->n == 1 && j->r8) /* decode: eight rows per pass, then four, then one by one */
        for (; r0 + 8 <= r1; r0 += 8) {
            float v[8], *o = y + (r0 - base);
            j->r8(j->w + r0 * j->wrow, j->wrow, j->act, j->nb, v);
            for (size_t i = 0; i < 8; i++) o[i] = j->add ? o[i] + v[i] : v[i];
        }
    if (j->n == 1 && j->r4) {
        for (; r0 + 4 <= r1; r0 += 4) {
            float v[4], *o = y + (r0 - base);
            j->r4(j->w + r0 * j->wrow, j->wrow, j->act, j->nb, v);
            for (size_t i = 0; i < 4; i++) o[i] = j->add ? o[i] + v[i] : v[i];
        }
    }
    for (size_t r = r0; r < r1; r++) qmm_row(j, r, j->w + r * j->wrow, base, y);
}

/* Thread ith takes a contiguous range of rows: multiples of 8 where the GEMM takes them (its
 * tile), else of 4, so rows stay in lines. */
static void qmm_run(void *ctx, unsigned ith, unsigned nth) {
    const qmm_job *j = ctx;
    const size_t unit = j->gemm || j->x8 ? 8 : 4, units = (j->out + unit - 1) / unit;
    size_t r0 = units * ith / nth * unit, r1 = units * (ith + 1) / nth * unit;
    if (r1 > j->out) r1 = j->out;
    if (r0 < r1) qmm_rows(j, r0, r1, j->y + r0);
}

int el_qdot_no_vnni;

/* The row kernels of isa for wt into j: dot4 (four activation rows at once), r4 (four weight
 * rows at once), gemm (8 weight rows x every token; x86), r8 / r8t4 (eight weight rows x one
 * / four tokens; aarch64), each NULL where there is none; returns the x1 kernel. x86: the
 * AVX-512 VNNI variant where the CPU has it, else AVX2; aarch64: the CPU's level. */
static qdot_fn pick_dot(el_isa isa, el_dtype wt, qmm_job *j) {
    qdot_fn *dot4 = &j->dot4;
    qdot_r4_fn *r4 = &j->r4;
    qgemm_fn *gemm = &j->gemm;
    *dot4 = NULL;
    *r4 = NULL;
    *gemm = NULL;
    j->r8 = NULL;
    j->r8t4 = NULL;
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
    if (isa == EL_ISA_NEON) { /* the CPU's level: matmul_q_neon.h */
        const el_qneon_level l = el_qdot_neon_level();
        qdot_r4_fn *r8 = &j->r8;
        qdot_r8t4_fn *r8t4 = &j->r8t4;
        (void)dot4, (void)r4, (void)gemm;
        qdot_fn f = l == EL_QNEON_I8MM      ? el_qdot_pick_i8mm(wt, r8, r8t4)
                    : l == EL_QNEON_DOTPROD ? el_qdot_pick_dotprod(wt, r8, r8t4)
                                            : el_qdot_pick_neon(wt, r8, r8t4);
        if (f) return f;
    }
#endif
    (void)isa;
    (void)wt;
    (void)dot4, (void)r4, (void)gemm;
    return dot_portable_x1;
}

/* The kernels for wt into j (rowwise: --numerics ggml's orders, for a batch of n tokens and
 * out rows; x8: tiled weights); true where they are ggml's K-type ones. */
static bool qmm_pick(el_isa isa, el_dtype wt, size_t n, size_t out, bool rowwise, bool x8,
                     qmm_job *j) {
    j->dot1 = pick_dot(isa, wt, j);
    j->x8 = x8;
    j->x8f = NULL;
    if (x8) { /* the tile kernels where the CPU has them; r4 (four untiled rows) never */
        j->r4 = NULL;
        j->gemm = NULL;
#if defined(__x86_64__)
        if (el_q_x8_can(isa, wt, out))
            j->x8f = el_cpu_has_avx512vnni() && !el_qdot_no_vnni ? el_qx8_pick_vnni(wt, &j->gemm)
                                                                 : el_qx8_pick_avx2(wt, &j->gemm);
#endif
    }
    if (rowwise) j->gemm = NULL, j->x8f = NULL;
    /* ggml's K-type order (matmul_qk_ggml.c): tokens in passes of a multiple of 4, so that
     * qmm_run's groups of four are the batch's first n - n % 4 (ggml's gemm), the rest one
     * by one (its gemv). */
    qdot_fn kg = NULL, kg4 = NULL;
    if (rowwise && el_dtype_block(wt) == 256) kg = el_qdot_pick_ggml_k(isa, wt, n, out, &kg4);
    if (kg) {
        j->dot1 = kg, j->dot4 = kg4;
        j->r4 = NULL, j->r8 = NULL, j->r8t4 = NULL;
    }
    return kg != NULL;
}

void el_cpu_matmul_q(el_pool *p, float *y, size_t ldy, const float *x, const void *w,
                     el_dtype wt, size_t n, size_t in, size_t out, bool rowwise) {
    el_cpu_matmul_qx(p, y, ldy, x, w, wt, n, in, out, rowwise, false);
}

void el_cpu_matmul_qx(el_pool *p, float *y, size_t ldy, const float *x, const void *w,
                      el_dtype wt, size_t n, size_t in, size_t out, bool rowwise, bool x8) {
    _Alignas(64) uint8_t scratch[EL_QMM_SCRATCH];
    const bool k = el_dtype_block(wt) == 256;
    const size_t blk = k ? 256 : 32, ab = k ? sizeof(q8k) : sizeof(q8a);
    const size_t total = in / blk, cap = EL_QMM_SCRATCH / ab;
    const size_t kb = total < cap ? total : cap; /* blocks of in per pass */
    const size_t tn = kb ? cap / kb : 1;         /* tokens per pass */
    qmm_job j = {.ldy = ldy, .wrow = total * el_dtype_block_bytes(wt), .wt = wt,
                 .out = out};
    const bool kg = qmm_pick(p->isa, wt, n, out, rowwise, x8, &j);
    const size_t tstep = kg && tn >= 4 ? tn / 4 * 4 : tn;
    for (size_t b0 = 0; b0 < total; b0 += kb) {
        j.nb = total - b0 < kb ? total - b0 : kb;
        j.arow = j.nb * ab;
        j.w = (const uint8_t *)w + b0 * el_dtype_block_bytes(wt) * (x8 ? 8 : 1);
        j.add = b0 > 0;
        for (size_t t0 = 0; t0 < n; t0 += tstep) {
            j.n = n - t0 < tstep ? n - t0 : tstep;
            for (size_t t = 0; t < j.n; t++) {
                const float *xr = x + (t0 + t) * in + b0 * blk;
                el_quantize_act(p->isa, k, xr, scratch + t * j.arow, j.nb);
            }
            j.act = scratch;
            j.y = y + t0 * ldy;
            el_pool_run_sized(p, (uint64_t)j.n * j.nb * blk * out, qmm_run, &j);
        }
    }
    if (total == 0) /* in == 0: y = 0 as for the float weights */
        for (size_t t = 0; t < n; t++) memset(y + t * ldy, 0, out * sizeof *y);
}

/* ---- decode: one activation row, several matrices, one pool run -------------------------- */

#define QMV_TILE 8u  /* rows: a multiple of every row kernel's tile */
#define QMV_GATED 64u /* gated rows per tile: also a multiple of the activations' vectors */

typedef struct qmv_job {
    qmm_job j[EL_QMV_MAX_PARTS];
    const el_qmv_part *parts;
    size_t n_parts, tiles;
    el_qmv_epi e;
    el_qmv_act_fn act;
    void *act_ctx;
} qmv_job;

/* Rows r0 .. r1 of part i through the epilogue (gated parts: stored). */
static void qmv_part_rows(const qmv_job *q, size_t i, size_t r0, size_t r1) {
    const qmm_job *j = &q->j[i];
    const el_qmv_part *pt = &q->parts[i];
    if (q->e != EL_QMV_ADD && !pt->b) {
        qmm_rows(j, r0, r1, pt->y + r0);
        return;
    }
    float tmp[QMV_GATED]; /* W x (+ b), then stored or added: linear's, add_bias's and add's
                             f32 operations in their order */
    for (size_t r = r0; r < r1; r += QMV_GATED) {
        const size_t m = r1 - r < QMV_GATED ? r1 - r : QMV_GATED;
        qmm_rows(j, r, r + m, tmp);
        if (pt->b)
            el_cpu_add_bias(tmp, m, (const uint8_t *)pt->b + r * el_dtype_size(pt->bt), pt->bt,
                            1, m);
        float *y = pt->y + r;
        if (q->e == EL_QMV_ADD)
            for (size_t k = 0; k < m; k++) y[k] += tmp[k];
        else
            memcpy(y, tmp, m * sizeof *y);
    }
}

static void qmv_rows(const void *ctx, size_t i, size_t r0, size_t r1) {
    qmv_part_rows(ctx, i, r0, r1);
}

static void qmv_run(void *ctx, unsigned ith, unsigned nth) {
    const qmv_job *q = ctx;
    el_qmv_share(q->parts, q->n_parts, q->e, q->tiles,
                 q->e == EL_QMV_GATED ? QMV_GATED : QMV_TILE, q->act, q->act_ctx, qmv_rows, q,
                 ith, nth);
}

bool el_cpu_matvec_q(el_pool *p, const float *x, size_t in, const el_qmv_part *parts,
                     size_t n_parts, el_qmv_epi e, el_qmv_act_fn act, void *act_ctx,
                     bool rowwise) {
    if (n_parts == 0 || n_parts > EL_QMV_MAX_PARTS || in == 0) return false;
    if (e == EL_QMV_GATED && (n_parts != 2 || parts[0].out != parts[1].out)) return false;
    bool kinds[2] = {false, false}; /* q8a, q8k activations wanted */
    size_t rows = 0;
    for (size_t i = 0; i < n_parts; i++) {
        const el_dtype wt = parts[i].wt;
        if (!el_dtype_is_block(wt) || (parts[i].b && el_dtype_is_block(parts[i].bt)))
            return false;
        const size_t blk = el_dtype_block(wt);
        if (in % blk) return false;
        kinds[blk == 256] = true;
        rows += parts[i].out;
    }
    _Alignas(64) uint8_t a8[EL_QMM_SCRATCH / 2], a8k[EL_QMM_SCRATCH / 2];
    if ((kinds[0] && in / 32 * sizeof(q8a) > sizeof a8) ||
        (kinds[1] && in / 256 * sizeof(q8k) > sizeof a8k))
        return false;
    if (kinds[0]) el_quantize_act(p->isa, false, x, a8, in / 32);
    if (kinds[1]) el_quantize_act(p->isa, true, x, a8k, in / 256);
    qmv_job q = {.parts = parts, .n_parts = n_parts, .e = e, .act = act, .act_ctx = act_ctx};
    for (size_t i = 0; i < n_parts; i++) {
        const el_dtype wt = parts[i].wt;
        const bool k = el_dtype_block(wt) == 256;
        const size_t nb = in / (k ? 256 : 32);
        qmm_job *j = &q.j[i];
        *j = (qmm_job){.ldy = parts[i].out, .w = parts[i].w, .wrow = nb * el_dtype_block_bytes(wt),
                       .wt = wt, .act = k ? a8k : a8, .arow = nb * (k ? sizeof(q8k) : sizeof(q8a)),
                       .n = 1, .nb = nb, .out = parts[i].out};
        (void)qmm_pick(p->isa, wt, 1, parts[i].out, rowwise, parts[i].x8, j);
        if (e != EL_QMV_GATED) q.tiles += (parts[i].out + QMV_TILE - 1) / QMV_TILE;
    }
    if (e == EL_QMV_GATED) q.tiles = (parts[0].out + QMV_GATED - 1) / QMV_GATED;
    el_pool_run_sized(p, (uint64_t)in * rows, qmv_run, &q);
    return true;
}

/* ---- decode on 8-row tiles (matmul_q_x86.inc, "decode on 8-row tiles") ------------------- */

bool el_q_x8_can(el_isa isa, el_dtype wt, size_t rows) {
#if defined(__x86_64__)
    return isa == EL_ISA_AVX2 &&
           (wt == EL_DT_Q4_0 || wt == EL_DT_Q4_1 || wt == EL_DT_Q5_0 || wt == EL_DT_Q5_1 ||
            wt == EL_DT_Q8_0 || wt == EL_DT_Q4_K || wt == EL_DT_Q5_K || wt == EL_DT_Q6_K) &&
           rows % 8 == 0;
#else
    (void)isa, (void)wt, (void)rows;
    return false;
#endif
}

/* One tile of 8 rows (row stride nb * bb) between the layouts: to the tiled one at t from the
 * rows at r (tiled), or back (!tiled). */
static void x8_tile(el_dtype wt, uint8_t *t, uint8_t *r, size_t nb, bool tiled) {
    const size_t bb = el_dtype_block_bytes(wt), hb = el_q_x8_head(wt), qb = bb - hb;
    const size_t wrow = nb * bb;
    for (size_t b = 0; b < nb; b++)
        for (size_t k = 0; k < 8; k++) {
            uint8_t *tb = t + 8 * bb * b, *rb = r + k * wrow + b * bb;
            uint8_t *td = tb + hb * k, *tq = tb + el_q_x8_quants(wt, k);
            memcpy(tiled ? td : rb, tiled ? rb : td, hb);
            memcpy(tiled ? tq : rb + hb, tiled ? rb + hb : tq, qb);
        }
}

void el_q_x8_row(el_dtype wt, const void *w, size_t nb, size_t row, size_t b0, size_t n,
                 void *out) {
    const size_t bb = el_dtype_block_bytes(wt), hb = el_q_x8_head(wt), qb = bb - hb, k = row % 8;
    const uint8_t *tile = (const uint8_t *)w + (row - k) * nb * bb;
    uint8_t *o = out;
    for (size_t b = b0; b < b0 + n; b++, o += bb) {
        memcpy(o, tile + b * 8 * bb + hb * k, hb);
        memcpy(o + hb, tile + b * 8 * bb + el_q_x8_quants(wt, k), qb);
    }
}

void el_q_x8_repack(el_dtype wt, void *w, size_t rows, size_t nb, void *tmp, bool tiled) {
    const size_t tile = 8 * nb * el_dtype_block_bytes(wt);
    for (size_t r = 0; r < rows; r += 8) {
        uint8_t *p = (uint8_t *)w + r / 8 * tile;
        memcpy(tmp, p, tile);
        if (tiled) x8_tile(wt, p, tmp, nb, true);
        else x8_tile(wt, tmp, p, nb, false);
    }
}
