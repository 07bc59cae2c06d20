/* attention.cuh - the split-context attention's block bodies and launch geometry
 * (internal to kernels/cuda: attention.cu's kernels and phased.cu's fused launch). A body
 * takes its block index bi and grid gd as arguments, so a persistent kernel can run it as
 * one task (kernels/cuda/phased.cuh). See attention.cu for the method. */
#ifndef EL_CUDA_ATTENTION_CUH
#define EL_CUDA_ATTENTION_CUH

#include "kernels/cuda/cuda_common.cuh"
#include "kernels/attn_split.h"

#define THREADS 128 /* kv_store, the combine */
#define ATT_THREADS 256 /* at most; 128 when the heads' dims fit (attn_plan) */
#define TILE 32    /* key positions per step: one per lane in the softmax update */
#define MAX_HEAD_DIM (4 * ATT_THREADS)

/* A key row is read by L lanes (8 dims each, L a power of two <= 32: lane_group), so a
 * warp dots 32 / L rows at once. Lane r < L of a row's group holds its elements i < 8 of
 * the piece of dims c0 .. c0 + 8 L - 1 at key_dim: 8 consecutive (16-byte loads: VEC) or
 * strided by L (scalar loads). */
static __device__ __forceinline__ int lane_group(int hd) {
    int l = 1;
    while (l < 32 && 8 * l < hd) l <<= 1;
    return l;
}

template <bool VEC>
static __device__ __forceinline__ int key_dim(int r, int l, int i) {
    return VEC ? 8 * r + i : r + l * i;
}

static __device__ __forceinline__ size_t zmin(size_t a, size_t b) { return a < b ? a : b; }

/* Positions of keys a causal row at pos sees (window 0: all). */
static __device__ __forceinline__ size_t row_span(size_t pos, size_t window) {
    return window && pos + 1 > window ? window : pos + 1;
}

/* Chunks of rows whose last one's keys span len positions: el_attn_splits
 * (kernels/attn_split.h) on the device, at most cap (the chunks the grid was sized for).
 * With the position in device memory the grid is sized for the plan's context and the
 * blocks past this count exit: the chunking is the one a grid sized for len would have. */
static __device__ __forceinline__ unsigned live_splits(size_t len, unsigned cap) {
    size_t s = (len + EL_ATTN_SPLIT_POS - 1) / EL_ATTN_SPLIT_POS;
    if (s > EL_ATTN_SPLIT_MAX) s = EL_ATTN_SPLIT_MAX;
    return s < cap ? (unsigned)s : cap;
}

static __device__ __forceinline__ float half_lo(uint32_t w) {
    return __half2float(__ushort_as_half((unsigned short)(w & 0xffffu)));
}
static __device__ __forceinline__ float half_hi(uint32_t w) {
    return __half2float(__ushort_as_half((unsigned short)(w >> 16)));
}

/* Lane r's 8 elements of the piece at c0 of key row kr (head_dim hd), placed as key_dim
 * says; 0 past hd or when the lane's row is not live. VEC: hd a multiple of 8 and kr
 * 16-byte aligned, so a lane's 8 dims are wholly inside or outside the row. */
template <bool VEC>
static __device__ __forceinline__ void load_key(const float *kr, int c0, int hd, int r, int l,
                                                bool live, float *f) {
    if (VEC) {
        const int d = c0 + 8 * r;
        const bool in = live && d < hd;
#pragma unroll
        for (int h = 0; h < 2; h++) {
            const float4 x = in ? __ldg(reinterpret_cast<const float4 *>(kr + d + 4 * h))
                                : make_float4(0.0f, 0.0f, 0.0f, 0.0f);
            f[4 * h] = x.x, f[4 * h + 1] = x.y, f[4 * h + 2] = x.z, f[4 * h + 3] = x.w;
        }
    } else {
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const int d = c0 + r + l * i;
            f[i] = live && d < hd ? kr[d] : 0.0f;
        }
    }
}
template <bool VEC>
static __device__ __forceinline__ void load_key(const __half *kr, int c0, int hd, int r, int l,
                                                bool live, float *f) {
    if (VEC) {
        const int d = c0 + 8 * r;
        const uint4 u = live && d < hd ? __ldg(reinterpret_cast<const uint4 *>(kr + d))
                                       : make_uint4(0u, 0u, 0u, 0u);
        const uint32_t w[4] = {u.x, u.y, u.z, u.w};
#pragma unroll
        for (int j = 0; j < 4; j++) f[2 * j] = half_lo(w[j]), f[2 * j + 1] = half_hi(w[j]);
    } else {
#pragma unroll
        for (int i = 0; i < 8; i++) {
            const int d = c0 + r + l * i;
            f[i] = live && d < hd ? __half2float(kr[d]) : 0.0f;
        }
    }
}

/* Dims d .. d + 3 of value row vr (0 past hd). VEC: d < hd, whole vectors (see load_key). */
template <bool VEC>
static __device__ __forceinline__ void load_val(const float *vr, int d, int hd, float *f) {
    if (VEC) {
        const float4 x = __ldg(reinterpret_cast<const float4 *>(vr + d));
        f[0] = x.x, f[1] = x.y, f[2] = x.z, f[3] = x.w;
    } else {
#pragma unroll
        for (int i = 0; i < 4; i++) f[i] = d + i < hd ? vr[d + i] : 0.0f;
    }
}
template <bool VEC>
static __device__ __forceinline__ void load_val(const __half *vr, int d, int hd, float *f) {
    if (VEC) {
        const uint2 u = __ldg(reinterpret_cast<const uint2 *>(vr + d));
        f[0] = half_lo(u.x), f[1] = half_hi(u.x), f[2] = half_lo(u.y), f[3] = half_hi(u.y);
    } else {
#pragma unroll
        for (int i = 0; i < 4; i++) f[i] = d + i < hd ? __half2float(vr[d + i]) : 0.0f;
    }
}

/* Block bi of grid gd = (rows, n_kv_heads * sub-groups, chunks), 128 or 256 threads (the
 * same bits either way), dynamic shared memory gb * (hd + TILE + 3) floats (attn_plan). Row
 * t's keys: BIDIR, rows seq_start[t] .. seq_start[t] + seq_len[t] - 1; else (causal)
 * positions lo .. pos0 + t, lo from the window (0 = all); pos0 read from *dpos when dpos is
 * not NULL, and then only the chunks the live length needs run (live_splits). q, out: row
 * stride ldq = nh * hd; k, v: row stride ldkv. Queries are read before the first barrier and
 * each block writes only its own heads of its own row, so out may be q. part: [rows, nh,
 * chunks] of (hd accumulators, m, l) when gd.z > 1. */
template <typename T, bool VEC, bool BIDIR>
static __device__ __forceinline__ void attn_chunk(uint3 bi, dim3 gd, float *out, const float *q,
                                                  const T *k, const T *v, float *part,
                                                  const int32_t *seq_start,
                                                  const int32_t *seq_len, size_t pos0,
                                                  const int32_t *dpos, size_t window, size_t nh,
                                                  size_t ldkv, int group, int gb, int hd,
                                                  float scale) {
    EL_DYN_SHARED(float, sh);
    const int tid = (int)threadIdx.x, lane = tid & 31, warp = tid >> 5, nt = (int)blockDim.x;
    const int nwarps = nt >> 5, nsub = (group + gb - 1) / gb;
    const size_t t = bi.x, ldq = nh * (size_t)hd;
    const int kvh = (int)bi.y / nsub, sub = (int)bi.y % nsub;
    const int h0 = kvh * group + sub * gb, hb = gb < group - sub * gb ? gb : group - sub * gb;
    if (dpos) pos0 = (size_t)*dpos;
    const size_t s = bi.z;
    const size_t ns = dpos ? live_splits(row_span(pos0 + gd.x - 1, window), gd.z)
                           : gd.z;
    if (s >= ns) return; /* the whole block: no barrier is left waiting */
    size_t lo, len;
    if (BIDIR) {
        lo = (size_t)seq_start[t], len = (size_t)seq_len[t];
    } else {
        const size_t pos = pos0 + t;
        lo = window && pos + 1 > window ? pos + 1 - window : 0, len = pos + 1 - lo;
    }
    const size_t per = ((len + ns - 1) / ns + TILE - 1) / TILE * TILE;
    const size_t c0 = lo + zmin(len, s * per), c1 = lo + zmin(len, (s + 1) * per);
    /* [hb, hd] queries | [gb, TILE] scores, then probabilities | m, l, alpha per head */
    float *qs = sh, *ps = qs + gb * hd, *mrun = ps + gb * TILE, *lrun = mrun + gb,
          *alpha = lrun + gb;
    for (int i = tid; i < hb * hd; i += nt) qs[i] = q[t * ldq + (size_t)h0 * hd + i];
    for (int i = tid; i < hb; i += nt) mrun[i] = -INFINITY, lrun[i] = 0.0f;
    __syncthreads();
    const int l = lane_group(hd), rows = 32 / l, r = lane & (l - 1), slot = lane / l;
    const int gph = (hd + 3) / 4, go = tid / gph, dout = tid % gph * 4;
    const bool owner = go < hb; /* this thread accumulates dims dout .. + 3 of head go */
    float acc[4] = {0.0f, 0.0f, 0.0f, 0.0f};
    const T *kh = k + (size_t)kvh * hd, *vh = v + (size_t)kvh * hd;
    for (size_t p0 = c0; p0 < c1; p0 += TILE) {
        const int cnt = (int)zmin(TILE, c1 - p0);
        for (int j0 = warp * rows; j0 < cnt; j0 += nwarps * rows) { /* 1. scores */
            const int j = j0 + slot; /* this lane's key row; every lane takes the shuffles */
            const bool live = j < cnt;
            const T *kr = kh + (p0 + (size_t)(live ? j : 0)) * ldkv;
            for (int cd = 0; cd < hd; cd += 8 * l) {
                float f[8];
                load_key<VEC>(kr, cd, hd, r, l, live, f);
                for (int g = 0; g < hb; g++) {
                    const float *qg = qs + g * hd + cd;
                    float dot = 0.0f;
#pragma unroll
                    for (int i = 0; i < 8; i++) {
                        const int e = key_dim<VEC>(r, l, i);
                        if (cd + e < hd) dot += f[i] * qg[e];
                    }
                    for (int o = l >> 1; o > 0; o >>= 1)
                        dot += __shfl_xor_sync(0xffffffffu, dot, o);
                    if (r == 0 && live) ps[g * TILE + j] = cd ? ps[g * TILE + j] + dot : dot;
                }
            }
            if (r == 0 && live)
                for (int g = 0; g < hb; g++) ps[g * TILE + j] *= scale;
        }
        __syncthreads();
        for (int g = warp; g < hb; g += nwarps) { /* 2. online softmax, lane = position */
            const float sc = lane < cnt ? ps[g * TILE + lane] : -INFINITY;
            const float mo = mrun[g], mn = fmaxf(mo, el_warp_max(sc));
            const float e = lane < cnt ? expf(sc - mn) : 0.0f;
            const float sum = el_warp_sum(e); /* every lane has read mrun[g] by now */
            if (lane < cnt) ps[g * TILE + lane] = e;
            if (lane == 0) {
                const float a = expf(mo - mn); /* 0 on the first tile (mo = -inf) */
                alpha[g] = a, lrun[g] = lrun[g] * a + sum, mrun[g] = mn;
            }
        }
        __syncthreads();
        if (owner) { /* 3. values */
            const float a = alpha[go], *pg = ps + go * TILE;
#pragma unroll
            for (int i = 0; i < 4; i++) acc[i] *= a;
            for (int j = 0; j < cnt; j++) {
                float f[4];
                load_val<VEC>(vh + (p0 + j) * ldkv, dout, hd, f);
                const float pj = pg[j];
#pragma unroll
                for (int i = 0; i < 4; i++) acc[i] += pj * f[i];
            }
        }
        __syncthreads(); /* before the next tile's scores overwrite ps */
    }
    if (!owner) return;
    const size_t h = (size_t)h0 + go;
    if (ns == 1) { /* the whole context: len >= 1, so l >= 1 */
        const float inv = 1.0f / lrun[go];
        float *o = out + t * ldq + h * hd + dout;
#pragma unroll
        for (int i = 0; i < 4; i++)
            if (dout + i < hd) o[i] = acc[i] * inv;
        return;
    }
    /* An empty chunk (a short row's last ones) leaves m = -inf, l = 0 and zeros. */
    float *pr = part + ((t * nh + h) * ns + s) * (size_t)(hd + 2);
#pragma unroll
    for (int i = 0; i < 4; i++)
        if (dout + i < hd) pr[dout + i] = acc[i];
    if (dout == 0) pr[hd] = mrun[go], pr[hd + 1] = lrun[go];
}

/* Block bi of grid gd = (rows, nh), on its first nt threads (THREADS; the rest take no
 * chunk): merges the ns chunks' partials of (row, head). With dpos (the rows' first position
 * in device memory), the chunks the live length needs, as the chunk kernel counted them;
 * one: that kernel wrote the rows itself. */
static __device__ __forceinline__ void attn_combine(uint3 bi, dim3 gd, unsigned nt, float *out,
                                                    const float *part, size_t nh, int hd,
                                                    unsigned ns, const int32_t *dpos,
                                                    size_t window) {
    __shared__ float w[EL_ATTN_SPLIT_MAX];
    if (dpos) ns = live_splits(row_span((size_t)*dpos + gd.x - 1, window), ns);
    if (ns == 1) return;
    const size_t t = bi.x, h = bi.y, st = (size_t)hd + 2;
    const float *pr = part + (t * nh + h) * ns * st;
    /* Threads nt.. take no chunk: the sums are an nt-thread block's (el_block_* add their
     * warps' identities). */
    const unsigned s0 = threadIdx.x < nt ? threadIdx.x : ns;
    float m = -INFINITY;
    for (unsigned s = s0; s < ns; s += nt) m = fmaxf(m, pr[s * st + hd]);
    m = el_block_max(m); /* finite: chunk 0 is never empty */
    float l = 0.0f;
    for (unsigned s = s0; s < ns; s += nt) {
        const float e = expf(pr[s * st + hd] - m);
        w[s] = e, l += e * pr[s * st + hd + 1];
    }
    const float inv = 1.0f / el_block_sum(l); /* its barriers also publish w[] */
    for (int d = (int)threadIdx.x; d < hd; d += (int)blockDim.x) {
        float a = 0.0f;
        for (unsigned s = 0; s < ns; s++) a += w[s] * pr[s * st + d];
        out[t * nh * hd + h * hd + d] = a * inv;
    }
}

/* The geometry of one attention call: heads per block and sub-groups, chunks, shared
 * bytes. */
typedef struct attn_geo {
    int gb, nsub, threads;
    unsigned ns;
    size_t shm;
} attn_geo;

/* rows query rows of nh heads over nkv KV heads whose keys span at most max_len
 * positions; part holds part_floats (NULL: none, one chunk). */
static el_status attn_plan(attn_geo *g, size_t rows, size_t nh, size_t nkv, size_t hd,
                           size_t max_len, size_t part_floats, const float *part) {
    if (nkv == 0 || nh % nkv)
        return el_errorf(EL_E_USAGE, "attention: %zu heads over %zu KV heads", nh, nkv);
    if (hd == 0 || hd > MAX_HEAD_DIM)
        return el_errorf(EL_E_UNSUPPORTED, "CUDA attention: head_dim %zu (1 to %d)", hd,
                         MAX_HEAD_DIM);
    if (rows > 0x7fffffffu || nh > 65535u)
        return el_errorf(EL_E_UNSUPPORTED, "CUDA attention: %zu rows of %zu heads (grid limits)",
                         rows, nh);
    const size_t group = nh / nkv, per_head = (hd + 3) / 4;
    g->gb = (int)(group < ATT_THREADS / per_head ? group : ATT_THREADS / per_head);
    g->nsub = (int)((group + (size_t)g->gb - 1) / (size_t)g->gb);
    g->threads = (size_t)g->gb * per_head <= 128 ? 128 : ATT_THREADS;
    uint64_t ns = el_attn_splits(max_len);
    if (ns > 1) { /* as many chunks as the partials buffer holds */
        const uint64_t one = (uint64_t)rows * nh * (hd + 2);
        const uint64_t fit = part ? part_floats / one : 0;
        if (fit < ns) ns = fit;
    }
    g->ns = ns > 1 ? (unsigned)ns : 1u;
    g->shm = ((size_t)g->gb * (hd + TILE + 3)) * sizeof(float);
    return EL_OK;
}

/* attn_plan for n causal rows of a cache of kv_dt from pos0 (dpos: a device word, then
 * the grid is sized for max_ctx positions), refusing what the kernels do not take. */
static el_status attn_plan_at(attn_geo *g, el_dtype kv_dt, size_t n, const int32_t *dpos,
                              size_t max_ctx, size_t pos0, size_t nh, size_t nkv, size_t hd,
                              size_t window, size_t part_floats, const float *part) {
    if (kv_dt != EL_DT_F32 && kv_dt != EL_DT_F16)
        return el_errorf(EL_E_USAGE, "CUDA attention: a KV cache of %s (f32 or f16)",
                         el_dtype_name(kv_dt));
    if (dpos && max_ctx < n)
        return el_errorf(EL_E_USAGE, "CUDA attention: %zu rows in a context of %zu", n, max_ctx);
    /* The last row's keys: the longest span (with dpos, the last row the context holds). */
    const size_t ctx = dpos ? max_ctx : pos0 + n;
    return attn_plan(g, n, nh, nkv, hd, window && window < ctx ? window : ctx, part_floats, part);
}

#endif /* EL_CUDA_ATTENTION_CUH */
