/* matmul.cu - y = W x for weights [out, in] (f32, f16, bf16) and n f32 rows of x.
 * One warp per output row: lanes stride across the row (coalesced), and every one of the n
 * input rows reuses the weight row while it is in L1/L2. Batch-1 decode (n = 1) is a GEMV
 * whose speed is the weight stream; prefill chunks (n <= 64) re-read each row n times from
 * cache. */
#include "kernels/cuda/cuda_common.cuh"

#define ROWS_PER_BLOCK 8 /* warps per block */
#define MAX_N 8          /* input rows per pass (registers) */

template <typename W>
static __device__ __forceinline__ float wload(const W *w, size_t i);
template <> __device__ __forceinline__ float wload<float>(const float *w, size_t i) { return w[i]; }
template <> __device__ __forceinline__ float wload<__half>(const __half *w, size_t i) {
    return __half2float(w[i]);
}
template <> __device__ __forceinline__ float wload<uint16_t>(const uint16_t *w, size_t i) {
    return __uint_as_float((uint32_t)w[i] << 16);
}

template <typename W>
__global__ void matmul_kernel(float *y, size_t ldy, const float *x, const W *w, size_t n,
                              size_t in, size_t out) {
    size_t row = (size_t)blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= out) return;
    const W *wr = w + row * in;
    for (size_t t0 = 0; t0 < n; t0 += MAX_N) {
        size_t nt = n - t0 < MAX_N ? n - t0 : MAX_N;
        float acc[MAX_N];
#pragma unroll
        for (int t = 0; t < MAX_N; t++) acc[t] = 0.0f;
        for (size_t i = lane; i < in; i += 32) {
            float wv = wload<W>(wr, i);
#pragma unroll
            for (int t = 0; t < MAX_N; t++)
                if ((size_t)t < nt) acc[t] += wv * x[(t0 + t) * in + i];
        }
#pragma unroll
        for (int t = 0; t < MAX_N; t++) {
            if ((size_t)t < nt) { /* nt is the same for the whole warp: no divergence */
                float s = el_warp_sum(acc[t]);
                if (lane == 0) y[(t0 + t) * ldy + row] = s;
            }
        }
    }
}

extern "C" el_status el_cuda_matmul(float *y, size_t ldy, const float *x, const void *w,
                                    el_dtype wt, size_t n, size_t in, size_t out,
                                    el_cuda_stream st) {
    if (n == 0 || out == 0) return EL_OK;
    dim3 grid((unsigned)((out + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK)), block(32 * ROWS_PER_BLOCK);
    cudaStream_t s = (cudaStream_t)st;
    if (wt == EL_DT_F16)
        EL_LAUNCH(matmul_kernel<__half>, grid, block, 0, s)(y, ldy, x, (const __half *)w, n, in,
                                                            out);
    else if (wt == EL_DT_BF16)
        EL_LAUNCH(matmul_kernel<uint16_t>, grid, block, 0, s)(y, ldy, x, (const uint16_t *)w, n, in,
                                                              out);
    else
        EL_LAUNCH(matmul_kernel<float>, grid, block, 0, s)(y, ldy, x, (const float *)w, n, in, out);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}
