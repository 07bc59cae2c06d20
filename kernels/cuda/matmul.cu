/* matmul.cu - y = W x for weights [out, in] (f32, f16, bf16, and the GGUF 32-blocks Q8_0,
 * Q4_0, Q4_1, Q5_0, Q5_1) and n f32 rows of x.
 * One warp per output row: lanes stride across the row (coalesced), and every one of the n
 * input rows reuses the weight row while it is in L1/L2. Batch-1 decode (n = 1) is a GEMV
 * whose speed is the weight stream; prefill chunks (n <= 64) re-read each row n times from
 * cache. When rows are whole 16-byte vectors (in a multiple of 8 for 2-byte weights, 4 for
 * f32) and the pointers 16-byte aligned, each lane loads 16 bytes at a time (a warp moves
 * 512 bytes per load instead of 64 or 128); otherwise one element per lane. Only the
 * input rows present are reduced across the warp.
 * One launch may cover up to EL_CUDA_MAX_PARTS matmuls of the same input (q, k and v; gate
 * and up): their rows are laid end to end and each warp finds its part. Each result goes
 * through the epilogue (bias, then store, residual add or GELU) in the lane that reduced it.
 * Two rows per warp for the gated epilogue (gate and up) and the q|k|v one (a RoPE pair of
 * q or k, two rows of v: rotated and stored into the KV cache, el_cuda_linear_qkv), in every
 * kernel of every weight format (matmul_out.cuh: mm_rows, mm_finish).
 * A norm of the input rows (RMSNorm, LayerNorm; f32, f16 or bf16 norm weights) may run in
 * the prologue of every kernel (matmul_norm.cuh). */
#include "kernels/cuda/matmul_f.cuh"

template <typename W, bool NORM, int E>
__global__ void matmul_kernel(el_mm_out o, const float *x, size_t n, size_t in) {
    matmul_rows<W, NORM, E>(blockIdx.x, o, x, n, in);
}

template <typename W, bool NORM, int E>
__global__ void matmul_vec_kernel(el_mm_out o, const float *x, size_t n, size_t in) {
    matmul_vec_rows<W, NORM, E>(blockIdx.x, o, x, n, in);
}

/* One GGUF 32-block (T: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1; BB bytes, staged in shared memory by
 * mm_stage16) into 32 floats, as el_ld_q32: its halfwords are read first, all of each used. */
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
 * takes the row's blocks l, l + 32, ... (the warp's 32 blocks staged in shared memory by
 * 16-byte loads); each block is dequantized once into registers and dotted with every input
 * row's 32 activations in f32. NORM: the norm prologue. E (mm_rows): a second row (the gated
 * epilogue's up row, o.w[1], or the q|k|v epilogue's pair) is staged and summed after the
 * first, each accumulated exactly as a row of its own. */
template <int T, int BB, bool NORM, int E>
__global__ void matmul_q32_kernel(el_mm_out o, const float *x, size_t n, size_t in) {
    __shared__ uint4 stage[ROWS_PER_BLOCK][EL_Q32_STAGE(BB)];
    const size_t row = (size_t)blockIdx.x * ROWS_PER_BLOCK + (threadIdx.x >> 5);
    int lane = threadIdx.x & 31;
    if (row >= o.rows) return; /* the whole warp: no block barrier below */
    const el_mm_sel p = mm_part(o, row);
    size_t ra, rb;
    const int part = mm_rows<E>(o, p, row, ra, rb);
    const size_t nb = in / 32;
    const uint8_t *wr = (const uint8_t *)p.w + ra * nb * BB, *wu = mm_w2<E>(o, p, rb, nb * BB);
    for (size_t t0 = 0; t0 < n; t0 += MAX_N) {
        size_t nt = n - t0 < MAX_N ? n - t0 : MAX_N;
        float acc[MAX_N], accu[MAX_N];
#pragma unroll
        for (int t = 0; t < MAX_N; t++) acc[t] = accu[t] = 0.0f;
        el_mm_stats st;
        if (NORM) mm_stats(o, x + t0 * in, nt, in, lane, st);
        for (size_t b0 = 0; b0 < nb; b0 += 32) {
            const size_t cnt = nb - b0 < 32 ? nb - b0 : 32, b = b0 + (size_t)lane;
            uint4 *sm = stage[threadIdx.x >> 5];
            const uint8_t *sb = mm_stage16(wr + b0 * BB, cnt * BB, sm, lane);
            float v[32], na[32], nbs[32];
            if (NORM && b < nb) mm_norm_cols(o, b * 32, na, nbs);
            if (b < nb) {
                decode_q32<T, BB>(sb + (size_t)lane * BB, v);
                mm_dot32<false, NORM>(o, v, x + t0 * in, b * 32, nt, in, st, na, nbs, acc);
            }
            if (E == MM_ONE) continue;
            sb = mm_stage16(wu + b0 * BB, cnt * BB, sm, lane); /* all lanes */
            if (b < nb) {
                decode_q32<T, BB>(sb + (size_t)lane * BB, v);
                mm_dot32<false, NORM>(o, v, x + t0 * in, b * 32, nt, in, st, na, nbs, accu);
            }
        }
        mm_finish<E, MAX_N>(o, p, part, ra, rb, t0, nt, acc, accu, lane);
    }
}

template <typename W, int E>
static void launch_e(const el_mm_out &o, const float *x, size_t n, size_t in, bool vec,
                     cudaStream_t s) {
    dim3 grid((unsigned)((o.rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK)),
        block(32 * ROWS_PER_BLOCK);
#define EL_MM(K, N) EL_LAUNCH((K<W, N, E>), grid, block, 0, s)(o, x, n, in)
    if (vec && o.norm) EL_MM(matmul_vec_kernel, true);
    else if (vec) EL_MM(matmul_vec_kernel, false);
    else if (o.norm) EL_MM(matmul_kernel, true);
    else EL_MM(matmul_kernel, false);
#undef EL_MM
}

template <typename W>
static void launch(const el_mm_out &o, const float *x, size_t n, size_t in, cudaStream_t s) {
    const bool vec = mm_vec_ok(in, sizeof(W), x, o);
    mm_by_kind(o.epi, [&](auto e) { launch_e<W, decltype(e)::value>(o, x, n, in, vec, s); });
}

template <int T, int BB, int E>
static void launch_q32_e(const el_mm_out &o, const float *x, size_t n, size_t in,
                         cudaStream_t s) {
    const dim3 grid((unsigned)((o.rows + ROWS_PER_BLOCK - 1) / ROWS_PER_BLOCK)),
        block(32 * ROWS_PER_BLOCK);
    if (o.norm) EL_LAUNCH((matmul_q32_kernel<T, BB, true, E>), grid, block, 0, s)(o, x, n, in);
    else EL_LAUNCH((matmul_q32_kernel<T, BB, false, E>), grid, block, 0, s)(o, x, n, in);
}

template <int T, int BB>
static void launch_q32(const el_mm_out &o, const float *x, size_t n, size_t in, cudaStream_t s) {
    mm_by_kind(o.epi, [&](auto e) { launch_q32_e<T, BB, decltype(e)::value>(o, x, n, in, s); });
}

/* One launch for o (parts, rows, prologue and epilogue filled in) with weights of wt. The K
 * types (matmul_k.cu) and prompt batches of the 32-blocks (int8 dot products,
 * matmul_dp4a.cu) take the same norms, outputs and epilogues. */
static el_status mm_run(const el_mm_out &o, const float *x, el_dtype wt, size_t n, size_t in,
                        cudaStream_t s) {
    if (n == 0 || o.rows == 0) return EL_OK;
    if (wt == EL_DT_Q4_K || wt == EL_DT_Q5_K || wt == EL_DT_Q6_K) {
        return el_mm_run_k(o, x, wt, n, in, n >= 2, s); /* prompt batches: dp4a */
    }
    if (wt == EL_DT_Q8_0 || wt == EL_DT_Q4_0 || wt == EL_DT_Q4_1 || wt == EL_DT_Q5_0 ||
        wt == EL_DT_Q5_1) {
        if (in % 32)
            return el_errorf(EL_E_INVALID, "cuda matmul: %s rows of %zu values are not whole "
                             "blocks of 32", el_dtype_name(wt), in);
        if (n >= 2) return el_mm_run_dp4a(o, x, wt, n, in, s); /* prompt batches */
        for (int p = 0; p < o.parts; p++)
            if ((uintptr_t)o.w[p] % 2)
                return el_errorf(EL_E_INVALID, "cuda matmul: %s weights at %p: need 2-byte "
                                 "alignment", el_dtype_name(wt), o.w[p]);
        switch (wt) {
        case EL_DT_Q8_0: launch_q32<EL_DT_Q8_0, 34>(o, x, n, in, s); break;
        case EL_DT_Q4_0: launch_q32<EL_DT_Q4_0, 18>(o, x, n, in, s); break;
        case EL_DT_Q4_1: launch_q32<EL_DT_Q4_1, 20>(o, x, n, in, s); break;
        case EL_DT_Q5_0: launch_q32<EL_DT_Q5_0, 22>(o, x, n, in, s); break;
        default: launch_q32<EL_DT_Q5_1, 24>(o, x, n, in, s); break;
        }
    } else if (wt == EL_DT_F16)
        launch<__half>(o, x, n, in, s);
    else if (wt == EL_DT_BF16)
        launch<uint16_t>(o, x, n, in, s);
    else
        launch<float>(o, x, n, in, s);
    EL_CUDA_LAUNCHED();
    return EL_OK;
}

extern "C" el_status el_cuda_matmul(float *y, size_t ldy, const float *x, const void *w,
                                    el_dtype wt, size_t n, size_t in, size_t out,
                                    el_cuda_stream st) {
    return mm_run(mm_one(y, ldy, w, NULL, EL_DT_F32, out), x, wt, n, in, (cudaStream_t)st);
}

extern "C" el_status el_cuda_linear(float *y, size_t ldy, const float *x, const void *w,
                                    el_dtype wt, const void *b, el_dtype bt, size_t n,
                                    size_t in, size_t out, el_cuda_stream st) {
    return mm_run(mm_one(y, ldy, w, b, bt, out), x, wt, n, in, (cudaStream_t)st);
}

/* The weights every kernel here takes, with every prologue and epilogue. */
static bool mm_takes(el_dtype wt) {
    return wt == EL_DT_F32 || wt == EL_DT_F16 || wt == EL_DT_BF16 || wt == EL_DT_Q8_0 ||
           wt == EL_DT_Q4_0 || wt == EL_DT_Q4_1 || wt == EL_DT_Q5_0 || wt == EL_DT_Q5_1 ||
           wt == EL_DT_Q4_K || wt == EL_DT_Q5_K || wt == EL_DT_Q6_K;
}

extern "C" bool el_cuda_linear_norm_fuses(el_dtype wt, el_dtype nt) {
    return mm_takes(wt) && (nt == EL_DT_F32 || nt == EL_DT_F16 || nt == EL_DT_BF16);
}

extern "C" el_status el_cuda_linear_parts(const el_cuda_part *parts, size_t n_parts,
                                          const float *x, el_dtype wt, size_t n, size_t in,
                                          el_cuda_epi epi, const el_cuda_prenorm *norm,
                                          el_cuda_stream st) {
    el_mm_out o;
    const el_status e = mm_parts_checked(parts, n_parts, epi, norm, &o);
    if (e != EL_OK) return e;
    return mm_run(o, x, wt, n, in, (cudaStream_t)st);
}

extern "C" bool el_cuda_linear_qkv_fuses(const el_cuda_part parts[3], el_dtype wt,
                                         const el_cuda_qkv *r) {
    const size_t hd = r->head_dim;
    return mm_takes(wt) && (r->kv_dt == EL_DT_F32 || r->kv_dt == EL_DT_F16) &&
           hd >= 2 && hd % 2 == 0 && parts[0].out % hd == 0 && parts[1].out % hd == 0 &&
           parts[2].out == parts[1].out && (!r->cos) == (!r->sin);
}

extern "C" el_status el_cuda_linear_qkv(const el_cuda_part parts[3], const float *x,
                                        el_dtype wt, size_t n, size_t in,
                                        const el_cuda_prenorm *norm, const el_cuda_qkv *r,
                                        el_cuda_stream st) {
    if (!mm_takes(wt))
        return el_errorf(EL_E_UNSUPPORTED, "cuda linear: no q|k|v epilogue for %s weights "
                         "(f32, f16, bf16, the 32-blocks, the K types)", el_dtype_name(wt));
    if (!el_cuda_linear_qkv_fuses(parts, wt, r))
        return el_errorf(EL_E_USAGE, "cuda linear: q|k|v epilogue of %zu, %zu, %zu rows, "
                         "head_dim %zu, a %s cache (need an even head_dim dividing q's and "
                         "k's rows, v's as k's, an F32 or F16 cache, both tables or none)",
                         parts[0].out, parts[1].out, parts[2].out, r->head_dim,
                         el_dtype_name(r->kv_dt));
    el_cuda_part cp[3] = {parts[0], parts[1], parts[2]};
    cp[1].y = (float *)r->kc; /* the caches, rows of k's width (mm_store_qkv) */
    cp[2].y = (float *)r->vc;
    cp[1].ldy = cp[2].ldy = parts[1].out;
    el_mm_out o = mm_parts(cp, 3, EL_CUDA_EPI_QKV, norm);
    for (int p = 0; p <= 3; p++) o.first[p] /= 2; /* row pairs: every out is even */
    o.rows /= 2;
    o.cos = r->cos;
    o.sin = r->sin;
    o.dpos = r->dpos;
    o.pos0 = r->pos0;
    o.hd = r->head_dim;
    o.kvt = r->kv_dt;
    o.inter = r->interleaved;
    return mm_run(o, x, wt, n, in, (cudaStream_t)st);
}
