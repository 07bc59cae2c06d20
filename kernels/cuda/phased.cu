/* phased.cu - two of a decoder layer's launches as one phased launch each
 * (kernels/cuda/phased.cuh), for f32, f16 and bf16 weights:
 *   - attention then the output projection: the attention's chunk blocks (phase 0), the
 *     combine of their partials when the context is split (phase 1), then the projection's
 *     row blocks over the attention rows (phase 2, with its epilogue: bias, residual add);
 *   - the FFN: the up (or gate|up) linear with its norm prologue and activation epilogue
 *     (phase 0), then the down linear over its rows (phase 1, bias and residual add).
 * Each task is a block of the separate kernel, run by the same body (attention.cuh,
 * matmul_f.cuh) with the same block index and arithmetic, so the results are the separate
 * launches' bits. Blocks of 256 threads: the matmul's 8 warps; the attention's chunk body
 * gives the same bits with 256 threads as with its own 128 (each key row, head and output
 * dim is reduced by the same lanes in the same order), the combine runs on its 128. What
 * one phase writes, the next reads by ordinary loads (attention output, partials, the FFN's
 * hidden rows): never __ldg. */
#include "kernels/cuda/attention.cuh"
#include "kernels/cuda/matmul_f.cuh"
#include "kernels/cuda/phased.cuh"

#define PH_THREADS (32 * ROWS_PER_BLOCK)

/* Row block bx of o over x (rows of in): the separate launch's kernel body. */
template <typename W, bool VEC, bool NORM, int E>
static __device__ __forceinline__ void ph_rows(size_t bx, const el_mm_out &o, const float *x,
                                               size_t n, size_t in) {
    if (VEC) matmul_vec_rows<W, NORM, E>(bx, o, x, n, in);
    else matmul_rows<W, NORM, E>(bx, o, x, n, in);
}

/* The attention's geometry as phased tasks: grid (rows, ys, ns) of chunk blocks, then the
 * combine's (rows, nh) when ns > 1. */
struct ph_attn {
    float *out, *part;
    const float *q;
    const void *k, *v;
    const int32_t *dpos;
    size_t pos0, window, nh, ldkv, n;
    unsigned ys, ns;
    int group, gb, hd;
    float scale;
};

template <typename T, bool AVEC, typename W, bool VEC>
__global__ void attn_linear_kernel(ph_attn a, el_mm_out o, el_phases ph, unsigned *ctl) {
    el_phased(ctl, ph, [&](int p, unsigned i) {
        const unsigned rows = (unsigned)a.n;
        if (p == 0)
            attn_chunk<T, AVEC, false>(make_uint3(i % rows, i / rows % a.ys, i / rows / a.ys),
                                       dim3(rows, a.ys, a.ns), a.out, a.q, (const T *)a.k,
                                       (const T *)a.v, a.part, NULL, NULL, a.pos0, a.dpos,
                                       a.window, a.nh, a.ldkv, a.group, a.gb, a.hd, a.scale);
        else if (p == 1)
            attn_combine(make_uint3(i % rows, i / rows, 0), dim3(rows, (unsigned)a.nh),
                         THREADS, a.out, a.part, a.nh, a.hd, a.ns, a.dpos, a.window);
        else
            ph_rows<W, VEC, false, MM_ONE>(i, o, a.out, a.n, a.nh * (size_t)a.hd);
    });
}

template <typename W, bool VEC, int E>
__global__ void linear_chain_kernel(el_mm_out a, el_mm_out b, const float *x, size_t n,
                                    size_t in, size_t mid, el_phases ph, unsigned *ctl) {
    el_phased(ctl, ph, [&](int p, unsigned i) {
        if (p == 0) ph_rows<W, VEC, true, E>(i, a, x, n, in);
        else ph_rows<W, VEC, false, MM_ONE>(i, b, a.y[0], n, mid);
    });
}

static bool ph_takes(el_dtype wt) {
    return wt == EL_DT_F32 || wt == EL_DT_F16 || wt == EL_DT_BF16;
}

/* Bytes of a weight of wt (ph_takes: f32, or f16 / bf16). */
static size_t ph_wsize(el_dtype wt) { return wt == EL_DT_F32 ? 4 : 2; }

static unsigned ph_blocks(size_t rows) {
    return (unsigned)((rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK);
}

/* Launches kernel K over the tasks of ph on st. */
#define PH_LAUNCH(K, ph, shm, st, ...)                                                         \
    EL_LAUNCH(K, el_phased_grid((ph).end[EL_PHASES_MAX - 1]), PH_THREADS, shm, st)(__VA_ARGS__)

template <typename T, typename W>
static void attn_linear_w(const ph_attn &a, const el_mm_out &o, bool avec, bool vec,
                          const el_phases &ph, size_t shm, unsigned *ctl, cudaStream_t st) {
#define EL_AL(AV, V)                                                                           \
    do {                                                                                       \
        typedef void (*k_t)(ph_attn, el_mm_out, el_phases, unsigned *);                        \
        const k_t k = attn_linear_kernel<T, AV, W, V>;                                         \
        PH_LAUNCH(k, ph, shm, st, a, o, ph, ctl);                                              \
    } while (0)
    if (avec && vec) EL_AL(true, true);
    else if (avec) EL_AL(true, false);
    else if (vec) EL_AL(false, true);
    else EL_AL(false, false);
#undef EL_AL
}

template <typename T>
static void attn_linear_t(const ph_attn &a, const el_mm_out &o, el_dtype wt, bool avec,
                          bool vec, const el_phases &ph, size_t shm, unsigned *ctl,
                          cudaStream_t st) {
    if (wt == EL_DT_F16) attn_linear_w<T, __half>(a, o, avec, vec, ph, shm, ctl, st);
    else if (wt == EL_DT_BF16) attn_linear_w<T, uint16_t>(a, o, avec, vec, ph, shm, ctl, st);
    else attn_linear_w<T, float>(a, o, avec, vec, ph, shm, ctl, st);
}

extern "C" el_status el_cuda_attention_linear(const el_cuda_attn *a, const el_cuda_part *op,
                                              el_dtype wt, unsigned *ctl, el_cuda_stream st,
                                              bool *fused) {
    *fused = false;
    const size_t qd = a->n_heads * a->head_dim;
    if (!ctl || !ph_takes(wt) || a->n == 0 || op->out == 0) return EL_OK;
    attn_geo g = {};
    const el_status e = attn_plan_at(&g, a->kv_dt, a->n, a->dpos, a->max_ctx, a->pos0,
                                     a->n_heads, a->n_kv_heads, a->head_dim, a->window,
                                     a->part_floats, a->part);
    if (e != EL_OK) return e;
    el_mm_out o = mm_parts(op, 1, EL_CUDA_EPI_ACCUMULATE, NULL);
    const ph_attn pa = {a->out, a->part, a->q, a->k, a->v, a->dpos, a->pos0, a->window,
                        a->n_heads, a->n_kv_heads * a->head_dim, a->n,
                        (unsigned)(a->n_kv_heads * (size_t)g.nsub), g.ns,
                        (int)(a->n_heads / a->n_kv_heads), g.gb, (int)a->head_dim, a->scale};
    const uint64_t chunks = (uint64_t)a->n * pa.ys * g.ns;
    const uint64_t comb = g.ns > 1 ? (uint64_t)a->n * a->n_heads : 0;
    const uint64_t all = chunks + comb + ph_blocks(op->out);
    if (all > 0x7fffffffu) return EL_OK; /* the separate launches' grids */
    const el_phases ph = {{(unsigned)chunks, (unsigned)(chunks + comb), (unsigned)all}};
    const bool avec = a->head_dim % 8 == 0 && ((uintptr_t)a->k | (uintptr_t)a->v) % 16 == 0;
    const bool vec = mm_vec_ok(qd, ph_wsize(wt), a->out, o);
    const cudaStream_t s = (cudaStream_t)st;
    if (a->kv_dt == EL_DT_F16) attn_linear_t<__half>(pa, o, wt, avec, vec, ph, g.shm, ctl, s);
    else attn_linear_t<float>(pa, o, wt, avec, vec, ph, g.shm, ctl, s);
    EL_CUDA_LAUNCHED();
    *fused = true;
    return EL_OK;
}

template <typename W>
static void chain_w(const el_mm_out &a, const el_mm_out &b, const float *x, size_t n, size_t in,
                    size_t mid, bool vec, const el_phases &ph, unsigned *ctl, cudaStream_t st) {
    mm_by_kind(a.epi, [&](auto e) {
        constexpr int E = decltype(e)::value;
        if constexpr (E != MM_QKV) { /* never: el_cuda_linear_chain refuses it */
            typedef void (*k_t)(el_mm_out, el_mm_out, const float *, size_t, size_t, size_t,
                                el_phases, unsigned *);
            const k_t k = vec ? linear_chain_kernel<W, true, E>
                              : linear_chain_kernel<W, false, E>;
            PH_LAUNCH(k, ph, 0, st, a, b, x, n, in, mid, ph, ctl);
        }
    });
}

extern "C" el_status el_cuda_linear_chain(const el_cuda_part *a, size_t na, el_cuda_epi ea,
                                          const el_cuda_prenorm *norm, const float *x,
                                          el_dtype wt, size_t n, size_t in,
                                          const el_cuda_part *b, el_dtype bwt, unsigned *ctl,
                                          el_cuda_stream st, bool *fused) {
    *fused = false;
    const size_t mid = a[0].out;
    if (!ctl || !ph_takes(wt) || bwt != wt || n == 0 || !norm ||
        norm->kind == EL_CUDA_NORM_NONE || ea == EL_CUDA_EPI_ACCUMULATE ||
        a[0].ldy != mid || b->out == 0)
        return EL_OK;
    el_mm_out oa, ob;
    el_status e = mm_parts_checked(a, na, ea, norm, &oa);
    if (e != EL_OK) return e;
    if ((e = mm_parts_checked(b, 1, EL_CUDA_EPI_ACCUMULATE, NULL, &ob)) != EL_OK) return e;
    /* Both linears by 16-byte loads or both not: one template flag. */
    const bool vec = mm_vec_ok(in, ph_wsize(wt), x, oa);
    if (vec != mm_vec_ok(mid, ph_wsize(wt), a[0].y, ob)) return EL_OK;
    const uint64_t all = (uint64_t)ph_blocks(oa.rows) + ph_blocks(ob.rows);
    if (all > 0x7fffffffu) return EL_OK;
    const el_phases ph = {{ph_blocks(oa.rows), (unsigned)all, (unsigned)all}};
    const cudaStream_t s = (cudaStream_t)st;
    if (wt == EL_DT_F16) chain_w<__half>(oa, ob, x, n, in, mid, vec, ph, ctl, s);
    else if (wt == EL_DT_BF16) chain_w<uint16_t>(oa, ob, x, n, in, mid, vec, ph, ctl, s);
    else chain_w<float>(oa, ob, x, n, in, mid, vec, ph, ctl, s);
    EL_CUDA_LAUNCHED();
    *fused = true;
    return EL_OK;
}
