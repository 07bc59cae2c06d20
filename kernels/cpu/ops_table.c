/* ops_table.c - the CPU backend's op table (kernels/ops.h) over kernels/cpu. */
#include "kernels/ops.h"
#include "kernels/cpu/matmul_f_impl.h"
#include "kernels/cpu/quant.h"

#include <math.h>
#include <string.h>

/* Rows of x per matmul call: the kernel streams every x row past each block of weight rows,
 * so x should stay in cache (128 x 1024 floats = 512 KiB). Measured with bench_bert on
 * MiniLM, 32 x 128 tokens: one call over all 4096 rows ran 12% (1 thread) to 18% (2
 * threads) slower per sequence than 128-row calls. */
#define MM_ROWS 128u

static el_status cpu_memcpy(const el_exec *x, void *dst, const void *src, size_t bytes) {
    (void)x;
    if (bytes) memcpy(dst, src, bytes);
    return EL_OK;
}

/* y (= or += where add) row r of block-type table t ([rows, dim]), dequantized in pieces of
 * whole blocks (tiled tables: each piece's blocks copied back to GGUF's layout first). */
static void block_row(el_weight t, size_t dim, size_t r, float *y, bool add) {
    float tmp[256];
    uint8_t blk[8 * 34]; /* tiled: the piece's blocks (8 of 32 values, or one K block) */
    const size_t bl = el_dtype_block(t.dt), bb = el_dtype_block_bytes(t.dt);
    const size_t step = sizeof tmp / sizeof tmp[0] / bl * bl;
    const uint8_t *row = el_weight_rows(t, r, dim).p;
    for (size_t c = 0; c < dim; c += step) {
        const size_t m = dim - c < step ? dim - c : step;
        const uint8_t *q = row + c / bl * bb;
        if (t.x8) el_q_x8_row(t.dt, t.p, dim / bl, r, c / bl, m / bl, blk), q = blk;
        el_dequantize_row(t.dt, q, tmp, m);
        for (size_t j = 0; j < m; j++) y[c + j] = add ? y[c + j] + tmp[j] : tmp[j];
    }
}

static el_status cpu_embed(const el_exec *x, float *out, el_weight t, size_t dim,
                           const int32_t *ids, size_t n) {
    (void)x;
    for (size_t i = 0; i < n; i++) {
        if (t.x8) block_row(t, dim, (size_t)ids[i], out + i * dim, false);
        else el_cpu_embed(out + i * dim, t.p, t.dt, dim, (size_t)ids[i]);
    }
    return EL_OK;
}

static el_status cpu_embed_add(const el_exec *x, float *y, el_weight t, size_t dim,
                               const int32_t *idx, size_t row0, size_t n) {
    (void)x;
    for (size_t i = 0; i < n; i++) {
        size_t r = idx ? (size_t)idx[i] : row0 + i;
        if (el_dtype_is_block(t.dt)) {
            block_row(t, dim, r, y + i * dim, true);
            continue;
        }
        el_cpu_add_bias(y + i * dim, dim, el_weight_rows(t, r, dim).p, t.dt, 1, dim);
    }
    return EL_OK;
}

static el_status cpu_norm(const el_exec *x, el_norm_kind k, float *out, const float *in,
                          el_weight w, el_weight b, size_t n, size_t dim, float eps) {
    if ((k == EL_NORM_RMS || k == EL_NORM_RMS_1P) && (x->numerics & EL_EXEC_GGML)) {
        el_cpu_rmsnorm_ggml(out, in, w.p, w.dt, n, dim, eps, k == EL_NORM_RMS_1P ? 1.0f : 0.0f);
    } else if (k == EL_NORM_RMS || k == EL_NORM_RMS_1P) {
        el_cpu_rmsnorm_off(x->pool, out, in, w.p, w.dt, n, dim, eps,
                           k == EL_NORM_RMS_1P ? 1.0f : 0.0f);
    } else if (!b.p || b.dt == w.dt) {
        el_cpu_layernorm(x->pool, out, in, w.p, b.p, w.dt, n, dim, eps);
    } else { /* the kernel takes one dtype for both */
        el_cpu_layernorm(x->pool, out, in, w.p, NULL, w.dt, n, dim, eps);
        el_cpu_add_bias(out, dim, b.p, b.dt, n, dim);
    }
    return EL_OK;
}

/* llama.cpp's rounding: the 32-blocks' sums in its vec_dot order, Q4_K / Q5_K / Q6_K in its
 * x86 kernels' (kernels/cpu/matmul_qk_ggml.c) */
static bool cpu_rowwise(const el_exec *x, el_dtype wt) {
    return (x->numerics & EL_EXEC_GGML) && (el_dtype_block(wt) == 32 || wt == EL_DT_Q4_K ||
                                            wt == EL_DT_Q5_K || wt == EL_DT_Q6_K);
}

static el_status cpu_linear(const el_exec *x, float *y, size_t ldy, const float *in,
                            el_weight w, el_weight b, size_t n, size_t in_dim, size_t out_dim) {
    const bool rowwise = cpu_rowwise(x, w.dt);
    /* ggml's kernel choice depends on the batch (repacked Q4_K's groups of four, the tiled
     * path from 8 tokens): rowwise takes the whole batch in one call */
    const size_t step = rowwise ? n : MM_ROWS;
    for (size_t r0 = 0; r0 < n; r0 += step) {
        const size_t m = n - r0 < step ? n - r0 : step;
        if (rowwise || w.x8)
            el_cpu_matmul_qx(x->pool, y + r0 * ldy, ldy, in + r0 * in_dim, w.p, w.dt, m, in_dim,
                             out_dim, rowwise, w.x8);
        else
            el_cpu_matmul(x->pool, y + r0 * ldy, ldy, in + r0 * in_dim, w.p, w.dt, m, in_dim,
                          out_dim);
    }
    if (b.p) el_cpu_add_bias(y, ldy, b.p, b.dt, n, out_dim);
    return EL_OK;
}

static el_status cpu_rope_table(const el_exec *x, float *cos, float *sin, size_t ctx,
                                size_t head_dim, el_rope r) {
    const size_t half = head_dim / 2;
    if ((x->numerics & EL_EXEC_GGML) && r.type != EL_ROPE_LLAMA3) {
        el_cpu_rope_table_ggml(cos, sin, ctx, head_dim, r.theta,
                               r.type == EL_ROPE_LINEAR ? 1.0f / r.factor : 1.0f);
        return EL_OK;
    }
    for (size_t i = 0; i < half; i++) {
        float freq = el_rope_inv_freq(r, i, head_dim);
        for (size_t p = 0; p < ctx; p++) {
            float a = (float)p * freq;
            cos[p * half + i] = cosf(a);
            sin[p * half + i] = sinf(a);
        }
    }
    return EL_OK;
}

static el_status cpu_rope(const el_exec *x, float *v, size_t ld, size_t n, size_t heads,
                          size_t head_dim, const float *cos, const float *sin, size_t pos0,
                          bool interleaved) {
    const size_t half = head_dim / 2;
    cos += pos0 * half;
    sin += pos0 * half;
    for (size_t t = 0; t < n; t++) {
        if (x->numerics & EL_EXEC_GGML)
            el_cpu_rope_ggml(v + t * ld, heads, head_dim, cos + t * half, sin + t * half,
                             interleaved);
        else
            el_cpu_rope(v + t * ld, heads, head_dim, cos + t * half, sin + t * half,
                        interleaved);
    }
    return EL_OK;
}

static el_status cpu_attention(const el_exec *x, float *out, const float *q, const void *k,
                               const void *v, el_dtype kv_dt, float *att, size_t att_stride,
                               size_t n, size_t pos0, size_t heads, size_t kv_heads,
                               size_t head_dim, size_t window, float scale) {
    if (x->numerics & EL_EXEC_GGML)
        el_cpu_attention_ggml(x->pool, out, q, k, v, kv_dt, att, att_stride, n, pos0, heads,
                              kv_heads, head_dim, window, scale,
                              (x->numerics & EL_EXEC_GGML_PRESCALE) != 0, 0);
    else
        el_cpu_attention_kv(x->pool, out, q, k, v, kv_dt, att, att_stride, n, pos0, heads,
                            kv_heads, head_dim, window, scale);
    return EL_OK;
}

static el_status cpu_kv_store(const el_exec *x, void *kd, void *vd, el_dtype kv_dt,
                              size_t width, size_t pos0, const float *k, const float *v,
                              size_t rows) {
    const size_t n = rows * width, off = pos0 * width * el_dtype_size(kv_dt);
    kd = (uint8_t *)kd + off;
    vd = (uint8_t *)vd + off;
    if (kv_dt != EL_DT_F16) {
        cpu_memcpy(x, kd, k, n * sizeof *k);
        return cpu_memcpy(x, vd, v, n * sizeof *v);
    }
    el_cpu_f32_to_f16(x->pool, kd, k, n);
    el_cpu_f32_to_f16(x->pool, vd, v, n);
    return EL_OK;
}

static el_status cpu_attention_bidir(const el_exec *x, float *out, const float *q,
                                     const float *k, const float *v, const el_seqs *s,
                                     size_t heads, size_t head_dim, float *att,
                                     size_t att_stride) {
    el_cpu_attention_bidir(x->pool, out, q, k, v, heads * head_dim, s->start, s->len, s->n_seq,
                           heads, head_dim, att, att_stride);
    return EL_OK;
}

static el_status cpu_act(const el_exec *x, el_act_kind k, float *v, const float *up, size_t n) {
    if ((x->numerics & EL_EXEC_GGML) && (k == EL_ACT_SWIGLU || k == EL_ACT_GEGLU)) {
        if (k == EL_ACT_SWIGLU) el_cpu_swiglu_ggml(v, up, n, 0);
        else el_cpu_geglu_ggml(v, up, n);
        return EL_OK;
    }
    switch (k) {
    case EL_ACT_SWIGLU: el_cpu_swiglu(x->pool, v, up, n); break;
    case EL_ACT_GEGLU:
        el_cpu_gelu_par(x->pool, v, n, true);
        for (size_t i = 0; i < n; i++) v[i] *= up[i];
        break;
    case EL_ACT_GELU_TANH: el_cpu_gelu_par(x->pool, v, n, true); break;
    case EL_ACT_GELU_ERF: el_cpu_gelu_par(x->pool, v, n, false); break;
    case EL_ACT_TANH:
        for (size_t i = 0; i < n; i++) v[i] = tanhf(v[i]);
        break;
    }
    return EL_OK;
}

static el_status cpu_scale(const el_exec *x, float *v, float s, size_t n) {
    (void)x;
    for (size_t i = 0; i < n; i++) v[i] *= s;
    return EL_OK;
}

static el_status cpu_add(const el_exec *x, float *y, const float *v, size_t n) {
    el_cpu_add(x->pool, y, v, n);
    return EL_OK;
}

static el_status cpu_copy(const el_exec *x, float *y, const float *v, size_t n) {
    return cpu_memcpy(x, y, v, n * sizeof *y);
}

/* SwiGLU over a thread's rows of the decode pass (element-wise: cpu_act's bits). */
static void cpu_swiglu_rows(void *ctx, float *gate, const float *up, size_t n) {
    (void)cpu_act(ctx, EL_ACT_SWIGLU, gate, up, n);
}

/* The float-weight decode's activation over a thread's rows: cpu_act's element-wise
 * kernels, serial (GELU's ranges start at multiples of 16, as el_cpu_gelu_par's do). */
typedef struct cpu_act_rows_ctx {
    const el_exec *x;
    el_epilogue e;
} cpu_act_rows_ctx;

static void cpu_act_rows(void *ctx, float *v, const float *up, size_t n) {
    const cpu_act_rows_ctx *a = ctx;
    const bool ggml = (a->x->numerics & EL_EXEC_GGML) != 0;
    switch (a->e) {
    case EL_EPI_SWIGLU: (void)cpu_act(a->x, EL_ACT_SWIGLU, v, up, n); break;
    case EL_EPI_GEGLU:
        if (ggml) {
            el_cpu_geglu_ggml(v, up, n);
            break;
        }
        el_cpu_gelu_tanh(a->x->pool, v, n);
        for (size_t i = 0; i < n; i++) v[i] *= up[i];
        break;
    case EL_EPI_GELU_TANH: el_cpu_gelu_tanh(a->x->pool, v, n); break;
    case EL_EPI_GELU_ERF: el_cpu_gelu_erf(a->x->pool, v, n); break;
    default: break;
    }
}

/* One token (decode) through the parts in one pool run (el_cpu_matvec_f for float weights,
 * el_cpu_matvec_q for block types): the residual add and the activation in its epilogue
 * (block types: only SwiGLU, the others after it as el_ops_linear runs them); *done false
 * (nothing done) where it does not take the parts. */
static el_status cpu_linear_decode(const el_exec *x, const el_linear_part *parts,
                                   size_t n_parts, const float *in, size_t in_dim,
                                   el_epilogue e, bool *done) {
    el_qmv_part q[EL_QMV_MAX_PARTS];
    *done = false;
    if (n_parts > EL_QMV_MAX_PARTS) return EL_OK;
    const bool rowwise = cpu_rowwise(x, parts[0].w.dt);
    for (size_t i = 0; i < n_parts; i++) {
        const el_linear_part *p = &parts[i];
        if (cpu_rowwise(x, p->w.dt) != rowwise) return EL_OK;
        q[i] = (el_qmv_part){p->y, p->w.p, p->w.dt, p->out, p->b.p, p->b.dt, p->w.x8};
    }
    const bool gated = e == EL_EPI_SWIGLU || e == EL_EPI_GEGLU;
    const el_qmv_epi qe = gated                    ? EL_QMV_GATED
                          : e == EL_EPI_ACCUMULATE ? EL_QMV_ADD
                                                   : EL_QMV_STORE;
    if (!el_dtype_is_block(parts[0].w.dt)) {
        cpu_act_rows_ctx a = {x, e};
        const bool act = gated || e == EL_EPI_GELU_TANH || e == EL_EPI_GELU_ERF;
        *done = el_cpu_matvec_f(x->pool, in, in_dim, q, n_parts, qe, act ? cpu_act_rows : NULL,
                                &a);
        return EL_OK;
    }
    /* cpu_act's GELUs run their own pool jobs: after the pass */
    el_qmv_act_fn act = e == EL_EPI_SWIGLU ? cpu_swiglu_rows : NULL;
    if (!el_cpu_matvec_q(x->pool, in, in_dim, q, n_parts, qe, act, (void *)x, rowwise))
        return EL_OK;
    *done = true;
    if (e == EL_EPI_GEGLU) return cpu_act(x, EL_ACT_GEGLU, parts[0].y, parts[1].y, parts[0].out);
    if (e == EL_EPI_GELU_TANH || e == EL_EPI_GELU_ERF)
        for (size_t i = 0; i < n_parts; i++)
            EL_TRY(cpu_act(x, e == EL_EPI_GELU_TANH ? EL_ACT_GELU_TANH : EL_ACT_GELU_ERF,
                           parts[i].y, NULL, parts[i].out));
    return EL_OK;
}

const el_ops el_ops_cpu = {
    .name = "cpu",
    .host_visible = true,
    .upload = cpu_memcpy,
    .download = cpu_memcpy,
    .embed = cpu_embed,
    .embed_add = cpu_embed_add,
    .norm = cpu_norm,
    .linear = cpu_linear,
    .rope_table = cpu_rope_table,
    .rope = cpu_rope,
    .attention = cpu_attention,
    .kv_store = cpu_kv_store,
    .attention_bidir = cpu_attention_bidir,
    .act = cpu_act,
    .scale = cpu_scale,
    .add = cpu_add,
    .copy = cpu_copy,
};

el_weight el_weight_rows(el_weight w, size_t r0, size_t cols) {
    uint64_t row = 0;
    if (w.p && el_dtype_row_bytes(w.dt, cols, &row)) w.p = (const uint8_t *)w.p + r0 * row;
    return w;
}

el_status el_ops_linear(const el_ops *o, const el_exec *x, const el_linear_part *parts,
                        size_t n_parts, const float *in, size_t n, size_t in_dim, el_epilogue e,
                        const el_linear_norm *norm, float *tmp) {
    if (o->linear_fused) return o->linear_fused(x, parts, n_parts, in, n, in_dim, e, norm);
    if (norm) {
        EL_TRY(o->norm(x, norm->kind, norm->out, in, norm->w, norm->b, n, in_dim, norm->eps));
        in = norm->out;
    }
    if (o == &el_ops_cpu && n == 1) {
        bool done = false;
        EL_TRY(cpu_linear_decode(x, parts, n_parts, in, in_dim, e, &done));
        if (done) return EL_OK;
    }
    for (size_t i = 0; i < n_parts; i++) {
        const el_linear_part *p = &parts[i];
        if (e == EL_EPI_ACCUMULATE) {
            EL_TRY(o->linear(x, tmp, p->out, in, p->w, p->b, n, in_dim, p->out));
            EL_TRY(o->add(x, p->y, tmp, n * p->out));
            continue;
        }
        EL_TRY(o->linear(x, p->y, p->ldy, in, p->w, p->b, n, in_dim, p->out));
        if (e == EL_EPI_GELU_TANH || e == EL_EPI_GELU_ERF)
            EL_TRY(o->act(x, e == EL_EPI_GELU_TANH ? EL_ACT_GELU_TANH : EL_ACT_GELU_ERF, p->y,
                          NULL, n * p->out));
    }
    if (e == EL_EPI_SWIGLU || e == EL_EPI_GEGLU) /* gate, up */
        return o->act(x, e == EL_EPI_SWIGLU ? EL_ACT_SWIGLU : EL_ACT_GEGLU, parts[0].y,
                      parts[1].y, n * parts[0].out);
    return EL_OK;
}
