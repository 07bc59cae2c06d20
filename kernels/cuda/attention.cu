/* attention.cu - causal grouped-query attention over the KV cache (f32 or f16 keys and
 * values: --kv-dtype), the store of a batch's keys and values into that cache, and
 * bidirectional attention over packed sequences (BERT).
 *
 * Split-context ("flash-decoding") attention with an online softmax. A block owns one
 * query row, the query heads of one KV head (all of its GQA group, or as many as give
 * 256 threads 4 dims each: then the group is cut into sub-groups), and one chunk of
 * the row's keys (kernels/attn_split.h: chunks of >= 256 positions, at most 256 of them,
 * as many as the caller's partials buffer holds). Each K/V row is read once per block for
 * every head of the group. The block walks its chunk TILE positions at a time:
 *   1. scores: ceil(head_dim / 8) lanes (a power of two, up to a warp) per key position;
 *      each lane holds 8 elements of the key row in registers (16-byte loads where
 *      head_dim and the cache allow) and dots them with every head's query (shared
 *      memory), reduced by shuffles within the lanes of the row;
 *   2. online softmax: a warp per head updates the running max m and sum l over the tile
 *      (shuffles), leaving exp(score - m) and the factor alpha = exp(m_old - m_new);
 *   3. values: a thread per (head, 4 dims) rescales its accumulators by alpha and adds
 *      p_j * v_j (8- or 16-byte loads).
 * One chunk: the block writes softmax(scores) v itself. Several: each block writes its
 * partial (head_dim accumulators, m, l) and attn_combine_kernel merges the chunks of each
 * (row, head): out = sum_s e^(m_s - M) acc_s / sum_s e^(m_s - M) l_s. No limit on the
 * context but the cache's; shared memory is fixed (< 48 KiB) whatever its length. */
#include "kernels/cuda/attention.cuh"

/* The bodies as kernels of their own: block blockIdx of gridDim. */
template <typename T, bool VEC, bool BIDIR>
__global__ void attn_chunk_kernel(float *out, const float *q, const T *k, const T *v,
                                  float *part, const int32_t *seq_start, const int32_t *seq_len,
                                  size_t pos0, const int32_t *dpos, size_t window, size_t nh,
                                  size_t ldkv, int group, int gb, int hd, float scale) {
    attn_chunk<T, VEC, BIDIR>(blockIdx, gridDim, out, q, k, v, part, seq_start, seq_len, pos0,
                              dpos, window, nh, ldkv, group, gb, hd, scale);
}

__global__ void attn_combine_kernel(float *out, const float *part, size_t nh, int hd,
                                    unsigned ns, const int32_t *dpos, size_t window) {
    attn_combine(blockIdx, gridDim, blockDim.x, out, part, nh, hd, ns, dpos, window);
}

template <typename T, bool BIDIR>
static el_status attn_run(float *out, const float *q, const T *k, const T *v, float *part,
                          const int32_t *seq_start, const int32_t *seq_len, size_t rows,
                          size_t pos0, const int32_t *dpos, size_t window, size_t nh, size_t nkv,
                          size_t hd, float scale, const attn_geo &g, cudaStream_t st) {
    const bool vec = hd % 8 == 0 && ((uintptr_t)k | (uintptr_t)v) % 16 == 0;
    const dim3 grid((unsigned)rows, (unsigned)(nkv * (size_t)g.nsub), g.ns);
    const size_t ldkv = nkv * hd, group = nh / nkv;
    if (vec)
        EL_LAUNCH((attn_chunk_kernel<T, true, BIDIR>), grid, g.threads, g.shm, st)(
            out, q, k, v, part, seq_start, seq_len, pos0, dpos, window, nh, ldkv, (int)group,
            g.gb, (int)hd, scale);
    else
        EL_LAUNCH((attn_chunk_kernel<T, false, BIDIR>), grid, g.threads, g.shm, st)(
            out, q, k, v, part, seq_start, seq_len, pos0, dpos, window, nh, ldkv, (int)group,
            g.gb, (int)hd, scale);
    EL_CUDA_LAUNCHED();
    if (g.ns == 1) return EL_OK;
    EL_LAUNCH(attn_combine_kernel, dim3((unsigned)rows, (unsigned)nh), THREADS, 0, st)(
        out, part, nh, (int)hd, g.ns, dpos, window);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

extern "C" el_status el_cuda_attention(float *out, const float *q, const float *k,
                                       const float *v, size_t n, size_t pos0, size_t n_heads,
                                       size_t n_kv_heads, size_t head_dim, el_cuda_stream st) {
    return el_cuda_attention_ex(out, q, k, v, n, pos0, n_heads, n_kv_heads, head_dim, 0,
                                1.0f / sqrtf((float)head_dim), st);
}

extern "C" el_status el_cuda_attention_ex(float *out, const float *q, const float *k,
                                          const float *v, size_t n, size_t pos0,
                                          size_t n_heads, size_t n_kv_heads, size_t head_dim,
                                          size_t window, float scale, el_cuda_stream st) {
    return el_cuda_attention_kv(out, q, k, v, EL_DT_F32, n, pos0, n_heads, n_kv_heads, head_dim,
                                window, scale, NULL, 0, st);
}

extern "C" el_status el_cuda_attention_kv(float *out, const float *q, const void *k,
                                          const void *v, el_dtype kv_dt, size_t n, size_t pos0,
                                          size_t n_heads, size_t n_kv_heads, size_t head_dim,
                                          size_t window, float scale, float *part,
                                          size_t part_floats, el_cuda_stream st) {
    return el_cuda_attention_at(out, q, k, v, kv_dt, n, pos0, NULL, 0, n_heads, n_kv_heads,
                                head_dim, window, scale, part, part_floats, st);
}

extern "C" el_status el_cuda_attention_at(float *out, const float *q, const void *k,
                                          const void *v, el_dtype kv_dt, size_t n, size_t pos0,
                                          const int32_t *dpos, size_t max_ctx, size_t n_heads,
                                          size_t n_kv_heads, size_t head_dim, size_t window,
                                          float scale, float *part, size_t part_floats,
                                          el_cuda_stream st) {
    if (n == 0) return EL_OK;
    attn_geo g = {};
    const el_status e = attn_plan_at(&g, kv_dt, n, dpos, max_ctx, pos0, n_heads, n_kv_heads,
                                     head_dim, window, part_floats, part);
    if (e != EL_OK) return e;
    if (kv_dt == EL_DT_F16)
        return attn_run<__half, false>(out, q, (const __half *)k, (const __half *)v, part, NULL,
                                       NULL, n, pos0, dpos, window, n_heads, n_kv_heads,
                                       head_dim, scale, g, (cudaStream_t)st);
    return attn_run<float, false>(out, q, (const float *)k, (const float *)v, part, NULL, NULL,
                                  n, pos0, dpos, window, n_heads, n_kv_heads, head_dim, scale, g,
                                  (cudaStream_t)st);
}

/* Keys and values of a batch into the cache: entry i < n of k then of v (grid-stride), from
 * row *drow (rows of width entries) when drow is not NULL. */
template <typename T>
__global__ void kv_store_kernel(T *kd, T *vd, const float *k, const float *v, size_t n,
                                const int32_t *drow, size_t width) {
    if (drow) {
        const size_t off = (size_t)*drow * width;
        kd += off, vd += off;
    }
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < 2 * n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float x = i < n ? k[i] : v[i - n];
        T *d = i < n ? kd + i : vd + (i - n);
        el_kv_put(d, x);
    }
}

extern "C" el_status el_cuda_kv_store(void *kd, void *vd, el_dtype kv_dt, const float *k,
                                      const float *v, size_t n, el_cuda_stream st) {
    return el_cuda_kv_store_at(kd, vd, kv_dt, k, v, n, NULL, 0, st);
}

extern "C" el_status el_cuda_kv_store_at(void *kd, void *vd, el_dtype kv_dt, const float *k,
                                         const float *v, size_t n, const int32_t *drow,
                                         size_t width, el_cuda_stream st) {
    if (n == 0) return EL_OK;
    size_t b = (2 * n + THREADS - 1) / THREADS;
    unsigned grid = (unsigned)(b < 65535u ? b : 65535u); /* the grid-stride loop covers the rest */
    if (kv_dt == EL_DT_F16)
        EL_LAUNCH(kv_store_kernel<__half>, grid, THREADS, 0, (cudaStream_t)st)(
            (__half *)kd, (__half *)vd, k, v, n, drow, width);
    else if (kv_dt == EL_DT_F32)
        EL_LAUNCH(kv_store_kernel<float>, grid, THREADS, 0, (cudaStream_t)st)(
            (float *)kd, (float *)vd, k, v, n, drow, width);
    else
        return el_errorf(EL_E_USAGE, "CUDA KV store: a cache of %s (f32 or f16)",
                         el_dtype_name(kv_dt));
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

/* The same blocks with one chunk per row (no partials): row r's keys are its sequence. */
extern "C" el_status el_cuda_attention_bidir(float *out, const float *q, const float *k,
                                             const float *v, size_t rows,
                                             const int32_t *seq_start, const int32_t *seq_len,
                                             size_t max_len, size_t n_heads, size_t head_dim,
                                             el_cuda_stream st) {
    if (rows == 0) return EL_OK;
    if (max_len == 0)
        return el_errorf(EL_E_USAGE, "CUDA attention: sequences of 0 tokens");
    attn_geo g;
    const el_status e = attn_plan(&g, rows, n_heads, n_heads, head_dim, max_len, 0, NULL);
    if (e != EL_OK) return e;
    return attn_run<float, true>(out, q, k, v, NULL, seq_start, seq_len, rows, 0, NULL, 0, n_heads,
                                 n_heads, head_dim, 1.0f / sqrtf((float)head_dim), g,
                                 (cudaStream_t)st);
}
