/* ggml_ops.c - the CPU ops that --numerics ggml runs with llama.cpp's arithmetic (ggml-cpu,
 * x86 builds; written from its source, tests/test_ggml_ops.c models each): RMSNorm, RoPE,
 * SwiGLU / GEGLU and causal GQA attention.
 *
 * Attention: the row of ggml's flash-attention kernel (ggml-cpu ops.cpp,
 * ggml_compute_forward_flash_attn_ext_f16_one_chunk, which llama.cpp runs by default for
 * batches of fewer than 64 query rows), as its x86 builds compute it. Per query row:
 *   - with an f16 cache the query is rounded to f16 (with q_prescale it is first multiplied
 *     by the scale in f32, as llama.cpp's Gemma 3 and Phi-3 graphs do, and the score is not
 *     scaled again); each score is ggml_vec_dot_f16 (an f32 cache: ggml_vec_dot_f32 on the
 *     f32 query) in the lane order of the AVX2 or the AVX-512 build (gg_dot_portable);
 *   - an online softmax over the keys in position order: a score above the running maximum
 *     M rescales the accumulator and the sum by expf(Mold - M) and weighs its value 1,
 *     any other weighs expf(s - M) (libm expf, as ggml calls it); S = fma(S, ms, vs);
 *   - the values accumulate in an f16 vector (f32 cache: f32): acc = f16(fma(v, w, acc)),
 *     rescaling acc = f16(acc * ms), both per element (F16C round to nearest even);
 *   - out = f32(acc) * (1 / S).
 * The portable row is the scalar statement of that arithmetic (fmaf); the AVX2 row is the
 * same operations 8 lanes at a time and gives the same bits. (ggml's NEON build sums in
 * other orders: on aarch64 this is the x86 builds' arithmetic.) */
#include "kernels/cpu/cpu.h"
#include "kernels/fp16.h"

#include <math.h>
#include <stdatomic.h>
#include <string.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define EL_AVX2 __attribute__((target("avx2,fma,f16c")))
#endif

/* Head sizes the row's stack buffers take; larger heads run el_cpu_attention_kv. */
#define GG_HD_MAX 512

typedef struct gg_job {
    float *out;
    const float *q;    /* [n, n_heads * head_dim] */
    const void *k, *v; /* [>= pos0 + n, n_kv_heads * head_dim] of kv_dt */
    bool f16;          /* kv_dt == EL_DT_F16 */
    bool q_prescale;   /* q times scale before rounding; scores not scaled */
    size_t width;      /* lanes of ggml's sums: 8 (AVX2 build) or 16 (AVX-512 build) */
    size_t n, pos0, n_heads, n_kv_heads, head_dim, window;
    float scale;
    el_isa isa;
} gg_job;

/* One query row's state: the rounded query and the accumulator, head_dim entries each. */
typedef struct gg_row {
    uint16_t q16[GG_HD_MAX];
    float q32[GG_HD_MAX];
    uint16_t acc16[GG_HD_MAX];
    float acc32[GG_HD_MAX];
} gg_row;

unsigned el_cpu_ggml_width_force;

unsigned el_cpu_ggml_width(void) {
    if (el_cpu_ggml_width_force == 8 || el_cpu_ggml_width_force == 16)
        return el_cpu_ggml_width_force;
    static atomic_uint cached; /* 0 = not asked yet */
    unsigned w = atomic_load_explicit(&cached, memory_order_relaxed);
    if (w) return w;
    w = 8;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq")) w = 16;
#endif
    atomic_store_explicit(&cached, w, memory_order_relaxed);
    return w;
}

/* ---- the scalar statement ------------------------------------------------------------- */

/* ggml_vec_dot_f16 / _f32 of n elements (a, b as f32 through GG_AT): 4 accumulators of
 * w (8: the AVX2 build, 16: AVX-512) lanes over whole steps of 4 w, one FMA per element;
 * the accumulators added 0+2, 1+3, then 0+1; the lanes summed as the build does (w 8:
 * _mm_hadd_ps twice, (l0+l4 + l1+l5) + (l2+l6 + l3+l7); w 16: GCC's _mm512_reduce_add_ps,
 * m_i = (l_i + l_i+8) + (l_i+4 + l_i+12), then (m0+m2) + (m1+m3)); the rest in double. */
static inline float gg_at(const void *p, bool f16, size_t i) {
    return f16 ? el_fp16_to_fp32(((const uint16_t *)p)[i]) : ((const float *)p)[i];
}

static float gg_dot_portable(const void *a, const void *b, bool f16, size_t n, size_t w) {
    float acc[4][16] = {{0}};
    const size_t np = n / (4 * w) * (4 * w);
    for (size_t i = 0; i < np; i += 4 * w)
        for (size_t r = 0; r < 4; r++)
            for (size_t l = 0; l < w; l++)
                acc[r][l] = fmaf(gg_at(a, f16, i + w * r + l), gg_at(b, f16, i + w * r + l),
                                 acc[r][l]);
    for (size_t l = 0; l < w; l++) {
        acc[0][l] += acc[2][l];
        acc[1][l] += acc[3][l];
    }
    for (size_t l = 0; l < w; l++) acc[0][l] += acc[1][l];
    const float *v = acc[0];
    float r;
    if (w == 16) {
        float m[4];
        for (size_t l = 0; l < 4; l++) m[l] = (v[l] + v[l + 8]) + (v[l + 4] + v[l + 12]);
        r = (m[0] + m[2]) + (m[1] + m[3]);
    } else {
        float t[4];
        for (size_t l = 0; l < 4; l++) t[l] = v[l] + v[l + 4];
        r = (t[0] + t[1]) + (t[2] + t[3]);
    }
    double sum = (double)r;
    for (size_t i = np; i < n; i++) sum += (double)(gg_at(a, f16, i) * gg_at(b, f16, i));
    return (float)sum;
}

/* Entries i0..hd-1: acc = acc * ms, then acc += v * w (ggml_vec_scale_f16 / _mad_f16, or
 * their f32 forms); ms == 1 skips the scaling (exact: acc times 1 is acc). */
static void gg_update_portable(gg_row *r, const void *v, bool f16, size_t i0, size_t hd,
                               float ms, float w) {
    if (f16) {
        const uint16_t *vh = v;
        for (size_t i = i0; i < hd; i++) {
            float a = el_fp16_to_fp32(r->acc16[i]);
            if (ms != 1.0f) a = el_fp16_to_fp32(el_fp32_to_fp16(a * ms));
            r->acc16[i] = el_fp32_to_fp16(fmaf(el_fp16_to_fp32(vh[i]), w, a));
        }
        return;
    }
    const float *vf = v;
    for (size_t i = i0; i < hd; i++) {
        if (ms != 1.0f) r->acc32[i] *= ms;
        r->acc32[i] = fmaf(vf[i], w, r->acc32[i]);
    }
}

#if defined(__x86_64__)
static inline __attribute__((always_inline)) EL_AVX2 __m256 gg_load8(const void *p, bool f16,
                                                                     size_t i) {
    if (f16) return _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)((const uint16_t *)p + i)));
    return _mm256_loadu_ps((const float *)p + i);
}

/* gg_dot_portable 8 lanes at a time: accumulator r's lanes l and l + 8 (w 16) are
 * s[r][0] and s[r][1]. */
static EL_AVX2 float gg_dot_avx2(const void *a, const void *b, bool f16, size_t n, size_t w) {
    __m256 s[4][2];
    for (size_t r = 0; r < 4; r++) s[r][0] = s[r][1] = _mm256_setzero_ps();
    const size_t np = n / (4 * w) * (4 * w), halves = w / 8;
    for (size_t i = 0; i < np; i += 4 * w)
        for (size_t r = 0; r < 4; r++)
            for (size_t hf = 0; hf < halves; hf++) {
                const size_t e = i + w * r + 8 * hf;
                s[r][hf] = _mm256_fmadd_ps(gg_load8(a, f16, e), gg_load8(b, f16, e), s[r][hf]);
            }
    __m128 t;
    for (size_t hf = 0; hf < halves; hf++) {
        s[0][hf] = _mm256_add_ps(s[0][hf], s[2][hf]);
        s[1][hf] = _mm256_add_ps(s[1][hf], s[3][hf]);
        s[0][hf] = _mm256_add_ps(s[0][hf], s[1][hf]);
    }
    float r;
    if (w == 16) { /* m = (lo + hi) over 8 lanes, then its 128-bit halves, then (0+2)+(1+3) */
        __m256 m8 = _mm256_add_ps(s[0][0], s[0][1]);
        t = _mm_add_ps(_mm256_castps256_ps128(m8), _mm256_extractf128_ps(m8, 1));
        __m128 u = _mm_add_ps(t, _mm_movehl_ps(t, t)); /* [m0+m2, m1+m3, ..] */
        r = _mm_cvtss_f32(_mm_add_ss(u, _mm_movehdup_ps(u)));
    } else { /* lo128 + hi128, then _mm_hadd_ps twice */
        t = _mm_add_ps(_mm256_castps256_ps128(s[0][0]), _mm256_extractf128_ps(s[0][0], 1));
        __m128 t1 = _mm_hadd_ps(t, t);
        r = _mm_cvtss_f32(_mm_hadd_ps(t1, t1));
    }
    double sum = (double)r;
    for (size_t i = np; i < n; i++) sum += (double)(gg_at(a, f16, i) * gg_at(b, f16, i));
    return (float)sum;
}

static EL_AVX2 void gg_update_avx2(gg_row *r, const void *v, bool f16, size_t hd, float ms,
                                   float w) {
    const __m256 msv = _mm256_set1_ps(ms), wv = _mm256_set1_ps(w);
    size_t i = 0;
    for (; i + 8 <= hd; i += 8) {
        if (f16) {
            __m128i *ap = (__m128i *)(r->acc16 + i);
            __m256 a = _mm256_cvtph_ps(_mm_loadu_si128(ap));
            if (ms != 1.0f)
                a = _mm256_cvtph_ps(_mm256_cvtps_ph(_mm256_mul_ps(a, msv),
                                                    _MM_FROUND_TO_NEAREST_INT));
            a = _mm256_fmadd_ps(gg_load8(v, true, i), wv, a);
            _mm_storeu_si128(ap, _mm256_cvtps_ph(a, _MM_FROUND_TO_NEAREST_INT));
        } else {
            __m256 a = _mm256_loadu_ps(r->acc32 + i);
            if (ms != 1.0f) a = _mm256_mul_ps(a, msv);
            _mm256_storeu_ps(r->acc32 + i, _mm256_fmadd_ps(gg_load8(v, false, i), wv, a));
        }
    }
    gg_update_portable(r, v, f16, i, hd, ms, w); /* a head size not a multiple of 8 */
}
#endif

/* ---- one query row -------------------------------------------------------------------- */

/* out[0..hd) for query q over keys/values from element index kb, len rows of stride kvd. */
static void gg_attend_row(const gg_job *j, gg_row *r, float *out, const float *q, size_t kb,
                          size_t len, size_t kvd) {
    const size_t hd = j->head_dim;
    const bool f16 = j->f16;
    float scale = j->scale;
    for (size_t i = 0; i < hd; i++) {
        const float x = j->q_prescale ? q[i] * scale : q[i];
        if (f16) r->q16[i] = el_fp32_to_fp16(x);
        else r->q32[i] = x;
        r->acc16[i] = 0;
        r->acc32[i] = 0.0f;
    }
    if (j->q_prescale) scale = 1.0f;
    const void *qr = f16 ? (const void *)r->q16 : (const void *)r->q32;
#if defined(__x86_64__)
    const bool avx2 = j->isa == EL_ISA_AVX2;
#endif
    const size_t esz = f16 ? sizeof(uint16_t) : sizeof(float);
    float M = -INFINITY, S = 0.0f;
    for (size_t s = 0; s < len; s++) {
        const void *kr = (const uint8_t *)j->k + (kb + s * kvd) * esz;
        const void *vr = (const uint8_t *)j->v + (kb + s * kvd) * esz;
        float sc;
#if defined(__x86_64__)
        if (avx2) sc = gg_dot_avx2(kr, qr, f16, hd, j->width);
        else
#endif
            sc = gg_dot_portable(kr, qr, f16, hd, j->width);
        sc = sc * scale;
        float ms = 1.0f, vs = 1.0f;
        if (sc > M) { /* a new maximum: rescale what is there, this value weighs 1 */
            const float mold = M;
            M = sc;
            ms = expf(mold - M);
        } else {
            vs = expf(sc - M);
        }
#if defined(__x86_64__)
        if (avx2) gg_update_avx2(r, vr, f16, hd, ms, vs);
        else
#endif
            gg_update_portable(r, vr, f16, 0, hd, ms, vs);
        S = fmaf(S, ms, vs);
    }
    const float inv = S == 0.0f ? 0.0f : 1.0f / S;
    for (size_t i = 0; i < hd; i++)
        out[i] = (f16 ? el_fp16_to_fp32(r->acc16[i]) : r->acc32[i]) * inv;
}

static void gg_run(void *ctx, unsigned ith, unsigned nth) {
    const gg_job *j = ctx;
    const size_t hd = j->head_dim, qd = j->n_heads * hd, kvd = j->n_kv_heads * hd;
    const size_t group = j->n_heads / j->n_kv_heads;
    const size_t h0 = j->n_heads * ith / nth, h1 = j->n_heads * (ith + 1) / nth;
    gg_row r; /* ~5 KiB of stack per thread */
    for (size_t h = h0; h < h1; h++) {
        const size_t kvo = (h / group) * hd;
        for (size_t t = 0; t < j->n; t++) {
            const size_t pos = j->pos0 + t;
            const size_t lo = j->window && pos + 1 > j->window ? pos + 1 - j->window : 0;
            gg_attend_row(j, &r, j->out + t * qd + h * hd, j->q + t * qd + h * hd,
                          lo * kvd + kvo, pos + 1 - lo, kvd);
        }
    }
}

void el_cpu_attention_ggml(el_pool *p, float *out, const float *q, const void *k,
                           const void *v, el_dtype kv_dt, float *att, size_t att_stride,
                           size_t n, size_t pos0, size_t n_heads, size_t n_kv_heads,
                           size_t head_dim, size_t window, float scale, bool q_prescale,
                           unsigned width) {
    if (head_dim > GG_HD_MAX) {
        el_cpu_attention_kv(p, out, q, k, v, kv_dt, att, att_stride, n, pos0, n_heads,
                            n_kv_heads, head_dim, window, scale);
        return;
    }
    if (width != 8 && width != 16) width = el_cpu_ggml_width();
    gg_job j = {out, q, k, v, kv_dt == EL_DT_F16, q_prescale, width, n, pos0, n_heads,
                n_kv_heads, head_dim, window, scale, p->isa};
    uint64_t work = (uint64_t)n_heads * n * (pos0 + n) * head_dim * 2;
    el_pool_run_sized(p, work, gg_run, &j);
}

/* ---- RMSNorm and RoPE ----------------------------------------------------------------- */

static inline float w_at(const void *w, el_dtype wt, size_t i) {
    switch (wt) {
    case EL_DT_F16: return el_fp16_to_fp32(((const uint16_t *)w)[i]);
    case EL_DT_BF16: return el_bf16_to_fp32(((const uint16_t *)w)[i]);
    default: return ((const float *)w)[i];
    }
}

void el_cpu_rmsnorm_ggml(float *out, const float *x, const void *w, el_dtype wt, size_t n,
                         size_t dim, float eps, float w_offset) {
    for (size_t t = 0; t < n; t++) {
        const float *xr = x + t * dim;
        float *o = out + t * dim;
        double sum = 0.0;
        for (size_t i = 0; i < dim; i++) {
            const float sq = xr[i] * xr[i]; /* rounded to float, as ggml's (ggml_float)(x*x) */
            sum += (double)sq;
        }
        const float mean = (float)(sum / (double)dim);
        const float scale = 1.0f / sqrtf(mean + eps);
        for (size_t i = 0; i < dim; i++) {
            const float y = xr[i] * scale;
            o[i] = y * (w_offset + w_at(w, wt, i));
        }
    }
}

void el_cpu_rope_ggml(float *x, size_t n_heads, size_t head_dim, const float *cos,
                      const float *sin, bool interleaved) {
    const size_t half = head_dim / 2, off = interleaved ? 1 : half;
    for (size_t h = 0; h < n_heads; h++) {
        float *v = x + h * head_dim;
        for (size_t i = 0; i < half; i++) {
            float *p0 = v + (interleaved ? 2 * i : i), *p1 = p0 + off;
            const float x0 = *p0, x1 = *p1, c = cos[i], s = sin[i];
            const float x1s = x1 * s, x1c = x1 * c;
            *p0 = fmaf(x0, c, -x1s);
            *p1 = fmaf(x0, s, x1c);
        }
    }
}

void el_cpu_rope_table_ggml(float *cos, float *sin, size_t ctx, size_t head_dim, float base,
                            float freq_scale) {
    const size_t half = head_dim / 2;
    const float theta_scale = powf(base, -2.0f / (float)head_dim);
    for (size_t p = 0; p < ctx; p++) {
        float theta = (float)p;
        for (size_t i = 0; i < half; i++) {
            const float a = freq_scale * theta;
            cos[p * half + i] = cosf(a);
            sin[p * half + i] = sinf(a);
            theta *= theta_scale;
        }
    }
}


/* ---- SwiGLU and GEGLU ----------------------------------------------------------------- */

static inline uint32_t f2u(float f) {
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    return u;
}

static inline float u2f(uint32_t u) {
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ggml_v_expf (x86 vec.h, "adapted from arm limited optimized routine") for one lane: the
 * AVX-512 build's (w 16: the polynomial's last term + 1, then _mm512_scalef_ps, overflow to
 * inf / 0 past |n| > 192) or the AVX2 build's (w 8: k = 2^n from the exponent bits,
 * fma(j, k, k), two-step scaling past |n| > 126). */
static inline __attribute__((always_inline)) float gg_v_expf(float x, unsigned w) {
    const float r = 0x1.8p23f;
    const float z = fmaf(x, 0x1.715476p+0f, r);
    const float n = z - r;
    const float b = fmaf(-n, 0x1.7f7d1cp-20f, fmaf(-n, 0x1.62e4p-1f, x));
    const float u = b * b;
    const float p = fmaf(fmaf(0x1.0e4020p-7f, b, 0x1.573e2ep-5f), u,
                         fmaf(0x1.555e66p-3f, b, 0x1.fffdb6p-2f));
    if (w == 16) {
        const float j = fmaf(p, u, fmaf(0x1.ffffecp-1f, b, 1.0f));
        if (fabsf(n) > 192.0f) return n <= 0.0f ? 0.0f : INFINITY;
        /* scalef: j * 2^n rounded once (a product with a normal 2^n is the same) */
        if (n >= -126.0f && n <= 127.0f) return j * u2f((uint32_t)((int)n + 127) << 23);
        return ldexpf(j, (int)n);
    }
    const float j = fmaf(p, u, 0x1.ffffecp-1f * b);
    const uint32_t e = f2u(z) << 23;
    const float k = u2f(e + f2u(1.0f));
    if (!(fabsf(n) > 126.0f)) return fmaf(j, k, k);
    const uint32_t g = n <= 0.0f ? 0x82000000u : 0u;
    const float s1 = u2f(g + 0x7f000000u), s2 = u2f(e - g);
    if (fabsf(n) > 192.0f) return s1 * s1;
    return fmaf(s2, j, s2) * s1;
}

/* ggml_v_silu(x) * g lane by lane over the whole vectors (nv entries). */
static void gg_swiglu_lanes(float *x, const float *up, size_t nv, unsigned w) {
    for (size_t i = 0; i < nv; i++) x[i] = x[i] / (1.0f + gg_v_expf(0.0f - x[i], w)) * up[i];
}

#if defined(__x86_64__)
/* The same compiled with FMA instructions (fmaf inline rather than a libm call). */
static EL_AVX2 void gg_swiglu_lanes_fma(float *x, const float *up, size_t nv, unsigned w) {
    for (size_t i = 0; i < nv; i++) x[i] = x[i] / (1.0f + gg_v_expf(0.0f - x[i], w)) * up[i];
}
#endif

void el_cpu_swiglu_ggml(float *x, const float *up, size_t n, unsigned width) {
    if (width != 8 && width != 16) width = el_cpu_ggml_width();
    const size_t nv = n / width * width;
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("fma")) gg_swiglu_lanes_fma(x, up, nv, width);
    else
#endif
        gg_swiglu_lanes(x, up, nv, width);
    for (size_t i = nv; i < n; i++) x[i] = x[i] / (1.0f + expf(-x[i])) * up[i];
}

/* ggml_gelu_f32 as ggml-cpu.c fills its f16 table with it (GCC contracts the inner
 * 1 + a x x into an FMA; measured on llama.cpp's output). */
static float gg_gelu(float x) {
    const float inner = fmaf(0.044715f * x, x, 1.0f);
    const float t = tanhf(0.79788456080286535587989211986876f * x * inner);
    return 0.5f * x * (1.0f + t);
}

void el_cpu_geglu_ggml(float *x, const float *up, size_t n) {
    for (size_t i = 0; i < n; i++) {
        const float v = x[i];
        if (v <= -10.0f) x[i] = 0.0f;
        else if (v >= 10.0f) x[i] = v * up[i];
        else /* the table: gelu of v rounded to f16, rounded to f16 */
            x[i] = el_fp16_to_fp32(el_fp32_to_fp16(gg_gelu(el_fp16_to_fp32(el_fp32_to_fp16(v)))))
                   * up[i];
    }
}
