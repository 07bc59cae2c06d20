/* gpu_cuda.c - GPU discovery through the CUDA runtime's C API (compiled to "no CUDA
 * backend" answers when EL_HAVE_CUDA is not defined). */
#include "platform/gpu.h"
#include "platform/platform.h"

#include <stdio.h>
#include <string.h>

#ifdef EL_HAVE_CUDA
#include <cuda_runtime_api.h>

bool el_gpu_built(void) { return true; }

/* A runtime error as a sentence with a hint, for the cases users meet. */
static el_status cuda_fail(cudaError_t e, const char *what) {
    const char *hint = "";
    int drv = 0;
    if (e == cudaErrorInsufficientDriver && (cudaDriverGetVersion(&drv), drv == 0)) {
        (void)cudaGetLastError();
        return el_errorf(EL_E_NODEV, "no NVIDIA driver is installed (libcuda.so.1 not found): "
                         "no GPU can be used on this machine");
    }
    if (e == cudaErrorNoDevice) hint = " (no NVIDIA GPU is visible: check nvidia-smi, "
                                       "CUDA_VISIBLE_DEVICES, or run with --device cpu)";
    else if (e == cudaErrorInsufficientDriver)
        hint = " (the NVIDIA driver is missing or older than this build's CUDA runtime: "
               "update the driver / JetPack, or run with --device cpu)";
    return el_errorf(EL_E_NODEV, "%s: %s%s", what, cudaGetErrorString(e), hint);
}

el_status el_gpu_count(int *n) {
    *n = 0;
    int c = 0;
    cudaError_t e = cudaGetDeviceCount(&c);
    if (e == cudaErrorNoDevice) {
        (void)cudaGetLastError(); /* clear the sticky-free error */
        return EL_OK;
    }
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return cuda_fail(e, "cudaGetDeviceCount");
    }
    *n = c;
    return EL_OK;
}

static int attr(enum cudaDeviceAttr a, int dev) {
    int v = 0;
    if (cudaDeviceGetAttribute(&v, a, dev) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return v;
}

el_status el_gpu_info_get(int i, el_gpu_info *out) {
    memset(out, 0, sizeof *out);
    int n = 0;
    el_status s = el_gpu_count(&n);
    if (s != EL_OK) return s;
    if (i < 0 || i >= n) return el_errorf(EL_E_NODEV, "GPU %d: there are %d", i, n);
    out->index = i;
    struct cudaDeviceProp prop;
    cudaError_t e = cudaGetDeviceProperties(&prop, i);
    if (e != cudaSuccess) return cuda_fail(e, "cudaGetDeviceProperties");
    snprintf(out->name, sizeof out->name, "%s", prop.name);
    out->cc_major = attr(cudaDevAttrComputeCapabilityMajor, i);
    out->cc_minor = attr(cudaDevAttrComputeCapabilityMinor, i);
    out->sm_count = attr(cudaDevAttrMultiProcessorCount, i);
    out->integrated = attr(cudaDevAttrIntegrated, i) != 0;
    out->managed = attr(cudaDevAttrManagedMemory, i) != 0;
    out->concurrent_managed = attr(cudaDevAttrConcurrentManagedAccess, i) != 0;
    out->pageable_access = attr(cudaDevAttrPageableMemoryAccess, i) != 0;
    out->mem_bus_bits = attr(cudaDevAttrGlobalMemoryBusWidth, i);
    out->mem_clock_khz = attr(cudaDevAttrMemoryClockRate, i);
    if ((e = cudaSetDevice(i)) != cudaSuccess) return cuda_fail(e, "cudaSetDevice");
    size_t fr = 0, tot = 0;
    if ((e = cudaMemGetInfo(&fr, &tot)) != cudaSuccess) return cuda_fail(e, "cudaMemGetInfo");
    out->total_bytes = tot;
    out->free_bytes = fr;
    if (out->integrated) {
        el_mem_report r;
        if (el_mem_report_get(&r) == EL_OK && r.mem_available) out->free_bytes = r.mem_available;
    }
    return EL_OK;
}

const char *el_gpu_versions(char *buf, size_t cap) {
    int rt = 0, drv = 0;
    (void)cudaRuntimeGetVersion(&rt);
    (void)cudaDriverGetVersion(&drv);
    (void)cudaGetLastError();
    if (drv == 0)
        snprintf(buf, cap, "runtime %d.%d, no driver", rt / 1000, rt % 1000 / 10);
    else
        snprintf(buf, cap, "runtime %d.%d, driver %d.%d", rt / 1000, rt % 1000 / 10,
                 drv / 1000, drv % 1000 / 10);
    return buf;
}

#else /* !EL_HAVE_CUDA */

bool el_gpu_built(void) { return false; }

el_status el_gpu_count(int *n) {
    *n = 0;
    return el_errorf(EL_E_NODEV, "this build has no CUDA backend (configure with -DEL_CUDA=ON "
                     "on a machine with the CUDA toolkit)");
}

el_status el_gpu_info_get(int i, el_gpu_info *out) {
    memset(out, 0, sizeof *out);
    (void)i;
    int n;
    return el_gpu_count(&n);
}

const char *el_gpu_versions(char *buf, size_t cap) {
    snprintf(buf, cap, "no CUDA backend in this build");
    return buf;
}

#endif
