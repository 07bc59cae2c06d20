/* selftest.h - the kernels tests/test_cudasim.c runs to prove what the CUDA emulator catches
 * (tests/cudasim/selftest.cu, linked into that test only, in -DEL_CUDA_SIM=ON builds). Some
 * are broken on purpose. Every function launches on `st` and returns without synchronising;
 * pointers are device (or managed) memory unless named host. */
#ifndef ELSIM_SELFTEST_H
#define ELSIM_SELFTEST_H

#include <cuda_runtime_api.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* out[b * threads + t] = the value thread 0 of block b stored in shared memory (b + 1), read
 * by every thread; with_barrier = 0 leaves out the __syncthreads between store and read. */
void st_broadcast(float *out, int blocks, int threads, int with_barrier, cudaStream_t st);
/* *out = sum of in[0..n) by a shared-memory tree (one block of n threads, n a power of two);
 * with_barrier = 0 leaves out the __syncthreads between the tree's levels. */
void st_reduce(const float *in, float *out, int n, int with_barrier, cudaStream_t st);
/* One block of `threads`; lanes with t >= live exit first. For every thread t still running:
 * out[4t..4t+3] = __shfl_sync(in[t], arg), __shfl_up_sync, __shfl_down_sync, __shfl_xor_sync
 * (all with `width`), and out2[t] = __ballot_sync(full mask, in[t] & 1). */
void st_shuffles(const int *in, int *out, unsigned *out2, int threads, int live, int arg,
                 int width, cudaStream_t st);
/* y[i] = k * x[i], n entries (grid-stride). */
void st_scale(float *y, const float *x, float k, size_t n, cudaStream_t st);
/* y[i] += k * x[i], n entries (grid-stride). */
void st_axpy(float *y, const float *x, float k, size_t n, cudaStream_t st);
/* A single thread stores v at p[i] (i may be past the end: a fault is expected). */
void st_store(float *p, size_t i, float v, cudaStream_t st);
/* A block of 64 whose second warp splits: lanes 0-15 at __syncwarp, 16-31 at __syncthreads. */
void st_deadlock(cudaStream_t st);
/* A lane calls __syncwarp with a mask without its own bit. */
void st_bad_mask(cudaStream_t st);
/* Launch with any configuration: each block's thread 0 writes the last of `shmem` bytes of
 * dynamic shared memory plus `over` (over > 0: past what was asked for). */
void st_launch(unsigned grid, unsigned block, size_t shmem, size_t over, cudaStream_t st);
/* cudaFuncSetAttribute(max dynamic shared memory) on st_launch's kernel. */
cudaError_t st_allow_shared(int bytes);
/* The emulator's float <-> half conversions (cuda_fp16.h), for comparison with kernels/fp16.h. */
uint16_t st_f2h(float f);
float st_h2f(uint16_t h);

#ifdef __cplusplus
}
#endif

#endif /* ELSIM_SELFTEST_H */
