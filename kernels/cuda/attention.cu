/* attention.cu - causal grouped-query attention over the KV cache (f32 or f16 keys and
 * values: --kv-dtype), the store of a batch's keys and values into that cache, and
 * bidirectional attention over packed sequences (BERT): one block per (query row, head);
 * the row's scores sit in dynamic shared memory (max-subtracted softmax), then each thread
 * owns output dimensions and walks the value rows (coalesced across threads). */
#include "kernels/cuda/cuda_common.cuh"

#define THREADS 128
#define SHARED_MAX (96u * 1024u) /* bytes of scores we ask for: 24K positions */

/* A cache element as f32 (f16 widens exactly). */
static __device__ __forceinline__ float kv_ld(const float *c, size_t i) { return c[i]; }
static __device__ __forceinline__ float kv_ld(const __half *c, size_t i) {
    return __half2float(c[i]);
}

/* One query row against len key/value rows of T (row j at kb + j * ld, vb + j * ld): the
 * scores in sc (dynamic shared memory), max-subtracted softmax, then each thread owns
 * output dimensions and walks the value rows. Reads of qr end before the first barrier,
 * so o may alias qr. */
template <typename T>
static __device__ __forceinline__ void attend_row(float *o, const float *qr, const T *kb,
                                                  const T *vb, size_t ld, size_t len,
                                                  size_t head_dim, float scale, float *sc) {
    float m = -INFINITY;
    for (size_t j = threadIdx.x; j < len; j += blockDim.x) {
        const T *kr = kb + j * ld;
        float s = 0.0f;
        for (size_t d = 0; d < head_dim; d++) s += qr[d] * kv_ld(kr, d);
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
        for (size_t j = 0; j < len; j++) acc += sc[j] * kv_ld(vb, j * ld + d);
        o[d] = acc * inv;
    }
}

template <typename T>
__global__ void attention_kernel(float *out, const float *q, const T *k, const T *v,
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
    return el_cuda_attention_kv(out, q, k, v, EL_DT_F32, n, pos0, n_heads, n_kv_heads, head_dim,
                                window, scale, st);
}

template <typename T>
static el_status attention_launch(float *out, const float *q, const T *k, const T *v, size_t n,
                                  size_t pos0, size_t n_heads, size_t n_kv_heads,
                                  size_t head_dim, size_t window, float scale, cudaStream_t st) {
    size_t shm = (pos0 + n) * sizeof(float);
    if (shm > 48u * 1024u)
        EL_CUDA_CHECK(cudaFuncSetAttribute(attention_kernel<T>,
                                           cudaFuncAttributeMaxDynamicSharedMemorySize,
                                           (int)shm));
    dim3 grid((unsigned)n, (unsigned)n_heads);
    EL_LAUNCH(attention_kernel<T>, grid, THREADS, shm, st)(out, q, k, v, pos0, n_heads,
                                                           n_kv_heads, head_dim, window,
                                                           scale);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

extern "C" el_status el_cuda_attention_kv(float *out, const float *q, const void *k,
                                          const void *v, el_dtype kv_dt, size_t n, size_t pos0,
                                          size_t n_heads, size_t n_kv_heads, size_t head_dim,
                                          size_t window, float scale, el_cuda_stream st) {
    if (n == 0) return EL_OK;
    if (n_kv_heads == 0 || n_heads % n_kv_heads)
        return el_errorf(EL_E_USAGE, "attention: %zu heads over %zu KV heads", n_heads, n_kv_heads);
    if (kv_dt != EL_DT_F32 && kv_dt != EL_DT_F16)
        return el_errorf(EL_E_USAGE, "CUDA attention: a KV cache of %s (f32 or f16)",
                         el_dtype_name(kv_dt));
    size_t ctx = pos0 + n;
    if (ctx > el_cuda_attention_max_ctx())
        return el_errorf(EL_E_UNSUPPORTED, "CUDA attention: context %zu > %zu positions", ctx,
                         el_cuda_attention_max_ctx());
    if (kv_dt == EL_DT_F16)
        return attention_launch(out, q, (const __half *)k, (const __half *)v, n, pos0, n_heads,
                                n_kv_heads, head_dim, window, scale, (cudaStream_t)st);
    return attention_launch(out, q, (const float *)k, (const float *)v, n, pos0, n_heads,
                            n_kv_heads, head_dim, window, scale, (cudaStream_t)st);
}

static __device__ __forceinline__ void kv_put(float *d, float x) { *d = x; }
static __device__ __forceinline__ void kv_put(__half *d, float x) { *d = __float2half_rn(x); }

/* Keys and values of a batch into the cache: entry i < n of k then of v (grid-stride). */
template <typename T>
__global__ void kv_store_kernel(T *kd, T *vd, const float *k, const float *v, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < 2 * n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float x = i < n ? k[i] : v[i - n];
        T *d = i < n ? kd + i : vd + (i - n);
        kv_put(d, x);
    }
}

extern "C" el_status el_cuda_kv_store(void *kd, void *vd, el_dtype kv_dt, const float *k,
                                      const float *v, size_t n, el_cuda_stream st) {
    if (n == 0) return EL_OK;
    size_t b = (2 * n + THREADS - 1) / THREADS;
    unsigned grid = (unsigned)(b < 65535u ? b : 65535u); /* the grid-stride loop covers the rest */
    if (kv_dt == EL_DT_F16)
        EL_LAUNCH(kv_store_kernel<__half>, grid, THREADS, 0, (cudaStream_t)st)(
            (__half *)kd, (__half *)vd, k, v, n);
    else if (kv_dt == EL_DT_F32)
        EL_LAUNCH(kv_store_kernel<float>, grid, THREADS, 0, (cudaStream_t)st)(
            (float *)kd, (float *)vd, k, v, n);
    else
        return el_errorf(EL_E_USAGE, "CUDA KV store: a cache of %s (f32 or f16)",
                         el_dtype_name(kv_dt));
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
