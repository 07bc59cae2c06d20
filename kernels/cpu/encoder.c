/* encoder.c - kernels the encoder (BERT) forward pass needs beyond the decoder's: multi-head
 * attention in both directions over a batch of sequences of different lengths (the padding
 * mask), and the exact GELU spread over the pool's threads. Dot products and axpy come
 * from ops.c (el_cpu_dot / el_cpu_axpy: AVX2, NEON or portable, by the pool's ISA). */
#include "kernels/cpu/cpu.h"

#include <math.h>

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
            float d = el_cpu_dot(j->isa, q, j->k + (r0 + s) * j->ld + off, hd) * scale;
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
            el_cpu_axpy(j->isa, o, att[s] * inv, j->v + (r0 + s) * j->ld + off, hd);
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
