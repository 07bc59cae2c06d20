/* ops.c - the small per-token kernels around the matmuls: RMSNorm, RoPE (interleaved and
 * rotate-half), softmax, SwiGLU, residual add, embedding lookup, argmax and causal
 * grouped-query attention over the KV cache. The reductions (sums of squares, dot products)
 * have explicit AVX2 (x86-64) and NEON (aarch64) paths because C compilers may not reorder
 * float sums on their own; so do the exp-based ops (softmax, SwiGLU, tanh-GELU). */
#include "kernels/cpu/cpu.h"
#include "kernels/cpu/quant.h"
#include "kernels/fp16.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define EL_AVX2 __attribute__((target("avx2,fma,f16c")))
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

static inline float w_at(const void *w, el_dtype wt, size_t i) {
    switch (wt) {
    case EL_DT_F16: return el_fp16_to_fp32(((const uint16_t *)w)[i]);
    case EL_DT_BF16: return el_bf16_to_fp32(((const uint16_t *)w)[i]);
    default: return ((const float *)w)[i];
    }
}

/* ---- dot product and axpy (attention, RMSNorm) ---------------------------------------- */

static float dot_portable(const float *a, const float *b, size_t n) {
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * b[i];
        s1 += a[i + 1] * b[i + 1];
        s2 += a[i + 2] * b[i + 2];
        s3 += a[i + 3] * b[i + 3];
    }
    for (; i < n; i++) s0 += a[i] * b[i];
    return (s0 + s1) + (s2 + s3);
}

static void axpy_portable(float *y, float a, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

#if defined(__x86_64__)
static EL_AVX2 float dot_avx2(const float *a, const float *b, size_t n) {
    __m256 s0 = _mm256_setzero_ps(), s1 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
        s1 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i + 8), _mm256_loadu_ps(b + i + 8), s1);
    }
    for (; i + 8 <= n; i += 8)
        s0 = _mm256_fmadd_ps(_mm256_loadu_ps(a + i), _mm256_loadu_ps(b + i), s0);
    s0 = _mm256_add_ps(s0, s1);
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(s0), _mm256_extractf128_ps(s0, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    float r = _mm_cvtss_f32(s);
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

/* e^x for 8 floats: x = n ln2 + r with |r| <= ln2/2, e^r from a degree-6 polynomial
 * (Cephes expf coefficients), 2^n through the exponent bits. Relative error ~2e-7 over the
 * clamped range; inputs below -87.3 give ~0 (softmax and SiLU only need that). */
static inline __attribute__((always_inline)) EL_AVX2 __m256 exp8(__m256 x) {
    x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(-87.3f)), _mm256_set1_ps(88.3f));
    __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(1.44269504088896341f)),
                               _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(0.693359375f), x);
    r = _mm256_fnmadd_ps(n, _mm256_set1_ps(-2.12194440e-4f), r);
    __m256 p = _mm256_set1_ps(1.9875691500e-4f);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.3981999507e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(8.3334519073e-3f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(4.1665795894e-2f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(1.6666665459e-1f));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(5.0000001201e-1f));
    p = _mm256_fmadd_ps(p, _mm256_mul_ps(r, r), _mm256_add_ps(r, _mm256_set1_ps(1.0f)));
    __m256i e = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
    e = _mm256_slli_epi32(e, 23);
    return _mm256_mul_ps(p, _mm256_castsi256_ps(e));
}

static inline __attribute__((always_inline)) EL_AVX2 float hmax8(__m256 v) {
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    return _mm_cvtss_f32(m);
}

static inline __attribute__((always_inline)) EL_AVX2 float hsum8(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

static EL_AVX2 void softmax_avx2(float *x, size_t n) {
    size_t i = 0, n8 = n & ~(size_t)7;
    float mx = x[0];
    if (n8) {
        __m256 m = _mm256_loadu_ps(x);
        for (i = 8; i < n8; i += 8) m = _mm256_max_ps(m, _mm256_loadu_ps(x + i));
        mx = hmax8(m);
    }
    for (i = n8; i < n; i++)
        if (x[i] > mx) mx = x[i];
    __m256 mv = _mm256_set1_ps(mx), acc = _mm256_setzero_ps();
    for (i = 0; i < n8; i += 8) {
        __m256 e = exp8(_mm256_sub_ps(_mm256_loadu_ps(x + i), mv));
        _mm256_storeu_ps(x + i, e);
        acc = _mm256_add_ps(acc, e);
    }
    float sum = hsum8(acc);
    for (i = n8; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    __m256 inv = _mm256_set1_ps(1.0f / sum);
    for (i = 0; i < n8; i += 8) _mm256_storeu_ps(x + i, _mm256_mul_ps(_mm256_loadu_ps(x + i), inv));
    for (i = n8; i < n; i++) x[i] *= 1.0f / sum;
}

static EL_AVX2 void swiglu_avx2(float *gate, const float *up, size_t n) {
    size_t i = 0;
    const __m256 one = _mm256_set1_ps(1.0f);
    for (; i + 8 <= n; i += 8) {
        __m256 g = _mm256_loadu_ps(gate + i);
        __m256 e = exp8(_mm256_sub_ps(_mm256_setzero_ps(), g));
        __m256 silu = _mm256_div_ps(g, _mm256_add_ps(one, e));
        _mm256_storeu_ps(gate + i, _mm256_mul_ps(silu, _mm256_loadu_ps(up + i)));
    }
    for (; i < n; i++) {
        float g = gate[i];
        gate[i] = g * (1.0f / (1.0f + expf(-g))) * up[i];
    }
}

/* tanh-GELU as x sigmoid(2u) (gelu_tanh_neon's form): one exp8 per 8 values. */
static EL_AVX2 void gelu_tanh_avx2(float *x, size_t n) {
    const __m256 one = _mm256_set1_ps(1.0f), c = _mm256_set1_ps(0.044715f);
    const __m256 mk2 = _mm256_set1_ps(-2.0f * 0.7978845608028654f); /* -2 sqrt(2 / pi) */
    size_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 v = _mm256_loadu_ps(x + i);
        const __m256 v3 = _mm256_mul_ps(_mm256_mul_ps(v, v), v);
        const __m256 e = exp8(_mm256_mul_ps(_mm256_fmadd_ps(v3, c, v), mk2));
        _mm256_storeu_ps(x + i, _mm256_div_ps(v, _mm256_add_ps(one, e)));
    }
    for (; i < n; i++) {
        const float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
}
#endif

/* ---- NEON (aarch64) ------------------------------------------------------------------- */

#if defined(__aarch64__)
#define EL_INLINE static inline __attribute__((always_inline))

/* 4 entries of a weight/bias vector of wt at i, as f32 (F16 widens with FCVTL: exact). */
EL_INLINE float32x4_t load4w(const void *w, el_dtype wt, size_t i) {
    switch (wt) {
    case EL_DT_F16:
        return vcvt_f32_f16(vreinterpret_f16_u16(vld1_u16((const uint16_t *)w + i)));
    case EL_DT_BF16:
        return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16((const uint16_t *)w + i), 16));
    default: return vld1q_f32((const float *)w + i);
    }
}

static float dot_neon(const float *a, const float *b, size_t n) {
    float32x4_t s0 = vdupq_n_f32(0), s1 = s0, s2 = s0, s3 = s0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
        s1 = vfmaq_f32(s1, vld1q_f32(a + i + 4), vld1q_f32(b + i + 4));
        s2 = vfmaq_f32(s2, vld1q_f32(a + i + 8), vld1q_f32(b + i + 8));
        s3 = vfmaq_f32(s3, vld1q_f32(a + i + 12), vld1q_f32(b + i + 12));
    }
    for (; i + 4 <= n; i += 4) s0 = vfmaq_f32(s0, vld1q_f32(a + i), vld1q_f32(b + i));
    float r = vaddvq_f32(vaddq_f32(vaddq_f32(s0, s1), vaddq_f32(s2, s3)));
    for (; i < n; i++) r += a[i] * b[i];
    return r;
}

/* e^x for 4 floats, the same reduction and Cephes polynomial as exp8 (AVX2): x = n ln2 + r,
 * |r| <= ln2/2, 2^n through the exponent bits; inputs clamped to [-87.3, 88.3]. */
EL_INLINE float32x4_t exp4(float32x4_t x) {
    x = vminq_f32(vmaxq_f32(x, vdupq_n_f32(-87.3f)), vdupq_n_f32(88.3f));
    float32x4_t n = vrndnq_f32(vmulq_n_f32(x, 1.44269504088896341f));
    float32x4_t r = vfmsq_f32(x, n, vdupq_n_f32(0.693359375f));
    r = vfmsq_f32(r, n, vdupq_n_f32(-2.12194440e-4f));
    float32x4_t p = vdupq_n_f32(1.9875691500e-4f);
    p = vfmaq_f32(vdupq_n_f32(1.3981999507e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(8.3334519073e-3f), p, r);
    p = vfmaq_f32(vdupq_n_f32(4.1665795894e-2f), p, r);
    p = vfmaq_f32(vdupq_n_f32(1.6666665459e-1f), p, r);
    p = vfmaq_f32(vdupq_n_f32(5.0000001201e-1f), p, r);
    p = vfmaq_f32(vaddq_f32(r, vdupq_n_f32(1.0f)), p, vmulq_f32(r, r));
    int32x4_t e = vshlq_n_s32(vaddq_s32(vcvtq_s32_f32(n), vdupq_n_s32(127)), 23);
    return vmulq_f32(p, vreinterpretq_f32_s32(e));
}

static void softmax_neon(float *x, size_t n) {
    size_t i = 0, n4 = n & ~(size_t)3;
    float mx = x[0];
    if (n4) {
        float32x4_t m = vld1q_f32(x);
        for (i = 4; i < n4; i += 4) m = vmaxq_f32(m, vld1q_f32(x + i));
        mx = vmaxvq_f32(m);
    }
    for (i = n4; i < n; i++)
        if (x[i] > mx) mx = x[i];
    float32x4_t mv = vdupq_n_f32(mx), acc = vdupq_n_f32(0);
    for (i = 0; i < n4; i += 4) {
        float32x4_t e = exp4(vsubq_f32(vld1q_f32(x + i), mv));
        vst1q_f32(x + i, e);
        acc = vaddq_f32(acc, e);
    }
    float sum = vaddvq_f32(acc);
    for (i = n4; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    const float inv = 1.0f / sum;
    for (i = 0; i < n4; i += 4) vst1q_f32(x + i, vmulq_n_f32(vld1q_f32(x + i), inv));
    for (i = n4; i < n; i++) x[i] *= inv;
}

/* x / (1 + e^-z) for 4 floats: x * sigmoid(z), the shape of SiLU and of tanh-GELU. */
EL_INLINE float32x4_t x_sigmoid4(float32x4_t x, float32x4_t z) {
    return vdivq_f32(x, vaddq_f32(vdupq_n_f32(1.0f), exp4(vnegq_f32(z))));
}

static void swiglu_neon(float *gate, const float *up, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t g = vld1q_f32(gate + i);
        vst1q_f32(gate + i, vmulq_f32(x_sigmoid4(g, g), vld1q_f32(up + i)));
    }
    for (; i < n; i++) {
        float g = gate[i];
        gate[i] = g * (1.0f / (1.0f + expf(-g))) * up[i];
    }
}

/* 0.5 x (1 + tanh(u)) = x sigmoid(2u): one exp, no cancellation near u = 0. */
static void gelu_tanh_neon(float *x, size_t n) {
    const float k2 = 2.0f * 0.7978845608028654f; /* 2 sqrt(2 / pi) */
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        float32x4_t v3 = vmulq_f32(vmulq_f32(v, v), v);
        float32x4_t z = vmulq_n_f32(vfmaq_n_f32(v, v3, 0.044715f), k2);
        vst1q_f32(x + i, x_sigmoid4(v, z));
    }
    for (; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
    }
}

/* o = w * (s * x), n entries, in the portable path's order (bit-identical results). */
static void scale_mul_neon(float *o, const float *x, float s, const void *w, el_dtype wt,
                           size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4)
        vst1q_f32(o + i, vmulq_f32(load4w(w, wt, i), vmulq_n_f32(vld1q_f32(x + i), s)));
    for (; i < n; i++) o[i] = w_at(w, wt, i) * (s * x[i]);
}

/* Mean and population variance of n floats, summed in double (two passes), 4 at a time. */
static void mean_var_neon(const float *x, size_t n, double *mean_out, double *var_out) {
    float64x2_t s0 = vdupq_n_f64(0), s1 = s0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        s0 = vaddq_f64(s0, vcvt_f64_f32(vget_low_f32(v)));
        s1 = vaddq_f64(s1, vcvt_high_f64_f32(v));
    }
    double mean = vaddvq_f64(vaddq_f64(s0, s1));
    for (; i < n; i++) mean += x[i];
    mean /= (double)n;
    const float64x2_t mv = vdupq_n_f64(mean);
    s0 = vdupq_n_f64(0);
    s1 = s0;
    for (i = 0; i + 4 <= n; i += 4) {
        float32x4_t v = vld1q_f32(x + i);
        float64x2_t d0 = vsubq_f64(vcvt_f64_f32(vget_low_f32(v)), mv);
        float64x2_t d1 = vsubq_f64(vcvt_high_f64_f32(v), mv);
        s0 = vfmaq_f64(s0, d0, d0);
        s1 = vfmaq_f64(s1, d1, d1);
    }
    double var = vaddvq_f64(vaddq_f64(s0, s1));
    for (; i < n; i++) {
        double d = x[i] - mean;
        var += d * d;
    }
    *mean_out = mean;
    *var_out = var;
}

/* o = (x - m) * inv * w + b (b may be NULL), n entries. */
static void norm_affine_neon(float *o, const float *x, float m, float inv, const void *w,
                             const void *b, el_dtype wt, size_t n) {
    size_t i = 0;
    const float32x4_t mv = vdupq_n_f32(m);
    for (; i + 4 <= n; i += 4) {
        float32x4_t v = vmulq_n_f32(vsubq_f32(vld1q_f32(x + i), mv), inv);
        float32x4_t bias = b ? load4w(b, wt, i) : vdupq_n_f32(0);
        vst1q_f32(o + i, vfmaq_f32(bias, v, load4w(w, wt, i)));
    }
    for (; i < n; i++) o[i] = (x[i] - m) * inv * w_at(w, wt, i) + (b ? w_at(b, wt, i) : 0.0f);
}

/* f16/bf16/f32 -> f32, n entries (exact: FCVTL widens without rounding). */
static void widen_neon(float *out, const void *src, el_dtype dt, size_t n) {
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(out + i, load4w(src, dt, i));
    for (; i < n; i++) out[i] = w_at(src, dt, i);
}
#endif

static inline float dot(el_isa isa, const float *a, const float *b, size_t n) {
#if defined(__x86_64__)
    if (isa == EL_ISA_AVX2) return dot_avx2(a, b, n);
#elif defined(__aarch64__)
    if (isa == EL_ISA_NEON) return dot_neon(a, b, n);
#endif
    (void)isa;
    return dot_portable(a, b, n);
}

float el_cpu_dot(el_isa isa, const float *a, const float *b, size_t n) {
    return dot(isa, a, b, n);
}

#if defined(__x86_64__)
static EL_AVX2 void axpy_avx2(float *y, float a, const float *x, size_t n) {
    const __m256 av = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}
#elif defined(__aarch64__)
static void axpy_neon(float *y, float a, const float *x, size_t n) {
    const float32x4_t av = vdupq_n_f32(a);
    size_t i = 0;
    for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vfmaq_f32(vld1q_f32(y + i), av, vld1q_f32(x + i)));
    for (; i < n; i++) y[i] += a * x[i];
}
#endif

void el_cpu_axpy(el_isa isa, float *y, float a, const float *x, size_t n) {
#if defined(__x86_64__)
    if (isa == EL_ISA_AVX2) {
        axpy_avx2(y, a, x, n);
        return;
    }
#elif defined(__aarch64__)
    if (isa == EL_ISA_NEON) {
        axpy_neon(y, a, x, n);
        return;
    }
#endif
    (void)isa;
    axpy_portable(y, a, x, n);
}

/* ---- RMSNorm -------------------------------------------------------------------------- */

void el_cpu_rmsnorm(const el_pool *p, float *out, const float *x, const void *w, el_dtype wt,
                    size_t n, size_t dim, float eps) {
    el_cpu_rmsnorm_off(p, out, x, w, wt, n, dim, eps, 0.0f);
}

void el_cpu_rmsnorm_off(const el_pool *p, float *out, const float *x, const void *w,
                        el_dtype wt, size_t n, size_t dim, float eps, float w_offset) {
    for (size_t t = 0; t < n; t++) {
        const float *xr = x + t * dim;
        float *o = out + t * dim;
        float ss = dot(p->isa, xr, xr, dim) / (float)dim + eps;
        ss = 1.0f / sqrtf(ss);
        if (w_offset != 0.0f) { /* Gemma: (1 + w), rounded to float as transformers does */
            for (size_t i = 0; i < dim; i++) o[i] = (w_offset + w_at(w, wt, i)) * (ss * xr[i]);
            continue;
        }
#if defined(__aarch64__)
        if (p->isa == EL_ISA_NEON) {
            scale_mul_neon(o, xr, ss, w, wt, dim);
            continue;
        }
#endif
        if (wt == EL_DT_F32) {
            const float *wf = w;
            for (size_t i = 0; i < dim; i++) o[i] = wf[i] * (ss * xr[i]);
        } else {
            for (size_t i = 0; i < dim; i++) o[i] = w_at(w, wt, i) * (ss * xr[i]);
        }
    }
}

/* ---- LayerNorm ------------------------------------------------------------------------ */

void el_cpu_layernorm(const el_pool *p, float *out, const float *x, const void *w,
                      const void *b, el_dtype wt, size_t n, size_t dim, float eps) {
    for (size_t t = 0; t < n; t++) {
        const float *xr = x + t * dim;
        float *o = out + t * dim;
#if defined(__aarch64__)
        if (p->isa == EL_ISA_NEON) {
            double mean = 0, var = 0;
            mean_var_neon(xr, dim, &mean, &var);
            float inv = (float)(1.0 / sqrt(var / (double)dim + eps));
            norm_affine_neon(o, xr, (float)mean, inv, w, b, wt, dim);
            continue;
        }
#endif
        /* Two passes in double: the mean first, then the spread around it (no
         * cancellation when |mean| >> spread, as in residual streams). */
        double mean = 0, var = 0;
        for (size_t i = 0; i < dim; i++) mean += xr[i];
        mean /= (double)dim;
        for (size_t i = 0; i < dim; i++) {
            double d = xr[i] - mean;
            var += d * d;
        }
        float inv = (float)(1.0 / sqrt(var / (double)dim + eps));
        float m = (float)mean;
        if (wt == EL_DT_F32) {
            const float *wf = w, *bf = b;
            for (size_t i = 0; i < dim; i++)
                o[i] = (xr[i] - m) * inv * wf[i] + (bf ? bf[i] : 0.0f);
        } else {
            for (size_t i = 0; i < dim; i++)
                o[i] = (xr[i] - m) * inv * w_at(w, wt, i) + (b ? w_at(b, wt, i) : 0.0f);
        }
    }
}

/* ---- RoPE ----------------------------------------------------------------------------- */

void el_cpu_rope(float *x, size_t n_heads, size_t head_dim, const float *cos, const float *sin,
                 bool interleaved) {
    size_t half = head_dim / 2;
    for (size_t h = 0; h < n_heads; h++) {
        float *v = x + h * head_dim;
        if (interleaved) {
            for (size_t i = 0; i < half; i++) {
                float a = v[2 * i], b = v[2 * i + 1];
                v[2 * i] = a * cos[i] - b * sin[i];
                v[2 * i + 1] = a * sin[i] + b * cos[i];
            }
        } else {
            for (size_t i = 0; i < half; i++) {
                float a = v[i], b = v[i + half];
                v[i] = a * cos[i] - b * sin[i];
                v[i + half] = b * cos[i] + a * sin[i];
            }
        }
    }
}

/* ---- softmax, SwiGLU, add, embedding, argmax ------------------------------------------- */

static void softmax_portable(float *x, size_t n) {
    float mx = x[0];
    for (size_t i = 1; i < n; i++)
        if (x[i] > mx) mx = x[i];
    float sum = 0;
    for (size_t i = 0; i < n; i++) {
        x[i] = expf(x[i] - mx);
        sum += x[i];
    }
    float inv = 1.0f / sum;
    for (size_t i = 0; i < n; i++) x[i] *= inv;
}

void el_cpu_softmax(const el_pool *p, float *x, size_t n) {
#if defined(__x86_64__)
    if ((p ? p->isa : el_cpu_isa_best()) == EL_ISA_AVX2) {
        softmax_avx2(x, n);
        return;
    }
#elif defined(__aarch64__)
    if ((p ? p->isa : el_cpu_isa_best()) == EL_ISA_NEON) {
        softmax_neon(x, n);
        return;
    }
#endif
    (void)p;
    softmax_portable(x, n);
}

void el_cpu_swiglu(const el_pool *p, float *gate, const float *up, size_t n) {
#if defined(__x86_64__)
    if (p->isa == EL_ISA_AVX2) {
        swiglu_avx2(gate, up, n);
        return;
    }
#elif defined(__aarch64__)
    if (p->isa == EL_ISA_NEON) {
        swiglu_neon(gate, up, n);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g * (1.0f / (1.0f + expf(-g))) * up[i];
    }
}

void el_cpu_add(const el_pool *p, float *y, const float *x, size_t n) {
    size_t i = 0;
#if defined(__aarch64__)
    if (p->isa == EL_ISA_NEON)
        for (; i + 4 <= n; i += 4) vst1q_f32(y + i, vaddq_f32(vld1q_f32(y + i), vld1q_f32(x + i)));
#endif
    (void)p;
    for (; i < n; i++) y[i] += x[i];
}

void el_cpu_embed(float *out, const void *table, el_dtype dt, size_t dim, size_t id) {
    if (el_dtype_is_block(dt)) { /* dim is a whole number of blocks (checked at bind) */
        const size_t row = dim / el_dtype_block(dt) * el_dtype_block_bytes(dt);
        el_dequantize_row(dt, (const char *)table + id * row, out, dim);
        return;
    }
    size_t esz = dt == EL_DT_F32 ? 4u : 2u;
    const void *row = (const char *)table + id * dim * esz;
#if defined(__aarch64__)
    widen_neon(out, row, dt, dim); /* exact, so no portable twin to compare */
#else
    if (dt == EL_DT_F32) {
        const float *r = row;
        for (size_t i = 0; i < dim; i++) out[i] = r[i];
    } else {
        for (size_t i = 0; i < dim; i++) out[i] = w_at(row, dt, i);
    }
#endif
}

#if defined(__x86_64__)
/* The largest number of x (NaN never wins: MAXPS returns its second operand when either is
 * NaN); -inf when there is none. */
static EL_AVX2 float max_avx2(const float *x, size_t n) {
    __m256 m0 = _mm256_set1_ps(-INFINITY), m1 = m0;
    size_t i = 0;
    for (; i + 16 <= n; i += 16) {
        m0 = _mm256_max_ps(_mm256_loadu_ps(x + i), m0);
        m1 = _mm256_max_ps(_mm256_loadu_ps(x + i + 8), m1);
    }
    float l[8], m = -INFINITY;
    _mm256_storeu_ps(l, _mm256_max_ps(m0, m1));
    for (int k = 0; k < 8; k++) m = l[k] > m ? l[k] : m;
    for (; i < n; i++) m = x[i] > m ? x[i] : m;
    return m;
}
#endif

size_t el_cpu_argmax(const float *x, size_t n) {
#if defined(__x86_64__)
    if (__builtin_cpu_supports("avx2")) { /* the first index of the largest number */
        const float m = max_avx2(x, n);
        for (size_t i = 0; i < n; i++)
            if (x[i] == m) return i;
        return 0; /* all NaN */
    }
#endif
    size_t best = 0;
    float bv = x[0];
    for (size_t i = 1; i < n; i++) {
        /* !(bv >= x[i]) would let NaN win; compare so that NaN never replaces a number and
         * a leading NaN is replaced by the first number. */
        if (x[i] > bv || (bv != bv && x[i] == x[i])) {
            bv = x[i];
            best = i;
        }
    }
    return best;
}

/* ---- attention ------------------------------------------------------------------------ */

/* The cache's keys and values are f32 or f16 (--kv-dtype): each path below is one body
 * written against a load of cache elements by index, instantiated once per element type
 * with the type a constant (the f32 instance is the arithmetic of the f32-only kernel,
 * operation for operation; the f16 one widens each element exactly and changes nothing
 * else). */
typedef struct att_job {
    float *out;
    const float *q;
    const void *k, *v; /* [>= pos0 + n, kv_dim] of kv_dt */
    el_dtype kv_dt;    /* EL_DT_F32 or EL_DT_F16 */
    float *att;
    size_t att_stride, n, pos0, n_heads, n_kv_heads, head_dim;
    el_isa isa;
    size_t window; /* keys within window positions of the query (0 = all) */
    float scale;   /* score scale */
} att_job;

/* First key position the query at pos attends to. */
static inline size_t att_lo(const att_job *j, size_t pos) {
    return j->window && pos + 1 > j->window ? pos + 1 - j->window : 0;
}

/* Cache element i (an element index, not a byte offset) as f32. */
static inline float kv_at(const void *c, size_t i, bool f16) {
    return f16 ? el_fp16_to_fp32(((const uint16_t *)c)[i]) : ((const float *)c)[i];
}

/* dot_portable's sums over a cache row (kv_at widens; same order of operations). */
static inline float dot_kv_portable(const float *a, const void *c, size_t b, size_t n,
                                    bool f16) {
    if (!f16) return dot_portable(a, (const float *)c + b, n);
    float s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    size_t i = 0;
    for (; i + 4 <= n; i += 4) {
        s0 += a[i] * kv_at(c, b + i, true);
        s1 += a[i + 1] * kv_at(c, b + i + 1, true);
        s2 += a[i + 2] * kv_at(c, b + i + 2, true);
        s3 += a[i + 3] * kv_at(c, b + i + 3, true);
    }
    for (; i < n; i++) s0 += a[i] * kv_at(c, b + i, true);
    return (s0 + s1) + (s2 + s3);
}

/* One head, query rows t of the job: scores, softmax, weighted sum of values. */
static void att_heads_portable(const att_job *j, size_t h0, size_t h1) {
    const size_t hd = j->head_dim, qd = j->n_heads * hd, kvd = j->n_kv_heads * hd;
    const size_t group = j->n_heads / j->n_kv_heads;
    const float scale = j->scale;
    const bool f16 = j->kv_dt == EL_DT_F16;
    for (size_t h = h0; h < h1; h++) {
        float *att = j->att + h * j->att_stride;
        const size_t kvo = (h / group) * hd;
        for (size_t t = 0; t < j->n; t++) {
            const size_t lo = att_lo(j, j->pos0 + t);
            const size_t len = j->pos0 + t + 1 - lo; /* causal: keys lo..pos */
            const size_t kb = lo * kvd + kvo; /* element index of key/value row lo */
            const float *q = j->q + t * qd + h * hd;
            for (size_t s = 0; s < len; s++)
                att[s] = dot_kv_portable(q, j->k, kb + s * kvd, hd, f16) * scale;
            softmax_portable(att, len);
            float *o = j->out + t * qd + h * hd;
            for (size_t i = 0; i < hd; i++) o[i] = 0;
            for (size_t s = 0; s < len; s++) {
                if (!f16) {
                    axpy_portable(o, att[s], (const float *)j->v + kb + s * kvd, hd);
                    continue;
                }
                for (size_t i = 0; i < hd; i++)
                    o[i] += att[s] * kv_at(j->v, kb + s * kvd + i, true);
            }
        }
    }
}

#if defined(__x86_64__)
/* 8 cache elements from element index i (F16C widens f16 exactly). */
static inline __attribute__((always_inline)) EL_AVX2 __m256 kv_load8(const void *c, size_t i,
                                                                     bool f16) {
    if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)c + i)));
    return _mm256_loadu_ps((const float *)c + i);
}

/* The same with head_dim a multiple of 8: scores four keys at a time (one horizontal sum
 * for four dot products), values accumulated 32 outputs at a time in registers. */
static inline __attribute__((always_inline)) EL_AVX2 void
att_heads_avx2_body(const att_job *j, size_t h0, size_t h1, const bool f16) {
    const size_t hd = j->head_dim, qd = j->n_heads * hd, kvd = j->n_kv_heads * hd;
    const size_t group = j->n_heads / j->n_kv_heads;
    const __m128 scale = _mm_set1_ps(j->scale);
    const void *K = j->k, *V = j->v;
    for (size_t h = h0; h < h1; h++) {
        float *att = j->att + h * j->att_stride;
        const size_t kvo = (h / group) * hd;
        for (size_t t = 0; t < j->n; t++) {
            const size_t lo = att_lo(j, j->pos0 + t);
            const size_t len = j->pos0 + t + 1 - lo;
            const size_t kb = lo * kvd + kvo; /* element index of key/value row lo */
            const float *q = j->q + t * qd + h * hd;
            size_t s = 0;
            for (; s + 4 <= len; s += 4) {
                const size_t k0 = kb + s * kvd, k1 = k0 + kvd, k2 = k1 + kvd, k3 = k2 + kvd;
                __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
                for (size_t i = 0; i < hd; i += 8) {
                    __m256 qv = _mm256_loadu_ps(q + i);
                    a0 = _mm256_fmadd_ps(qv, kv_load8(K, k0 + i, f16), a0);
                    a1 = _mm256_fmadd_ps(qv, kv_load8(K, k1 + i, f16), a1);
                    a2 = _mm256_fmadd_ps(qv, kv_load8(K, k2 + i, f16), a2);
                    a3 = _mm256_fmadd_ps(qv, kv_load8(K, k3 + i, f16), a3);
                }
                __m256 ab = _mm256_hadd_ps(a0, a1), cd = _mm256_hadd_ps(a2, a3);
                __m256 abcd = _mm256_hadd_ps(ab, cd);
                __m128 r = _mm_add_ps(_mm256_castps256_ps128(abcd), _mm256_extractf128_ps(abcd, 1));
                _mm_storeu_ps(att + s, _mm_mul_ps(r, scale));
            }
            for (; s < len; s++) {
                const size_t k0 = kb + s * kvd;
                __m256 a0 = _mm256_setzero_ps();
                for (size_t i = 0; i < hd; i += 8)
                    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(q + i), kv_load8(K, k0 + i, f16), a0);
                att[s] = hsum8(a0) * _mm_cvtss_f32(scale);
            }
            softmax_avx2(att, len);
            float *o = j->out + t * qd + h * hd;
            for (size_t ib = 0; ib < hd; ib += 32) {
                const size_t w = hd - ib < 32 ? hd - ib : 32; /* 8, 16, 24 or 32 outputs */
                __m256 o0 = _mm256_setzero_ps(), o1 = o0, o2 = o0, o3 = o0;
                for (size_t u = 0; u < len; u++) {
                    const size_t vr = kb + u * kvd + ib;
                    __m256 a = _mm256_broadcast_ss(att + u);
                    o0 = _mm256_fmadd_ps(a, kv_load8(V, vr, f16), o0);
                    if (w > 8) o1 = _mm256_fmadd_ps(a, kv_load8(V, vr + 8, f16), o1);
                    if (w > 16) o2 = _mm256_fmadd_ps(a, kv_load8(V, vr + 16, f16), o2);
                    if (w > 24) o3 = _mm256_fmadd_ps(a, kv_load8(V, vr + 24, f16), o3);
                }
                _mm256_storeu_ps(o + ib, o0);
                if (w > 8) _mm256_storeu_ps(o + ib + 8, o1);
                if (w > 16) _mm256_storeu_ps(o + ib + 16, o2);
                if (w > 24) _mm256_storeu_ps(o + ib + 24, o3);
            }
        }
    }
}

static EL_AVX2 void att_heads_avx2(const att_job *j, size_t h0, size_t h1) {
    att_heads_avx2_body(j, h0, h1, false);
}

static EL_AVX2 void att_heads_avx2_f16(const att_job *j, size_t h0, size_t h1) {
    att_heads_avx2_body(j, h0, h1, true);
}
#endif

#if defined(__aarch64__)
/* The same with head_dim a multiple of 4: scores four keys at a time (pairwise adds turn
 * four dot products into one vector), values accumulated 16 outputs at a time in
 * registers. dt: the cache's type, a constant in each instance (load4w widens f16). */
EL_INLINE void att_heads_neon_body(const att_job *j, size_t h0, size_t h1, const el_dtype dt) {
    const size_t hd = j->head_dim, qd = j->n_heads * hd, kvd = j->n_kv_heads * hd;
    const size_t group = j->n_heads / j->n_kv_heads;
    const float scale = j->scale;
    const void *K = j->k, *V = j->v;
    for (size_t h = h0; h < h1; h++) {
        float *att = j->att + h * j->att_stride;
        const size_t kvo = (h / group) * hd;
        for (size_t t = 0; t < j->n; t++) {
            const size_t lo = att_lo(j, j->pos0 + t);
            const size_t len = j->pos0 + t + 1 - lo;
            const size_t kb = lo * kvd + kvo; /* element index of key/value row lo */
            const float *q = j->q + t * qd + h * hd;
            size_t s = 0;
            for (; s + 4 <= len; s += 4) {
                const size_t k0 = kb + s * kvd, k1 = k0 + kvd, k2 = k1 + kvd, k3 = k2 + kvd;
                float32x4_t a0 = vdupq_n_f32(0), a1 = a0, a2 = a0, a3 = a0;
                for (size_t i = 0; i < hd; i += 4) {
                    float32x4_t qv = vld1q_f32(q + i);
                    a0 = vfmaq_f32(a0, qv, load4w(K, dt, k0 + i));
                    a1 = vfmaq_f32(a1, qv, load4w(K, dt, k1 + i));
                    a2 = vfmaq_f32(a2, qv, load4w(K, dt, k2 + i));
                    a3 = vfmaq_f32(a3, qv, load4w(K, dt, k3 + i));
                }
                float32x4_t r = vpaddq_f32(vpaddq_f32(a0, a1), vpaddq_f32(a2, a3));
                vst1q_f32(att + s, vmulq_n_f32(r, scale));
            }
            for (; s < len; s++) {
                const size_t k0 = kb + s * kvd;
                float32x4_t a0 = vdupq_n_f32(0);
                for (size_t i = 0; i < hd; i += 4)
                    a0 = vfmaq_f32(a0, vld1q_f32(q + i), load4w(K, dt, k0 + i));
                att[s] = vaddvq_f32(a0) * scale;
            }
            softmax_neon(att, len);
            float *o = j->out + t * qd + h * hd;
            for (size_t ib = 0; ib < hd; ib += 16) {
                const size_t w = hd - ib < 16 ? hd - ib : 16; /* 4, 8, 12 or 16 outputs */
                float32x4_t o0 = vdupq_n_f32(0), o1 = o0, o2 = o0, o3 = o0;
                for (size_t u = 0; u < len; u++) {
                    const size_t vr = kb + u * kvd + ib;
                    const float a = att[u];
                    o0 = vfmaq_n_f32(o0, load4w(V, dt, vr), a);
                    if (w > 4) o1 = vfmaq_n_f32(o1, load4w(V, dt, vr + 4), a);
                    if (w > 8) o2 = vfmaq_n_f32(o2, load4w(V, dt, vr + 8), a);
                    if (w > 12) o3 = vfmaq_n_f32(o3, load4w(V, dt, vr + 12), a);
                }
                vst1q_f32(o + ib, o0);
                if (w > 4) vst1q_f32(o + ib + 4, o1);
                if (w > 8) vst1q_f32(o + ib + 8, o2);
                if (w > 12) vst1q_f32(o + ib + 12, o3);
            }
        }
    }
}

static void att_heads_neon(const att_job *j, size_t h0, size_t h1) {
    att_heads_neon_body(j, h0, h1, EL_DT_F32);
}

static void att_heads_neon_f16(const att_job *j, size_t h0, size_t h1) {
    att_heads_neon_body(j, h0, h1, EL_DT_F16);
}
#endif

static void att_run(void *ctx, unsigned ith, unsigned nth) {
    const att_job *j = ctx;
    size_t h0 = j->n_heads * ith / nth, h1 = j->n_heads * (ith + 1) / nth;
#if defined(__x86_64__)
    if (j->isa == EL_ISA_AVX2 && j->head_dim % 8 == 0) {
        (j->kv_dt == EL_DT_F16 ? att_heads_avx2_f16 : att_heads_avx2)(j, h0, h1);
        return;
    }
#elif defined(__aarch64__)
    if (j->isa == EL_ISA_NEON && j->head_dim % 4 == 0) {
        (j->kv_dt == EL_DT_F16 ? att_heads_neon_f16 : att_heads_neon)(j, h0, h1);
        return;
    }
#endif
    att_heads_portable(j, h0, h1);
}

void el_cpu_attention(el_pool *p, float *out, const float *q, const float *k, const float *v,
                      float *att, size_t att_stride, size_t n, size_t pos0, size_t n_heads,
                      size_t n_kv_heads, size_t head_dim) {
    el_cpu_attention_ex(p, out, q, k, v, att, att_stride, n, pos0, n_heads, n_kv_heads,
                        head_dim, 0, 1.0f / sqrtf((float)head_dim));
}

void el_cpu_attention_ex(el_pool *p, float *out, const float *q, const float *k,
                         const float *v, float *att, size_t att_stride, size_t n, size_t pos0,
                         size_t n_heads, size_t n_kv_heads, size_t head_dim, size_t window,
                         float scale) {
    el_cpu_attention_kv(p, out, q, k, v, EL_DT_F32, att, att_stride, n, pos0, n_heads,
                        n_kv_heads, head_dim, window, scale);
}

void el_cpu_attention_kv(el_pool *p, float *out, const float *q, const void *k, const void *v,
                         el_dtype kv_dt, float *att, size_t att_stride, size_t n, size_t pos0,
                         size_t n_heads, size_t n_kv_heads, size_t head_dim, size_t window,
                         float scale) {
    att_job j = {out, q, k, v, kv_dt, att, att_stride, n, pos0, n_heads, n_kv_heads, head_dim,
                 p->isa, window, scale};
    /* Work: score and value multiply-adds over every (head, query, key), weighted 4x: each
     * costs more than a matmul's (the softmax, the cache rows' loads), so two threads win
     * from a quarter of EL_POOL_MIN_WORK (docs/CPU.md, decode attention). */
    uint64_t work = (uint64_t)n_heads * n * (pos0 + n) * head_dim * 2 * 4;
    el_pool_run_sized(p, work, att_run, &j);
}

/* ---- f32 -> f16 (the KV cache's rows) ------------------------------------------------- */

#if defined(__x86_64__)
static EL_AVX2 void f32_to_f16_avx2(uint16_t *dst, const float *src, size_t n) {
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    for (; i < n; i++) dst[i] = el_fp32_to_fp16(src[i]);
}
#endif

void el_cpu_f32_to_f16(const el_pool *p, uint16_t *dst, const float *src, size_t n) {
#if defined(__x86_64__)
    if (p->isa == EL_ISA_AVX2) {
        f32_to_f16_avx2(dst, src, n);
        return;
    }
#elif defined(__aarch64__)
    if (p->isa == EL_ISA_NEON) { /* FCVTN rounds as FPCR says: nearest even by default */
        size_t i = 0;
        for (; i + 4 <= n; i += 4)
            vst1_u16(dst + i, vreinterpret_u16_f16(vcvt_f16_f32(vld1q_f32(src + i))));
        for (; i < n; i++) dst[i] = el_fp32_to_fp16(src[i]);
        return;
    }
#endif
    for (size_t i = 0; i < n; i++) dst[i] = el_fp32_to_fp16(src[i]);
}

/* ---- GELU and bias -------------------------------------------------------------------- */

void el_cpu_gelu_tanh(const el_pool *p, float *x, size_t n) {
#if defined(__x86_64__)
    if (p->isa == EL_ISA_AVX2) {
        gelu_tanh_avx2(x, n);
        return;
    }
#elif defined(__aarch64__)
    if (p->isa == EL_ISA_NEON) {
        gelu_tanh_neon(x, n);
        return;
    }
#endif
    const float k = 0.7978845608028654f; /* sqrt(2 / pi) */
    for (size_t i = 0; i < n; i++) {
        float v = x[i];
        x[i] = 0.5f * v * (1.0f + tanhf(k * (v + 0.044715f * v * v * v)));
    }
}

void el_cpu_gelu_erf(const el_pool *p, float *x, size_t n) {
    (void)p;
    for (size_t i = 0; i < n; i++) x[i] = 0.5f * x[i] * (1.0f + erff(x[i] * 0.7071067811865476f));
}

void el_cpu_add_bias(float *y, size_t ldy, const void *b, el_dtype bt, size_t n, size_t out) {
    for (size_t t = 0; t < n; t++) {
        float *yr = y + t * ldy;
#if defined(__aarch64__) /* exact either way: f16/bf16 widen exactly, one add each */
        size_t i = 0;
        for (; i + 4 <= out; i += 4)
            vst1q_f32(yr + i, vaddq_f32(vld1q_f32(yr + i), load4w(b, bt, i)));
        for (; i < out; i++) yr[i] += w_at(b, bt, i);
#else
        if (bt == EL_DT_F32) {
            const float *bf = b;
            for (size_t i = 0; i < out; i++) yr[i] += bf[i];
        } else {
            for (size_t i = 0; i < out; i++) yr[i] += w_at(b, bt, i);
        }
#endif
    }
}
