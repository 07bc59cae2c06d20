/* cuda_common.cu - the error path every op shares. */
#include "kernels/cuda/cuda_common.cuh"

extern "C" el_status el_cuda_fail(cudaError_t e, const char *what, const char *file, int line) {
    const char *f = file;
    for (const char *p = file; *p; p++)
        if (*p == '/') f = p + 1;
    return el_errorf(EL_E_NODEV, "CUDA: %s failed at %s:%d: %s", what, f, line,
                     cudaGetErrorString(e));
}
