/* matmul_norm.cuh - the norm prologue of a matmul launch, and the block kernels' 32-value dot
 * (internal to kernels/cuda/matmul*.cu):
 * each warp takes the statistics of the input rows it multiplies itself (they stay in L1: no
 * block barrier, no extra launch) and normalises every input value as it reads it, with the
 * expressions of norm.cu's kernels (only the order of the statistics' sums differs). */
#ifndef EL_CUDA_MATMUL_NORM_CUH
#define EL_CUDA_MATMUL_NORM_CUH

#include "kernels/cuda/matmul_out.cuh"

#define EL_MM_PASS 8 /* input rows per pass of every matmul kernel */

/* Per input row of a pass: mean (LayerNorm; 0 for RMS) and 1 / sqrt(spread + eps). */
struct el_mm_stats {
    float mean[EL_MM_PASS], inv[EL_MM_PASS];
};

/* The statistics of row xr (in values) reduced across the warp. LayerNorm takes the mean
 * first, then the spread around it. All lanes call it. */
static __device__ __forceinline__ void mm_row_stats(const el_mm_out &o, const float *xr,
                                                    size_t in, int lane, float *mean,
                                                    float *inv) {
    float m = 0.0f, v = 0.0f;
    if (o.norm == EL_CUDA_NORM_LAYER) {
        for (size_t i = lane; i < in; i += 32) m += xr[i];
        m = el_warp_sum(m) / (float)in;
        for (size_t i = lane; i < in; i += 32) {
            const float d = xr[i] - m;
            v += d * d;
        }
    } else {
        for (size_t i = lane; i < in; i += 32) v += xr[i] * xr[i];
    }
    *mean = m;
    *inv = rsqrtf(el_warp_sum(v) / (float)in + o.eps);
}

/* The statistics of rows x[t * in ..] for t < nt (nt is the same for every lane). */
static __device__ __forceinline__ void mm_stats(const el_mm_out &o, const float *x, size_t nt,
                                                size_t in, int lane, el_mm_stats &st) {
#pragma unroll
    for (int t = 0; t < EL_MM_PASS; t++) {
        st.mean[t] = 0.0f;
        st.inv[t] = 0.0f;
        if ((size_t)t < nt) mm_row_stats(o, x + (size_t)t * in, in, lane, &st.mean[t], &st.inv[t]);
    }
}

/* Input value xv at column i of a row with statistics (mean, inv), normalised. */
static __device__ __forceinline__ float mm_ldf(const void *w, el_dtype dt, size_t i) {
    if (dt == EL_DT_F16) return __half2float(((const __half *)w)[i]);
    if (dt == EL_DT_BF16) return __uint_as_float((uint32_t)((const uint16_t *)w)[i] << 16);
    return ((const float *)w)[i];
}
static __device__ __forceinline__ float mm_norm(const el_mm_out &o, float xv, size_t i,
                                                float mean, float inv) {
    if (o.norm == EL_CUDA_NORM_LAYER)
        return (xv - mean) * inv * mm_ldf(o.nw, o.nwt, i) + (o.nb ? mm_ldf(o.nb, o.nwt, i) : 0.0f);
    return (o.noff + mm_ldf(o.nw, o.nwt, i)) * (inv * xv);
}

/* mm_norm split for a lane's 32 columns c .. c + 31, read once for all the pass's rows:
 * a[j], b[j] such that mm_norm_ab gives mm_norm's value (RMS: a = noff + w; LayerNorm: a = w,
 * b = the bias or 0). */
static __device__ __forceinline__ void mm_norm_cols(const el_mm_out &o, size_t c, float *a,
                                                    float *b) {
    const bool layer = o.norm == EL_CUDA_NORM_LAYER;
#pragma unroll
    for (int j = 0; j < 32; j++) {
        const float w = mm_ldf(o.nw, o.nwt, c + j);
        a[j] = layer ? w : o.noff + w;
        b[j] = layer && o.nb ? mm_ldf(o.nb, o.nwt, c + j) : 0.0f;
    }
}
static __device__ __forceinline__ float mm_norm_ab(const el_mm_out &o, float xv, float a,
                                                   float b, float mean, float inv) {
    return o.norm == EL_CUDA_NORM_LAYER ? (xv - mean) * inv * a + b : a * (inv * xv);
}

/* acc[t] += the dot of 32 decoded weights v (a 32-block, a K run) with x rows t < nt at
 * columns c .. c + 31 (x: the pass's first row, row stride in), in f32 in the order of the
 * values. X4: x rows 16-byte aligned, float4 loads; NORM (not with X4): each value
 * normalised by the row's statistics st and the columns' na, nb (mm_norm_cols). */
template <bool X4, bool NORM>
static __device__ __forceinline__ void mm_dot32(const el_mm_out &o, const float *v,
                                                const float *x, size_t c, size_t nt, size_t in,
                                                const el_mm_stats &st, const float *na,
                                                const float *nb, float *acc) {
#pragma unroll
    for (int t = 0; t < EL_MM_PASS; t++) {
        if ((size_t)t >= nt) break;
        const float *xr = x + (size_t)t * in + c;
        float sum = 0.0f;
        if (X4) {
#pragma unroll
            for (int k = 0; k < 32; k += 4) {
                const float4 xv = *reinterpret_cast<const float4 *>(xr + k);
                sum += v[k] * xv.x + v[k + 1] * xv.y + v[k + 2] * xv.z + v[k + 3] * xv.w;
            }
        } else {
#pragma unroll
            for (int k = 0; k < 32; k++)
                sum += v[k] * (NORM ? mm_norm_ab(o, xr[k], na[k], nb[k], st.mean[t], st.inv[t])
                                    : xr[k]);
        }
        acc[t] += sum;
    }
}

#endif /* EL_CUDA_MATMUL_NORM_CUH */
