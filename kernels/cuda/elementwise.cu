/* elementwise.cu - SwiGLU, GELU (tanh and erf), residual and bias adds, embedding rows and
 * added position rows. */
#include "kernels/cuda/cuda_common.cuh"

#define THREADS 256

static unsigned blocks_for(size_t n) {
    size_t b = (n + THREADS - 1) / THREADS;
    return (unsigned)(b < 65535u * 16u ? b : 65535u * 16u); /* grid-stride loops cover the rest */
}

__global__ void swiglu_kernel(float *g, const float *u, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        float v = g[i];
        g[i] = v / (1.0f + expf(-v)) * u[i];
    }
}

__global__ void mul_kernel(float *y, const float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] *= x[i];
}

__global__ void scale_kernel(float *x, float s, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] *= s;
}

__global__ void gelu_tanh_kernel(float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        x[i] = el_gelu_tanh(x[i]);
    }
}

__global__ void gelu_erf_kernel(float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] = el_gelu_erf(x[i]);
}

__global__ void add_kernel(float *y, const float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] += x[i];
}

__global__ void add_bias_kernel(float *y, size_t ldy, const void *b, el_dtype bt, size_t out) {
    float *yr = y + blockIdx.x * ldy;
    for (size_t i = threadIdx.x; i < out; i += blockDim.x) yr[i] += el_ld(b, bt, i);
}

__global__ void embed_kernel(float *out, const void *table, el_dtype dt, size_t dim,
                             const int32_t *ids) {
    size_t row = (size_t)ids[blockIdx.x];
    float *o = out + blockIdx.x * dim;
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) o[i] = el_ld(table, dt, row * dim + i);
}

/* y[t, :] += table[row0 + t, :], one block per row. */
__global__ void add_rows_kernel(float *y, const void *table, el_dtype dt, size_t dim,
                                size_t row0, const int32_t *drow0) {
    float *o = y + blockIdx.x * dim;
    size_t row = (drow0 ? (size_t)*drow0 : row0) + blockIdx.x;
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) o[i] += el_ld(table, dt, row * dim + i);
}

/* y[t, :] += table[idx[t], :], one block per row. */
__global__ void embed_add_kernel(float *y, const void *table, el_dtype dt, size_t dim,
                                 const int32_t *idx) {
    float *o = y + blockIdx.x * dim;
    size_t row = (size_t)idx[blockIdx.x];
    for (size_t i = threadIdx.x; i < dim; i += blockDim.x) o[i] += el_ld(table, dt, row * dim + i);
}

__global__ void tanh_kernel(float *x, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        x[i] = tanhf(x[i]);
}

#define LAUNCH_N(kernel, n, ...)                                                   \
    do {                                                                           \
        if ((n) == 0) return EL_OK;                                                \
        EL_LAUNCH(kernel, blocks_for(n), THREADS, 0, (cudaStream_t)st)(__VA_ARGS__); \
        EL_CUDA_LAUNCHED();                                                        \
        return EL_OK;                                                              \
    } while (0)

extern "C" el_status el_cuda_swiglu(float *gate, const float *up, size_t n, el_cuda_stream st) {
    LAUNCH_N(swiglu_kernel, n, gate, up, n);
}
extern "C" el_status el_cuda_gelu_tanh(float *x, size_t n, el_cuda_stream st) {
    LAUNCH_N(gelu_tanh_kernel, n, x, n);
}
extern "C" el_status el_cuda_gelu_erf(float *x, size_t n, el_cuda_stream st) {
    LAUNCH_N(gelu_erf_kernel, n, x, n);
}
extern "C" el_status el_cuda_add(float *y, const float *x, size_t n, el_cuda_stream st) {
    LAUNCH_N(add_kernel, n, y, x, n);
}
extern "C" el_status el_cuda_mul(float *y, const float *x, size_t n, el_cuda_stream st) {
    LAUNCH_N(mul_kernel, n, y, x, n);
}
extern "C" el_status el_cuda_scale(float *x, float s, size_t n, el_cuda_stream st) {
    LAUNCH_N(scale_kernel, n, x, s, n);
}

extern "C" el_status el_cuda_add_bias(float *y, size_t ldy, const void *b, el_dtype bt,
                                      size_t n, size_t out, el_cuda_stream st) {
    if (n == 0) return EL_OK;
    EL_LAUNCH(add_bias_kernel, (unsigned)n, THREADS, 0, (cudaStream_t)st)(y, ldy, b, bt, out);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

extern "C" el_status el_cuda_embed(float *out, const void *table, el_dtype dt, size_t dim,
                                   const int32_t *ids, size_t n, el_cuda_stream st) {
    if (n == 0) return EL_OK;
    EL_LAUNCH(embed_kernel, (unsigned)n, THREADS, 0, (cudaStream_t)st)(out, table, dt, dim, ids);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

extern "C" el_status el_cuda_add_rows_at(float *y, const void *table, el_dtype dt, size_t dim,
                                         size_t row0, const int32_t *drow0, size_t n,
                                         el_cuda_stream st) {
    if (n == 0) return EL_OK;
    EL_LAUNCH(add_rows_kernel, (unsigned)n, THREADS, 0, (cudaStream_t)st)(y, table, dt, dim, row0,
                                                                        drow0);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

extern "C" el_status el_cuda_add_rows(float *y, const void *table, el_dtype dt, size_t dim,
                                      size_t row0, size_t n, el_cuda_stream st) {
    return el_cuda_add_rows_at(y, table, dt, dim, row0, NULL, n, st);
}

extern "C" el_status el_cuda_embed_add(float *y, const void *table, el_dtype dt, size_t dim,
                                       const int32_t *idx, size_t n, el_cuda_stream st) {
    if (n == 0) return EL_OK;
    EL_LAUNCH(embed_add_kernel, (unsigned)n, THREADS, 0, (cudaStream_t)st)(y, table, dt, dim, idx);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

extern "C" el_status el_cuda_tanh(float *x, size_t n, el_cuda_stream st) {
    LAUNCH_N(tanh_kernel, n, x, n);
}
