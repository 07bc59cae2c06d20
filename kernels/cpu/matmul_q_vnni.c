/* matmul_q_vnni.c - the block-type kernels with AVX-512 VNNI on 256-bit vectors
 * (matmul_q_x86.inc): one vpdpbusd where AVX2 needs maddubs + madd. */
#define QX_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define QX_DOT1(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
#define QX_DOTACC(a, u, s) _mm256_dpbusd_epi32(a, u, s)
#define QX_GEMM_T 8
#define QX_PICK el_qdot_pick_vnni
#define QX_GEMM_PICK el_qgemm_pick_vnni
#include "kernels/cpu/matmul_q_x86.inc"

#include <string.h>

#if defined(__x86_64__)
bool el_cpu_has_avx512vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
#endif

/* ---- eight weight rows per pass (decode), 512-bit ------------------------------------------
 * Rows r, r + 1 of a block share one 512-bit register (32 values each), dotted with the
 * activation block held twice; the per-block scales of the eight rows come in with one
 * gather (d, and m in the next 16 bits for Q4_1). Each row keeps the 8 float lanes the
 * 256-bit kernels keep, updated with the same operations, so the result has their bits. */
#if defined(__x86_64__)
#define V512 __attribute__((target(QX_TARGET ",avx512dq")))
#define V512_INLINE static inline __attribute__((always_inline)) V512

/* Rows at pa, pb: 16 bytes of nibbles each -> [pa: v0..v31 | pb: v0..v31] as bytes. */
V512_INLINE __m512i nib_pair(const uint8_t *pa, const uint8_t *pb) {
    const __m256i b = _mm256_inserti128_si256(
        _mm256_castsi128_si256(_mm_loadu_si128((const __m128i *)pa)),
        _mm_loadu_si128((const __m128i *)pb), 1);
    const __m256i m4 = _mm256_set1_epi8(0x0f);
    const __m256i lo = _mm256_and_si256(b, m4), hi = _mm256_and_si256(_mm256_srli_epi16(b, 4), m4);
    /* 128-bit lanes [lo a, lo b, hi a, hi b] -> [lo a, hi a, lo b, hi b] */
    const __m512i z = _mm512_inserti64x4(_mm512_castsi256_si512(lo), hi, 1);
    return _mm512_shuffle_i64x2(z, z, _MM_SHUFFLE(3, 1, 2, 0));
}

V512_INLINE float hsum8_v(__m256 a) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/* Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: eight rows wrow bytes apart (7 * wrow < 2^31) against NT
 * activation rows arow bytes apart (NT = 1: decode; prompt batches take the GEMM of
 * matmul_q_x86.inc); out[t * 8 + r]. */
V512_INLINE void dot32_r8(el_dtype wt, const int NT, const uint8_t *w, size_t wrow,
                          const uint8_t *act, size_t arow, size_t nb, float *out) {
    const size_t bb = el_dtype_block_bytes(wt);
    const bool has_min = wt == EL_DT_Q4_1 || wt == EL_DT_Q5_1;
    const bool five = wt == EL_DT_Q5_0 || wt == EL_DT_Q5_1;
    /* where the nibbles and the fifth bits start; the offset the values carry (v - off) */
    const size_t qs_at = wt == EL_DT_Q4_1 ? 4 : wt == EL_DT_Q5_0 ? 6 : wt == EL_DT_Q5_1 ? 8 : 2;
    const size_t qh_at = has_min ? 4 : 2;
    const int shift = wt == EL_DT_Q4_0 ? 3 : wt == EL_DT_Q5_0 ? 4 : 0;
    const __m256i rowoff = _mm256_mullo_epi32(_mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7),
                                              _mm256_set1_epi32((int)wrow));
    __m512 acc[4][4];
    __m256 rest[4];
    for (int t = 0; t < NT; t++) {
        rest[t] = _mm256_setzero_ps();
        for (int p = 0; p < 4; p++) acc[p][t] = _mm512_setzero_ps();
    }
    for (size_t b = 0; b < nb; b++) {
        const uint8_t *wb = w + b * bb;
        /* d (and m) of the eight rows: 32 bits at each row's block start */
        const __m256i dm = _mm256_i32gather_epi32((const int *)(const void *)wb, rowoff, 1);
        const __m512 dw = _mm512_castps256_ps512(_mm256_cvtph_ps(_mm256_cvtepi32_epi16(dm)));
        const __m256 mw = has_min ? _mm256_cvtph_ps(_mm256_cvtepi32_epi16(_mm256_srli_epi32(dm, 16)))
                                  : _mm256_setzero_ps();
        /* the rows' values: pair p = rows 2p, 2p + 1 (signed bytes for Q8_0, else unsigned);
         * their scales with lanes 0..7 row 2p's, 8..15 row 2p + 1's */
        __m512i q[4];
        __m512 dp[4];
#pragma GCC unroll 4
        for (int p = 0; p < 4; p++) {
            const uint8_t *ra = wb + (size_t)(2 * p) * wrow, *rb = ra + wrow;
            if (wt == EL_DT_Q8_0) {
                q[p] = _mm512_inserti64x4(
                    _mm512_castsi256_si512(_mm256_loadu_si256((const __m256i *)(ra + 2))),
                    _mm256_loadu_si256((const __m256i *)(rb + 2)), 1);
            } else {
                q[p] = nib_pair(ra + qs_at, rb + qs_at);
                if (five) { /* bit j of the 32-bit qh: value j's fifth bit */
                    uint32_t ha, hb;
                    memcpy(&ha, ra + qh_at, 4);
                    memcpy(&hb, rb + qh_at, 4);
                    const __mmask64 h = (__mmask64)ha | (__mmask64)hb << 32;
                    q[p] = _mm512_or_si512(q[p], _mm512_maskz_mov_epi8(h, _mm512_set1_epi8(0x10)));
                }
            }
            const int lo = 2 * p, hi = 2 * p + 1;
            dp[p] = _mm512_permutexvar_ps(_mm512_set_epi32(hi, hi, hi, hi, hi, hi, hi, hi, lo, lo,
                                                           lo, lo, lo, lo, lo, lo), dw);
        }
        for (int t = 0; t < NT; t++) {
            const q8a *a = (const q8a *)(const void *)(act + (size_t)t * arow) + b;
            const __m512i x = _mm512_broadcast_i64x4(_mm256_loadu_si256((const __m256i *)a->qs));
            if (has_min) rest[t] = _mm256_fmadd_ps(mw, _mm256_set1_ps(a->s16), rest[t]);
            /* Q4_0 / Q5_0: (v - off) . x = v . x - off (sum of x), per group of four */
            const __m512i xoff = shift
                ? _mm512_slli_epi32(_mm512_dpbusd_epi32(_mm512_setzero_si512(),
                                                        _mm512_set1_epi8(1), x), (unsigned)shift)
                : _mm512_setzero_si512();
            const __m512 ad = _mm512_set1_ps(a->d);
#pragma GCC unroll 4
            for (int p = 0; p < 4; p++) {
                __m512i dot;
                if (wt == EL_DT_Q8_0) {
                    const __mmask64 neg = _mm512_movepi8_mask(q[p]);
                    dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_abs_epi8(q[p]),
                                              _mm512_mask_sub_epi8(x, neg, _mm512_setzero_si512(), x));
                } else {
                    dot = _mm512_dpbusd_epi32(_mm512_setzero_si512(), q[p], x);
                    if (shift) dot = _mm512_sub_epi32(dot, xoff);
                }
                acc[p][t] = _mm512_fmadd_ps(_mm512_mul_ps(dp[p], ad), _mm512_cvtepi32_ps(dot),
                                            acc[p][t]);
            }
        }
    }
    for (int t = 0; t < NT; t++) {
        float r8[8];
        _mm256_storeu_ps(r8, rest[t]);
        for (int p = 0; p < 4; p++) {
            out[8 * t + 2 * p] = hsum8_v(_mm512_castps512_ps256(acc[p][t])) + r8[2 * p];
            out[8 * t + 2 * p + 1] = hsum8_v(_mm512_extractf32x8_ps(acc[p][t], 1)) + r8[2 * p + 1];
        }
    }
}

#define EL_QDOT_R8(name, T)                                                                    \
    static V512 void name##_r8(const uint8_t *w, size_t wrow, const uint8_t *act, size_t nb,    \
                               float *out) {                                                   \
        dot32_r8(T, 1, w, wrow, act, 0, nb, out);                                              \
    }
EL_QDOT_R8(dot_vnni_q8_0, EL_DT_Q8_0)
EL_QDOT_R8(dot_vnni_q4_0, EL_DT_Q4_0)
EL_QDOT_R8(dot_vnni_q4_1, EL_DT_Q4_1)
EL_QDOT_R8(dot_vnni_q5_0, EL_DT_Q5_0)
EL_QDOT_R8(dot_vnni_q5_1, EL_DT_Q5_1)
#undef EL_QDOT_R8

qdot_r4_fn el_qdot_pick_vnni_r8(el_dtype wt) {
#define EL_PICK(T, name)                                                                       \
    case T: return name##_r8;
    switch (wt) {
    EL_PICK(EL_DT_Q8_0, dot_vnni_q8_0)
    EL_PICK(EL_DT_Q4_0, dot_vnni_q4_0)
    EL_PICK(EL_DT_Q4_1, dot_vnni_q4_1)
    EL_PICK(EL_DT_Q5_0, dot_vnni_q5_0)
    EL_PICK(EL_DT_Q5_1, dot_vnni_q5_1)
    default: return NULL;
    }
#undef EL_PICK
}
#endif
