/* attention.cu - causal grouped-query attention over the KV cache, and bidirectional
 * attention over packed sequences (BERT): one block per (query row, head); the row's
 * scores sit in dynamic shared memory (max-subtracted softmax), then each thread owns
 * output dimensions and walks the value rows (coalesced across threads). */
#include "kernels/cuda/cuda_common.cuh"

#define THREADS 128
#define SHARED_MAX (96u * 1024u) /* bytes of scores we ask for: 24K positions */

/* One query row against len key/value rows (row j at kb + j * ld, vb + j * ld): the
 * scores in sc (dynamic shared memory), max-subtracted softmax, then each thread owns
 * output dimensions and walks the value rows. Reads of qr end before the first barrier,
 * so o may alias qr. */
static __device__ __forceinline__ void attend_row(float *o, const float *qr, const float *kb,
                                                  const float *vb, size_t ld, size_t len,
                                                  size_t head_dim, float scale, float *sc) {
    float m = -INFINITY;
    for (size_t j = threadIdx.x; j < len; j += blockDim.x) {
        const float *kr = kb + j * ld;
        float s = 0.0f;
        for (size_t d = 0; d < head_dim; d++) s += qr[d] * kr[d];
        s *= scale;
        sc[j] = s;
        m = fmaxf(m, s);
    }
    m = el_block_max(m);
    float sum = 0.0f;
    for (size_t j = threadIdx.x; j < len; j += blockDim.x) {
        float e = expf(sc[j] - m);
        sc[j] = e;
        sum += e;
    }
    float inv = 1.0f / el_block_sum(sum); /* its barriers also publish sc[] */
    for (size_t d = threadIdx.x; d < head_dim; d += blockDim.x) {
        float acc = 0.0f;
        for (size_t j = 0; j < len; j++) acc += sc[j] * vb[j * ld + d];
        o[d] = acc * inv;
    }
}

__global__ void attention_kernel(float *out, const float *q, const float *k, const float *v,
                                 size_t pos0, size_t n_heads, size_t n_kv_heads,
                                 size_t head_dim, size_t window, float scale) {
    EL_DYN_SHARED(float, sc);
    size_t t = blockIdx.x, h = blockIdx.y;
    size_t kvh = h / (n_heads / n_kv_heads);
    size_t qd = n_heads * head_dim, kd = n_kv_heads * head_dim;
    size_t pos = pos0 + t, lo = window && pos + 1 > window ? pos + 1 - window : 0;
    attend_row(out + t * qd + h * head_dim, q + t * qd + h * head_dim,
               k + lo * kd + kvh * head_dim, v + lo * kd + kvh * head_dim, kd,
               pos + 1 - lo /* causal: positions lo .. pos */, head_dim, scale, sc);
}

extern "C" size_t el_cuda_attention_max_ctx(void) { return SHARED_MAX / sizeof(float); }

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
    if (n == 0) return EL_OK;
    if (n_kv_heads == 0 || n_heads % n_kv_heads)
        return el_errorf(EL_E_USAGE, "attention: %zu heads over %zu KV heads", n_heads, n_kv_heads);
    size_t ctx = pos0 + n;
    if (ctx > el_cuda_attention_max_ctx())
        return el_errorf(EL_E_UNSUPPORTED, "CUDA attention: context %zu > %zu positions", ctx,
                         el_cuda_attention_max_ctx());
    size_t shm = ctx * sizeof(float);
    if (shm > 48u * 1024u)
        EL_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int)shm));
    dim3 grid((unsigned)n, (unsigned)n_heads);
    EL_LAUNCH(attention_kernel, grid, THREADS, shm, (cudaStream_t)st)(out, q, k, v, pos0, n_heads,
                                                                      n_kv_heads, head_dim,
                                                                      window, scale);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

/* One block per (packed row, head): the row's sequence is its whole context; out may be
 * q. */
__global__ void attention_bidir_kernel(float *out, const float *q, const float *k,
                                       const float *v, const int32_t *seq_start,
                                       const int32_t *seq_len, size_t n_heads,
                                       size_t head_dim) {
    EL_DYN_SHARED(float, sc);
    size_t r = blockIdx.x, h = blockIdx.y;
    size_t s0 = (size_t)seq_start[r], ld = n_heads * head_dim;
    attend_row(out + r * ld + h * head_dim, q + r * ld + h * head_dim,
               k + s0 * ld + h * head_dim, v + s0 * ld + h * head_dim, ld,
               (size_t)seq_len[r], head_dim, rsqrtf((float)head_dim), sc);
}

extern "C" el_status el_cuda_attention_bidir(float *out, const float *q, const float *k,
                                             const float *v, size_t rows,
                                             const int32_t *seq_start, const int32_t *seq_len,
                                             size_t max_len, size_t n_heads, size_t head_dim,
                                             el_cuda_stream st) {
    if (rows == 0) return EL_OK;
    if (max_len == 0 || max_len > el_cuda_attention_max_ctx())
        return el_errorf(EL_E_UNSUPPORTED, "CUDA attention: sequence of %zu tokens (1 to %zu)",
                         max_len, el_cuda_attention_max_ctx());
    size_t shm = max_len * sizeof(float);
    if (shm > 48u * 1024u)
        EL_CUDA_CHECK(cudaFuncSetAttribute(attention_bidir_kernel,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int)shm));
    dim3 grid((unsigned)rows, (unsigned)n_heads);
    EL_LAUNCH(attention_bidir_kernel, grid, THREADS, shm, (cudaStream_t)st)(out, q, k, v, seq_start,
                                                                     seq_len, n_heads,
                                                                     head_dim);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}
