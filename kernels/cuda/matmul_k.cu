/* matmul_k.cu - the GGUF K-quants on the GPU (Q4_K 144 bytes, Q5_K 176, Q6_K 210 per
 * super-block of 256 values; layouts in docs/QUANT.md): y = W x for weights [out, in] and n
 * f32 rows of x, and embedding rows dequantized on lookup.
 *
 * The unit of work is a run of 32 consecutive values of a row (unit u of a row: super-block
 * u / 8, run u % 8): a Q4_K/Q5_K sub-block (one 6-bit scale and min), or half of one of Q6_K's
 * four 32-runs per 128 values (two 8-bit scales). A thread decodes its run into 32 floats in
 * registers, exactly as kernels/cpu/quant.c dequantizes (d * sc, then dl * q - dmin * mn; no
 * fused multiply-add), so the embedding rows equal the CPU's bit for bit.
 * Loads: Q4_K/Q5_K super-blocks are 16-byte multiples, so the header (d, dmin, scales[12]),
 * the qs run and Q5_K's qh are 16-byte vector loads; Q6_K's 210-byte super-blocks are only
 * 2-byte aligned, so ql/qh come in 32-bit words (shifted by 16 bits when the run starts at
 * 2 mod 4) and the scale pair and d as 16-bit loads. Never a byte load (scripts/cuda_gate.sh). */
#include "kernels/cuda/matmul_out.cuh"

#define KROWS 8 /* warps (output rows) per block of the matmul */
#define KMAX_N 8 /* input rows per pass (registers) */
#define KEMBED_THREADS 128

static __device__ __forceinline__ float f16_bits(uint32_t h) {
    return __half2float(__ushort_as_half((unsigned short)(h & 0xffffu)));
}

/* 32 bytes at a 2-aligned p as 8 little-endian words, by aligned 32-bit loads: 8 when p is
 * 4-aligned, else 9 from p - 2. The 2 extra bytes on each side lie in aligned words that
 * hold wanted bytes too (so in mapped memory), and inside the tensor for every run read
 * below except p - 2 of a tensor that itself starts at 2 mod 4 (arena tensors do not). */
static __device__ __forceinline__ void load32_a2(const uint8_t *p, uint32_t w[8]) {
    const uint32_t *a = (const uint32_t *)((uintptr_t)p & ~(uintptr_t)3);
    const unsigned sh = (unsigned)((uintptr_t)p & 2) * 8; /* 0 or 16 */
    uint32_t r[9];
#pragma unroll
    for (int k = 0; k < 8; k++) r[k] = __ldg(a + k);
    r[8] = sh ? __ldg(a + 8) : 0u;
#pragma unroll
    for (int k = 0; k < 8; k++) w[k] = (uint32_t)((((uint64_t)r[k + 1] << 32) | r[k]) >> sh);
}

static __device__ __forceinline__ void words8(const uint8_t *p, uint32_t w[8]) {
    const uint4 a = __ldg((const uint4 *)p), b = __ldg((const uint4 *)p + 1);
    w[0] = a.x, w[1] = a.y, w[2] = a.z, w[3] = a.w;
    w[4] = b.x, w[5] = b.y, w[6] = b.z, w[7] = b.w;
}

/* Run j (0..7) of the super-block at blk into v[32], dequantized. */
template <int T>
static __device__ __forceinline__ void decode_k(const uint8_t *blk, int j, float *v) {
    if (T == EL_DT_Q6_K) { /* ql[128], qh[64], scales[16] (i8), d */
        const int g = j >> 2, run = j & 3;
        uint32_t ql[8], qh[8];
        load32_a2(blk + 64 * g + 32 * (run & 1), ql);
        load32_a2(blk + 128 + 32 * g, qh);
        const float d = f16_bits(__ldg((const uint16_t *)(blk + 208)));
        const uint32_t s2 = __ldg((const uint16_t *)(blk + 192 + 2 * j));
        const float d0 = d * (float)(int8_t)(s2 & 0xffu), d1 = d * (float)(int8_t)(s2 >> 8);
        const int sl = 4 * (run >> 1), shh = 2 * run;
#pragma unroll
        for (int l = 0; l < 32; l++) {
            const int b = 8 * (l & 3);
            const int q = (int)((ql[l >> 2] >> (b + sl)) & 15u) |
                          (int)((qh[l >> 2] >> (b + shh)) & 3u) << 4;
            v[l] = (l < 16 ? d0 : d1) * (float)(q - 32);
        }
        return;
    }
    /* Q4_K / Q5_K: d, dmin, scales[12] in the first 16 bytes (h.y, h.z, h.w: bytes 0-3,
     * 4-7, 8-11 of the scales), Q5_K's qh[32] next, then qs[128]. */
    const uint4 h = __ldg((const uint4 *)blk);
    const float d = f16_bits(h.x), dmin = f16_bits(h.x >> 16);
    int sc, mn;
    if (j < 4) {
        sc = (int)(h.y >> (8 * j)) & 63;
        mn = (int)(h.z >> (8 * j)) & 63;
    } else {
        const int s = 8 * (j - 4);
        sc = (int)((h.w >> s) & 15u) | (int)((h.y >> (s + 6)) & 3u) << 4;
        mn = (int)((h.w >> (s + 4)) & 15u) | (int)((h.z >> (s + 6)) & 3u) << 4;
    }
    const float dl = d * (float)sc, ml = dmin * (float)mn;
    uint32_t qs[8], qh[8];
    words8(blk + (T == EL_DT_Q5_K ? 48 : 16) + 32 * (j >> 1), qs);
    if (T == EL_DT_Q5_K) words8(blk + 16, qh);
    const int sl = 4 * (j & 1);
#pragma unroll
    for (int l = 0; l < 32; l++) {
        const int b = 8 * (l & 3);
        int q = (int)((qs[l >> 2] >> (b + sl)) & 15u);
        if (T == EL_DT_Q5_K) q |= (int)((qh[l >> 2] >> (b + j)) & 1u) << 4;
        v[l] = __fmul_rn(dl, (float)q) - ml; /* two roundings, as the CPU */
    }
}

/* One warp per output row; lane l takes the row's runs l, l + 32, ... (consecutive lanes:
 * consecutive runs, so a warp reads 4 whole super-blocks per step), decodes each once and
 * dots it with every input row's 32 activations in f32 (X4: x 16-byte aligned, float4
 * loads). Sums of the lanes by shuffles. */
template <int T, int BB, bool X4>
__global__ void matmul_k_kernel(el_mm_out o, const float *x, size_t n, size_t in) {
    size_t row = (size_t)blockIdx.x * KROWS + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= o.rows) return;
    const el_mm_sel p = mm_part(o, row);
    row -= p.first;
    const size_t nu = in / 32;
    const uint8_t *wr = (const uint8_t *)p.w + row * (in / 256) * BB;
    for (size_t t0 = 0; t0 < n; t0 += KMAX_N) {
        const size_t nt = n - t0 < KMAX_N ? n - t0 : KMAX_N;
        float acc[KMAX_N];
#pragma unroll
        for (int t = 0; t < KMAX_N; t++) acc[t] = 0.0f;
        for (size_t u = (size_t)lane; u < nu; u += 32) {
            float v[32];
            decode_k<T>(wr + (u >> 3) * BB, (int)(u & 7), v);
#pragma unroll
            for (int t = 0; t < KMAX_N; t++) {
                if ((size_t)t >= nt) break;
                const float *xr = x + (t0 + t) * in + u * 32;
                float sum = 0.0f;
                if (X4) {
#pragma unroll
                    for (int k = 0; k < 32; k += 4) {
                        const float4 xv = *reinterpret_cast<const float4 *>(xr + k);
                        sum += v[k] * xv.x + v[k + 1] * xv.y + v[k + 2] * xv.z + v[k + 3] * xv.w;
                    }
                } else {
#pragma unroll
                    for (int k = 0; k < 32; k++) sum += v[k] * xr[k];
                }
                acc[t] += sum;
            }
        }
        for (int t = 0; t < KMAX_N && (size_t)t < nt; t++) { /* nt is the same warp-wide */
            const float s = el_warp_sum(acc[t]);
            if (lane == 0) mm_store(p, o.epi, row, t0 + t, s);
        }
    }
}

/* Block t: row r = ids ? ids[t] : row0 + t of the table; y[t, :] = (ADD: +=) that row,
 * each thread decoding whole runs. */
template <int T, int BB, bool ADD>
__global__ void embed_k_kernel(float *y, const uint8_t *table, size_t dim, const int32_t *ids,
                               size_t row0) {
    const size_t t = blockIdx.x;
    const size_t r = ids ? (size_t)ids[t] : row0 + t;
    const uint8_t *tr = table + r * (dim / 256) * BB;
    float *o = y + t * dim;
    for (size_t u = threadIdx.x; u < dim / 32; u += blockDim.x) {
        float v[32];
        decode_k<T>(tr + (u >> 3) * BB, (int)(u & 7), v);
#pragma unroll
        for (int l = 0; l < 32; l++) {
            if (ADD) o[u * 32 + l] += v[l];
            else o[u * 32 + l] = v[l];
        }
    }
}

/* What the kernels assume of a K tensor w with rows of in values: the type, whole
 * super-blocks, and w aligned for the loads (16 bytes for Q4_K/Q5_K, 2 for Q6_K). */
static el_status k_rows(const char *what, el_dtype wt, const void *w, size_t in) {
    if (wt != EL_DT_Q4_K && wt != EL_DT_Q5_K && wt != EL_DT_Q6_K)
        return el_errorf(EL_E_INVALID, "%s: %s is not a K block type (Q4_K, Q5_K, Q6_K)", what,
                         el_dtype_name(wt));
    if (in % 256)
        return el_errorf(EL_E_INVALID, "%s: %s rows of %zu values are not whole super-blocks "
                         "of 256", what, el_dtype_name(wt), in);
    const unsigned align = wt == EL_DT_Q6_K ? 2 : 16;
    if ((uintptr_t)w % align)
        return el_errorf(EL_E_INVALID, "%s: %s weights at %p: need %u-byte alignment", what,
                         el_dtype_name(wt), w, align);
    return EL_OK;
}

template <int T, int BB>
static void launch_k(const el_mm_out &o, const float *x, size_t n, size_t in, cudaStream_t s) {
    const dim3 grid((unsigned)((o.rows + KROWS - 1) / KROWS)), block(32 * KROWS);
    if ((uintptr_t)x % 16 == 0)
        EL_LAUNCH((matmul_k_kernel<T, BB, true>), grid, block, 0, s)(o, x, n, in);
    else
        EL_LAUNCH((matmul_k_kernel<T, BB, false>), grid, block, 0, s)(o, x, n, in);
}

el_status el_mm_run_k(const el_mm_out &o, const float *x, el_dtype wt, size_t n, size_t in,
                      cudaStream_t s) {
    for (int p = 0; p < o.parts; p++) {
        const el_status e = k_rows("cuda matmul", wt, o.w[p], in);
        if (e != EL_OK) return e;
    }
    if (n == 0 || o.rows == 0) return EL_OK;
    if (wt == EL_DT_Q4_K) launch_k<EL_DT_Q4_K, 144>(o, x, n, in, s);
    else if (wt == EL_DT_Q5_K) launch_k<EL_DT_Q5_K, 176>(o, x, n, in, s);
    else launch_k<EL_DT_Q6_K, 210>(o, x, n, in, s);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

extern "C" el_status el_cuda_matmul_k(float *y, size_t ldy, const float *x, const void *w,
                                      el_dtype wt, size_t n, size_t in, size_t out,
                                      el_cuda_stream st) {
    return el_mm_run_k(mm_one(y, ldy, w, NULL, EL_DT_F32, out), x, wt, n, in,
                       (cudaStream_t)st);
}

template <int T, int BB>
static void launch_embed_k(float *y, const uint8_t *table, size_t dim, const int32_t *ids,
                           size_t row0, size_t n, bool add, cudaStream_t s) {
    if (add)
        EL_LAUNCH((embed_k_kernel<T, BB, true>), (unsigned)n, KEMBED_THREADS, 0, s)(y, table, dim,
                                                                                  ids, row0);
    else
        EL_LAUNCH((embed_k_kernel<T, BB, false>), (unsigned)n, KEMBED_THREADS, 0, s)(y, table, dim,
                                                                                   ids, row0);
}

extern "C" el_status el_cuda_embed_k(float *y, const void *table, el_dtype dt, size_t dim,
                                     const int32_t *ids, size_t row0, size_t n, bool add,
                                     el_cuda_stream st) {
    const el_status e = k_rows("cuda embed", dt, table, dim);
    if (e != EL_OK) return e;
    if (n == 0 || dim == 0) return EL_OK;
    cudaStream_t s = (cudaStream_t)st;
    const uint8_t *tq = (const uint8_t *)table;
    if (dt == EL_DT_Q4_K) launch_embed_k<EL_DT_Q4_K, 144>(y, tq, dim, ids, row0, n, add, s);
    else if (dt == EL_DT_Q5_K) launch_embed_k<EL_DT_Q5_K, 176>(y, tq, dim, ids, row0, n, add, s);
    else launch_embed_k<EL_DT_Q6_K, 210>(y, tq, dim, ids, row0, n, add, s);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}
