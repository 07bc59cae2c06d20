/* rope.cu - rotary position embedding over n rows of heads; angles computed in double
 * (pos * theta^(-2i/d) loses digits in float at long positions). */
#include "kernels/cuda/cuda_common.cuh"

__global__ void rope_kernel(float *x, size_t ld, size_t n_heads, size_t head_dim, size_t pos0,
                            float theta, bool interleaved) {
    size_t t = blockIdx.x;
    size_t half = head_dim / 2;
    double pos = (double)(pos0 + t);
    for (size_t k = threadIdx.x; k < n_heads * half; k += blockDim.x) {
        size_t h = k / half, i = k % half;
        double ang = pos * pow((double)theta, -2.0 * (double)i / (double)head_dim);
        float c = (float)cos(ang), s = (float)sin(ang);
        float *v = x + t * ld + h * head_dim;
        size_t ia = interleaved ? 2 * i : i, ib = interleaved ? 2 * i + 1 : i + half;
        float a = v[ia], b = v[ib];
        v[ia] = a * c - b * s;
        v[ib] = a * s + b * c;
    }
}

extern "C" el_status el_cuda_rope(float *x, size_t ld, size_t n, size_t n_heads,
                                  size_t head_dim, size_t pos0, float theta, bool interleaved,
                                  el_cuda_stream st) {
    if (n == 0) return EL_OK;
    EL_LAUNCH(rope_kernel, (unsigned)n, 128, 0, (cudaStream_t)st)(x, ld, n_heads, head_dim, pos0,
                                                                  theta, interleaved);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}
