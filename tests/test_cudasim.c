/* test_cudasim.c - what the CUDA emulator (tests/cudasim, -DEL_CUDA_SIM=ON builds only) catches,
 * proved on kernels and host code that are wrong on purpose, so that the CUDA tests passing
 * under it mean something. Crashes are the expected outcome of some cases: those run in a
 * forked child whose exit and stderr the test checks (the emulator names what was touched).
 *   - the host writing to cudaMalloc memory faults; a kernel writing past the end of a block,
 *     past its dynamic shared memory, or into a freed block faults, naming the kernel; a
 *     launch with a host pointer argument is refused;
 *   - results are not there before synchronising: a cudaMemcpyAsync destination read before
 *     cudaStreamSynchronize holds the old bytes, and a pinned staging buffer refilled before
 *     the async copy that reads it ran sends the new bytes (an event wait fixes both);
 *   - a missing dependency between streams gives a wrong answer under the reordering stream
 *     orders (ELSIM_STREAM_ORDER): a kernel not waiting for another stream's copy, a copy
 *     not waiting for the kernels that read its destination (the layer-streaming ring), a
 *     synchronous cudaMemcpy after a non-blocking stream's kernel; the correct versions
 *     (events, graphs, blocking streams) give the same answers in every order;
 *   - an invalid launch (2048 threads, grid too large, too much dynamic shared memory, a
 *     destroyed stream) sets cudaGetLastError and runs nothing;
 *   - a missing __syncthreads gives a wrong answer: reverse order catches a broadcast from
 *     thread 0, forward order a tree reduction; the correct kernels pass in every order;
 *   - a divergent barrier is reported as a deadlock naming the kernel; a warp mask without
 *     the caller's lane is reported;
 *   - integrated devices (ELSIM_INTEGRATED=1: no concurrentManagedAccess): the host touching
 *     globally attached managed memory between launch and sync faults, host-attached memory
 *     does not (and a kernel touching host-attached memory faults); a block attached to one
 *     stream is the host's while that stream is idle (closed while it has any work queued,
 *     and from the attach call on), and
 *     back to its cudaMallocManaged attachment when the stream is destroyed; device
 *     prefetches and device-located advice are refused (counted on a discrete device);
 *   - shuffles, votes, events, stream order, host functions, copy validation, the memory
 *     limit, poisoned fresh memory, allocation counts, float <-> half against kernels/fp16.h,
 *     and the device table under ELSIM_DEVICES=0, ELSIM_NO_DRIVER=1, ELSIM_INTEGRATED=1;
 *   - the emulator itself: no heap allocation in launches, copies, events and
 *     synchronisation (so GPU "nothing allocates after init" tests count only edgeload's),
 *     and a second host thread queueing copies while the main one launches and syncs. */
// ctest-labels: cuda;cudasim
// ctest-timeout: 120
#include "tests/support/el_test.h"
#include "kernels/fp16.h"
#include "platform/gpu.h"
#include "tests/cudasim/selftest.h"
#include "tests/support/el_alloc_count.h"

#include <cuda_runtime_api.h>
#include <cudasim.h>
#include <math.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define OK(call) EL_CHECK((call) == cudaSuccess)

/* ---- forked children ---- */

static char g_err[32768]; /* the last child's stderr */

/* Runs fn in a child with stderr captured into g_err; returns its wait status. */
static int child(void (*fn)(void)) {
    int fd[2];
    if (pipe(fd) != 0) return -1;
    fflush(stdout);
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        close(fd[0]);
        dup2(fd[1], 2);
        close(fd[1]);
        el_test_failed = 0; /* the child's exit code counts its own checks only */
        fn();
        fflush(stderr);
        _exit(el_test_failed ? 1 : 0);
    }
    close(fd[1]);
    size_t n = 0;
    ssize_t r;
    while (n < sizeof g_err - 1 && (r = read(fd[0], g_err + n, sizeof g_err - 1 - n)) > 0)
        n += (size_t)r;
    g_err[n] = 0;
    close(fd[0]);
    int st = 0;
    if (pid < 0 || waitpid(pid, &st, 0) != pid) return -1;
    return st;
}

static bool crashed(int st) { return st != -1 && !(WIFEXITED(st) && WEXITSTATUS(st) == 0); }

/* The child must die (a signal, or a sanitizer's non-zero exit) saying msg. */
#define EXPECT_CRASH(fn, msg)                                                                 \
    do {                                                                                      \
        int st_ = child(fn);                                                                  \
        bool ok_ = crashed(st_) && strstr(g_err, msg) != NULL;                                \
        EL_CHECK(ok_);                                                                        \
        if (!ok_)                                                                             \
            fprintf(stderr, "child %s: status 0x%x, wanted a crash saying \"%s\"; stderr:\n%s\n", \
                    #fn, st_, msg, g_err);                                                    \
    } while (0)

/* The child must exit 0 (its own checks passed). */
#define EXPECT_CLEAN(fn)                                                                      \
    do {                                                                                      \
        int st_ = child(fn);                                                                  \
        EL_CHECK(!crashed(st_));                                                              \
        if (crashed(st_))                                                                     \
            fprintf(stderr, "child %s: status 0x%x; stderr:\n%s\n", #fn, st_, g_err);        \
    } while (0)

static void integrated(void) {
    setenv("ELSIM_INTEGRATED", "1", 1);
    elsim_reconfigure();
}

static void c_host_touches_device(void) {
    float *d = NULL;
    cudaMalloc((void **)&d, 4096);
    ((volatile float *)d)[3] = 1.0f;
}

static void c_kernel_overruns(void) {
    float *d = NULL;
    cudaMalloc((void **)&d, 1000 * sizeof(float));
    st_store(d, 1064, 1.0f, NULL); /* 256 bytes past the end */
    cudaDeviceSynchronize();
}

static void c_freed_pointer_arg(void) {
    float *d = NULL;
    cudaMalloc((void **)&d, 1 << 16);
    cudaFree(d);
    st_store(d, 10, 1.0f, NULL);
}

static void c_kernel_after_free(void) { /* the same with the launch check off: a fault */
    setenv("ELSIM_CHECK_ARGS", "0", 1);
    elsim_reconfigure();
    c_freed_pointer_arg();
    cudaDeviceSynchronize();
}

static void c_host_pointer_arg(void) {
    float host[64] = {0};
    float *d = NULL;
    cudaMalloc((void **)&d, sizeof host);
    st_scale(d, host, 2.0f, 64, NULL); /* the host array instead of its device copy */
}

static void c_dyn_shared_overrun(void) {
    st_launch(1, 32, 1000, 64, NULL);
    cudaDeviceSynchronize();
}

static void c_deadlock(void) {
    st_deadlock(NULL);
    cudaDeviceSynchronize();
}

static void c_bad_mask(void) {
    st_bad_mask(NULL);
    cudaDeviceSynchronize();
}

/* Integrated device: host-attached managed memory stays usable while a kernel is queued,
 * globally attached memory does not. */
static void c_managed_global_touch(void) {
    integrated();
    float *a = NULL, *b = NULL;
    cudaMallocManaged((void **)&a, 4096, cudaMemAttachGlobal);
    cudaMallocManaged((void **)&b, 4096, cudaMemAttachGlobal);
    cudaStreamAttachMemAsync(NULL, b, 0, cudaMemAttachHost);
    cudaDeviceSynchronize();
    a[0] = 1.0f; /* nothing queued: fine */
    st_scale(a, a, 2.0f, 1024, NULL);
    ((volatile float *)b)[0] = 1.0f;
    fprintf(stderr, "host-attached block written while a kernel is queued\n");
    ((volatile float *)a)[0] = 1.0f;
}

static void c_managed_after_sync(void) {
    integrated();
    float *a = NULL;
    EL_CHECK(cudaMallocManaged((void **)&a, 4096, cudaMemAttachGlobal) == cudaSuccess);
    for (int i = 0; i < 1024; i++) a[i] = (float)i;
    st_scale(a, a, 2.0f, 1024, NULL);
    EL_CHECK(cudaDeviceSynchronize() == cudaSuccess);
    EL_CHECK(a[5] == 10.0f && a[1023] == 2046.0f);
    /* prefetching to a device without concurrentManagedAccess is refused, as on Jetson */
    struct cudaMemLocation dev = {cudaMemLocationTypeDevice, 0};
    EL_CHECK(cudaMemPrefetchAsync(a, 4096, dev, 0, NULL) == cudaErrorInvalidDevice);
    EL_CHECK(cudaGetLastError() == cudaErrorInvalidDevice);
    int v = -1;
    EL_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrIntegrated, 0) == cudaSuccess && v == 1);
    EL_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrConcurrentManagedAccess, 0) == cudaSuccess &&
             v == 0);
    el_gpu_info g;
    EL_CHECK_OK(el_gpu_info_get(0, &g));
    EL_CHECK(g.integrated && !g.concurrent_managed && g.managed);
}

static void c_kernel_touches_host_attached(void) {
    integrated();
    float *b = NULL;
    cudaMallocManaged((void **)&b, 4096, cudaMemAttachGlobal);
    cudaStreamAttachMemAsync(NULL, b, 0, cudaMemAttachHost);
    st_store(b, 3, 1.0f, NULL);
    cudaDeviceSynchronize();
}

/* Integrated device, blocks attached per stream (cudaStreamAttachMemAsync): the host may
 * write a block attached to an idle stream while another stream's kernel is queued; a
 * block goes back to its cudaMallocManaged attachment (here: the host) when its stream is
 * destroyed; a device-located preferred-location advice is refused, read-mostly is not. */
static void c_managed_per_stream(void) {
    integrated();
    float *a = NULL, *b = NULL;
    cudaStream_t s1 = NULL, s2 = NULL;
    EL_CHECK(cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking) == cudaSuccess);
    EL_CHECK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking) == cudaSuccess);
    EL_CHECK(cudaMallocManaged((void **)&a, 4096, cudaMemAttachHost) == cudaSuccess);
    EL_CHECK(cudaMallocManaged((void **)&b, 4096, cudaMemAttachHost) == cudaSuccess);
    for (int i = 0; i < 1024; i++) a[i] = b[i] = (float)i;
    EL_CHECK(cudaStreamAttachMemAsync(s1, a, 0, cudaMemAttachSingle) == cudaSuccess);
    EL_CHECK(cudaStreamAttachMemAsync(s2, b, 0, cudaMemAttachSingle) == cudaSuccess);
    EL_CHECK(cudaStreamSynchronize(s2) == cudaSuccess); /* the attach ran: s2 idle again */
    st_scale(a, a, 2.0f, 1024, s1);
    ((volatile float *)b)[7] = 70.0f; /* s2 idle: b is the host's to write */
    st_scale(b, b, 2.0f, 1024, s2);
    EL_CHECK(cudaStreamSynchronize(s2) == cudaSuccess);
    EL_CHECK(cudaStreamSynchronize(s1) == cudaSuccess);
    EL_CHECK(a[5] == 10.0f && b[7] == 140.0f && b[1023] == 2046.0f);
    EL_CHECK(cudaStreamDestroy(s1) == cudaSuccess); /* a: attached to the host again */
    st_scale(b, b, 0.5f, 1024, s2);
    ((volatile float *)a)[0] = 1.0f;
    EL_CHECK(cudaStreamSynchronize(s2) == cudaSuccess && b[7] == 70.0f);
    struct cudaMemLocation dev = {cudaMemLocationTypeDevice, 0};
    EL_CHECK(cudaMemAdvise(a, 4096, cudaMemAdviseSetPreferredLocation, dev) ==
             cudaErrorInvalidDevice);
    EL_CHECK(cudaGetLastError() == cudaErrorInvalidDevice);
    EL_CHECK(cudaMemAdvise(a, 4096, cudaMemAdviseSetReadMostly, dev) == cudaSuccess);
    elsim_stats st;
    elsim_stats_get(&st);
    EL_CHECK(st.attaches[2] == 2 && st.advises[1] == 1 && st.advises[3] == 0);
    EL_CHECK(st.prefetches_device == 0);
}

/* An attachment counts for the host from its call, not from when its stream runs it: a
 * block whose attach to s1 is queued behind s1's kernel is closed to the host already. */
static void c_managed_attach_queued(void) {
    integrated();
    float *a = NULL, *c = NULL;
    cudaStream_t s1 = NULL;
    cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking);
    cudaMallocManaged((void **)&a, 4096, cudaMemAttachHost);
    cudaMallocManaged((void **)&c, 4096, cudaMemAttachHost);
    cudaStreamAttachMemAsync(s1, c, 0, cudaMemAttachSingle);
    st_scale(c, c, 2.0f, 1024, s1);
    cudaStreamAttachMemAsync(s1, a, 0, cudaMemAttachSingle);
    ((volatile float *)a)[0] = 1.0f;
}

/* A block attached to s1 is closed to the host while s1 has any work queued (here a copy),
 * "so long as all operations in stream have completed" (the runtime's words). */
static void c_managed_single_busy(void) {
    integrated();
    float *a = NULL, *c = NULL;
    cudaStream_t s1 = NULL;
    cudaStreamCreateWithFlags(&s1, cudaStreamNonBlocking);
    cudaMallocManaged((void **)&a, 4096, cudaMemAttachHost);
    cudaMallocManaged((void **)&c, 4096, cudaMemAttachHost);
    cudaStreamAttachMemAsync(s1, a, 0, cudaMemAttachSingle);
    cudaStreamSynchronize(s1);
    a[0] = 1.0f; /* s1 idle: fine */
    cudaMemcpyAsync(a + 512, a, 16, cudaMemcpyDefault, s1);
    ((volatile float *)a)[1] = 1.0f;
}

/* Discrete device: prefetches and advice are counted. */
static void c_managed_prefetch_counted(void) {
    float *a = NULL;
    EL_CHECK(cudaMallocManaged((void **)&a, 8192, cudaMemAttachHost) == cudaSuccess);
    struct cudaMemLocation dev = {cudaMemLocationTypeDevice, 0};
    struct cudaMemLocation host = {cudaMemLocationTypeHost, 0};
    EL_CHECK(cudaMemAdvise(a, 8192, cudaMemAdviseSetPreferredLocation, dev) == cudaSuccess);
    EL_CHECK(cudaMemPrefetchAsync(a, 8192, dev, 0, NULL) == cudaSuccess);
    EL_CHECK(cudaMemPrefetchAsync(a, 4096, host, 0, NULL) == cudaSuccess);
    elsim_stats st;
    elsim_stats_get(&st);
    EL_CHECK(st.prefetches_device == 1 && st.prefetch_device_bytes == 8192);
    EL_CHECK(st.prefetches_host == 1 && st.advises[3] == 1);
}

static void c_no_devices(void) {
    setenv("ELSIM_DEVICES", "0", 1);
    elsim_reconfigure();
    int n = -1;
    EL_CHECK(cudaGetDeviceCount(&n) == cudaErrorNoDevice && n == 0);
    void *p = NULL;
    EL_CHECK(cudaMalloc(&p, 16) == cudaErrorNoDevice);
    st_scale(NULL, NULL, 1.0f, 1, NULL);
    EL_CHECK(cudaGetLastError() == cudaErrorNoDevice);
    EL_CHECK_OK(el_gpu_count(&n));
    EL_CHECK(n == 0);
}

static void c_no_driver(void) {
    setenv("ELSIM_NO_DRIVER", "1", 1);
    elsim_reconfigure();
    int n = -1, drv = -1;
    EL_CHECK(cudaGetDeviceCount(&n) == cudaErrorInsufficientDriver && n == 0);
    EL_CHECK(cudaDriverGetVersion(&drv) == cudaSuccess && drv == 0);
    EL_CHECK_STATUS(el_gpu_count(&n), EL_E_NODEV);
    EL_CHECK(strstr(el_last_error(), "no NVIDIA driver") != NULL);
}

static void c_cc87(void) {
    setenv("ELSIM_CC", "8.7", 1);
    elsim_reconfigure();
    int v = 0;
    EL_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrMaxSharedMemoryPerBlockOptin, 0) ==
                 cudaSuccess && v == 163 * 1024);
    EL_CHECK(st_allow_shared(200 * 1024) == cudaErrorInvalidValue);
    EL_CHECK(st_allow_shared(163 * 1024) == cudaSuccess);
}

static void test_children(void) {
    EXPECT_CRASH(c_host_touches_device, "the host touched device memory");
    EXPECT_CRASH(c_kernel_overruns, "256 bytes past the end of a 4000-byte cudaMalloc block");
    EXPECT_CRASH(c_kernel_overruns, "kernel store_kernel (launched at ");
    EXPECT_CRASH(c_freed_pointer_arg, "it lies in a block that was freed");
    EXPECT_CRASH(c_kernel_after_free, "freed (use after free)");
    EXPECT_CRASH(c_host_pointer_arg, "scale_kernel launched at ");
    EXPECT_CRASH(c_host_pointer_arg, "with argument 1 = ");
    EXPECT_CRASH(c_dyn_shared_overrun, "past the 1008 bytes of dynamic shared memory");
    EXPECT_CRASH(c_deadlock, "deadlock in kernel deadlock_kernel");
    EXPECT_CRASH(c_bad_mask, "which does not include the calling lane 5");
    EXPECT_CRASH(c_managed_global_touch, "the host touched managed memory");
    EL_CHECK(strstr(g_err, "host-attached block written while a kernel is queued") != NULL);
    EXPECT_CRASH(c_kernel_touches_host_attached, "attached to the host");
    EXPECT_CLEAN(c_managed_after_sync);
    EXPECT_CLEAN(c_managed_per_stream);
    EXPECT_CRASH(c_managed_attach_queued, "(cudaMemAttachSingle, queued) while that stream has");
    EXPECT_CRASH(c_managed_single_busy, "(cudaMemAttachSingle) while that stream has work");
    EXPECT_CLEAN(c_managed_prefetch_counted);
    EXPECT_CLEAN(c_no_devices);
    EXPECT_CLEAN(c_no_driver);
    EXPECT_CLEAN(c_cc87);
}

/* ---- in process ---- */

static void test_identity(void) {
    struct cudaDeviceProp prop;
    OK(cudaGetDeviceProperties(&prop, 0));
    EL_CHECK(!strcmp(prop.name, ELSIM_DEVICE_NAME) && prop.major == 9 && prop.minor == 0);
    EL_CHECK(prop.totalGlobalMem == (size_t)4096 << 20 && !prop.integrated);
    int v = 0, n = 0;
    OK(cudaGetDeviceCount(&n));
    EL_CHECK(n == 1);
    OK(cudaRuntimeGetVersion(&v));
    EL_CHECK(v == 13000);
    OK(cudaDriverGetVersion(&v));
    EL_CHECK(v == 13000);
    OK(cudaDeviceGetAttribute(&v, cudaDevAttrConcurrentManagedAccess, 0));
    EL_CHECK(v == 1);
    EL_CHECK(cudaDeviceGetAttribute(&v, cudaDevAttrComputeCapabilityMajor, 1) ==
             cudaErrorInvalidDevice);
    EL_CHECK(cudaGetLastError() == cudaErrorInvalidDevice && cudaGetLastError() == cudaSuccess);
    EL_CHECK(!strcmp(cudaGetErrorName(cudaErrorInvalidConfiguration),
                     "cudaErrorInvalidConfiguration"));
    EL_CHECK(!strcmp(cudaGetErrorString(cudaErrorInvalidValue), "invalid argument"));
    el_gpu_info g;
    EL_CHECK_OK(el_gpu_info_get(0, &g));
    EL_CHECK(!strcmp(g.name, ELSIM_DEVICE_NAME) && g.cc_major == 9 && !g.integrated &&
             g.concurrent_managed);
}

/* Every half, and floats around every rounding boundary plus a strided sweep of all 2^32
 * bit patterns, against kernels/fp16.h. */
static void test_fp16(void) {
    long bad = 0;
    for (uint32_t h = 0; h < 65536; h++) {
        float a = st_h2f((uint16_t)h), b = el_fp16_to_fp32((uint16_t)h);
        if (memcmp(&a, &b, 4)) bad++;
        /* the midpoint to the next half and its neighbours */
        uint32_t ub = el_f32_bits(b);
        for (int d = -3; d <= 3; d++) {
            uint32_t u = ub + (uint32_t)d + ((h & 0x3ff) != 0x3ff ? 0x1000u : 0u);
            float f = el_bits_f32(u);
            if (st_f2h(f) != el_fp32_to_fp16(f)) bad++;
        }
    }
    for (uint64_t u = 0; u < (1ull << 32); u += 4099) { /* a prime stride: every exponent */
        float f = el_bits_f32((uint32_t)u);
        if (st_f2h(f) != el_fp32_to_fp16(f)) bad++;
    }
    const float edge[] = {65504.0f, 65519.996f, 65520.0f, 1e9f, 5.96046448e-8f, 2.98023224e-8f,
                          2.98023259e-8f, 6.10351562e-5f, 6.10351526e-5f, -0.0f, INFINITY, NAN};
    for (size_t i = 0; i < sizeof edge / sizeof edge[0]; i++)
        if (st_f2h(edge[i]) != el_fp32_to_fp16(edge[i])) bad++;
    if (bad) fprintf(stderr, "fp16: %ld conversions differ from kernels/fp16.h\n", bad);
    EL_CHECK(bad == 0);
}

/* The queue: nothing runs before a synchronisation point. */
static void test_async_semantics(void) {
    enum { N = 3000 };
    cudaStream_t s = NULL;
    OK(cudaStreamCreate(&s));
    float *d = NULL, *h = NULL, *stage = NULL, src[N];
    OK(cudaMalloc((void **)&d, N * sizeof(float)));
    OK(cudaMallocHost((void **)&h, N * sizeof(float)));
    OK(cudaHostAlloc((void **)&stage, N * sizeof(float), cudaHostAllocDefault));
    for (int i = 0; i < N; i++) src[i] = (float)i;
    OK(cudaMemcpy(d, src, sizeof src, cudaMemcpyHostToDevice));
    /* read before synchronising: the old bytes */
    st_scale(d, d, 2.0f, N, s);
    memset(h, 0, N * sizeof(float));
    OK(cudaMemcpyAsync(h, d, N * sizeof(float), cudaMemcpyDeviceToHost, s));
    elsim_stats st;
    elsim_stats_get(&st);
    EL_CHECK(st.pending == 2 && h[7] == 0.0f);
    OK(cudaStreamSynchronize(s));
    EL_CHECK(h[7] == 14.0f && h[N - 1] == 2.0f * (N - 1));
    /* a staging buffer refilled before the copy that reads it has run: the new bytes go */
    for (int i = 0; i < N; i++) stage[i] = 1.0f;
    OK(cudaMemcpyAsync(d, stage, N * sizeof(float), cudaMemcpyHostToDevice, s));
    for (int i = 0; i < N; i++) stage[i] = 2.0f; /* the bug */
    OK(cudaMemcpy(h, d, N * sizeof(float), cudaMemcpyDeviceToHost));
    EL_CHECK(h[0] == 2.0f && h[N - 1] == 2.0f);
    /* ... and the fix: wait for the copy's event before refilling */
    cudaEvent_t copied = NULL;
    OK(cudaEventCreateWithFlags(&copied, cudaEventDisableTiming));
    for (int i = 0; i < N; i++) stage[i] = 1.0f;
    OK(cudaMemcpyAsync(d, stage, N * sizeof(float), cudaMemcpyHostToDevice, s));
    OK(cudaEventRecord(copied, s));
    OK(cudaEventSynchronize(copied));
    for (int i = 0; i < N; i++) stage[i] = 2.0f;
    OK(cudaMemcpy(h, d, N * sizeof(float), cudaMemcpyDeviceToHost));
    EL_CHECK(h[0] == 1.0f && h[N - 1] == 1.0f);
    /* a stream's synchronisation runs what precedes it, not later work of other streams;
     * a cross-stream event wait orders the reader after the writer */
    cudaStream_t s2 = NULL;
    cudaEvent_t e0 = NULL, e1 = NULL, done = NULL;
    OK(cudaStreamCreateWithFlags(&s2, cudaStreamNonBlocking));
    OK(cudaEventCreate(&e0));
    OK(cudaEventCreate(&e1));
    OK(cudaEventCreate(&done));
    float *d2 = NULL;
    OK(cudaMalloc((void **)&d2, N * sizeof(float)));
    OK(cudaEventRecord(e0, s));
    st_scale(d, d, 3.0f, N, s); /* d = 3 */
    OK(cudaEventRecord(e1, s));
    OK(cudaStreamWaitEvent(s2, e1, 0));
    st_scale(d2, d, 2.0f, N, s2); /* d2 = 6, after e1 */
    OK(cudaEventRecord(done, s2));
    st_scale(d, d, 10.0f, N, s); /* later work on s */
    float ms = -1.0f;
    EL_CHECK(cudaEventElapsedTime(&ms, e0, e1) == cudaErrorNotReady);
    OK(cudaStreamSynchronize(s2));
    elsim_stats_get(&st);
    EL_CHECK(st.pending == 1); /* s's last kernel */
    OK(cudaEventElapsedTime(&ms, e0, e1));
    EL_CHECK(ms >= 0.0f);
    EL_CHECK(cudaEventElapsedTime(&ms, e0, copied) == cudaErrorInvalidResourceHandle);
    OK(cudaMemcpy(h, d2, N * sizeof(float), cudaMemcpyDeviceToHost));
    EL_CHECK(h[0] == 6.0f && h[N - 1] == 6.0f);
    OK(cudaEventQuery(done));
    OK(cudaStreamQuery(s));
    elsim_stats_get(&st);
    EL_CHECK(st.pending == 0);
    /* a full queue runs its oldest work: 2000 queued memsets end in the right state */
    for (int i = 0; i < 2000; i++) OK(cudaMemsetAsync(d, i & 0xff, N * sizeof(float), s));
    OK(cudaStreamSynchronize(s));
    unsigned char bytes[16];
    OK(cudaMemcpy(bytes, d, sizeof bytes, cudaMemcpyDeviceToHost));
    EL_CHECK(bytes[0] == (1999 & 0xff) && bytes[15] == (1999 & 0xff));
    OK(cudaEventDestroy(e0));
    OK(cudaEventDestroy(e1));
    OK(cudaEventDestroy(done));
    OK(cudaEventDestroy(copied));
    OK(cudaStreamDestroy(s2));
    OK(cudaStreamDestroy(s));
    OK(cudaFree(d));
    OK(cudaFree(d2));
    OK(cudaFreeHost(h));
    OK(cudaFreeHost(stage));
}

/* Another thread's allocation and free, its status into *arg. */
static void *malloc_free(void *arg) {
    void *q = NULL;
    cudaError_t e = cudaMalloc(&q, 64);
    if (e == cudaSuccess) e = cudaFree(q);
    *(cudaError_t *)arg = e;
    return NULL;
}

/* Stream capture: a captured stream records its work (nothing runs), a graph replays it
 * with the arguments of the capture, reading memory as it is at each replay, and replays
 * are graph launches, not kernel launches; the calls real CUDA refuses in a capture
 * (synchronisation, allocation, a pageable host copy) fail and invalidate it. */
static void test_graphs(void) {
    enum { N = 1000 };
    cudaStream_t s = NULL;
    OK(cudaStreamCreate(&s));
    float *d = NULL, *p = NULL, h[N], pageable[4] = {0};
    OK(cudaMalloc((void **)&d, N * sizeof(float)));
    OK(cudaMallocHost((void **)&p, N * sizeof(float)));
    elsim_stats a, b, c;
    (void)cudaGetLastError(); /* what the tests before left */
    elsim_stats_get(&a);
    OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    enum cudaStreamCaptureStatus cs = cudaStreamCaptureStatusNone;
    OK(cudaStreamIsCapturing(s, &cs));
    EL_CHECK(cs == cudaStreamCaptureStatusActive);
    OK(cudaMemcpyAsync(d, p, N * sizeof(float), cudaMemcpyHostToDevice, s)); /* pinned */
    st_scale(d, d, 3.0f, N, s);
    OK(cudaGetLastError());
    cudaGraph_t g = NULL;
    OK(cudaStreamEndCapture(s, &g));
    OK(cudaStreamIsCapturing(s, &cs));
    EL_CHECK(cs == cudaStreamCaptureStatusNone && g != NULL);
    elsim_stats_get(&b);
    EL_CHECK(b.kernels_run == a.kernels_run && b.memcpys == a.memcpys && b.pending == a.pending);
    EL_CHECK(b.captures - a.captures == 1 && b.launches - a.launches == 1);
    cudaGraphExec_t x = NULL;
    OK(cudaGraphInstantiate(&x, g, 0));
    OK(cudaGraphDestroy(g)); /* the executable graph keeps its own nodes */
    for (int r = 1; r <= 2; r++) {
        for (int i = 0; i < N; i++) p[i] = (float)(r * i); /* read when the copy node runs */
        OK(cudaGraphLaunch(x, s));
        OK(cudaStreamSynchronize(s));
        OK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
        EL_CHECK(h[5] == 15.0f * r && h[N - 1] == 3.0f * r * (N - 1));
    }
    elsim_stats_get(&c);
    EL_CHECK(c.graph_launches - b.graph_launches == 2 && c.graph_nodes_run - b.graph_nodes_run == 4);
    EL_CHECK(c.launches == b.launches && c.kernels_run - b.kernels_run == 2);
    EL_CHECK(c.graph_instantiations - b.graph_instantiations == 1);
    EL_CHECK(c.malloc_calls == a.malloc_calls && c.host_alloc_calls == a.host_alloc_calls);
    /* A pageable host copy: refused, the capture invalidated; what follows on the stream
     * fails, and ending the capture gives no graph. */
    OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    EL_CHECK(cudaMemcpyAsync(d, pageable, sizeof pageable, cudaMemcpyHostToDevice, s) ==
             cudaErrorStreamCaptureUnsupported);
    OK(cudaStreamIsCapturing(s, &cs));
    EL_CHECK(cs == cudaStreamCaptureStatusInvalidated);
    st_scale(d, d, 3.0f, N, s);
    EL_CHECK(cudaGetLastError() == cudaErrorStreamCaptureInvalidated);
    g = (cudaGraph_t)&g;
    EL_CHECK(cudaStreamEndCapture(s, &g) == cudaErrorStreamCaptureInvalidated && g == NULL);
    /* Synchronising the capturing stream, or the device, and allocating: refused too. */
    OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    EL_CHECK(cudaStreamSynchronize(s) == cudaErrorStreamCaptureUnsupported);
    EL_CHECK(cudaStreamEndCapture(s, &g) == cudaErrorStreamCaptureInvalidated);
    void *q = NULL;
    OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeGlobal));
    EL_CHECK(cudaMalloc(&q, 64) == cudaErrorStreamCaptureUnsupported && q == NULL);
    EL_CHECK(cudaDeviceSynchronize() == cudaErrorStreamCaptureUnsupported);
    EL_CHECK(cudaStreamEndCapture(s, &g) == cudaErrorStreamCaptureInvalidated);
    EL_CHECK(cudaStreamBeginCapture(NULL, cudaStreamCaptureModeGlobal) ==
             cudaErrorStreamCaptureUnsupported); /* the legacy stream */
    /* Thread-local mode: refused on the capturing thread, allowed on another. */
    OK(cudaStreamBeginCapture(s, cudaStreamCaptureModeThreadLocal));
    pthread_t th;
    cudaError_t other = cudaErrorUnknown;
    EL_CHECK(pthread_create(&th, NULL, malloc_free, &other) == 0);
    pthread_join(th, NULL);
    EL_CHECK(other == cudaSuccess);
    EL_CHECK(cudaMalloc(&q, 64) == cudaErrorStreamCaptureUnsupported);
    EL_CHECK(cudaStreamEndCapture(s, &g) == cudaErrorStreamCaptureInvalidated);
    (void)cudaGetLastError();
    /* Nothing of the refused captures ran; the replayed result is intact. */
    OK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    EL_CHECK(h[5] == 30.0f);
    OK(cudaGraphExecDestroy(x));
    EL_CHECK(cudaGraphLaunch(x, s) == cudaErrorInvalidResourceHandle);
    (void)cudaGetLastError();
    OK(cudaStreamDestroy(s));
    OK(cudaFree(d));
    OK(cudaFreeHost(p));
}

static void test_launch_errors(void) {
    elsim_stats a, b;
    elsim_stats_get(&a);
    st_launch(1, 2048, 0, 0, NULL);
    EL_CHECK(cudaPeekAtLastError() == cudaErrorInvalidConfiguration);
    EL_CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    EL_CHECK(cudaGetLastError() == cudaSuccess); /* not sticky */
    EL_CHECK(strstr(elsim_last_message(), "launch_kernel") != NULL);
    st_launch(1, 0, 0, 0, NULL);
    EL_CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    st_launch(0, 32, 0, 0, NULL);
    EL_CHECK(cudaGetLastError() == cudaErrorInvalidConfiguration);
    st_launch(1, 32, 64 * 1024, 0, NULL); /* > 48 KiB without opting in */
    EL_CHECK(cudaGetLastError() == cudaErrorInvalidValue);
    EL_CHECK(st_allow_shared(300 * 1024) == cudaErrorInvalidValue);
    EL_CHECK(cudaGetLastError() == cudaErrorInvalidValue);
    cudaStream_t s = NULL;
    OK(cudaStreamCreate(&s));
    OK(cudaStreamDestroy(s));
    st_launch(1, 32, 0, 0, s);
    EL_CHECK(cudaGetLastError() == cudaErrorInvalidResourceHandle);
    elsim_stats_get(&b);
    EL_CHECK(b.launches == a.launches && b.launch_errors == a.launch_errors + 5 &&
             b.pending == 0);
    /* opted in: 64 KiB and the full 227 KiB run */
    OK(st_allow_shared(227 * 1024));
    st_launch(2, 32, 64 * 1024, 0, NULL);
    st_launch(1, 1024, 227 * 1024, 0, NULL);
    OK(cudaGetLastError());
    OK(cudaDeviceSynchronize());
    elsim_stats_get(&b);
    EL_CHECK(b.launches == a.launches + 2 && b.kernels_run == a.kernels_run + 2 &&
             b.blocks_run == a.blocks_run + 3);
}

static void check_all(const float *h, int n, float v, bool *all) {
    *all = true;
    for (int i = 0; i < n; i++)
        if (h[i] != v) *all = false;
}

/* A missing __syncthreads gives a wrong answer in the order that exposes it. */
static void test_missing_barrier(void) {
    enum { B = 2, T = 256 };
    float *d = NULL, h[B * T], *in = NULL, sum = 0;
    OK(cudaMalloc((void **)&d, sizeof h));
    OK(cudaMalloc((void **)&in, T * sizeof(float)));
    float ones[T];
    for (int i = 0; i < T; i++) ones[i] = 1.0f;
    OK(cudaMemcpy(in, ones, sizeof ones, cudaMemcpyHostToDevice));
    const elsim_order orders[] = {ELSIM_REVERSE, ELSIM_FORWARD, ELSIM_RANDOM};
    for (int o = 0; o < 3; o++) {
        for (uint64_t seed = 1; seed <= (orders[o] == ELSIM_RANDOM ? 4u : 1u); seed++) {
            elsim_set_order(orders[o], seed);
            bool b0 = false, b1 = false;
            st_broadcast(d, B, T, 1, NULL);
            OK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
            check_all(h, T, 1.0f, &b0);
            check_all(h + T, T, 2.0f, &b1);
            EL_CHECK(b0 && b1); /* with the barrier: right in every order */
            st_reduce(in, d, T, 1, NULL);
            OK(cudaMemcpy(&sum, d, sizeof sum, cudaMemcpyDeviceToHost));
            EL_CHECK(sum == (float)T);
        }
    }
    /* broadcast from thread 0 without the barrier: reverse order runs thread 0 last */
    bool b0 = true, b1 = true;
    elsim_set_order(ELSIM_REVERSE, 1);
    st_broadcast(d, B, T, 0, NULL);
    OK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    check_all(h + T, T, 2.0f, &b1);
    EL_CHECK(!b1 && h[T] == 2.0f && h[T + 1] == 1.0f); /* thread 0 right, the rest stale */
    elsim_set_order(ELSIM_FORWARD, 1);
    st_broadcast(d, B, T, 0, NULL);
    OK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    check_all(h, T, 1.0f, &b0);
    EL_CHECK(b0); /* forward hides this one */
    /* a tree reduction without barriers: forward order catches it, reverse hides it */
    st_reduce(in, d, T, 0, NULL);
    OK(cudaMemcpy(&sum, d, sizeof sum, cudaMemcpyDeviceToHost));
    EL_CHECK(sum != (float)T);
    elsim_set_order(ELSIM_REVERSE, 1);
    st_reduce(in, d, T, 0, NULL);
    OK(cudaMemcpy(&sum, d, sizeof sum, cudaMemcpyDeviceToHost));
    EL_CHECK(sum == (float)T);
    OK(cudaFree(d));
    OK(cudaFree(in));
}

/* Shuffles and ballots against their definitions, with partial warps and exited lanes. */
static void test_shuffles(void) {
    enum { T = 80 };
    int in[T], out[4 * T];
    unsigned votes[T];
    for (int i = 0; i < T; i++) in[i] = 1000 + i * 7;
    int *din = NULL, *dout = NULL;
    unsigned *dv = NULL;
    OK(cudaMalloc((void **)&din, sizeof in));
    OK(cudaMalloc((void **)&dout, sizeof out));
    OK(cudaMalloc((void **)&dv, sizeof votes));
    OK(cudaMemcpy(din, in, sizeof in, cudaMemcpyHostToDevice));
    const int cases[][3] = {{T, 3, 32}, {T, 5, 8}, {T, 1, 4}, {T, 31, 32}, {70, 2, 16},
                            {T, 17, 16}};
    long bad = 0;
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        int live = cases[c][0], arg = cases[c][1], w = cases[c][2];
        st_shuffles(din, dout, dv, T, live, arg, w, NULL);
        OK(cudaMemcpy(out, dout, sizeof out, cudaMemcpyDeviceToHost));
        OK(cudaMemcpy(votes, dv, sizeof votes, cudaMemcpyDeviceToHost));
        for (int t = 0; t < live; t++) {
            int lane = t & 31, base = t - lane, seg = lane & ~(w - 1), pos = lane - seg;
            int idx = seg + (arg & (w - 1));
            int up = pos >= arg ? lane - arg : lane;
            int down = pos + arg < w ? lane + arg : lane;
            int x = lane ^ arg;
            if (x >= seg + w) x = lane;
            int want[4] = {idx, up, down, x};
            for (int k = 0; k < 4; k++) {
                int src = base + want[k];
                /* a source lane that exited gives all ones */
                int expect = src < live ? in[src] : -1;
                if (out[4 * t + k] != expect) bad++;
            }
            unsigned ballot = 0;
            for (int l = 0; l < 32 && base + l < live; l++)
                if (in[base + l] & 1) ballot |= 1u << l;
            if (votes[t] != ballot) bad++;
        }
    }
    if (bad) fprintf(stderr, "shuffles: %ld results differ\n", bad);
    EL_CHECK(bad == 0);
    OK(cudaFree(din));
    OK(cudaFree(dout));
    OK(cudaFree(dv));
}

static int g_hostfn_calls;
static cudaError_t g_hostfn_err;
static void hostfn(void *user) {
    g_hostfn_calls += *(int *)user;
    void *p = NULL;
    g_hostfn_err = cudaMalloc(&p, 16); /* not allowed in a host function */
}

/* Copies, sets, allocation and pointer checks; counts; the memory limit; poison. */
static void test_memory(void) {
    elsim_stats a, b;
    elsim_stats_get(&a);
    size_t fr0 = 0, tot = 0, fr1 = 0;
    OK(cudaMemGetInfo(&fr0, &tot));
    EL_CHECK(tot == (size_t)4096 << 20);
    unsigned char *d = NULL, *m = NULL, *h = NULL, buf[5000];
    OK(cudaMalloc((void **)&d, 5000));
    OK(cudaMallocManaged((void **)&m, 5000, cudaMemAttachGlobal));
    OK(cudaMallocHost((void **)&h, 5000));
    OK(cudaMemGetInfo(&fr1, &tot));
    EL_CHECK(fr0 - fr1 == 10000);
    EL_CHECK(((uintptr_t)d & 255) == 0 && ((uintptr_t)m & 4095) == 0 &&
             ((uintptr_t)h & 4095) == 0);
    /* fresh memory is not zero: every byte reads 0xff */
    OK(cudaMemcpy(buf, d, sizeof buf, cudaMemcpyDeviceToHost));
    EL_CHECK(buf[0] == 0xff && buf[4999] == 0xff && m[17] == 0xff && h[4000] == 0xff);
    elsim_stats_get(&b);
    EL_CHECK(b.malloc_calls == a.malloc_calls + 1 && b.managed_calls == a.managed_calls + 1 &&
             b.host_alloc_calls == a.host_alloc_calls + 1 &&
             b.device_bytes == a.device_bytes + 5000 && b.managed_bytes == a.managed_bytes + 5000);
    /* misuse gets cudaErrorInvalidValue with a reason */
    EL_CHECK(cudaMemcpy(buf, d, 5001, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);
    EL_CHECK(strstr(elsim_last_message(), "overruns") != NULL);
    EL_CHECK(cudaMemcpy(h, buf, 16, cudaMemcpyHostToDevice) == cudaErrorInvalidValue);
    EL_CHECK(strstr(elsim_last_message(), "not device memory") != NULL);
    EL_CHECK(cudaMemcpy(buf, buf + 100, 16, cudaMemcpyDeviceToHost) == cudaErrorInvalidValue);
    EL_CHECK(cudaMemcpy(d, buf, 16, (enum cudaMemcpyKind)7) == cudaErrorInvalidMemcpyDirection);
    EL_CHECK(cudaMemset(buf, 0, 16) == cudaErrorInvalidValue);
    EL_CHECK(cudaFree(h) == cudaErrorInvalidValue);
    EL_CHECK(strstr(elsim_last_message(), "cudaFreeHost") != NULL);
    EL_CHECK(cudaFree(d + 4) == cudaErrorInvalidValue);
    EL_CHECK(cudaFreeHost(d) == cudaErrorInvalidValue);
    void *big = NULL;
    EL_CHECK(cudaMalloc(&big, (size_t)5 << 30) == cudaErrorMemoryAllocation && big == NULL);
    EL_CHECK(cudaGetLastError() == cudaErrorMemoryAllocation);
    /* cudaMemcpyDefault between every kind; managed memory is host-readable once idle */
    OK(cudaMemset(d, 7, 5000));
    OK(cudaMemcpy(m, d, 5000, cudaMemcpyDefault));
    EL_CHECK(m[0] == 7 && m[4999] == 7);
    memset(h, 9, 5000);
    OK(cudaMemcpy(d + 100, h, 100, cudaMemcpyDefault));
    OK(cudaMemcpy(buf, d, 300, cudaMemcpyDefault));
    EL_CHECK(buf[99] == 7 && buf[100] == 9 && buf[199] == 9 && buf[200] == 7);
    /* 2D: a 10 x 20 window with pitches 50 and 20 */
    OK(cudaMemset(d, 0, 5000));
    OK(cudaMemcpy2D(d + 5, 50, h, 20, 20, 10, cudaMemcpyHostToDevice));
    OK(cudaMemcpy(buf, d, 500, cudaMemcpyDeviceToHost));
    EL_CHECK(buf[4] == 0 && buf[5] == 9 && buf[24] == 9 && buf[25] == 0 && buf[455] == 9 &&
             buf[475] == 0);
    EL_CHECK(cudaMemcpy2D(d, 10, h, 20, 20, 2, cudaMemcpyHostToDevice) ==
             cudaErrorInvalidPitchValue);
    /* pointer attributes and host functions */
    struct cudaPointerAttributes pa;
    OK(cudaPointerGetAttributes(&pa, d + 10));
    EL_CHECK(pa.type == cudaMemoryTypeDevice && pa.devicePointer == d + 10 && !pa.hostPointer);
    OK(cudaPointerGetAttributes(&pa, m));
    EL_CHECK(pa.type == cudaMemoryTypeManaged);
    OK(cudaPointerGetAttributes(&pa, buf));
    EL_CHECK(pa.type == cudaMemoryTypeUnregistered);
    int one = 1;
    OK(cudaLaunchHostFunc(NULL, hostfn, &one));
    EL_CHECK(g_hostfn_calls == 0);
    OK(cudaDeviceSynchronize());
    EL_CHECK(g_hostfn_calls == 1 && g_hostfn_err == cudaErrorNotPermitted);
    /* registered host memory */
    OK(cudaHostRegister(buf, sizeof buf, cudaHostRegisterDefault));
    EL_CHECK(cudaHostRegister(buf + 8, 8, 0) == cudaErrorHostMemoryAlreadyRegistered);
    void *dp = NULL;
    OK(cudaHostGetDevicePointer(&dp, buf, 0));
    EL_CHECK(dp == buf);
    OK(cudaHostUnregister(buf));
    EL_CHECK(cudaHostUnregister(buf) == cudaErrorHostMemoryNotRegistered);
    /* frees: counted, and a second free is refused */
    OK(cudaFree(d));
    EL_CHECK(cudaFree(d) == cudaErrorInvalidValue);
    OK(cudaFree(m));
    OK(cudaFreeHost(h));
    OK(cudaFree(NULL));
    OK(cudaMemGetInfo(&fr1, &tot));
    EL_CHECK(fr1 == fr0);
    elsim_stats_get(&b);
    EL_CHECK(b.free_calls == a.free_calls + 3 && b.device_bytes == a.device_bytes &&
             b.host_bytes == a.host_bytes);
    (void)cudaGetLastError();
}

/* "Nothing allocates after init", as a GPU forward pass will check it: counts of the
 * runtime's allocation calls around work. */
static void test_counts(void) {
    float *x = NULL;
    OK(cudaMalloc((void **)&x, 1024 * sizeof(float)));
    elsim_reset_stats();
    for (int i = 0; i < 10; i++) st_scale(x, x, 1.0f, 1024, NULL);
    OK(cudaDeviceSynchronize());
    elsim_stats s;
    elsim_stats_get(&s);
    EL_CHECK(s.malloc_calls == 0 && s.managed_calls == 0 && s.host_alloc_calls == 0 &&
             s.launches == 10 && s.kernels_run == 10 && s.blocks_run == 30 && s.syncs == 1);
    void *late = NULL;
    OK(cudaMalloc(&late, 64)); /* what such a check must catch */
    elsim_stats_get(&s);
    EL_CHECK(s.malloc_calls == 1);
    OK(cudaFree(late));
    OK(cudaFree(x));
}

/* Launches, async copies and sets, events, stream and device synchronisation, synchronous
 * copies: no heap allocation in the emulator (after a first round: thread stacks are mapped
 * on first use, with mmap anyway). */
static void test_noalloc(void) {
    enum { N = 4096 };
    float *d = NULL, *h = NULL;
    cudaStream_t s = NULL;
    cudaEvent_t e = NULL;
    OK(cudaMalloc((void **)&d, N * sizeof(float)));
    OK(cudaMallocHost((void **)&h, N * sizeof(float)));
    OK(cudaStreamCreate(&s));
    OK(cudaEventCreate(&e));
    el_alloc_install();
    for (int round = 0; round < 2; round++) {
        if (round == 1) el_alloc_arm();
        OK(cudaMemsetAsync(d, 0, N * sizeof(float), s));
        for (int i = 0; i < 50; i++) st_scale(d, d, 1.5f, N, s);
        st_reduce(d, d, 256, 1, s);
        OK(cudaEventRecord(e, s));
        OK(cudaMemcpyAsync(h, d, N * sizeof(float), cudaMemcpyDeviceToHost, s));
        OK(cudaStreamWaitEvent(NULL, e, 0));
        OK(cudaEventSynchronize(e));
        OK(cudaStreamSynchronize(s));
        OK(cudaMemcpy(d, h, N * sizeof(float), cudaMemcpyHostToDevice));
        OK(cudaDeviceSynchronize());
    }
    long calls = el_alloc_disarm();
    if (calls) fprintf(stderr, "noalloc: %ld heap allocations in the emulator\n", calls);
    EL_CHECK(calls == 0);
    OK(cudaEventDestroy(e));
    OK(cudaStreamDestroy(s));
    OK(cudaFree(d));
    OK(cudaFreeHost(h));
}

/* An I/O thread queues H2D copies from pinned chunks (waiting on each copy's event before
 * refilling) while the main thread launches and synchronises: the lock keeps it consistent. */
typedef struct io_job {
    float *dst;   /* device, CHUNKS * CHUNK floats */
    bool ok;
} io_job;
enum { CHUNKS = 64, CHUNK = 1024 };

static void *io_thread(void *arg) {
    io_job *j = arg;
    cudaStream_t s = NULL;
    cudaEvent_t done = NULL;
    float *stage = NULL;
    j->ok = cudaStreamCreateWithFlags(&s, cudaStreamNonBlocking) == cudaSuccess &&
            cudaEventCreateWithFlags(&done, cudaEventDisableTiming) == cudaSuccess &&
            cudaMallocHost((void **)&stage, CHUNK * sizeof(float)) == cudaSuccess;
    for (int c = 0; j->ok && c < CHUNKS; c++) {
        for (int i = 0; i < CHUNK; i++) stage[i] = (float)(c * CHUNK + i);
        j->ok = cudaMemcpyAsync(j->dst + c * CHUNK, stage, CHUNK * sizeof(float),
                                cudaMemcpyHostToDevice, s) == cudaSuccess &&
                cudaEventRecord(done, s) == cudaSuccess &&
                cudaEventSynchronize(done) == cudaSuccess;
    }
    if (stage) cudaFreeHost(stage);
    if (done) cudaEventDestroy(done);
    if (s) cudaStreamDestroy(s);
    return NULL;
}

static void test_threads(void) {
    float *d = NULL, *w = NULL;
    OK(cudaMalloc((void **)&d, CHUNKS * CHUNK * sizeof(float)));
    OK(cudaMalloc((void **)&w, CHUNK * sizeof(float)));
    OK(cudaMemset(w, 0, CHUNK * sizeof(float)));
    io_job j = {d, false};
    el_thread t = {0};
    EL_CHECK_OK(el_thread_start(&t, io_thread, &j));
    for (int i = 0; i < 200; i++) {
        st_scale(w, w, 1.0f, CHUNK, NULL);
        if (i % 10 == 0) OK(cudaDeviceSynchronize());
    }
    el_thread_join(&t);
    EL_CHECK(j.ok);
    static float h[CHUNKS * CHUNK];
    OK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    bool right = true;
    for (int i = 0; i < CHUNKS * CHUNK; i++)
        if (h[i] != (float)i) right = false;
    EL_CHECK(right);
    OK(cudaFree(d));
    OK(cudaFree(w));
}

/* ---- stream order (ELSIM_STREAM_ORDER): missing dependencies between streams ---- */

enum { SO_N = 512, SO_LAYERS = 6, SO_SLOTS = 2 };

static const struct {
    elsim_stream_order order;
    uint64_t seed;
} k_stream_orders[] = {{ELSIM_STREAMS_SUBMIT, 1}, {ELSIM_STREAMS_FIFO, 1},
                       {ELSIM_STREAMS_LIFO, 1},   {ELSIM_STREAMS_SHUFFLE, 1},
                       {ELSIM_STREAMS_SHUFFLE, 2}, {ELSIM_STREAMS_SHUFFLE, 3}};
enum { N_STREAM_ORDERS = sizeof k_stream_orders / sizeof k_stream_orders[0] };

/* h[0] if all of h[0..SO_N) agree, else -1. */
static float so_uniform(const float *h) {
    for (int i = 1; i < SO_N; i++)
        if (h[i] != h[0]) return -1.0f;
    return h[0];
}

/* A copy stream turns d's 1s into 5s while a compute stream computes out = 2 * d into
 * pinned h; the host then synchronises the compute stream (device_sync: the device) and
 * reads h. wait: the compute stream waits for the copy's event, as it must. Returns h's
 * value (10 right, 2 when the kernel ran before the copy). */
static float so_pair(bool wait, bool device_sync) {
    cudaStream_t io = NULL, cs = NULL;
    cudaEvent_t copied = NULL;
    float *d = NULL, *out = NULL, *src = NULL, *h = NULL;
    OK(cudaStreamCreateWithFlags(&io, cudaStreamNonBlocking));
    OK(cudaStreamCreateWithFlags(&cs, cudaStreamNonBlocking));
    OK(cudaEventCreateWithFlags(&copied, cudaEventDisableTiming));
    OK(cudaMalloc((void **)&d, SO_N * sizeof(float)));
    OK(cudaMalloc((void **)&out, SO_N * sizeof(float)));
    OK(cudaMallocHost((void **)&src, SO_N * sizeof(float)));
    OK(cudaMallocHost((void **)&h, SO_N * sizeof(float)));
    for (int i = 0; i < SO_N; i++) src[i] = 1.0f;
    OK(cudaMemcpy(d, src, SO_N * sizeof(float), cudaMemcpyHostToDevice));
    for (int i = 0; i < SO_N; i++) src[i] = 5.0f;
    OK(cudaMemcpyAsync(d, src, SO_N * sizeof(float), cudaMemcpyHostToDevice, io));
    if (wait) {
        OK(cudaEventRecord(copied, io));
        OK(cudaStreamWaitEvent(cs, copied, 0));
    }
    st_scale(out, d, 2.0f, SO_N, cs);
    OK(cudaMemcpyAsync(h, out, SO_N * sizeof(float), cudaMemcpyDeviceToHost, cs));
    OK(device_sync ? cudaDeviceSynchronize() : cudaStreamSynchronize(cs));
    const float r = so_uniform(h);
    OK(cudaDeviceSynchronize());
    OK(cudaEventDestroy(copied));
    OK(cudaStreamDestroy(io));
    OK(cudaStreamDestroy(cs));
    OK(cudaFree(d));
    OK(cudaFree(out));
    OK(cudaFreeHost(src));
    OK(cudaFreeHost(h));
    return r;
}

/* Layer l's weights: small integers, so every sum below is exact. */
static float so_weight(int l, int i) { return (float)((i * 7 + l * 13) % 17); }

/* Layer l's copy into slot k on the copy stream, after the kernels that read k before
 * (freed, unless the bug leaves the wait out); ready marks its end. */
static void so_copy(float *slot, const float *src, cudaStream_t io, cudaEvent_t ready,
                    cudaEvent_t freed, bool wait_free) {
    if (wait_free) OK(cudaStreamWaitEvent(io, freed, 0));
    OK(cudaMemcpyAsync(slot, src, SO_N * sizeof(float), cudaMemcpyHostToDevice, io));
    OK(cudaEventRecord(ready, io));
}

/* The layer-streaming pattern of loader/stream.c: a copy stream fills SO_SLOTS device slots
 * with the layers' weights from pinned memory, a compute stream adds each layer's slot to
 * acc (a replayed graph per slot with use_graph); slot_ready events order each layer's
 * kernel after its copy, slot_free events each copy after the kernel that read the slot
 * before. Returns whether acc, read back after synchronising the compute stream, is exact. */
static bool so_pipeline(bool wait_ready, bool wait_free, bool use_graph) {
    cudaStream_t io = NULL, cs = NULL;
    cudaEvent_t ready[SO_SLOTS], freed[SO_SLOTS];
    cudaGraphExec_t graph[SO_SLOTS];
    float *slot[SO_SLOTS], *acc = NULL, *host = NULL, *h = NULL;
    OK(cudaStreamCreateWithFlags(&io, cudaStreamNonBlocking));
    OK(cudaStreamCreateWithFlags(&cs, cudaStreamNonBlocking));
    OK(cudaMalloc((void **)&acc, SO_N * sizeof(float)));
    OK(cudaMallocHost((void **)&host, SO_LAYERS * SO_N * sizeof(float)));
    OK(cudaMallocHost((void **)&h, SO_N * sizeof(float)));
    for (int l = 0; l < SO_LAYERS; l++)
        for (int i = 0; i < SO_N; i++) host[l * SO_N + i] = so_weight(l, i);
    for (int k = 0; k < SO_SLOTS; k++) {
        OK(cudaMalloc((void **)&slot[k], SO_N * sizeof(float)));
        OK(cudaEventCreateWithFlags(&ready[k], cudaEventDisableTiming));
        OK(cudaEventCreateWithFlags(&freed[k], cudaEventDisableTiming));
        graph[k] = NULL;
        if (!use_graph) continue;
        cudaGraph_t g = NULL;
        OK(cudaStreamBeginCapture(cs, cudaStreamCaptureModeThreadLocal));
        st_axpy(acc, slot[k], 1.0f, SO_N, cs);
        OK(cudaStreamEndCapture(cs, &g));
        OK(cudaGraphInstantiate(&graph[k], g, 0));
        OK(cudaGraphDestroy(g));
    }
    OK(cudaMemsetAsync(acc, 0, SO_N * sizeof(float), cs));
    for (int l = 0; l < SO_SLOTS; l++)
        so_copy(slot[l], host + l * SO_N, io, ready[l], freed[l], wait_free);
    for (int l = 0; l < SO_LAYERS; l++) {
        const int k = l % SO_SLOTS;
        if (wait_ready) OK(cudaStreamWaitEvent(cs, ready[k], 0));
        if (use_graph) OK(cudaGraphLaunch(graph[k], cs));
        else st_axpy(acc, slot[k], 1.0f, SO_N, cs);
        OK(cudaEventRecord(freed[k], cs));
        if (l + SO_SLOTS < SO_LAYERS)
            so_copy(slot[k], host + (l + SO_SLOTS) * SO_N, io, ready[k], freed[k], wait_free);
    }
    OK(cudaMemcpyAsync(h, acc, SO_N * sizeof(float), cudaMemcpyDeviceToHost, cs));
    OK(cudaStreamSynchronize(cs));
    bool exact = true;
    for (int i = 0; i < SO_N; i++) {
        float want = 0.0f;
        for (int l = 0; l < SO_LAYERS; l++) want += so_weight(l, i);
        if (h[i] != want) exact = false;
    }
    OK(cudaDeviceSynchronize());
    for (int k = 0; k < SO_SLOTS; k++) {
        if (graph[k]) OK(cudaGraphExecDestroy(graph[k]));
        OK(cudaEventDestroy(ready[k]));
        OK(cudaEventDestroy(freed[k]));
        OK(cudaFree(slot[k]));
    }
    OK(cudaStreamDestroy(io));
    OK(cudaStreamDestroy(cs));
    OK(cudaFree(acc));
    OK(cudaFreeHost(host));
    OK(cudaFreeHost(h));
    return exact;
}

/* A synchronous cudaMemcpy runs on the legacy stream: after a blocking stream's earlier
 * kernel (d = 3 * 1), not necessarily after a non-blocking one's. Returns what it read. */
static float so_legacy(unsigned flags) {
    cudaStream_t s = NULL;
    float *d = NULL, h[SO_N];
    OK(cudaStreamCreateWithFlags(&s, flags));
    OK(cudaMalloc((void **)&d, SO_N * sizeof(float)));
    for (int i = 0; i < SO_N; i++) h[i] = 1.0f;
    OK(cudaMemcpy(d, h, sizeof h, cudaMemcpyHostToDevice));
    st_scale(d, d, 3.0f, SO_N, s);
    OK(cudaMemcpy(h, d, sizeof h, cudaMemcpyDeviceToHost));
    OK(cudaDeviceSynchronize());
    OK(cudaStreamDestroy(s));
    OK(cudaFree(d));
    return so_uniform(h);
}

/* The reordering modes run only what CUDA orders: correct code gives the same results in
 * every mode, while a missing event wait between streams, or a host synchronising the
 * wrong stream, gives wrong ones (submission order hides each of them). */
static void test_stream_order(void) {
    EL_CHECK(elsim_get_stream_order() == ELSIM_STREAMS_SUBMIT);
    for (int m = 0; m < N_STREAM_ORDERS; m++) {
        const elsim_stream_order o = k_stream_orders[m].order;
        elsim_set_stream_order(o, k_stream_orders[m].seed);
        EL_CHECK(elsim_get_stream_order() == o);
        const bool submit = o == ELSIM_STREAMS_SUBMIT;
        elsim_reset_stats();
        /* correct code: right in every mode */
        EL_CHECK(so_pair(true, false) == 10.0f);
        EL_CHECK(so_pair(true, true) == 10.0f);
        EL_CHECK(so_pipeline(true, true, false));
        EL_CHECK(so_pipeline(true, true, true));
        EL_CHECK(so_legacy(cudaStreamDefault) == 3.0f);
        elsim_stats st;
        elsim_stats_get(&st);
        EL_CHECK(submit ? st.ops_reordered == 0 : o == ELSIM_STREAMS_FIFO || st.ops_reordered > 0);
        /* no wait for the copy, the compute stream synchronised: the kernel read the old
         * bytes, or the poison of a fresh slot */
        EL_CHECK(so_pair(false, false) == (submit ? 10.0f : 2.0f));
        EL_CHECK(so_pipeline(false, true, false) == submit);
        EL_CHECK(so_pipeline(false, true, true) == submit);
        /* a synchronous cudaMemcpy does not wait for a non-blocking stream */
        EL_CHECK(so_legacy(cudaStreamNonBlocking) == (submit ? 3.0f : 1.0f));
        if (o != ELSIM_STREAMS_LIFO) continue;
        /* lifo: even a device-wide synchronisation runs the unordered kernel first, and the
         * copy stream runs ahead into a slot the compute stream has yet to read */
        EL_CHECK(so_pair(false, true) == 2.0f);
        EL_CHECK(!so_pipeline(true, false, false));
        EL_CHECK(!so_pipeline(true, false, true));
    }
    elsim_set_stream_order(ELSIM_STREAMS_SUBMIT, 1);
    EL_CHECK(!strcmp(elsim_stream_order_name(ELSIM_STREAMS_SHUFFLE), "shuffle"));
}

int main(void) {
#ifndef EL_CUDA_SIM
    el_test_skip("the CUDA emulator's tests run only in -DEL_CUDA_SIM=ON builds");
#else
    /* a known starting point, whatever the caller's environment says */
    const char *vars[] = {"ELSIM_DEVICES", "ELSIM_NO_DRIVER", "ELSIM_INTEGRATED",
                          "ELSIM_CONCURRENT_MANAGED", "ELSIM_MEM_MB", "ELSIM_CC", "ELSIM_ORDER",
                          "ELSIM_POISON", "ELSIM_CHECK_ARGS", "ELSIM_STREAM_ORDER"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) unsetenv(vars[i]);
    elsim_reconfigure();
    test_identity();
    test_fp16();
    test_async_semantics();
    test_graphs();
    test_stream_order();
    test_launch_errors();
    test_missing_barrier();
    test_shuffles();
    test_memory();
    test_counts();
    test_noalloc();
    test_threads();
    test_children();
    elsim_set_order(ELSIM_REVERSE, 1);
    OK(cudaDeviceReset());
#endif
    return el_test_finish("test_cudasim");
}
