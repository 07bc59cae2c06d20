/* ops.h - the op table a backend fills (kernels/cpu/ops_table.c, kernels/cuda/ops_table.c)
 * and the forward passes (models/decoder.c, models/bert.c) are written against, once:
 * they never know which backend runs them.
 * Shapes and layouts are those of kernels/cpu/cpu.h (row-major, weights [out, in], f32
 * activations). Pointers are in the arena: host memory for the CPU, CUDA memory for the
 * GPU. Every op returns EL_OK or the backend's failure (a refused launch: EL_E_NODEV); the
 * CPU never fails. Ops queue work and may return before it is done; the caller
 * synchronises (el_gpu_sync) before the host reads results. */
#ifndef EL_KERNELS_OPS_H
#define EL_KERNELS_OPS_H

#include "kernels/cpu/cpu.h"
#include "kernels/rope_freq.h"
#include "platform/gpu.h"

/* A weight as the kernels take it. */
typedef struct el_weight {
    const void *p; /* in the arena (NULL when only checking a plan, or an absent bias) */
    el_dtype dt;   /* as loaded (or as planned) */
    bool x8;       /* the CPU's 8-row tiles (kernels/cpu/quant.h, el_q_x8_repack): rows
                      8t..8t+7 of the tensor at p + 8t * row bytes */
} el_weight;

/* Returns from the enclosing function when call fails. */
#define EL_TRY(call)                                                                           \
    do {                                                                                       \
        el_status el_try_ = (call);                                                            \
        if (el_try_ != EL_OK) return el_try_;                                                  \
    } while (0)

/* Where ops run: the CPU's thread pool, the GPU's stream. */
typedef struct el_exec {
    el_pool *pool;  /* CPU: the session's pool */
    void *stream;   /* CUDA: el_gpu_stream (cudaStream_t) */
    unsigned numerics; /* CPU rounding: 0 = edgeload's own, or EL_EXEC_GGML* flags */
    /* CUDA graphs: NULL, or a device word holding the batch's first position (the same
     * value as the pos0 / row0 arguments below): the kernels read it there, so a captured
     * step replays at whatever position the host uploaded with the ids. Then max_pos (the
     * positions the cache holds) sizes what would otherwise depend on the position (the
     * attention's chunks). The CPU ignores both. */
    const int32_t *dpos;
    size_t max_pos;
    /* CUDA: NULL, or two zeroed words of device memory a phased launch (attention_linear,
     * linear_chain) counts its tasks in and sets back to zero when it ends; launches on the
     * stream share them (one runs at a time). */
    unsigned *phase;
} el_exec;

enum {
    EL_EXEC_GGML = 1u << 0,          /* llama.cpp's CPU rounding (el_numerics GGML): the
                                        attention row, RMSNorm's and RoPE's arithmetic */
    EL_EXEC_GGML_PRESCALE = 1u << 1, /* with GGML: the query is scaled before the attention
                                        rounds it (llama.cpp's Gemma 3 and Phi-3) */
};

typedef enum el_norm_kind {
    EL_NORM_RMS,   /* x / sqrt(mean(x^2) + eps) * w */
    EL_NORM_LAYER, /* (x - mean) / sqrt(var + eps) * w + b */
    EL_NORM_RMS_1P, /* x / sqrt(mean(x^2) + eps) * (1 + w) (Gemma) */
} el_norm_kind;

typedef enum el_act_kind {
    EL_ACT_SWIGLU,    /* x = silu(x) * up */
    EL_ACT_GEGLU,     /* x = gelu_tanh(x) * up (Gemma) */
    EL_ACT_GELU_TANH, /* GPT-2's gelu_new */
    EL_ACT_GELU_ERF,  /* exact gelu */
    EL_ACT_TANH,      /* BERT's pooler */
} el_act_kind;

/* Packed sequences of an encoder batch: sequence b is rows start[b] .. start[b] + len[b] - 1.
 * The CPU reads the per-sequence arrays; the GPU the per-row ones (backend memory). */
typedef struct el_seqs {
    const uint32_t *start, *len; /* [n_seq] host */
    size_t n_seq, max_len, rows; /* rows: packed rows in all (start + len of the last) */
    const int32_t *row_start, *row_len; /* [rows] backend memory: each row's sequence */
} el_seqs;

/* One output of a fused linear: y[t, :out] = W in[t, :] (+ b) for the batch's rows t. */
typedef struct el_linear_part {
    float *y;    /* [n, ldy] backend memory */
    size_t ldy;  /* y's row stride in floats (>= out) */
    el_weight w; /* [out, in_dim] */
    el_weight b; /* [out], or p NULL */
    size_t out;
} el_linear_part;

#define EL_LINEAR_MAX_PARTS 3 /* q, k, v */

/* What a fused linear does with each result s = W in + b before it lands in y. */
typedef enum el_epilogue {
    EL_EPI_STORE,      /* y = s */
    EL_EPI_ACCUMULATE, /* y += s (the residual stream) */
    EL_EPI_GELU_TANH,  /* y = gelu_tanh(s) */
    EL_EPI_GELU_ERF,   /* y = gelu_erf(s) */
    /* Gated FFNs: exactly two parts, gate then up, of the same out and ldy == out: part 0's
     * y = act(gate) * up as o->act(EL_ACT_SWIGLU / EL_ACT_GEGLU) computes it; part 1's y is
     * scratch (a backend that fuses never writes it). */
    EL_EPI_SWIGLU,
    EL_EPI_GEGLU,
} el_epilogue;

/* A norm of a fused linear's input rows, as o->norm(kind, w, b, eps) would give them; out:
 * [n, in_dim] floats where a backend that runs it separately puts the normed rows. */
typedef struct el_linear_norm {
    el_norm_kind kind;
    el_weight w, b; /* b: LayerNorm's bias, p NULL for none */
    float eps;
    float *out;
} el_linear_norm;

/* Where a q|k|v linear's keys and values go and how q and k turn (linear_qkv). */
typedef struct el_qkv_tail {
    const float *cos, *sin; /* [positions, head_dim / 2] RoPE tables; NULL: no RoPE */
    size_t head_dim;
    size_t pos0;            /* the rows' first position (x->dpos's word when set) */
    bool interleaved;       /* as rope's */
    void *kc, *vc;          /* [positions, k's out] of kv_dt: the layer's caches */
    el_dtype kv_dt;         /* EL_DT_F32 or EL_DT_F16 */
} el_qkv_tail;

typedef struct el_ops {
    const char *name;   /* "cpu", "cuda" */
    bool host_visible;  /* activations are host memory: no copies to or from the host */
    /* bytes between host memory and backend memory. */
    el_status (*upload)(const el_exec *x, void *dst, const void *src, size_t bytes);
    el_status (*download)(const el_exec *x, void *dst, const void *src, size_t bytes);
    /* out[t] = table[ids[t]] as f32 for t < n (ids in backend memory, checked < rows). */
    el_status (*embed)(const el_exec *x, float *out, el_weight table, size_t dim,
                       const int32_t *ids, size_t n);
    /* y[t] += table[idx[t]] (idx in backend memory), or with idx NULL y[t] += table[row0 + t]
     * (row0: x->dpos's word when set). */
    el_status (*embed_add)(const el_exec *x, float *y, el_weight table, size_t dim,
                           const int32_t *idx, size_t row0, size_t n);
    /* n rows of dim; b (LayerNorm bias) may have p NULL; out may equal in. */
    el_status (*norm)(const el_exec *x, el_norm_kind k, float *out, const float *in,
                      el_weight w, el_weight b, size_t n, size_t dim, float eps);
    /* y[t, :] = W in[t, :] (+ b when b.p) for t < n; ldy: y's row stride in floats. */
    el_status (*linear)(const el_exec *x, float *y, size_t ldy, const float *in, el_weight w,
                        el_weight b, size_t n, size_t in_dim, size_t out_dim);
    /* Fills [ctx, head_dim / 2] RoPE tables in float, the way llama2.c and HF compute them:
     * angle = pos * el_rope_inv_freq(r, i, head_dim) (kernels/rope_freq.h). */
    el_status (*rope_table)(const el_exec *x, float *cos, float *sin, size_t ctx,
                            size_t head_dim, el_rope r);
    /* Rotates n rows (stride ld) of heads x head_dim by positions pos0 .. pos0 + n - 1 (pos0:
     * x->dpos's word when set); cos/sin: [positions, head_dim / 2] tables. */
    el_status (*rope)(const el_exec *x, float *v, size_t ld, size_t n, size_t heads,
                      size_t head_dim, const float *cos, const float *sin, size_t pos0,
                      bool interleaved);
    /* Causal GQA over the layer's cache of kv_dt, EL_DT_F32 or EL_DT_F16 (see
     * el_cpu_attention_kv: window 0 = all keys, scores times scale); att: CPU scores
     * scratch (CUDA: the split attention's partials); pos0: x->dpos's word when set. */
    el_status (*attention)(const el_exec *x, float *out, const float *q, const void *k,
                           const void *v, el_dtype kv_dt, float *att, size_t att_stride,
                           size_t n, size_t pos0, size_t heads, size_t kv_heads,
                           size_t head_dim, size_t window, float scale);
    /* Stores n rows of width f32 keys k and values v into rows pos0 .. pos0 + n - 1 (pos0:
     * x->dpos's word when set) of the caches kd, vd ([positions, width] of kv_dt): F16 rounds
     * to nearest even (as el_fp32_to_fp16), F32 copies. */
    el_status (*kv_store)(const el_exec *x, void *kd, void *vd, el_dtype kv_dt, size_t width,
                          size_t pos0, const float *k, const float *v, size_t n);
    /* Bidirectional attention within each packed sequence (q, k, v, out: row stride ld =
     * heads * head_dim; out may be q); att: CPU scores scratch of att_stride per head. */
    el_status (*attention_bidir)(const el_exec *x, float *out, const float *q, const float *k,
                                 const float *v, const el_seqs *s, size_t heads,
                                 size_t head_dim, float *att, size_t att_stride);
    /* In place over n entries (up: SwiGLU's second input, else NULL). */
    el_status (*act)(const el_exec *x, el_act_kind k, float *v, const float *up, size_t n);
    /* v *= s, n entries. */
    el_status (*scale)(const el_exec *x, float *v, float s, size_t n);
    /* y += v, n entries. */
    el_status (*add)(const el_exec *x, float *y, const float *v, size_t n);
    /* y = v, n floats, both backend memory. */
    el_status (*copy)(const el_exec *x, float *y, const float *v, size_t n);
    /* Optional (NULL: the caller runs norm, linear, add and act instead; see el_ops_linear):
     * up to EL_LINEAR_MAX_PARTS linears of the same input in one pass, the input rows
     * normed first when norm is not NULL, each result through e (the epilogue does the f32
     * operations of linear then add or act). Outputs must not overlap in. */
    el_status (*linear_fused)(const el_exec *x, const el_linear_part *parts, size_t n_parts,
                              const float *in, size_t n, size_t in_dim, el_epilogue e,
                              const el_linear_norm *norm);
    /* Optional (NULL: the caller runs rope on each): rope over q (heads of stride ldq) and
     * k (kv_heads, stride ldk) in one pass, n rows by the same positions. */
    el_status (*rope_qk)(const el_exec *x, float *q, size_t ldq, size_t heads, float *k,
                         size_t ldk, size_t kv_heads, size_t n, size_t head_dim,
                         const float *cos, const float *sin, size_t pos0, bool interleaved);
    /* Optional (NULL, or *fused false with nothing queued where it does not take the shapes,
     * dtypes or norm: the caller runs linear_fused or the separate ops, rope_qk or rope,
     * kv_store): the linear_fused of parts q, k, v (EL_EPI_STORE; norm as there), then RoPE
     * of q and k (when t->cos), q into parts[0].y, k and v stored into rows pos0 .. pos0 +
     * n - 1 of t's caches, in one pass, with the bits of the separate ops; parts[1].y and
     * parts[2].y are not written. */
    el_status (*linear_qkv)(const el_exec *x, const el_linear_part *parts, const float *in,
                            size_t n, size_t in_dim, const el_linear_norm *norm,
                            const el_qkv_tail *t, bool *fused);
    /* Optional (NULL, or *fused false with nothing queued where it does not take the dtypes
     * or shapes: the caller runs attention, then linear_fused): attention as above into out,
     * then the linear of part o over its rows (in_dim heads * head_dim) with
     * EL_EPI_ACCUMULATE and no norm, in one pass, with the bits of the two ops. */
    el_status (*attention_linear)(const el_exec *x, float *out, const float *q, const void *k,
                                  const void *v, el_dtype kv_dt, float *att, size_t att_stride,
                                  size_t n, size_t pos0, size_t heads, size_t kv_heads,
                                  size_t head_dim, size_t window, float scale,
                                  const el_linear_part *o, bool *fused);
    /* Optional (as attention_linear; else linear_fused twice): linear_fused(a, na, in, e,
     * norm), then linear_fused of the one part b over a[0].y (rows of a[0].out floats) with
     * EL_EPI_ACCUMULATE and no norm, in one pass, with the bits of the two calls. */
    el_status (*linear_chain)(const el_exec *x, const el_linear_part *a, size_t na,
                              const float *in, size_t n, size_t in_dim, el_epilogue e,
                              const el_linear_norm *norm, const el_linear_part *b,
                              bool *fused);
    /* Optional (NULL: the caller downloads v and takes el_cpu_argmax): *idx = the index of
     * the largest of v[0..n) (the first on ties; NaN never wins), backend memory. */
    el_status (*argmax)(const el_exec *x, const float *v, size_t n, int32_t *idx);
} el_ops;

extern const el_ops el_ops_cpu;  /* kernels/cpu/ops_table.c */
#ifdef EL_HAVE_CUDA
extern const el_ops el_ops_cuda; /* kernels/cuda/ops_table.c, in the CUDA module */
#endif

/* The table for a session or encoder: CUDA when on_gpu (the module is loaded by then:
 * platform/gpu.h), else the CPU. */
static inline const el_ops *el_ops_for(bool on_gpu) {
    const el_ops *g = on_gpu ? el_gpu_ops() : NULL;
    return g ? g : &el_ops_cpu;
}

/* The parts through x's linear_fused when the table has one, else norm (when not NULL)
 * into norm->out, then each part through linear then e: EL_EPI_ACCUMULATE computes into tmp
 * ([n, out] floats, not overlapping y or in) and adds it; the GELUs run act in place (for
 * both, each part's ldy must equal its out). */
el_status el_ops_linear(const el_ops *o, const el_exec *x, const el_linear_part *parts,
                        size_t n_parts, const float *in, size_t n, size_t in_dim, el_epilogue e,
                        const el_linear_norm *norm, float *tmp);

/* A view of rows r0.. of a [rows, cols] weight (fused QKV: q, k and v row blocks). */
el_weight el_weight_rows(el_weight w, size_t r0, size_t cols);

#endif /* EL_KERNELS_OPS_H */
