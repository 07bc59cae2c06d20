/* encoder.c - kernels the encoder (BERT) forward pass needs beyond the decoder's: multi-head
 * attention in both directions over a batch of sequences of different lengths (the padding
 * mask), and the exact GELU spread over the pool's threads. The dot products have an AVX2
 * path because compilers do not reorder float sums on their own. */
#include "kernels/cpu/cpu.h"

#include <math.h>

#if defined(__x86_64__)
#include <immintrin.h>
#define EL_AVX2 __attribute__((target("avx2,fma")))
#endif

/* ---- dot product and axpy --------------------------------------------------------------- */

static float enc_dot_portable(const float *a, const float *b, size_t n) {
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

#if defined(__x86_64__)
static EL_AVX2 float enc_dot_avx2(const float *a, const float *b, size_t n) {
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

static EL_AVX2 void enc_axpy_avx2(float *y, float a, const float *x, size_t n) {
    const __m256 av = _mm256_set1_ps(a);
    size_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_fmadd_ps(av, _mm256_loadu_ps(x + i), _mm256_loadu_ps(y + i)));
    for (; i < n; i++) y[i] += a * x[i];
}
#endif

static void enc_axpy_portable(float *y, float a, const float *x, size_t n) {
    for (size_t i = 0; i < n; i++) y[i] += a * x[i];
}

static inline float enc_dot(el_isa isa, const float *a, const float *b, size_t n) {
#if defined(__x86_64__)
    if (isa == EL_ISA_AVX2) return enc_dot_avx2(a, b, n);
#endif
    (void)isa;
    return enc_dot_portable(a, b, n);
}

static inline void enc_axpy(el_isa isa, float *y, float a, const float *x, size_t n) {
#if defined(__x86_64__)
    if (isa == EL_ISA_AVX2) {
        enc_axpy_avx2(y, a, x, n);
        return;
    }
#endif
    (void)isa;
    enc_axpy_portable(y, a, x, n);
}

/* ---- bidirectional attention ------------------------------------------------------------ */

typedef struct bidir_job {
    float *out;
    const float *q, *k, *v;
    size_t ld;                /* floats between rows */
    const uint32_t *starts;   /* [batch] first row of each sequence */
    const uint32_t *lengths;  /* [batch] rows of each sequence */
    size_t batch, n_heads, head_dim;
    float *att;               /* [batch * n_heads, att_stride] */
    size_t att_stride;
    uint64_t total;           /* sum over units of their cost (len^2) */
    el_isa isa;
} bidir_job;

/* One (sequence, head) unit: for every query row of the sequence, scores against every key
 * row of the same sequence, softmax, weighted sum of the value rows. Rows outside the
 * sequence are never touched. The query row is read completely before its output row is
 * written, so out may alias q. */
static void bidir_unit(const bidir_job *j, size_t b, size_t h) {
    const size_t hd = j->head_dim, len = j->lengths[b], r0 = j->starts[b], off = h * hd;
    const float scale = 1.0f / sqrtf((float)hd);
    float *att = j->att + (b * j->n_heads + h) * j->att_stride;
    for (size_t t = 0; t < len; t++) {
        const float *q = j->q + (r0 + t) * j->ld + off;
        float mx = -INFINITY;
        for (size_t s = 0; s < len; s++) {
            float d = enc_dot(j->isa, q, j->k + (r0 + s) * j->ld + off, hd) * scale;
            att[s] = d;
            if (d > mx) mx = d;
        }
        float sum = 0;
        for (size_t s = 0; s < len; s++) {
            att[s] = expf(att[s] - mx);
            sum += att[s];
        }
        const float inv = 1.0f / sum;
        float *o = j->out + (r0 + t) * j->ld + off;
        for (size_t i = 0; i < hd; i++) o[i] = 0;
        for (size_t s = 0; s < len; s++)
            enc_axpy(j->isa, o, att[s] * inv, j->v + (r0 + s) * j->ld + off, hd);
    }
}

/* Units are (sequence, head) pairs in order; thread ith takes those whose cost midpoint
 * falls in its share of the total, so one long sequence does not leave threads idle. */
static void bidir_run(void *ctx, unsigned ith, unsigned nth) {
    const bidir_job *j = ctx;
    uint64_t before = 0;
    for (size_t b = 0; b < j->batch; b++) {
        const uint64_t c = (uint64_t)j->lengths[b] * j->lengths[b];
        for (size_t h = 0; h < j->n_heads; h++) {
            const uint64_t mid2 = 2 * before + c; /* twice the midpoint, kept integral */
            const uint64_t owner = j->total ? mid2 * nth / (2 * j->total) : 0;
            if (owner == ith || (owner >= nth && ith == nth - 1)) bidir_unit(j, b, h);
            before += c;
        }
    }
}

void el_cpu_attention_bidir(el_pool *p, float *out, const float *q, const float *k,
                            const float *v, size_t ld, const uint32_t *starts,
                            const uint32_t *lengths, size_t batch, size_t n_heads,
                            size_t head_dim, float *att, size_t att_stride) {
    uint64_t total = 0;
    for (size_t b = 0; b < batch; b++) total += (uint64_t)lengths[b] * lengths[b] * n_heads;
    bidir_job j = {out, q, k, v, ld, starts, lengths, batch, n_heads, head_dim, att, att_stride,
                   total, p->isa};
    el_pool_run_sized(p, total * head_dim * 2, bidir_run, &j);
}

/* ---- GELU over the pool ----------------------------------------------------------------- */

/* Each thread runs ops.c's serial kernel (which never dispatches to the pool itself, and
 * takes the pool only for its instruction set) on its slice. */
typedef struct gelu_job {
    const el_pool *pool;
    float *x;
    size_t n;
    bool tanh_approx;
} gelu_job;

static void gelu_run(void *ctx, unsigned ith, unsigned nth) {
    const gelu_job *j = ctx;
    /* Slices start on multiples of 16 elements, so every element takes the same (vector or
     * scalar tail) path of the serial kernel as it would alone: results do not depend on
     * the thread count. */
    size_t blocks = (j->n + 15) / 16;
    size_t i0 = blocks * ith / nth * 16, i1 = blocks * (ith + 1) / nth * 16;
    if (i1 > j->n) i1 = j->n;
    if (i0 >= i1) return;
    if (j->tanh_approx)
        el_cpu_gelu_tanh(j->pool, j->x + i0, i1 - i0);
    else
        el_cpu_gelu_erf(j->pool, j->x + i0, i1 - i0);
}

void el_cpu_gelu_par(el_pool *p, float *x, size_t n, bool tanh_approx) {
    gelu_job j = {p, x, n, tanh_approx};
    /* erff / tanhf cost about as much as a few dozen multiply-adds each. */
    el_pool_run_sized(p, (uint64_t)n * 32, gelu_run, &j);
}
