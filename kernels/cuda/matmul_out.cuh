/* matmul_out.cuh - what a matmul launch writes (internal to kernels/cuda/matmul*.cu): up to
 * EL_CUDA_MAX_PARTS outputs of the same input rows and their epilogue. Every weight format's
 * kernel (matmul.cu: f32/f16/bf16 and the 32-blocks at decode; matmul_k.cu: the K types;
 * matmul_dp4a.cu: 32-block prompt batches) ends each output row in mm_store, so fusing a
 * bias, residual add or GELU into any of them gives the separate kernels' results. */
#ifndef EL_CUDA_MATMUL_OUT_CUH
#define EL_CUDA_MATMUL_OUT_CUH

#include "kernels/cuda/cuda_common.cuh"

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

/* The K-type and dp4a launchers (matmul_k.cu, matmul_dp4a.cu), called by matmul.cu's
 * dispatch; they check the weights of every part (block rows, alignment). */
el_status el_mm_run_k(const el_mm_out &o, const float *x, el_dtype wt, size_t n, size_t in,
                      cudaStream_t s);
el_status el_mm_run_dp4a(const el_mm_out &o, const float *x, el_dtype wt, size_t n, size_t in,
                         cudaStream_t s);

#endif /* EL_CUDA_MATMUL_OUT_CUH */
