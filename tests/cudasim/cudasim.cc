/* cudasim.cc - a CPU emulation of the CUDA runtime and execution model, for tests only
 * (built with -DEL_CUDA_SIM=ON; never a backend: every device calls itself "cudasim
 * (simulated, CPU)"). The same kernels/cuda sources that nvcc builds are compiled by g++
 * against tests/cudasim/include and run here, so CI without a GPU runs them and catches the
 * bugs a GPU would show: wrong indexing, a missing __syncthreads, the host touching device
 * memory, results read before synchronising, staging buffers reused before the async copy
 * that reads them has run, allocation after init.
 *
 * Sections: fiber context switch | configuration | state | errors | memory protection and
 * the fault handler | the block scheduler and the device-side entry points | the queue |
 * the runtime API | the test API (cudasim.h). One global lock serialises everything; queued
 * work runs on the host thread that synchronises. Semantics reproduced, and not, are listed
 * in docs/CUDA.md ("Testing without a GPU: cudasim"). */
#include "cuda_runtime.h"
#include "cudasim.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <new>
#include <type_traits>

#if defined(__SANITIZE_ADDRESS__)
#define ELSIM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ELSIM_ASAN 1
#endif
#endif
#ifdef ELSIM_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

#if (!defined(__x86_64__) && !defined(__aarch64__)) || defined(ELSIM_FORCE_UCONTEXT)
#include <ucontext.h>
#define ELSIM_UCONTEXT 1 /* the portable (slower: a syscall per switch) fallback */
#endif

/* The built-in variables kernels read (declared in cuda_runtime.h). */
uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;

namespace {

/* ======================================================================================
 * Fiber context switch: the callee-saved registers on the old stack, then the stack pointer
 * swapped (no signal mask, no syscall). The FP control words (MXCSR, x87 CW, FPCR) are not
 * switched: every fiber runs on the thread that synchronises, and kernels do not change
 * rounding modes (saving them cost two thirds of a switch). ucontext elsewhere. */

struct Ctx {
    void *sp;
#ifdef ELSIM_UCONTEXT
    ucontext_t uc;
#endif
};

} // namespace

extern "C" void elsim_ctx_switch(void **save_sp, void *new_sp);

#if defined(__x86_64__)
__asm__(".text\n"
        ".globl elsim_ctx_switch\n"
        ".hidden elsim_ctx_switch\n"
        ".type elsim_ctx_switch,@function\n"
        "elsim_ctx_switch:\n"
        "  pushq %rbp\n"
        "  pushq %rbx\n"
        "  pushq %r12\n"
        "  pushq %r13\n"
        "  pushq %r14\n"
        "  pushq %r15\n"
        "  movq %rsp, (%rdi)\n"
        "  movq %rsi, %rsp\n"
        "  popq %r15\n"
        "  popq %r14\n"
        "  popq %r13\n"
        "  popq %r12\n"
        "  popq %rbx\n"
        "  popq %rbp\n"
        "  ret\n"
        ".size elsim_ctx_switch, .-elsim_ctx_switch\n");
#elif defined(__aarch64__)
__asm__(".text\n"
        ".globl elsim_ctx_switch\n"
        ".hidden elsim_ctx_switch\n"
        ".type elsim_ctx_switch,%function\n"
        "elsim_ctx_switch:\n"
        "  sub sp, sp, #160\n"
        "  stp x19, x20, [sp, #0]\n"
        "  stp x21, x22, [sp, #16]\n"
        "  stp x23, x24, [sp, #32]\n"
        "  stp x25, x26, [sp, #48]\n"
        "  stp x27, x28, [sp, #64]\n"
        "  stp x29, x30, [sp, #80]\n"
        "  stp d8, d9, [sp, #96]\n"
        "  stp d10, d11, [sp, #112]\n"
        "  stp d12, d13, [sp, #128]\n"
        "  stp d14, d15, [sp, #144]\n"
        "  mov x9, sp\n"
        "  str x9, [x0]\n"
        "  mov sp, x1\n"
        "  ldp x19, x20, [sp, #0]\n"
        "  ldp x21, x22, [sp, #16]\n"
        "  ldp x23, x24, [sp, #32]\n"
        "  ldp x25, x26, [sp, #48]\n"
        "  ldp x27, x28, [sp, #64]\n"
        "  ldp x29, x30, [sp, #80]\n"
        "  ldp d8, d9, [sp, #96]\n"
        "  ldp d10, d11, [sp, #112]\n"
        "  ldp d12, d13, [sp, #128]\n"
        "  ldp d14, d15, [sp, #144]\n"
        "  add sp, sp, #160\n"
        "  ret\n"
        ".size elsim_ctx_switch, .-elsim_ctx_switch\n");
#endif

namespace {

/* ======================================================================================
 * Configuration (ELSIM_* environment, read at first use and by elsim_reconfigure). */

struct Config {
    int devices;             /* ELSIM_DEVICES (default 1; 0: cudaErrorNoDevice) */
    bool no_driver;          /* ELSIM_NO_DRIVER=1: cudaErrorInsufficientDriver, driver 0 */
    bool integrated;         /* ELSIM_INTEGRATED (default 0) */
    bool concurrent_managed; /* ELSIM_CONCURRENT_MANAGED (default: !integrated) */
    uint64_t mem_bytes;      /* ELSIM_MEM_MB (default 4096) MiB per device */
    int cc_major, cc_minor;  /* ELSIM_CC=major.minor (default 9.0) */
    size_t smem_optin;       /* largest dynamic shared memory a kernel may opt in to */
    elsim_order order;       /* ELSIM_ORDER */
    uint64_t seed;
    elsim_stream_order stream_order; /* ELSIM_STREAM_ORDER (default submit) */
    uint64_t stream_seed;
    bool poison;             /* ELSIM_POISON (default 1): fresh allocations read 0xff */
    bool verbose;            /* ELSIM_VERBOSE=1: print every failed call's explanation */
    bool check_args;         /* ELSIM_CHECK_ARGS (default 1): pointer arguments of launches */
    size_t stack_bytes;      /* ELSIM_STACK_KB per emulated thread */
    long fail_launch;        /* ELSIM_FAIL_LAUNCH=N: the Nth valid launch is refused */
    long fault_kernel;       /* ELSIM_FAULT_KERNEL=N: the Nth kernel run "faults" */
    char kernel_archs[128];  /* ELSIM_KERNEL_ARCHS="75,80,...": the SASS the "binary" holds;
                                a device not listed gets cudaErrorNoKernelImageForDevice
                                ("" = every device has its image) */
};

Config cfg;

/* Does the emulated "binary" hold SASS for the emulated device (ELSIM_KERNEL_ARCHS)? */
bool has_kernel_image() {
    if (!cfg.kernel_archs[0]) return true;
    char want[8];
    snprintf(want, sizeof want, "%d%d", cfg.cc_major, cfg.cc_minor);
    const char *p = cfg.kernel_archs;
    while (*p) {
        size_t n = strcspn(p, ",");
        if (n == strlen(want) && !strncmp(p, want, n)) return true;
        p += n;
        if (*p == ',') p++;
    }
    return false;
}

long env_long(const char *name, long def, long lo, long hi) {
    const char *v = getenv(name);
    if (!v || !*v) return def;
    char *end = NULL;
    errno = 0;
    long x = strtol(v, &end, 10);
    if (errno || *end || x < lo || x > hi) {
        fprintf(stderr, "cudasim: ignoring %s=%s (expected an integer in %ld..%ld)\n", name, v, lo,
                hi);
        return def;
    }
    return x;
}

/* The orders' names by value (ELSIM_ORDER, ELSIM_STREAM_ORDER); the last takes a seed. */
const char *const k_order_names[] = {"reverse", "forward", "random"};
const char *const k_stream_order_names[] = {"submit", "fifo", "lifo", "shuffle"};

/* Variable var naming one of names[0..n): its index (def if unset or unknown); the last
 * name may carry a seed, "NAME:SEED" or "NAME(SEED)", into *seed (0 taken as 1). */
int env_choice(const char *var, const char *const *names, int n, int def, uint64_t *seed) {
    const char *v = getenv(var);
    if (!v || !*v) return def;
    for (int i = 0; i < n; i++)
        if (!strcmp(v, names[i])) return i;
    const size_t len = strlen(names[n - 1]);
    unsigned long long s = 0;
    char close = 0, tail = 0;
    if (!strncmp(v, names[n - 1], len) &&
        ((v[len] == ':' && sscanf(v + len + 1, "%llu%c", &s, &tail) == 1) ||
         (v[len] == '(' && sscanf(v + len + 1, "%llu%c%c", &s, &close, &tail) == 2 &&
          close == ')'))) {
        *seed = s ? s : 1;
        return n - 1;
    }
    fprintf(stderr, "cudasim: ignoring %s=%s (", var, v);
    for (int i = 0; i < n; i++) fprintf(stderr, "%s, ", names[i]);
    fprintf(stderr, "%s:SEED)\n", names[n - 1]);
    return def;
}

size_t smem_optin_for(int major, int minor) {
    if (major == 7) return minor >= 5 ? 65536 : 98304;
    if (major == 8) return (minor == 0 || minor == 7) ? 166912 : 101376;
    if (major == 12) return 101376;
    return 232448; /* 9.x, 10.x, 11.x: 227 KiB */
}

void config_read(void) {
    cfg.devices = (int)env_long("ELSIM_DEVICES", 1, 0, 16);
    cfg.no_driver = env_long("ELSIM_NO_DRIVER", 0, 0, 1) != 0;
    cfg.integrated = env_long("ELSIM_INTEGRATED", 0, 0, 1) != 0;
    cfg.concurrent_managed =
        env_long("ELSIM_CONCURRENT_MANAGED", cfg.integrated ? 0 : 1, 0, 1) != 0;
    cfg.mem_bytes = (uint64_t)env_long("ELSIM_MEM_MB", 4096, 1, 1L << 24) << 20;
    const char *mb = getenv("ELSIM_MEM_MB");
    if (cfg.integrated && (!mb || !*mb)) { /* a Jetson's GPU memory is the machine's DRAM */
        FILE *f = fopen("/proc/meminfo", "r");
        unsigned long long kb = 0;
        if (f) {
            if (fscanf(f, "MemTotal: %llu kB", &kb) == 1 && kb) cfg.mem_bytes = kb << 10;
            fclose(f);
        }
    }
    cfg.cc_major = 9;
    cfg.cc_minor = 0;
    const char *cc = getenv("ELSIM_CC");
    if (cc && *cc) {
        int ma = 0, mi = 0;
        char tail = 0;
        if (sscanf(cc, "%d.%d%c", &ma, &mi, &tail) == 2 && ma >= 5 && ma <= 20 && mi >= 0 &&
            mi <= 9) {
            cfg.cc_major = ma;
            cfg.cc_minor = mi;
        } else {
            fprintf(stderr, "cudasim: ignoring ELSIM_CC=%s (expected major.minor, e.g. 8.7)\n", cc);
        }
    }
    cfg.smem_optin = smem_optin_for(cfg.cc_major, cfg.cc_minor);
    const char *ka = getenv("ELSIM_KERNEL_ARCHS");
    snprintf(cfg.kernel_archs, sizeof cfg.kernel_archs, "%s", ka ? ka : "");
    cfg.fail_launch = env_long("ELSIM_FAIL_LAUNCH", 0, 0, 1L << 40);
    cfg.fault_kernel = env_long("ELSIM_FAULT_KERNEL", 0, 0, 1L << 40);
    cfg.seed = cfg.stream_seed = 1;
    cfg.order = (elsim_order)env_choice("ELSIM_ORDER", k_order_names, 3, ELSIM_REVERSE, &cfg.seed);
    cfg.stream_order = (elsim_stream_order)env_choice("ELSIM_STREAM_ORDER", k_stream_order_names,
                                                      4, ELSIM_STREAMS_SUBMIT, &cfg.stream_seed);
    cfg.poison = env_long("ELSIM_POISON", 1, 0, 1) != 0;
    cfg.verbose = env_long("ELSIM_VERBOSE", 0, 0, 1) != 0;
    cfg.check_args = env_long("ELSIM_CHECK_ARGS", 1, 0, 1) != 0;
#ifdef ELSIM_ASAN
    long kb_def = 256; /* instrumented frames are larger */
#else
    long kb_def = 64;
#endif
    cfg.stack_bytes = (size_t)env_long("ELSIM_STACK_KB", kb_def, 16, 8192) << 10;
}

/* ======================================================================================
 * State. Fixed tables in static storage: the emulator itself never calls malloc (tests
 * count the process's heap allocations around forward passes). */

enum { K_DEVICE = 1, K_MANAGED, K_HOST, K_REGISTERED };
enum { C_KERNEL = 1, C_COPY, C_COPY2D, C_SET, C_EVENT, C_NOP, C_HOSTFN, C_ATTACH };
enum { MODE_HOST, MODE_KERNEL, MODE_COPY };

const int MAX_ALLOCS = 4096, MAX_STREAMS = 256, MAX_EVENTS = 4096, MAX_FUNCS = 256;
const int RING = 512;     /* queued operations; a full queue runs its oldest (the device
                             "catches up", as a real one may at any time) */
const int MAX_THREADS = 1024;
const int FREED_RING = 64; /* recently freed blocks, named by the fault handler */

struct Alloc {
    char *base;      /* the mapping: data pages then one guard page */
    size_t map_len;
    char *data;      /* = base; the pages whose protection changes */
    size_t data_len;
    char *ptr;       /* what the caller got (device: end-aligned to 256 against the guard) */
    size_t size;     /* what the caller asked for */
    int kind;        /* K_* (0: free slot) */
    int device;
    unsigned attach; /* managed: cudaMemAttachGlobal / Host / Single, in effect */
    CUstream_st *attach_st;
    unsigned attach0;      /* as cudaMallocManaged gave it: back to it when attach_st dies */
    unsigned attach_q;     /* the latest attach queued and not yet run (attach_q_seq != 0) */
    CUstream_st *attach_q_st;
    uint64_t attach_q_seq;
    int prot;        /* current protection of data */
};

struct FreedBlock {
    char *ptr;
    size_t size;
    int kind;
};

} // namespace

struct CUstream_st {
    int live;
    unsigned flags;
    uint64_t last_seq;   /* seq of its last queued operation */
    int pending_kernels; /* queued, not yet run */
    int pending_ops;     /* every queued operation not yet run (kernels included) */
    int device;
};

struct CUevent_st {
    int live;
    unsigned flags;
    bool recorded;     /* a record was ever queued */
    uint64_t rec_seq;  /* seq of the latest queued record */
    uint64_t done_seq; /* seq of the latest record that ran */
    double t_ms;       /* when it ran (CLOCK_MONOTONIC) */
};

namespace {

typedef CUevent_st Event;

struct Cmd {
    int kind;
    uint64_t seq;      /* queued: at ring position seq - 1; 0: a captured node */
    CUstream_st *st;
    /* what must run first (seqs; 0: nothing): the stream's previous operation, the record
     * an event wait names, the legacy stream's last operation (ops of blocking streams);
     * barrier: on the legacy stream, so after every earlier op of the blocking streams */
    uint64_t dep_stream, dep_event, dep_legacy;
    bool barrier;
    bool done; /* ran (out of order: the ring's head stays behind older queued work) */
    bool mark; /* wanted by the synchronisation being drained */
    /* kernel */
    void (*run)(void *);
    void (*destroy)(void *);
    const void *fn;
    const char *name, *file;
    int line;
    dim3 grid, block;
    size_t shmem;
    /* copies, sets */
    void *dst;
    const void *src;
    size_t count, dpitch, spitch, width, height;
    int value;
    /* events, host functions, attach */
    Event *ev;
    cudaHostFn_t hostfn;
    void *user;
    Alloc *alloc;
    unsigned flags;
    alignas(16) unsigned char args[ELSIM_ARG_BYTES]; /* the kernel's captured arguments */
};

struct Func {
    const void *fn;
    int max_dyn_shared;
};

pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;
pthread_once_t g_once = PTHREAD_ONCE_INIT;
size_t g_page = 4096;

Alloc g_allocs[MAX_ALLOCS];
int g_nallocs; /* slots in use are below this */
FreedBlock g_freed[FREED_RING];
unsigned g_nfreed;
CUstream_st g_streams[MAX_STREAMS + 1]; /* [0]: the legacy (NULL) stream */
Event g_events[MAX_EVENTS];
Func g_funcs[MAX_FUNCS];
Cmd g_ring[RING];
uint64_t g_head, g_tail; /* ring positions: [head, tail) are queued */
uint64_t g_seq;          /* last seq handed out */
Cmd *g_reserved;         /* a launch between launch_begin and launch_commit */
int g_pending_kernels;
uint64_t g_dev_live[17]; /* device + managed bytes per device */
elsim_stats g_stats;
int g_mode = MODE_HOST;

/* Stream capture. One capture at a time (per process): the captured stream's kernels,
 * copies and sets go to cap_node(i) instead of the queue, arguments by value. A graph and an
 * executable graph own a range of pool_node(i); cudaGraphLaunch queues copies of them. Both
 * tables are raw static storage (a Cmd's dim3 members have constructors: an array of Cmd
 * would be constructed, so touched, at start, adding its megabytes to every test's RSS);
 * a node is constructed when recorded and copied as bytes (Cmd is trivially copyable). */
const int CAPTURE_MAX = 1024, GRAPH_POOL = 4096, MAX_GRAPHS = 64;
struct Capture {
    CUstream_st *st; /* NULL: none */
    int mode;        /* cudaStreamCaptureMode */
    pthread_t thread; /* the capturing thread (thread-local mode restricts only it) */
    int count;       /* nodes recorded */
    bool invalid;    /* a refused call invalidated it: cudaStreamEndCapture fails */
    char why[384];
};
Capture g_cap;
alignas(Cmd) unsigned char g_capbuf[CAPTURE_MAX * sizeof(Cmd)];
Cmd g_cap_overflow; /* receives operations past CAPTURE_MAX (the capture is invalid then) */
alignas(Cmd) unsigned char g_pool[GRAPH_POOL * sizeof(Cmd)];
static_assert(std::is_trivially_copyable<Cmd>::value, "graph nodes are copied as bytes");
inline Cmd *cap_node(int i) { return reinterpret_cast<Cmd *>(g_capbuf) + i; }
inline Cmd *pool_node(int i) { return reinterpret_cast<Cmd *>(g_pool) + i; }

/* Execution context, read by the fault handler. */
volatile bool g_draining;
pthread_t g_drain_thread;
const Cmd *volatile g_exec;

thread_local cudaError_t t_last_error = cudaSuccess;
thread_local char t_msg[640];
thread_local int t_device;
thread_local bool t_in_hostfn;
thread_local bool t_altstack;

/* ======================================================================================
 * Errors. */

struct ErrInfo {
    cudaError_t e;
    const char *name, *text;
};
const ErrInfo k_errors[] = {
    {cudaSuccess, "cudaSuccess", "no error"},
    {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
    {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
    {cudaErrorInitializationError, "cudaErrorInitializationError", "initialization error"},
    {cudaErrorCudartUnloading, "cudaErrorCudartUnloading", "driver shutting down"},
    {cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration",
     "invalid configuration argument"},
    {cudaErrorInvalidPitchValue, "cudaErrorInvalidPitchValue", "invalid pitch argument"},
    {cudaErrorInvalidDevicePointer, "cudaErrorInvalidDevicePointer", "invalid device pointer"},
    {cudaErrorInvalidMemcpyDirection, "cudaErrorInvalidMemcpyDirection",
     "invalid copy direction for memcpy"},
    {cudaErrorInsufficientDriver, "cudaErrorInsufficientDriver",
     "CUDA driver version is insufficient for CUDA runtime version"},
    {cudaErrorInvalidDeviceFunction, "cudaErrorInvalidDeviceFunction", "invalid device function"},
    {cudaErrorNoKernelImageForDevice, "cudaErrorNoKernelImageForDevice",
     "no kernel image is available for execution on the device"},
    {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected"},
    {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
    {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
    {cudaErrorNotReady, "cudaErrorNotReady", "device not ready"},
    {cudaErrorIllegalAddress, "cudaErrorIllegalAddress",
     "an illegal memory access was encountered"},
    {cudaErrorLaunchOutOfResources, "cudaErrorLaunchOutOfResources",
     "too many resources requested for launch"},
    {cudaErrorLaunchTimeout, "cudaErrorLaunchTimeout", "the launch timed out and was terminated"},
    {cudaErrorHostMemoryAlreadyRegistered, "cudaErrorHostMemoryAlreadyRegistered",
     "part or all of the requested memory range is already mapped"},
    {cudaErrorHostMemoryNotRegistered, "cudaErrorHostMemoryNotRegistered",
     "pointer does not correspond to a registered memory region"},
    {cudaErrorLaunchFailure, "cudaErrorLaunchFailure", "unspecified launch failure"},
    {cudaErrorNotPermitted, "cudaErrorNotPermitted", "operation not permitted"},
    {cudaErrorNotSupported, "cudaErrorNotSupported", "operation not supported"},
    {cudaErrorStreamCaptureUnsupported, "cudaErrorStreamCaptureUnsupported",
     "operation not permitted when stream is capturing"},
    {cudaErrorStreamCaptureInvalidated, "cudaErrorStreamCaptureInvalidated",
     "operation failed due to a previous error during capture"},
    {cudaErrorUnknown, "cudaErrorUnknown", "unknown error"},
};

const ErrInfo *err_info(cudaError_t e) {
    for (const ErrInfo &i : k_errors)
        if (i.e == e) return &i;
    return NULL;
}

/* Records e as this thread's last error with an explanation (elsim_last_message). */
__attribute__((format(printf, 2, 3))) cudaError_t fail(cudaError_t e, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(t_msg, sizeof t_msg, fmt, ap);
    va_end(ap);
    t_last_error = e;
    if (cfg.verbose) {
        const ErrInfo *i = err_info(e);
        fprintf(stderr, "cudasim: %s: %s\n", i ? i->name : "?", t_msg);
    }
    return e;
}

/* A bug the GPU would not report as an error code (deadlock, misuse of a warp primitive):
 * says what and where, then aborts. */
__attribute__((format(printf, 1, 2), noreturn)) void fatal(const char *fmt, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    if ((size_t)n >= sizeof buf) n = (int)sizeof buf - 1;
    fprintf(stderr, "cudasim: %s\n", buf);
    fflush(stderr);
    abort();
}

double now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec * 1e-6;
}

size_t round_up(size_t x, size_t a) { return (x + a - 1) / a * a; }

const char *kind_name(int k) {
    switch (k) {
    case K_DEVICE: return "cudaMalloc";
    case K_MANAGED: return "cudaMallocManaged";
    case K_HOST: return "cudaHostAlloc";
    case K_REGISTERED: return "cudaHostRegister";
    default: return "?";
    }
}

const char *attach_name(unsigned a) {
    return a == cudaMemAttachHost ? "cudaMemAttachHost"
         : a == cudaMemAttachSingle ? "cudaMemAttachSingle" : "cudaMemAttachGlobal";
}

/* ======================================================================================
 * Memory protection. Device memory is PROT_NONE whenever host code runs; managed memory
 * follows the device's concurrentManagedAccess (see want_prot); the emulator lifts the
 * protection while it runs queued work. A guard page follows every block. */

/* Without concurrentManagedAccess: may the host touch a managed block attached so? */
bool host_may_touch(unsigned attach, const CUstream_st *st) {
    if (attach == cudaMemAttachGlobal) return g_pending_kernels == 0;
    if (attach == cudaMemAttachSingle) return st->pending_ops == 0; /* "so long as all
                                         operations in stream have completed" (the runtime) */
    return true; /* cudaMemAttachHost */
}

int want_prot(const Alloc &a, int mode, const CUstream_st *st) {
    const int rw = PROT_READ | PROT_WRITE;
    if (a.kind == K_DEVICE) return mode == MODE_HOST ? PROT_NONE : rw;
    if (a.kind != K_MANAGED || cfg.concurrent_managed || mode == MODE_COPY) return rw;
    if (mode == MODE_KERNEL) { /* the device may not touch host-attached memory */
        if (a.attach == cudaMemAttachHost) return PROT_NONE;
        if (a.attach == cudaMemAttachSingle && a.attach_st != st) return PROT_NONE;
        return rw;
    }
    /* host: not while kernels that may touch it are queued, under the attachment in effect
     * or under one queued behind them (the host may not rely on an attach before its
     * stream has run it) */
    if (!host_may_touch(a.attach, a.attach_st)) return PROT_NONE;
    if (a.attach_q_seq && !host_may_touch(a.attach_q, a.attach_q_st)) return PROT_NONE;
    return rw;
}

void protect(Alloc &a, int prot) {
    if (a.prot == prot || a.kind == K_REGISTERED) return;
    if (mprotect(a.data, a.data_len, prot) != 0)
        fatal("mprotect of a %zu-byte %s block failed: %s", a.size, kind_name(a.kind),
              strerror(errno));
    a.prot = prot;
}

void set_mode(int mode, const CUstream_st *st) {
    g_mode = mode;
    for (int i = 0; i < g_nallocs; i++)
        if (g_allocs[i].kind) protect(g_allocs[i], want_prot(g_allocs[i], mode, st));
}

/* ---- the fault handler: names what was touched, then lets the previous handler (or the
 * default action) take the fault ---- */

struct sigaction g_old_segv, g_old_bus;

struct Fiber;
Fiber *volatile g_cur; /* the emulated thread running now (NULL: none) */
char *g_stack_region;  /* fiber stacks: [guard page | stack] * MAX_THREADS */
size_t g_stack_stride;
char *g_dyn_guard;     /* the page after the dynamic shared memory buffer */
char *volatile g_dyn_ptr;

void describe_who(char *buf, size_t cap);

void describe_fault(char *addr, char *buf, size_t cap) {
    buf[0] = 0;
    char who[400];
    describe_who(who, sizeof who);
    bool host = !strncmp(who, "the host", 8);
    for (int i = 0; i < g_nallocs; i++) {
        const Alloc &a = g_allocs[i];
        if (!a.kind || a.kind == K_REGISTERED || addr < a.base || addr >= a.base + a.map_len)
            continue;
        if (addr >= a.ptr + a.size) {
            snprintf(buf, cap, "%s touched %p, %zu bytes past the end of a %zu-byte %s block at %p",
                     who, (void *)addr, (size_t)(addr - (a.ptr + a.size)), a.size,
                     kind_name(a.kind), (void *)a.ptr);
        } else if (addr < a.ptr) {
            snprintf(buf, cap, "%s touched %p, %zu bytes before a %zu-byte %s block at %p", who,
                     (void *)addr, (size_t)(a.ptr - addr), a.size, kind_name(a.kind),
                     (void *)a.ptr);
        } else if (a.kind == K_DEVICE && host) {
            snprintf(buf, cap, "the host touched device memory at %p (byte %zu of a %zu-byte "
                     "cudaMalloc block at %p): device memory is not host-accessible; copy it "
                     "with cudaMemcpy", (void *)addr, (size_t)(addr - a.ptr), a.size,
                     (void *)a.ptr);
        } else if (a.kind == K_MANAGED && host &&
                   (a.attach == cudaMemAttachSingle ||
                    (a.attach_q_seq && a.attach_q == cudaMemAttachSingle))) {
            snprintf(buf, cap, "the host touched managed memory at %p (byte %zu of a %zu-byte "
                     "cudaMallocManaged block at %p) attached to one stream "
                     "(cudaMemAttachSingle%s) while that stream has work queued, on a device "
                     "without concurrentManagedAccess (ELSIM_CONCURRENT_MANAGED=0, as on "
                     "Jetson): synchronise that stream first", (void *)addr,
                     (size_t)(addr - a.ptr), a.size, (void *)a.ptr,
                     a.attach == cudaMemAttachSingle ? "" : ", queued");
        } else if (a.kind == K_MANAGED && host) {
            snprintf(buf, cap, "the host touched managed memory at %p (byte %zu of a %zu-byte "
                     "cudaMallocManaged block at %p, %s) while kernels are queued on a device "
                     "without concurrentManagedAccess (ELSIM_CONCURRENT_MANAGED=0, as on "
                     "Jetson): synchronise first, or attach the block to the host with "
                     "cudaStreamAttachMemAsync(stream, p, 0, cudaMemAttachHost)",
                     (void *)addr, (size_t)(addr - a.ptr), a.size, (void *)a.ptr,
                     attach_name(a.attach));
        } else if (a.kind == K_MANAGED) {
            snprintf(buf, cap, "%s touched managed memory at %p that is attached %s "
                     "(cudaStreamAttachMemAsync): the device may not access it on a device "
                     "without concurrentManagedAccess", who, (void *)addr,
                     a.attach == cudaMemAttachHost ? "to the host" : "to another stream");
        } else {
            snprintf(buf, cap, "%s faulted at %p inside a %zu-byte %s block at %p", who,
                     (void *)addr, a.size, kind_name(a.kind), (void *)a.ptr);
        }
        return;
    }
    if (g_stack_region && addr >= g_stack_region &&
        addr < g_stack_region + g_stack_stride * MAX_THREADS &&
        (size_t)(addr - g_stack_region) % g_stack_stride < g_page) {
        snprintf(buf, cap, "stack overflow in %s (emulated threads have %zu KiB stacks: "
                 "ELSIM_STACK_KB)", who, cfg.stack_bytes >> 10);
        return;
    }
    if (g_dyn_guard && addr >= g_dyn_guard && addr < g_dyn_guard + g_page) {
        snprintf(buf, cap, "%s read or wrote past the %zu bytes of dynamic shared memory its "
                 "launch asked for", who, (size_t)(g_dyn_guard - g_dyn_ptr));
        return;
    }
    for (unsigned i = 0; i < FREED_RING && i < g_nfreed; i++) {
        const FreedBlock &f = g_freed[i];
        if (addr >= f.ptr && addr < f.ptr + f.size) {
            snprintf(buf, cap, "%s touched %p in a %zu-byte %s block that was freed (use after "
                     "free)", who, (void *)addr, f.size, kind_name(f.kind));
            return;
        }
    }
    if (!host)
        snprintf(buf, cap, "%s faulted at %p: not memory the device can reach (only cudaMalloc, "
                 "cudaMallocManaged and pinned host memory are)", who, (void *)addr);
}

void on_fault(int sig, siginfo_t *si, void *uc) {
    (void)uc;
    static char buf[1024];
    describe_fault((char *)si->si_addr, buf, sizeof buf - 16);
    if (buf[0]) {
        size_t n = strlen(buf);
        if (write(2, "cudasim: ", 9) < 0 || write(2, buf, n) < 0 || write(2, "\n", 1) < 0) {
        }
    }
    /* The faulting access runs again and meets the handler that was there before us. */
    sigaction(sig, sig == SIGBUS ? &g_old_bus : &g_old_segv, NULL);
}

void install_fault_handler(void) {
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGSEGV, &sa, &g_old_segv);
    sigaction(SIGBUS, &sa, &g_old_bus);
}

/* A stack for the fault handler on threads that run kernels (a fiber's stack may be the one
 * that overflowed). Kept for the thread's life. */
void ensure_altstack(void) {
    if (t_altstack) return;
    t_altstack = true;
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE)) return;
    size_t n = 64 << 10;
    void *p = mmap(NULL, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return;
    stack_t ss;
    memset(&ss, 0, sizeof ss);
    ss.ss_sp = p;
    ss.ss_size = n;
    sigaltstack(&ss, NULL);
}

/* ======================================================================================
 * The block scheduler. Each thread of a block is a fiber on its own stack. A phase runs
 * the block from one __syncthreads to the next: warp by warp in the configured order, each
 * warp as far as it can go before the next starts (its lanes in the configured order, each
 * until it exits or reaches a barrier; a warp barrier opens when every live lane its mask
 * names waits at the same warp operation with the same mask), so warps run ahead of one
 * another as a GPU may let them. The block barrier opens when every live thread waits at
 * it. A phase that ends with some thread at neither: a deadlock, reported and aborted. */

enum { F_RUN, F_BLOCK, F_WARP, F_DONE };
enum { OP_SYNCWARP = 1, OP_SHFL, OP_BALLOT };

struct Fiber {
    Ctx ctx;
    char *stack; /* lowest usable byte (a guard page below) */
    uint3 tid;
    int lane, warp, state, op;
    unsigned mask;  /* of the warp operation it waits at */
    unsigned group; /* lanes released together with it from its last warp operation */
#ifdef ELSIM_ASAN
    void *fake_stack;
#endif
};

struct Warp {
    unsigned live;    /* lanes not exited */
    unsigned waiting; /* lanes at a warp operation */
    uint64_t in[32];  /* values offered at the current operation */
    uint64_t out[32]; /* values published when the group was released */
};

struct Block {
    const Cmd *cmd;
    int n, live, at_block, nwarps;
    int bar_in, bar_out; /* __syncthreads_count: arrivals with pred, published at release */
    Warp warps[MAX_THREADS / 32];
    uint64_t rng;
    int cur_warp;          /* the warp running now */
    int lane_order[32];    /* its lanes in this sweep's order */
    int lane_n, lane_pos;  /* lanes in the order; position of the running one */
    Ctx main; /* the scheduler */
#ifdef ELSIM_ASAN
    const void *main_stack;
    size_t main_stack_size;
#endif
};

Fiber g_fibers[MAX_THREADS];
Block g_blk;
int g_nstacks; /* fibers with a stack so far */
size_t g_dyn_cap;

const char *order_name(elsim_order o) {
    return (unsigned)o < 3 ? k_order_names[o] : "reverse";
}

void describe_who(char *buf, size_t cap) {
    const Cmd *c = g_exec;
    Fiber *f = g_cur;
    if (!g_draining || !pthread_equal(pthread_self(), g_drain_thread) || !c) {
        snprintf(buf, cap, "the host");
        return;
    }
    if (c->kind == C_KERNEL && f)
        snprintf(buf, cap, "kernel %s (launched at %s:%d) in block (%u,%u,%u) thread (%u,%u,%u)",
                 c->name, c->file, c->line, blockIdx.x, blockIdx.y, blockIdx.z, f->tid.x,
                 f->tid.y, f->tid.z);
    else if (c->kind == C_HOSTFN)
        snprintf(buf, cap, "the host (a cudaLaunchHostFunc function)");
    else
        snprintf(buf, cap, "a queued copy or memset of %zu bytes", c->count);
}

void ensure_stacks(int n) {
    if (!g_stack_region) {
        g_stack_stride = g_page + round_up(cfg.stack_bytes, g_page);
        void *p = mmap(NULL, g_stack_stride * MAX_THREADS, PROT_NONE,
                       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (p == MAP_FAILED) fatal("cannot map the emulated threads' stacks: %s", strerror(errno));
        g_stack_region = (char *)p;
    }
    for (; g_nstacks < n; g_nstacks++) {
        char *s = g_stack_region + (size_t)g_nstacks * g_stack_stride + g_page;
        if (mprotect(s, g_stack_stride - g_page, PROT_READ | PROT_WRITE) != 0)
            fatal("cannot map an emulated thread's stack: %s", strerror(errno));
        g_fibers[g_nstacks].stack = s;
    }
}

/* The dynamic shared memory buffer: ends at a guard page, so reading or writing past what a
 * launch asked for (rounded up to 16 bytes) faults. */
void ensure_dyn_shared(void) {
    if (g_dyn_guard && g_dyn_cap >= cfg.smem_optin) return;
    size_t cap = round_up(cfg.smem_optin, g_page);
    void *p = mmap(NULL, cap + g_page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) fatal("cannot map dynamic shared memory: %s", strerror(errno));
    if (mprotect((char *)p + cap, g_page, PROT_NONE) != 0)
        fatal("cannot protect dynamic shared memory: %s", strerror(errno));
    g_dyn_guard = (char *)p + cap;
    g_dyn_cap = cap;
}

[[noreturn]] void fiber_main(void);

void fiber_init(Fiber *f) {
    size_t size = g_stack_stride - g_page;
#ifdef ELSIM_ASAN
    /* Frames that returned left no poison; the only frames that never return are each
     * fiber's first ones, at the top of its stack: clear that part for the next block. */
    size_t top = size < ((size_t)32 << 10) ? size : (size_t)32 << 10;
    ASAN_UNPOISON_MEMORY_REGION(f->stack + size - top, top);
    f->fake_stack = NULL;
#endif
#if defined(ELSIM_UCONTEXT)
    getcontext(&f->ctx.uc);
    f->ctx.uc.uc_stack.ss_sp = f->stack;
    f->ctx.uc.uc_stack.ss_size = size;
    f->ctx.uc.uc_link = NULL;
    makecontext(&f->ctx.uc, (void (*)(void))fiber_main, 0);
#elif defined(__x86_64__)
    uint64_t *sp = (uint64_t *)(f->stack + size); /* 16-aligned */
    *--sp = 0;                                /* fiber_main's return address: none */
    *--sp = (uint64_t)(uintptr_t)&fiber_main; /* where the first switch "returns" */
    for (int i = 0; i < 6; i++) *--sp = 0;    /* rbp rbx r12 r13 r14 r15 */
    f->ctx.sp = sp;
#else /* aarch64 */
    uint64_t *sp = (uint64_t *)(f->stack + size - 160);
    memset(sp, 0, 160);
    sp[11] = (uint64_t)(uintptr_t)&fiber_main; /* x30 */
    f->ctx.sp = sp;
#endif
}

inline void ctx_switch(Ctx *from, Ctx *to) {
#ifdef ELSIM_UCONTEXT
    swapcontext(&from->uc, &to->uc);
#else
    elsim_ctx_switch(&from->sp, to->sp);
#endif
}

/* Scheduler -> fiber f, back when it blocks or exits. */
void resume(Fiber *f) {
    g_cur = f;
    threadIdx = f->tid;
#ifdef ELSIM_ASAN
    void *fake = NULL;
    __sanitizer_start_switch_fiber(&fake, f->stack, g_stack_stride - g_page);
    ctx_switch(&g_blk.main, &f->ctx);
    __sanitizer_finish_switch_fiber(fake, NULL, NULL);
#else
    ctx_switch(&g_blk.main, &f->ctx);
#endif
    g_cur = NULL;
}

/* The next runnable lane of the running warp at or after position k of the sweep's order. */
inline Fiber *next_runnable(int k) {
    for (; k < g_blk.lane_n; k++) {
        Fiber *f = &g_fibers[g_blk.cur_warp * 32 + g_blk.lane_order[k]];
        if (f->state == F_RUN) {
            g_blk.lane_pos = k;
            return f;
        }
    }
    return NULL;
}

/* Fiber f blocks or exits (exiting: never resumed): on to the next runnable lane of its warp
 * directly (one switch instead of two), or back to the scheduler. Sanitizer builds always
 * go through the scheduler (the stack bounds they are told must be the scheduler's). */
void yield(Fiber *f, bool exiting) {
#ifndef ELSIM_ASAN
    Fiber *next = next_runnable(g_blk.lane_pos + 1);
    if (next) {
        g_cur = next;
        threadIdx = next->tid;
        ctx_switch(&f->ctx, &next->ctx);
        return;
    }
#endif
#ifdef ELSIM_ASAN
    __sanitizer_start_switch_fiber(exiting ? NULL : &f->fake_stack, g_blk.main_stack,
                                   g_blk.main_stack_size);
    ctx_switch(&f->ctx, &g_blk.main);
    __sanitizer_finish_switch_fiber(f->fake_stack, &g_blk.main_stack, &g_blk.main_stack_size);
#else
    (void)exiting;
    ctx_switch(&f->ctx, &g_blk.main);
#endif
}

[[noreturn]] void fiber_main(void) {
#ifdef ELSIM_ASAN
    __sanitizer_finish_switch_fiber(NULL, &g_blk.main_stack, &g_blk.main_stack_size);
#endif
    Fiber *f = g_cur;
    Cmd *c = (Cmd *)g_blk.cmd;
    c->run(c->args);
    f->state = F_DONE;
    g_blk.live--;
    g_blk.warps[f->warp].live &= ~(1u << f->lane);
    yield(f, true);
    fatal("an exited emulated thread was resumed");
}

/* The running fiber, or a fatal error naming the primitive used outside a kernel. */
inline Fiber *self(const char *what) {
    Fiber *f = g_cur;
    if (!f) fatal("%s called outside a kernel (device code runs only inside a launch)", what);
    return f;
}

void warp_wait(Fiber *f, unsigned mask, int op, const char *what) {
    if (!(mask >> f->lane & 1u))
        fatal("kernel %s (launched at %s:%d), block (%u,%u,%u) thread (%u,%u,%u): %s with mask "
              "0x%08x, which does not include the calling lane %d", g_blk.cmd->name,
              g_blk.cmd->file, g_blk.cmd->line, blockIdx.x, blockIdx.y, blockIdx.z, f->tid.x,
              f->tid.y, f->tid.z, what, mask, f->lane);
    f->mask = mask;
    f->op = op;
    f->state = F_WARP;
    g_blk.warps[f->warp].waiting |= 1u << f->lane;
    yield(f, false);
}

const char *op_name(int op) {
    return op == OP_SHFL ? "__shfl_*_sync" : op == OP_BALLOT ? "a vote (__ballot/__any/__all_sync)"
                                                             : "__syncwarp";
}

/* Opens the warp barriers of warp w that can open; true if any did. */
bool release_warp(int w) {
    bool any = false;
    Warp &W = g_blk.warps[w];
    unsigned pend = W.waiting;
    while (pend) {
        int l = __builtin_ctz(pend);
        const Fiber &f = g_fibers[w * 32 + l];
        unsigned grp = f.mask & W.live;
        pend &= ~grp & ~(1u << l);
        if (grp & ~W.waiting) continue; /* a named live lane has not arrived */
        bool same = true;
        for (unsigned m = grp; m; m &= m - 1) {
            const Fiber &g = g_fibers[w * 32 + __builtin_ctz(m)];
            if (g.mask != f.mask || g.op != f.op) same = false;
        }
        if (!same) continue; /* different masks or operations: a deadlock if nothing moves */
        for (unsigned m = grp; m; m &= m - 1) {
            int k = __builtin_ctz(m);
            Fiber &g = g_fibers[w * 32 + k];
            W.out[k] = W.in[k];
            g.group = grp;
            g.state = F_RUN;
        }
        W.waiting &= ~grp;
        any = true;
    }
    return any;
}

[[noreturn]] void deadlock(void) {
    char buf[1600];
    size_t n = 0;
    const Cmd *c = g_blk.cmd;
    int exited = g_blk.n - g_blk.live;
    n += (size_t)snprintf(buf + n, sizeof buf - n,
                          "deadlock in kernel %s (launched at %s:%d), block (%u,%u,%u) of %u "
                          "threads: %d wait at __syncthreads, %d at warp-level operations, %d "
                          "exited", c->name, c->file, c->line, blockIdx.x, blockIdx.y,
                          blockIdx.z, g_blk.n, g_blk.at_block,
                          g_blk.live - g_blk.at_block, exited);
    int shown = 0;
    for (int w = 0; w < g_blk.nwarps && shown < 4 && n < sizeof buf - 200; w++) {
        const Warp &W = g_blk.warps[w];
        if (!W.waiting) continue;
        const Fiber &f = g_fibers[w * 32 + __builtin_ctz(W.waiting)];
        unsigned named = f.mask & W.live;
        n += (size_t)snprintf(buf + n, sizeof buf - n,
                              "; warp %d: lanes 0x%08x wait at %s with mask 0x%08x, live lanes "
                              "0x%08x, of which 0x%08x are not at a warp operation", w, W.waiting,
                              op_name(f.op), f.mask, W.live, named & ~W.waiting);
        shown++;
    }
    if (g_blk.at_block && n < sizeof buf - 200) {
        for (int t = 0; t < g_blk.n; t++)
            if (g_fibers[t].state == F_BLOCK) {
                n += (size_t)snprintf(buf + n, sizeof buf - n,
                                      "; first thread at __syncthreads: (%u,%u,%u)",
                                      g_fibers[t].tid.x, g_fibers[t].tid.y, g_fibers[t].tid.z);
                break;
            }
    }
    fatal("%s (a real GPU hangs or returns garbage here: every live thread of a block must "
          "reach the same barriers, every live lane a warp primitive's mask names must call "
          "it)", buf);
}

uint64_t rng_next(uint64_t *s) {
    uint64_t x = *s;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *s = x;
    return x * 0x2545F4914F6CDD1Dull;
}

/* order[0..n) = 0..n-1 in the configured order (random: a fresh permutation). */
void fill_order(int *order, int n) {
    for (int i = 0; i < n; i++) order[i] = cfg.order == ELSIM_REVERSE ? n - 1 - i : i;
    if (cfg.order == ELSIM_RANDOM)
        for (int i = n - 1; i > 0; i--) {
            int j = (int)(rng_next(&g_blk.rng) % (uint64_t)(i + 1));
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
}

/* Runs warp w until each of its live lanes exited or waits at __syncthreads (or at a warp
 * operation that cannot open: a deadlock the caller reports). Warps run ahead of each other
 * as far as a GPU may let them: one whole warp before the next. */
void run_warp(int w) {
    g_blk.cur_warp = w;
    g_blk.lane_n = g_blk.n - w * 32 < 32 ? g_blk.n - w * 32 : 32;
    do {
        fill_order(g_blk.lane_order, g_blk.lane_n);
        for (Fiber *f = next_runnable(0); f; f = next_runnable(g_blk.lane_pos + 1)) resume(f);
    } while (release_warp(w));
}

void run_block(const Cmd *c) {
    int n = (int)(c->block.x * c->block.y * c->block.z);
    g_blk.n = g_blk.live = n;
    g_blk.at_block = 0;
    g_blk.bar_in = g_blk.bar_out = 0;
    g_blk.nwarps = (n + 31) / 32;
    for (int w = 0; w < g_blk.nwarps; w++) {
        int lanes = n - w * 32 < 32 ? n - w * 32 : 32;
        g_blk.warps[w].live = lanes == 32 ? 0xffffffffu : (1u << lanes) - 1u;
        g_blk.warps[w].waiting = 0;
    }
    for (int t = 0; t < n; t++) {
        Fiber &f = g_fibers[t];
        f.tid.x = (unsigned)t % c->block.x;
        f.tid.y = (unsigned)t / c->block.x % c->block.y;
        f.tid.z = (unsigned)t / (c->block.x * c->block.y);
        f.lane = t & 31;
        f.warp = t >> 5;
        f.state = F_RUN;
        f.group = 0;
        fiber_init(&f);
    }
    if (cfg.poison && c->shmem) memset(g_dyn_ptr, 0xff, c->shmem); /* stale, like a GPU's */
    int worder[MAX_THREADS / 32];
    for (;;) { /* one phase: from one __syncthreads to the next */
        fill_order(worder, g_blk.nwarps);
        for (int k = 0; k < g_blk.nwarps; k++) run_warp(worder[k]);
        if (g_blk.live == 0) return;
        if (g_blk.at_block != g_blk.live) deadlock();
        for (int t = 0; t < n; t++)
            if (g_fibers[t].state == F_BLOCK) g_fibers[t].state = F_RUN;
        g_blk.at_block = 0;
        g_blk.bar_out = g_blk.bar_in;
        g_blk.bar_in = 0;
    }
}

void run_kernel(const Cmd *c) {
    int n = (int)(c->block.x * c->block.y * c->block.z);
    ensure_stacks(n);
    ensure_dyn_shared();
    g_dyn_ptr = g_dyn_guard - round_up(c->shmem, 16);
    g_blk.cmd = c;
    g_blk.rng = cfg.seed * 0x9E3779B97F4A7C15ull + c->seq;
    if (!g_blk.rng) g_blk.rng = 1;
    gridDim = c->grid;
    blockDim = c->block;
    for (unsigned z = 0; z < c->grid.z; z++)
        for (unsigned y = 0; y < c->grid.y; y++)
            for (unsigned x = 0; x < c->grid.x; x++) {
                blockIdx.x = x;
                blockIdx.y = y;
                blockIdx.z = z;
                run_block(c);
                g_stats.blocks_run++;
            }
    g_blk.cmd = NULL;
}

/* ======================================================================================
 * The queue. Operations run at synchronisation points only. Under ELSIM_STREAM_ORDER=submit
 * a point runs everything queued before it in submission order (which respects each
 * stream's order and every event wait); under the reordering modes it runs only what it
 * waits for and that work's dependencies (cudasim.h), each once its own have run, in the
 * order the mode picks. Seq s sits at ring position s - 1; [g_head, g_tail) are queued,
 * g_head the oldest not run (out of order, later ones may have run: done). */

Cmd *cmd_new(CUstream_st *st, int kind);
void exec(Cmd *c);

/* Graph node ranges of g_pool (graphs and executable graphs alike). */
struct NodeRange {
    int live, first, count;
};
NodeRange g_graph_tab[MAX_GRAPHS], g_exec_tab[MAX_GRAPHS];

uint64_t g_stream_rng = 1;  /* ELSIM_STREAM_ORDER=shuffle's generator */
uint64_t g_ready[RING];     /* run_marked's candidates (positions) */

inline Cmd *ring_at(uint64_t pos) { return &g_ring[pos % RING]; }

/* Has operation seq run (0: none; older than the queue: it has)? */
bool seq_done(uint64_t seq) { return seq == 0 || seq - 1 < g_head || ring_at(seq - 1)->done; }

/* A stream that synchronises implicitly with the legacy (NULL) stream. */
bool blocking(const CUstream_st *st) {
    return st != &g_streams[0] && !(st->flags & cudaStreamNonBlocking);
}

/* May c run: its stream's previous operation, the record it waits for and the legacy
 * stream's earlier work have run, and (c on the legacy stream) no older operation of a
 * blocking stream is queued (oldest_blocking: the oldest one's seq)? */
bool cmd_ready(const Cmd *c, uint64_t oldest_blocking) {
    return seq_done(c->dep_stream) && seq_done(c->dep_event) && seq_done(c->dep_legacy) &&
           (!c->barrier || oldest_blocking > c->seq);
}

/* Runs the operation at pos (it is ready), then moves the head past what has run. */
void exec_at(uint64_t pos) {
    Cmd *c = ring_at(pos);
    if (pos != g_head) g_stats.ops_reordered++;
    exec(c);
    c->done = true;
    c->mark = false;
    c->st->pending_ops--;
    while (g_head != g_tail && ring_at(g_head)->done) g_head++;
}

/* Queued work runs on this thread with the host's protections lifted (the fault handler
 * names what ran); the host's come back after. */
void drain_begin(void) {
    ensure_altstack();
    g_drain_thread = pthread_self();
    g_draining = true;
}

void drain_end(void) {
    g_exec = NULL;
    g_draining = false;
    set_mode(MODE_HOST, NULL);
}

/* Marks the queued dependencies of the marked operations, transitively (dependencies are
 * older: one pass from the newest); returns how many are marked. */
int mark_deps(void) {
    int n = 0;
    uint64_t barrier = 0; /* the newest marked legacy-stream op: older blocking ones first */
    for (uint64_t pos = g_tail; pos-- > g_head;) {
        Cmd *c = ring_at(pos);
        if (c->done) continue;
        if (c->seq < barrier && blocking(c->st)) c->mark = true;
        if (!c->mark) continue;
        n++;
        const uint64_t deps[3] = {c->dep_stream, c->dep_event, c->dep_legacy};
        for (uint64_t d : deps)
            if (!seq_done(d)) ring_at(d - 1)->mark = true;
        if (c->barrier && !barrier) barrier = c->seq;
    }
    return n;
}

/* Runs the n marked operations, each once it is ready (then it is its stream's oldest
 * queued one): in submission order (submit, fifo: the oldest marked one is always ready,
 * its dependencies being older and marked); lifo: the stream that ran last as far as it
 * can, then the newest ready operation's stream; shuffle: a random ready one each time. */
void run_marked(int n) {
    const bool shuffle = cfg.stream_order == ELSIM_STREAMS_SHUFFLE;
    const CUstream_st *cur = NULL; /* lifo: the stream running */
    for (; n > 0; n--) {
        if (cfg.stream_order == ELSIM_STREAMS_SUBMIT || cfg.stream_order == ELSIM_STREAMS_FIFO) {
            uint64_t pos = g_head;
            while (ring_at(pos)->done || !ring_at(pos)->mark) pos++;
            exec_at(pos);
            continue;
        }
        uint64_t oldest_blocking = UINT64_MAX;
        for (uint64_t pos = g_head; pos < g_tail; pos++)
            if (!ring_at(pos)->done && blocking(ring_at(pos)->st)) {
                oldest_blocking = ring_at(pos)->seq;
                break;
            }
        int k = 0;
        for (uint64_t pos = g_tail; pos-- > g_head;) {
            const Cmd *c = ring_at(pos);
            if (c->done || !c->mark || !cmd_ready(c, oldest_blocking)) continue;
            if (!shuffle && c->st == cur) { /* lifo: the running stream goes on */
                g_ready[0] = pos;
                k = 1;
                break;
            }
            if (shuffle || k == 0) g_ready[k++] = pos;
        }
        if (k == 0) fatal("no marked queued operation is ready (a dependency cycle: a bug)");
        const uint64_t pick = g_ready[shuffle ? rng_next(&g_stream_rng) % (uint64_t)k : 0];
        cur = ring_at(pick)->st;
        exec_at(pick);
    }
}

/* What a synchronisation waits for: operation seq (and the work before it), everything
 * queued, or what the legacy stream waits for (its own and the blocking streams' work). */
enum { WAIT_OP, WAIT_ALL, WAIT_LEGACY };

/* Does a synchronisation waiting for `what` name queued operation c itself (submit: all
 * older work too)? */
bool wanted(const Cmd *c, int what, uint64_t seq) {
    if (c->done) return false;
    if (cfg.stream_order == ELSIM_STREAMS_SUBMIT) return what != WAIT_OP || c->seq <= seq;
    if (what == WAIT_OP) return c->seq == seq;
    return what == WAIT_ALL || c->st == &g_streams[0] || blocking(c->st);
}

/* Runs what a synchronisation waits for: the operations it names and their dependencies,
 * nothing else. */
void drain(int what, uint64_t seq) {
    if (g_head == g_tail || (what == WAIT_OP && seq_done(seq))) return;
    for (uint64_t pos = g_head; pos < g_tail; pos++)
        ring_at(pos)->mark = wanted(ring_at(pos), what, seq);
    const int n = mark_deps();
    if (n == 0) return;
    g_stats.syncs++;
    drain_begin();
    run_marked(n);
    drain_end();
}

void drain_to(uint64_t seq) { drain(WAIT_OP, seq); }
void drain_all(void) { drain(WAIT_ALL, 0); }

/* cudaStreamSynchronize / cudaStreamQuery of st; the legacy stream's waits for the blocking
 * streams too, except under submit (everything up to its own last operation, as always). */
void drain_stream(const CUstream_st *st) {
    if (st == &g_streams[0] && cfg.stream_order != ELSIM_STREAMS_SUBMIT) drain(WAIT_LEGACY, 0);
    else drain_to(st->last_seq);
}

Cmd *cmd_new(CUstream_st *st, int kind) {
    if (g_cap.st && st == g_cap.st) { /* recorded, not queued (seq 0) */
        Cmd *c = g_cap.count < CAPTURE_MAX ? new (cap_node(g_cap.count)) Cmd : &g_cap_overflow;
        if (c == &g_cap_overflow && !g_cap.invalid) {
            g_cap.invalid = true;
            snprintf(g_cap.why, sizeof g_cap.why, "more than %d operations captured (the "
                     "emulator's limit per graph)", CAPTURE_MAX);
        }
        c->kind = kind;
        c->seq = 0;
        c->st = st;
        c->dep_event = 0;
        return c;
    }
    if (g_tail - g_head == (uint64_t)RING) { /* full: the device catches up by one */
        drain_begin();
        exec_at(g_head);
        drain_end();
    }
    Cmd *c = ring_at(g_tail);
    c->kind = kind;
    c->seq = ++g_seq; /* = g_tail + 1: every cmd_new is pushed before the next */
    c->st = st;
    c->dep_event = 0;
    c->done = c->mark = false;
    return c;
}

void cmd_push(Cmd *c) {
    if (c->seq == 0) { /* a captured node */
        if (c != &g_cap_overflow) g_cap.count++;
        return;
    }
    g_tail++;
    c->dep_stream = c->st->last_seq;
    c->dep_legacy = blocking(c->st) ? g_streams[0].last_seq : 0;
    c->barrier = c->st == &g_streams[0];
    c->st->last_seq = c->seq;
    c->st->pending_ops++;
    if (c->kind == C_KERNEL) {
        g_pending_kernels++;
        c->st->pending_kernels++;
    }
    if (!cfg.concurrent_managed) set_mode(MODE_HOST, NULL); /* managed memory off-limits */
}

void copy_2d(const Cmd *c) {
    for (size_t r = 0; r < c->height; r++)
        memcpy((char *)c->dst + r * c->dpitch, (const char *)c->src + r * c->spitch, c->width);
}

/* Fault injection (ELSIM_FAIL_LAUNCH / ELSIM_FAULT_KERNEL): launches and kernel runs seen
 * since the configuration was read, and a fault the next synchronisation reports. */
long g_launches_seen, g_kernels_seen;
bool g_fault_pending;

/* What a synchronisation returns after draining: the injected fault once, else success. */
cudaError_t take_fault(const char *api) {
    if (!g_fault_pending) return cudaSuccess;
    g_fault_pending = false;
    return fail(cudaErrorIllegalAddress, "%s: kernel run %ld faulted on purpose "
                "(ELSIM_FAULT_KERNEL=%ld)", api, cfg.fault_kernel, cfg.fault_kernel);
}

void exec(Cmd *c) {
    g_exec = c;
    switch (c->kind) {
    case C_KERNEL:
        set_mode(MODE_KERNEL, c->st);
        if (cfg.fault_kernel && ++g_kernels_seen == cfg.fault_kernel)
            g_fault_pending = true; /* the kernel does not run; the next sync reports it */
        else
            run_kernel(c);
        c->destroy(c->args);
        g_pending_kernels--;
        c->st->pending_kernels--;
        g_stats.kernels_run++;
        break;
    case C_COPY:
        set_mode(MODE_COPY, NULL);
        memcpy(c->dst, c->src, c->count);
        g_stats.memcpys++;
        break;
    case C_COPY2D:
        set_mode(MODE_COPY, NULL);
        copy_2d(c);
        g_stats.memcpys++;
        break;
    case C_SET:
        set_mode(MODE_COPY, NULL);
        memset(c->dst, c->value, c->count);
        g_stats.memsets++;
        break;
    case C_EVENT:
        if (c->seq > c->ev->done_seq) {
            c->ev->done_seq = c->seq;
            c->ev->t_ms = now_ms();
        }
        break;
    case C_HOSTFN:
        set_mode(MODE_HOST, NULL);
        t_in_hostfn = true;
        c->hostfn(c->user);
        t_in_hostfn = false;
        break;
    case C_ATTACH:
        c->alloc->attach = c->flags;
        c->alloc->attach_st = c->st;
        if (c->alloc->attach_q_seq == c->seq) c->alloc->attach_q_seq = 0; /* the latest ran */
        break;
    default:
        break;
    }
}

/* ======================================================================================
 * Runtime plumbing: init, the lock, handles, allocation lookup. */

void init_once(void) {
    long pg = sysconf(_SC_PAGESIZE);
    g_page = pg > 0 ? (size_t)pg : 4096;
    config_read();
    g_stream_rng = cfg.stream_seed;
    g_streams[0].live = 1;
    install_fault_handler();
}

struct Lock {
    Lock() { pthread_mutex_lock(&g_lock); }
    ~Lock() { pthread_mutex_unlock(&g_lock); }
    Lock(const Lock &) = delete;
    Lock &operator=(const Lock &) = delete;
};

/* Checks that the runtime may be called at all (driver, devices, context). */
cudaError_t ready(const char *api) {
    pthread_once(&g_once, init_once);
    if (g_draining && pthread_equal(pthread_self(), g_drain_thread) && !t_in_hostfn)
        fatal("%s called from inside a kernel", api);
    if (t_in_hostfn)
        return fail(cudaErrorNotPermitted, "%s called from a cudaLaunchHostFunc function: "
                    "CUDA calls are not allowed there", api);
    if (cfg.no_driver)
        return fail(cudaErrorInsufficientDriver, "%s: no NVIDIA driver (ELSIM_NO_DRIVER=1)", api);
    if (cfg.devices == 0)
        return fail(cudaErrorNoDevice, "%s: no CUDA device (ELSIM_DEVICES=0)", api);
    return cudaSuccess;
}

#define ENTER(api)                                                                          \
    do {                                                                                    \
        cudaError_t e_ = ready(api);                                                        \
        if (e_ != cudaSuccess) return e_;                                                   \
    } while (0);                                                                            \
    Lock lock_

cudaError_t get_stream(cudaStream_t s, CUstream_st **out, const char *api) {
    if (s == NULL || s == cudaStreamLegacy || s == cudaStreamPerThread) {
        *out = &g_streams[0];
        return cudaSuccess;
    }
    uintptr_t p = (uintptr_t)s, lo = (uintptr_t)&g_streams[1],
              hi = (uintptr_t)&g_streams[MAX_STREAMS + 1];
    if (p < lo || p >= hi || (p - lo) % sizeof(CUstream_st) || !s->live)
        return fail(cudaErrorInvalidResourceHandle, "%s: stream %p is not a live stream "
                    "(destroyed, or never created by cudaStreamCreate)", api, (void *)s);
    *out = s;
    return cudaSuccess;
}

cudaError_t get_event(cudaEvent_t e, const char *api) {
    uintptr_t p = (uintptr_t)e, lo = (uintptr_t)&g_events[0],
              hi = (uintptr_t)&g_events[MAX_EVENTS];
    if (p < lo || p >= hi || (p - lo) % sizeof(Event) || !e->live)
        return fail(cudaErrorInvalidResourceHandle, "%s: event %p is not a live event "
                    "(destroyed, or never created by cudaEventCreate)", api, (void *)e);
    return cudaSuccess;
}

/* The live block holding byte p (any kind), or NULL. */
Alloc *find(const void *p) {
    const char *c = (const char *)p;
    for (int i = 0; i < g_nallocs; i++) {
        Alloc &a = g_allocs[i];
        if (a.kind && c >= a.ptr && c < a.ptr + a.size) return &a;
    }
    return NULL;
}

bool device_side(const Alloc *a) { return a && (a->kind == K_DEVICE || a->kind == K_MANAGED); }

/* ---- stream capture: what real CUDA refuses while a stream captures ---- */

/* Invalidates the capture and fails with cudaErrorStreamCaptureUnsupported. */
__attribute__((format(printf, 1, 2))) cudaError_t capture_refuse(const char *fmt, ...) {
    char buf[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (!g_cap.invalid) {
        g_cap.invalid = true;
        snprintf(g_cap.why, sizeof g_cap.why, "%s", buf);
    }
    return fail(cudaErrorStreamCaptureUnsupported, "%s (stream %p is capturing: the capture is "
                "invalidated)", buf, (void *)g_cap.st);
}

/* A call that synchronises or allocates: refused while a stream captures in global mode
 * (any thread), or in thread-local mode on the capturing thread; relaxed mode allows it. */
cudaError_t capture_forbids(const char *api) {
    if (!g_cap.st || g_cap.mode == cudaStreamCaptureModeRelaxed) return cudaSuccess;
    if (g_cap.mode == cudaStreamCaptureModeThreadLocal &&
        !pthread_equal(pthread_self(), g_cap.thread))
        return cudaSuccess;
    return capture_refuse("%s during a stream capture (%s mode)", api,
                          g_cap.mode == cudaStreamCaptureModeGlobal ? "global" : "thread-local");
}

/* Synchronising with or querying st (NULL: the legacy stream, which waits for all). */
cudaError_t capture_forbids_sync(const CUstream_st *st, const char *api) {
    if (!g_cap.st || (st != g_cap.st && st != &g_streams[0])) return cudaSuccess;
    return capture_refuse("%s of a capturing stream", api);
}

/* Work queued on st: on the capturing stream only kernels, copies between device or pinned
 * memory and sets are recorded (a pageable host copy is refused: it is synchronous with
 * respect to the host); events, host functions, attachments and prefetches are not
 * emulated in a capture and refused too. */
cudaError_t capture_allows(const CUstream_st *st, int kind, const void *dst, const void *src,
                           const char *api) {
    if (!g_cap.st || st != g_cap.st) return cudaSuccess;
    if (g_cap.invalid)
        return fail(cudaErrorStreamCaptureInvalidated, "%s on stream %p, whose capture was "
                    "invalidated: %s", api, (void *)st, g_cap.why);
    if (kind == C_COPY || kind == C_COPY2D) {
        if (!find(dst) || !find(src))
            return capture_refuse("%s from or to pageable host memory %p in a capture (only "
                                  "device, managed and pinned memory can be graph copies)",
                                  api, !find(dst) ? dst : src);
        return cudaSuccess;
    }
    if (kind == C_KERNEL || kind == C_SET) return cudaSuccess;
    return capture_refuse("%s in a capture (not emulated: only kernels, copies and sets)", api);
}

const char *copy_kind_name(int k) {
    static const char *const names[] = {"cudaMemcpyHostToHost", "cudaMemcpyHostToDevice",
                                        "cudaMemcpyDeviceToHost", "cudaMemcpyDeviceToDevice",
                                        "cudaMemcpyDefault"};
    return k >= 0 && k <= 4 ? names[k] : "an unknown direction";
}

/* The range [p, p + span) against the block holding p: NULL when fine, else an explanation. */
cudaError_t check_range(const void *p, size_t span, const char *what, const char *api) {
    const Alloc *a = find(p);
    if (a && (const char *)p + span > a->ptr + a->size)
        return fail(cudaErrorInvalidValue, "%s: %s %p + %zu bytes overruns its %zu-byte %s block "
                    "at %p by %zu bytes", api, what, p, span, a->size, kind_name(a->kind),
                    (void *)a->ptr, (size_t)((const char *)p + span - (a->ptr + a->size)));
    return cudaSuccess;
}

/* Validates a copy of `span` bytes per side (2D: (height-1)*pitch + width). */
cudaError_t check_copy(void *dst, size_t dspan, const void *src, size_t sspan,
                       enum cudaMemcpyKind kind, const char *api) {
    if ((int)kind < 0 || (int)kind > 4)
        return fail(cudaErrorInvalidMemcpyDirection, "%s: copy direction %d", api, (int)kind);
    if (!dst || !src)
        return fail(cudaErrorInvalidValue, "%s: NULL %s", api, !dst ? "destination" : "source");
    const Alloc *d = find(dst), *s = find(src);
    bool need_dev_dst = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyDeviceToDevice;
    bool need_dev_src = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyDeviceToDevice;
    bool need_host_dst = kind == cudaMemcpyDeviceToHost || kind == cudaMemcpyHostToHost;
    bool need_host_src = kind == cudaMemcpyHostToDevice || kind == cudaMemcpyHostToHost;
    if (need_dev_dst && !device_side(d))
        return fail(cudaErrorInvalidValue, "%s(%s): destination %p is not device memory "
                    "(cudaMalloc / cudaMallocManaged)%s", api, copy_kind_name(kind), dst,
                    d ? " but pinned host memory" : "");
    if (need_dev_src && !device_side(s))
        return fail(cudaErrorInvalidValue, "%s(%s): source %p is not device memory "
                    "(cudaMalloc / cudaMallocManaged)%s", api, copy_kind_name(kind), src,
                    s ? " but pinned host memory" : "");
    if (need_host_dst && d && d->kind == K_DEVICE)
        return fail(cudaErrorInvalidValue, "%s(%s): destination %p is device memory", api,
                    copy_kind_name(kind), dst);
    if (need_host_src && s && s->kind == K_DEVICE)
        return fail(cudaErrorInvalidValue, "%s(%s): source %p is device memory", api,
                    copy_kind_name(kind), src);
    cudaError_t e = check_range(dst, dspan, "destination", api);
    if (e == cudaSuccess) e = check_range(src, sspan, "source", api);
    return e;
}

/* Maps a block: data pages (poisoned with 0xff) then a guard page. Device blocks end at
 * the guard (256-byte aligned, as cudaMalloc guarantees no more); managed and host blocks
 * start page-aligned (the loader reads files into them with O_DIRECT). */
cudaError_t map_block(int kind, size_t size, unsigned attach, void **out, const char *api) {
    if (!out) return fail(cudaErrorInvalidValue, "%s: NULL result pointer", api);
    *out = NULL;
    if (size == 0) return cudaSuccess;
    if (size > ((size_t)1 << 46))
        return fail(cudaErrorMemoryAllocation, "%s of %zu bytes: more than the emulator maps",
                    api, size);
    int dev = t_device;
    if (kind == K_DEVICE || kind == K_MANAGED) {
        uint64_t live = g_dev_live[dev];
        if (size > cfg.mem_bytes - live)
            return fail(cudaErrorMemoryAllocation, "%s of %zu bytes: the emulated device has "
                        "%llu of %llu bytes free (ELSIM_MEM_MB)", api, size,
                        (unsigned long long)(cfg.mem_bytes - live),
                        (unsigned long long)cfg.mem_bytes);
    }
    int slot = -1;
    for (int i = 0; i < g_nallocs; i++)
        if (!g_allocs[i].kind) {
            slot = i;
            break;
        }
    if (slot < 0) {
        if (g_nallocs == MAX_ALLOCS)
            return fail(cudaErrorMemoryAllocation, "%s: more than %d live blocks", api, MAX_ALLOCS);
        slot = g_nallocs++;
    }
    size_t al = round_up(size, 256), data_len = round_up(al, g_page);
    void *p = mmap(NULL, data_len + g_page, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED)
        return fail(cudaErrorMemoryAllocation, "%s of %zu bytes: mmap: %s", api, size,
                    strerror(errno));
    Alloc &a = g_allocs[slot];
    a.base = a.data = (char *)p;
    a.data_len = data_len;
    a.map_len = data_len + g_page;
    a.ptr = kind == K_DEVICE ? a.base + data_len - al : a.base;
    a.size = size;
    a.device = dev;
    a.attach = a.attach0 = attach;
    a.attach_st = &g_streams[0];
    a.attach_q_seq = 0;
    a.prot = PROT_READ | PROT_WRITE;
    if (mprotect(a.base + data_len, g_page, PROT_NONE) != 0) {
        munmap(p, a.map_len);
        return fail(cudaErrorMemoryAllocation, "%s: guard page: %s", api, strerror(errno));
    }
    if (cfg.poison) memset(a.data, 0xff, data_len); /* no promise of zeros: NaN / -1 */
    a.kind = kind;
    protect(a, want_prot(a, g_mode, NULL));
    if (kind == K_DEVICE || kind == K_MANAGED) {
        g_dev_live[dev] += size;
        uint64_t all = 0;
        for (int d = 0; d < cfg.devices; d++) all += g_dev_live[d];
        if (all > g_stats.device_bytes_peak) g_stats.device_bytes_peak = all;
    }
    if (kind == K_DEVICE) g_stats.device_bytes += size;
    if (kind == K_MANAGED) g_stats.managed_bytes += size;
    if (kind == K_HOST) g_stats.host_bytes += size;
    *out = a.ptr;
    return cudaSuccess;
}

void unmap_block(Alloc &a) {
    if (a.kind == K_DEVICE || a.kind == K_MANAGED) g_dev_live[a.device] -= a.size;
    if (a.kind == K_DEVICE) g_stats.device_bytes -= a.size;
    if (a.kind == K_MANAGED) g_stats.managed_bytes -= a.size;
    if (a.kind == K_HOST) g_stats.host_bytes -= a.size;
    if (a.kind != K_REGISTERED) {
        munmap(a.base, a.map_len);
        FreedBlock &f = g_freed[g_nfreed++ % FREED_RING];
        f.ptr = a.ptr;
        f.size = a.size;
        f.kind = a.kind;
    }
    memset(&a, 0, sizeof a);
}

cudaError_t free_block(void *p, bool host, const char *api) {
    if (!p) return cudaSuccess;
    drain_all(); /* frees wait for the device */
    for (int i = 0; i < g_nallocs; i++) {
        Alloc &a = g_allocs[i];
        if (!a.kind || a.ptr != p) continue;
        bool ok = host ? a.kind == K_HOST : (a.kind == K_DEVICE || a.kind == K_MANAGED);
        if (!ok)
            return fail(cudaErrorInvalidValue, "%s(%p): a %s block: free it with %s", api, p,
                        kind_name(a.kind), a.kind == K_HOST ? "cudaFreeHost"
                        : a.kind == K_REGISTERED ? "cudaHostUnregister" : "cudaFree");
        unmap_block(a);
        g_stats.free_calls++;
        return cudaSuccess;
    }
    const Alloc *in = find(p);
    if (in)
        return fail(cudaErrorInvalidValue, "%s(%p): not the start of a block (it lies %zu bytes "
                    "into a %zu-byte %s block at %p)", api, p, (size_t)((char *)p - in->ptr),
                    in->size, kind_name(in->kind), (void *)in->ptr);
    return fail(cudaErrorInvalidValue, "%s(%p): not a live %s block (freed already, or never "
                "allocated)", api, p, host ? "cudaHostAlloc / cudaMallocHost"
                                           : "cudaMalloc / cudaMallocManaged");
}

void reset_all(void) {
    drain_all();
    for (int i = 0; i < g_nallocs; i++)
        if (g_allocs[i].kind) unmap_block(g_allocs[i]);
    g_nallocs = 0;
    for (int i = 1; i <= MAX_STREAMS; i++) memset(&g_streams[i], 0, sizeof g_streams[i]);
    for (int i = 0; i < MAX_EVENTS; i++) memset(&g_events[i], 0, sizeof g_events[i]);
    memset(g_funcs, 0, sizeof g_funcs);
    memset(g_dev_live, 0, sizeof g_dev_live);
    g_pending_kernels = 0;
    g_streams[0].pending_kernels = 0;
    g_streams[0].pending_ops = 0;
    memset(&g_cap, 0, sizeof g_cap);
    memset(g_graph_tab, 0, sizeof g_graph_tab);
    memset(g_exec_tab, 0, sizeof g_exec_tab);
}

int func_limit(const void *fn) {
    for (const Func &f : g_funcs)
        if (f.fn == fn) return f.max_dyn_shared;
    return 48 * 1024;
}

} // namespace

/* ======================================================================================
 * The device-side entry points (cuda_runtime.h). */

extern "C" void elsim_syncthreads(void) {
    Fiber *f = self("__syncthreads");
    f->state = F_BLOCK;
    g_blk.at_block++;
    yield(f, false);
}

extern "C" int elsim_syncthreads_count(int pred) {
    Fiber *f = self("__syncthreads_count/and/or");
    g_blk.bar_in += pred != 0;
    f->state = F_BLOCK;
    g_blk.at_block++;
    yield(f, false);
    return g_blk.bar_out;
}

extern "C" void elsim_syncwarp(unsigned mask) {
    Fiber *f = self("__syncwarp");
    warp_wait(f, mask, OP_SYNCWARP, "__syncwarp");
}

extern "C" uint64_t elsim_shfl(unsigned mask, uint64_t v, int mode, int arg, int width) {
    Fiber *f = self("__shfl_*_sync");
    if (width < 1 || width > 32 || (width & (width - 1)))
        fatal("kernel %s (launched at %s:%d): a shuffle with width %d (a power of two up to 32)",
              g_blk.cmd->name, g_blk.cmd->file, g_blk.cmd->line, width);
    Warp &W = g_blk.warps[f->warp];
    W.in[f->lane] = v;
    warp_wait(f, mask, OP_SHFL, "__shfl_*_sync");
    int lane = f->lane, seg = lane & ~(width - 1), pos = lane - seg, src = lane;
    switch (mode) {
    case 0: src = seg + (arg & (width - 1)); break;             /* idx */
    case 1: if (arg >= 0 && pos >= arg) src = lane - arg; break; /* up */
    case 2: if (arg >= 0 && pos + arg < width) src = lane + arg; break; /* down */
    default: /* xor: earlier segments may be read, later ones give the caller's own value */
        src = lane ^ arg;
        if (src < 0 || src >= seg + width) src = lane;
        break;
    }
    /* A source lane outside this exchange (not in the mask, or exited): undefined on a GPU;
     * here all ones (NaN as float, -1 as int) so it shows. */
    if (!(f->group >> src & 1u)) return ~(uint64_t)0;
    return W.out[src];
}

extern "C" unsigned elsim_ballot(unsigned mask, int pred) {
    Fiber *f = self("__ballot_sync/__any_sync/__all_sync");
    Warp &W = g_blk.warps[f->warp];
    W.in[f->lane] = pred != 0;
    warp_wait(f, mask, OP_BALLOT, "a warp vote");
    unsigned r = 0;
    for (unsigned m = f->group; m; m &= m - 1) {
        int k = __builtin_ctz(m);
        if (W.out[k]) r |= 1u << k;
    }
    return r;
}

extern "C" unsigned elsim_activemask(void) {
    Fiber *f = self("__activemask");
    return g_blk.warps[f->warp].live;
}

extern "C" void *elsim_dyn_shared(void) {
    (void)self("dynamic shared memory (EL_DYN_SHARED)");
    return g_dyn_ptr;
}

extern "C" void elsim_trap(const char *what) {
    const Cmd *c = g_blk.cmd;
    Fiber *f = g_cur;
    if (c && f)
        fatal("%s: kernel %s (launched at %s:%d), block (%u,%u,%u) thread (%u,%u,%u)", what,
              c->name, c->file, c->line, blockIdx.x, blockIdx.y, blockIdx.z, f->tid.x, f->tid.y,
              f->tid.z);
    fatal("%s", what);
}

extern "C" long long elsim_clock64(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* ---- EL_LAUNCH ---- */

void *elsim::launch_begin(const void *fn, const char *name, const char *file, int line,
                          dim3 grid, dim3 block, size_t shmem, cudaStream_t stream, size_t size) {
    (void)size; /* checked against ELSIM_ARG_BYTES at compile time */
    if (ready("kernel launch") != cudaSuccess) {
        Lock lock;
        g_stats.launch_errors++;
        return NULL;
    }
    pthread_mutex_lock(&g_lock);
    CUstream_st *st = NULL;
    cudaError_t e = get_stream(stream, &st, "kernel launch");
    unsigned long long threads = (unsigned long long)block.x * block.y * block.z;
    if (e != cudaSuccess) {
    } else if (!block.x || !block.y || !block.z || block.x > 1024 || block.y > 1024 ||
               block.z > 64 || threads > 1024) {
        e = fail(cudaErrorInvalidConfiguration, "launch of %s at %s:%d: block (%u,%u,%u) = %llu "
                 "threads; a block has at most 1024 threads (x, y <= 1024, z <= 64)", name, file,
                 line, block.x, block.y, block.z, threads);
    } else if (!grid.x || !grid.y || !grid.z || grid.x > 2147483647u || grid.y > 65535u ||
               grid.z > 65535u) {
        e = fail(cudaErrorInvalidConfiguration, "launch of %s at %s:%d: grid (%u,%u,%u); each "
                 "dimension is at least 1, x at most 2^31-1, y and z at most 65535", name, file,
                 line, grid.x, grid.y, grid.z);
    } else if (shmem > (size_t)func_limit(fn)) {
        e = fail(cudaErrorInvalidValue, "launch of %s at %s:%d asks for %zu bytes of dynamic "
                 "shared memory; this kernel may use %d (48 KiB unless raised with "
                 "cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, n), "
                 "up to %zu on sm_%d%d)", name, file, line, shmem, func_limit(fn),
                 cfg.smem_optin, cfg.cc_major, cfg.cc_minor);
    }
    if (e == cudaSuccess && !has_kernel_image())
        e = fail(cudaErrorNoKernelImageForDevice, "launch of %s at %s:%d: no kernel image for "
                 "sm_%d%d (ELSIM_KERNEL_ARCHS=%s)", name, file, line, cfg.cc_major,
                 cfg.cc_minor, cfg.kernel_archs);
    if (e == cudaSuccess && cfg.fail_launch && ++g_launches_seen == cfg.fail_launch)
        e = fail(cudaErrorLaunchOutOfResources, "launch of %s at %s:%d refused on purpose "
                 "(ELSIM_FAIL_LAUNCH=%ld)", name, file, line, cfg.fail_launch);
    if (e != cudaSuccess) {
        if (st && st == g_cap.st && !g_cap.invalid) { /* an error in a capture ends it */
            g_cap.invalid = true;
            snprintf(g_cap.why, sizeof g_cap.why, "a launch of %s was refused", name);
        }
        g_stats.launch_errors++;
        pthread_mutex_unlock(&g_lock);
        return NULL;
    }
    if (e == cudaSuccess && (e = capture_allows(st, C_KERNEL, NULL, NULL, "kernel launch")) != cudaSuccess) {
        g_stats.launch_errors++;
        pthread_mutex_unlock(&g_lock);
        return NULL;
    }
    Cmd *c = cmd_new(st, C_KERNEL);
    c->fn = fn;
    c->name = name;
    c->file = file;
    c->line = line;
    c->grid = grid;
    c->block = block;
    c->shmem = shmem;
    g_reserved = c;
    return c->args; /* the lock stays held until launch_commit */
}

void elsim::launch_check_pointer(int i, const void *p) {
    if (!p || !cfg.check_args) return;
    const char *c = (const char *)p;
    for (int k = 0; k < g_nallocs; k++) {
        const Alloc &a = g_allocs[k];
        if (a.kind && c >= a.ptr && c <= a.ptr + a.size) return; /* one past the end too */
    }
    const char *why = "it is host memory the device cannot reach (pageableMemoryAccess is 0: "
                      "only cudaMalloc, cudaMallocManaged and pinned host memory are reachable)";
    for (unsigned k = 0; k < FREED_RING && k < g_nfreed; k++)
        if (c >= g_freed[k].ptr && c < g_freed[k].ptr + g_freed[k].size)
            why = "it lies in a block that was freed";
    const Cmd *r = g_reserved;
    fatal("kernel %s launched at %s:%d with argument %d = %p: %s; a GPU faults when the kernel "
          "uses it (ELSIM_CHECK_ARGS=0 turns this check off)", r->name, r->file, r->line, i, p,
          why);
}

void elsim::launch_commit(void (*run)(void *), void (*destroy)(void *)) {
    Cmd *c = g_reserved;
    g_reserved = NULL;
    c->run = run;
    c->destroy = destroy;
    cmd_push(c);
    g_stats.launches++;
    pthread_mutex_unlock(&g_lock);
}

/* ======================================================================================
 * The runtime API. */

extern "C" {

cudaError_t cudaGetLastError(void) {
    cudaError_t e = t_last_error;
    t_last_error = cudaSuccess;
    return e;
}

cudaError_t cudaPeekAtLastError(void) { return t_last_error; }

const char *cudaGetErrorString(cudaError_t error) {
    const ErrInfo *i = err_info(error);
    return i ? i->text : "unrecognized error code";
}

const char *cudaGetErrorName(cudaError_t error) {
    const ErrInfo *i = err_info(error);
    return i ? i->name : "unrecognized error code";
}

cudaError_t cudaGetDeviceCount(int *count) {
    pthread_once(&g_once, init_once);
    if (!count) return fail(cudaErrorInvalidValue, "cudaGetDeviceCount: NULL count");
    *count = 0;
    if (t_in_hostfn)
        return fail(cudaErrorNotPermitted, "cudaGetDeviceCount called from a host function");
    if (cfg.no_driver)
        return fail(cudaErrorInsufficientDriver, "no NVIDIA driver (ELSIM_NO_DRIVER=1)");
    if (cfg.devices == 0) return fail(cudaErrorNoDevice, "no CUDA device (ELSIM_DEVICES=0)");
    *count = cfg.devices;
    return cudaSuccess;
}

cudaError_t cudaDriverGetVersion(int *driverVersion) {
    pthread_once(&g_once, init_once);
    if (!driverVersion) return fail(cudaErrorInvalidValue, "cudaDriverGetVersion: NULL");
    *driverVersion = cfg.no_driver ? 0 : CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *runtimeVersion) {
    if (!runtimeVersion) return fail(cudaErrorInvalidValue, "cudaRuntimeGetVersion: NULL");
    *runtimeVersion = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaSetDevice(int device) {
    ENTER("cudaSetDevice");
    if (device < 0 || device >= cfg.devices)
        return fail(cudaErrorInvalidDevice, "cudaSetDevice(%d): there are %d devices", device,
                    cfg.devices);
    t_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
    ENTER("cudaGetDevice");
    if (!device) return fail(cudaErrorInvalidValue, "cudaGetDevice: NULL");
    *device = t_device;
    return cudaSuccess;
}

cudaError_t cudaSetDeviceFlags(unsigned int flags) {
    ENTER("cudaSetDeviceFlags");
    if (flags & ~0x1fu) return fail(cudaErrorInvalidValue, "cudaSetDeviceFlags(0x%x)", flags);
    return cudaSuccess;
}

cudaError_t cudaGetDeviceFlags(unsigned int *flags) {
    ENTER("cudaGetDeviceFlags");
    if (!flags) return fail(cudaErrorInvalidValue, "cudaGetDeviceFlags: NULL");
    *flags = cudaDeviceMapHost;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, enum cudaDeviceAttr attr, int device) {
    ENTER("cudaDeviceGetAttribute");
    if (!value) return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: NULL value");
    if (device < 0 || device >= cfg.devices)
        return fail(cudaErrorInvalidDevice, "cudaDeviceGetAttribute: device %d of %d", device,
                    cfg.devices);
    int v;
    switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock: v = 1024; break;
    case cudaDevAttrMaxBlockDimX: v = 1024; break;
    case cudaDevAttrMaxBlockDimY: v = 1024; break;
    case cudaDevAttrMaxBlockDimZ: v = 64; break;
    case cudaDevAttrMaxGridDimX: v = 2147483647; break;
    case cudaDevAttrMaxGridDimY: v = 65535; break;
    case cudaDevAttrMaxGridDimZ: v = 65535; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: v = 48 * 1024; break;
    case cudaDevAttrTotalConstantMemory: v = 65536; break;
    case cudaDevAttrWarpSize: v = 32; break;
    case cudaDevAttrMaxRegistersPerBlock: v = 65536; break;
    case cudaDevAttrClockRate: v = 0; break; /* unknown: not a GPU */
    case cudaDevAttrMultiProcessorCount: v = 16; break;
    case cudaDevAttrIntegrated: v = cfg.integrated; break;
    case cudaDevAttrCanMapHostMemory: v = 1; break;
    case cudaDevAttrComputeMode: v = 0; break;
    case cudaDevAttrConcurrentKernels: v = 1; break;
    case cudaDevAttrPciBusId: v = 0; break;
    case cudaDevAttrPciDeviceId: v = device; break;
    case cudaDevAttrMemoryClockRate: v = 0; break;
    case cudaDevAttrGlobalMemoryBusWidth: v = 0; break;
    case cudaDevAttrL2CacheSize: v = 4 << 20; break;
    case cudaDevAttrMaxThreadsPerMultiProcessor: v = 2048; break;
    case cudaDevAttrAsyncEngineCount: v = cfg.integrated ? 1 : 2; break;
    case cudaDevAttrUnifiedAddressing: v = 1; break;
    case cudaDevAttrComputeCapabilityMajor: v = cfg.cc_major; break;
    case cudaDevAttrComputeCapabilityMinor: v = cfg.cc_minor; break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor: v = (int)cfg.smem_optin + 1024; break;
    case cudaDevAttrManagedMemory: v = 1; break;
    case cudaDevAttrPageableMemoryAccess: v = 0; break;
    case cudaDevAttrConcurrentManagedAccess: v = cfg.concurrent_managed; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: v = (int)cfg.smem_optin; break;
    case cudaDevAttrHostRegisterSupported: v = 1; break;
    case cudaDevAttrPageableMemoryAccessUsesHostPageTables: v = 0; break;
    case cudaDevAttrDirectManagedMemAccessFromHost: v = 0; break;
    case cudaDevAttrMemoryPoolsSupported: v = 0; break;
    default:
        return fail(cudaErrorInvalidValue, "cudaDeviceGetAttribute: attribute %d is not emulated",
                    (int)attr);
    }
    *value = v;
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *prop, int device) {
    ENTER("cudaGetDeviceProperties");
    if (!prop) return fail(cudaErrorInvalidValue, "cudaGetDeviceProperties: NULL");
    if (device < 0 || device >= cfg.devices)
        return fail(cudaErrorInvalidDevice, "cudaGetDeviceProperties: device %d of %d", device,
                    cfg.devices);
    memset(prop, 0, sizeof *prop);
    snprintf(prop->name, sizeof prop->name, "%s", ELSIM_DEVICE_NAME);
    prop->totalGlobalMem = cfg.mem_bytes;
    prop->sharedMemPerBlock = 48 * 1024;
    prop->regsPerBlock = 65536;
    prop->warpSize = 32;
    prop->memPitch = (size_t)1 << 31;
    prop->maxThreadsPerBlock = 1024;
    prop->maxThreadsDim[0] = prop->maxThreadsDim[1] = 1024;
    prop->maxThreadsDim[2] = 64;
    prop->maxGridSize[0] = 2147483647;
    prop->maxGridSize[1] = prop->maxGridSize[2] = 65535;
    prop->totalConstMem = 65536;
    prop->major = cfg.cc_major;
    prop->minor = cfg.cc_minor;
    prop->textureAlignment = 512;
    prop->multiProcessorCount = 16;
    prop->integrated = cfg.integrated;
    prop->canMapHostMemory = 1;
    prop->concurrentKernels = 1;
    prop->pciDeviceID = device;
    prop->asyncEngineCount = cfg.integrated ? 1 : 2;
    prop->unifiedAddressing = 1;
    prop->l2CacheSize = 4 << 20;
    prop->maxThreadsPerMultiProcessor = 2048;
    prop->sharedMemPerMultiprocessor = cfg.smem_optin + 1024;
    prop->regsPerMultiprocessor = 65536;
    prop->managedMemory = 1;
    prop->concurrentManagedAccess = cfg.concurrent_managed;
    prop->sharedMemPerBlockOptin = cfg.smem_optin;
    prop->maxBlocksPerMultiProcessor = 32;
    prop->hostRegisterSupported = 1;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
    ENTER("cudaDeviceSynchronize");
    if (cudaError_t ce_ = capture_forbids("cudaDeviceSynchronize")) return ce_;
    drain_all();
    return take_fault("cudaDeviceSynchronize");
}

cudaError_t cudaDeviceReset(void) {
    ENTER("cudaDeviceReset");
    reset_all();
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total) {
    ENTER("cudaMemGetInfo");
    if (!free_bytes || !total) return fail(cudaErrorInvalidValue, "cudaMemGetInfo: NULL");
    *total = cfg.mem_bytes;
    *free_bytes = cfg.mem_bytes - g_dev_live[t_device];
    return cudaSuccess;
}

cudaError_t cudaMalloc(void **devPtr, size_t size) {
    ENTER("cudaMalloc");
    if (cudaError_t ce_ = capture_forbids("cudaMalloc")) return ce_;
    cudaError_t e = map_block(K_DEVICE, size, cudaMemAttachGlobal, devPtr, "cudaMalloc");
    if (e == cudaSuccess) g_stats.malloc_calls++;
    return e;
}

cudaError_t cudaMallocManaged(void **devPtr, size_t size, unsigned int flags) {
    ENTER("cudaMallocManaged");
    if (cudaError_t ce_ = capture_forbids("cudaMallocManaged")) return ce_;
    if (flags != cudaMemAttachGlobal && flags != cudaMemAttachHost)
        return fail(cudaErrorInvalidValue, "cudaMallocManaged: flags 0x%x (cudaMemAttachGlobal "
                    "or cudaMemAttachHost)", flags);
    cudaError_t e = map_block(K_MANAGED, size, flags, devPtr, "cudaMallocManaged");
    if (e == cudaSuccess) g_stats.managed_calls++;
    return e;
}

cudaError_t cudaHostAlloc(void **pHost, size_t size, unsigned int flags) {
    ENTER("cudaHostAlloc");
    if (cudaError_t ce_ = capture_forbids("cudaHostAlloc")) return ce_;
    if (flags & ~0x7u) return fail(cudaErrorInvalidValue, "cudaHostAlloc: flags 0x%x", flags);
    cudaError_t e = map_block(K_HOST, size, 0, pHost, "cudaHostAlloc");
    if (e == cudaSuccess) g_stats.host_alloc_calls++;
    return e;
}

cudaError_t cudaMallocHost(void **ptr, size_t size) {
    ENTER("cudaMallocHost");
    if (cudaError_t ce_ = capture_forbids("cudaMallocHost")) return ce_;
    cudaError_t e = map_block(K_HOST, size, 0, ptr, "cudaMallocHost");
    if (e == cudaSuccess) g_stats.host_alloc_calls++;
    return e;
}

cudaError_t cudaFree(void *devPtr) {
    ENTER("cudaFree");
    if (cudaError_t ce_ = capture_forbids("cudaFree")) return ce_;
    return free_block(devPtr, false, "cudaFree");
}

cudaError_t cudaFreeHost(void *ptr) {
    ENTER("cudaFreeHost");
    if (cudaError_t ce_ = capture_forbids("cudaFreeHost")) return ce_;
    return free_block(ptr, true, "cudaFreeHost");
}

cudaError_t cudaHostRegister(void *ptr, size_t size, unsigned int flags) {
    ENTER("cudaHostRegister");
    if (cudaError_t ce_ = capture_forbids("cudaHostRegister")) return ce_;
    if (!ptr || !size || (flags & ~0xfu))
        return fail(cudaErrorInvalidValue, "cudaHostRegister(%p, %zu, 0x%x)", ptr, size, flags);
    const char *p = (const char *)ptr;
    for (int i = 0; i < g_nallocs; i++) {
        const Alloc &a = g_allocs[i];
        if (a.kind && p < a.ptr + a.size && a.ptr < p + size)
            return fail(cudaErrorHostMemoryAlreadyRegistered, "cudaHostRegister(%p, %zu): "
                        "overlaps a %s block at %p", ptr, size, kind_name(a.kind),
                        (void *)a.ptr);
    }
    int slot = -1;
    for (int i = 0; i < g_nallocs; i++)
        if (!g_allocs[i].kind) {
            slot = i;
            break;
        }
    if (slot < 0) {
        if (g_nallocs == MAX_ALLOCS)
            return fail(cudaErrorMemoryAllocation, "cudaHostRegister: too many blocks");
        slot = g_nallocs++;
    }
    Alloc &a = g_allocs[slot];
    memset(&a, 0, sizeof a);
    a.base = a.data = a.ptr = (char *)ptr;
    a.map_len = a.data_len = a.size = size;
    a.kind = K_REGISTERED;
    a.device = t_device;
    a.prot = PROT_READ | PROT_WRITE;
    g_stats.host_register_calls++;
    return cudaSuccess;
}

cudaError_t cudaHostUnregister(void *ptr) {
    ENTER("cudaHostUnregister");
    for (int i = 0; i < g_nallocs; i++) {
        Alloc &a = g_allocs[i];
        if (a.kind == K_REGISTERED && a.ptr == ptr) {
            drain_all();
            unmap_block(a);
            return cudaSuccess;
        }
    }
    return fail(cudaErrorHostMemoryNotRegistered, "cudaHostUnregister(%p): not registered", ptr);
}

cudaError_t cudaHostGetDevicePointer(void **pDevice, void *pHost, unsigned int flags) {
    ENTER("cudaHostGetDevicePointer");
    if (!pDevice || flags) return fail(cudaErrorInvalidValue, "cudaHostGetDevicePointer: args");
    const Alloc *a = find(pHost);
    if (!a || (a->kind != K_HOST && a->kind != K_REGISTERED))
        return fail(cudaErrorInvalidValue, "cudaHostGetDevicePointer(%p): not pinned host "
                    "memory", pHost);
    *pDevice = pHost; /* unified addressing */
    return cudaSuccess;
}

cudaError_t cudaPointerGetAttributes(struct cudaPointerAttributes *attr, const void *ptr) {
    ENTER("cudaPointerGetAttributes");
    if (!attr) return fail(cudaErrorInvalidValue, "cudaPointerGetAttributes: NULL");
    const Alloc *a = find(ptr);
    memset(attr, 0, sizeof *attr);
    attr->device = a ? a->device : cudaInvalidDeviceId;
    if (!a) {
        attr->type = cudaMemoryTypeUnregistered;
        attr->hostPointer = (void *)ptr;
    } else if (a->kind == K_DEVICE) {
        attr->type = cudaMemoryTypeDevice;
        attr->devicePointer = (void *)ptr;
    } else {
        attr->type = a->kind == K_MANAGED ? cudaMemoryTypeManaged : cudaMemoryTypeHost;
        attr->devicePointer = attr->hostPointer = (void *)ptr;
    }
    return cudaSuccess;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind) {
    ENTER("cudaMemcpy");
    if (cudaError_t ce_ = capture_forbids("cudaMemcpy")) return ce_;
    if (count == 0) return cudaSuccess;
    cudaError_t e = check_copy(dst, count, src, count, kind, "cudaMemcpy");
    if (e != cudaSuccess) return e;
    drain(WAIT_LEGACY, 0); /* on the legacy stream: after its and the blocking streams' work */
    set_mode(MODE_COPY, NULL);
    memcpy(dst, src, count);
    set_mode(MODE_HOST, NULL);
    g_stats.memcpys++;
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t count, enum cudaMemcpyKind kind,
                            cudaStream_t stream) {
    ENTER("cudaMemcpyAsync");
    CUstream_st *st = NULL;
    cudaError_t e = get_stream(stream, &st, "cudaMemcpyAsync");
    if (e != cudaSuccess) return e;
    if (count == 0) return cudaSuccess;
    if ((e = check_copy(dst, count, src, count, kind, "cudaMemcpyAsync")) != cudaSuccess) return e;
    if ((e = capture_allows(st, C_COPY, dst, src, "cudaMemcpyAsync")) != cudaSuccess) return e;
    Cmd *c = cmd_new(st, C_COPY);
    c->dst = dst;
    c->src = src;
    c->count = count;
    cmd_push(c);
    return cudaSuccess;
}

static cudaError_t copy2d_args(void *dst, size_t dpitch, const void *src, size_t spitch,
                               size_t width, size_t height, enum cudaMemcpyKind kind,
                               const char *api) {
    if (width > dpitch || width > spitch)
        return fail(cudaErrorInvalidPitchValue, "%s: width %zu exceeds a pitch (dst %zu, src %zu)",
                    api, width, dpitch, spitch);
    if (height && (height - 1) > (SIZE_MAX - width) / (dpitch > spitch ? dpitch : spitch))
        return fail(cudaErrorInvalidValue, "%s: %zu rows overflow", api, height);
    size_t ds = (height - 1) * dpitch + width, ss = (height - 1) * spitch + width;
    return check_copy(dst, ds, src, ss, kind, api);
}

cudaError_t cudaMemcpy2D(void *dst, size_t dpitch, const void *src, size_t spitch, size_t width,
                         size_t height, enum cudaMemcpyKind kind) {
    ENTER("cudaMemcpy2D");
    if (cudaError_t ce_ = capture_forbids("cudaMemcpy2D")) return ce_;
    if (!width || !height) return cudaSuccess;
    cudaError_t e = copy2d_args(dst, dpitch, src, spitch, width, height, kind, "cudaMemcpy2D");
    if (e != cudaSuccess) return e;
    drain(WAIT_LEGACY, 0);
    Cmd c{};
    c.dst = dst;
    c.src = src;
    c.dpitch = dpitch;
    c.spitch = spitch;
    c.width = width;
    c.height = height;
    set_mode(MODE_COPY, NULL);
    copy_2d(&c);
    set_mode(MODE_HOST, NULL);
    g_stats.memcpys++;
    return cudaSuccess;
}

cudaError_t cudaMemcpy2DAsync(void *dst, size_t dpitch, const void *src, size_t spitch,
                              size_t width, size_t height, enum cudaMemcpyKind kind,
                              cudaStream_t stream) {
    ENTER("cudaMemcpy2DAsync");
    CUstream_st *st = NULL;
    cudaError_t e = get_stream(stream, &st, "cudaMemcpy2DAsync");
    if (e == cudaSuccess) e = capture_allows(st, C_COPY2D, dst, src, "cudaMemcpy2DAsync");
    if (e != cudaSuccess) return e;
    if (!width || !height) return cudaSuccess;
    e = copy2d_args(dst, dpitch, src, spitch, width, height, kind, "cudaMemcpy2DAsync");
    if (e != cudaSuccess) return e;
    Cmd *c = cmd_new(st, C_COPY2D);
    c->dst = dst;
    c->src = src;
    c->dpitch = dpitch;
    c->spitch = spitch;
    c->width = width;
    c->height = height;
    c->count = (height - 1) * dpitch + width;
    cmd_push(c);
    return cudaSuccess;
}

static cudaError_t check_set(void *dst, size_t count, const char *api) {
    const Alloc *a = find(dst);
    if (!a || a->kind == K_REGISTERED)
        return fail(cudaErrorInvalidValue, "%s(%p): not memory the device can write (cudaMalloc, "
                    "cudaMallocManaged, cudaHostAlloc)", api, dst);
    return check_range(dst, count, "destination", api);
}

cudaError_t cudaMemset(void *devPtr, int value, size_t count) {
    ENTER("cudaMemset");
    if (cudaError_t ce_ = capture_forbids("cudaMemset")) return ce_;
    if (count == 0) return cudaSuccess;
    cudaError_t e = check_set(devPtr, count, "cudaMemset");
    if (e != cudaSuccess) return e;
    drain(WAIT_LEGACY, 0);
    set_mode(MODE_COPY, NULL);
    memset(devPtr, value, count);
    set_mode(MODE_HOST, NULL);
    g_stats.memsets++;
    return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void *devPtr, int value, size_t count, cudaStream_t stream) {
    ENTER("cudaMemsetAsync");
    CUstream_st *st = NULL;
    cudaError_t e = get_stream(stream, &st, "cudaMemsetAsync");
    if (e != cudaSuccess) return e;
    if (count == 0) return cudaSuccess;
    if ((e = check_set(devPtr, count, "cudaMemsetAsync")) != cudaSuccess) return e;
    if ((e = capture_allows(st, C_SET, devPtr, NULL, "cudaMemsetAsync")) != cudaSuccess) return e;
    Cmd *c = cmd_new(st, C_SET);
    c->dst = devPtr;
    c->value = value;
    c->count = count;
    cmd_push(c);
    return cudaSuccess;
}

static cudaError_t check_managed(const void *p, size_t count, const char *api) {
    const Alloc *a = find(p);
    if (!a || a->kind != K_MANAGED)
        return fail(cudaErrorInvalidValue, "%s(%p): not managed memory (cudaMallocManaged)", api,
                    p);
    return check_range(p, count ? count : 1, "range", api);
}

static cudaError_t check_location(struct cudaMemLocation loc, const char *api) {
    if (loc.type == cudaMemLocationTypeDevice) {
        if (loc.id < 0 || loc.id >= cfg.devices)
            return fail(cudaErrorInvalidDevice, "%s: device %d of %d", api, loc.id, cfg.devices);
        return cudaSuccess;
    }
    if (loc.type == cudaMemLocationTypeHost || loc.type == cudaMemLocationTypeHostNuma ||
        loc.type == cudaMemLocationTypeHostNumaCurrent)
        return cudaSuccess;
    return fail(cudaErrorInvalidValue, "%s: location type %d", api, (int)loc.type);
}

cudaError_t cudaMemPrefetchAsync(const void *devPtr, size_t count, struct cudaMemLocation location,
                                 unsigned int flags, cudaStream_t stream) {
    ENTER("cudaMemPrefetchAsync");
    CUstream_st *st = NULL;
    cudaError_t e = get_stream(stream, &st, "cudaMemPrefetchAsync");
    if (e == cudaSuccess) e = capture_allows(st, C_NOP, NULL, NULL, "cudaMemPrefetchAsync");
    if (e == cudaSuccess) e = check_managed(devPtr, count, "cudaMemPrefetchAsync");
    if (e == cudaSuccess) e = check_location(location, "cudaMemPrefetchAsync");
    if (e != cudaSuccess) return e;
    if (flags) return fail(cudaErrorInvalidValue, "cudaMemPrefetchAsync: flags 0x%x", flags);
    if (location.type == cudaMemLocationTypeDevice && !cfg.concurrent_managed)
        return fail(cudaErrorInvalidDevice, "cudaMemPrefetchAsync to device %d: the device has "
                    "no concurrentManagedAccess (as on Jetson): managed memory cannot be "
                    "prefetched there", location.id);
    cmd_push(cmd_new(st, C_NOP)); /* placement is not modelled: ordering only */
    if (location.type == cudaMemLocationTypeDevice) {
        g_stats.prefetches_device++;
        g_stats.prefetch_device_bytes += count;
    } else {
        g_stats.prefetches_host++;
    }
    return cudaSuccess;
}

cudaError_t cudaMemAdvise(const void *devPtr, size_t count, enum cudaMemoryAdvise advice,
                          struct cudaMemLocation location) {
    ENTER("cudaMemAdvise");
    cudaError_t e = check_managed(devPtr, count, "cudaMemAdvise");
    if (e != cudaSuccess) return e;
    if ((int)advice < 1 || (int)advice > 6)
        return fail(cudaErrorInvalidValue, "cudaMemAdvise: advice %d", (int)advice);
    if ((e = check_location(location, "cudaMemAdvise")) != cudaSuccess) return e;
    /* a preferred location or accessor on a device needs concurrentManagedAccess (the
     * read-mostly advices ignore the location) */
    if ((advice == cudaMemAdviseSetPreferredLocation || advice == cudaMemAdviseSetAccessedBy) &&
        location.type == cudaMemLocationTypeDevice && !cfg.concurrent_managed)
        return fail(cudaErrorInvalidDevice, "cudaMemAdvise(advice %d) for device %d: the device "
                    "has no concurrentManagedAccess (as on Jetson)", (int)advice, location.id);
    g_stats.advises[advice]++;
    return cudaSuccess; /* accepted, not modelled */
}

cudaError_t cudaStreamAttachMemAsync(cudaStream_t stream, void *devPtr, size_t length,
                                     unsigned int flags) {
    ENTER("cudaStreamAttachMemAsync");
    CUstream_st *st = NULL;
    cudaError_t e = get_stream(stream, &st, "cudaStreamAttachMemAsync");
    if (e == cudaSuccess) e = capture_allows(st, C_ATTACH, NULL, NULL, "cudaStreamAttachMemAsync");
    if (e != cudaSuccess) return e;
    Alloc *a = NULL;
    for (int i = 0; i < g_nallocs; i++)
        if (g_allocs[i].kind == K_MANAGED && g_allocs[i].ptr == devPtr) a = &g_allocs[i];
    if (!a)
        return fail(cudaErrorInvalidValue, "cudaStreamAttachMemAsync(%p): not the start of a "
                    "cudaMallocManaged block", devPtr);
    if (length != 0 && length != a->size)
        return fail(cudaErrorInvalidValue, "cudaStreamAttachMemAsync: length %zu: 0 or the whole "
                    "block (%zu bytes)", length, a->size);
    if (flags != cudaMemAttachGlobal && flags != cudaMemAttachHost && flags != cudaMemAttachSingle)
        return fail(cudaErrorInvalidValue, "cudaStreamAttachMemAsync: flags 0x%x", flags);
    if (flags == cudaMemAttachSingle && st == &g_streams[0])
        return fail(cudaErrorInvalidValue, "cudaStreamAttachMemAsync: cudaMemAttachSingle to the "
                    "NULL stream (it is no single stream)");
    Cmd *c = cmd_new(st, C_ATTACH);
    c->alloc = a;
    c->flags = flags;
    a->attach_q = flags;
    a->attach_q_st = st;
    a->attach_q_seq = c->seq;
    cmd_push(c); /* closes the block to the host now if st is busy (see want_prot) */
    g_stats.attaches[flags == cudaMemAttachGlobal ? 0 : flags == cudaMemAttachHost ? 1 : 2]++;
    return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *pStream, unsigned int flags) {
    ENTER("cudaStreamCreateWithFlags");
    if (!pStream || (flags & ~cudaStreamNonBlocking))
        return fail(cudaErrorInvalidValue, "cudaStreamCreateWithFlags: bad arguments");
    for (int i = 1; i <= MAX_STREAMS; i++)
        if (!g_streams[i].live) {
            memset(&g_streams[i], 0, sizeof g_streams[i]);
            g_streams[i].live = 1;
            g_streams[i].flags = flags;
            g_streams[i].device = t_device;
            *pStream = &g_streams[i];
            return cudaSuccess;
        }
    return fail(cudaErrorMemoryAllocation, "cudaStreamCreate: more than %d live streams",
                MAX_STREAMS);
}

cudaError_t cudaStreamCreate(cudaStream_t *pStream) {
    return cudaStreamCreateWithFlags(pStream, cudaStreamDefault);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    ENTER("cudaStreamDestroy");
    CUstream_st *st = NULL;
    if (!stream || stream == cudaStreamLegacy || stream == cudaStreamPerThread)
        return fail(cudaErrorInvalidResourceHandle, "cudaStreamDestroy: the NULL stream");
    cudaError_t e = get_stream(stream, &st, "cudaStreamDestroy");
    if (e != cudaSuccess) return e;
    drain_to(st->last_seq); /* its work completes first */
    for (int i = 0; i < g_nallocs; i++)
        if (g_allocs[i].kind == K_MANAGED && g_allocs[i].attach_st == st) {
            /* "reverts to the default visibility of the allocation as specified at
             * cudaMallocManaged" (the runtime's documentation) */
            g_allocs[i].attach_st = &g_streams[0];
            if (g_allocs[i].attach == cudaMemAttachSingle)
                g_allocs[i].attach = g_allocs[i].attach0;
        }
    st->live = 0;
    return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    ENTER("cudaStreamSynchronize");
    CUstream_st *st = NULL;
    cudaError_t e = get_stream(stream, &st, "cudaStreamSynchronize");
    if (e != cudaSuccess) return e;
    if ((e = capture_forbids_sync(st, "cudaStreamSynchronize")) != cudaSuccess) return e;
    drain_stream(st);
    return take_fault("cudaStreamSynchronize");
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
    ENTER("cudaStreamQuery");
    CUstream_st *st = NULL;
    cudaError_t e = get_stream(stream, &st, "cudaStreamQuery");
    if (e != cudaSuccess) return e;
    if ((e = capture_forbids_sync(st, "cudaStreamQuery")) != cudaSuccess) return e;
    drain_stream(st); /* runs what it waits for, then reports it done */
    return cudaSuccess;
}

cudaError_t cudaStreamGetFlags(cudaStream_t hStream, unsigned int *flags) {
    ENTER("cudaStreamGetFlags");
    CUstream_st *st = NULL;
    cudaError_t e = get_stream(hStream, &st, "cudaStreamGetFlags");
    if (e != cudaSuccess) return e;
    if (!flags) return fail(cudaErrorInvalidValue, "cudaStreamGetFlags: NULL");
    *flags = st->flags;
    return cudaSuccess;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
    ENTER("cudaStreamWaitEvent");
    CUstream_st *st = NULL;
    cudaError_t e = get_stream(stream, &st, "cudaStreamWaitEvent");
    if (e == cudaSuccess) e = capture_allows(st, C_NOP, NULL, NULL, "cudaStreamWaitEvent");
    if (e == cudaSuccess) e = get_event(event, "cudaStreamWaitEvent");
    if (e != cudaSuccess) return e;
    if (flags > 1) return fail(cudaErrorInvalidValue, "cudaStreamWaitEvent: flags 0x%x", flags);
    Cmd *c = cmd_new(st, C_NOP);
    c->dep_event = event->recorded ? event->rec_seq : 0; /* the latest record, as CUDA */
    cmd_push(c);
    return cudaSuccess;
}

cudaError_t cudaLaunchHostFunc(cudaStream_t stream, cudaHostFn_t fn, void *userData) {
    ENTER("cudaLaunchHostFunc");
    CUstream_st *st = NULL;
    cudaError_t e = get_stream(stream, &st, "cudaLaunchHostFunc");
    if (e == cudaSuccess) e = capture_allows(st, C_HOSTFN, NULL, NULL, "cudaLaunchHostFunc");
    if (e != cudaSuccess) return e;
    if (!fn) return fail(cudaErrorInvalidValue, "cudaLaunchHostFunc: NULL function");
    Cmd *c = cmd_new(st, C_HOSTFN);
    c->hostfn = fn;
    c->user = userData;
    cmd_push(c);
    return cudaSuccess;
}

/* ---- stream capture and graphs ---- */

/* A free range of n nodes in g_pool (first fit among the live graphs' ranges), or -1. */
static int pool_range(int n) {
    for (int t = -1; t < 2 * MAX_GRAPHS; t++) {
        const NodeRange *c = t < 0 ? NULL : t < MAX_GRAPHS ? &g_graph_tab[t] : &g_exec_tab[t - MAX_GRAPHS];
        if (c && !c->live) continue;
        const int first = c ? c->first + c->count : 0;
        if (first + n > GRAPH_POOL) continue;
        bool clash = false;
        for (int u = 0; u < 2 * MAX_GRAPHS && !clash; u++) {
            const NodeRange *o = u < MAX_GRAPHS ? &g_graph_tab[u] : &g_exec_tab[u - MAX_GRAPHS];
            clash = o->live && o->count && first < o->first + o->count && o->first < first + n;
        }
        if (!clash) return first;
    }
    return -1;
}

/* A slot of tab holding a copy of n nodes, or NULL (the pool or the table is full). */
static NodeRange *range_new(NodeRange *tab, const Cmd *nodes, int n) {
    for (int i = 0; i < MAX_GRAPHS; i++) {
        if (tab[i].live) continue;
        const int first = n ? pool_range(n) : 0;
        if (first < 0) return NULL;
        memcpy((void *)pool_node(first), (const void *)nodes, (size_t)n * sizeof(Cmd));
        tab[i] = NodeRange{1, first, n};
        return &tab[i];
    }
    return NULL;
}

static NodeRange *range_of(void *h, NodeRange *tab) {
    uintptr_t p = (uintptr_t)h, lo = (uintptr_t)tab, hi = (uintptr_t)(tab + MAX_GRAPHS);
    if (p < lo || p >= hi || (p - lo) % sizeof(NodeRange)) return NULL;
    NodeRange *r = (NodeRange *)h;
    return r->live ? r : NULL;
}

cudaError_t cudaStreamBeginCapture(cudaStream_t stream, enum cudaStreamCaptureMode mode) {
    ENTER("cudaStreamBeginCapture");
    CUstream_st *st = NULL;
    cudaError_t e = get_stream(stream, &st, "cudaStreamBeginCapture");
    if (e != cudaSuccess) return e;
    if (st == &g_streams[0])
        return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamBeginCapture: the legacy "
                    "(NULL) stream cannot be captured");
    if ((int)mode < 0 || (int)mode > 2)
        return fail(cudaErrorInvalidValue, "cudaStreamBeginCapture: mode %d", (int)mode);
    if (g_cap.st)
        return fail(cudaErrorStreamCaptureUnsupported, "cudaStreamBeginCapture: stream %p is "
                    "capturing already (the emulator captures one stream at a time)",
                    (void *)g_cap.st);
    memset(&g_cap, 0, sizeof g_cap);
    g_cap.st = st;
    g_cap.mode = (int)mode;
    g_cap.thread = pthread_self();
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, enum cudaStreamCaptureStatus *pCaptureStatus) {
    ENTER("cudaStreamIsCapturing");
    CUstream_st *st = NULL;
    cudaError_t e = get_stream(stream, &st, "cudaStreamIsCapturing");
    if (e != cudaSuccess) return e;
    if (!pCaptureStatus) return fail(cudaErrorInvalidValue, "cudaStreamIsCapturing: NULL status");
    *pCaptureStatus = g_cap.st != st  ? cudaStreamCaptureStatusNone
                      : g_cap.invalid ? cudaStreamCaptureStatusInvalidated
                                      : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *pGraph) {
    ENTER("cudaStreamEndCapture");
    CUstream_st *st = NULL;
    cudaError_t e = get_stream(stream, &st, "cudaStreamEndCapture");
    if (e != cudaSuccess) return e;
    if (!pGraph) return fail(cudaErrorInvalidValue, "cudaStreamEndCapture: NULL graph pointer");
    *pGraph = NULL;
    if (g_cap.st != st)
        return fail(cudaErrorInvalidValue, "cudaStreamEndCapture: stream %p is not capturing",
                    (void *)st);
    const Capture c = g_cap;
    memset(&g_cap, 0, sizeof g_cap);
    if (c.invalid)
        return fail(cudaErrorStreamCaptureInvalidated, "cudaStreamEndCapture: the capture was "
                    "invalidated: %s", c.why);
    NodeRange *g = range_new(g_graph_tab, cap_node(0), c.count);
    if (!g)
        return fail(cudaErrorMemoryAllocation, "cudaStreamEndCapture: no room for a graph of %d "
                    "nodes (the emulator holds %d graphs, %d nodes in all)", c.count,
                    MAX_GRAPHS, GRAPH_POOL);
    g_stats.captures++;
    *pGraph = (cudaGraph_t)(void *)g;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *pGraphExec, cudaGraph_t graph,
                                 unsigned long long flags) {
    ENTER("cudaGraphInstantiate");
    if (!pGraphExec) return fail(cudaErrorInvalidValue, "cudaGraphInstantiate: NULL result");
    *pGraphExec = NULL;
    NodeRange *g = range_of(graph, g_graph_tab);
    if (!g) return fail(cudaErrorInvalidValue, "cudaGraphInstantiate: %p is not a live graph",
                        (void *)graph);
    if (flags & ~0xfull)
        return fail(cudaErrorInvalidValue, "cudaGraphInstantiate: flags 0x%llx", flags);
    NodeRange *x = range_new(g_exec_tab, pool_node(g->first), g->count);
    if (!x)
        return fail(cudaErrorMemoryAllocation, "cudaGraphInstantiate: no room for %d nodes",
                    g->count);
    g_stats.graph_instantiations++;
    *pGraphExec = (cudaGraphExec_t)(void *)x;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiateWithFlags(cudaGraphExec_t *pGraphExec, cudaGraph_t graph,
                                          unsigned long long flags) {
    return cudaGraphInstantiate(pGraphExec, graph, flags);
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t graphExec, cudaStream_t stream) {
    ENTER("cudaGraphLaunch");
    CUstream_st *st = NULL;
    cudaError_t e = get_stream(stream, &st, "cudaGraphLaunch");
    if (e != cudaSuccess) return e;
    NodeRange *x = range_of(graphExec, g_exec_tab);
    if (!x) return fail(cudaErrorInvalidResourceHandle, "cudaGraphLaunch: %p is not a live "
                        "executable graph", (void *)graphExec);
    if (g_cap.st == st)
        return capture_refuse("cudaGraphLaunch into a capturing stream (not emulated)");
    for (int k = 0; k < x->count; k++) { /* the nodes in capture order, on st */
        const Cmd *node = pool_node(x->first + k);
        Cmd *c = cmd_new(st, node->kind);
        const uint64_t seq = c->seq;
        memcpy((void *)c, (const void *)node, sizeof *c); /* arguments by value */
        c->seq = seq;
        c->st = st;
        c->done = c->mark = false;
        cmd_push(c);
    }
    g_stats.graph_launches++;
    g_stats.graph_nodes_run += (uint64_t)x->count;
    return cudaSuccess;
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t graphExec) {
    ENTER("cudaGraphExecDestroy");
    NodeRange *x = range_of(graphExec, g_exec_tab);
    if (!x) return fail(cudaErrorInvalidValue, "cudaGraphExecDestroy: %p is not a live "
                        "executable graph", (void *)graphExec);
    x->live = 0; /* queued copies of its nodes stay valid: they own their arguments */
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    ENTER("cudaGraphDestroy");
    NodeRange *g = range_of(graph, g_graph_tab);
    if (!g) return fail(cudaErrorInvalidValue, "cudaGraphDestroy: %p is not a live graph",
                        (void *)graph);
    g->live = 0;
    return cudaSuccess;
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
    ENTER("cudaEventCreateWithFlags");
    if (!event || (flags & ~0x7u))
        return fail(cudaErrorInvalidValue, "cudaEventCreateWithFlags: bad arguments");
    for (int i = 0; i < MAX_EVENTS; i++)
        if (!g_events[i].live) {
            memset(&g_events[i], 0, sizeof g_events[i]);
            g_events[i].live = 1;
            g_events[i].flags = flags;
            *event = &g_events[i];
            return cudaSuccess;
        }
    return fail(cudaErrorMemoryAllocation, "cudaEventCreate: more than %d live events",
                MAX_EVENTS);
}

cudaError_t cudaEventCreate(cudaEvent_t *event) {
    return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    ENTER("cudaEventDestroy");
    cudaError_t e = get_event(event, "cudaEventDestroy");
    if (e != cudaSuccess) return e;
    if (event->recorded) drain_to(event->rec_seq);
    event->live = 0;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    ENTER("cudaEventRecord");
    CUstream_st *st = NULL;
    cudaError_t e = get_event(event, "cudaEventRecord");
    if (e == cudaSuccess) e = get_stream(stream, &st, "cudaEventRecord");
    if (e == cudaSuccess) e = capture_allows(st, C_EVENT, NULL, NULL, "cudaEventRecord");
    if (e != cudaSuccess) return e;
    Cmd *c = cmd_new(st, C_EVENT);
    c->ev = event;
    event->recorded = true;
    event->rec_seq = c->seq;
    cmd_push(c);
    return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    ENTER("cudaEventSynchronize");
    if (cudaError_t ce_ = capture_forbids("cudaEventSynchronize")) return ce_;
    cudaError_t e = get_event(event, "cudaEventSynchronize");
    if (e != cudaSuccess) return e;
    if (event->recorded) drain_to(event->rec_seq);
    return take_fault("cudaEventSynchronize");
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
    ENTER("cudaEventQuery");
    cudaError_t e = get_event(event, "cudaEventQuery");
    if (e != cudaSuccess) return e;
    if (event->recorded) drain_to(event->rec_seq); /* runs it, then reports it done */
    return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    ENTER("cudaEventElapsedTime");
    cudaError_t e = get_event(start, "cudaEventElapsedTime");
    if (e == cudaSuccess) e = get_event(end, "cudaEventElapsedTime");
    if (e != cudaSuccess) return e;
    if (!ms) return fail(cudaErrorInvalidValue, "cudaEventElapsedTime: NULL");
    if ((start->flags | end->flags) & cudaEventDisableTiming)
        return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: an event was created "
                    "with cudaEventDisableTiming");
    if (!start->recorded || !end->recorded)
        return fail(cudaErrorInvalidResourceHandle, "cudaEventElapsedTime: an event was never "
                    "recorded");
    if (start->done_seq < start->rec_seq || end->done_seq < end->rec_seq)
        return fail(cudaErrorNotReady, "cudaEventElapsedTime: an event has not completed "
                    "(synchronise on it first)");
    *ms = (float)(end->t_ms - start->t_ms);
    return cudaSuccess;
}

cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, const void *func) {
    ENTER("cudaFuncGetAttributes");
    if (!func || !attr) return fail(cudaErrorInvalidDeviceFunction, "cudaFuncGetAttributes: NULL");
    if (!has_kernel_image())
        return fail(cudaErrorNoKernelImageForDevice, "cudaFuncGetAttributes: no kernel image "
                    "for sm_%d%d (ELSIM_KERNEL_ARCHS=%s)", cfg.cc_major, cfg.cc_minor,
                    cfg.kernel_archs);
    memset(attr, 0, sizeof *attr);
    attr->maxThreadsPerBlock = 1024;
    attr->binaryVersion = attr->ptxVersion = cfg.cc_major * 10 + cfg.cc_minor;
    return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void *func, enum cudaFuncAttribute attr, int value) {
    ENTER("cudaFuncSetAttribute");
    if (!func) return fail(cudaErrorInvalidDeviceFunction, "cudaFuncSetAttribute: NULL kernel");
    if (attr == cudaFuncAttributePreferredSharedMemoryCarveout) {
        if (value < -1 || value > 100)
            return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: carveout %d", value);
        return cudaSuccess;
    }
    if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize)
        return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: attribute %d is not emulated",
                    (int)attr);
    if (value < 0 || (size_t)value > cfg.smem_optin)
        return fail(cudaErrorInvalidValue, "cudaFuncSetAttribute: %d bytes of dynamic shared "
                    "memory; sm_%d%d allows up to %zu", value, cfg.cc_major, cfg.cc_minor,
                    cfg.smem_optin);
    Func *slot = NULL;
    for (Func &f : g_funcs) {
        if (f.fn == func) {
            slot = &f;
            break;
        }
        if (!f.fn && !slot) slot = &f;
    }
    if (!slot) return fail(cudaErrorMemoryAllocation, "cudaFuncSetAttribute: too many kernels");
    slot->fn = func;
    slot->max_dyn_shared = value;
    return cudaSuccess;
}

/* ======================================================================================
 * The test API (cudasim.h). */

void elsim_stats_get(elsim_stats *out) {
    pthread_once(&g_once, init_once);
    Lock lock;
    *out = g_stats;
    out->pending = 0;
    for (uint64_t pos = g_head; pos < g_tail; pos++) out->pending += !ring_at(pos)->done;
}

void elsim_reset_stats(void) {
    pthread_once(&g_once, init_once);
    Lock lock;
    elsim_stats keep = g_stats;
    memset(&g_stats, 0, sizeof g_stats);
    g_stats.device_bytes = keep.device_bytes;
    g_stats.managed_bytes = keep.managed_bytes;
    g_stats.host_bytes = keep.host_bytes;
    g_stats.device_bytes_peak = keep.device_bytes_peak;
}

void elsim_set_order(elsim_order order, uint64_t seed) {
    pthread_once(&g_once, init_once);
    Lock lock;
    cfg.order = order;
    cfg.seed = seed ? seed : 1;
}

elsim_order elsim_get_order(void) {
    pthread_once(&g_once, init_once);
    return cfg.order;
}

const char *elsim_order_name(elsim_order order) { return order_name(order); }

void elsim_set_stream_order(elsim_stream_order order, uint64_t seed) {
    pthread_once(&g_once, init_once);
    Lock lock;
    cfg.stream_order = order;
    cfg.stream_seed = seed ? seed : 1;
    g_stream_rng = cfg.stream_seed;
}

elsim_stream_order elsim_get_stream_order(void) {
    pthread_once(&g_once, init_once);
    return cfg.stream_order;
}

const char *elsim_stream_order_name(elsim_stream_order order) {
    return (unsigned)order < 4 ? k_stream_order_names[order] : "submit";
}

const char *elsim_last_message(void) { return t_msg; }

void elsim_reconfigure(void) {
    pthread_once(&g_once, init_once);
    Lock lock;
    reset_all();
    config_read();
    g_stream_rng = cfg.stream_seed;
    g_launches_seen = g_kernels_seen = 0;
    g_fault_pending = false;
    t_device = 0;
}

} /* extern "C" */
