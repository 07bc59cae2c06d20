/* ops_table.c - the CUDA backend's op table (kernels/ops.h) over kernels/cuda, queued on the
 * exec's stream (CUDA builds only). */
#include "kernels/ops.h"

#ifdef EL_HAVE_CUDA
#include "kernels/cuda/cuda_ops.h"

#define ST(x) ((el_cuda_stream)(x)->stream)

static el_status cu_memcpy(const el_exec *x, void *dst, const void *src, size_t bytes) {
    return el_cuda_copy(dst, src, bytes, ST(x));
}

/* The K types' rows are decoded by whole runs of 32 (kernels/cuda/matmul_k.cu). */
static bool k_type(el_dtype dt) {
    return dt == EL_DT_Q4_K || dt == EL_DT_Q5_K || dt == EL_DT_Q6_K;
}

static el_status cu_embed(const el_exec *x, float *out, el_weight t, size_t dim,
                          const int32_t *ids, size_t n) {
    if (k_type(t.dt)) return el_cuda_embed_k(out, t.p, t.dt, dim, ids, 0, n, false, ST(x));
    return el_cuda_embed(out, t.p, t.dt, dim, ids, n, ST(x));
}

static el_status cu_embed_add(const el_exec *x, float *y, el_weight t, size_t dim,
                              const int32_t *idx, size_t row0, size_t n) {
    if (!idx && x->dpos && k_type(t.dt)) /* matmul_k.cu takes its rows by value */
        return el_errorf(EL_E_UNSUPPORTED, "cuda: %s position rows from a device word (a "
                         "CUDA graph)", el_dtype_name(t.dt));
    if (k_type(t.dt)) return el_cuda_embed_k(y, t.p, t.dt, dim, idx, row0, n, true, ST(x));
    if (idx) return el_cuda_embed_add(y, t.p, t.dt, dim, idx, n, ST(x));
    return el_cuda_add_rows_at(y, t.p, t.dt, dim, row0, x->dpos, n, ST(x));
}

static el_status cu_norm(const el_exec *x, el_norm_kind k, float *out, const float *in,
                         el_weight w, el_weight b, size_t n, size_t dim, float eps) {
    if (k == EL_NORM_RMS || k == EL_NORM_RMS_1P)
        return el_cuda_rmsnorm_off(out, in, w.p, w.dt, n, dim, eps,
                                   k == EL_NORM_RMS_1P ? 1.0f : 0.0f, ST(x));
    if (!b.p || b.dt == w.dt)
        return el_cuda_layernorm(out, in, w.p, b.p, w.dt, n, dim, eps, ST(x));
    EL_TRY(el_cuda_layernorm(out, in, w.p, NULL, w.dt, n, dim, eps, ST(x)));
    return el_cuda_add_bias(out, dim, b.p, b.dt, n, dim, ST(x));
}

static el_status cu_linear(const el_exec *x, float *y, size_t ldy, const float *in,
                           el_weight w, el_weight b, size_t n, size_t in_dim, size_t out_dim) {
    return el_cuda_linear(y, ldy, in, w.p, w.dt, b.p, b.dt, n, in_dim, out_dim, ST(x));
}

static el_status cu_rope_table(const el_exec *x, float *cos, float *sin, size_t ctx,
                               size_t head_dim, el_rope r) {
    return el_cuda_rope_table(cos, sin, ctx, head_dim, r, ST(x));
}

static el_status cu_rope(const el_exec *x, float *v, size_t ld, size_t n, size_t heads,
                         size_t head_dim, const float *cos, const float *sin, size_t pos0,
                         bool interleaved) {
    return el_cuda_rope_at(v, ld, heads, NULL, 0, 0, n, head_dim, cos, sin, pos0, x->dpos,
                           interleaved, ST(x));
}

static el_status cu_attention(const el_exec *x, float *out, const float *q, const void *k,
                              const void *v, el_dtype kv_dt, float *att, size_t att_stride,
                              size_t n, size_t pos0, size_t heads, size_t kv_heads,
                              size_t head_dim, size_t window, float scale) {
    /* The CPU's scores scratch [heads, att_stride] holds the chunks' partials (the plan
     * sizes it for both: models/decoder.c). */
    return el_cuda_attention_at(out, q, k, v, kv_dt, n, pos0, x->dpos, x->max_pos, heads,
                                kv_heads, head_dim, window, scale, att, heads * att_stride,
                                ST(x));
}

static el_status cu_kv_store(const el_exec *x, void *kd, void *vd, el_dtype kv_dt,
                             size_t width, size_t pos0, const float *k, const float *v,
                             size_t n) {
    if (x->dpos) return el_cuda_kv_store_at(kd, vd, kv_dt, k, v, n * width, x->dpos, width, ST(x));
    const size_t off = pos0 * width * (kv_dt == EL_DT_F16 ? 2 : sizeof(float));
    return el_cuda_kv_store((uint8_t *)kd + off, (uint8_t *)vd + off, kv_dt, k, v, n * width,
                            ST(x));
}

static el_status cu_attention_bidir(const el_exec *x, float *out, const float *q,
                                    const float *k, const float *v, const el_seqs *s,
                                    size_t heads, size_t head_dim, float *att,
                                    size_t att_stride) {
    (void)att, (void)att_stride;
    return el_cuda_attention_bidir(out, q, k, v, s->rows, s->row_start, s->row_len, s->max_len,
                                   heads, head_dim, ST(x));
}

static el_status cu_act(const el_exec *x, el_act_kind k, float *v, const float *up, size_t n) {
    switch (k) {
    case EL_ACT_SWIGLU: return el_cuda_swiglu(v, up, n, ST(x));
    case EL_ACT_GEGLU:
        EL_TRY(el_cuda_gelu_tanh(v, n, ST(x)));
        return el_cuda_mul(v, up, n, ST(x));
    case EL_ACT_GELU_TANH: return el_cuda_gelu_tanh(v, n, ST(x));
    case EL_ACT_GELU_ERF: return el_cuda_gelu_erf(v, n, ST(x));
    case EL_ACT_TANH: return el_cuda_tanh(v, n, ST(x));
    }
    return el_errorf(EL_E_USAGE, "unknown activation %d", (int)k);
}

static el_status cu_scale(const el_exec *x, float *v, float s, size_t n) {
    return el_cuda_scale(v, s, n, ST(x));
}

static el_status cu_add(const el_exec *x, float *y, const float *v, size_t n) {
    return el_cuda_add(y, v, n, ST(x));
}

static el_status cu_copy(const el_exec *x, float *y, const float *v, size_t n) {
    return cu_memcpy(x, y, v, n * sizeof *y);
}

/* The norm of a fused linear of parts: into *pn for the matmul's prologue where every part's
 * kernels take it (norm weights of f32/f16/bf16, a LayerNorm bias of the same dtype), else run
 * first into norm->out, which *in then points at. */
static el_status cu_prenorm(const el_exec *x, const el_linear_part *parts, size_t n_parts,
                            const float **in, size_t n, size_t in_dim,
                            const el_linear_norm *norm, el_cuda_prenorm *pn) {
    *pn = (el_cuda_prenorm){EL_CUDA_NORM_NONE, NULL, NULL, EL_DT_F32, 0.0f, 0.0f};
    bool fuses = norm && (!norm->b.p || norm->b.dt == norm->w.dt);
    for (size_t i = 0; i < n_parts; i++)
        fuses = fuses && el_cuda_linear_norm_fuses(parts[i].w.dt, norm->w.dt);
    if (norm && !fuses) {
        EL_TRY(cu_norm(x, norm->kind, norm->out, *in, norm->w, norm->b, n, in_dim, norm->eps));
        *in = norm->out;
    } else if (norm) {
        const bool layer = norm->kind == EL_NORM_LAYER;
        *pn = (el_cuda_prenorm){layer ? EL_CUDA_NORM_LAYER : EL_CUDA_NORM_RMS, norm->w.p,
                                layer ? norm->b.p : NULL, norm->w.dt, norm->eps,
                                norm->kind == EL_NORM_RMS_1P ? 1.0f : 0.0f};
    }
    return EL_OK;
}

static el_cuda_part cu_part(const el_linear_part *p) {
    return (el_cuda_part){p->y, p->ldy, p->w.p, p->b.p, p->b.dt, p->out};
}

/* One launch per run of consecutive parts whose weights share a dtype (q|k of Q5_0 and a v
 * of Q8_0: two), the norm as cu_prenorm puts it (in each launch's prologue). */
static el_status cu_linear_fused(const el_exec *x, const el_linear_part *parts, size_t n_parts,
                                 const float *in, size_t n, size_t in_dim, el_epilogue e,
                                 const el_linear_norm *norm) {
    _Static_assert((int)EL_EPI_GELU_ERF == (int)EL_CUDA_EPI_GELU_ERF &&
                       (int)EL_EPI_ACCUMULATE == (int)EL_CUDA_EPI_ACCUMULATE &&
                       (int)EL_EPI_SWIGLU == (int)EL_CUDA_EPI_SWIGLU &&
                       (int)EL_EPI_GEGLU == (int)EL_CUDA_EPI_GEGLU,
                   "el_epilogue and el_cuda_epi agree");
    const bool glu = e == EL_EPI_SWIGLU || e == EL_EPI_GEGLU;
    if (glu && (n_parts != 2 || parts[1].w.dt != parts[0].w.dt || parts[1].out != parts[0].out)) {
        /* gate and up of different dtypes or rows: the linears, then the activation */
        EL_TRY(cu_linear_fused(x, parts, n_parts, in, n, in_dim, EL_EPI_STORE, norm));
        return cu_act(x, e == EL_EPI_SWIGLU ? EL_ACT_SWIGLU : EL_ACT_GEGLU, parts[0].y,
                      parts[1].y, n * parts[0].out);
    }
    if (n_parts > EL_CUDA_MAX_PARTS)
        return el_errorf(EL_E_USAGE, "cuda linear: %zu parts (at most %d)", n_parts,
                         EL_CUDA_MAX_PARTS);
    el_cuda_prenorm pn;
    EL_TRY(cu_prenorm(x, parts, n_parts, &in, n, in_dim, norm, &pn));
    el_cuda_part cp[EL_CUDA_MAX_PARTS];
    for (size_t i = 0; i < n_parts; i++) cp[i] = cu_part(&parts[i]);
    for (size_t i = 0, j; i < n_parts; i = j) {
        for (j = i + 1; j < n_parts && parts[j].w.dt == parts[i].w.dt; j++) {}
        EL_TRY(el_cuda_linear_parts(&cp[i], j - i, in, parts[i].w.dt, n, in_dim,
                                    (el_cuda_epi)e, &pn, ST(x)));
    }
    return EL_OK;
}

static el_status cu_rope_qk(const el_exec *x, float *q, size_t ldq, size_t heads, float *k,
                           size_t ldk, size_t kv_heads, size_t n, size_t head_dim,
                           const float *cos, const float *sin, size_t pos0, bool interleaved) {
    return el_cuda_rope_at(q, ldq, heads, k, ldk, kv_heads, n, head_dim, cos, sin, pos0, x->dpos,
                           interleaved, ST(x));
}

/* The q|k|v launch with RoPE and the cache stores in its epilogue (el_cuda_linear_qkv):
 * weights of one dtype and the shapes it takes, else not fused. */
static el_status cu_linear_qkv(const el_exec *x, const el_linear_part *parts, const float *in,
                               size_t n, size_t in_dim, const el_linear_norm *norm,
                               const el_qkv_tail *t, bool *fused) {
    const el_dtype wt = parts[0].w.dt;
    const el_cuda_part cp[3] = {cu_part(&parts[0]), cu_part(&parts[1]), cu_part(&parts[2])};
    const el_cuda_qkv r = {t->cos, t->sin, t->head_dim, t->pos0, x->dpos, t->interleaved,
                           t->kc, t->vc, t->kv_dt};
    *fused = parts[1].w.dt == wt && parts[2].w.dt == wt && el_cuda_linear_qkv_fuses(cp, wt, &r);
    if (!*fused) return EL_OK;
    el_cuda_prenorm pn;
    EL_TRY(cu_prenorm(x, parts, 3, &in, n, in_dim, norm, &pn));
    return el_cuda_linear_qkv(cp, in, wt, n, in_dim, &pn, &r, ST(x));
}

/* Attention then the output projection in one phased launch where the weights take it. */
static el_status cu_attention_linear(const el_exec *x, float *out, const float *q,
                                     const void *k, const void *v, el_dtype kv_dt, float *att,
                                     size_t att_stride, size_t n, size_t pos0, size_t heads,
                                     size_t kv_heads, size_t head_dim, size_t window,
                                     float scale, const el_linear_part *o, bool *fused) {
    const el_cuda_attn a = {out, q, k, v, kv_dt, n, pos0, x->dpos, x->max_pos, heads,
                            kv_heads, head_dim, window, scale, att, heads * att_stride};
    const el_cuda_part cp = cu_part(o);
    return el_cuda_attention_linear(&a, &cp, o->w.dt, x->phase, ST(x), fused);
}

/* The FFN's two linears in one phased launch: parts of one dtype, the norm in the first's
 * prologue (as cu_linear_fused would run them), a gated epilogue of gate and up alike. */
static el_status cu_linear_chain(const el_exec *x, const el_linear_part *a, size_t na,
                                 const float *in, size_t n, size_t in_dim, el_epilogue e,
                                 const el_linear_norm *norm, const el_linear_part *b,
                                 bool *fused) {
    *fused = false;
    const bool glu = e == EL_EPI_SWIGLU || e == EL_EPI_GEGLU;
    if (na > EL_CUDA_MAX_PARTS || !norm || (norm->b.p && norm->b.dt != norm->w.dt) ||
        (glu && (na != 2 || a[1].out != a[0].out)))
        return EL_OK;
    el_cuda_part cp[EL_CUDA_MAX_PARTS];
    for (size_t i = 0; i < na; i++) {
        if (a[i].w.dt != a[0].w.dt || !el_cuda_linear_norm_fuses(a[i].w.dt, norm->w.dt))
            return EL_OK;
        cp[i] = cu_part(&a[i]);
    }
    el_cuda_prenorm pn;
    EL_TRY(cu_prenorm(x, a, na, &in, n, in_dim, norm, &pn));
    const el_cuda_part cb = cu_part(b);
    return el_cuda_linear_chain(cp, na, (el_cuda_epi)e, &pn, in, a[0].w.dt, n, in_dim, &cb,
                                b->w.dt, x->phase, ST(x), fused);
}

static el_status cu_argmax(const el_exec *x, const float *v, size_t n, int32_t *idx) {
    return el_cuda_argmax(v, n, idx, ST(x));
}

const el_ops el_ops_cuda = {
    .name = "cuda",
    .host_visible = false,
    .upload = cu_memcpy,
    .download = cu_memcpy,
    .embed = cu_embed,
    .embed_add = cu_embed_add,
    .norm = cu_norm,
    .linear = cu_linear,
    .rope_table = cu_rope_table,
    .rope = cu_rope,
    .attention = cu_attention,
    .kv_store = cu_kv_store,
    .attention_bidir = cu_attention_bidir,
    .act = cu_act,
    .scale = cu_scale,
    .add = cu_add,
    .copy = cu_copy,
    .linear_fused = cu_linear_fused,
    .rope_qk = cu_rope_qk,
    .linear_qkv = cu_linear_qkv,
    .argmax = cu_argmax,
    .attention_linear = cu_attention_linear,
    .linear_chain = cu_linear_chain,
};
#endif
