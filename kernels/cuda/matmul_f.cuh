/* matmul_f.cuh - the f32, f16 and bf16 weights' matmul bodies (internal to kernels/cuda:
 * matmul.cu's kernels and phased.cu's fused launches): the rows of one block of
 * ROWS_PER_BLOCK warps, its index an argument so a persistent kernel can run it as one task
 * (kernels/cuda/phased.cuh). See matmul.cu for the method. */
#ifndef EL_CUDA_MATMUL_F_CUH
#define EL_CUDA_MATMUL_F_CUH

#include "kernels/cuda/matmul_norm.cuh"

#define ROWS_PER_BLOCK 8 /* warps per block */
#define MAX_N EL_MM_PASS /* input rows per pass (registers) */

template <typename W>
static __device__ __forceinline__ float wload(const W *w, size_t i);
template <> __device__ __forceinline__ float wload<float>(const float *w, size_t i) { return w[i]; }
template <> __device__ __forceinline__ float wload<__half>(const __half *w, size_t i) {
    return __half2float(w[i]);
}
template <> __device__ __forceinline__ float wload<uint16_t>(const uint16_t *w, size_t i) {
    return __uint_as_float((uint32_t)w[i] << 16);
}

/* Rows bx * ROWS_PER_BLOCK .. of o, a warp each, one element per lane at a time. */
template <typename W, bool NORM, int E>
static __device__ __forceinline__ void matmul_rows(size_t bx, const el_mm_out &o,
                                                   const float *x, size_t n, size_t in) {
    size_t row = bx * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= o.rows) return;
    constexpr bool TWO = E != MM_ONE;
    const el_mm_sel p = mm_part(o, row);
    size_t ra, rb;
    const int part = mm_rows<E>(o, p, row, ra, rb);
    const W *wr = (const W *)p.w + ra * in;
    const W *wu = (const W *)mm_w2<E>(o, p, rb, in * sizeof(W));
    for (size_t t0 = 0; t0 < n; t0 += MAX_N) {
        size_t nt = n - t0 < MAX_N ? n - t0 : MAX_N;
        float acc[MAX_N], accu[MAX_N];
#pragma unroll
        for (int t = 0; t < MAX_N; t++) acc[t] = accu[t] = 0.0f;
        el_mm_stats st;
        if (NORM) mm_stats(o, x + t0 * in, nt, in, lane, st);
        for (size_t i = lane; i < in; i += 32) {
            float wv = wload<W>(wr, i), uv = TWO ? wload<W>(wu, i) : 0.0f;
#pragma unroll
            for (int t = 0; t < MAX_N; t++) {
                if ((size_t)t >= nt) break;
                const float xv = x[(t0 + t) * in + i];
                const float xn = NORM ? mm_norm(o, xv, i, st.mean[t], st.inv[t]) : xv;
                acc[t] += wv * xn;
                if (TWO) accu[t] += uv * xn;
            }
        }
        mm_finish<E, MAX_N>(o, p, part, ra, rb, t0, nt, acc, accu, lane);
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

/* matmul_rows by 16-byte weight loads (rows of whole vectors, 16-byte aligned). */
template <typename W, bool NORM, int E>
static __device__ __forceinline__ void matmul_vec_rows(size_t bx, const el_mm_out &o,
                                                       const float *x, size_t n, size_t in) {
    constexpr int V = 16 / (int)sizeof(W);
    size_t row = bx * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= o.rows) return;
    constexpr bool TWO = E != MM_ONE;
    const el_mm_sel p = mm_part(o, row);
    size_t ra, rb;
    const int part = mm_rows<E>(o, p, row, ra, rb);
    const W *wr = (const W *)p.w + ra * in;
    const W *wu = (const W *)mm_w2<E>(o, p, rb, in * sizeof(W));
    for (size_t t0 = 0; t0 < n; t0 += MAX_N) {
        size_t nt = n - t0 < MAX_N ? n - t0 : MAX_N;
        float acc[MAX_N], accu[MAX_N];
#pragma unroll
        for (int t = 0; t < MAX_N; t++) acc[t] = accu[t] = 0.0f;
        el_mm_stats st;
        if (NORM) mm_stats(o, x + t0 * in, nt, in, lane, st);
        for (size_t i = (size_t)lane * V; i < in; i += 32 * V) {
            float wv[V], uv[V];
            unpack16(__ldg(reinterpret_cast<const uint4 *>(wr + i)), wv, wr);
            if (TWO) unpack16(__ldg(reinterpret_cast<const uint4 *>(wu + i)), uv, wu);
#pragma unroll
            for (int t = 0; t < MAX_N; t++) {
                if ((size_t)t >= nt) break;
                const float *xr = x + (t0 + t) * in + i;
                float sum = 0.0f, sumu = 0.0f;
#pragma unroll
                for (int j = 0; j < V; j += 4) {
                    float4 xv = *reinterpret_cast<const float4 *>(xr + j);
                    if (NORM) {
                        xv.x = mm_norm(o, xv.x, i + j, st.mean[t], st.inv[t]);
                        xv.y = mm_norm(o, xv.y, i + j + 1, st.mean[t], st.inv[t]);
                        xv.z = mm_norm(o, xv.z, i + j + 2, st.mean[t], st.inv[t]);
                        xv.w = mm_norm(o, xv.w, i + j + 3, st.mean[t], st.inv[t]);
                    }
                    sum += wv[j] * xv.x + wv[j + 1] * xv.y + wv[j + 2] * xv.z + wv[j + 3] * xv.w;
                    if (TWO)
                        sumu += uv[j] * xv.x + uv[j + 1] * xv.y + uv[j + 2] * xv.z +
                                uv[j + 3] * xv.w;
                }
                acc[t] += sum;
                if (TWO) accu[t] += sumu;
            }
        }
        mm_finish<E, MAX_N>(o, p, part, ra, rb, t0, nt, acc, accu, lane);
    }
}

/* o for parts laid end to end, their epilogue and the prologue's norm (NULL: none). */
static el_mm_out mm_parts(const el_cuda_part *parts, size_t n_parts, el_cuda_epi epi,
                          const el_cuda_prenorm *norm) {
    el_mm_out o = {};
    for (size_t p = 0; p < n_parts; p++) {
        o.w[p] = parts[p].w;
        o.y[p] = parts[p].y;
        o.b[p] = parts[p].b;
        o.bt[p] = parts[p].bt;
        o.ldy[p] = parts[p].ldy;
        o.first[p + 1] = o.first[p] + parts[p].out;
    }
    o.rows = o.first[n_parts];
    o.parts = (int)n_parts;
    o.epi = (int)epi;
    if (norm && norm->kind != EL_CUDA_NORM_NONE) {
        o.nw = norm->w;
        o.nb = norm->b;
        o.nwt = norm->wt;
        o.norm = (int)norm->kind;
        o.eps = norm->eps;
        o.noff = norm->w_offset;
    }
    return o;
}

/* mm_parts for el_cuda_linear_parts' arguments, refusing what it does not take. */
static el_status mm_parts_checked(const el_cuda_part *parts, size_t n_parts, el_cuda_epi epi,
                                  const el_cuda_prenorm *norm, el_mm_out *o) {
    if (n_parts == 0 || n_parts > EL_CUDA_MAX_PARTS)
        return el_errorf(EL_E_USAGE, "cuda linear: %zu parts (1 to %d)", n_parts,
                         EL_CUDA_MAX_PARTS);
    if (epi == EL_CUDA_EPI_QKV)
        return el_errorf(EL_E_USAGE, "cuda linear: the q|k|v epilogue goes through "
                         "el_cuda_linear_qkv");
    *o = mm_parts(parts, n_parts, epi, norm);
    if (epi == EL_CUDA_EPI_SWIGLU || epi == EL_CUDA_EPI_GEGLU) { /* rows: the gate's */
        if (n_parts != 2 || parts[0].out != parts[1].out)
            return el_errorf(EL_E_USAGE, "cuda linear: a gated epilogue takes 2 parts of the "
                             "same rows (got %zu)", n_parts);
        o->rows = parts[0].out;
    }
    return EL_OK;
}

/* 16-byte weight loads for rows of in of W at w (and x): in whole vectors, all aligned. */
static bool mm_vec_ok(size_t in, size_t wsize, const float *x, const el_mm_out &o) {
    uintptr_t addr = (uintptr_t)x;
    for (int p = 0; p < o.parts; p++) addr |= (uintptr_t)o.w[p];
    return in % (16 / wsize) == 0 && in % 4 == 0 && addr % 16 == 0;
}

#endif /* EL_CUDA_MATMUL_F_CUH */
