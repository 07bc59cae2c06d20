/* matmul_dp4a.cu - prompt batches (n >= 2 rows of x) over the GGUF 32-block weights (Q8_0,
 * Q4_0, Q4_1, Q5_0, Q5_1) by int8 dot products (__dp4a), as the CPU's el_cpu_matmul does:
 * each 32-value block of x is quantized to 8 bits with the CPU's rounding (d = max|x| / 127
 * in f32, q = round half away from zero of x * (1 / d), d kept as f16, and the block's
 * scaled sums d16 * sum q and f16(d * sum q)), so a weight block costs 8 dp4a per x row and
 *     d_w * d_x * isum + m_w * s_x     (m_w = the weight's min, or -off * d_w)
 * exactly as kernels/cpu/matmul_q.c's portable path computes it: GPU and CPU differ only in
 * the order of the f32 sums.
 * A block of 8 warps = 8 output rows; per pass of up to 8 x rows and chunk of 32 weight
 * blocks (1024 values of in), the block's 256 threads first quantize the 8 x rows' 32
 * activation blocks into shared memory (thread = (x row, block): 11 KiB in all), then each
 * warp dots its weight row's 32 blocks (one per lane) with them. The activations are thus
 * quantized once per 8 output rows, in shared memory: the op has no scratch buffer.
 * Weight blocks (18 to 34 bytes at even offsets) reach each warp 32 at a time by 16-byte
 * loads into shared memory (mm_stage16: up to 8.6 KiB a block more, for Q8_0), where each
 * lane reads its block by halfwords.
 * A norm prologue (matmul_norm.cuh) normalises the x values before they are quantized; the
 * gated epilogue dots the up row's blocks after the gate's with the same quantized x. */
#include "kernels/cuda/matmul_norm.cuh"

#define QROWS EL_MM_PASS /* warps (output rows) per block; also x rows per pass */
#define QCHUNK 32 /* weight blocks per chunk: one per lane */

static __device__ __forceinline__ float f16_round(float f) {
    return __half2float(__float2half_rn(f));
}

/* The activation block of 32 floats at xr, as kernels/cpu/matmul_q.c's quantize_q8a: 8 words
 * of 4 signed bytes, d (f16-rounded), s = d * sum q, s16 = f16(d_unrounded * sum q). */
static __device__ __forceinline__ void quantize_x32(const float *xr, int32_t *qw, float *d16,
                                                    float *s, float *s16) {
    float amax = 0.0f;
#pragma unroll
    for (int j = 0; j < 32; j++) amax = fmaxf(amax, fabsf(xr[j]));
    const float d = amax / 127.0f, id = amax > 0.0f ? 127.0f / amax : 0.0f;
    int sum = 0;
#pragma unroll
    for (int k = 0; k < 8; k++) {
        uint32_t wv = 0;
#pragma unroll
        for (int b = 0; b < 4; b++) {
            const float v = __fmul_rn(xr[4 * k + b], id); /* no fused add: as the CPU */
            int q = __float2int_rn(v); /* ties to even, as the CPU's lrintf */
            q = q > 127 ? 127 : q < -127 ? -127 : q;
            sum += q;
            wv |= (uint32_t)(q & 0xff) << (8 * b);
        }
        qw[k] = (int32_t)wv;
    }
    *d16 = f16_round(d);
    *s = __fmul_rn(*d16, (float)sum);
    *s16 = f16_round(__fmul_rn(d, (float)sum));
}

/* Weight block (T, BB bytes) as 8 words of 4 bytes (values 0..31, or Q8_0's signed bytes),
 * its scale d and m = its min (Q4_1, Q5_1) or -off * d. */
template <int T, int BB>
static __device__ __forceinline__ void unpack_w32(const uint8_t *blk, int32_t *qw, float *d,
                                                  float *m) { /* blk: staged, in shared memory */
    const uint16_t *p = (const uint16_t *)blk;
    uint16_t h[BB / 2];
#pragma unroll
    for (int i = 0; i < BB / 2; i++) h[i] = p[i];
    *d = __half2float(__ushort_as_half((unsigned short)h[0]));
    if (T == EL_DT_Q8_0) { /* qs at bytes 2..33: halfwords 1..16 */
#pragma unroll
        for (int k = 0; k < 8; k++) qw[k] = (int32_t)((uint32_t)h[1 + 2 * k] | (uint32_t)h[2 + 2 * k] << 16);
        *m = -0.0f * *d; /* as the CPU: -(float)off * d with off 0 */
        return;
    }
    const bool min1 = T == EL_DT_Q4_1 || T == EL_DT_Q5_1, five = T == EL_DT_Q5_0 || T == EL_DT_Q5_1;
    const int qs = (min1 ? 4 : 2) + (five ? 4 : 0); /* byte offset of qs[16] */
    *m = min1 ? __half2float(__ushort_as_half((unsigned short)h[1]))
              : -(float)(five ? 16 : 8) * *d;
    uint32_t lo[4];
#pragma unroll
    for (int k = 0; k < 4; k++)
        lo[k] = (uint32_t)h[qs / 2 + 2 * k] | (uint32_t)h[qs / 2 + 2 * k + 1] << 16;
    uint32_t hb = 0;
    if (five) hb = (uint32_t)h[(qs - 4) / 2] | (uint32_t)h[(qs - 4) / 2 + 1] << 16;
#pragma unroll
    for (int k = 0; k < 8; k++) { /* elements 4k..4k+3: low nibbles of qs[0..15], then high */
        uint32_t v = k < 4 ? lo[k] & 0x0f0f0f0fu : (lo[k - 4] >> 4) & 0x0f0f0f0fu;
        if (five)
#pragma unroll
            for (int b = 0; b < 4; b++) v |= ((hb >> (4 * k + b)) & 1u) << (8 * b + 4);
        qw[k] = (int32_t)v;
    }
}

/* acc[t] += x rows t < nt (quantized in shared memory: xq, xd, xs) dotted with the lane's
 * block c0 + lane of the weight row at wr, the warp's cnt blocks staged through wst. All
 * lanes call it. */
template <int T, int BB>
static __device__ __forceinline__ void q32_dp4a_row(const uint8_t *wr, size_t c0, size_t cnt,
                                                    int lane, size_t nt, uint4 *wst,
                                                    const int4 (*xq)[QCHUNK * 2],
                                                    const float (*xd)[QCHUNK],
                                                    const float (*xs)[QCHUNK], float *acc) {
    const uint8_t *sb = mm_stage16(wr + c0 * BB, cnt * BB, wst, lane);
    if ((size_t)lane >= cnt) return;
    int32_t wq[8];
    float wd, wm;
    unpack_w32<T, BB>(sb + (size_t)lane * BB, wq, &wd, &wm);
#pragma unroll
    for (int t = 0; t < QROWS; t++) {
        if ((size_t)t >= nt) break;
        const int4 a = xq[t][2 * lane], b = xq[t][2 * lane + 1];
        const int isum = el_dp4a4((const uint32_t *)wq + 4, b,
                                  el_dp4a4((const uint32_t *)wq, a, 0));
        acc[t] += wd * xd[t][lane] * (float)isum + wm * xs[t][lane];
    }
}

/* NORM: the norm prologue (warp t takes the statistics of x row t of the pass, which it
 * quantizes). E (mm_rows): a second row (the gated epilogue's up row, o.w[1], or the q|k|v
 * epilogue's pair) staged and dotted after the first with the same quantized x, each
 * accumulated exactly as a row of its own. */
template <int T, int BB, bool NORM, int E>
__global__ void matmul_q32_dp4a_kernel(el_mm_out o, const float *x, size_t n, size_t in) {
    __shared__ int4 xq[QROWS][QCHUNK * 2]; /* [x row][block * 2 + half]: 32 bytes a block */
    __shared__ float xd[QROWS][QCHUNK], xs[QROWS][QCHUNK];
    __shared__ uint4 wst[QROWS][EL_Q32_STAGE(BB)]; /* each warp's 32 weight blocks */
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    const size_t lrow = (size_t)blockIdx.x * QROWS + warp;
    const bool live = lrow < o.rows; /* dead warps still quantize and meet the barriers */
    const el_mm_sel p = mm_part(o, live ? lrow : 0);
    size_t ra, rb;
    const int part = mm_rows<E>(o, p, live ? lrow : p.first, ra, rb);
    const size_t nb = in / 32;
    const uint8_t *wr = (const uint8_t *)p.w + ra * nb * BB, *wu = mm_w2<E>(o, p, rb, nb * BB);
    const bool min1 = T == EL_DT_Q4_1 || T == EL_DT_Q5_1;
    for (size_t t0 = 0; t0 < n; t0 += QROWS) {
        const size_t nt = n - t0 < QROWS ? n - t0 : QROWS;
        float acc[QROWS], accu[QROWS];
#pragma unroll
        for (int t = 0; t < QROWS; t++) acc[t] = accu[t] = 0.0f;
        const float *xw = x + (t0 + warp) * in; /* the x row this warp quantizes */
        float mean = 0.0f, inv = 0.0f;
        if (NORM && (size_t)warp < nt) mm_row_stats(o, xw, in, lane, &mean, &inv);
        for (size_t c0 = 0; c0 < nb; c0 += QCHUNK) {
            __syncthreads(); /* the previous chunk's readers are done */
            if ((size_t)warp < nt && c0 + lane < nb) {
                int32_t q[8];
                float d16, s, s16, xn[32];
                const size_t c = (c0 + lane) * 32;
                if (NORM)
#pragma unroll
                    for (int j = 0; j < 32; j++) xn[j] = mm_norm(o, xw[c + j], c + j, mean, inv);
                quantize_x32(NORM ? xn : xw + c, q, &d16, &s, &s16);
                xq[warp][2 * lane] = make_int4(q[0], q[1], q[2], q[3]);
                xq[warp][2 * lane + 1] = make_int4(q[4], q[5], q[6], q[7]);
                xd[warp][lane] = d16;
                xs[warp][lane] = min1 ? s16 : s;
            }
            __syncthreads();
            if (!live) continue; /* warp-uniform */
            const size_t cnt = nb - c0 < QCHUNK ? nb - c0 : QCHUNK;
            q32_dp4a_row<T, BB>(wr, c0, cnt, lane, nt, wst[warp], xq, xd, xs, acc);
            if (E != MM_ONE)
                q32_dp4a_row<T, BB>(wu, c0, cnt, lane, nt, wst[warp], xq, xd, xs, accu);
        }
        if (!live) continue;
        mm_finish<E, QROWS>(o, p, part, ra, rb, t0, nt, acc, accu, lane);
    }
}

template <int T, int BB, int E>
static void launch_dp4a_e(const el_mm_out &o, const float *x, size_t n, size_t in,
                          cudaStream_t s) {
    const dim3 grid((unsigned)((o.rows + QROWS - 1) / QROWS)), block(32 * QROWS);
    if (o.norm) EL_LAUNCH((matmul_q32_dp4a_kernel<T, BB, true, E>), grid, block, 0, s)(o, x, n, in);
    else EL_LAUNCH((matmul_q32_dp4a_kernel<T, BB, false, E>), grid, block, 0, s)(o, x, n, in);
}

template <int T, int BB>
static void launch_dp4a(const el_mm_out &o, const float *x, size_t n, size_t in, cudaStream_t s) {
    mm_by_kind(o.epi, [&](auto e) { launch_dp4a_e<T, BB, decltype(e)::value>(o, x, n, in, s); });
}

el_status el_mm_run_dp4a(const el_mm_out &o, const float *x, el_dtype wt, size_t n, size_t in,
                         cudaStream_t s) {
    if (wt != EL_DT_Q8_0 && wt != EL_DT_Q4_0 && wt != EL_DT_Q4_1 && wt != EL_DT_Q5_0 &&
        wt != EL_DT_Q5_1)
        return el_errorf(EL_E_INVALID, "cuda dp4a matmul: %s is not a 32-block type",
                         el_dtype_name(wt));
    if (in % 32)
        return el_errorf(EL_E_INVALID, "cuda dp4a matmul: %s rows of %zu values are not whole "
                         "blocks of 32", el_dtype_name(wt), in);
    for (int p = 0; p < o.parts; p++)
        if ((uintptr_t)o.w[p] % 2)
            return el_errorf(EL_E_INVALID, "cuda dp4a matmul: %s weights at %p: need 2-byte "
                             "alignment", el_dtype_name(wt), o.w[p]);
    if (n == 0 || o.rows == 0) return EL_OK;
    switch (wt) {
    case EL_DT_Q8_0: launch_dp4a<EL_DT_Q8_0, 34>(o, x, n, in, s); break;
    case EL_DT_Q4_0: launch_dp4a<EL_DT_Q4_0, 18>(o, x, n, in, s); break;
    case EL_DT_Q4_1: launch_dp4a<EL_DT_Q4_1, 20>(o, x, n, in, s); break;
    case EL_DT_Q5_0: launch_dp4a<EL_DT_Q5_0, 22>(o, x, n, in, s); break;
    default: launch_dp4a<EL_DT_Q5_1, 24>(o, x, n, in, s); break;
    }
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

extern "C" el_status el_cuda_matmul_q32_dp4a(float *y, size_t ldy, const float *x,
                                             const void *w, el_dtype wt, size_t n, size_t in,
                                             size_t out, el_cuda_stream st) {
    return el_mm_run_dp4a(mm_one(y, ldy, w, NULL, EL_DT_F32, out), x, wt, n, in,
                          (cudaStream_t)st);
}
