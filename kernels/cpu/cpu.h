/* cpu.h - the CPU backend's building blocks (internal): a fixed thread pool and the kernels
 * the transformer forward passes are written against. Matrices are row-major; weights are
 * [out, in] like torch.nn.Linear and llama2.c, so y = W x reads each weight row once.
 *
 * Kernels allocate nothing and never fail: shapes are checked once, when a session binds
 * its weights. Each kernel has an AVX2/FMA/F16C path chosen at run time (x86-64), a NEON
 * path compiled for aarch64 (Advanced SIMD is part of ARMv8-A, so every aarch64 CPU has it)
 * and a portable C path; the pool decides which (tests force the portable one to compare). */
#ifndef EL_KERNELS_CPU_H
#define EL_KERNELS_CPU_H

#include "edgeload.h"
#include "platform/platform.h"

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ---- instruction set ----------------------------------------------------------------- */

typedef enum el_isa {
    EL_ISA_AUTO = 0,     /* the best this CPU supports */
    EL_ISA_PORTABLE = 1, /* plain C */
    EL_ISA_AVX2 = 2,     /* AVX2 + FMA + F16C (x86-64) */
    EL_ISA_NEON = 3,     /* Advanced SIMD with FP16 conversion (aarch64 builds) */
} el_isa;

/* The best ISA of this CPU for this build (cached after the first call): AVX2 on x86-64
 * CPUs that have it, NEON in aarch64 builds, else portable. */
el_isa el_cpu_isa_best(void);
const char *el_isa_name(el_isa isa);

/* ---- thread pool ---------------------------------------------------------------------- */

#define EL_POOL_MAX_THREADS 64

/* A job: called once per share ith in [0, nth) (nth = the pool's threads), each share on
 * whichever thread claims it first; it splits the work itself. */
typedef void (*el_pool_fn)(void *ctx, unsigned ith, unsigned nth);

typedef struct el_pool el_pool;

typedef struct el_pool_worker {
    el_pool *pool;
    unsigned ith; /* 1..n_threads-1; the caller is 0 */
    el_thread thread;
} el_pool_worker;

/* Caller-owned storage (sessions put it in the arena's scratch region). Workers spin
 * briefly for the next job, then sleep on a condition variable: no thread is created per
 * token, and an idle pool costs nothing. */
struct el_pool {
    unsigned n_threads;               /* including the calling thread, 1..EL_POOL_MAX_THREADS */
    el_isa isa;                       /* resolved (never EL_ISA_AUTO) */
    pthread_mutex_t mu;               /* guards sleeping and waking */
    pthread_cond_t cv;
    bool sync_ready;                  /* mu and cv initialised */
    /* Hot counters, each on its own cache line. A job is n_threads shares (ith); any thread
     * claims the next unclaimed share, so a preempted worker delays nothing it has not
     * claimed: the caller runs the rest. */
    _Alignas(64) _Atomic unsigned generation; /* bumped once per job */
    _Alignas(64) _Atomic uint64_t claim;      /* generation << 32 | next share to claim */
    _Alignas(64) _Atomic unsigned done;       /* shares of the current job finished */
    _Alignas(64) _Atomic unsigned started;    /* workers that have begun running (init waits) */
    _Atomic bool stop;
    el_pool_fn fn;                    /* the current job */
    void *ctx;
    el_pool_worker workers[EL_POOL_MAX_THREADS];
};

/* Starts n_threads - 1 workers (n_threads 0 = online CPUs, capped at EL_POOL_MAX_THREADS).
 * EL_E_USAGE if n_threads > EL_POOL_MAX_THREADS or isa is not available on this CPU;
 * EL_E_NOMEM if a thread cannot start (the pool is then torn down). */
el_status el_pool_init(el_pool *p, unsigned n_threads, el_isa isa);
/* Stops and joins the workers. Accepts NULL and a pool whose init failed. */
void el_pool_deinit(el_pool *p);
/* Runs fn for every share, on the workers and the caller, and returns when all are done. */
void el_pool_run(el_pool *p, el_pool_fn fn, void *ctx);
/* Runs fn on all threads only when work (any unit, e.g. multiply-adds) is at least
 * EL_POOL_MIN_WORK; below it on the calling thread alone: waking workers costs more than
 * a tiny matrix (stories260K's largest is 32K multiply-adds). */
#define EL_POOL_MIN_WORK (256u * 1024u)
void el_pool_run_sized(el_pool *p, uint64_t work, el_pool_fn fn, void *ctx);

/* ---- kernels -------------------------------------------------------------------------- */

/* y[t, :] = W x[t, :] for t < n. W: [out, in] of wt (F32, F16, BF16, or a GGUF block type:
 * Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K with in a multiple of its block; x is then
 * quantized to 8 bits per block, see kernels/cpu/quant.h), x: [n, in] f32, y: [n, out] f32
 * (ldy = row stride of y in floats, >= out). Rows of W are split across the pool's threads;
 * all n rows of x reuse each weight row while it is in cache. */
void el_cpu_matmul(el_pool *p, float *y, size_t ldy, const float *x, const void *w,
                   el_dtype wt, size_t n, size_t in, size_t out);

/* out[t] = x[t] / sqrt(mean(x[t]^2) + eps) * w for n rows of dim (w: dim of wt). out may
 * equal x. */
void el_cpu_rmsnorm(const el_pool *p, float *out, const float *x, const void *w, el_dtype wt,
                    size_t n, size_t dim, float eps);

/* el_cpu_rmsnorm scaling by (w_offset + w) instead of w (Gemma: 1 + w). */
void el_cpu_rmsnorm_off(const el_pool *p, float *out, const float *x, const void *w,
                        el_dtype wt, size_t n, size_t dim, float eps, float w_offset);

/* out[t] = (x[t] - mean) / sqrt(var + eps) * w + b for n rows of dim (population
 * variance, as torch.nn.LayerNorm). w, b: dim entries of wt; b may be NULL. out may
 * equal x. */
void el_cpu_layernorm(const el_pool *p, float *out, const float *x, const void *w,
                      const void *b, el_dtype wt, size_t n, size_t dim, float eps);

/* Rotates n_heads heads of head_dim (even) in place for one position. cos/sin: head_dim/2
 * entries, cos[i] = cos(pos * theta^(-2i/head_dim)). interleaved: pairs (2i, 2i+1)
 * (llama2.c); else rotate-half pairs (i, i + head_dim/2) (Hugging Face). */
void el_cpu_rope(float *x, size_t n_heads, size_t head_dim, const float *cos, const float *sin,
                 bool interleaved);

/* llama.cpp's arithmetic for the same ops (--numerics ggml; ggml-cpu ops.cpp):
 * el_cpu_rmsnorm_ggml: ggml_compute_forward_rms_norm_f32: the squares rounded to float and
 * added in double in order, the mean rounded to float, then (x * scale) * (w_offset + w).
 * el_cpu_rope_ggml: rotate_pairs as llama.cpp's build compiles it (GCC contracts to FMA;
 * measured on its output): y0 = fma(x0, c, -(x1 s)), y1 = fma(x0, s, x1 c), x0/x1 the pair
 * (2i, 2i+1) when interleaved (GGML_ROPE_TYPE_NORMAL), else (i, i + half) (NEOX).
 * el_cpu_rope_table_ggml: ggml_rope_cache_init's angles for positions 0..ctx-1: theta
 * starts at the position and is multiplied by powf(base, -2 / head_dim) once per pair;
 * the angle is freq_scale * theta (1 / factor for linear scaling); cos/sin: [ctx, half]. */
void el_cpu_rmsnorm_ggml(float *out, const float *x, const void *w, el_dtype wt, size_t n,
                         size_t dim, float eps, float w_offset);
void el_cpu_rope_ggml(float *x, size_t n_heads, size_t head_dim, const float *cos,
                      const float *sin, bool interleaved);
void el_cpu_rope_table_ggml(float *cos, float *sin, size_t ctx, size_t head_dim, float base,
                            float freq_scale);
/* The lanes of llama.cpp's vector sums on this CPU, as its native x86 build has them: 16
 * with AVX-512 F and DQ, else 8 (kernels/cpu/ggml_ops.c); el_cpu_ggml_width_force (tests)
 * 8 or 16 models that build on any CPU instead (0, the default: this CPU's). */
unsigned el_cpu_ggml_width(void);
extern unsigned el_cpu_ggml_width_force;
/* x = silu(x) * up over n entries, as ggml_vec_swiglu_f32 computes it: ggml_v_expf of the
 * AVX2 (width 8) or AVX-512 (16) build on whole vectors (other widths: this CPU's), the
 * last n % width entries with libm expf (ggml does that per row: rows of a multiple of 16
 * entries agree). x = gelu(x) * up as ggml_vec_geglu_f32 with GGML_GELU_FP16: 0 below -10,
 * x above 10, else the f16 table's gelu of x rounded to f16. */
void el_cpu_swiglu_ggml(float *x, const float *up, size_t n, unsigned width);
void el_cpu_geglu_ggml(float *x, const float *up, size_t n);

/* Vector primitives on the given instruction set (for kernels in other files): the dot
 * product of n floats, and y += a x. */
float el_cpu_dot(el_isa isa, const float *a, const float *b, size_t n);
void el_cpu_axpy(el_isa isa, float *y, float a, const float *x, size_t n);

/* In place: x = softmax(x) over n > 0 entries (max-subtracted). */
void el_cpu_softmax(const el_pool *p, float *x, size_t n);

/* In place: gate = silu(gate) * up, n entries. */
void el_cpu_swiglu(const el_pool *p, float *gate, const float *up, size_t n);

/* In place, n entries: x = 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3))) (GPT-2's
 * "gelu_new", torch's gelu(approximate="tanh")). */
void el_cpu_gelu_tanh(const el_pool *p, float *x, size_t n);
/* In place, n entries: x = 0.5 x (1 + erf(x / sqrt(2))) (BERT's exact "gelu"). */
void el_cpu_gelu_erf(const el_pool *p, float *x, size_t n);

/* y[t, :] += b for n rows of out entries (row stride ldy floats); b: out entries of bt. */
void el_cpu_add_bias(float *y, size_t ldy, const void *b, el_dtype bt, size_t n, size_t out);

/* y += x, n entries. */
void el_cpu_add(const el_pool *p, float *y, const float *x, size_t n);

/* Row id of a [rows, dim] table of dt, as f32 into out (dim floats); block types are
 * dequantized (dim a multiple of the block). */
void el_cpu_embed(float *out, const void *table, el_dtype dt, size_t dim, size_t id);

/* Index of the largest of n > 0 entries (the first on ties; NaN never wins). */
size_t el_cpu_argmax(const float *x, size_t n);

/* Causal grouped-query attention for n query rows at positions pos0 .. pos0+n-1 over a
 * KV cache that already holds positions 0 .. pos0+n-1.
 *   q:   [n, n_heads * head_dim]        out: [n, n_heads * head_dim]
 *   k,v: [>= pos0+n, n_kv_heads * head_dim] (this layer's cache rows)
 *   att: n_heads * att_stride floats of scratch (att_stride >= pos0 + n)
 * Query head h reads KV head h / (n_heads / n_kv_heads). Heads are split across threads. */
void el_cpu_attention(el_pool *p, float *out, const float *q, const float *k, const float *v,
                      float *att, size_t att_stride, size_t n, size_t pos0, size_t n_heads,
                      size_t n_kv_heads, size_t head_dim);
/* The same with a sliding window (the query at position p attends to keys
 * max(0, p + 1 - window) .. p; 0 = all) and scores scaled by scale (el_cpu_attention:
 * 1 / sqrt(head_dim)). */
void el_cpu_attention_ex(el_pool *p, float *out, const float *q, const float *k,
                         const float *v, float *att, size_t att_stride, size_t n, size_t pos0,
                         size_t n_heads, size_t n_kv_heads, size_t head_dim, size_t window,
                         float scale);
/* The same over a cache of kv_dt (EL_DT_F32 or EL_DT_F16, --kv-dtype): k and v hold
 * [>= pos0 + n, n_kv_heads * head_dim] elements of that type; f16 elements are widened
 * exactly as they are read and everything else is f32 (an f32 cache gives
 * el_cpu_attention_ex's results, bit for bit). */
void el_cpu_attention_kv(el_pool *p, float *out, const float *q, const void *k, const void *v,
                         el_dtype kv_dt, float *att, size_t att_stride, size_t n, size_t pos0,
                         size_t n_heads, size_t n_kv_heads, size_t head_dim, size_t window,
                         float scale);
/* The same rounded as llama.cpp's CPU flash attention rounds it (kernels/cpu/attn_ggml.c,
 * --numerics ggml): an f16 cache's query rounded to f16, ggml's dot-product order, an
 * online softmax in position order with libm expf, values accumulated in f16 (an f32 cache:
 * in f32). q_prescale: the query is multiplied by scale before rounding and the scores are
 * not scaled (llama.cpp's Gemma 3 and Phi-3 graphs). width: the lanes of ggml's sums, 8
 * (its AVX2 build) or 16 (AVX-512); anything else = the build for this CPU (16 where it has
 * AVX-512F). att is not used (head_dim > 512 runs el_cpu_attention_kv, which uses it).
 * Bit-identical across ISAs and thread counts. */
void el_cpu_attention_ggml(el_pool *p, float *out, const float *q, const void *k,
                           const void *v, el_dtype kv_dt, float *att, size_t att_stride,
                           size_t n, size_t pos0, size_t n_heads, size_t n_kv_heads,
                           size_t head_dim, size_t window, float scale, bool q_prescale,
                           unsigned width);
/* dst[i] = src[i] as IEEE half, rounded to nearest even (el_fp32_to_fp16, F16C's
 * _mm256_cvtps_ph and NEON's FCVTN give the same bits), n entries. */
void el_cpu_f32_to_f16(const el_pool *p, uint16_t *dst, const float *src, size_t n);

/* ---- encoder kernels (kernels/cpu/encoder.c) ------------------------------------------ */

/* Bidirectional multi-head attention over a batch of sequences (BERT). Sequence b occupies
 * rows starts[b] .. starts[b] + lengths[b] - 1 (lengths >= 1) of q, k, v and out, each row
 * n_heads * head_dim floats at a row stride of ld floats. Every query row attends to every
 * row of its own sequence and to nothing else: softmax(q k^T / sqrt(head_dim)) v per head.
 * Rows that belong to no sequence (padding of a [batch, seq] layout) are neither read nor
 * written: this is the padding mask, and packed sequences (starts[b+1] = starts[b] +
 * lengths[b]) need none. out may equal q. att: batch * n_heads * att_stride floats of
 * scratch, att_stride >= the longest length. (sequence, head) pairs are split across the
 * pool's threads by cost. */
void el_cpu_attention_bidir(el_pool *p, float *out, const float *q, const float *k,
                            const float *v, size_t ld, const uint32_t *starts,
                            const uint32_t *lengths, size_t batch, size_t n_heads,
                            size_t head_dim, float *att, size_t att_stride);

/* In place, n entries, split across the pool's threads: the exact GELU
 * 0.5 x (1 + erf(x / sqrt(2))), or with tanh_approx GELU's tanh form (as el_cpu_gelu_erf and
 * el_cpu_gelu_tanh). */
void el_cpu_gelu_par(el_pool *p, float *x, size_t n, bool tanh_approx);

#endif /* EL_KERNELS_CPU_H */
