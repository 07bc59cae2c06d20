/* el_test_cuda.h - what the tests that run on the GPU share: the skip when the build has no
 * CUDA backend or no GPU answers (cudasim counts as one), the emulator's Jetson mode, and
 * device buffers to and from host memory (test code only: failures leave NULL / zeros for
 * the checks to catch). */
#ifndef EL_TEST_CUDA_H
#define EL_TEST_CUDA_H

#include "platform/gpu.h"

#include <stddef.h>
#include <stdint.h>

/* Exits 77 (skipped) when this build has no CUDA backend, or when it has one but no GPU is
 * found ("<what> are compiled but not run: <why>"); otherwise checks that GPU 0 answers
 * el_gpu_info_get, fills *gpu (when not NULL) and prints "<test>: running on GPU 0: <name>
 * (sm_XY)". */
void el_test_cuda_require(const char *test, const char *what, el_gpu_info *gpu);

/* Under the emulator (EL_CUDA_SIM builds): makes it an integrated GPU without concurrent
 * managed access (a Jetson's rules: a CPU touch of managed memory while GPU work is queued
 * faults), refreshes *gpu and checks that it says so. Other builds: does nothing (a real GPU
 * is what it is). */
void el_test_cuda_sim_jetson(el_gpu_info *gpu);

/* bytes of GPU memory at src copied into a malloc'd host buffer (free it) through a stream
 * of its own, every step checked: how the loader tests read back weights loaded into device
 * memory. */
void *el_test_gpu_to_host(const void *src, uint64_t bytes);

/* A cudaMalloc'd buffer of bytes (at least 1), filled from host src when src is not NULL;
 * NULL on failure. Free with cudaFree. */
void *el_test_dev_copy(const void *src, size_t bytes);
/* Waits for the device, then copies bytes of device memory d to host dst. */
void el_test_host_copy(void *dst, const void *d, size_t bytes);

#endif /* EL_TEST_CUDA_H */
