/* matmul_out.cuh - what a matmul launch writes (internal to kernels/cuda/matmul*.cu): up to
 * EL_CUDA_MAX_PARTS outputs of the same input rows and their epilogue. Every weight format's
 * kernel (matmul.cu: f32/f16/bf16 and the 32-blocks at decode; matmul_k.cu: the K types;
 * matmul_dp4a.cu: 32-block prompt batches) ends each output row (or two: mm_rows) in
 * mm_finish, so fusing a bias, residual add, GELU, gated product or the q|k|v epilogue (RoPE,
 * the KV cache stores) into any of them gives the separate kernels' results. */
#ifndef EL_CUDA_MATMUL_OUT_CUH
#define EL_CUDA_MATMUL_OUT_CUH

#include "kernels/cuda/cuda_common.cuh"

#include <type_traits>

/* A launch's outputs, by value: rows first[p] .. first[p + 1] - 1 of the launch are part p,
 * row r of it is row r of w[p]; its result (+ b[p][r] of bt[p]) goes through epi into
 * y[p][t * ldy[p] + r] for input row t. */
struct el_mm_out {
    const void *w[EL_CUDA_MAX_PARTS];
    float *y[EL_CUDA_MAX_PARTS];
    const void *b[EL_CUDA_MAX_PARTS]; /* NULL: no bias */
    size_t ldy[EL_CUDA_MAX_PARTS];
    size_t first[EL_CUDA_MAX_PARTS + 1]; /* first[parts]: rows in all */
    size_t rows;                         /* first[parts] */
    el_dtype bt[EL_CUDA_MAX_PARTS];
    int parts;
    int epi; /* el_cuda_epi */
    /* The prologue's norm (NORM kernels only): x[i] -> (noff + nw[i]) * (inv * x[i]) (RMS)
     * or (x[i] - mean) * inv * nw[i] + nb[i] (LayerNorm), as norm.cu computes it. */
    const void *nw, *nb; /* [in] of nwt; nb may be NULL */
    el_dtype nwt;
    int norm; /* el_cuda_norm */
    float eps, noff;
    /* EL_CUDA_EPI_QKV (mm_store_qkv): the launch's rows and first[] count row pairs; y[1]
     * and y[2] are the K and V caches' row 0 (of kvt, rows of ldy), written at the row
     * pos0 + t (pos0: *dpos when dpos is not NULL); q and k rotated by the tables' row
     * (cos NULL: not rotated), pairs of head dim hd (inter: (2i, 2i + 1), else (i, i + hd / 2)). */
    const float *cos, *sin;
    const int32_t *dpos;
    size_t pos0, hd;
    el_dtype kvt;
    bool inter;
};

/* Launch row `row`'s part, its fields picked with constant indices (a parameter array
 * indexed at run time may be copied to local memory). */
struct el_mm_sel {
    const void *w, *b;
    float *y;
    size_t ldy, first;
    el_dtype bt;
};
static __device__ __forceinline__ el_mm_sel mm_part(const el_mm_out &o, size_t row) {
    el_mm_sel s = {o.w[0], o.b[0], o.y[0], o.ldy[0], 0, o.bt[0]};
#pragma unroll
    for (int p = 1; p < EL_CUDA_MAX_PARTS; p++)
        if (p < o.parts && row >= o.first[p])
            s = el_mm_sel{o.w[p], o.b[p], o.y[p], o.ldy[p], o.first[p], o.bt[p]};
    return s;
}

/* The epilogue of the part's row r for input row t: the same f32 operations as the separate
 * bias, residual and activation kernels, so fusing changes no result. */
static __device__ __forceinline__ void mm_store(const el_mm_sel &p, int epi, size_t r, size_t t,
                                                float s) {
    if (p.b) s += el_ld(p.b, p.bt, r);
    float *d = p.y + t * p.ldy + r;
    switch (epi) {
    case EL_CUDA_EPI_ACCUMULATE: *d += s; break;
    case EL_CUDA_EPI_GELU_TANH: *d = el_gelu_tanh(s); break;
    case EL_CUDA_EPI_GELU_ERF: *d = el_gelu_erf(s); break;
    default: *d = s; break;
    }
}

/* The gated epilogue (EL_CUDA_EPI_SWIGLU / GEGLU) of row r, input row t: gate g and up u
 * reduced by the same warp; into part 0's y. The expressions of swiglu_kernel and of
 * gelu_tanh_kernel then mul_kernel (elementwise.cu), so fusing changes no result. */
static __device__ __forceinline__ void mm_store_glu(const el_mm_out &o, const el_mm_sel &p,
                                                    size_t r, size_t t, float g, float u) {
    if (p.b) g += el_ld(p.b, p.bt, r);
    if (o.b[1]) u += el_ld(o.b[1], o.bt[1], r);
    p.y[t * p.ldy + r] =
        o.epi == EL_CUDA_EPI_SWIGLU ? g / (1.0f + expf(-g)) * u : el_gelu_tanh(g) * u;
}

/* EL_CUDA_EPI_QKV: the part (0 q, 1 k, 2 v) of the launch's pair `row`. */
static __device__ __forceinline__ int mm_qkv_part(const el_mm_out &o, size_t row) {
    return row >= o.first[2] ? 2 : row >= o.first[1] ? 1 : 0;
}

/* EL_CUDA_EPI_QKV: the two rows ra, rb of the part's pair j: rotation pair i of head h (j =
 * h * hd / 2 + i) for q and k with tables, h * hd + i and + hd / 2 (rotate-half); else
 * rows 2j and 2j + 1 (interleaved pairs: h * hd + 2i; v, or no RoPE). */
static __device__ __forceinline__ void mm_qkv_rows(const el_mm_out &o, int part, size_t j,
                                                   size_t &ra, size_t &rb) {
    const size_t half = o.hd / 2;
    if (part == 2 || !o.cos || o.inter) {
        ra = 2 * j, rb = 2 * j + 1;
    } else {
        ra = j / half * o.hd + j % half, rb = ra + half;
    }
}

/* EL_CUDA_EPI_QKV: rows ra and rb of part `part` for input row t, a and b as reduced: bias,
 * RoPE of q and k (el_rope_pair, the tables' row of the position, as rope.cu), then q into
 * part 0's y, k or v into the cache row of the position (el_kv_put, as the store kernel). */
static __device__ __forceinline__ void mm_store_qkv(const el_mm_out &o, const el_mm_sel &p,
                                                    int part, size_t ra, size_t rb, size_t t,
                                                    float a, float b) {
    if (p.b) {
        a += el_ld(p.b, p.bt, ra);
        b += el_ld(p.b, p.bt, rb);
    }
    const size_t pos = (o.dpos ? (size_t)*o.dpos : o.pos0) + t;
    if (part < 2 && o.cos) {
        const size_t half = o.hd / 2, i = o.inter ? ra % o.hd / 2 : ra % o.hd;
        el_rope_pair(a, b, o.cos[pos * half + i], o.sin[pos * half + i]);
    }
    if (part == 0) {
        p.y[t * p.ldy + ra] = a;
        p.y[t * p.ldy + rb] = b;
    } else if (o.kvt == EL_DT_F16) {
        __half *d = (__half *)(void *)p.y + pos * p.ldy;
        el_kv_put(d + ra, a);
        el_kv_put(d + rb, b);
    } else {
        float *d = p.y + pos * p.ldy;
        el_kv_put(d + ra, a);
        el_kv_put(d + rb, b);
    }
}

/* What a warp reduces: one row; row r of part 0 (gate) and of part 1 (up, o.w[1]) for the
 * gated epilogue; a row pair of one part for EL_CUDA_EPI_QKV. Two rows are each accumulated
 * exactly as a row of its own. */
enum { MM_ONE, MM_GLU, MM_QKV };
/* f(std::integral_constant<int, E>()) for the kind E of epilogue epi: the launchers pick
 * the kernel template of it. */
template <typename F> static inline void mm_by_kind(int epi, F f) {
    if (epi == EL_CUDA_EPI_SWIGLU || epi == EL_CUDA_EPI_GEGLU)
        f(std::integral_constant<int, MM_GLU>());
    else if (epi == EL_CUDA_EPI_QKV)
        f(std::integral_constant<int, MM_QKV>());
    else
        f(std::integral_constant<int, MM_ONE>());
}

/* The warp's launch row `row` (part p): its weight rows ra (and rb: MM_GLU's up row, MM_QKV's
 * pair) and the part index (MM_QKV). */
template <int E>
static __device__ __forceinline__ int mm_rows(const el_mm_out &o, const el_mm_sel &p,
                                              size_t row, size_t &ra, size_t &rb) {
    const int part = E == MM_QKV ? mm_qkv_part(o, row) : 0;
    ra = rb = row - p.first;
    if (E == MM_QKV) mm_qkv_rows(o, part, row - p.first, ra, rb);
    return part;
}

/* The second row's weights (rb of mm_rows, rows of `bytes`): the up row (o.w[1]) or the
 * part's own row rb. */
template <int E>
static __device__ __forceinline__ const uint8_t *mm_w2(const el_mm_out &o, const el_mm_sel &p,
                                                      size_t rb, size_t bytes) {
    return (const uint8_t *)(E == MM_GLU ? o.w[1] : p.w) + rb * bytes;
}

/* Lane 0's epilogue of input row t: s reduced for row ra, su for the second row. */
template <int E>
static __device__ __forceinline__ void mm_epi(const el_mm_out &o, const el_mm_sel &p,
                                              int part, size_t ra, size_t rb, size_t t,
                                              float s, float su) {
    if (E == MM_GLU) mm_store_glu(o, p, ra, t, s, su);
    else if (E == MM_QKV) mm_store_qkv(o, p, part, ra, rb, t, s, su);
    else mm_store(p, o.epi, ra, t, s);
}

/* The end of a warp's rows (mm_rows: part, ra, rb) for the pass's input rows t0 + t, t < nt
 * (the same warp-wide): acc[t] (and, two rows, accu[t]: each the lane's share of its own
 * row) reduced across the warp, then stored by lane 0 through mm_epi. All lanes call it
 * (shuffles); unrolled, so acc stays in registers. */
template <int E, int N>
static __device__ __forceinline__ void mm_finish(const el_mm_out &o, const el_mm_sel &p,
                                                 int part, size_t ra, size_t rb, size_t t0,
                                                 size_t nt, const float *acc,
                                                 const float *accu, int lane) {
#pragma unroll
    for (int t = 0; t < N; t++) {
        if ((size_t)t >= nt) break;
        const float s = el_warp_sum(acc[t]);
        const float su = E != MM_ONE ? el_warp_sum(accu[t]) : 0.0f;
        if (lane == 0) mm_epi<E>(o, p, part, ra, rb, t0 + t, s, su);
    }
}

/* One part: y = W x (+ b), stored. */
static inline el_mm_out mm_one(float *y, size_t ldy, const void *w, const void *b, el_dtype bt,
                        size_t out) {
    el_mm_out o = {};
    o.w[0] = w;
    o.y[0] = y;
    o.b[0] = b;
    o.bt[0] = bt;
    o.ldy[0] = ldy;
    o.first[1] = o.rows = out;
    o.parts = 1;
    o.epi = EL_CUDA_EPI_STORE;
    return o;
}

/* The GGUF 32-block weights (Q8_0 34 bytes, Q4_0 18, Q4_1 20, Q5_0 22, Q5_1 24 a block: no
 * block is 16-byte aligned as a rule) come to a warp 32 consecutive blocks at a time through
 * shared memory: the lanes load the aligned 16-byte chunks that hold bytes [p, p + len)
 * (ld.global.nc.v4, coalesced, each byte once) into the warp's st, then each lane reads its
 * block there by halfwords. Every chunk holds a wanted byte, so lies in mapped memory. The
 * same bytes as a direct read: results do not change. All lanes of the warp call it; p is
 * 2-aligned (the launchers check), len <= 32 * BB. Returns p's place in st. */
#define EL_Q32_STAGE(BB) ((32 * (BB) + 15 + 15) / 16) /* uint4 per warp: 32 blocks + offset */
static __device__ __forceinline__ const uint8_t *mm_stage16(const uint8_t *p, size_t len,
                                                            uint4 *st, int lane) {
    const uint4 *a = (const uint4 *)((uintptr_t)p & ~(uintptr_t)15);
    const unsigned off = (unsigned)((uintptr_t)p & 15u);
    const unsigned nv = (unsigned)((off + len + 15) / 16);
    __syncwarp(); /* the lanes are done with the previous stage */
    for (unsigned i = (unsigned)lane; i < nv; i += 32) st[i] = __ldg(a + i);
    __syncwarp();
    return (const uint8_t *)st + off;
}

/* c + the dot product of the 16 signed bytes in w[0..3] and a (4 dp4a). */
static __device__ __forceinline__ int el_dp4a4(const uint32_t *w, int4 a, int c) {
    c = __dp4a((int)w[0], a.x, c);
    c = __dp4a((int)w[1], a.y, c);
    c = __dp4a((int)w[2], a.z, c);
    return __dp4a((int)w[3], a.w, c);
}

/* The K-type and dp4a launchers (matmul_k.cu, matmul_dp4a.cu), called by matmul.cu's
 * dispatch; they check the weights of every part (block rows, alignment). */
el_status el_mm_run_k(const el_mm_out &o, const float *x, el_dtype wt, size_t n, size_t in,
                      bool dp4a, cudaStream_t s); /* dp4a: 8-bit x (prompt batches) */
el_status el_mm_run_dp4a(const el_mm_out &o, const float *x, el_dtype wt, size_t n, size_t in,
                         cudaStream_t s);

#endif /* EL_CUDA_MATMUL_OUT_CUH */
