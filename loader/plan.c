/* plan.c - the memory plan: every region's bytes from headers, config and runtime
 * parameters, computed before anything is reserved or read; and the "does not fit"
 * message that says what would. */
#include "kernels/cpu/quant.h"
#include "loader/formats/gguf.h"
#include "loader/image.h"
#include "loader/load_impl.h"

#include <stdarg.h>

#include <stdio.h>
#include <string.h>

#define EL_CHUNK_DEFAULT (4u * 1024u * 1024u)
#define EL_PAGE 4096u

bool el_plan_converts(el_dtype from, el_dtype target) {
    if (target == EL_DT_NONE || from == target) return false;
    bool float_from = from == EL_DT_F32 || from == EL_DT_F16 || from == EL_DT_BF16;
    bool float_to = target == EL_DT_F32 || target == EL_DT_F16 || target == EL_DT_BF16;
    return float_from && float_to;
}

el_dtype el_plan_loaded_dtype(el_dtype from, el_dtype target) {
    return el_plan_converts(from, target) ? target : from;
}

el_dtype el_plan_tensor_dtype(const el_tensor *t, el_dtype target) {
    if (!el_dtype_is_block(target)) return el_plan_loaded_dtype(t->dtype, target);
    const bool float_from = t->dtype == EL_DT_F32 || t->dtype == EL_DT_F16 || t->dtype == EL_DT_BF16;
    if (float_from && t->ndim == 2 && !t->transpose2d && t->shape[1] > 0 &&
        t->shape[1] % el_dtype_block(target) == 0)
        return target;
    return t->dtype;
}

bool el_plan_staged(const el_tensor *t, el_dtype target) {
    return t->transpose2d || el_plan_tensor_dtype(t, target) != t->dtype;
}

el_status el_plan_tensor_bytes(const el_tensor *t, el_dtype target, uint64_t *out) {
    return el_dtype_tensor_bytes(el_plan_tensor_dtype(t, target), t->shape, t->ndim, t->name,
                                 out);
}

uint64_t el_tensor_loaded_bytes(const el_tensor *t) {
    uint64_t bytes = 0;
    if (el_dtype_tensor_bytes(t->loaded_dtype, t->shape, t->ndim, t->name, &bytes) != EL_OK)
        return 0;
    return bytes;
}

static el_status round_page(uint64_t v, uint64_t *out) {
    if (!el_align_up_u64(v, EL_PAGE, out))
        return el_errorf(EL_E_NOFIT, "plan: region of %llu bytes overflows",
                         (unsigned long long)v);
    return EL_OK;
}

el_status el_plan_make(const el_model *m, const el_plan_params *params, el_plan *out) {
    el_plan p;
    memset(&p, 0, sizeof p);
    el_plan_params in = {0, 0, EL_DT_NONE, 0, EL_MEMORY_HOST, EL_DT_NONE};
    if (params) in = *params;
    /* The KV cache: f16 by default (every backend's attention reads it); 0 is F32 (see
     * el_plan_params.kv_dtype). */
    if (in.kv_dtype == EL_DT_NONE) in.kv_dtype = EL_DT_F16;
    if (in.kv_dtype == (el_dtype)0) in.kv_dtype = EL_DT_F32;
    if (in.kv_dtype != EL_DT_F32 && in.kv_dtype != EL_DT_F16)
        return el_errorf(EL_E_USAGE, "--kv-dtype %s: the KV cache holds f32 or f16",
                         el_dtype_name(in.kv_dtype));
    if (in.dtype != EL_DT_NONE && in.dtype != EL_DT_F32 && in.dtype != EL_DT_F16 &&
        in.dtype != EL_DT_BF16 && !el_quant_can_quantize(in.dtype))
        return el_errorf(EL_E_USAGE, "--dtype %s: weights can be loaded as f32, f16 or bf16, or "
                         "quantized to q8_0, q4_0, q4_1, q5_0 or q5_1",
                         el_dtype_name(in.dtype));
    if (in.batch == 0) in.batch = 1;
    if (in.chunk_bytes == 0) in.chunk_bytes = EL_CHUNK_DEFAULT;
    if (in.chunk_bytes < 64u * 1024u || in.chunk_bytes > (1ull << 30) ||
        in.chunk_bytes % EL_PAGE)
        return el_errorf(EL_E_USAGE,
                         "--chunk %llu: must be a multiple of 4 KiB between 64 KiB and 1 GiB",
                         (unsigned long long)in.chunk_bytes);
    if (in.ctx == 0 && m->has_config) in.ctx = m->config.max_positions;
    p.params = in;
    /* GGUF: an architecture or block type edgeload cannot run yet stops here. */
    el_status gs = el_gguf_plan_check(m);
    if (gs != EL_OK) return gs;

    /* Weights: each tensor at a 64-byte boundary, in file order (load.c lays them out
     * the same way). */
    uint64_t w = 0;
    for (size_t i = 0; i < m->tensors.count; i++) {
        const el_tensor *t = &m->tensors.items[i];
        if (t->transpose2d && t->ndim != 2)
            return el_errorf(EL_E_INVALID, "%s: tensor '%s' is marked for transposing at load "
                             "but has %u dimensions, not 2", m->path, t->name, t->ndim);
        uint64_t bytes = 0;
        el_status s = el_plan_tensor_bytes(t, in.dtype, &bytes);
        if (s != EL_OK) return s;
        if (el_dtype_is_block(in.dtype)) {
            if (el_plan_tensor_dtype(t, in.dtype) == in.dtype && t->dtype != in.dtype)
                p.quantized_count++;
            else
                p.kept_count++;
        }
        if (!el_align_up_u64(w, EL_TENSOR_ALIGN, &w) || !el_add_u64(w, bytes, &w))
            return el_errorf(EL_E_INVALID, "%s: weights add up past 2^64 bytes", m->path);
        if (!el_add_u64(p.read_bytes, t->nbytes, &p.read_bytes))
            return el_errorf(EL_E_INVALID, "%s: weights add up past 2^64 bytes", m->path);
    }
    p.tensor_count = m->tensors.count;
    el_status s = round_page(w, &p.region_bytes[EL_REGION_WEIGHTS]);
    if (s != EL_OK) return s;

    /* The chunk actually used: no larger than the largest tensor (rounded to a page), so
     * a small model does not carry megabytes of staging, and at least 64 KiB. */
    uint64_t largest = 0;
    for (size_t i = 0; i < m->tensors.count; i++)
        if (m->tensors.items[i].nbytes > largest) largest = m->tensors.items[i].nbytes;
    uint64_t eff = in.chunk_bytes;
    if (el_align_up_u64(largest, EL_PAGE, &largest) && largest < eff)
        eff = largest < 64u * 1024u ? 64u * 1024u : largest;
    if (eff < in.chunk_bytes) p.params.chunk_bytes = in.chunk_bytes = eff;

    /* Staging: two chunk slots (double buffering) plus one page each for O_DIRECT's
     * aligned windows. */
    if (!el_mul_u64(in.chunk_bytes + EL_PAGE, EL_STAGING_SLOTS,
                    &p.region_bytes[EL_REGION_STAGING]))
        return el_errorf(EL_E_USAGE, "--chunk too large");
    /* An image: staging for its stored chunks and decode workers, its dtype as packed. */
    if (m->image && (s = el_image_plan(m, &p)) != EL_OK) return s;

    /* Device memory: the loader converts each piece into one of EL_STAGING_SLOTS pinned
     * upload buffers (up to twice the piece: f16 -> f32) and copies it to the GPU from
     * there, while the next piece is read. */
    if (in.memory == EL_MEMORY_CUDA_DEVICE) {
        uint64_t up;
        if (!el_mul_u64(in.chunk_bytes, 2 * EL_STAGING_SLOTS, &up) ||
            !el_add_u64(p.region_bytes[EL_REGION_STAGING], up, &p.region_bytes[EL_REGION_STAGING]))
            return el_errorf(EL_E_USAGE, "--chunk too large");
    }

    if (m->family && m->family->plan) {
        uint64_t kv = 0, act = 0, scratch = 0;
        s = m->family->plan(m, &p.params, &kv, &act, &scratch);
        if (s != EL_OK) return s;
        if ((s = round_page(kv, &p.region_bytes[EL_REGION_KV])) != EL_OK) return s;
        if ((s = round_page(act, &p.region_bytes[EL_REGION_ACT])) != EL_OK) return s;
        if ((s = round_page(scratch, &p.region_bytes[EL_REGION_SCRATCH])) != EL_OK) return s;
    }
    /* The tokenizer's tables, as measured at open. */
    if ((s = round_page(m->tokenizer_bytes, &p.region_bytes[EL_REGION_TOKENIZER])) != EL_OK)
        return s;
    for (int r = 0; r < EL_REGION_COUNT; r++)
        if (!el_add_u64(p.total_bytes, p.region_bytes[r], &p.total_bytes))
            return el_errorf(EL_E_NOFIT, "plan: total overflows");
    if ((s = el_plan_input(m, 0, &p)) != EL_OK) return s;
    *out = p;
    return EL_OK;
}

el_status el_plan_input(const el_model *m, uint64_t max_input, el_plan *p) {
    if (!m || !p) return el_errorf(EL_E_USAGE, "el_plan_input: NULL argument");
    if (max_input > EL_INPUT_LIMIT)
        return el_errorf(EL_E_USAGE, "--max-input %llu: at most %llu bytes (1 GiB)",
                         (unsigned long long)max_input, (unsigned long long)EL_INPUT_LIMIT);
    if (max_input == 0) {
        /* ctx <= 2^32, so ctx * 16 cannot overflow. */
        max_input = (uint64_t)p->params.ctx * EL_INPUT_BYTES_PER_TOKEN;
        if (max_input < EL_INPUT_MIN) max_input = EL_INPUT_MIN;
        if (max_input > EL_INPUT_DEFAULT_MAX) max_input = EL_INPUT_DEFAULT_MAX;
    }
    /* Scratch and the total without the previous input buffers (whole pages of them). */
    uint64_t old = p->input_bytes, bytes = 0, line = 0, scratch = 0;
    el_status s = round_page(old, &old);
    if (s != EL_OK) return s;
    p->region_bytes[EL_REGION_SCRATCH] -= old;
    p->total_bytes -= old;
    p->input_bytes = 0;
    p->max_input = max_input;
    if (!m->family || !m->family->plan) return EL_OK; /* nothing runs: no input */
    /* batch texts of max_input + 1 bytes (a NUL), 64-aligned, and one read piece. */
    if (!el_align_up_u64(max_input + 1, 64, &line) || !el_mul_u64(line, p->params.batch, &bytes) ||
        !el_add_u64(bytes, EL_INPUT_PIECE, &bytes) || (s = round_page(bytes, &scratch)) != EL_OK ||
        !el_add_u64(p->region_bytes[EL_REGION_SCRATCH], scratch, &p->region_bytes[EL_REGION_SCRATCH]) ||
        !el_add_u64(p->total_bytes, scratch, &p->total_bytes))
        return s != EL_OK ? s : el_errorf(EL_E_NOFIT, "plan: the input buffers overflow");
    p->input_bytes = bytes;
    return EL_OK;
}

/* Appends to a bounded message buffer. */
static void appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static void appendf(char *buf, size_t cap, size_t *len, const char *fmt, ...) {
    if (*len >= cap) return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf + *len, cap - *len, fmt, ap);
    va_end(ap);
    if (n > 0) *len += (size_t)n;
    if (*len >= cap) *len = cap - 1;
}

/* A plan with other parameters and the same input bound as plan. */
static el_status replan(const el_model *m, const el_plan_params *q, const el_plan *plan,
                        el_plan *alt) {
    el_status s = el_plan_make(m, q, alt);
    return s == EL_OK ? el_plan_input(m, plan->max_input, alt) : s;
}

el_status el_plan_check(const el_model *m, const el_plan *plan, uint64_t arena_bytes) {
    if (plan->total_bytes <= arena_bytes) return EL_OK;
    char msg[900], a[32], b[32], c[32], x[32];
    size_t len = 0;
    el_size_format(plan->total_bytes, a, sizeof a);
    el_size_format(arena_bytes, b, sizeof b);
    el_size_format(plan->total_bytes - arena_bytes, c, sizeof c);
    appendf(msg, sizeof msg, &len, "%s needs %s (%llu bytes: ", m->path, a,
            (unsigned long long)plan->total_bytes);
    for (int r = 0; r < EL_REGION_COUNT; r++) {
        el_size_format(plan->region_bytes[r], x, sizeof x);
        appendf(msg, sizeof msg, &len, "%s%s %s", r ? ", " : "", el_region_name(r), x);
    }
    appendf(msg, sizeof msg, &len, "); the arena is %s (%llu bytes): missing %s.", b,
            (unsigned long long)arena_bytes, c);

    /* What would fit: smaller weight dtypes, then a shorter context, then a smaller chunk. */
    const char *fits = " Would fit:";
    bool any = false;
    static const el_dtype smaller[] = {EL_DT_F16, EL_DT_BF16};
    for (size_t i = 0; i < sizeof smaller / sizeof smaller[0]; i++) {
        el_plan_params q = plan->params;
        if (q.dtype == smaller[i]) continue;
        q.dtype = smaller[i];
        el_plan alt;
        if (replan(m, &q, plan, &alt) != EL_OK || alt.total_bytes >= plan->total_bytes) continue;
        el_size_format(alt.total_bytes, x, sizeof x);
        appendf(msg, sizeof msg, &len, "%s --dtype %s needs %s%s", any ? ";" : fits,
                smaller[i] == EL_DT_F16 ? "f16" : "bf16", x,
                alt.total_bytes <= arena_bytes ? " (fits)" : "");
        any = true;
        break; /* bf16 is the same size as f16: one suggestion is enough */
    }
    if (plan->params.kv_dtype == EL_DT_F32 && plan->region_bytes[EL_REGION_KV]) {
        el_plan_params q = plan->params;
        q.kv_dtype = EL_DT_F16;
        el_plan alt;
        if (el_plan_make(m, &q, &alt) == EL_OK && alt.total_bytes < plan->total_bytes) {
            el_size_format(alt.total_bytes, x, sizeof x);
            appendf(msg, sizeof msg, &len, "%s --kv-dtype f16 needs %s%s", any ? ";" : fits, x,
                    alt.total_bytes <= arena_bytes ? " (fits)" : "");
            any = true;
        }
    }
    /* A shorter context: the KV cache of a decoder, the activations of an encoder (batch x
     * ctx tokens). Skipped when the context does not change the plan. */
    if (plan->params.ctx > 16) {
        /* Largest power-of-two context (below the current one) that fits. */
        for (uint32_t ctx = 1u << 30; ctx >= 16; ctx >>= 1) {
            if (ctx >= plan->params.ctx) continue;
            el_plan_params q = plan->params;
            q.ctx = ctx;
            el_plan alt;
            if (replan(m, &q, plan, &alt) != EL_OK) continue;
            if (alt.total_bytes >= plan->total_bytes) break;
            if (alt.total_bytes > arena_bytes && ctx > 16) continue;
            el_size_format(plan->total_bytes - alt.total_bytes, x, sizeof x);
            appendf(msg, sizeof msg, &len, "%s --ctx %u saves %s%s", any ? ";" : fits, ctx, x,
                    alt.total_bytes <= arena_bytes ? " (fits)" : " (not enough alone)");
            any = true;
            break;
        }
    }
    if (plan->params.batch > 1) {
        /* The largest smaller batch that fits (the plan grows with the batch), else 1. */
        uint32_t lo = 1, hi = plan->params.batch - 1, best = 0;
        while (lo <= hi) {
            uint32_t mid = lo + (hi - lo) / 2;
            el_plan_params q = plan->params;
            q.batch = mid;
            el_plan alt;
            if (replan(m, &q, plan, &alt) == EL_OK && alt.total_bytes <= arena_bytes) {
                best = mid;
                lo = mid + 1;
            } else {
                hi = mid - 1;
            }
        }
        el_plan_params q = plan->params;
        q.batch = best ? best : 1;
        el_plan alt;
        if (replan(m, &q, plan, &alt) == EL_OK && alt.total_bytes < plan->total_bytes) {
            el_size_format(alt.total_bytes, x, sizeof x);
            appendf(msg, sizeof msg, &len, "%s --batch %u needs %s%s", any ? ";" : fits, q.batch,
                    x, best ? " (fits)" : "");
            any = true;
        }
    }
    if (!plan->streamed) { /* decoder layers read from storage every pass */
        el_plan alt = *plan;
        if (el_plan_stream(m, EL_STREAM_ON, 0, &alt) == EL_OK) {
            el_size_format(alt.total_bytes, x, sizeof x);
            appendf(msg, sizeof msg, &len, "%s --stream on needs %s%s", any ? ";" : fits, x,
                    alt.total_bytes <= arena_bytes ? " (fits)" : "");
            any = true;
        }
    }
    el_size_format(plan->total_bytes, x, sizeof x);
    appendf(msg, sizeof msg, &len, "%s --arena %s (the plan's total)", any ? ";" : fits, x);
    return el_error_set(EL_E_NOFIT, msg);
}

void el_plan_arena_params(const el_plan *plan, uint64_t arena_bytes, unsigned flags,
                          el_arena_params *out) {
    memset(out, 0, sizeof *out);
    out->size = arena_bytes;
    memcpy(out->region_bytes, plan->region_bytes, sizeof out->region_bytes);
    out->flags = flags;
}
