/* matmul.cu - y = W x for weights [out, in] (f32, f16, bf16, and the GGUF 32-blocks Q8_0,
 * Q4_0, Q4_1, Q5_0, Q5_1) and n f32 rows of x.
 * One warp per output row: lanes stride across the row (coalesced), and every one of the n
 * input rows reuses the weight row while it is in L1/L2. Batch-1 decode (n = 1) is a GEMV
 * whose speed is the weight stream; prefill chunks (n <= 64) re-read each row n times from
 * cache. When rows are whole 16-byte vectors (in a multiple of 8 for 2-byte weights, 4 for
 * f32) and the pointers 16-byte aligned, each lane loads 16 bytes at a time (a warp moves
 * 512 bytes per load instead of 64 or 128); otherwise one element per lane. Only the
 * input rows present are reduced across the warp. */
#include "kernels/cuda/cuda_common.cuh"

#define ROWS_PER_BLOCK 8 /* warps per block */
#define MAX_N 8          /* input rows per pass (registers) */

template <typename W>
static __device__ __forceinline__ float wload(const W *w, size_t i);
template <> __device__ __forceinline__ float wload<float>(const float *w, size_t i) { return w[i]; }
template <> __device__ __forceinline__ float wload<__half>(const __half *w, size_t i) {
    return __half2float(w[i]);
}
template <> __device__ __forceinline__ float wload<uint16_t>(const uint16_t *w, size_t i) {
    return __uint_as_float((uint32_t)w[i] << 16);
}

template <typename W>
__global__ void matmul_kernel(float *y, size_t ldy, const float *x, const W *w, size_t n,
                              size_t in, size_t out) {
    size_t row = (size_t)blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= out) return;
    const W *wr = w + row * in;
    for (size_t t0 = 0; t0 < n; t0 += MAX_N) {
        size_t nt = n - t0 < MAX_N ? n - t0 : MAX_N;
        float acc[MAX_N];
#pragma unroll
        for (int t = 0; t < MAX_N; t++) acc[t] = 0.0f;
        for (size_t i = lane; i < in; i += 32) {
            float wv = wload<W>(wr, i);
#pragma unroll
            for (int t = 0; t < MAX_N; t++)
                if ((size_t)t < nt) acc[t] += wv * x[(t0 + t) * in + i];
        }
        for (int t = 0; t < MAX_N && (size_t)t < nt; t++) { /* nt is the same warp-wide */
            float s = el_warp_sum(acc[t]);
            if (lane == 0) y[(t0 + t) * ldy + row] = s;
        }
    }
}

/* 16 bytes of weights, already in registers (one ld.global.nc.v4 per lane), as floats: 4
 * f32, or 8 f16 / bf16 taken out of the 32-bit words by shifts (little-endian: the lower
 * half is the first element). Never through memory: a memcpy from the loaded vector made
 * nvcc load the 16 bytes one byte at a time (scripts/cuda_gate.sh checks the PTX). */
static __device__ __forceinline__ void unpack16(uint4 u, float *f, const float *) {
    f[0] = __uint_as_float(u.x);
    f[1] = __uint_as_float(u.y);
    f[2] = __uint_as_float(u.z);
    f[3] = __uint_as_float(u.w);
}
static __device__ __forceinline__ void unpack16(uint4 u, float *f, const __half *) {
    const uint32_t v[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
        f[2 * j] = __half2float(__ushort_as_half((unsigned short)(v[j] & 0xffffu)));
        f[2 * j + 1] = __half2float(__ushort_as_half((unsigned short)(v[j] >> 16)));
    }
}
static __device__ __forceinline__ void unpack16(uint4 u, float *f, const uint16_t *) {
    const uint32_t v[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
    for (int j = 0; j < 4; j++) {
        f[2 * j] = __uint_as_float(v[j] << 16);
        f[2 * j + 1] = __uint_as_float(v[j] & 0xffff0000u);
    }
}

template <typename W>
__global__ void matmul_vec_kernel(float *y, size_t ldy, const float *x, const W *w, size_t n,
                                  size_t in, size_t out) {
    constexpr int V = 16 / (int)sizeof(W);
    size_t row = (size_t)blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= out) return;
    const W *wr = w + row * in;
    for (size_t t0 = 0; t0 < n; t0 += MAX_N) {
        size_t nt = n - t0 < MAX_N ? n - t0 : MAX_N;
        float acc[MAX_N];
#pragma unroll
        for (int t = 0; t < MAX_N; t++) acc[t] = 0.0f;
        for (size_t i = (size_t)lane * V; i < in; i += 32 * V) {
            float wv[V];
            unpack16(__ldg(reinterpret_cast<const uint4 *>(wr + i)), wv, wr);
#pragma unroll
            for (int t = 0; t < MAX_N; t++) {
                if ((size_t)t >= nt) break;
                const float *xr = x + (t0 + t) * in + i;
                float sum = 0.0f;
#pragma unroll
                for (int j = 0; j < V; j += 4) {
                    float4 xv = *reinterpret_cast<const float4 *>(xr + j);
                    sum += wv[j] * xv.x + wv[j + 1] * xv.y + wv[j + 2] * xv.z + wv[j + 3] * xv.w;
                }
                acc[t] += sum;
            }
        }
        for (int t = 0; t < MAX_N && (size_t)t < nt; t++) {
            float sum = el_warp_sum(acc[t]);
            if (lane == 0) y[(t0 + t) * ldy + row] = sum;
        }
    }
}

/* One GGUF 32-block (T: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1; BB bytes) into 32 floats, as
 * el_ld_q32: its halfwords are loaded first, all of each used (so no load is narrowed to
 * bytes: scripts/cuda_gate.sh). */
template <int T, int BB>
static __device__ __forceinline__ void decode_q32(const uint8_t *blk, float *v) {
    const uint16_t *p = (const uint16_t *)blk;
    uint16_t h[BB / 2];
#pragma unroll
    for (int i = 0; i < BB / 2; i++) h[i] = p[i];
#define EL_BYTE(o) ((int)(((o) & 1) ? h[(o) >> 1] >> 8 : h[(o) >> 1] & 0xffu))
    const float d = __half2float(__ushort_as_half((unsigned short)h[0]));
    const float m = (T == EL_DT_Q4_1 || T == EL_DT_Q5_1)
                        ? __half2float(__ushort_as_half((unsigned short)h[1])) : 0.0f;
    const int qs = T == EL_DT_Q8_0 || T == EL_DT_Q4_0 ? 2 : T == EL_DT_Q4_1 ? 4
                 : T == EL_DT_Q5_0 ? 6 : 8;
    const int qh = T == EL_DT_Q5_1 ? 4 : 2;
    uint32_t hb = 0;
    if (T == EL_DT_Q5_0 || T == EL_DT_Q5_1)
        hb = (uint32_t)h[qh / 2] | (uint32_t)h[qh / 2 + 1] << 16;
#pragma unroll
    for (int j = 0; j < 32; j++) {
        if (T == EL_DT_Q8_0) {
            v[j] = d * (float)(int8_t)EL_BYTE(qs + j);
        } else {
            int q = (EL_BYTE(qs + (j & 15)) >> (4 * (j >> 4))) & 15;
            if (T == EL_DT_Q5_0 || T == EL_DT_Q5_1) q |= (int)((hb >> j) & 1) << 4;
            if (T == EL_DT_Q4_0) v[j] = d * (float)(q - 8);
            else if (T == EL_DT_Q5_0) v[j] = d * (float)(q - 16);
            else v[j] = d * (float)q + m;
        }
    }
#undef EL_BYTE
}

/* GGUF 32-block weights (rows of in / 32 blocks of BB bytes): one warp per output row, lane l
 * takes the row's blocks l, l + 32, ...; each block is dequantized once into registers and
 * dotted with every input row's 32 activations in f32. */
template <int T, int BB>
__global__ void matmul_q32_kernel(float *y, size_t ldy, const float *x, const uint8_t *w,
                                  size_t n, size_t in, size_t out) {
    size_t row = (size_t)blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= out) return;
    const size_t nb = in / 32;
    const uint8_t *wr = w + row * nb * BB;
    for (size_t t0 = 0; t0 < n; t0 += MAX_N) {
        size_t nt = n - t0 < MAX_N ? n - t0 : MAX_N;
        float acc[MAX_N];
#pragma unroll
        for (int t = 0; t < MAX_N; t++) acc[t] = 0.0f;
        for (size_t b = (size_t)lane; b < nb; b += 32) {
            float v[32];
            decode_q32<T, BB>(wr + b * BB, v);
#pragma unroll
            for (int t = 0; t < MAX_N; t++) {
                if ((size_t)t >= nt) break;
                const float *xr = x + (t0 + t) * in + b * 32;
                float sum = 0.0f;
#pragma unroll
                for (int j = 0; j < 32; j++) sum += v[j] * xr[j];
                acc[t] += sum;
            }
        }
        for (int t = 0; t < MAX_N && (size_t)t < nt; t++) {
            float sum = el_warp_sum(acc[t]);
            if (lane == 0) y[(t0 + t) * ldy + row] = sum;
        }
    }
}

template <typename W>
static void launch(float *y, size_t ldy, const float *x, const void *w, size_t n, size_t in,
                   size_t out, cudaStream_t s) {
    dim3 grid((unsigned)((out + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK)), block(32 * ROWS_PER_BLOCK);
    const size_t v = 16 / sizeof(W);
    bool vec = in % v == 0 && in % 4 == 0 && ((uintptr_t)w | (uintptr_t)x) % 16 == 0;
    if (vec)
        EL_LAUNCH(matmul_vec_kernel<W>, grid, block, 0, s)(y, ldy, x, (const W *)w, n, in, out);
    else
        EL_LAUNCH(matmul_kernel<W>, grid, block, 0, s)(y, ldy, x, (const W *)w, n, in, out);
}

extern "C" el_status el_cuda_matmul(float *y, size_t ldy, const float *x, const void *w,
                                    el_dtype wt, size_t n, size_t in, size_t out,
                                    el_cuda_stream st) {
    if (wt == EL_DT_Q4_K || wt == EL_DT_Q5_K || wt == EL_DT_Q6_K) /* matmul_k.cu */
        return el_cuda_matmul_k(y, ldy, x, w, wt, n, in, out, st);
    if (n == 0 || out == 0) return EL_OK;
    cudaStream_t s = (cudaStream_t)st;
    if (wt == EL_DT_Q8_0 || wt == EL_DT_Q4_0 || wt == EL_DT_Q4_1 || wt == EL_DT_Q5_0 ||
        wt == EL_DT_Q5_1) {
        if (in % 32)
            return el_errorf(EL_E_INVALID, "cuda matmul: %s rows of %zu values are not whole "
                             "blocks of 32", el_dtype_name(wt), in);
        if (n >= 2) /* prompt batches: int8 dot products (matmul_dp4a.cu) */
            return el_cuda_matmul_q32_dp4a(y, ldy, x, w, wt, n, in, out, st);
        dim3 grid((unsigned)((out + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK)),
            block(32 * ROWS_PER_BLOCK);
        const uint8_t *wq = (const uint8_t *)w;
#define EL_Q32(T, BB)                                                                          \
    EL_LAUNCH((matmul_q32_kernel<T, BB>), grid, block, 0, s)(y, ldy, x, wq, n, in, out)
        switch (wt) {
        case EL_DT_Q8_0: EL_Q32(EL_DT_Q8_0, 34); break;
        case EL_DT_Q4_0: EL_Q32(EL_DT_Q4_0, 18); break;
        case EL_DT_Q4_1: EL_Q32(EL_DT_Q4_1, 20); break;
        case EL_DT_Q5_0: EL_Q32(EL_DT_Q5_0, 22); break;
        default: EL_Q32(EL_DT_Q5_1, 24); break;
        }
#undef EL_Q32
    } else if (wt == EL_DT_F16)
        launch<__half>(y, ldy, x, w, n, in, out, s);
    else if (wt == EL_DT_BF16)
        launch<uint16_t>(y, ldy, x, w, n, in, out, s);
    else
        launch<float>(y, ldy, x, w, n, in, out, s);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

extern "C" el_status el_cuda_linear(float *y, size_t ldy, const float *x, const void *w,
                                    el_dtype wt, const void *b, el_dtype bt, size_t n,
                                    size_t in, size_t out, el_cuda_stream st) {
    el_status s = el_cuda_matmul(y, ldy, x, w, wt, n, in, out, st);
    if (s != EL_OK || !b) return s;
    return el_cuda_add_bias(y, ldy, b, bt, n, out, st);
}
