/* ops.c - the small per-token kernels around the matmuls: RMSNorm, RoPE (interleaved and
 * rotate-half), softmax, SwiGLU, residual add, embedding lookup, argmax and causal
 * grouped-query attention over the KV cache. The reductions (sums of squares, dot products)
 * have explicit AVX2 paths because C compilers may not reorder float sums on their own. */
#include "kernels/cpu/cpu.h"
#include "kernels/fp16.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define EL_AVX2 __attribute__((target("avx2,fma,f16c")))
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

static EL_AVX2 void axpy_avx2(float *y, float a, const float *x, size_t n) {
    __m256 av = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i),
                                                _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}
#endif

static inline float dot(el_isa isa, const float *a, const float *b, size_t n) {
#if defined(__x86_64__)
    if (isa == EL_ISA_AVX2) return dot_avx2(a, b, n);
#endif
    (void)isa;
    return dot_portable(a, b, n);
}

static inline void axpy(el_isa isa, float *y, float a, const float *x, size_t n) {
#if defined(__x86_64__)
    if (isa == EL_ISA_AVX2) {
        axpy_avx2(y, a, x, n);
        return;
    }
#endif
    (void)isa;
    axpy_portable(y, a, x, n);
}

/* ---- RMSNorm -------------------------------------------------------------------------- */

void el_cpu_rmsnorm(const el_pool *p, float *out, const float *x, const void *w, el_dtype wt,
                    size_t n, size_t dim, float eps) {
    for (size_t t = 0; t < n; t++) {
        const float *xr = x + t * dim;
        float *o = out + t * dim;
        float ss = dot(p->isa, xr, xr, dim) / (float)dim + eps;
        ss = 1.0f / sqrtf(ss);
        if (wt == EL_DT_F32) {
            const float *wf = w;
            for (size_t i = 0; i < dim; i++) o[i] = wf[i] * (ss * xr[i]);
        } else {
            for (size_t i = 0; i < dim; i++) o[i] = w_at(w, wt, i) * (ss * xr[i]);
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

void el_cpu_softmax(const el_pool *p, float *x, size_t n) {
    (void)p;
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

void el_cpu_swiglu(const el_pool *p, float *gate, const float *up, size_t n) {
    (void)p;
    for (size_t i = 0; i < n; i++) {
        float g = gate[i];
        gate[i] = g * (1.0f / (1.0f + expf(-g))) * up[i];
    }
}

void el_cpu_add(const el_pool *p, float *y, const float *x, size_t n) {
    (void)p;
    for (size_t i = 0; i < n; i++) y[i] += x[i];
}

void el_cpu_embed(float *out, const void *table, el_dtype dt, size_t dim, size_t id) {
    size_t esz = dt == EL_DT_F32 ? 4u : 2u;
    const void *row = (const char *)table + id * dim * esz;
    if (dt == EL_DT_F32) {
        const float *r = row;
        for (size_t i = 0; i < dim; i++) out[i] = r[i];
    } else {
        for (size_t i = 0; i < dim; i++) out[i] = w_at(row, dt, i);
    }
}

size_t el_cpu_argmax(const float *x, size_t n) {
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

typedef struct att_job {
    float *out;
    const float *q, *k, *v;
    float *att;
    size_t att_stride, n, pos0, n_heads, n_kv_heads, head_dim;
    el_isa isa;
} att_job;

static void att_run(void *ctx, unsigned ith, unsigned nth) {
    const att_job *j = ctx;
    const size_t hd = j->head_dim, qd = j->n_heads * hd, kvd = j->n_kv_heads * hd;
    const size_t group = j->n_heads / j->n_kv_heads;
    const float scale = 1.0f / sqrtf((float)hd);
    size_t h0 = j->n_heads * ith / nth, h1 = j->n_heads * (ith + 1) / nth;
    for (size_t h = h0; h < h1; h++) {
        float *att = j->att + h * j->att_stride;
        const size_t kvo = (h / group) * hd;
        for (size_t t = 0; t < j->n; t++) {
            const size_t len = j->pos0 + t + 1; /* causal: keys 0..pos */
            const float *q = j->q + t * qd + h * hd;
            for (size_t s = 0; s < len; s++) att[s] = dot(j->isa, q, j->k + s * kvd + kvo, hd) * scale;
            el_cpu_softmax(NULL, att, len);
            float *o = j->out + t * qd + h * hd;
            for (size_t i = 0; i < hd; i++) o[i] = 0;
            for (size_t s = 0; s < len; s++) axpy(j->isa, o, att[s], j->v + s * kvd + kvo, hd);
        }
    }
}

void el_cpu_attention(el_pool *p, float *out, const float *q, const float *k, const float *v,
                      float *att, size_t att_stride, size_t n, size_t pos0, size_t n_heads,
                      size_t n_kv_heads, size_t head_dim) {
    att_job j = {out, q, k, v, att, att_stride, n, pos0, n_heads, n_kv_heads, head_dim, p->isa};
    /* Work: score and value multiply-adds over every (head, query, key). */
    uint64_t work = (uint64_t)n_heads * n * (pos0 + n) * head_dim * 2;
    el_pool_run_sized(p, work, att_run, &j);
}
