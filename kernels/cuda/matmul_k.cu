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
#include "kernels/cuda/matmul_norm.cuh"

#define KROWS 8 /* warps (output rows) per block of the matmul */
#define KMAX_N EL_MM_PASS /* input rows per pass (registers) */
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

/* Run j (0..7) of the super-block at blk as 8 words of 4 unsigned bytes (Q4_K 0..15, Q5_K
 * 0..31, Q6_K 0..63), its scales for values 0-15 and 16-31 (Q4_K/Q5_K: the sub-block's sc
 * twice) and min mn (Q6_K: 32 * sc per half, as the CPU's el_quant_unpack), d and m. */
template <int T>
static __device__ __forceinline__ void unpack_k_words(const uint8_t *blk, int j, uint32_t *qw,
                                                      int *sc0, int *sc1, int *mn0, int *mn1,
                                                      float *d, float *m) {
    if (T == EL_DT_Q6_K) {
        const int g = j >> 2, run = j & 3;
        uint32_t ql[8], qh[8];
        load32_a2(blk + 64 * g + 32 * (run & 1), ql);
        load32_a2(blk + 128 + 32 * g, qh);
        *d = *m = f16_bits(__ldg((const uint16_t *)(blk + 208)));
        const uint32_t s2 = __ldg((const uint16_t *)(blk + 192 + 2 * j));
        *sc0 = (int)(int8_t)(s2 & 0xffu);
        *sc1 = (int)(int8_t)(s2 >> 8);
        *mn0 = 32 * *sc0;
        *mn1 = 32 * *sc1;
        const int sl = 4 * (run >> 1), shh = 2 * run;
#pragma unroll
        for (int k = 0; k < 8; k++)
            qw[k] = ((ql[k] >> sl) & 0x0f0f0f0fu) | ((qh[k] >> shh) & 0x03030303u) << 4;
        return;
    }
    const uint4 h = __ldg((const uint4 *)blk);
    *d = f16_bits(h.x);
    *m = f16_bits(h.x >> 16);
    int sc, mn;
    if (j < 4) {
        sc = (int)(h.y >> (8 * j)) & 63;
        mn = (int)(h.z >> (8 * j)) & 63;
    } else {
        const int s = 8 * (j - 4);
        sc = (int)((h.w >> s) & 15u) | (int)((h.y >> (s + 6)) & 3u) << 4;
        mn = (int)((h.w >> (s + 4)) & 15u) | (int)((h.z >> (s + 6)) & 3u) << 4;
    }
    *sc0 = *sc1 = sc;
    *mn0 = *mn1 = mn;
    uint32_t qs[8], qh[8];
    words8(blk + (T == EL_DT_Q5_K ? 48 : 16) + 32 * (j >> 1), qs);
    if (T == EL_DT_Q5_K) words8(blk + 16, qh);
    const int sl = 4 * (j & 1);
#pragma unroll
    for (int k = 0; k < 8; k++) {
        qw[k] = (qs[k] >> sl) & 0x0f0f0f0fu;
        if (T == EL_DT_Q5_K) qw[k] |= ((qh[k] >> j) & 0x01010101u) << 4;
    }
}

/* Run j (0..7) of the super-block at blk into v[32], dequantized (Q6_K: d * sc * (q - 32);
 * Q4_K/Q5_K: (d * sc) * q - dmin * mn, two roundings, as the CPU). */
template <int T>
static __device__ __forceinline__ void decode_k(const uint8_t *blk, int j, float *v) {
    uint32_t qw[8];
    int sc0, sc1, mn0, mn1;
    float d, m;
    unpack_k_words<T>(blk, j, qw, &sc0, &sc1, &mn0, &mn1, &d, &m);
    const float d0 = d * (float)sc0, d1 = d * (float)sc1, ml = m * (float)mn0;
#pragma unroll
    for (int l = 0; l < 32; l++) {
        const int q = (int)((qw[l >> 2] >> (8 * (l & 3))) & 0xffu);
        if (T == EL_DT_Q6_K) v[l] = (l < 16 ? d0 : d1) * (float)(q - 32);
        else v[l] = __fmul_rn(d0, (float)q) - ml;
    }
}

/* One warp per output row; lane l takes the row's runs l, l + 32, ... (consecutive lanes:
 * consecutive runs, so a warp reads 4 whole super-blocks per step), decodes each once and
 * dots it with every input row's 32 activations in f32. Sums of the lanes by shuffles.
 * NORM: the norm prologue. E (mm_rows): each run of a second row (the gated epilogue's up
 * row, o.w[1], or the q|k|v epilogue's pair) is decoded and summed after the first's, each
 * row accumulated exactly as a row of its own. */
template <int T, int BB, bool X4, bool NORM, int E>
__global__ void matmul_k_kernel(el_mm_out o, const float *x, size_t n, size_t in) {
    const size_t row = (size_t)blockIdx.x * KROWS + (threadIdx.x >> 5);
    const int lane = threadIdx.x & 31;
    if (row >= o.rows) return;
    constexpr bool TWO = E != MM_ONE;
    const el_mm_sel p = mm_part(o, row);
    size_t ra, rb;
    const int part = mm_rows<E>(o, p, row, ra, rb);
    const size_t nu = in / 32;
    const uint8_t *wr = (const uint8_t *)p.w + ra * (in / 256) * BB;
    const uint8_t *wu = mm_w2<E>(o, p, rb, (in / 256) * BB);
    for (size_t t0 = 0; t0 < n; t0 += KMAX_N) {
        const size_t nt = n - t0 < KMAX_N ? n - t0 : KMAX_N;
        float acc[KMAX_N], accu[KMAX_N];
#pragma unroll
        for (int t = 0; t < KMAX_N; t++) acc[t] = accu[t] = 0.0f;
        el_mm_stats st;
        if (NORM) mm_stats(o, x + t0 * in, nt, in, lane, st);
        /* With a norm, the second row takes a second sweep (registers: one row's run, norm
         * factors and sums live at a time). */
#pragma unroll
        for (int h = 0; h < (TWO && NORM ? 2 : 1); h++)
            for (size_t u = (size_t)lane; u < nu; u += 32) {
                float v[32], na[32], nb[32];
                if (NORM) mm_norm_cols(o, u * 32, na, nb);
                decode_k<T>((h ? wu : wr) + (u >> 3) * BB, (int)(u & 7), v);
                mm_dot32<X4, NORM>(o, v, x + t0 * in, u * 32, nt, in, st, na, nb,
                                   h ? accu : acc);
                if (!TWO || NORM) continue;
                decode_k<T>(wu + (u >> 3) * BB, (int)(u & 7), v);
                mm_dot32<X4, NORM>(o, v, x + t0 * in, u * 32, nt, in, st, na, nb, accu);
            }
        mm_finish<E, KMAX_N>(o, p, part, ra, rb, t0, nt, acc, accu, lane);
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

/* ---- prompt batches (n >= 2): int8 dot products, as el_cpu_matmul's Q8_K path ----------
 * The x rows are quantized as kernels/cpu/matmul_q.c's quantize_q8k: per 256 values (a
 * super-block), the value of largest magnitude (the first one on a tie) maps to -127 exactly
 * (iscale = -127 / max), q = nearest, ties to even, of iscale * x (at most 127), d = 1 /
 * iscale, and the sums of each 16 q. A weight super-block then costs, per x row,
 *     isum = sum_j sc_j * (q_w . q_x over sub-block j),  imin = sum_j mn_j * (sum of q_x)
 *     d_x * (d * isum - m * imin)
 * with Q4_K/Q5_K's 6-bit scales and mins (m = dmin) and Q6_K's 16 int8 scales (m = d,
 * mn = 32 sc: its stored 0..63 values dotted unsigned, the -32 folded into imin): the
 * integers and the f32 operations of the CPU's portable dot, so GPU and CPU differ only in
 * the order of the super-blocks' f32 sums. (ggml's CUDA mmq/mmvq quantize x per 32 values
 * (q8_1, f16 scales) and apply sc and mn per 32; here the CPU's own Q8_K rounding is kept,
 * so the GPU's prompt logits stay next to the CPU's.)
 * Layout as matmul_dp4a.cu: a block of 8 warps = 8 output rows; per pass of up to 8 x rows
 * and chunk of 32 runs of 32 values (4 super-blocks), warp t quantizes x row t's 32 runs into
 * shared memory (lane = run; the super-block's max by shuffles across its 8 lanes), then
 * each warp dots its weight row's 32 runs (one per lane: 8 dp4a per x row) and the 8 lanes
 * of a super-block add their integer sums by shuffles. */
#define KQ_CHUNK 32 /* runs per chunk: one per lane */

/* x run xr (32 floats at column c; valid = false: zeros) as quantize_q8k does it, the
 * super-block being the 8 aligned lanes of this one: 8 words of signed bytes, d, the sums of
 * values 0-15 and 16-31 (NORM: of the values normalised by the row's mean and inv). Every
 * lane of the warp must call it (shuffles). */
template <bool NORM>
static __device__ __forceinline__ void quantize_q8k_run(const el_mm_out &o, const float *xr,
                                                        size_t c, float mean, float inv,
                                                        bool valid, int lane, int32_t *qw,
                                                        float *d, int2 *sums) {
    float xv[32];
#pragma unroll
    for (int j = 0; j < 32; j++)
        xv[j] = !valid ? 0.0f : NORM ? mm_norm(o, xr[j], c + j, mean, inv) : xr[j];
    float amax = 0.0f, max = 0.0f;
#pragma unroll
    for (int j = 0; j < 32; j++)
        if (fabsf(xv[j]) > amax) { /* strictly: the first of equal magnitudes */
            amax = fabsf(xv[j]);
            max = xv[j];
        }
#pragma unroll
    for (int o = 1; o < 8; o <<= 1) { /* within the super-block's 8 lanes, lower lane first */
        const float oa = __shfl_xor_sync(0xffffffffu, amax, o);
        const float om = __shfl_xor_sync(0xffffffffu, max, o);
        if (oa > amax || (oa == amax && (lane ^ o) < lane)) {
            amax = oa;
            max = om;
        }
    }
    const float iscale = amax > 0.0f ? -127.0f / max : 0.0f; /* IEEE division (no fast math) */
    int s0 = 0, s1 = 0;
#pragma unroll
    for (int k = 0; k < 8; k++) {
        uint32_t wv = 0;
#pragma unroll
        for (int b = 0; b < 4; b++) {
            int q = __float2int_rn(__fmul_rn(iscale, xv[4 * k + b])); /* ties to even */
            q = q > 127 ? 127 : q;
            if (k < 4) s0 += q;
            else s1 += q;
            wv |= (uint32_t)(q & 0xff) << (8 * b);
        }
        qw[k] = (int32_t)wv;
    }
    *d = amax > 0.0f ? 1.0f / iscale : 0.0f;
    *sums = make_int2(s0, s1);
}

/* acc[t] += x rows t < nt (quantized in shared memory: xq, xd, xs) dotted with the lane's
 * run u of the weight row at wr, super-block by super-block (the 8 lanes of one add their
 * integer sums by shuffles, exactly; lane 0 of the 8 adds the f32 result). All lanes call
 * it; valid: u < nu. */
template <int T, int BB>
static __device__ __forceinline__ void k_dp4a_row(const uint8_t *wr, size_t u, bool valid,
                                                  int lane, size_t nt,
                                                  const int4 (*xq)[KQ_CHUNK * 2],
                                                  const float (*xd)[KQ_CHUNK],
                                                  const int2 (*xs)[KQ_CHUNK], float *acc) {
    uint32_t wq[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int sc0 = 0, sc1 = 0, mn0 = 0, mn1 = 0;
    float wd = 0.0f, wm = 0.0f;
    if (valid)
        unpack_k_words<T>(wr + (u >> 3) * BB, (int)(u & 7), wq, &sc0, &sc1, &mn0, &mn1, &wd,
                          &wm);
#pragma unroll
    for (int t = 0; t < KROWS; t++) {
        if ((size_t)t >= nt) break; /* warp-uniform */
        const int4 a = xq[t][2 * lane], b = xq[t][2 * lane + 1];
        const int lo = el_dp4a4(wq, a, 0), hi = el_dp4a4(wq + 4, b, 0);
        const int2 s = xs[t][lane];
        int isum = sc0 * lo + sc1 * hi, imin = mn0 * s.x + mn1 * s.y;
#pragma unroll
        for (int k = 1; k < 8; k <<= 1) { /* the super-block's 8 runs: exact */
            isum += __shfl_xor_sync(0xffffffffu, isum, k);
            imin += __shfl_xor_sync(0xffffffffu, imin, k);
        }
        if ((lane & 7) == 0 && valid) /* the CPU's f32 operations, unfused */
            acc[t] += __fmul_rn(xd[t][lane], __fmul_rn(wd, (float)isum) -
                                                 __fmul_rn(wm, (float)imin));
    }
}

/* NORM: the norm prologue (warp t takes the statistics of x row t of the pass, which it
 * quantizes). E (mm_rows): a second row (the gated epilogue's up row, o.w[1], or the q|k|v
 * epilogue's pair) dotted after the first with the same quantized x, each accumulated
 * exactly as a row of its own. */
template <int T, int BB, bool NORM, int E>
__global__ void matmul_k_dp4a_kernel(el_mm_out o, const float *x, size_t n, size_t in) {
    __shared__ int4 xq[KROWS][KQ_CHUNK * 2]; /* [x row][run * 2 + half]: 32 bytes a run */
    __shared__ float xd[KROWS][KQ_CHUNK];    /* the run's super-block's d */
    __shared__ int2 xs[KROWS][KQ_CHUNK];     /* sums of the run's q, values 0-15 and 16-31 */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const size_t lrow = (size_t)blockIdx.x * KROWS + warp;
    const bool live = lrow < o.rows; /* dead warps still quantize and meet the barriers */
    const el_mm_sel p = mm_part(o, live ? lrow : 0);
    size_t ra, rb;
    const int part = mm_rows<E>(o, p, live ? lrow : p.first, ra, rb);
    const size_t nu = in / 32; /* runs per row, a multiple of 8 */
    const uint8_t *wr = (const uint8_t *)p.w + ra * (in / 256) * BB;
    const uint8_t *wu = mm_w2<E>(o, p, rb, (in / 256) * BB);
    for (size_t t0 = 0; t0 < n; t0 += KROWS) {
        const size_t nt = n - t0 < KROWS ? n - t0 : KROWS;
        float acc[KROWS], accu[KROWS];
#pragma unroll
        for (int t = 0; t < KROWS; t++) acc[t] = accu[t] = 0.0f;
        float mean = 0.0f, inv = 0.0f;
        if (NORM && (size_t)warp < nt) mm_row_stats(o, x + (t0 + warp) * in, in, lane, &mean, &inv);
        for (size_t c0 = 0; c0 < nu; c0 += KQ_CHUNK) {
            const size_t u = c0 + lane;
            const bool valid = u < nu; /* whole super-blocks: whole groups of 8 lanes */
            __syncthreads(); /* the previous chunk's readers are done */
            if ((size_t)warp < nt) { /* warp-uniform */
                int32_t q[8];
                float d;
                int2 sums;
                quantize_q8k_run<NORM>(o, x + (t0 + warp) * in + u * 32, u * 32, mean, inv,
                                       valid, lane, q, &d, &sums);
                xq[warp][2 * lane] = make_int4(q[0], q[1], q[2], q[3]);
                xq[warp][2 * lane + 1] = make_int4(q[4], q[5], q[6], q[7]);
                xd[warp][lane] = d;
                xs[warp][lane] = sums;
            }
            __syncthreads();
            if (!live) continue; /* warp-uniform */
            k_dp4a_row<T, BB>(wr, u, valid, lane, nt, xq, xd, xs, acc);
            if (E != MM_ONE) k_dp4a_row<T, BB>(wu, u, valid, lane, nt, xq, xd, xs, accu);
        }
        if (!live) continue;
        mm_finish<E, KROWS>(o, p, part, ra, rb, t0, nt, acc, accu, lane);
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

template <int T, int BB, int E>
static void launch_k_e(const el_mm_out &o, const float *x, size_t n, size_t in, bool dp4a,
                       cudaStream_t s) {
    const dim3 grid((unsigned)((o.rows + KROWS - 1) / KROWS)), block(32 * KROWS);
    const bool x4 = (uintptr_t)x % 16 == 0;
#define EL_K(...) EL_LAUNCH((__VA_ARGS__), grid, block, 0, s)(o, x, n, in)
    if (dp4a && o.norm) EL_K(matmul_k_dp4a_kernel<T, BB, true, E>);
    else if (dp4a) EL_K(matmul_k_dp4a_kernel<T, BB, false, E>);
    else if (o.norm) EL_K(matmul_k_kernel<T, BB, false, true, E>);
    else if (x4) EL_K(matmul_k_kernel<T, BB, true, false, E>);
    else EL_K(matmul_k_kernel<T, BB, false, false, E>);
#undef EL_K
}

template <int T, int BB>
static void launch_k(const el_mm_out &o, const float *x, size_t n, size_t in, bool dp4a,
                     cudaStream_t s) {
    mm_by_kind(o.epi, [&](auto e) { launch_k_e<T, BB, decltype(e)::value>(o, x, n, in, dp4a, s); });
}

el_status el_mm_run_k(const el_mm_out &o, const float *x, el_dtype wt, size_t n, size_t in,
                      bool dp4a, cudaStream_t s) {
    for (int p = 0; p < o.parts; p++) {
        const el_status e = k_rows("cuda matmul", wt, o.w[p], in);
        if (e != EL_OK) return e;
    }
    if (n == 0 || o.rows == 0) return EL_OK;
    if (wt == EL_DT_Q4_K) launch_k<EL_DT_Q4_K, 144>(o, x, n, in, dp4a, s);
    else if (wt == EL_DT_Q5_K) launch_k<EL_DT_Q5_K, 176>(o, x, n, in, dp4a, s);
    else launch_k<EL_DT_Q6_K, 210>(o, x, n, in, dp4a, s);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

extern "C" el_status el_cuda_matmul_k(float *y, size_t ldy, const float *x, const void *w,
                                      el_dtype wt, size_t n, size_t in, size_t out,
                                      el_cuda_stream st) {
    return el_mm_run_k(mm_one(y, ldy, w, NULL, EL_DT_F32, out), x, wt, n, in, false,
                       (cudaStream_t)st);
}

extern "C" el_status el_cuda_matmul_k_dp4a(float *y, size_t ldy, const float *x, const void *w,
                                           el_dtype wt, size_t n, size_t in, size_t out,
                                           el_cuda_stream st) {
    return el_mm_run_k(mm_one(y, ldy, w, NULL, EL_DT_F32, out), x, wt, n, in, true,
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
