/* session_impl.h - the session and encoder objects behind el_session and el_encoder
 * (internal), the carver that lays out their memory the same way for the plan (counting)
 * and for init (allocating), and the sampler. Families include this to implement their
 * session or encoder hooks (models/session.c and models/encoder.c are the generic halves). */
#ifndef EL_SESSION_IMPL_H
#define EL_SESSION_IMPL_H

#include "arena/arena.h"
#include "kernels/cpu/cpu.h"
#include "kernels/ops.h"
#include "loader/model_impl.h"
#include "tokenizer/tokenizer.h"

/* ---- carving ---------------------------------------------------------------------------- */

/* Takes consecutive 64-byte aligned pieces from one arena region, or, with arena NULL,
 * only adds up what they would take. Plan and session init run the same sequence of
 * el_carve calls, so the plan is exact. The first failure sticks in status (with its
 * message); later calls then return NULL. */
typedef struct el_carver {
    el_arena *arena;  /* NULL: count only */
    el_region region;
    uint64_t bytes;   /* total so far, each piece rounded up to EL_ALIGN_DEFAULT */
    el_status status; /* EL_OK until a piece overflows or does not fit */
} el_carver;

/* count * elem_size bytes (count may be 0: returns NULL, takes nothing). */
void *el_carve(el_carver *c, uint64_t count, uint64_t elem_size, const char *what);

/* What el_session_init (encoder false) and el_encoder_init (true) check and take alike
 * before they carve: the device (on_gpu: the GPU when the arena is in CUDA memory and d is
 * not the CPU; errors for --device cuda on a host arena, the CPU on GPU device memory, a
 * family without a CUDA pass, block-quantized weights on the GPU), threads, the family's
 * hooks, the weights loaded, the plan made for this model; then the regions' marks
 * [kv, scratch, act] and, on the GPU, a stream (else *stream NULL). */
el_status el_run_start(el_model *m, el_arena *a, const el_plan *plan, el_device d,
                       unsigned threads, bool encoder, bool *on_gpu, void **stream,
                       uint64_t marks[3]);
/* Gives back what el_run_start and the carves after it took: the pool (NULL: never
 * started), the stream (after its queued work) and the regions down to marks. */
void el_run_end(el_arena *a, el_pool *pool, void *stream, const uint64_t marks[3]);
/* After a pass on stream (NULL: the CPU, a no-op): waits for its queued work, on failure
 * too (an upload queued before a failed step may still read the caller's ids; a streamed
 * layer's read failing mid-pass is such a failure). Returns st with its message kept, or
 * the wait's failure when st is EL_OK. */
el_status el_run_sync(void *stream, el_status st);
/* The context: want (--ctx), else max_pos (the config's key, for messages); never more
 * than it. learned: the positions are a learned table (else RoPE's trained range). */
el_status el_ctx_resolve(const el_model *m, uint32_t want, uint32_t max_pos, const char *key,
                         bool learned, uint32_t *ctx);
/* The model family's tokenizer (EL_E_UNSUPPORTED for a family without one). */
el_status el_model_tokenizer(const el_model *m, const el_tokenizer **out);

/* ---- sampling --------------------------------------------------------------------------- */

typedef struct el_prob_index {
    float prob;
    int32_t id;
} el_prob_index;

typedef struct el_sampler {
    uint32_t vocab;
    el_sampler_params p;
    el_prob_index *cand; /* [vocab] sorting space (in scratch) */
    uint64_t rng;        /* xorshift64* state, never 0 */
} el_sampler;

/* cand: vocab entries of caller memory. */
void el_sampler_init(el_sampler *s, uint32_t vocab, el_prob_index *cand,
                     const el_sampler_params *p);
/* Picks a token from vocab logits; may overwrite logits (temperature, softmax). */
int32_t el_sampler_sample(el_sampler *s, float *logits);
/* A uniform float in [0, 1) from the sampler's generator. */
float el_sampler_rand(el_sampler *s);

/* ---- the session ------------------------------------------------------------------------ */

#define EL_SESSION_MAX_STOP 8
#define EL_PREFILL_CHUNK_MAX 64u   /* prompt tokens per forward pass (the plan's scratch) */
#define EL_SESSION_IDS_PER_CTX 8u  /* prompt id buffer: 8 * ctx (the encoder's working space) */

struct el_session {
    el_model *model;
    el_arena *arena;
    const el_family *family;
    uint64_t marks[3];           /* [kv, scratch, act] offsets at init (el_run_start) */
    uint32_t ctx;                /* context length (tokens), from the plan */
    el_dtype kv_dtype;           /* the KV cache's elements, from the plan: F32 or F16 */
    uint32_t chunk;              /* prompt tokens per forward pass, <= the planned maximum */
    uint32_t pos;                /* tokens in the KV cache */
    uint32_t vocab;              /* set by the family: logits per position */
    uint32_t max_ctx;            /* set by the family: the model's maximum positions */
    float *logits;               /* set by the family: [vocab], in scratch */
    int32_t stop[EL_SESSION_MAX_STOP]; /* set by the family: ids that end generation */
    uint32_t n_stop;
    void *family_state;          /* owned by the family, in scratch */
    el_pool *pool;               /* in scratch */
    bool on_gpu;                 /* on gpu_stream; weights|kv|act in CUDA memory */
    const el_ops *ops;           /* the backend the forward pass runs on */
    void *gpu_stream;            /* el_gpu_stream (cudaStream_t) */
    int32_t *ids;                /* [ids_cap] prompt tokens, in scratch */
    size_t ids_cap;
    el_prob_index *cand;         /* [vocab] sampler space, in scratch */
    el_sampler sampler;
    bool no_prompt_bos;          /* el_session_set_prompt_bos(false) */
    bool want_next_id;           /* el_session_forward_greedy: the argmax is enough */
    bool next_id_ready;          /* set by the family: next_id holds the argmax (the logits
                                    were not copied back) */
    int32_t next_id;
    el_numerics numerics;   /* resolved: EL_NUMERICS_EXACT or EL_NUMERICS_GGML (decoders) */
    bool cuda_graph;        /* decode steps may replay a captured graph (el_session_graphs_on) */
    void *graph[2];         /* el_gpu_graph per step variant: [0] logits back, [1] greedy (the
                               argmax on the GPU); NULL until captured; freed at deinit */
    void *pinned;           /* on the GPU: the page-locked pages of s->logits (the family's
                               host copy, in scratch: no new memory), el_gpu_host_register's
                               base; NULL: pageable (registration refused) */
};

/* Whether this session's decode steps (one token, logits or id back) run as one captured CUDA
 * graph: on the GPU, not turned off (el_session_params.no_cuda_graph, EL_CUDA_GRAPH=0, a
 * capture that failed), and every pointer a step uses is the same at every step, which
 * streamed layers break (their weights move between ring slots per pass: loader/stream.h).
 * The one place that decides. */
bool el_session_graphs_on(const el_session *s);
/* Turns graphs off for s after a failed capture (the step then runs its kernels one by
 * one); says why once on stderr when EL_VERBOSE is set (not 0). */
void el_session_graphs_fail(el_session *s, const char *why);

/* el_session_forward, then *next = the argmax of the last position's logits (the first on
 * ties; NaN never wins), as el_sampler_sample at temperature 0. A backend with an argmax op
 * picks it where the logits are and copies back only the id: s->logits is then not
 * updated. */
el_status el_session_forward_greedy(el_session *s, const int32_t *ids, size_t n, int32_t *next);

/* Scratch bytes the generic part of a session takes for a model of vocab tokens at ctx
 * (the session object, the pool, the prompt ids, the sampler). Families add it to their
 * plan; el_session_init carves the same pieces, before the family's. */
el_status el_session_plan_scratch(uint32_t vocab, uint32_t ctx, uint64_t *bytes);
/* The planned prefill chunk for a context of ctx tokens. */
static inline uint32_t el_session_planned_chunk(uint32_t ctx) {
    return ctx < EL_PREFILL_CHUNK_MAX ? ctx : EL_PREFILL_CHUNK_MAX;
}

/* ---- the encoder ------------------------------------------------------------------------ */

#define EL_LABEL_NAME_MAX 64 /* bytes of a label name, NUL included */

struct el_encoder {
    el_model *model;
    el_arena *arena;
    const el_family *family;
    el_plan plan;                 /* copy of the plan the arena was made from */
    uint64_t marks[3];            /* [kv, scratch, act] offsets at init (el_run_start) */
    uint32_t max_batch;           /* sequences per call, from the plan */
    uint32_t max_seq;             /* tokens per sequence, from the plan */
    el_pool *pool;                /* in scratch */
    uint32_t *starts;             /* [max_batch] first packed row of each sequence */
    uint32_t *lengths;            /* [max_batch] tokens of each sequence */
    uint32_t n_seq;               /* sequences of the current call */
    uint32_t n_rows;              /* packed rows of the current call (sum of lengths) */
    uint32_t max_len;             /* the longest sequence of the current call */
    int32_t *idx;                 /* [5, n_rows] (room for max_batch * max_seq rows) per packed
                                     row: id, type id, position, its sequence's first row and
                                     length; in scratch */
    /* Set by the family's encoder_init: */
    uint32_t dim;                 /* hidden size */
    uint32_t vocab;               /* token ids are < vocab */
    uint32_t n_types;             /* token type ids are < n_types */
    uint32_t n_labels;            /* classification outputs; 0 = no head */
    char (*labels)[EL_LABEL_NAME_MAX]; /* [n_labels] names, in scratch */
    bool labels_named;            /* from id2label */
    float *out;                   /* [max_batch * max_seq, dim]: free after encode (el_encode
                                     unpacks the hidden states into it) */
    void *family_state;           /* owned by the family, in scratch */
    bool on_gpu;                  /* on gpu_stream; weights|act in CUDA memory */
    const el_ops *ops;            /* the backend the encoder runs on */
    void *gpu_stream;             /* el_gpu_stream (cudaStream_t) */
};

/* The encoder and its generic parts (pool, packing buffers) for batch sequences of seq
 * tokens, carved before the family's; NULL when only counting (sc->arena NULL) or failed.
 * Families' plans carve it too. */
el_encoder *el_encoder_carve(el_carver *sc, uint32_t batch, uint32_t seq);

#endif /* EL_SESSION_IMPL_H */
