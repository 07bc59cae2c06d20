/* session.c - the family-independent half of a session: memory carved from the arena,
 * the thread pool, batched prefill, tokenization through the model's tokenizer and the
 * generation loop (prefill, sample, stream, stop). Families supply the forward pass. */
#include "loader/stream.h"
#include "models/session_impl.h"
#include "platform/gpu.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- carving ---------------------------------------------------------------------------- */

void *el_carve(el_carver *c, uint64_t count, uint64_t elem_size, const char *what) {
    if (c->status != EL_OK || count == 0) return NULL;
    uint64_t bytes, padded, total;
    if (!el_mul_u64(count, elem_size, &bytes) ||
        !el_align_up_u64(bytes, EL_ALIGN_DEFAULT, &padded) ||
        !el_add_u64(c->bytes, padded, &total)) {
        c->status = el_errorf(EL_E_NOFIT, "%s region: %s of %llu x %llu bytes overflows",
                              el_region_name(c->region), what, (unsigned long long)count,
                              (unsigned long long)elem_size);
        return NULL;
    }
    c->bytes = total;
    if (!c->arena) return NULL;
    void *p = NULL;
    el_status s = el_arena_alloc(c->arena, c->region, bytes, EL_ALIGN_DEFAULT, &p);
    if (s != EL_OK) {
        char why[512];
        snprintf(why, sizeof why, "%s", el_last_error());
        c->status = el_errorf(s, "session %s (%llu bytes): %s; was the arena made from this "
                              "model's plan?", what, (unsigned long long)bytes, why);
        return NULL;
    }
    return p;
}

/* The session and its generic parts (pool, prompt ids) at ctx, carved before the family's
 * (the sampler's space after them); NULL when only counting or failed. */
static el_session *session_carve(el_carver *sc, uint32_t ctx) {
    el_session v = {.ctx = ctx, .ids_cap = (size_t)ctx * EL_SESSION_IDS_PER_CTX + 16};
    el_session *s = el_carve(sc, 1, sizeof *s, "session");
    v.pool = el_carve(sc, 1, sizeof *v.pool, "thread pool");
    v.ids = el_carve(sc, v.ids_cap, sizeof *v.ids, "prompt ids");
    if (s) *s = v;
    return s;
}

el_status el_session_plan_scratch(uint32_t vocab, uint32_t ctx, uint64_t *bytes) {
    el_carver c = {NULL, EL_REGION_SCRATCH, 0, EL_OK};
    session_carve(&c, ctx);
    el_carve(&c, vocab, sizeof(el_prob_index), "sampler");
    *bytes = c.bytes;
    return c.status;
}

/* ---- devices ---------------------------------------------------------------------------- */

static const char *const k_devices[] = {"cpu", "cuda", "auto"}; /* by el_device */

el_status el_device_parse(const char *text, el_device *out) {
    for (int d = 0; text && d < 3; d++)
        if (!strcasecmp(text, k_devices[d])) return *out = (el_device)d, EL_OK;
    return el_errorf(EL_E_USAGE, "unknown device '%s' (expected cpu, cuda or auto)",
                     text ? text : "(null)");
}

const char *el_device_name(el_device d) { return (unsigned)d < 3 ? k_devices[d] : "unknown"; }

el_status el_cuda_memory_parse(const char *text, el_cuda_memory *out) {
    if (text && !strcasecmp(text, "auto")) return *out = EL_CUDA_MEMORY_AUTO, EL_OK;
    if (text && !strcasecmp(text, "managed")) return *out = EL_CUDA_MEMORY_MANAGED, EL_OK;
    if (text && !strcasecmp(text, "device")) return *out = EL_CUDA_MEMORY_DEVICE, EL_OK;
    return el_errorf(EL_E_USAGE, "unknown CUDA memory '%s' (expected managed, device or auto)",
                     text ? text : "(null)");
}

/* GPU 0, or why there is none usable, into why (returns false then). */
static bool cuda_gpu(el_gpu_info *g, char *why, size_t cap) {
    int n = 0;
    const char *no = NULL;
    if (!el_gpu_built())
        no = "this build has no CUDA backend (configure with -DEL_CUDA=ON on a machine with the "
             "CUDA toolkit)";
    else if (el_gpu_count(&n) != EL_OK || (n > 0 && el_gpu_info_get(0, g) != EL_OK))
        no = el_last_error();
    else if (n == 0)
        no = "no CUDA device found";
    if (no) {
        snprintf(why, cap, "%s", no);
        return false;
    }
    if (el_gpu_probe() != EL_OK) {
        snprintf(why, cap, "GPU 0 (sm_%d%d): %s", g->cc_major, g->cc_minor, el_last_error());
        return false;
    }
    return true;
}

bool el_device_available(el_device d) {
    if (d != EL_DEVICE_CUDA) return d == EL_DEVICE_CPU || d == EL_DEVICE_AUTO;
    el_gpu_info g;
    char why[256];
    return cuda_gpu(&g, why, sizeof why);
}

/* m may be NULL (el_device_resolve): then only the GPU is asked. */
el_status el_device_resolve_model(const el_model *m, el_device d, el_cuda_memory cm,
                                  el_device *out, el_memory *mem, char *why, size_t cap) {
    char reason[600];
    el_gpu_info g;
    *out = EL_DEVICE_CPU;
    *mem = EL_MEMORY_HOST;
    if (d == EL_DEVICE_CPU) {
        snprintf(why, cap, "cpu (requested)");
        return EL_OK;
    }
    if (d != EL_DEVICE_AUTO && d != EL_DEVICE_CUDA)
        return el_errorf(EL_E_USAGE, "unknown device %d", (int)d);
    bool ok = cuda_gpu(&g, reason, sizeof reason);
    if (ok && m && (!m->family || (!m->family->forward && !m->family->encode))) {
        snprintf(reason, sizeof reason, "GPU 0 (%s) is present, but the %s family has no "
                 "forward pass", g.name, m->family ? m->family->name : "generic");
        ok = false;
    }
    if (!ok) {
        if (d == EL_DEVICE_AUTO) {
            snprintf(why, cap, "cpu (auto: %s)", reason);
            return EL_OK;
        }
        snprintf(why, cap, "cuda unavailable: %s", reason);
        return el_errorf(EL_E_NODEV, "--device cuda: %s; use --device cpu or auto", reason);
    }
    el_memory chosen = EL_MEMORY_CUDA_DEVICE;
    const char *because = "discrete GPU: device memory, pinned staging";
    if (cm == EL_CUDA_MEMORY_MANAGED) {
        chosen = EL_MEMORY_CUDA_MANAGED;
        because = "managed memory (--cuda-memory managed)";
    } else if (cm == EL_CUDA_MEMORY_DEVICE) {
        because = "device memory (--cuda-memory device)";
    } else if (g.integrated) {
        chosen = EL_MEMORY_CUDA_MANAGED;
        because = "integrated GPU: managed memory shared with the CPU";
    } else if (m && m->image) {
        chosen = EL_MEMORY_CUDA_MANAGED;
        because = "discrete GPU, .elimg image: managed memory";
    }
    if (chosen == EL_MEMORY_CUDA_MANAGED && !g.managed)
        return el_errorf(EL_E_NODEV, "GPU 0 (%s) does not support managed memory; use "
                         "--cuda-memory device", g.name);
    *out = EL_DEVICE_CUDA;
    *mem = chosen;
    snprintf(why, cap, "cuda (%sGPU 0: %s, sm_%d%d, %s)", d == EL_DEVICE_AUTO ? "auto: " : "",
             g.name, g.cc_major, g.cc_minor, because);
    return EL_OK;
}

el_status el_device_resolve(el_device d, el_device *out, char *why, size_t cap) {
    el_memory mem;
    return el_device_resolve_model(NULL, d, EL_CUDA_MEMORY_AUTO, out, &mem, why, cap);
}

/* Where a session or encoder on d runs, given its arena (see el_run_start). */
static el_status device_for_arena(const el_model *m, const el_arena *a, el_device d,
                                  bool has_cuda_pass, bool *on_gpu) {
    *on_gpu = el_arena_memory(a) != EL_MEMORY_HOST && d != EL_DEVICE_CPU;
    if (d == EL_DEVICE_CUDA && !*on_gpu)
        return el_errorf(EL_E_NODEV, "--device cuda: the arena is in host memory; make it with "
                         "el_arena_params.memory = managed or device (el_device_resolve_model "
                         "picks one)");
    if (d == EL_DEVICE_CPU && el_arena_memory(a) == EL_MEMORY_CUDA_DEVICE)
        return el_errorf(EL_E_USAGE, "the CPU cannot run from an arena in GPU device memory");
    if (*on_gpu && !has_cuda_pass)
        return el_errorf(EL_E_NODEV, "%s: the %s family has no CUDA forward pass", m->path,
                         m->family ? m->family->name : "generic");
    return EL_OK;
}

/* ---- lifecycle -------------------------------------------------------------------------- */

el_status el_run_start(el_model *m, el_arena *a, const el_plan *plan, el_device d,
                       unsigned threads, bool encoder, bool *on_gpu, void **stream,
                       uint64_t marks[3]) {
    const el_family *f = m->family;
    const char *fname = f ? f->name : "generic";
    if (d != EL_DEVICE_CPU && d != EL_DEVICE_CUDA && d != EL_DEVICE_AUTO)
        return el_errorf(EL_E_USAGE, "unknown device %d", (int)d);
    EL_TRY(device_for_arena(m, a, d, f && (encoder ? !!f->encode : !!f->forward), on_gpu));
    if (encoder && *on_gpu && plan->params.memory != el_arena_memory(a))
        return el_errorf(EL_E_USAGE, "%s: the plan was made for %s memory, the arena is %s",
                         m->path, el_memory_name(plan->params.memory),
                         el_memory_name(el_arena_memory(a)));
    if (threads > EL_POOL_MAX_THREADS)
        return el_errorf(EL_E_USAGE, "--threads %u: at most %u", threads, EL_POOL_MAX_THREADS);
    if (encoder && (!f || !f->encoder_init || !f->encode))
        return el_errorf(EL_E_UNSUPPORTED, "%s: model family '%s' is not an encoder (embed and "
                         "classify run BERT-style models)", m->path, fname);
    if (!encoder && (!f || !f->session_init || !f->forward))
        return el_errorf(EL_E_UNSUPPORTED, "%s: model family '%s' cannot run (no forward pass)",
                         m->path, fname);
    if (!m->loaded)
        return el_errorf(EL_E_USAGE, "%s: load the weights (el_model_load) before starting %s",
                         m->path, encoder ? "an encoder" : "a session");
    if (plan->tensor_count != m->tensors.count || plan->params.ctx == 0 ||
        (encoder && plan->params.batch == 0))
        return el_errorf(EL_E_USAGE, "%s: the plan was not made for this model (el_plan_make)",
                         m->path);
    marks[0] = el_arena_mark(a, EL_REGION_KV);
    marks[1] = el_arena_mark(a, EL_REGION_SCRATCH);
    marks[2] = el_arena_mark(a, EL_REGION_ACT);
    el_gpu_stream *gs = NULL;
    el_status st = *on_gpu ? el_gpu_stream_create(&gs) : EL_OK;
    if (st == EL_OK && gs) {
        /* A managed arena: this stream's from here on (another model may load meanwhile,
         * Jetson included); where the GPU can, its weights move there before the first
         * pass instead of being paged in by it. */
        bool prefetched;
        st = el_arena_gpu_attach(a, gs);
        if (st == EL_OK && (st = el_arena_gpu_prefetch_weights(a, gs, &prefetched)) != EL_OK)
            (void)el_arena_gpu_detach(a, gs);
        if (st != EL_OK) {
            (void)el_gpu_sync(gs);
            el_gpu_stream_destroy(gs);
            gs = NULL;
        }
    }
    *stream = gs;
    return st;
}

void el_run_end(el_arena *a, el_pool *pool, void *stream, const uint64_t marks[3]) {
    el_pool_deinit(pool);
    if (stream) {
        (void)el_arena_gpu_detach(a, stream); /* back to the host when the stream is done */
        (void)el_gpu_sync(stream);
        el_gpu_stream_destroy(stream);
    }
    el_arena_release(a, EL_REGION_ACT, marks[2]);
    el_arena_release(a, EL_REGION_SCRATCH, marks[1]);
    el_arena_release(a, EL_REGION_KV, marks[0]);
}

el_status el_run_sync(void *stream, el_status st) {
    if (!stream) return st;
    if (st == EL_OK) return el_gpu_sync(stream);
    char why[1024];
    snprintf(why, sizeof why, "%s", el_last_error());
    (void)el_gpu_sync(stream);
    return el_error_set(st, why);
}

el_status el_ctx_resolve(const el_model *m, uint32_t want, uint32_t max_pos, const char *key,
                         bool learned, uint32_t *ctx) {
    if (want == 0) want = max_pos;
    if (want == 0)
        return el_errorf(EL_E_INVALID, "%s: the config states no max_position_embeddings: pass "
                         "--ctx", m->path);
    if (max_pos && want > max_pos)
        return el_errorf(EL_E_USAGE, "--ctx %u: %s %s for at most %u %s (%s); use --ctx %u or "
                         "less", want, m->path, learned ? "has learned positions" : "was trained",
                         max_pos, learned ? "tokens" : "positions", key, max_pos);
    *ctx = want;
    return EL_OK;
}

static const char *const numerics_names[] = {"auto", "exact", "ggml"};

el_status el_numerics_parse(const char *text, el_numerics *out) {
    for (unsigned i = 0; text && i < sizeof numerics_names / sizeof *numerics_names; i++)
        if (!strcmp(text, numerics_names[i])) {
            *out = (el_numerics)i;
            return EL_OK;
        }
    return el_errorf(EL_E_USAGE, "numerics '%s': use auto, exact or ggml",
                     text ? text : "(null)");
}

const char *el_numerics_name(el_numerics a) {
    return (unsigned)a < sizeof numerics_names / sizeof *numerics_names ? numerics_names[a] : "?";
}

/* AUTO: edgeload's own rounding for every format (the fastest kernels: the block-type GEMM);
 * llama.cpp's is asked for by name (docs/GGUF.md "The real models" has the measurement). */
static el_numerics numerics_resolve(el_numerics want) {
    return want == EL_NUMERICS_AUTO ? EL_NUMERICS_EXACT : want;
}

el_status el_session_set_numerics(el_session *s, el_numerics a) {
    if (!s) return el_errorf(EL_E_USAGE, "el_session_set_numerics: NULL session");
    if ((unsigned)a > EL_NUMERICS_GGML)
        return el_errorf(EL_E_USAGE, "numerics %u: use auto, exact or ggml",
                         (unsigned)a);
    if (a == EL_NUMERICS_GGML && s->on_gpu)
        return el_errorf(EL_E_UNSUPPORTED, "%s: numerics ggml run on the CPU only "
                         "(the CUDA kernels round as exact); use --device cpu or "
                         "--numerics exact", s->model->path);
    s->numerics = numerics_resolve(a);
    return EL_OK;
}

el_numerics el_session_numerics(const el_session *s) { return s->numerics; }

el_status el_session_init(el_model *m, el_arena *a, const el_plan *plan,
                          const el_session_params *params, el_session **out) {
    if (!m || !a || !plan || !out) return el_errorf(EL_E_USAGE, "el_session_init: NULL argument");
    *out = NULL;
    const el_session_params prm = params ? *params : (el_session_params){0, EL_DEVICE_CPU, 0, false};
    bool on_gpu = false;
    void *stream = NULL;
    uint64_t marks[3];
    EL_TRY(el_run_start(m, a, plan, prm.device, prm.threads, false, &on_gpu, &stream, marks));
    el_carver sc = {a, EL_REGION_SCRATCH, 0, EL_OK};
    el_session *s = session_carve(&sc, plan->params.ctx);
    el_status st = sc.status;
    if (st == EL_OK) {
        s->model = m;
        s->arena = a;
        s->family = m->family;
        s->kv_dtype = plan->params.kv_dtype;
        memcpy(s->marks, marks, sizeof marks);
        s->chunk = el_session_planned_chunk(s->ctx);
        if (prm.prefill_chunk && prm.prefill_chunk < s->chunk) s->chunk = prm.prefill_chunk;
        s->on_gpu = on_gpu;
        s->numerics = numerics_resolve(EL_NUMERICS_AUTO);
        s->ops = el_ops_for(on_gpu);
        s->gpu_stream = stream;
        const char *env = getenv("EL_CUDA_GRAPH");
        s->cuda_graph = on_gpu && !prm.no_cuda_graph && !(env && !strcmp(env, "0"));
        st = s->family->session_init(s);
    }
    if (st == EL_OK && on_gpu) st = el_gpu_sync(stream); /* init's uploads, kernels */
    /* The logits come back into pinned pages (direct DMA); where the runtime refuses,
     * through the driver's staging as before: not an error. */
    if (st == EL_OK && on_gpu && s->logits &&
        el_gpu_host_register(s->logits, (uint64_t)s->vocab * sizeof *s->logits, &s->pinned) !=
            EL_OK)
        s->pinned = NULL;
    if (st == EL_OK) s->cand = el_carve(&sc, s->vocab, sizeof *s->cand, "sampler");
    if (st == EL_OK && (st = sc.status) == EL_OK)
        st = el_pool_init(s->pool, prm.threads, EL_ISA_AUTO);
    if (st == EL_OK && m->stream && (st = el_stream_start(m->stream, stream)) != EL_OK)
        el_pool_deinit(s->pool);
    if (st != EL_OK) {
        if (s && s->pinned) el_gpu_host_unregister(s->pinned);
        el_run_end(a, NULL, stream, marks);
        return st;
    }
    el_sampler_init(&s->sampler, s->vocab, s->cand, NULL);
    *out = s;
    return EL_OK;
}

/* s itself lives in the scratch region being released: nothing touches it after. */
void el_session_deinit(el_session *s) {
    if (!s) return;
    el_stream_stop(s->model->stream);
    if (s->graph[0] || s->graph[1] || s->pinned) { /* after the work that may use them */
        (void)el_gpu_sync(s->gpu_stream);
        el_gpu_graph_destroy(s->graph[0]);
        el_gpu_graph_destroy(s->graph[1]);
        el_gpu_host_unregister(s->pinned);
    }
    el_run_end(s->arena, s->pool, s->gpu_stream, s->marks);
}

bool el_session_graphs_on(const el_session *s) {
    return s->on_gpu && s->cuda_graph && !s->model->stream;
}

void el_session_graphs_fail(el_session *s, const char *why) {
    const char *v = getenv("EL_VERBOSE");
    if (s->cuda_graph && v && *v && strcmp(v, "0"))
        fprintf(stderr, "edgeload: CUDA graph: capture failed, decode steps launch their "
                "kernels one by one: %s\n", why && *why ? why : "(no reason given)");
    s->cuda_graph = false;
}

el_status el_session_stream_stats(el_session *s, el_stream_stats *out) {
    if (!s || !out) return el_errorf(EL_E_USAGE, "el_session_stream_stats: NULL argument");
    el_stream_stats_get(s->model->stream, out);
    return EL_OK;
}

uint32_t el_session_ctx(const el_session *s) { return s->ctx; }
uint32_t el_session_vocab(const el_session *s) { return s->vocab; }
uint32_t el_session_pos(const el_session *s) { return s->pos; }
unsigned el_session_threads(const el_session *s) { return s->pool->n_threads; }
void el_session_reset(el_session *s) { s->pos = 0; }
void el_session_set_prompt_bos(el_session *s, bool add_bos) {
    if (s) s->no_prompt_bos = !add_bos;
}

el_status el_session_forward(el_session *s, const int32_t *ids, size_t n, const float **logits) {
    if (!s || !ids || n == 0 || !logits)
        return el_errorf(EL_E_USAGE, "el_session_forward: NULL argument or no tokens");
    if (n > (size_t)(s->ctx - s->pos))
        return el_errorf(EL_E_TOOLONG, "%zu tokens at position %u go past the context of %u "
                         "tokens (--ctx)", n, s->pos, s->ctx);
    for (size_t i = 0; i < n; i++)
        if (ids[i] < 0 || (uint32_t)ids[i] >= s->vocab)
            return el_errorf(EL_E_INVALID, "token %zu: id %d outside the vocabulary of %u", i,
                             ids[i], s->vocab);
    for (size_t i = 0; i < n; i += s->chunk) {
        size_t m = n - i < s->chunk ? n - i : s->chunk;
        el_status st = s->family->forward(s, ids + i, m, i + m == n);
        if ((st = el_run_sync(s->on_gpu ? s->gpu_stream : NULL, st)) != EL_OK) return st;
        s->pos += (uint32_t)m;
    }
    *logits = s->logits;
    return EL_OK;
}

el_status el_session_forward_greedy(el_session *s, const int32_t *ids, size_t n, int32_t *next) {
    if (!s || !next) return el_errorf(EL_E_USAGE, "el_session_forward_greedy: NULL argument");
    const float *lg = NULL;
    s->want_next_id = true;
    s->next_id_ready = false;
    el_status st = el_session_forward(s, ids, n, &lg);
    s->want_next_id = false;
    if (st != EL_OK) return st;
    *next = s->next_id_ready ? s->next_id : (int32_t)el_cpu_argmax(s->logits, s->vocab);
    s->next_id_ready = false;
    return EL_OK;
}

/* ---- tokens ----------------------------------------------------------------------------- */

el_status el_model_tokenizer(const el_model *m, const el_tokenizer **out) {
    if (!m) return el_errorf(EL_E_USAGE, "NULL model");
    if (!m->family || !m->family->tokenizer)
        return el_errorf(EL_E_UNSUPPORTED, "%s: model family '%s' has no tokenizer", m->path,
                         m->family ? m->family->name : "generic");
    return m->family->tokenizer(m, out);
}

el_status el_tokenize(const el_model *m, const char *text, size_t len, bool add_bos,
                      int32_t *ids, size_t cap, size_t *n) {
    const el_tokenizer *t;
    el_status s = el_model_tokenizer(m, &t);
    if (s != EL_OK) return s;
    if (add_bos && t->cls_id >= 0 && t->sep_id >= 0) { /* BERT's post-processor: [CLS] x [SEP] */
        bool cut = false;
        return el_tokenizer_encode_pair(t, text, len, NULL, 0, SIZE_MAX, ids, NULL, cap, n,
                                        &cut);
    }
    return el_tokenizer_encode(t, text, len, add_bos && !m->family->prompt_without_bos, ids,
                               cap, n);
}

el_status el_token_piece(const el_model *m, int32_t prev, int32_t id, char *buf, size_t cap,
                         size_t *n) {
    const el_tokenizer *t;
    el_status s = el_model_tokenizer(m, &t);
    if (s != EL_OK) return s;
    return el_tokenizer_decode(t, prev, id, buf, cap, n);
}

void el_token_special(const el_model *m, int32_t *bos, int32_t *eos) {
    const el_tokenizer *t;
    const bool ok = el_model_tokenizer(m, &t) == EL_OK;
    *bos = ok ? t->bos_id : -1;
    *eos = ok ? t->eos_id : -1;
}

/* ---- generation ------------------------------------------------------------------------- */

static bool is_stop(const el_session *s, int32_t id) {
    for (uint32_t i = 0; i < s->n_stop; i++)
        if (s->stop[i] == id) return true;
    return false;
}

/* Runs ids and picks the next token: greedy sampling (temperature 0) needs only the argmax,
 * which the GPU takes where the logits are (4 bytes come back instead of the vocabulary). */
static el_status gen_step(el_session *s, const int32_t *ids, size_t n, int32_t *next) {
    if (!(s->sampler.p.temperature > 0.0f)) return el_session_forward_greedy(s, ids, n, next);
    const float *lg = NULL;
    EL_TRY(el_session_forward(s, ids, n, &lg));
    *next = el_sampler_sample(&s->sampler, s->logits);
    return EL_OK;
}

el_status el_generate(el_session *s, const char *prompt, uint32_t n_new,
                      const el_sampler_params *sp, el_token_fn on_token, void *user,
                      el_gen_stats *stats) {
    el_gen_stats st;
    memset(&st, 0, sizeof st);
    if (stats) *stats = st;
    if (!s || !prompt) return el_errorf(EL_E_USAGE, "el_generate: NULL session or prompt");
    double t0 = el_now();
    const el_tokenizer *tok;
    el_status rc = el_model_tokenizer(s->model, &tok);
    if (rc != EL_OK) return rc;
    size_t len = strlen(prompt), n = 0;
    rc = el_tokenizer_encode(tok, prompt, len, !s->family->prompt_without_bos && !s->no_prompt_bos,
                             s->ids, s->ids_cap, &n);
    if (rc == EL_E_NOFIT)
        return el_errorf(EL_E_TOOLONG, "the prompt (%zu bytes) is too long: it needs up to %zu "
                         "tokens and the context is %u tokens (--ctx)", len, n, s->ctx);
    if (rc != EL_OK) return rc;
    if (n == 0) { /* as transformers' generate() without input ids: start from BOS */
        int32_t bos = -1, eos = -1;
        el_token_special(s->model, &bos, &eos);
        if (bos < 0 && s->model->config.bos_token_id >= 0 &&
            s->model->config.bos_token_id < (int64_t)s->vocab)
            bos = (int32_t)s->model->config.bos_token_id;
        if (bos < 0 || (uint32_t)bos >= s->vocab)
            return el_errorf(EL_E_USAGE, "the prompt is empty and %s has no BOS token to start "
                             "from: give a prompt", s->model->path);
        s->ids[n++] = bos;
    }
    if (n > s->ctx)
        return el_errorf(EL_E_TOOLONG, "the prompt is %zu tokens, longer than the context of %u "
                         "tokens: shorten it or raise --ctx (the model allows %u)", n, s->ctx,
                         s->max_ctx);
    uint64_t need = (uint64_t)n + n_new;
    if (need > s->ctx) {
        if (need <= s->max_ctx)
            return el_errorf(EL_E_TOOLONG, "the prompt (%zu tokens) + -n %u = %llu tokens, past "
                             "the context of %u: use --ctx %llu, or -n %llu", n, n_new,
                             (unsigned long long)need, s->ctx, (unsigned long long)need,
                             (unsigned long long)(s->ctx - n));
        return el_errorf(EL_E_TOOLONG, "the prompt (%zu tokens) + -n %u = %llu tokens, past the "
                         "context of %u and the model's maximum of %u positions: use -n %llu "
                         "or less", n, n_new, (unsigned long long)need, s->ctx, s->max_ctx,
                         (unsigned long long)(s->ctx - n));
    }
    el_sampler_init(&s->sampler, s->vocab, s->cand, sp);
    s->pos = 0;
    int32_t id = -1;
    rc = gen_step(s, s->ids, n, &id);
    if (rc != EL_OK) return rc;
    st.prompt_tokens = (uint32_t)n;
    int32_t prev = s->ids[n - 1];
    double t_first = el_now();
    st.prompt_seconds = t_first - t0;
    double t_gen = t_first;
    char piece[1024];
    while (st.generated_tokens < n_new) {
        if (is_stop(s, id)) {
            st.stopped_at_eos = true;
            break;
        }
        size_t plen = 0;
        rc = el_tokenizer_decode(tok, prev, id, piece, sizeof piece, &plen);
        if (rc != EL_OK) break;
        st.generated_tokens++;
        if (st.generated_tokens == 1) st.first_token_seconds = el_now() - t0;
        bool more = on_token ? on_token(user, id, piece, plen) : true;
        if (st.generated_tokens == 1) t_gen = el_now();
        if (!more || st.generated_tokens == n_new) break;
        prev = id;
        rc = gen_step(s, &prev, 1, &id);
        if (rc != EL_OK) break;
    }
    double t_end = el_now();
    if (st.generated_tokens > 0) st.gen_seconds = t_end - t_gen;
    if (st.prompt_seconds > 0) st.prompt_tok_per_s = st.prompt_tokens / st.prompt_seconds;
    if (st.generated_tokens > 1 && st.gen_seconds > 0)
        st.gen_tok_per_s = (st.generated_tokens - 1) / st.gen_seconds;
    if (stats) *stats = st;
    return rc;
}
