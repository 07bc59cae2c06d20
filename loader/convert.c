/* convert.c - the loader's float conversions a vector at a time: f16 -> f32 and f32 -> f16
 * (x86 F16C, aarch64 NEON), bf16 -> f32 (SSE2 unpacks), and the transposing converter's
 * full 32 x 32 f32 blocks (AVX register transposes). Each
 * gives the bits el_fp16_to_fp32 / el_fp32_to_fp16 / el_bf16_to_fp32 (kernels/fp16.h) give:
 * the hardware rounds to nearest even as they do, and the one place it differs, the
 * payload of a NaN, never reaches it: a group of lanes holding a NaN (or an infinity) is
 * converted by the scalar loop instead. el_convert calls el_convert_fast first. */
#include "kernels/cpu/cpu.h"
#include "kernels/fp16.h"
#include "loader/load_impl.h"

#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define EL_F16C __attribute__((target("avx,f16c")))
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

/* Source and destination may be at any alignment (el_convert's contract): vector access
 * through unaligned loads and stores; the odd elements (tails, groups holding a NaN) go to
 * el_convert's scalar loop, which is where el_convert sends fewer than 16 elements
 * (el_convert_fast declines them), so these calls never come back here. */
#define F16_TO_F32(s, d, n) el_convert(EL_DT_F16, s, EL_DT_F32, d, n)
#define F32_TO_F16(s, d, n) el_convert(EL_DT_F32, s, EL_DT_F16, d, n)
#define EL_CONVERT_FAST_MIN 16u

#if defined(__x86_64__)
/* 8 halves per step; all-ones exponent (inf, NaN) in any lane: that step scalar. */
static EL_F16C void f16_to_f32_f16c(const uint8_t *s, uint8_t *d, uint64_t n) {
    const __m128i expo = _mm_set1_epi16(0x7c00);
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(s + 2 * i));
        if (_mm_movemask_epi8(_mm_cmpeq_epi16(_mm_and_si128(h, expo), expo)))
            F16_TO_F32(s + 2 * i, d + 4 * i, 8);
        else
            _mm256_storeu_ps((float *)(void *)(d + 4 * i), _mm256_cvtph_ps(h));
    }
    F16_TO_F32(s + 2 * i, d + 4 * i, n - i);
}

/* 8 floats per step, rounded to nearest even; a NaN in any lane: that step scalar. */
static EL_F16C void f32_to_f16_f16c(const uint8_t *s, uint8_t *d, uint64_t n) {
    const __m256 inf = _mm256_castsi256_ps(_mm256_set1_epi32(0x7f800000));
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 v = _mm256_loadu_ps((const float *)(const void *)(s + 4 * i));
        /* |v| > inf as floats is false for NaN; the unordered compare catches it. */
        __m256 nan = _mm256_cmp_ps(_mm256_and_ps(v, absmask), inf, _CMP_UNORD_Q);
        if (_mm256_movemask_ps(nan))
            F32_TO_F16(s + 4 * i, d + 2 * i, 8);
        else
            _mm_storeu_si128((__m128i *)(void *)(d + 2 * i),
                             _mm256_cvtps_ph(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
    }
    F32_TO_F16(s + 4 * i, d + 2 * i, n - i);
}

/* Transposes the 8 x 8 floats in r (r[i] = row i) in registers: r[j] becomes column j. */
static EL_F16C void tr8x8(__m256 r[8]) {
    __m256 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = _mm256_unpacklo_ps(r[i], r[i + 1]);
        t[i + 1] = _mm256_unpackhi_ps(r[i], r[i + 1]);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 1] = _mm256_shuffle_ps(t[i], t[i + 2], _MM_SHUFFLE(3, 2, 3, 2));
        u[i + 2] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(1, 0, 1, 0));
        u[i + 3] = _mm256_shuffle_ps(t[i + 1], t[i + 3], _MM_SHUFFLE(3, 2, 3, 2));
    }
    for (int i = 0; i < 4; i++) {
        r[i] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x20);
        r[i + 4] = _mm256_permute2f128_ps(u[i], u[i + 4], 0x31);
    }
}

/* Shuffles and permutes move bits without looking at them (a NaN's payload survives), so
 * a 4-byte copy transposes any 4-byte type. f16 output: a tile holding a NaN goes scalar.
 * One 8 x 8 tile: source rows i0.., columns j0... */
static EL_F16C inline void tile8_avx(const uint8_t *src, uint64_t ld, uint8_t *dst, uint64_t ldd,
                                     bool f16, int i0, int j0) {
    const __m256 inf = _mm256_castsi256_ps(_mm256_set1_epi32(0x7f800000));
    const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
    __m256 r[8];
    __m256 nan = _mm256_setzero_ps();
    for (int i = 0; i < 8; i++) {
        r[i] = _mm256_loadu_ps(
            (const float *)(const void *)(src + 4 * ((uint64_t)(i0 + i) * ld + j0)));
        if (f16) nan = _mm256_or_ps(nan, _mm256_cmp_ps(_mm256_and_ps(r[i], absmask), inf,
                                                       _CMP_UNORD_Q));
    }
    if (f16 && _mm256_movemask_ps(nan)) {
        for (int j = 0; j < 8; j++)
            for (int i = 0; i < 8; i++)
                F32_TO_F16(src + 4 * ((uint64_t)(i0 + i) * ld + j0 + j),
                           dst + 2 * ((uint64_t)(j0 + j) * ldd + i0 + i), 1);
        return;
    }
    tr8x8(r);
    for (int j = 0; j < 8; j++) {
        const uint64_t at = (uint64_t)(j0 + j) * ldd + i0;
        if (f16)
            _mm_storeu_si128((__m128i *)(void *)(dst + 2 * at),
                             _mm256_cvtps_ph(r[j], _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC));
        else
            _mm256_storeu_ps((float *)(void *)(dst + 4 * at), r[j]);
    }
}

/* A 32 x 32 block as 8 x 8 tiles. Source rows a 4 KiB multiple apart share an L1 set:
 * then 8 source rows stay while their 32 columns are placed (source rows outside); else
 * 8 placed rows get their 32 elements (whole cache lines) before the next 8 (placed rows
 * outside), which keeps placed rows that alias from evicting each other's half lines. */
static EL_F16C void transpose32_avx(const uint8_t *src, uint64_t ld, uint8_t *dst, uint64_t ldd,
                                    bool f16) {
    const bool rows_out = (ld * 4) % 4096 == 0;
    for (int a = 0; a < 32; a += 8)
        for (int b = 0; b < 32; b += 8)
            tile8_avx(src, ld, dst, ldd, f16, rows_out ? a : b, rows_out ? b : a);
}

static void bf16_to_f32_sse2(const uint8_t *s, uint8_t *d, uint64_t n) {
    const __m128i zero = _mm_setzero_si128();
    uint64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i h = _mm_loadu_si128((const __m128i *)(const void *)(s + 2 * i));
        _mm_storeu_si128((__m128i *)(void *)(d + 4 * i), _mm_unpacklo_epi16(zero, h));
        _mm_storeu_si128((__m128i *)(void *)(d + 4 * i + 16), _mm_unpackhi_epi16(zero, h));
    }
    el_convert(EL_DT_BF16, s + 2 * i, EL_DT_F32, d + 4 * i, n - i);
}
#elif defined(__aarch64__)
/* NEON loads and stores of bytes take any alignment; the lanes are reinterpreted. */
static void f16_to_f32_neon(const uint8_t *s, uint8_t *d, uint64_t n) {
    const uint16x4_t expo = vdup_n_u16(0x7c00);
    uint64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        uint16x4_t h = vreinterpret_u16_u8(vld1_u8(s + 2 * i));
        if (vget_lane_u64(vreinterpret_u64_u16(vceq_u16(vand_u16(h, expo), expo)), 0))
            F16_TO_F32(s + 2 * i, d + 4 * i, 4);
        else
            vst1q_u8(d + 4 * i, vreinterpretq_u8_f32(vcvt_f32_f16(vreinterpret_f16_u16(h))));
    }
    F16_TO_F32(s + 2 * i, d + 4 * i, n - i);
}

/* FCVTN rounds as FPCR says: nearest even unless a caller changed it (nothing here does). */
static void f32_to_f16_neon(const uint8_t *s, uint8_t *d, uint64_t n) {
    uint64_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vreinterpretq_f32_u8(vld1q_u8(s + 4 * i));
        if (vmaxvq_u32(vmvnq_u32(vceqq_f32(v, v)))) /* a lane not equal to itself: NaN */
            F32_TO_F16(s + 4 * i, d + 2 * i, 4);
        else
            vst1_u8(d + 2 * i, vreinterpret_u8_f16(vcvt_f16_f32(v)));
    }
    F32_TO_F16(s + 4 * i, d + 2 * i, n - i);
}
#endif

bool el_convert_fast(el_dtype from, const void *src, el_dtype to, void *dst, uint64_t n) {
    if (n < EL_CONVERT_FAST_MIN || (to != EL_DT_F32 && !(from == EL_DT_F32 && to == EL_DT_F16)))
        return false;
#if defined(__x86_64__)
    const bool f16c = el_cpu_isa_best() == EL_ISA_AVX2; /* AVX2 + FMA + F16C */
    if (from == EL_DT_F16 && to == EL_DT_F32 && f16c) return f16_to_f32_f16c(src, dst, n), true;
    if (from == EL_DT_F32 && to == EL_DT_F16 && f16c) return f32_to_f16_f16c(src, dst, n), true;
    if (from == EL_DT_BF16 && to == EL_DT_F32) return bf16_to_f32_sse2(src, dst, n), true;
#elif defined(__aarch64__)
    if (from == EL_DT_F16 && to == EL_DT_F32) return f16_to_f32_neon(src, dst, n), true;
    if (from == EL_DT_F32 && to == EL_DT_F16) return f32_to_f16_neon(src, dst, n), true;
#else
    (void)src, (void)dst, (void)n;
#endif
    return false;
}

bool el_transpose32_fast(const void *src, uint64_t ld, void *dst, uint64_t ldd, bool f16) {
#if defined(__x86_64__)
    if (el_cpu_isa_best() != EL_ISA_AVX2) return false;
    transpose32_avx(src, ld, dst, ldd, f16);
    return true;
#else
    (void)src, (void)ld, (void)dst, (void)ldd, (void)f16;
    return false;
#endif
}
