/* test_cuda_phased.c - the phased launches (kernels/cuda/phased.cuh) against the launches
 * they replace, bit for bit (memcmp):
 *   - el_cuda_attention_linear: attention (f32 and f16 caches, GQA, a context of 3 chunks
 *     and of 1, the position by value and from a device word with the grid sized for a
 *     longer context) then O + bias + residual (f32, f16, bf16 weights), against
 *     el_cuda_attention_at then el_cuda_linear_parts;
 *   - el_cuda_linear_chain: gate|up + SwiGLU and up + GELU (RMS and LayerNorm prologues,
 *     biases, 1 and 5 rows), then down + bias + residual, against two el_cuda_linear_parts;
 * each one launch (the separate ones 2 or 3), its two control words 0 again after it, two
 * launches in a row (the second on the first's result), and a captured graph replayed twice.
 * Under the emulator all of it in reverse, forward and random thread order. The emulator
 * runs blocks one at a time (its first block draws every task), so the waits between phases
 * are never taken there: what a GPU's concurrency does to them is not tested here. */
// ctest-labels: cuda;kernels
// ctest-timeout: 120
#include "tests/support/el_test.h"
#include "tests/support/el_test_cuda.h"
#include "kernels/fp16.h"

#include <stdlib.h>
#include <string.h>

#ifdef EL_HAVE_CUDA
#include "kernels/attn_split.h"
#include "kernels/cuda/cuda_ops.h"

#include <cuda_runtime_api.h>
#ifdef EL_CUDA_SIM
#include "cudasim.h"
#endif

static uint64_t g_rng = 0x243F6A8885A308D3ull;

/* n random values as dt (f32, f16, bf16) in device memory. */
static void *dev_rand(size_t n, el_dtype dt) {
    const size_t es = dt == EL_DT_F32 ? 4 : 2;
    uint8_t *h = malloc(n * es);
    for (size_t i = 0; i < n; i++) {
        const float f = el_test_frand(&g_rng);
        if (dt == EL_DT_F32) memcpy(h + 4 * i, &f, 4);
        else {
            const uint16_t b = dt == EL_DT_F16 ? el_fp32_to_fp16(f) : el_fp32_to_bf16(f);
            memcpy(h + 2 * i, &b, 2);
        }
    }
    void *d = el_test_dev_copy(h, n * es);
    free(h);
    return d;
}

/* A copy of n floats of device memory src, in device memory. */
static float *dev_dup(const float *src, size_t n) {
    float *h = malloc(n * sizeof *h);
    el_test_host_copy(h, src, n * sizeof *h);
    float *d = el_test_dev_copy(h, n * sizeof *h);
    free(h);
    return d;
}

/* n floats of a and b equal bit for bit. */
static bool dev_same(const float *a, const float *b, size_t n) {
    float *ha = malloc(n * sizeof *ha), *hb = malloc(n * sizeof *hb);
    el_test_host_copy(ha, a, n * sizeof *ha);
    el_test_host_copy(hb, b, n * sizeof *hb);
    const bool same = !memcmp(ha, hb, n * sizeof *ha);
    free(ha);
    free(hb);
    return same;
}

/* The control words are 0 (after a launch). */
static bool ctl_zero(const unsigned *ctl) {
    unsigned h[2] = {1, 1};
    el_test_host_copy(h, ctl, sizeof h);
    return h[0] == 0 && h[1] == 0;
}

static uint64_t launches(void) {
#ifdef EL_CUDA_SIM
    elsim_stats s;
    elsim_stats_get(&s);
    return s.launches;
#else
    return 0;
#endif
}

/* Runs step(arg, fused) twice by itself (fused) and twice by the separate launches into the
 * same-shaped buffers (the callers compare them); then once more as a captured graph replayed
 * twice when graph is set. Checks one launch per fused step and fewer than the separate. */
typedef void (*step_fn)(void *arg, bool fused, cudaStream_t s);
static void twice(step_fn step, void *arg, unsigned *ctl, cudaStream_t s) {
    for (int f = 1; f >= 0; f--) {
        const uint64_t l0 = launches();
        step(arg, f, s);
        step(arg, f, s);
        EL_CHECK(cudaStreamSynchronize(s) == cudaSuccess);
        const uint64_t l = launches() - l0;
#ifdef EL_CUDA_SIM
        EL_CHECK(f ? l == 2 : l >= 4);
#else
        (void)l;
#endif
        EL_CHECK(ctl_zero(ctl));
    }
}

typedef struct attn_case {
    el_cuda_attn a;        /* a.out: the fused run's */
    el_cuda_part o;        /* o.y: the fused run's residual */
    el_dtype wt;
    float *out_ref, *y_ref, *part_ref;
    unsigned *ctl;
} attn_case;

static void attn_step(void *p, bool fused, cudaStream_t s) {
    attn_case *c = p;
    if (fused) {
        bool done = false;
        EL_CHECK_OK(el_cuda_attention_linear(&c->a, &c->o, c->wt, c->ctl, (el_cuda_stream)s,
                                             &done));
        EL_CHECK(done);
        return;
    }
    const el_cuda_attn *a = &c->a;
    EL_CHECK_OK(el_cuda_attention_at(c->out_ref, a->q, a->k, a->v, a->kv_dt, a->n, a->pos0,
                                     a->dpos, a->max_ctx, a->n_heads, a->n_kv_heads,
                                     a->head_dim, a->window, a->scale, c->part_ref,
                                     a->part_floats, (el_cuda_stream)s));
    el_cuda_part o = c->o;
    o.y = c->y_ref;
    EL_CHECK_OK(el_cuda_linear_parts(&o, 1, c->out_ref, c->wt, a->n, a->n_heads * a->head_dim,
                                     EL_CUDA_EPI_ACCUMULATE, NULL, (el_cuda_stream)s));
}

/* Attention over pos0 + 1 positions of a cache of kv_dt (n rows from pos0; dctx: the position
 * from a device word and the grid sized for dctx positions, 0: by value), then O of wt. */
static void test_attention_linear(el_dtype kv_dt, el_dtype wt, size_t n, size_t pos0,
                                  size_t dctx, cudaStream_t s) {
    const size_t nh = 6, nkv = 2, hd = 16, qd = nh * hd, dim = 40, ctx = 1024;
    const size_t kvn = ctx * nkv * hd;
    attn_case c;
    memset(&c, 0, sizeof c);
    const uint64_t pf = el_attn_partial_floats(n, nh, hd, dctx ? dctx : pos0 + n);
    float *q = dev_rand(n * qd, EL_DT_F32);
    void *k = dev_rand(kvn, kv_dt), *v = dev_rand(kvn, kv_dt);
    float *out = dev_rand(n * qd, EL_DT_F32), *part = dev_rand(pf ? pf : 1, EL_DT_F32);
    float *y = dev_rand(n * dim, EL_DT_F32);
    const int32_t p32 = (int32_t)pos0;
    int32_t *dpos = dctx ? el_test_dev_copy(&p32, sizeof p32) : NULL;
    const unsigned zero[2] = {0, 0};
    c.ctl = el_test_dev_copy(zero, sizeof zero);
    c.a = (el_cuda_attn){out, q, k, v, kv_dt, n, pos0, dpos, dctx, nh, nkv, hd, 0, 0.25f,
                         part, pf};
    c.o = (el_cuda_part){y, dim, dev_rand(dim * qd, wt), dev_rand(dim, EL_DT_F16), EL_DT_F16,
                         dim};
    c.wt = wt;
    c.out_ref = dev_dup(out, n * qd);
    c.y_ref = dev_dup(y, n * dim);
    c.part_ref = dev_rand(pf ? pf : 1, EL_DT_F32);
    twice(attn_step, &c, c.ctl, s);
    EL_CHECK(dev_same(out, c.out_ref, n * qd));
    EL_CHECK(dev_same(y, c.y_ref, n * dim));
    if (dctx) { /* a graph of the fused launch, replayed twice: the same as two more */
        cudaGraph_t g = NULL;
        cudaGraphExec_t ge = NULL;
        EL_CHECK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal) == cudaSuccess);
        attn_step(&c, true, s);
        EL_CHECK(cudaStreamEndCapture(s, &g) == cudaSuccess);
        EL_CHECK(cudaGraphInstantiate(&ge, g, 0) == cudaSuccess);
        for (int i = 0; i < 2; i++) {
            EL_CHECK(cudaGraphLaunch(ge, s) == cudaSuccess);
            attn_step(&c, false, s);
        }
        EL_CHECK(cudaStreamSynchronize(s) == cudaSuccess);
        EL_CHECK(ctl_zero(c.ctl));
        EL_CHECK(dev_same(y, c.y_ref, n * dim));
        cudaGraphExecDestroy(ge);
        cudaGraphDestroy(g);
    }
    void *bufs[] = {q, k, v, out, part, y, dpos, c.ctl, (void *)c.o.w, (void *)c.o.b,
                    c.out_ref, c.y_ref, c.part_ref};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) cudaFree(bufs[i]);
}

typedef struct chain_case {
    el_cuda_part a[2], b; /* a[0].y, b.y: the fused run's */
    size_t na, n, in;
    el_cuda_epi e;
    el_cuda_prenorm norm;
    const float *x;
    el_dtype wt;
    float *h_ref, *y_ref;
    unsigned *ctl;
} chain_case;

static void chain_step(void *p, bool fused, cudaStream_t s) {
    chain_case *c = p;
    const el_cuda_stream st = (el_cuda_stream)s;
    if (fused) {
        bool done = false;
        EL_CHECK_OK(el_cuda_linear_chain(c->a, c->na, c->e, &c->norm, c->x, c->wt, c->n, c->in,
                                         &c->b, c->wt, c->ctl, st, &done));
        EL_CHECK(done);
        return;
    }
    el_cuda_part a[2] = {c->a[0], c->a[1]}, b = c->b;
    a[0].y = c->h_ref;
    b.y = c->y_ref;
    EL_CHECK_OK(el_cuda_linear_parts(a, c->na, c->x, c->wt, c->n, c->in, c->e, &c->norm, st));
    EL_CHECK_OK(el_cuda_linear_parts(&b, 1, c->h_ref, c->wt, c->n, c->a[0].out,
                                     EL_CUDA_EPI_ACCUMULATE, NULL, st));
}

/* n rows of in through norm and the up (gated: gate|up) linear of mid rows with e, then
 * down (in rows) into the residual, weights of wt. */
static void test_linear_chain(el_dtype wt, el_cuda_epi e, el_cuda_norm nk, size_t n,
                              cudaStream_t s) {
    const size_t in = 48, mid = 72;
    const bool glu = e == EL_CUDA_EPI_SWIGLU || e == EL_CUDA_EPI_GEGLU;
    chain_case c;
    memset(&c, 0, sizeof c);
    float *x = dev_rand(n * in, EL_DT_F32), *h = dev_rand(n * mid, EL_DT_F32);
    float *h2 = dev_rand(n * mid, EL_DT_F32), *y = dev_rand(n * in, EL_DT_F32);
    const unsigned zero[2] = {0, 0};
    c.ctl = el_test_dev_copy(zero, sizeof zero);
    c.na = glu ? 2 : 1;
    for (size_t p = 0; p < c.na; p++)
        c.a[p] = (el_cuda_part){p ? h2 : h, mid, dev_rand(mid * in, wt),
                                dev_rand(mid, EL_DT_F32), EL_DT_F32, mid};
    c.b = (el_cuda_part){y, in, dev_rand(in * mid, wt), dev_rand(in, EL_DT_F32), EL_DT_F32, in};
    c.norm = (el_cuda_prenorm){nk, dev_rand(in, EL_DT_F32),
                               nk == EL_CUDA_NORM_LAYER ? dev_rand(in, EL_DT_F32) : NULL,
                               EL_DT_F32, 1e-5f, 0.0f};
    c.n = n, c.in = in, c.e = e, c.x = x, c.wt = wt;
    c.h_ref = dev_dup(h, n * mid);
    c.y_ref = dev_dup(y, n * in);
    twice(chain_step, &c, c.ctl, s);
    EL_CHECK(dev_same(h, c.h_ref, n * mid));
    EL_CHECK(dev_same(y, c.y_ref, n * in));
    void *bufs[] = {x, h, h2, y, c.ctl, (void *)c.a[0].w, (void *)c.a[0].b, (void *)c.a[1].w,
                    (void *)c.a[1].b, (void *)c.b.w, (void *)c.b.b, (void *)c.norm.w,
                    (void *)c.norm.b, c.h_ref, c.y_ref};
    for (size_t i = 0; i < sizeof bufs / sizeof *bufs; i++) cudaFree(bufs[i]);
}

/* Where the phased launch does not take the weights: nothing queued, *fused false. */
static void test_not_taken(cudaStream_t s) {
    el_cuda_part a = {NULL, 8, NULL, NULL, EL_DT_F32, 8}, b = a;
    const el_cuda_prenorm norm = {EL_CUDA_NORM_RMS, NULL, NULL, EL_DT_F32, 1e-5f, 0.0f};
    unsigned dummy[2];
    bool fused = true;
    const uint64_t l0 = launches();
    EL_CHECK_OK(el_cuda_linear_chain(&a, 1, EL_CUDA_EPI_GELU_TANH, &norm, NULL, EL_DT_Q8_0, 1,
                                     32, &b, EL_DT_Q8_0, dummy, (el_cuda_stream)s, &fused));
    EL_CHECK(!fused);
    fused = true;
    EL_CHECK_OK(el_cuda_linear_chain(&a, 1, EL_CUDA_EPI_GELU_TANH, &norm, NULL, EL_DT_F32, 1,
                                     32, &b, EL_DT_F32, NULL, (el_cuda_stream)s, &fused));
    EL_CHECK(!fused);
    EL_CHECK(launches() == l0);
}

static void run_all(cudaStream_t s) {
    static const el_dtype wts[] = {EL_DT_F32, EL_DT_F16, EL_DT_BF16};
    for (int w = 0; w < 3; w++) {
        /* 3 chunks (combine phase), 1 chunk, by value and from the word (grid of 4 chunks) */
        test_attention_linear(EL_DT_F32, wts[w], 1, 700, 0, s);
        test_attention_linear(EL_DT_F16, wts[w], 1, 700, 0, s);
        test_attention_linear(EL_DT_F32, wts[w], 1, 100, 0, s);
        test_attention_linear(w == 1 ? EL_DT_F16 : EL_DT_F32, wts[w], 1, 300, 1024, s);
        test_attention_linear(EL_DT_F32, wts[w], 1, 100, 1024, s);
        test_attention_linear(EL_DT_F32, wts[w], 3, 40, 0, s); /* a prompt batch */
        test_linear_chain(wts[w], EL_CUDA_EPI_SWIGLU, EL_CUDA_NORM_RMS, 1, s);
        test_linear_chain(wts[w], EL_CUDA_EPI_GELU_TANH, EL_CUDA_NORM_LAYER, 1, s);
        test_linear_chain(wts[w], EL_CUDA_EPI_GEGLU, EL_CUDA_NORM_RMS, 5, s);
    }
    test_not_taken(s);
}
#endif

int main(void) {
#ifndef EL_HAVE_CUDA
    el_test_skip("this build has no CUDA backend (EL_CUDA=OFF or no toolkit)");
#else
    el_test_cuda_require("test_cuda_phased", "the phased launches", NULL);
    cudaStream_t s = NULL;
    EL_CHECK(cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess);
#ifdef EL_CUDA_SIM
    const elsim_order orders[] = {ELSIM_REVERSE, ELSIM_FORWARD, ELSIM_RANDOM};
    for (size_t o = 0; o < sizeof orders / sizeof orders[0]; o++) {
        elsim_set_order(orders[o], 777);
        printf("test_cuda_phased: emulated threads in %s order\n", elsim_order_name(orders[o]));
        run_all(s);
    }
#else
    run_all(s);
#endif
    EL_CHECK(cudaStreamDestroy(s) == cudaSuccess);
    return el_test_finish("test_cuda_phased");
#endif
}
