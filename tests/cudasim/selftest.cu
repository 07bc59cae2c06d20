/* selftest.cu - kernels for tests/test_cudasim.c, some broken on purpose (see selftest.h).
 * Compiled only in -DEL_CUDA_SIM=ON builds (by g++, like kernels/cuda), launched through the
 * same EL_LAUNCH hook. */
#include "kernels/cuda/cuda_common.cuh"
#include "tests/cudasim/selftest.h"

__global__ void broadcast_kernel(float *out, int with_barrier) {
    __shared__ float s;
    if (threadIdx.x == 0) s = (float)(blockIdx.x + 1);
    if (with_barrier) __syncthreads();
    out[blockIdx.x * blockDim.x + threadIdx.x] = s;
}

__global__ void reduce_kernel(const float *in, float *out, int with_barrier) {
    __shared__ float a[1024];
    unsigned t = threadIdx.x;
    a[t] = in[t];
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s >>= 1) {
        if (t < s) a[t] += a[t + s];
        if (with_barrier) __syncthreads();
    }
    if (t == 0) *out = a[0];
}

__global__ void shuffle_kernel(const int *in, int *out, unsigned *out2, int live, int arg,
                               int width) {
    int t = (int)threadIdx.x;
    if (t >= live) return;
    int v = in[t];
    out[4 * t + 0] = __shfl_sync(0xffffffffu, v, arg, width);
    out[4 * t + 1] = __shfl_up_sync(0xffffffffu, v, (unsigned)arg, width);
    out[4 * t + 2] = __shfl_down_sync(0xffffffffu, v, (unsigned)arg, width);
    out[4 * t + 3] = __shfl_xor_sync(0xffffffffu, v, arg, width);
    out2[t] = __ballot_sync(0xffffffffu, v & 1);
}

/* y = k * x, or y += k * x (acc) */
__global__ void scale_kernel(float *y, const float *x, float k, int acc, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        y[i] = k * x[i] + (acc ? y[i] : 0.0f);
}

__global__ void store_kernel(float *p, size_t i, float v) { p[i] = v; }

__global__ void deadlock_kernel(void) {
    /* warp 1's lanes 0-15 wait at __syncwarp for lanes 16-31, which wait at __syncthreads */
    if (threadIdx.x >= 32 && (threadIdx.x & 31) < 16) __syncwarp();
    else __syncthreads();
}

__global__ void bad_mask_kernel(void) { __syncwarp(threadIdx.x == 5 ? 0x1u : 0xffffffffu); }

__global__ void launch_kernel(size_t shmem, size_t over) {
    EL_DYN_SHARED(unsigned char, sh);
    if (threadIdx.x == 0 && shmem) sh[shmem - 1 + over] = 1;
}

extern "C" {

void st_broadcast(float *out, int blocks, int threads, int with_barrier, cudaStream_t st) {
    EL_LAUNCH(broadcast_kernel, (unsigned)blocks, (unsigned)threads, 0, st)(out, with_barrier);
}

void st_reduce(const float *in, float *out, int n, int with_barrier, cudaStream_t st) {
    EL_LAUNCH(reduce_kernel, 1, (unsigned)n, 0, st)(in, out, with_barrier);
}

void st_shuffles(const int *in, int *out, unsigned *out2, int threads, int live, int arg,
                 int width, cudaStream_t st) {
    EL_LAUNCH(shuffle_kernel, 1, (unsigned)threads, 0, st)(in, out, out2, live, arg, width);
}

void st_scale(float *y, const float *x, float k, size_t n, cudaStream_t st) {
    EL_LAUNCH(scale_kernel, 3, 128, 0, st)(y, x, k, 0, n);
}

void st_axpy(float *y, const float *x, float k, size_t n, cudaStream_t st) {
    EL_LAUNCH(scale_kernel, 3, 128, 0, st)(y, x, k, 1, n);
}

void st_store(float *p, size_t i, float v, cudaStream_t st) {
    EL_LAUNCH(store_kernel, 1, 1, 0, st)(p, i, v);
}

void st_deadlock(cudaStream_t st) { EL_LAUNCH(deadlock_kernel, 1, 64, 0, st)(); }

void st_bad_mask(cudaStream_t st) { EL_LAUNCH(bad_mask_kernel, 1, 32, 0, st)(); }

void st_launch(unsigned grid, unsigned block, size_t shmem, size_t over, cudaStream_t st) {
    EL_LAUNCH(launch_kernel, grid, block, shmem, st)(shmem, over);
}

cudaError_t st_allow_shared(int bytes) {
    return cudaFuncSetAttribute(launch_kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, bytes);
}

uint16_t st_f2h(float f) { return __half_as_ushort(__float2half_rn(f)); }

float st_h2f(uint16_t h) { return __half2float(__ushort_as_half(h)); }

} /* extern "C" */
