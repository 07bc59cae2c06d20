/* cuda_common.cu - the error path every op shares. */
#include "kernels/cuda/cuda_common.cuh"

extern "C" el_status el_cuda_fail(cudaError_t e, const char *what, const char *file, int line) {
    const char *f = file;
    for (const char *p = file; *p; p++)
        if (*p == '/') f = p + 1;
    return el_errorf(EL_E_NODEV, "CUDA: %s failed at %s:%d: %s", what, f, line,
                     cudaGetErrorString(e));
}

/* The smallest kernel: its attributes exist only when the build holds an image (SASS, or
 * PTX the driver can compile) for the current device. */
__global__ void el_probe_kernel(int *p) {
    if (p) *p = 0;
}

#ifndef EL_CUDA_ARCHS
#define EL_CUDA_ARCHS "?"
#endif

extern "C" el_status el_cuda_probe(void) {
    cudaFuncAttributes a;
    cudaError_t e = cudaFuncGetAttributes(&a, el_probe_kernel);
    if (e == cudaSuccess) return EL_OK;
    (void)cudaGetLastError(); /* not sticky: clear it */
    if (e == cudaErrorNoKernelImageForDevice || e == cudaErrorInvalidDeviceFunction)
        return el_errorf(EL_E_NODEV, "this build has no kernel image for the GPU (built for: "
                         "%s): rebuild with -DCMAKE_CUDA_ARCHITECTURES=<its sm>",
                         EL_CUDA_ARCHS);
    return el_cuda_fail(e, "cudaFuncGetAttributes", __FILE__, __LINE__);
}
