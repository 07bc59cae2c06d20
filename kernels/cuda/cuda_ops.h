/* cuda_ops.h - the CUDA kernels, callable from C (internal; builds with EL_HAVE_CUDA only).
 * Each op mirrors the CPU kernel of the same name in kernels/cpu/cpu.h: same shapes, same
 * layouts (weights [out, in] as placed by the loader), f32 activations, f32/f16/bf16
 * weights, and runs on the caller's stream without synchronising. Pointers are device (or
 * managed) memory. Every call returns EL_OK or EL_E_NODEV naming the failed runtime call
 * (el_last_error). Launch errors are reported at once; faults inside a kernel surface at
 * the caller's next synchronisation. No op allocates: scratch comes from the caller.
 *
 * Status: compiled in every CUDA build; checked against the CPU kernels only by
 * tests/test_kernels_cuda.c (label `cuda`), which needs a GPU to run. */
#ifndef EL_KERNELS_CUDA_OPS_H
#define EL_KERNELS_CUDA_OPS_H

#include "edgeload.h"
#include "kernels/rope_freq.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct CUstream_st *el_cuda_stream; /* cudaStream_t; NULL = the legacy stream */

/* EL_OK if this build's kernels can run on the current GPU (it holds an image for it);
 * else EL_E_NODEV naming the architectures built. */
el_status el_cuda_probe(void);
/* Queues a copy of bytes (any direction) on st (platform/gpu_cuda.c). */
el_status el_cuda_copy(void *dst, const void *src, size_t bytes, el_cuda_stream st);

/* y[t, :] = W x[t, :] for t < n (ldy = row stride of y in floats). */
el_status el_cuda_matmul(float *y, size_t ldy, const float *x, const void *w, el_dtype wt,
                         size_t n, size_t in, size_t out, el_cuda_stream st);
/* The K block types (Q4_K, Q5_K, Q6_K; kernels/cuda/matmul_k.cu), in a multiple of 256, with
 * f32 activations (any n): el_cuda_matmul sends decode (n = 1) here. EL_E_INVALID for another type, rows that are not whole
 * super-blocks, or w not aligned for the loads (Q4_K/Q5_K: 16 bytes, Q6_K: 2). */
el_status el_cuda_matmul_k(float *y, size_t ldy, const float *x, const void *w, el_dtype wt,
                           size_t n, size_t in, size_t out, el_cuda_stream st);
/* The K types by int8 dot products, x quantized per 256 values as el_cpu_matmul's Q8_K
 * (kernels/cuda/matmul_k.cu): el_cuda_matmul sends prompt batches (n >= 2) here, decode
 * (n = 1) takes el_cuda_matmul_k's f32 activations. Same refusals as el_cuda_matmul_k. */
el_status el_cuda_matmul_k_dp4a(float *y, size_t ldy, const float *x, const void *w,
                                el_dtype wt, size_t n, size_t in, size_t out,
                                el_cuda_stream st);
/* The 32-block types (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) by int8 dot products: x quantized to 8
 * bits per block as el_cpu_matmul does (kernels/cuda/matmul_dp4a.cu); el_cuda_matmul sends
 * prompt batches (n >= 2) here, decode (n = 1) keeps f32 activations. */
el_status el_cuda_matmul_q32_dp4a(float *y, size_t ldy, const float *x, const void *w,
                                  el_dtype wt, size_t n, size_t in, size_t out,
                                  el_cuda_stream st);
/* el_cuda_matmul, then + b per row when b is not NULL (bt: b's dtype). */
el_status el_cuda_linear(float *y, size_t ldy, const float *x, const void *w, el_dtype wt,
                         const void *b, el_dtype bt, size_t n, size_t in, size_t out,
                         el_cuda_stream st);
/* Up to EL_CUDA_MAX_PARTS linears of the same input in one launch (q, k, v; gate, up): part
 * p writes y[t * ldy + r] for its out rows r (weights [out, in] of the launch's dtype, bias b
 * of bt or NULL), each result through the epilogue. */
#define EL_CUDA_MAX_PARTS 3
typedef struct el_cuda_part {
    float *y;
    size_t ldy;
    const void *w;
    const void *b;
    el_dtype bt;
    size_t out;
} el_cuda_part;
typedef enum el_cuda_epi {
    EL_CUDA_EPI_STORE,      /* y = W x + b */
    EL_CUDA_EPI_ACCUMULATE, /* y += W x + b (the residual) */
    EL_CUDA_EPI_GELU_TANH,  /* y = gelu_tanh(W x + b) */
    EL_CUDA_EPI_GELU_ERF,   /* y = gelu_erf(W x + b) */
    /* Gated FFNs, exactly two parts (gate, up) of the same out, weights of any matmul dtype
     * (f32/f16/bf16, the 32-blocks, the K types): a warp computes row r of both and stores
     * act(gate) * up into part 0's y (part 1's y is not written): the same f32 operations as
     * the linears then el_cuda_swiglu, or then el_cuda_gelu_tanh and el_cuda_mul. */
    EL_CUDA_EPI_SWIGLU,     /* y = silu(Wg x + bg) * (Wu x + bu) */
    EL_CUDA_EPI_GEGLU,      /* y = gelu_tanh(Wg x + bg) * (Wu x + bu) */
    EL_CUDA_EPI_QKV,        /* RoPE and the KV cache: el_cuda_linear_qkv only */
} el_cuda_epi;
/* A norm of the input rows in the same launch (norm may be NULL): RMSNorm scaled by
 * (w_offset + w), or LayerNorm with w and b (NULL: none), both of wt, as the norm kernels. */
typedef enum el_cuda_norm { EL_CUDA_NORM_NONE, EL_CUDA_NORM_RMS, EL_CUDA_NORM_LAYER } el_cuda_norm;
typedef struct el_cuda_prenorm {
    el_cuda_norm kind;
    const void *w, *b;
    el_dtype wt;
    float eps, w_offset;
} el_cuda_prenorm;
el_status el_cuda_linear_parts(const el_cuda_part *parts, size_t n_parts, const float *x,
                               el_dtype wt, size_t n, size_t in, el_cuda_epi epi,
                               const el_cuda_prenorm *norm, el_cuda_stream st);
/* The q|k|v launch of a decoder layer with RoPE and the KV cache in its epilogue: parts q, k,
 * v of el_cuda_linear_parts (weights of one dtype, any that it takes; q's and k's out
 * multiples of head_dim, v's out equal to k's), input rows t < n at positions pos0 + t
 * (pos0 read from the device word *dpos when dpos is not NULL). q and k are rotated as
 * el_cuda_rope_at does (cos NULL: not rotated, as without RoPE), q stored into part 0's y, k and v into rows
 * pos0 + t of kc and vc ([positions, k's out] of kv_dt) as el_cuda_kv_store_at stores them;
 * parts 1 and 2's y are not written. A warp reduces the two rows of a rotation pair (v: two
 * neighbouring rows), each as a row of its own: the same bits as el_cuda_linear_parts, then
 * el_cuda_rope_at, then el_cuda_kv_store_at. EL_E_UNSUPPORTED for other weights, EL_E_USAGE
 * for shapes it does not take (el_cuda_linear_qkv_fuses says which before). */
typedef struct el_cuda_qkv {
    const float *cos, *sin;  /* [positions, head_dim / 2] tables (el_cuda_rope_table) */
    size_t head_dim, pos0;
    const int32_t *dpos;
    bool interleaved;        /* pairs (2i, 2i + 1), else (i, i + head_dim / 2) */
    void *kc, *vc;           /* the layer's caches, row 0 */
    el_dtype kv_dt;          /* EL_DT_F32 or EL_DT_F16 */
} el_cuda_qkv;
el_status el_cuda_linear_qkv(const el_cuda_part parts[3], const float *x, el_dtype wt,
                             size_t n, size_t in, const el_cuda_prenorm *norm,
                             const el_cuda_qkv *r, el_cuda_stream st);
bool el_cuda_linear_qkv_fuses(const el_cuda_part parts[3], el_dtype wt, const el_cuda_qkv *r);
/* Whether the prologue takes a norm of nt weights (f32, f16, bf16) for matmul weights of wt
 * (f32, f16, bf16, the 32-blocks, the K types); else run the norm kernel first. */
bool el_cuda_linear_norm_fuses(el_dtype wt, el_dtype nt);
/* out = x / sqrt(mean(x^2) + eps) * w, n rows of dim. */
el_status el_cuda_rmsnorm(float *out, const float *x, const void *w, el_dtype wt, size_t n,
                          size_t dim, float eps, el_cuda_stream st);
/* The same scaled by (w_offset + w) (Gemma: 1 + w). */
el_status el_cuda_rmsnorm_off(float *out, const float *x, const void *w, el_dtype wt, size_t n,
                              size_t dim, float eps, float w_offset, el_cuda_stream st);
/* out = (x - mean) / sqrt(var + eps) * w + b (b may be NULL), n rows of dim. */
el_status el_cuda_layernorm(float *out, const float *x, const void *w, const void *b,
                            el_dtype wt, size_t n, size_t dim, float eps, el_cuda_stream st);
/* Rotates n rows of n_heads heads of head_dim (row stride ld floats) by the angles of n
 * consecutive positions: cos/sin point at the first one's row of a [positions, head_dim/2]
 * table (el_cuda_rope_table); interleaved as in el_cpu_rope. */
el_status el_cuda_rope(float *x, size_t ld, size_t n, size_t n_heads, size_t head_dim,
                       const float *cos, const float *sin, bool interleaved, el_cuda_stream st);
/* The same over n rows of two tensors in one launch: n_heads heads of x (stride ld), then
 * y_heads heads of y (stride ldy; y NULL: x only), by the same positions (q and k). */
el_status el_cuda_rope2(float *x, size_t ld, size_t n_heads, float *y, size_t ldy,
                        size_t y_heads, size_t n, size_t head_dim, const float *cos,
                        const float *sin, bool interleaved, el_cuda_stream st);
/* el_cuda_rope2 from the tables' row pos0 (cos, sin: the tables themselves), pos0 read by
 * the kernel from the device word *dpos when dpos is not NULL (CUDA graphs: a captured
 * launch replays at whatever position the host uploaded). */
el_status el_cuda_rope_at(float *x, size_t ld, size_t n_heads, float *y, size_t ldy,
                          size_t y_heads, size_t n, size_t head_dim, const float *cos,
                          const float *sin, size_t pos0, const int32_t *dpos, bool interleaved,
                          el_cuda_stream st);
/* Fills the [ctx, head_dim/2] tables in float as the CPU's table op does:
 * freq_i = el_rope_inv_freq(r, i, head_dim), angle = pos * freq_i. */
el_status el_cuda_rope_table(float *cos, float *sin, size_t ctx, size_t head_dim, el_rope r,
                             el_cuda_stream st);
/* In place over n rows of len: softmax per row. */
el_status el_cuda_softmax(float *x, size_t n, size_t len, el_cuda_stream st);
/* Element-wise, n entries: gate = silu(gate) * up; x = gelu_tanh(x); x = gelu_erf(x); y += x. */
el_status el_cuda_swiglu(float *gate, const float *up, size_t n, el_cuda_stream st);
el_status el_cuda_gelu_tanh(float *x, size_t n, el_cuda_stream st);
el_status el_cuda_gelu_erf(float *x, size_t n, el_cuda_stream st);
el_status el_cuda_add(float *y, const float *x, size_t n, el_cuda_stream st);
/* y *= x; x *= s (n entries). */
el_status el_cuda_mul(float *y, const float *x, size_t n, el_cuda_stream st);
el_status el_cuda_scale(float *x, float s, size_t n, el_cuda_stream st);
/* y[t, :] += b for n rows of out entries (row stride ldy). */
el_status el_cuda_add_bias(float *y, size_t ldy, const void *b, el_dtype bt, size_t n,
                           size_t out, el_cuda_stream st);
/* out[t, :] = table[ids[t], :] as f32, n rows of dim; ids in device memory, < rows. */
el_status el_cuda_embed(float *out, const void *table, el_dtype dt, size_t dim,
                        const int32_t *ids, size_t n, el_cuda_stream st);
/* y[t, :] += table[row0 + t, :] as f32 for t < n (GPT-2's learned positions). */
el_status el_cuda_add_rows(float *y, const void *table, el_dtype dt, size_t dim, size_t row0,
                           size_t n, el_cuda_stream st);
/* The same from row *drow0 (a device word) when drow0 is not NULL, else row0. */
el_status el_cuda_add_rows_at(float *y, const void *table, el_dtype dt, size_t dim, size_t row0,
                              const int32_t *drow0, size_t n, el_cuda_stream st);
/* y[t, :] += table[idx[t], :] as f32 for t < n; idx in device memory (BERT's positions
 * and token types). */
el_status el_cuda_embed_add(float *y, const void *table, el_dtype dt, size_t dim,
                            const int32_t *idx, size_t n, el_cuda_stream st);
/* Rows of a K-type table (Q4_K, Q5_K, Q6_K; dim a multiple of 256), dequantized as
 * kernels/cpu/quant.c does (bit for bit): y[t, :] = (add: +=) table[r, :] for t < n, with
 * r = ids[t] (ids in device memory, < rows) or row0 + t when ids is NULL. el_cuda_embed,
 * el_cuda_add_rows and el_cuda_embed_add for the K types (the op table routes them). */
el_status el_cuda_embed_k(float *y, const void *table, el_dtype dt, size_t dim,
                          const int32_t *ids, size_t row0, size_t n, bool add,
                          el_cuda_stream st);
/* x = tanh(x), n entries (BERT's pooler). */
el_status el_cuda_tanh(float *x, size_t n, el_cuda_stream st);
/* *idx = index of the largest of n entries (the first on ties; NaN never wins). */
el_status el_cuda_argmax(const float *x, size_t n, int32_t *idx, el_cuda_stream st);
/* Causal grouped-query attention, as el_cpu_attention: q, out [n, n_heads * head_dim];
 * k, v: the layer's cache [>= pos0 + n, n_kv_heads * head_dim]. No context limit:
 * shared memory is fixed; head_dim <= 1024 (EL_E_UNSUPPORTED past it). Without a partials
 * buffer (these two) one block per (row, KV head) walks all of the row's keys. */
el_status el_cuda_attention(float *out, const float *q, const float *k, const float *v,
                            size_t n, size_t pos0, size_t n_heads, size_t n_kv_heads,
                            size_t head_dim, el_cuda_stream st);
/* With a sliding window (keys max(0, pos + 1 - window) .. pos; 0 = all) and a score scale
 * (el_cuda_attention: 1 / sqrt(head_dim)). */
el_status el_cuda_attention_ex(float *out, const float *q, const float *k, const float *v,
                               size_t n, size_t pos0, size_t n_heads, size_t n_kv_heads,
                               size_t head_dim, size_t window, float scale, el_cuda_stream st);
/* The same over a cache of kv_dt: EL_DT_F32 (float, el_cuda_attention_ex) or EL_DT_F16
 * (__half, widened as it is read; everything else f32), split across the context
 * (kernels/attn_split.h): part (device memory, part_floats floats; NULL/0 for none) holds
 * the chunks' partials, and the rows' keys are cut into as many chunks as it holds, up to
 * el_attn_splits(keys of the last row). el_attn_partial_floats(n, n_heads, head_dim, that
 * span) floats give every chunk; fewer give fewer chunks (one: no partials, one launch). */
el_status el_cuda_attention_kv(float *out, const float *q, const void *k, const void *v,
                               el_dtype kv_dt, size_t n, size_t pos0, size_t n_heads,
                               size_t n_kv_heads, size_t head_dim, size_t window, float scale,
                               float *part, size_t part_floats, el_cuda_stream st);
/* el_cuda_attention_kv with the rows' first position read from the device word *dpos when
 * dpos is not NULL (CUDA graphs): the grid is then sized for rows up to position max_ctx - 1
 * (the plan's context), and the blocks past the chunks the live length needs exit, so the
 * chunking (and every result) is the one a by-value call gives. */
el_status el_cuda_attention_at(float *out, const float *q, const void *k, const void *v,
                               el_dtype kv_dt, size_t n, size_t pos0, const int32_t *dpos,
                               size_t max_ctx, size_t n_heads, size_t n_kv_heads,
                               size_t head_dim, size_t window, float scale, float *part,
                               size_t part_floats, el_cuda_stream st);
/* A phased launch (kernels/cuda/phased.cuh) runs a later launch's blocks after an earlier
 * one's in one kernel; ctl: its two control words, device memory, 0 before the launch and
 * again after it (the kernel's last block resets them). The calls below queue one launch
 * and set *fused, or, where they do not take the dtypes or shapes, queue nothing and leave
 * it false (then run the separate ops). Results: the separate launches' bits. */
/* The arguments of el_cuda_attention_at. */
typedef struct el_cuda_attn {
    float *out;
    const float *q;
    const void *k, *v;
    el_dtype kv_dt;
    size_t n, pos0;
    const int32_t *dpos;
    size_t max_ctx, n_heads, n_kv_heads, head_dim, window;
    float scale;
    float *part;
    size_t part_floats;
} el_cuda_attn;
/* el_cuda_attention_at(a), then el_cuda_linear_parts(o, 1 part, x = a->out,
 * EL_CUDA_EPI_ACCUMULATE, no norm) with weights of wt (f32, f16, bf16). */
el_status el_cuda_attention_linear(const el_cuda_attn *a, const el_cuda_part *o, el_dtype wt,
                                   unsigned *ctl, el_cuda_stream st, bool *fused);
/* el_cuda_linear_parts(a, na, x, wt, n, in, ea, norm), then el_cuda_linear_parts(b, 1 part,
 * x = a[0].y (rows of a[0].out, ldy equal to it), bwt, EL_CUDA_EPI_ACCUMULATE, no norm):
 * f32, f16, bf16 weights, both of one dtype; a norm in the prologue; ea not ACCUMULATE. */
el_status el_cuda_linear_chain(const el_cuda_part *a, size_t na, el_cuda_epi ea,
                               const el_cuda_prenorm *norm, const float *x, el_dtype wt,
                               size_t n, size_t in, const el_cuda_part *b, el_dtype bwt,
                               unsigned *ctl, el_cuda_stream st, bool *fused);
/* Stores n f32 keys k and values v into cache rows kd, vd of kv_dt: EL_DT_F16 rounds to
 * nearest even (__float2half_rn), EL_DT_F32 copies. One launch for both. */
el_status el_cuda_kv_store(void *kd, void *vd, el_dtype kv_dt, const float *k, const float *v,
                           size_t n, el_cuda_stream st);
/* The same with kd, vd the cache's row 0 and the batch stored from row *drow (a device
 * word; rows of width entries) when drow is not NULL. */
el_status el_cuda_kv_store_at(void *kd, void *vd, el_dtype kv_dt, const float *k,
                              const float *v, size_t n, const int32_t *drow, size_t width,
                              el_cuda_stream st);
/* Bidirectional attention over packed sequences, as el_cpu_attention_bidir: q, k, v, out
 * [rows, n_heads * head_dim] (out may be q); row r attends to rows seq_start[r] ..
 * seq_start[r] + seq_len[r] - 1 (its own sequence; both arrays in device memory).
 * max_len: the longest sequence (>= 1; no upper limit: the attention blocks above, one
 * chunk per row). */
el_status el_cuda_attention_bidir(float *out, const float *q, const float *k, const float *v,
                                  size_t rows, const int32_t *seq_start, const int32_t *seq_len,
                                  size_t max_len, size_t n_heads, size_t head_dim,
                                  el_cuda_stream st);

#ifdef __cplusplus
}
#endif

#endif /* EL_KERNELS_CUDA_OPS_H */
