/* softmax.cu - row softmax (max-subtracted) and argmax, one block per row. */
#include "kernels/cuda/cuda_common.cuh"

#define THREADS 256

__global__ void softmax_kernel(float *x, size_t len) {
    float *r = x + blockIdx.x * len;
    float m = -INFINITY;
    for (size_t i = threadIdx.x; i < len; i += blockDim.x) m = fmaxf(m, r[i]);
    m = el_block_max(m);
    float s = 0.0f;
    for (size_t i = threadIdx.x; i < len; i += blockDim.x) {
        float e = expf(r[i] - m);
        r[i] = e;
        s += e;
    }
    float inv = 1.0f / el_block_sum(s);
    for (size_t i = threadIdx.x; i < len; i += blockDim.x) r[i] *= inv;
}

/* One block: each thread keeps its best (value, index); NaN never wins; ties -> lower index. */
__global__ void argmax_kernel(const float *x, size_t n, int32_t *idx) {
    __shared__ float bv[THREADS];
    __shared__ int32_t bi[THREADS];
    float best = -INFINITY;
    int32_t at = -1;
    for (size_t i = threadIdx.x; i < n; i += blockDim.x)
        if (x[i] > best || (at < 0 && x[i] == best)) {
            best = x[i];
            at = (int32_t)i;
        }
    bv[threadIdx.x] = best;
    bi[threadIdx.x] = at;
    __syncthreads();
    for (unsigned s = THREADS / 2; s > 0; s >>= 1) {
        if (threadIdx.x < s) {
            float v2 = bv[threadIdx.x + s];
            int32_t i2 = bi[threadIdx.x + s];
            bool take = i2 >= 0 && (bi[threadIdx.x] < 0 || v2 > bv[threadIdx.x] ||
                                    (v2 == bv[threadIdx.x] && i2 < bi[threadIdx.x]));
            if (take) {
                bv[threadIdx.x] = v2;
                bi[threadIdx.x] = i2;
            }
        }
        __syncthreads();
    }
    if (threadIdx.x == 0) *idx = bi[0] < 0 ? 0 : bi[0];
}

extern "C" el_status el_cuda_softmax(float *x, size_t n, size_t len, el_cuda_stream st) {
    if (n == 0 || len == 0) return EL_OK;
    EL_LAUNCH(softmax_kernel, (unsigned)n, THREADS, 0, (cudaStream_t)st)(x, len);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

extern "C" el_status el_cuda_argmax(const float *x, size_t n, int32_t *idx, el_cuda_stream st) {
    EL_LAUNCH(argmax_kernel, 1, THREADS, 0, (cudaStream_t)st)(x, n, idx);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}
