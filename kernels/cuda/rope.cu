/* rope.cu - rotary position embedding from the session's angle tables (the same float
 * tables the CPU path uses, so both rotate by identical angles), and the kernel that fills
 * those tables on the GPU. */
#include "kernels/cuda/cuda_common.cuh"

/* One block per position: heads 0 .. n_heads - 1 of x, then (y not NULL) y_heads heads of y
 * (q and k in one launch). Row t takes the tables' row pos0 + t, pos0 read from *dpos when
 * dpos is not NULL (a captured launch replays at any position). */
__global__ void rope_kernel(float *x, size_t ld, size_t n_heads, float *y, size_t ldy,
                            size_t y_heads, size_t head_dim, const float *cos_t,
                            const float *sin_t, size_t pos0, const int32_t *dpos,
                            bool interleaved) {
    size_t t = blockIdx.x;
    size_t half = head_dim / 2;
    const size_t p = (dpos ? (size_t)*dpos : pos0) + t;
    const float *cr = cos_t + p * half, *sr = sin_t + p * half;
    for (size_t k = threadIdx.x; k < (n_heads + y_heads) * half; k += blockDim.x) {
        size_t h = k / half, i = k % half;
        float c = cr[i], s = sr[i];
        float *v = h < n_heads ? x + t * ld + h * head_dim : y + t * ldy + (h - n_heads) * head_dim;
        size_t ia = interleaved ? 2 * i : i, ib = interleaved ? 2 * i + 1 : i + half;
        float a = v[ia], b = v[ib];
        el_rope_pair(a, b, c, s);
        v[ia] = a;
        v[ib] = b;
    }
}

/* One block per position: freq_i from kernels/rope_freq.h, as the CPU. */
__global__ void rope_table_kernel(float *cos_t, float *sin_t, size_t head_dim, el_rope r) {
    size_t p = blockIdx.x, half = head_dim / 2;
    for (size_t i = threadIdx.x; i < half; i += blockDim.x) {
        float freq = el_rope_inv_freq(r, i, head_dim);
        float a = (float)p * freq;
        cos_t[p * half + i] = cosf(a);
        sin_t[p * half + i] = sinf(a);
    }
}

extern "C" el_status el_cuda_rope_at(float *x, size_t ld, size_t n_heads, float *y, size_t ldy,
                                     size_t y_heads, size_t n, size_t head_dim, const float *cos,
                                     const float *sin, size_t pos0, const int32_t *dpos,
                                     bool interleaved, el_cuda_stream st) {
    if (n == 0) return EL_OK;
    EL_LAUNCH(rope_kernel, (unsigned)n, 128, 0, (cudaStream_t)st)(
        x, ld, n_heads, y, ldy, y ? y_heads : 0, head_dim, cos, sin, pos0, dpos, interleaved);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

extern "C" el_status el_cuda_rope2(float *x, size_t ld, size_t n_heads, float *y, size_t ldy,
                                   size_t y_heads, size_t n, size_t head_dim, const float *cos,
                                   const float *sin, bool interleaved, el_cuda_stream st) {
    return el_cuda_rope_at(x, ld, n_heads, y, ldy, y_heads, n, head_dim, cos, sin, 0, NULL,
                           interleaved, st);
}

extern "C" el_status el_cuda_rope(float *x, size_t ld, size_t n, size_t n_heads,
                                  size_t head_dim, const float *cos, const float *sin,
                                  bool interleaved, el_cuda_stream st) {
    return el_cuda_rope2(x, ld, n_heads, NULL, 0, 0, n, head_dim, cos, sin, interleaved, st);
}

extern "C" el_status el_cuda_rope_table(float *cos, float *sin, size_t ctx, size_t head_dim,
                                        el_rope r, el_cuda_stream st) {
    if (ctx == 0 || head_dim < 2) return EL_OK;
    EL_LAUNCH(rope_table_kernel, (unsigned)ctx, 64, 0, (cudaStream_t)st)(cos, sin, head_dim, r);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}
