/* matmul_qk_ggml.c - the K-type dot products of --numerics ggml: Q4_K and Q6_K weights
 * against Q8_K activations with the float arithmetic of llama.cpp's x86 builds (AVX2 and
 * AVX-512 alike; ggml-cpu of llama-cpp-python 0.3.36, written from its source). The integer
 * sums are exact in both runtimes; what differs is where they become floats and in which
 * order those are added:
 *   - Q4_K: ggml repacks the weights at load (q4_K_8x8, eight rows interleaved; x86 with
 *     AVX2, rows a multiple of 8) and runs, per weight row and token, two f32 accumulators
 *     acc = fma((float)isum, d * da, acc) and accm = fma((float)imin, dmin * da, accm),
 *     result acc - accm, where d, dmin are the row block's f16 scales and da the token
 *     block's. One token at a time (ggml_gemv_q4_K_8x8_q8_K) takes isum / imin over the
 *     whole 256-block; four tokens at a time (ggml_gemm_q4_K_8x8_q8_K, the first n - n % 4
 *     of a batch; the rest one by one) one fma per pair of 32-sub-blocks, four per block;
 *   - Q6_K (not repacked on x86), batches under 8 tokens (ggml_vec_dot_q6_K_q8_K): eight
 *     int32 lanes per block, lane L the products of the bytes 4L..4L+3 of each 32 (values
 *     0..63 times the sub-block's scale) less 32 * (bsum[2L] sc[2L] + bsum[2L+1] sc[2L+1]);
 *     lane accumulators acc[L] = fma(da * d, (float)lane, acc[L]); then GGML's 8-lane
 *     horizontal sum ((a0+a4) + (a2+a6)) + ((a1+a5) + (a3+a7)); batches of 8 or more
 *     (ggml's tiled matmul): acc = fma(d * (float)isum, da, acc) per block.
 *   - Q5_K (never repacked on x86) and Q4_K matrices whose row count is not a multiple of 8
 *     (ggml does not repack those), batches under 8 tokens (ggml_vec_dot_q5_K_q8_K /
 *     ggml_vec_dot_q4_K_q8_K): eight int32 lanes per block, lane L the products of the bytes
 *     4L..4L+3 of each 32-sub-block times its scale; acc[L] = fma(da * d, (float)lane, acc[L]),
 *     the 8-lane horizontal sum above at the end; the mins apart: four lanes
 *     k = mins[2k] S[2k] + mins[2k+1] S[2k+1] (S[j] the token's sum over sub-block j) with
 *     accm[k] = fma(-da * dmin, (float)k-lane, accm[k]) and (m0 + m2) + (m1 + m3) at the end
 *     (Q4_K), or summs = fma(-da * dmin, (float)(sum of mins . S), summs) (Q5_K); the result
 *     the lane sum plus that. Batches of 8 or more (the tiled matmul): per block
 *     r = fma(-dmin, (float)imin, d * (float)isum), acc = fma(r, da, acc).
 * The integer sums run in AVX2 where the pool's ISA has it, else in plain C (the same exact
 * integers): the float arithmetic is the same scalar statement everywhere, so aarch64 runs
 * the x86 builds' order too (ggml's NEON builds sum in other orders; they repack Q5_K too).
 * Not modelled: Q4_K inputs wider than 14,336 (matmul_q.c's passes over the input add the
 * partial sums of each pass; ggml takes the whole row). */
#include "kernels/cpu/matmul_q_impl.h"
#include "kernels/fp16.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define EL_AVX2 __attribute__((target("avx2,fma")))
#endif

/* Block layouts (ggml): Q4_K d, dmin (f16), scales[12], qs[128] (sub-blocks 2p and 2p+1:
 * the low and high nibbles of qs[32p .. 32p+32)); Q6_K ql[128], qh[64], scales[16] (i8),
 * d (f16). */
#define Q4K_BYTES 144
#define Q6K_BYTES 210
/* Q5_K: d, dmin (f16), scales[12], qh[32] (bit j of qh[i]: the fifth bit of element i of
 * sub-block j), qs[128] (as Q4_K's). */
#define Q5K_BYTES 176

static inline float h2f(const uint8_t *p) {
    uint16_t h;
    memcpy(&h, p, sizeof h);
    return el_fp16_to_fp32(h);
}

/* dot[j] = the 32 nibbles of Q4_K sub-block j . q8[32j ..): exact. */
typedef void (*q4k_dots_fn)(const uint8_t *qs, const int8_t *q8, int32_t dot[8]);
/* lane[L] of ggml_vec_dot_q6_K_q8_K: the products (values 0..63) of the bytes 4L..4L+3 of
 * each 32, times their 16-sub-block's scale, less 32 (bsum[2L] sc[2L] + bsum[2L+1] sc[2L+1]):
 * exact; the lanes add up to the block's sum of sc * (q - 32) * q8. */
typedef void (*q6k_lanes_fn)(const uint8_t *blk, const q8k *a, int32_t lane[8]);
/* lane[L] of ggml_vec_dot_q4_K_q8_K / _q5_K_: the products of the bytes 4L..4L+3 of each
 * 32-sub-block j (nibbles of qs, plus bit j of qh[i] as 16 where qh is not NULL: Q5_K) with
 * q8, times sc[j]: exact; the lanes add up to the block's sum of sc[j] * q * q8. */
typedef void (*q45k_lanes_fn)(const uint8_t *qs, const uint8_t *qh, const int8_t *q8,
                              const uint8_t sc[8], int32_t lane[8]);

static void q4k_dots_portable(const uint8_t *qs, const int8_t *q8, int32_t dot[8]) {
    for (int p = 0; p < 4; p++) {
        int32_t lo = 0, hi = 0;
        for (int i = 0; i < 32; i++) {
            lo += (int32_t)(qs[32 * p + i] & 0x0f) * q8[64 * p + i];
            hi += (int32_t)(qs[32 * p + i] >> 4) * q8[64 * p + 32 + i];
        }
        dot[2 * p] = lo, dot[2 * p + 1] = hi;
    }
}

static void q6k_lanes_portable(const uint8_t *blk, const q8k *a, int32_t lane[8]) {
    const uint8_t *ql = blk, *qh = blk + 128;
    const int8_t *sc = (const int8_t *)(blk + 192);
    for (int L = 0; L < 8; L++)
        lane[L] = -32 * (a->bsums[2 * L] * sc[2 * L] + a->bsums[2 * L + 1] * sc[2 * L + 1]);
    for (int g = 0; g < 2; g++) /* 128 elements: four runs of 32 (quant.c's el_quant_unpack) */
        for (int run = 0; run < 4; run++)
            for (int l = 0; l < 32; l++) {
                const int lo = ql[64 * g + 32 * (run & 1) + l], e = 128 * g + 32 * run + l;
                const int q = (run < 2 ? lo & 0x0f : lo >> 4) | ((qh[32 * g + l] >> (2 * run)) & 3)
                                                                 << 4;
                lane[l >> 2] += q * a->qs[e] * sc[e >> 4];
            }
}

static void q45k_lanes_portable(const uint8_t *qs, const uint8_t *qh, const int8_t *q8,
                                const uint8_t sc[8], int32_t lane[8]) {
    for (int L = 0; L < 8; L++) lane[L] = 0;
    for (int j = 0; j < 8; j++)
        for (int i = 0; i < 32; i++) {
            const int b = qs[32 * (j >> 1) + i];
            const int q = (j & 1 ? b >> 4 : b & 0x0f) | (qh ? ((qh[i] >> j) & 1) << 4 : 0);
            lane[i >> 2] += sc[j] * q * q8[32 * j + i];
        }
}

#if defined(__x86_64__)
static inline EL_AVX2 int32_t hsum8_epi32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4e));
    return _mm_cvtsi128_si32(_mm_add_epi32(s, _mm_shuffle_epi32(s, 0xb1)));
}

static EL_AVX2 void q4k_dots_avx2(const uint8_t *qs, const int8_t *q8, int32_t dot[8]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), ones = _mm256_set1_epi16(1);
    for (int p = 0; p < 4; p++) {
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 32 * p));
        const __m256i lo = _mm256_and_si256(raw, m4);
        const __m256i hi = _mm256_and_si256(_mm256_srli_epi16(raw, 4), m4);
        const __m256i a0 = _mm256_loadu_si256((const __m256i *)(const void *)(q8 + 64 * p));
        const __m256i a1 = _mm256_loadu_si256((const __m256i *)(const void *)(q8 + 64 * p + 32));
        /* nibble x int8 pairs: at most 2 * 15 * 127 in an i16, no saturation */
        dot[2 * p] = hsum8_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, a0), ones));
        dot[2 * p + 1] = hsum8_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(hi, a1), ones));
    }
}

static EL_AVX2 void q45k_lanes_avx2(const uint8_t *qs, const uint8_t *qh, const int8_t *q8,
                                    const uint8_t sc[8], int32_t lane[8]) {
    const __m256i m4 = _mm256_set1_epi8(0x0f), one = _mm256_set1_epi8(1);
    const __m256i h = qh ? _mm256_loadu_si256((const __m256i *)(const void *)qh)
                         : _mm256_setzero_si256();
    __m256i acc = _mm256_setzero_si256();
    for (int j = 0; j < 8; j++) {
        const __m256i raw = _mm256_loadu_si256((const __m256i *)(const void *)(qs + 32 * (j >> 1)));
        const __m256i lo = _mm256_and_si256(j & 1 ? _mm256_srli_epi16(raw, 4) : raw, m4);
        /* bit j of each qh byte, to 16 (the 16-bit shift's spill is masked off) */
        const __m256i hb = _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, j), one), 4);
        const __m256i a8 = _mm256_loadu_si256((const __m256i *)(const void *)(q8 + 32 * j));
        /* 0..31 x int8 pairs: at most 2 * 31 * 128 in an i16, no saturation */
        const __m256i p = _mm256_maddubs_epi16(_mm256_or_si256(lo, hb), a8);
        acc = _mm256_add_epi32(acc, _mm256_madd_epi16(p, _mm256_set1_epi16(sc[j])));
    }
    _mm256_storeu_si256((__m256i *)(void *)lane, acc);
}

static EL_AVX2 void q6k_lanes_avx2(const uint8_t *blk, const q8k *a, int32_t lane[8]) {
    const int8_t *sc = (const int8_t *)(blk + 192);
    const __m256i m4 = _mm256_set1_epi8(0x0f), m2 = _mm256_set1_epi8(3);
    __m256i acc = _mm256_setzero_si256();
    for (int g = 0; g < 2; g++) {
        const __m256i ql0 = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 64 * g));
        const __m256i ql1 = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 64 * g + 32));
        const __m256i h = _mm256_loadu_si256((const __m256i *)(const void *)(blk + 128 + 32 * g));
        __m256i q[4];
        q[0] = _mm256_or_si256(_mm256_and_si256(ql0, m4),
                               _mm256_slli_epi16(_mm256_and_si256(h, m2), 4));
        q[1] = _mm256_or_si256(_mm256_and_si256(ql1, m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 2), m2), 4));
        q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql0, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 4), m2), 4));
        q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(ql1, 4), m4),
                               _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(h, 6), m2), 4));
        for (int r = 0; r < 4; r++) {
            const int c = 4 * g + r; /* elements 32c .. 32c+32, scales 2c and 2c+1 */
            const __m256i a8 = _mm256_loadu_si256((const __m256i *)(const void *)(a->qs + 32 * c));
            const __m256i scv = _mm256_set_m128i(_mm_set1_epi16(sc[2 * c + 1]),
                                                 _mm_set1_epi16(sc[2 * c]));
            /* 0..63 x int8 pairs: at most 2 * 63 * 127 in an i16 */
            acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(q[r], a8), scv));
        }
    }
    _mm256_storeu_si256((__m256i *)(void *)lane, acc);
    for (int L = 0; L < 8; L++)
        lane[L] -= 32 * (a->bsums[2 * L] * sc[2 * L] + a->bsums[2 * L + 1] * sc[2 * L + 1]);
}
#endif

/* ggml_gemv_q4_K_8x8_q8_K's arithmetic for one weight row and one token. */
static inline void q4k_gemv(const uint8_t *w, const uint8_t *act, size_t nb, float *out,
                            q4k_dots_fn dots) {
    const q8k *a = (const q8k *)(const void *)act;
    float acc = 0, accm = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + Q4K_BYTES * b;
        uint8_t sm[16]; /* scales 0..7, mins 8..15 */
        el_quant_k_scales(blk + 4, sm);
        int32_t dot[8], isum = 0, imin = 0;
        dots(blk + 16, a[b].qs, dot);
        for (int j = 0; j < 8; j++) {
            isum += sm[j] * dot[j];
            imin += sm[8 + j] * ((int32_t)a[b].bsums[2 * j] + a[b].bsums[2 * j + 1]);
        }
        acc = fmaf((float)isum, h2f(blk) * a[b].d, acc);
        accm = fmaf((float)imin, h2f(blk + 2) * a[b].d, accm);
    }
    out[0] = acc - accm;
}

/* ggml_gemm_q4_K_8x8_q8_K's arithmetic for one weight row and four tokens (arow bytes
 * apart): one fma per pair of sub-blocks. */
static inline void q4k_gemm4(const uint8_t *w, const uint8_t *act, size_t arow, size_t nb,
                             float *out, q4k_dots_fn dots) {
    float acc[4] = {0, 0, 0, 0}, accm[4] = {0, 0, 0, 0};
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + Q4K_BYTES * b;
        uint8_t sm[16];
        el_quant_k_scales(blk + 4, sm);
        const float d = h2f(blk), dmin = h2f(blk + 2);
        for (size_t t = 0; t < 4; t++) {
            const q8k *a = (const q8k *)(const void *)(act + t * arow) + b;
            int32_t dot[8];
            dots(blk + 16, a->qs, dot);
            const float ds = d * a->d, ms = dmin * a->d;
            for (int p = 0; p < 4; p++) {
                const int j = 2 * p;
                const int32_t is = sm[j] * dot[j] + sm[j + 1] * dot[j + 1];
                const int32_t im = sm[8 + j] * ((int32_t)a->bsums[2 * j] + a->bsums[2 * j + 1]) +
                                   sm[9 + j] * ((int32_t)a->bsums[2 * j + 2] + a->bsums[2 * j + 3]);
                acc[t] = fmaf((float)is, ds, acc[t]);
                accm[t] = fmaf((float)im, ms, accm[t]);
            }
        }
    }
    for (size_t t = 0; t < 4; t++) out[t] = acc[t] - accm[t];
}

/* ggml_vec_dot_q6_K_q8_K's (AVX2) arithmetic for one weight row and one token: per-lane
 * fma(da * d, lane, acc), then GGML's 8-lane horizontal sum. */
static inline void q6k_vec(const uint8_t *w, const uint8_t *act, size_t nb, float *out,
                           q6k_lanes_fn lanes) {
    const q8k *a = (const q8k *)(const void *)act;
    float acc[8] = {0};
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + Q6K_BYTES * b;
        int32_t lane[8];
        lanes(blk, &a[b], lane);
        const float d = a[b].d * h2f(blk + 208);
        for (int L = 0; L < 8; L++) acc[L] = fmaf(d, (float)lane[L], acc[L]);
    }
    out[0] = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
}

/* ggml's tiled K-quant matmul (ggml-cpu tiled/, batches of 8 tokens or more) for Q6_K, one
 * weight row and one token: per block the exact integer sum isum of sc * (q - 32) * q8, then
 * acc = fma(d * (float)isum, da, acc) (the AVX2 microkernel's fma; the AVX-512 VNNI one's
 * multiply and add, contracted to the same fma by GCC: checked against its output). */
static inline void q6k_tiled(const uint8_t *w, const uint8_t *act, size_t nb, float *out,
                             q6k_lanes_fn lanes) {
    const q8k *a = (const q8k *)(const void *)act;
    float acc = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + Q6K_BYTES * b;
        int32_t lane[8], isum = 0;
        lanes(blk, &a[b], lane);
        for (int L = 0; L < 8; L++) isum += lane[L];
        acc = fmaf(h2f(blk + 208) * (float)isum, a[b].d, acc);
    }
    out[0] = acc;
}

/* A Q4_K / Q5_K block's parts: its bytes, qs and qh (NULL for Q4_K). */
static inline size_t q45k_bytes(el_dtype wt) { return wt == EL_DT_Q5_K ? Q5K_BYTES : Q4K_BYTES; }
static inline const uint8_t *q45k_qh(el_dtype wt, const uint8_t *blk) {
    return wt == EL_DT_Q5_K ? blk + 16 : NULL;
}
static inline const uint8_t *q45k_qs(el_dtype wt, const uint8_t *blk) {
    return blk + (wt == EL_DT_Q5_K ? 48 : 16);
}

/* mk[k] = mins[2k] S[2k] + mins[2k+1] S[2k+1], S[j] = the token's sum over sub-block j: the
 * four lanes of ggml's min products (exact). */
static inline void q45k_mins(const uint8_t sm[16], const q8k *a, int32_t mk[4]) {
    for (int k = 0; k < 4; k++)
        mk[k] = sm[8 + 2 * k] * ((int32_t)a->bsums[4 * k] + a->bsums[4 * k + 1]) +
                sm[9 + 2 * k] * ((int32_t)a->bsums[4 * k + 2] + a->bsums[4 * k + 3]);
}

/* ggml_vec_dot_q4_K_q8_K's / ggml_vec_dot_q5_K_q8_K's (AVX2) arithmetic for one weight row
 * and one token (the matrices ggml does not repack, batches under 8 tokens). */
static inline void q45k_vec(el_dtype wt, const uint8_t *w, const uint8_t *act, size_t nb,
                            float *out, q45k_lanes_fn lanes) {
    const q8k *a = (const q8k *)(const void *)act;
    const size_t bytes = q45k_bytes(wt);
    float acc[8] = {0}, accm[4] = {0}, summs = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + bytes * b;
        uint8_t sm[16];
        el_quant_k_scales(blk + 4, sm);
        int32_t lane[8], mk[4];
        lanes(q45k_qs(wt, blk), q45k_qh(wt, blk), a[b].qs, sm, lane);
        q45k_mins(sm, &a[b], mk);
        const float d = a[b].d * h2f(blk), dmin = -a[b].d * h2f(blk + 2);
        for (int L = 0; L < 8; L++) acc[L] = fmaf(d, (float)lane[L], acc[L]);
        if (wt == EL_DT_Q5_K) /* one scalar (the four lanes' integer sum); quants.c's
                               * summs += dmin * x, contracted by GCC (checked) */
            summs = fmaf(dmin, (float)(mk[0] + mk[1] + mk[2] + mk[3]), summs);
        else
            for (int k = 0; k < 4; k++) accm[k] = fmaf(dmin, (float)mk[k], accm[k]);
    }
    if (wt != EL_DT_Q5_K) summs = (accm[0] + accm[2]) + (accm[1] + accm[3]);
    out[0] = (((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]))) +
             summs;
}

/* ggml's tiled matmul (batches of 8 tokens or more) for Q4_K / Q5_K, one weight row and one
 * token: per block the exact isum (scales . sub-block dots) and imin (mins . sub-block sums),
 * r = fma(-dmin, (float)imin, d * (float)isum), acc = fma(r, da, acc). */
static inline void q45k_tiled(el_dtype wt, const uint8_t *w, const uint8_t *act, size_t nb,
                              float *out, q45k_lanes_fn lanes) {
    const q8k *a = (const q8k *)(const void *)act;
    const size_t bytes = q45k_bytes(wt);
    float acc = 0;
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *blk = w + bytes * b;
        uint8_t sm[16];
        el_quant_k_scales(blk + 4, sm);
        int32_t lane[8], mk[4], isum = 0;
        lanes(q45k_qs(wt, blk), q45k_qh(wt, blk), a[b].qs, sm, lane);
        q45k_mins(sm, &a[b], mk);
        for (int L = 0; L < 8; L++) isum += lane[L];
        const float r = fmaf(-h2f(blk + 2), (float)(mk[0] + mk[1] + mk[2] + mk[3]),
                             h2f(blk) * (float)isum);
        acc = fmaf(r, a[b].d, acc);
    }
    out[0] = acc;
}

/* The qdot_fn entries, one set per integer kernel. */
#define GG_KSET(SFX, DOTS, LANES, LANES45)                                                   \
    static void q4k_gemv_##SFX(el_dtype wt, const uint8_t *w, const uint8_t *act,             \
                               size_t arow, size_t nb, float *out) {                          \
        (void)wt, (void)arow;                                                                 \
        q4k_gemv(w, act, nb, out, DOTS);                                                      \
    }                                                                                         \
    static void q4k_gemm4_##SFX(el_dtype wt, const uint8_t *w, const uint8_t *act,            \
                                size_t arow, size_t nb, float *out) {                         \
        (void)wt;                                                                             \
        q4k_gemm4(w, act, arow, nb, out, DOTS);                                               \
    }                                                                                         \
    static void q6k_vec_##SFX(el_dtype wt, const uint8_t *w, const uint8_t *act, size_t arow, \
                              size_t nb, float *out) {                                        \
        (void)wt, (void)arow;                                                                 \
        q6k_vec(w, act, nb, out, LANES);                                                      \
    }                                                                                         \
    static void q6k_tiled_##SFX(el_dtype wt, const uint8_t *w, const uint8_t *act,            \
                                size_t arow, size_t nb, float *out) {                         \
        (void)wt, (void)arow;                                                                 \
        q6k_tiled(w, act, nb, out, LANES);                                                    \
    }                                                                                         \
    static void q45k_vec_##SFX(el_dtype wt, const uint8_t *w, const uint8_t *act,             \
                               size_t arow, size_t nb, float *out) {                          \
        (void)arow;                                                                           \
        q45k_vec(wt, w, act, nb, out, LANES45);                                               \
    }                                                                                         \
    static void q45k_tiled_##SFX(el_dtype wt, const uint8_t *w, const uint8_t *act,           \
                                 size_t arow, size_t nb, float *out) {                        \
        (void)arow;                                                                           \
        q45k_tiled(wt, w, act, nb, out, LANES45);                                             \
    }

GG_KSET(portable, q4k_dots_portable, q6k_lanes_portable, q45k_lanes_portable)
#if defined(__x86_64__)
GG_KSET(avx2, q4k_dots_avx2, q6k_lanes_avx2, q45k_lanes_avx2)
#endif

/* ggml's choice for wt, a batch of n and a matrix of rows rows (llama.cpp's
 * ggml_repack_get_optimal_repack_type on x86: Q4_K repacked where rows % 8 == 0). */
#define GG_KPICK(SFX)                                                                         \
    do {                                                                                      \
        if (wt == EL_DT_Q4_K && rows % 8 == 0) {                                              \
            *dot4 = q4k_gemm4_##SFX;                                                          \
            return q4k_gemv_##SFX;                                                            \
        }                                                                                     \
        if (wt == EL_DT_Q4_K || wt == EL_DT_Q5_K)                                             \
            return n >= 8 ? q45k_tiled_##SFX : q45k_vec_##SFX;                                \
        return wt == EL_DT_Q6_K ? (n >= 8 ? q6k_tiled_##SFX : q6k_vec_##SFX) : NULL;          \
    } while (0)

qdot_fn el_qdot_pick_ggml_k(el_isa isa, el_dtype wt, size_t n, size_t rows, qdot_fn *dot4) {
    *dot4 = NULL;
#if defined(__x86_64__)
    if (isa == EL_ISA_AVX2) GG_KPICK(avx2);
#endif
    (void)isa;
    GG_KPICK(portable);
}
