/* cuda_common.cuh - what every CUDA op shares: the CHECK macro that turns a runtime error
 * into an el_status with file, line and the runtime's text, f16 loads, block reductions.
 * Internal to kernels/cuda; the C side sees only kernels/cuda/cuda_ops.h. */
#ifndef EL_CUDA_COMMON_CUH
#define EL_CUDA_COMMON_CUH

#include <cuda_fp16.h>
#include <cuda_runtime.h>
#include <stdint.h>

#include "kernels/cuda/cuda_ops.h"

extern "C" {
#include "platform/platform.h"
}

/* Evaluates a runtime call; on failure records it (el_cuda_last_error) and returns
 * EL_E_NODEV from the enclosing function. */
#define EL_CUDA_CHECK(call)                                                       \
    do {                                                                          \
        cudaError_t el_e_ = (call);                                               \
        if (el_e_ != cudaSuccess) return el_cuda_fail(el_e_, #call, __FILE__, __LINE__); \
    } while (0)

/* After a launch: the launch's own error (bad configuration), not an async fault. */
#define EL_CUDA_LAUNCHED() EL_CUDA_CHECK(cudaGetLastError())

/* The two source-level hooks that let tests/cudasim run these kernels on the CPU (builds with
 * -DEL_CUDA_SIM=ON compile the .cu files with g++ against tests/cudasim/include):
 *   EL_LAUNCH(kernel, grid, block, shmem, stream)(args...)   a launch; nvcc: <<<...>>>
 *   EL_DYN_SHARED(type, name);   the dynamic shared buffer; nvcc: extern __shared__ type name[]
 * Use them for every launch and every dynamic shared array. */
#ifdef EL_CUDA_SIM
#define EL_LAUNCH(kernel, grid, block, shmem, stream)                                 \
    ELSIM_LAUNCH(kernel, grid, block, shmem, stream)
#define EL_DYN_SHARED(type, name) ELSIM_DYN_SHARED(type, name)
#else
#define EL_LAUNCH(kernel, grid, block, shmem, stream)                                 \
    kernel<<<(grid), (block), (shmem), (stream)>>>
#define EL_DYN_SHARED(type, name) extern __shared__ type name[]
#endif

extern "C" el_status el_cuda_fail(cudaError_t e, const char *what, const char *file, int line);

/* Bytes per 32-block of the GGUF 32-block types (0 for others). */
static __device__ __forceinline__ size_t el_cuda_block_bytes(el_dtype dt) {
    return dt == EL_DT_Q8_0 ? 34 : dt == EL_DT_Q4_0 ? 18 : dt == EL_DT_Q4_1 ? 20
         : dt == EL_DT_Q5_0 ? 22 : dt == EL_DT_Q5_1 ? 24 : 0;
}

/* Byte o of a block read through 16-bit loads (blocks are whole halfwords: 18 to 34 bytes,
 * at even offsets; scripts/cuda_gate.sh forbids byte-wise global loads). */
static __device__ __forceinline__ int el_blk_byte(const uint16_t *p, int o) {
    const unsigned h = p[o >> 1];
    return (int)((o & 1) ? h >> 8 : h & 0xffu);
}
static __device__ __forceinline__ float el_blk_f16(const uint16_t *p, int o) {
    return __half2float(__ushort_as_half((unsigned short)p[o >> 1]));
}

/* Element i of a row-major tensor of GGUF 32-blocks (rows are whole blocks, so block i / 32
 * holds it), dequantized as kernels/cpu/quant.c does: d * (q - off), or d * q + m. */
static __device__ __forceinline__ float el_ld_q32(const void *w, el_dtype dt, size_t i) {
    const int j = (int)(i & 31), k = j & 15, sh = 4 * (j >> 4);
    const uint16_t *p = (const uint16_t *)((const uint8_t *)w + (i >> 5) * el_cuda_block_bytes(dt));
    switch (dt) {
    case EL_DT_Q8_0: return el_blk_f16(p, 0) * (float)(int8_t)el_blk_byte(p, 2 + j);
    case EL_DT_Q4_0: return el_blk_f16(p, 0) * (float)(((el_blk_byte(p, 2 + k) >> sh) & 15) - 8);
    case EL_DT_Q4_1:
        return el_blk_f16(p, 0) * (float)((el_blk_byte(p, 4 + k) >> sh) & 15) + el_blk_f16(p, 2);
    case EL_DT_Q5_0: {
        const int q = ((el_blk_byte(p, 6 + k) >> sh) & 15) |
                      ((el_blk_byte(p, 2 + (j >> 3)) >> (j & 7)) & 1) << 4;
        return el_blk_f16(p, 0) * (float)(q - 16);
    }
    default: { /* Q5_1 */
        const int q = ((el_blk_byte(p, 8 + k) >> sh) & 15) |
                      ((el_blk_byte(p, 4 + (j >> 3)) >> (j & 7)) & 1) << 4;
        return el_blk_f16(p, 0) * (float)q + el_blk_f16(p, 2);
    }
    }
}

static __device__ __forceinline__ float el_ld(const void *w, el_dtype dt, size_t i) {
    if (dt == EL_DT_Q8_0 || dt == EL_DT_Q4_0 || dt == EL_DT_Q4_1 || dt == EL_DT_Q5_0 ||
        dt == EL_DT_Q5_1)
        return el_ld_q32(w, dt, i);
    if (dt == EL_DT_F16) return __half2float(((const __half *)w)[i]);
    if (dt == EL_DT_BF16) {
        uint32_t b = (uint32_t)((const uint16_t *)w)[i] << 16;
        return __uint_as_float(b);
    }
    return ((const float *)w)[i];
}

/* The GELUs as GPT-2's gelu_new and the exact one (elementwise.cu, matmul epilogues). */
static __device__ __forceinline__ float el_gelu_tanh(float v) {
    return 0.5f * v * (1.0f + tanhf(0.7978845608028654f * (v + 0.044715f * v * v * v)));
}
static __device__ __forceinline__ float el_gelu_erf(float v) {
    return 0.5f * v * (1.0f + erff(v * 0.7071067811865476f));
}

/* The rotation of one RoPE pair (a, b) by an angle of cosine c and sine s (rope.cu and the
 * q|k|v epilogue): rounded products and sums, never contracted to FMAs, so every kernel that
 * rotates gives the same bits. */
static __device__ __forceinline__ void el_rope_pair(float &a, float &b, float c, float s) {
    const float ra = __fadd_rn(__fmul_rn(a, c), -__fmul_rn(b, s));
    b = __fadd_rn(__fmul_rn(a, s), __fmul_rn(b, c));
    a = ra;
}

/* A KV cache entry (attention.cu's store and the q|k|v epilogue): f16 rounds to nearest even. */
static __device__ __forceinline__ void el_kv_put(float *d, float x) { *d = x; }
static __device__ __forceinline__ void el_kv_put(__half *d, float x) { *d = __float2half_rn(x); }

static __device__ __forceinline__ float el_warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

static __device__ __forceinline__ float el_warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

/* Sum over the block (blockDim.x a multiple of 32, <= 1024); every thread gets it. */
static __device__ __forceinline__ float el_block_sum(float v) {
    __shared__ float part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = el_warp_sum(v);
    __syncthreads(); /* part[] may still be read by a previous call */
    if (lane == 0) part[warp] = v;
    __syncthreads();
    int nw = (int)(blockDim.x >> 5);
    v = lane < nw ? part[lane] : 0.0f;
    return el_warp_sum(v);
}

static __device__ __forceinline__ float el_block_max(float v) {
    __shared__ float part[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = el_warp_max(v);
    __syncthreads();
    if (lane == 0) part[warp] = v;
    __syncthreads();
    int nw = (int)(blockDim.x >> 5);
    v = lane < nw ? part[lane] : -INFINITY;
    return el_warp_max(v);
}

#endif /* EL_CUDA_COMMON_CUH */
