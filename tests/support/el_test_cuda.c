/* el_test_cuda.c - the CUDA tests' skip and device copies, behind el_test_cuda.h. Builds
 * without a CUDA backend too: the copies then fail (they are never reached, the tests skip
 * first). */
#include "tests/support/el_test_cuda.h"
#include "tests/support/el_test.h"

#include <stdlib.h>
#include <string.h>

#ifdef EL_HAVE_CUDA
#include <cuda_runtime_api.h>
#endif
#ifdef EL_CUDA_SIM
#include "cudasim.h"
#endif

void el_test_cuda_require(const char *test, const char *what, el_gpu_info *gpu) {
    if (!el_gpu_built())
        el_test_skip("this build has no CUDA backend (configure with -DEL_CUDA=ON, or "
                     "-DEL_CUDA_SIM=ON for the emulator)");
    int n = 0;
    if (el_gpu_count(&n) != EL_OK || n == 0)
        el_test_skip("the %s are compiled but not run: %s", what,
                     n == 0 && !el_last_error()[0] ? "no CUDA device" : el_last_error());
    el_gpu_info g;
    memset(&g, 0, sizeof g);
    EL_CHECK_OK(el_gpu_info_get(0, &g));
    printf("%s: running on GPU 0: %s (sm_%d%d)\n", test, g.name, g.cc_major, g.cc_minor);
    if (gpu) *gpu = g;
}

void el_test_cuda_sim_jetson(el_gpu_info *gpu) {
#ifdef EL_CUDA_SIM
    setenv("ELSIM_INTEGRATED", "1", 1);
    setenv("ELSIM_CONCURRENT_MANAGED", "0", 1);
    elsim_reconfigure();
    EL_CHECK_OK(el_gpu_info_get(0, gpu));
    EL_CHECK(gpu->integrated && !gpu->concurrent_managed);
#else
    (void)gpu;
#endif
}

void *el_test_gpu_to_host(const void *src, uint64_t bytes) {
    void *host = malloc(bytes ? bytes : 1);
    el_gpu_stream *gs = NULL;
    EL_CHECK(host != NULL);
    EL_CHECK_OK(el_gpu_stream_create(&gs));
    if (host && gs) EL_CHECK_OK(el_gpu_copy_async(host, src, bytes, gs));
    if (gs) EL_CHECK_OK(el_gpu_sync(gs));
    el_gpu_stream_destroy(gs);
    return host;
}

void *el_test_dev_copy(const void *src, size_t bytes) {
#ifdef EL_HAVE_CUDA
    void *d = NULL;
    if (cudaMalloc(&d, bytes ? bytes : 1) != cudaSuccess) return NULL;
    if (src && cudaMemcpy(d, src, bytes, cudaMemcpyHostToDevice) != cudaSuccess) {
        cudaFree(d);
        return NULL;
    }
    return d;
#else
    (void)src, (void)bytes;
    return NULL;
#endif
}

void el_test_host_copy(void *dst, const void *d, size_t bytes) {
#ifdef EL_HAVE_CUDA
    cudaDeviceSynchronize();
    cudaMemcpy(dst, d, bytes, cudaMemcpyDeviceToHost);
#else
    (void)dst, (void)d, (void)bytes;
#endif
}
