/* cuda_runtime.h (cudasim) - the runtime API (cuda_runtime_api.h) plus, when compiled as C++
 * (the .cu files of kernels/cuda are compiled by g++ as C++17 under -DEL_CUDA_SIM=ON), the
 * device side of CUDA emulated on the CPU: qualifiers, the built-in index variables, barriers, warp
 * shuffles and votes, atomics, the math and bit-cast intrinsics kernels use, and the
 * launcher behind EL_LAUNCH (kernels/cuda/cuda_common.cuh).
 *
 * Execution model (tests/cudasim/cudasim.cc): a launch is queued on its stream and runs at
 * the next synchronisation point; blocks run one after another, each thread of a block is a
 * cooperative fiber that runs until it exits or reaches a barrier (__syncthreads: the block;
 * __syncwarp, shuffles, votes: the warp). `__shared__` is `static`: blocks never overlap,
 * so a static local is the block's shared memory. Test-only: see docs/CUDA.md. */
#ifndef ELSIM_CUDA_RUNTIME_H
#define ELSIM_CUDA_RUNTIME_H

#include "cuda_runtime_api.h"

#ifdef __cplusplus
#include <math.h>
#include <stdint.h>
#include <string.h>

#include <new>
#include <tuple>
#include <type_traits>
#include <utility>

/* ---- qualifiers: everything is host code ---- */
#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __noinline__ __attribute__((noinline))
#define __shared__ static /* one block at a time: a static local is the block's shared memory */
#define __constant__
#define __managed__
#define __launch_bounds__(...)
#define __align__(n) __attribute__((aligned(n)))
#define __grid_constant__
#define __cudart_builtin__

/* ---- built-in variables: set by the scheduler before it resumes each emulated thread ---- */
extern uint3 threadIdx;
extern uint3 blockIdx;
extern dim3 blockDim;
extern dim3 gridDim;
constexpr int warpSize = 32;

/* ---- the scheduler's entry points (tests/cudasim/cudasim.cc) ---- */
extern "C" {
void elsim_syncthreads(void);
int elsim_syncthreads_count(int pred); /* threads of the block with pred != 0 */
void elsim_syncwarp(unsigned mask);
/* Warp exchange: mode 0 idx, 1 up, 2 down, 3 xor; value bits in the low sizeof(T) bytes. */
uint64_t elsim_shfl(unsigned mask, uint64_t v, int mode, int arg, int width);
unsigned elsim_ballot(unsigned mask, int pred);
unsigned elsim_activemask(void);
void *elsim_dyn_shared(void);
void elsim_trap(const char *what) __attribute__((noreturn));
long long elsim_clock64(void);
}

/* ---- barriers, warp-level primitives ---- */
static inline void __syncthreads() { elsim_syncthreads(); }
static inline int __syncthreads_count(int pred) { return elsim_syncthreads_count(pred); }
static inline int __syncthreads_and(int pred) {
    return elsim_syncthreads_count(!pred) == 0; /* nobody had it false */
}
static inline int __syncthreads_or(int pred) { return elsim_syncthreads_count(pred) != 0; }
static inline void __syncwarp(unsigned mask = 0xffffffffu) { elsim_syncwarp(mask); }
static inline unsigned __ballot_sync(unsigned mask, int pred) { return elsim_ballot(mask, pred); }
static inline int __any_sync(unsigned mask, int pred) { return elsim_ballot(mask, pred) != 0; }
static inline int __all_sync(unsigned mask, int pred) { return elsim_ballot(mask, !pred) == 0; }
static inline unsigned __activemask() { return elsim_activemask(); }
static inline void __threadfence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __threadfence_block() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
static inline void __nanosleep(unsigned) {}
static inline long long clock64() { return elsim_clock64(); }
static inline void __trap() { elsim_trap("__trap() in a kernel"); }

namespace elsim {
template <typename T> static inline T shfl(unsigned mask, T v, int mode, int arg, int width) {
    static_assert(sizeof(T) <= 8 && std::is_trivially_copyable<T>::value,
                  "cudasim: shuffles move values of up to 8 bytes");
    uint64_t b = 0;
    memcpy(&b, &v, sizeof v);
    b = elsim_shfl(mask, b, mode, arg, width);
    T r;
    memcpy(&r, &b, sizeof r);
    return r;
}
} // namespace elsim

template <typename T>
static inline T __shfl_sync(unsigned mask, T var, int srcLane, int width = 32) {
    return elsim::shfl(mask, var, 0, srcLane, width);
}
template <typename T>
static inline T __shfl_up_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    return elsim::shfl(mask, var, 1, (int)delta, width);
}
template <typename T>
static inline T __shfl_down_sync(unsigned mask, T var, unsigned delta, int width = 32) {
    return elsim::shfl(mask, var, 2, (int)delta, width);
}
template <typename T>
static inline T __shfl_xor_sync(unsigned mask, T var, int laneMask, int width = 32) {
    return elsim::shfl(mask, var, 3, laneMask, width);
}

/* ---- bit casts and integer intrinsics ---- */
static inline float __uint_as_float(unsigned u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}
static inline unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, 4);
    return u;
}
static inline float __int_as_float(int i) {
    float f;
    memcpy(&f, &i, 4);
    return f;
}
static inline int __float_as_int(float f) {
    int i;
    memcpy(&i, &f, 4);
    return i;
}
static inline double __longlong_as_double(long long i) {
    double d;
    memcpy(&d, &i, 8);
    return d;
}
static inline long long __double_as_longlong(double d) {
    long long i;
    memcpy(&i, &d, 8);
    return i;
}
static inline int __popc(unsigned x) { return __builtin_popcount(x); }
static inline int __popcll(unsigned long long x) { return __builtin_popcountll(x); }
static inline int __clz(int x) { return x ? __builtin_clz((unsigned)x) : 32; }
static inline int __clzll(long long x) { return x ? __builtin_clzll((unsigned long long)x) : 64; }
static inline int __ffs(int x) { return __builtin_ffs(x); }
static inline int __ffsll(long long x) { return __builtin_ffsll(x); }
static inline unsigned __brev(unsigned x) {
    x = ((x >> 1) & 0x55555555u) | ((x & 0x55555555u) << 1);
    x = ((x >> 2) & 0x33333333u) | ((x & 0x33333333u) << 2);
    x = ((x >> 4) & 0x0f0f0f0fu) | ((x & 0x0f0f0f0fu) << 4);
    return __builtin_bswap32(x);
}
static inline unsigned __umulhi(unsigned a, unsigned b) {
    return (unsigned)(((unsigned long long)a * b) >> 32);
}

/* ---- math: the fast intrinsics are the libm functions (CUDA's are less exact) ---- */
static inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
static inline double rsqrt(double x) { return 1.0 / sqrt(x); }
/* glibc declares these names itself (aliases of the plain functions): map them by name. */
#define __expf expf
#define __exp10f exp10f
#define __logf logf
#define __log2f log2f
#define __sinf sinf
#define __cosf cosf
#define __tanf tanf
#define __powf powf
#define __sincosf sincosf
static inline float __fdividef(float a, float b) { return a / b; }
static inline float __frcp_rn(float x) { return 1.0f / x; }
static inline float __fsqrt_rn(float x) { return sqrtf(x); }
static inline float __fmaf_rn(float a, float b, float c) { return fmaf(a, b, c); }
static inline float __fadd_rn(float a, float b) { return a + b; }
static inline float __fmul_rn(float a, float b) { return a * b; }
/* Float to int, nearest with ties to even (the host's default rounding mode), as the GPU's
 * cvt.rni; out-of-range values are the caller's to avoid. */
static inline int __float2int_rn(float x) { return (int)lrintf(x); }
static inline float __saturatef(float x) { return x < 0.0f ? 0.0f : x > 1.0f ? 1.0f : x; }
/* c + the dot product of the four signed bytes of a and of b (little-endian lanes), in
 * 32-bit two's complement as the hardware's dp4a (wraps, never traps). */
static inline int __dp4a(int a, int b, int c) {
    uint32_t s = (uint32_t)c;
    for (int k = 0; k < 32; k += 8)
        s += (uint32_t)((int32_t)(int8_t)((uint32_t)a >> k) * (int32_t)(int8_t)((uint32_t)b >> k));
    return (int)s;
}
static inline unsigned __dp4a(unsigned a, unsigned b, unsigned c) { /* unsigned bytes */
    for (int k = 0; k < 32; k += 8) c += ((a >> k) & 0xffu) * ((b >> k) & 0xffu);
    return c;
}

/* min/max: CUDA's overload set (float: fminf semantics, NaN loses), other types by '<'. */
static inline float min(float a, float b) { return fminf(a, b); }
static inline float max(float a, float b) { return fmaxf(a, b); }
static inline double min(double a, double b) { return fmin(a, b); }
static inline double max(double a, double b) { return fmax(a, b); }
template <typename A, typename B,
          typename = typename std::enable_if<std::is_integral<A>::value &&
                                             std::is_integral<B>::value>::type>
static inline typename std::common_type<A, B>::type min(A a, B b) {
    typedef typename std::common_type<A, B>::type C;
    return (C)a < (C)b ? (C)a : (C)b;
}
template <typename A, typename B,
          typename = typename std::enable_if<std::is_integral<A>::value &&
                                             std::is_integral<B>::value>::type>
static inline typename std::common_type<A, B>::type max(A a, B b) {
    typedef typename std::common_type<A, B>::type C;
    return (C)a < (C)b ? (C)b : (C)a;
}

/* ---- loads and atomics (one emulated thread runs at a time: a plain read-modify-write is
 * atomic) ---- */
template <typename T> static inline T __ldg(const T *p) { return *p; }
template <typename T> static inline T __ldcs(const T *p) { return *p; }
template <typename T> static inline void __stcs(T *p, T v) { *p = v; }

#define ELSIM_ATOMIC(name, expr)                                                         \
    template <typename T, typename V> static inline T name(T *a, V v_) {                 \
        T v = (T)v_;                                                                     \
        T old = *a;                                                                      \
        *a = (expr);                                                                     \
        return old;                                                                      \
    }
ELSIM_ATOMIC(atomicAdd, old + v)
ELSIM_ATOMIC(atomicSub, old - v)
ELSIM_ATOMIC(atomicExch, v)
ELSIM_ATOMIC(atomicMin, v < old ? v : old)
ELSIM_ATOMIC(atomicMax, old < v ? v : old)
ELSIM_ATOMIC(atomicAnd, old & v)
ELSIM_ATOMIC(atomicOr, old | v)
ELSIM_ATOMIC(atomicXor, old ^ v)
#undef ELSIM_ATOMIC
template <typename T, typename C, typename V> static inline T atomicCAS(T *a, C cmp, V v) {
    T old = *a;
    if (old == (T)cmp) *a = (T)v;
    return old;
}
static inline unsigned atomicInc(unsigned *a, unsigned lim) {
    unsigned old = *a;
    *a = old >= lim ? 0u : old + 1u;
    return old;
}
static inline unsigned atomicDec(unsigned *a, unsigned lim) {
    unsigned old = *a;
    *a = (old == 0u || old > lim) ? lim : old - 1u;
    return old;
}

/* ---- C++ conveniences of the real header ---- */
template <class T> static inline cudaError_t cudaMalloc(T **p, size_t size) {
    return ::cudaMalloc((void **)(void *)p, size);
}
template <class T>
static inline cudaError_t cudaMallocManaged(T **p, size_t size,
                                            unsigned int flags = cudaMemAttachGlobal) {
    return ::cudaMallocManaged((void **)(void *)p, size, flags);
}
template <class T> static inline cudaError_t cudaMallocHost(T **p, size_t size) {
    return ::cudaMallocHost((void **)(void *)p, size);
}
template <class T> static inline cudaError_t cudaHostAlloc(T **p, size_t size, unsigned int flags) {
    return ::cudaHostAlloc((void **)(void *)p, size, flags);
}
template <class T>
static inline cudaError_t cudaFuncGetAttributes(struct cudaFuncAttributes *attr, T *entry) {
    return ::cudaFuncGetAttributes(attr, (const void *)entry);
}
template <class T>
static inline cudaError_t cudaFuncSetAttribute(T *entry, enum cudaFuncAttribute attr, int value) {
    return ::cudaFuncSetAttribute((const void *)entry, attr, value);
}
template <class T>
static inline cudaError_t cudaStreamAttachMemAsync(cudaStream_t stream, T *devPtr,
                                                   size_t length = 0,
                                                   unsigned int flags = cudaMemAttachSingle) {
    return ::cudaStreamAttachMemAsync(stream, (void *)devPtr, length, flags);
}

/* ---- the launcher behind EL_LAUNCH(kernel, grid, block, shmem, stream)(args...) ---- */
#define ELSIM_ARG_BYTES 1024 /* bytes of captured kernel arguments per queued launch */

namespace elsim {
/* Validates the configuration of a launch of fn and reserves a queue slot of `size` bytes for
 * its captured arguments. Returns the slot with the runtime's lock held (launch_commit
 * releases it), or NULL with the thread's last error set (an invalid configuration, stream
 * or device: exactly what cudaGetLastError reports after a failed <<<>>> launch). */
void *launch_begin(const void *fn, const char *name, const char *file, int line, dim3 grid,
                   dim3 block, size_t shmem, cudaStream_t stream, size_t size);
/* Queues the launch whose arguments were constructed in the slot. */
void launch_commit(void (*run)(void *), void (*destroy)(void *));
/* Between the two: pointer argument i of the launch must be NULL or point into (or one past)
 * memory the device can reach, else a fatal error (a GPU faults when the kernel uses it). */
void launch_check_pointer(int i, const void *p);

template <typename T> static inline void check_arg(int i, const T &v) {
    if constexpr (std::is_pointer<T>::value &&
                  !std::is_function<typename std::remove_pointer<T>::type>::value)
        launch_check_pointer(i, (const void *)v);
}

template <typename... P> struct closure {
    void (*fn)(P...);
    std::tuple<typename std::decay<P>::type...> args; /* by value, as a launch copies them */
    static void run(void *self) {
        closure *c = static_cast<closure *>(self);
        std::apply(c->fn, c->args); /* each emulated thread gets its own parameter copies */
    }
    static void destroy(void *self) { static_cast<closure *>(self)->~closure(); }
    template <size_t... I> void check(std::index_sequence<I...>) const {
        (check_arg((int)I, std::get<I>(args)), ...);
    }
};

template <typename... P> struct launcher {
    void (*fn)(P...);
    const char *name, *file;
    int line;
    dim3 grid, block;
    size_t shmem;
    cudaStream_t stream;
    template <typename... A> void operator()(A &&...a) const {
        static_assert(sizeof...(A) == sizeof...(P), "EL_LAUNCH: wrong number of kernel arguments");
        typedef closure<P...> C;
        static_assert(sizeof(C) <= ELSIM_ARG_BYTES, "cudasim: kernel arguments too large");
        static_assert(alignof(C) <= 16, "cudasim: kernel arguments over-aligned");
        void *slot = launch_begin((const void *)fn, name, file, line, grid, block, shmem, stream,
                                  sizeof(C));
        if (!slot) return;
        C *c = new (slot) C{fn, std::tuple<typename std::decay<P>::type...>(std::forward<A>(a)...)};
        c->check(std::index_sequence_for<P...>{});
        launch_commit(&C::run, &C::destroy);
    }
};

template <typename... P>
static inline launcher<P...> make_launcher(void (*fn)(P...), const char *name, const char *file,
                                           int line, dim3 grid, dim3 block, size_t shmem,
                                           cudaStream_t stream) {
    return launcher<P...>{fn, name, file, line, grid, block, shmem, stream};
}
} // namespace elsim

#define ELSIM_LAUNCH(kernel, grid, block, shmem, stream)                                   \
    ::elsim::make_launcher(kernel, #kernel, __FILE__, __LINE__, (grid), (block), (shmem),    \
                           (stream))
#define ELSIM_DYN_SHARED(type, name) type *const name = static_cast<type *>(elsim_dyn_shared())

#endif /* __cplusplus */

#endif /* ELSIM_CUDA_RUNTIME_H */
