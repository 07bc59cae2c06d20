/* gpu_cuda.c - gpu.h's functions over the CUDA runtime's C API, and the CUDA module's
 * table (platform/gpu_module.h): compiled only into libedgeload_cuda.so (or, under the
 * emulator, into the library), never into the core, which reaches them through the table. */
#include "kernels/cuda/cuda_ops.h"
#include "platform/gpu_module.h"

#include <cuda_runtime_api.h>
#include <stdio.h>
#include <string.h>

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

static el_status cu_count(int *n) {
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

static el_status cu_info_get(int i, el_gpu_info *out) {
    memset(out, 0, sizeof *out);
    int n = 0;
    el_status s = cu_count(&n);
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

const char *cu_versions(char *buf, size_t cap) {
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

/* ---- memory --------------------------------------------------------------------------- */

static uint64_t g_reserve_count; /* only arena init reserves, from one thread */

static const char *mem_kind_name(el_gpu_mem k) {
    return k == EL_GPU_MEM_DEVICE ? "device memory (cudaMalloc)"
           : k == EL_GPU_MEM_MANAGED ? "managed memory (cudaMallocManaged)"
                                     : "pinned host memory (cudaHostAlloc)";
}

static el_status cu_reserve(int gpu, el_gpu_mem k, uint64_t bytes, void **out) {
    *out = NULL;
    cudaError_t e = cudaSetDevice(gpu);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return cuda_fail(e, "cudaSetDevice");
    }
    void *p = NULL;
    if (k == EL_GPU_MEM_DEVICE) e = cudaMalloc(&p, (size_t)bytes);
    else if (k == EL_GPU_MEM_MANAGED) e = cudaMallocManaged(&p, (size_t)bytes, cudaMemAttachHost);
    else e = cudaHostAlloc(&p, (size_t)bytes, cudaHostAllocDefault);
    if (e != cudaSuccess || !p) {
        (void)cudaGetLastError();
        size_t fr = 0, tot = 0;
        (void)cudaMemGetInfo(&fr, &tot);
        (void)cudaGetLastError();
        el_mem_report r;
        if (k == EL_GPU_MEM_PINNED && el_mem_report_get(&r) == EL_OK) fr = r.mem_available;
        return el_errorf(EL_E_NODEV, "GPU %d: reserving %llu bytes (%.2f MiB) of %s failed: "
                         "%s; %llu bytes (%.2f MiB) free%s", gpu, (unsigned long long)bytes,
                         (double)bytes / 1048576.0, mem_kind_name(k), cudaGetErrorString(e),
                         (unsigned long long)fr, (double)fr / 1048576.0,
                         k == EL_GPU_MEM_PINNED ? " on the host" : " on the device");
    }
    g_reserve_count++;
    *out = p;
    return EL_OK;
}

static void cu_release(el_gpu_mem k, void *p) {
    if (!p) return;
    if (k == EL_GPU_MEM_PINNED) (void)cudaFreeHost(p);
    else (void)cudaFree(p);
    (void)cudaGetLastError();
}

static uint64_t cu_reserve_count(void) { return g_reserve_count; }

/* ---- streams, copies, events ------------------------------------------------------------ */

static el_status cu_stream_create(el_gpu_stream **out) {
    cudaStream_t st = NULL;
    cudaError_t e = cudaStreamCreateWithFlags(&st, cudaStreamNonBlocking);
    if (e != cudaSuccess) return cuda_fail(e, "cudaStreamCreateWithFlags");
    *out = (el_gpu_stream *)st;
    return EL_OK;
}

static void cu_stream_destroy(el_gpu_stream *st) {
    if (st) (void)cudaStreamDestroy((cudaStream_t)st);
}

static el_status cu_sync(el_gpu_stream *st) {
    cudaError_t e = cudaStreamSynchronize((cudaStream_t)st);
    if (e != cudaSuccess)
        return el_errorf(EL_E_NODEV, "the GPU failed while running a kernel "
                         "(cudaStreamSynchronize: %s); the CUDA context cannot be used after "
                         "this: restart, or run with --device cpu", cudaGetErrorString(e));
    return EL_OK;
}

el_status el_cuda_copy(void *dst, const void *src, size_t bytes, el_cuda_stream st) {
    cudaError_t e = cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, (cudaStream_t)st);
    if (e != cudaSuccess) return cuda_fail(e, "cudaMemcpyAsync");
    return EL_OK;
}

static el_status cu_copy_async(void *dst, const void *src, uint64_t bytes, el_gpu_stream *st) {
    return el_cuda_copy(dst, src, (size_t)bytes, (el_cuda_stream)st);
}

static el_status cu_copy2d_async(void *dst, uint64_t dpitch, const void *src, uint64_t spitch,
                              uint64_t width, uint64_t height, el_gpu_stream *st) {
    cudaError_t e = cudaMemcpy2DAsync(dst, (size_t)dpitch, src, (size_t)spitch, (size_t)width,
                                      (size_t)height, cudaMemcpyDefault, (cudaStream_t)st);
    if (e != cudaSuccess) return cuda_fail(e, "cudaMemcpy2DAsync");
    return EL_OK;
}

static el_status cu_event_create(el_gpu_event **out) {
    cudaEvent_t ev = NULL;
    cudaError_t e = cudaEventCreateWithFlags(&ev, cudaEventDisableTiming);
    if (e != cudaSuccess) return cuda_fail(e, "cudaEventCreateWithFlags");
    *out = (el_gpu_event *)ev;
    return EL_OK;
}

static void cu_event_destroy(el_gpu_event *ev) {
    if (ev) (void)cudaEventDestroy((cudaEvent_t)ev);
}

static el_status cu_event_record(el_gpu_event *ev, el_gpu_stream *st) {
    cudaError_t e = cudaEventRecord((cudaEvent_t)ev, (cudaStream_t)st);
    if (e != cudaSuccess) return cuda_fail(e, "cudaEventRecord");
    return EL_OK;
}

static el_status cu_event_wait(el_gpu_event *ev) {
    cudaError_t e = cudaEventSynchronize((cudaEvent_t)ev);
    if (e != cudaSuccess) return cuda_fail(e, "cudaEventSynchronize");
    return EL_OK;
}

static el_status cu_stream_wait(el_gpu_stream *st, el_gpu_event *ev) {
    cudaError_t e = cudaStreamWaitEvent((cudaStream_t)st, (cudaEvent_t)ev, 0);
    if (e != cudaSuccess) return cuda_fail(e, "cudaStreamWaitEvent");
    return EL_OK;
}

/* ---- managed memory ---------------------------------------------------------------------- */

static el_status cu_attach(void *p, el_gpu_attach_to to, el_gpu_stream *st) {
    unsigned flags = to == EL_GPU_ATTACH_HOST     ? cudaMemAttachHost
                     : to == EL_GPU_ATTACH_STREAM ? cudaMemAttachSingle
                                                  : cudaMemAttachGlobal;
    cudaError_t e = cudaStreamAttachMemAsync((cudaStream_t)st, p, 0, flags);
    if (e != cudaSuccess) return cuda_fail(e, "cudaStreamAttachMemAsync");
    return EL_OK;
}

static el_status cu_prefetch(int gpu, const void *p, uint64_t bytes, el_gpu_stream *st, bool *done) {
    *done = false;
    if (!attr(cudaDevAttrConcurrentManagedAccess, gpu)) return EL_OK;
#if CUDART_VERSION >= 13000
    const struct cudaMemLocation dev = {cudaMemLocationTypeDevice, gpu};
#else
    const int dev = gpu;
#endif
    cudaError_t e = cudaMemAdvise(p, (size_t)bytes, cudaMemAdviseSetReadMostly, dev);
    if (e != cudaSuccess) return cuda_fail(e, "cudaMemAdvise(cudaMemAdviseSetReadMostly)");
    e = cudaMemAdvise(p, (size_t)bytes, cudaMemAdviseSetPreferredLocation, dev);
    if (e != cudaSuccess) return cuda_fail(e, "cudaMemAdvise(cudaMemAdviseSetPreferredLocation)");
#if CUDART_VERSION >= 13000
    e = cudaMemPrefetchAsync(p, (size_t)bytes, dev, 0, (cudaStream_t)st);
#else
    e = cudaMemPrefetchAsync(p, (size_t)bytes, dev, (cudaStream_t)st);
#endif
    if (e != cudaSuccess) return cuda_fail(e, "cudaMemPrefetchAsync");
    *done = true;
    return EL_OK;
}

/* Whole pages: two registrations never share one. */
static el_status cu_host_register(void *p, uint64_t bytes, void **base) {
    const uintptr_t pg = (uintptr_t)el_page_size(), a = (uintptr_t)p & ~(pg - 1);
    const uintptr_t end = ((uintptr_t)p + (uintptr_t)bytes + pg - 1) & ~(pg - 1);
    *base = NULL;
    cudaError_t e = cudaHostRegister((void *)a, (size_t)(end - a), cudaHostRegisterDefault);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();
        return cuda_fail(e, "cudaHostRegister");
    }
    *base = (void *)a;
    return EL_OK;
}

static void cu_host_unregister(void *base) {
    if (base) (void)cudaHostUnregister(base);
}

static el_status cu_capture_begin(el_gpu_stream *st) {
    cudaError_t e = cudaStreamBeginCapture((cudaStream_t)st, cudaStreamCaptureModeThreadLocal);
    if (e != cudaSuccess) return cuda_fail(e, "cudaStreamBeginCapture");
    return EL_OK;
}

static el_status cu_capture_end(el_gpu_stream *st, el_gpu_graph **out) {
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture((cudaStream_t)st, &g);
    (void)cudaGetLastError(); /* a capture refused mid-way leaves its error here */
    if (out) *out = NULL;
    if (e != cudaSuccess) return cuda_fail(e, "cudaStreamEndCapture");
    el_status r = EL_OK;
    if (out) {
        cudaGraphExec_t x = NULL;
        e = cudaGraphInstantiate(&x, g, 0);
        if (e != cudaSuccess) r = cuda_fail(e, "cudaGraphInstantiate");
        else *out = (el_gpu_graph *)x;
    }
    (void)cudaGraphDestroy(g);
    return r;
}

static el_status cu_graph_launch(el_gpu_graph *g, el_gpu_stream *st) {
    cudaError_t e = cudaGraphLaunch((cudaGraphExec_t)g, (cudaStream_t)st);
    if (e != cudaSuccess) return cuda_fail(e, "cudaGraphLaunch");
    return EL_OK;
}

static void cu_graph_destroy(el_gpu_graph *g) {
    if (g) (void)cudaGraphExecDestroy((cudaGraphExec_t)g);
}


/* ---- the table ----------------------------------------------------------------------------- */

#ifdef EL_CUDA_MODULE_SO
/* The core's services, behind the names kernels/cuda and this file call. */
static const el_cuda_host *g_host;

static void cu_init(const el_cuda_host *h) { g_host = h; }

el_status el_errorf(el_status s, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    s = g_host->verrorf(s, fmt, ap);
    va_end(ap);
    return s;
}
uint64_t el_page_size(void) { return g_host->page_size(); }
el_status el_mem_report_get(el_mem_report *out) { return g_host->mem_report_get(out); }
const char *el_dtype_name(el_dtype dt) { return g_host->dtype_name(dt); }
#else
static void cu_init(const el_cuda_host *h) { (void)h; } /* linked in: the core's own */
#endif

static const el_cuda_module k_module = {
    .abi = EL_CUDA_MODULE_ABI,
    .size = sizeof(el_cuda_module),
    .ops_size = sizeof(el_ops),
    .info_size = sizeof(el_gpu_info),
    .init = cu_init,
    .ops = &el_ops_cuda,
    .probe = el_cuda_probe,
    .count = cu_count,
    .info_get = cu_info_get,
    .versions = cu_versions,
    .reserve = cu_reserve,
    .release = cu_release,
    .reserve_count = cu_reserve_count,
    .stream_create = cu_stream_create,
    .stream_destroy = cu_stream_destroy,
    .sync = cu_sync,
    .copy_async = cu_copy_async,
    .copy2d_async = cu_copy2d_async,
    .event_create = cu_event_create,
    .event_destroy = cu_event_destroy,
    .event_record = cu_event_record,
    .event_wait = cu_event_wait,
    .stream_wait = cu_stream_wait,
    .host_register = cu_host_register,
    .host_unregister = cu_host_unregister,
    .capture_begin = cu_capture_begin,
    .capture_end = cu_capture_end,
    .graph_launch = cu_graph_launch,
    .graph_destroy = cu_graph_destroy,
    .attach = cu_attach,
    .prefetch = cu_prefetch,
};

const el_cuda_module *el_cuda_module_entry(void) { return &k_module; }
