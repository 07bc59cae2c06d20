/* norm.cu - RMSNorm and LayerNorm, one block per row. LayerNorm takes the mean first and
 * then the spread around it, as the CPU kernel does (no one-pass cancellation). */
#include "kernels/cuda/cuda_common.cuh"

#define THREADS 256

__global__ void rmsnorm_kernel(float *out, const float *x, const void *w, el_dtype wt,
                               size_t dim, float eps, float w_offset) {
    const float *xr = x + blockIdx.x * dim;
    float *o = out + blockIdx.x * dim;
    float ss = 0.0f;
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) ss += xr[i] * xr[i];
    ss = el_block_sum(ss);
    float inv = rsqrtf(ss / (float)dim + eps);
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x)
        o[i] = (w_offset + el_ld(w, wt, i)) * (inv * xr[i]);
}

__global__ void layernorm_kernel(float *out, const float *x, const void *w, const void *b,
                                 el_dtype wt, size_t dim, float eps) {
    const float *xr = x + blockIdx.x * dim;
    float *o = out + blockIdx.x * dim;
    float s = 0.0f;
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) s += xr[i];
    float mean = el_block_sum(s) / (float)dim;
    float v = 0.0f;
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) {
        float d = xr[i] - mean;
        v += d * d;
    }
    float inv = rsqrtf(el_block_sum(v) / (float)dim + eps);
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x)
        o[i] = (xr[i] - mean) * inv * el_ld(w, wt, i) + (b ? el_ld(b, wt, i) : 0.0f);
}

extern "C" el_status el_cuda_rmsnorm(float *out, const float *x, const void *w, el_dtype wt,
                                     size_t n, size_t dim, float eps, el_cuda_stream st) {
    return el_cuda_rmsnorm_off(out, x, w, wt, n, dim, eps, 0.0f, st);
}

extern "C" el_status el_cuda_rmsnorm_off(float *out, const float *x, const void *w,
                                         el_dtype wt, size_t n, size_t dim, float eps,
                                         float w_offset, el_cuda_stream st) {
    if (n == 0) return EL_OK;
    EL_LAUNCH(rmsnorm_kernel, (unsigned)n, THREADS, 0, (cudaStream_t)st)(out, x, w, wt, dim, eps,
                                                                       w_offset);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

extern "C" el_status el_cuda_layernorm(float *out, const float *x, const void *w,
                                       const void *b, el_dtype wt, size_t n, size_t dim,
                                       float eps, el_cuda_stream st) {
    if (n == 0) return EL_OK;
    EL_LAUNCH(layernorm_kernel, (unsigned)n, THREADS, 0, (cudaStream_t)st)(out, x, w, b, wt, dim,
                                                                         eps);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}
