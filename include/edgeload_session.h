/* edgeload_session.h - running a loaded model: sessions (KV cache, activations and a fixed
 * thread pool, all inside the arena), tokenization and text generation. Included by
 * edgeload.h; not meant to be included on its own.
 *
 * The walk: el_model_open -> el_plan_make -> el_arena_init -> el_model_load ->
 * el_session_init -> el_generate (or el_session_forward) ... -> el_session_deinit.
 * Nothing in this header allocates on the heap after el_session_init returns. */
#ifndef EDGELOAD_SESSION_H
#define EDGELOAD_SESSION_H

#ifndef EDGELOAD_H
#error "include edgeload.h, not edgeload_session.h"
#endif

/* ---- devices ----------------------------------------------------------------------- */

typedef enum el_device {
    EL_DEVICE_CPU = 0,  /* the default */
    EL_DEVICE_CUDA = 1, /* EL_E_NODEV when not built with CUDA or no GPU is present */
    EL_DEVICE_AUTO = 2, /* CUDA when available, else the CPU */
} el_device;

/* "cpu", "cuda", "auto" -> *out; EL_E_USAGE otherwise. */
el_status el_device_parse(const char *text, el_device *out);
const char *el_device_name(el_device d);
/* True if sessions can run on d in this build and on this machine (CPU: always). */
bool el_device_available(el_device d);
/* The device a session on d will use, and why, as one line into why (capacity cap):
 * CPU stays the CPU; AUTO picks CUDA when it can run here, else the CPU, saying what was
 * missing (no CUDA backend in this build, no GPU or driver, no CUDA forward pass yet);
 * CUDA -> EL_E_NODEV with the same reason when it cannot run here. Probes the GPU only
 * for AUTO and CUDA. */
el_status el_device_resolve(el_device d, el_device *out, char *why, size_t cap);

/* --cuda-memory: which CUDA memory holds the GPU regions. AUTO: managed on integrated GPUs
 * (Jetson: CPU and GPU share DRAM, the loader writes in place), device memory plus a pinned
 * staging ring on discrete ones (managed for .elimg images there). */
typedef enum el_cuda_memory {
    EL_CUDA_MEMORY_AUTO = 0,
    EL_CUDA_MEMORY_MANAGED = 1,
    EL_CUDA_MEMORY_DEVICE = 2,
} el_cuda_memory;
el_status el_cuda_memory_parse(const char *text, el_cuda_memory *out);

/* el_device_resolve for one opened model: also needs the model's family to have a CUDA
 * forward pass, and picks the arena's memory (*mem: EL_MEMORY_HOST for the CPU). */
el_status el_device_resolve_model(const el_model *m, el_device d, el_cuda_memory cm,
                                  el_device *out, el_memory *mem, char *why, size_t cap);

/* ---- sessions ---------------------------------------------------------------------- */

typedef struct el_session el_session;

/* How a decoder's CPU kernels round (--numerics). */
typedef enum el_numerics {
    EL_NUMERICS_AUTO = 0,  /* EXACT (the default for every format; GGML by name) */
    EL_NUMERICS_EXACT = 1, /* edgeload's own: f32 attention (queries, scores, softmax,
                              weighted sum), SIMD sums (what the transformers tests measure) */
    EL_NUMERICS_GGML = 2,  /* llama.cpp's CPU arithmetic where it differs (docs/GGUF.md): its
                              flash-attention row (an f16 cache's query rounded to f16, an
                              online softmax, values summed in f16), RMSNorm's sum in double,
                              RoPE's angles, the 32-block matmuls one row at a time in its
                              vec_dot order (no GEMM: slower prompts), Q4_K / Q6_K in its x86
                              kernels' orders; CPU only */
} el_numerics;
/* "auto", "exact" or "ggml"; anything else is EL_E_USAGE naming the three. */
el_status el_numerics_parse(const char *text, el_numerics *out);
const char *el_numerics_name(el_numerics a);

typedef struct el_session_params {
    unsigned threads;        /* CPU threads including the caller; 0 = online CPUs (max 64) */
    el_device device;        /* EL_DEVICE_CPU (0) by default */
    uint32_t prefill_chunk;  /* prompt tokens per forward pass; 0 or more than planned = the
                                planned maximum (64, or ctx if smaller) */
    bool no_cuda_graph;      /* on a GPU, decode steps launch their kernels one by one instead
                                of replaying one captured CUDA graph per step (the default;
                                EL_CUDA_GRAPH=0 in the environment turns graphs off too;
                                docs/CUDA.md) */
} el_session_params;

/* Creates a session over a loaded model: KV cache from the arena's kv region; activations,
 * logits, sampling buffers, the session object and the thread pool from its scratch region
 * (the plan sized both exactly); binds every weight by tensor name with shape and dtype
 * checks (f32, f16 or bf16 as loaded); starts the pool's threads. The context length is the
 * plan's. Errors: EL_E_USAGE (model not loaded, plan from another model), EL_E_UNSUPPORTED
 * (family cannot run, weight dtype), EL_E_INVALID (missing tensor, wrong shape), EL_E_NOFIT
 * (the arena's kv/scratch regions are smaller than the plan), EL_E_NODEV (device).
 * params may be NULL. The model and arena must outlive the session. On x86 the first CPU
 * session over a load (host arena) repacks the model's block-type matrices in place
 * into the CPU's 8-row tiles (el_tensor_info.cpu_tiles; EL_CPU_TILES=0 in the environment
 * keeps GGUF's layout): start it before other threads read the weights. */
el_status el_session_init(el_model *m, el_arena *a, const el_plan *plan,
                          const el_session_params *params, el_session **out);
/* A decoder session's attention rounding from the next forward pass on (a new session
 * starts with EL_NUMERICS_AUTO). EL_E_UNSUPPORTED: GGML on the GPU; EL_E_USAGE: not an
 * el_numerics. Encoders ignore it. */
el_status el_session_set_numerics(el_session *s, el_numerics a);
/* The rounding the session runs: EL_NUMERICS_EXACT or EL_NUMERICS_GGML (AUTO resolved). */
el_numerics el_session_numerics(const el_session *s);
/* Stops the threads and returns the session's kv and scratch memory to the arena. */
void el_session_deinit(el_session *s);

/* Layer streaming counters of a session over a streamed plan (el_plan_stream). */
typedef struct el_stream_stats {
    bool streamed;          /* false: a resident model (the rest is 0) */
    uint64_t slot_bytes;    /* one layer slot */
    uint64_t bytes_read;    /* layer bytes read from storage since the session started */
    uint64_t layers_read;   /* layer reads since the session started */
    double io_seconds;      /* the I/O thread's time in reads */
    double wait_seconds;    /* the forward pass's time waiting for a layer */
    bool direct;            /* layers are read with O_DIRECT (the plan asked, the files allow) */
    uint32_t slots;         /* slots in the ring */
    uint32_t pinned;        /* first layers resident */
} el_stream_stats;
/* Waits until the I/O thread has finished the read it has been asked for (the next pass's
 * first layer is read ahead), then fills *out. */
el_status el_session_stream_stats(el_session *s, el_stream_stats *out);

uint32_t el_session_ctx(const el_session *s);       /* context length in tokens */
uint32_t el_session_vocab(const el_session *s);     /* logits per position */
uint32_t el_session_pos(const el_session *s);       /* tokens in the KV cache */
unsigned el_session_threads(const el_session *s);
/* Forgets the KV cache: the next forward starts at position 0. */
void el_session_reset(el_session *s);

/* Runs n >= 1 tokens at positions pos .. pos+n-1 (prefilled in batches, one matmul per
 * weight per batch), appending them to the KV cache. *logits: vocab floats for the last
 * token, valid until the next call on s. EL_E_NOFIT if pos + n > ctx, EL_E_INVALID for an
 * id outside the vocabulary (the cache is then unchanged). */
el_status el_session_forward(el_session *s, const int32_t *ids, size_t n, const float **logits);

/* ---- tokens ------------------------------------------------------------------------ */

/* Encodes len bytes of UTF-8 text with the model's tokenizer (opened with the model: the
 * --tokenizer file, else one found next to it). Writes at most cap ids; the encoder works
 * inside ids, so cap must hold the text's tokens before merging (at most len + 2):
 * EL_E_NOFIT with that count in *n otherwise. EL_E_INVALID for invalid UTF-8 (naming the
 * byte), EL_E_UNSUPPORTED / EL_E_INVALID when the model has no usable tokenizer. add_bos
 * prepends BOS for models whose prompts start with it (Llama); GPT-2 prompts never do, as
 * in transformers. */
el_status el_tokenize(const el_model *m, const char *text, size_t len, bool add_bos,
                      int32_t *ids, size_t cap, size_t *n);
/* The bytes token id stands for after token prev (-1 if none): the leading space of the
 * first word after BOS is dropped, <0xXX> tokens give their raw byte. NUL-terminated in buf
 * (capacity cap); *n = bytes without the NUL. */
el_status el_token_piece(const el_model *m, int32_t prev, int32_t id, char *buf, size_t cap,
                         size_t *n);
/* BOS and EOS ids of the model's tokenizer (-1 if none or no tokenizer). */
void el_token_special(const el_model *m, int32_t *bos, int32_t *eos);

/* ---- generation -------------------------------------------------------------------- */

typedef struct el_sampler_params {
    float temperature;  /* 0 = greedy (argmax); else logits / temperature before softmax */
    uint32_t top_k;     /* keep the k most likely tokens; 0 = all */
    float top_p;        /* keep the smallest set whose probability reaches top_p; 0 or >= 1 = all */
    uint64_t seed;      /* xorshift seed: the same seed gives the same text */
} el_sampler_params;

/* temperature 1, top_k 0, top_p 0.9, seed 0 (llama2.c's defaults). */
void el_sampler_params_default(el_sampler_params *p);

/* Called once per generated token with its id and the text it adds (bytes, not
 * NUL-terminated; may be an incomplete UTF-8 sequence when a character spans byte tokens).
 * Return false to stop. */
typedef bool (*el_token_fn)(void *user, int32_t id, const char *piece, size_t len);

typedef struct el_gen_stats {
    uint32_t prompt_tokens;      /* including BOS */
    uint32_t generated_tokens;   /* passed to the callback */
    double prompt_seconds;       /* tokenize + prefill + first sample */
    double gen_seconds;          /* the decode steps after the first generated token */
    double first_token_seconds;  /* from el_generate's start to the first token's callback */
    double prompt_tok_per_s;     /* prompt_tokens / prompt_seconds */
    double gen_tok_per_s;        /* (generated_tokens - 1) / gen_seconds: decode speed */
    bool stopped_at_eos;         /* the model ended the text (EOS) */
} el_gen_stats;

/* Encodes prompt (BOS first), prefills it, then samples up to n_new tokens, calling
 * on_token for each; stops early at EOS (not passed to the callback) or when on_token
 * returns false. Starts from an empty KV cache. Errors (nothing generated then):
 * EL_E_INVALID for invalid UTF-8; EL_E_NOFIT when the prompt is longer than the context or
 * prompt + n_new tokens do not fit (the message names the --ctx that would).
 * sp NULL = greedy; stats may be NULL. */
el_status el_generate(el_session *s, const char *prompt, uint32_t n_new,
                      const el_sampler_params *sp, el_token_fn on_token, void *user,
                      el_gen_stats *stats);

/* Whether el_generate prepends BOS to the prompt (default true; families that never do, as
 * GPT-2, ignore it). A prompt rendered from a chat template carries its own special tokens
 * (transformers tokenizes it with add_special_tokens=False): turn BOS off for it. */
void el_session_set_prompt_bos(el_session *s, bool add_bos);

/* ---- chat ---------------------------------------------------------------------------- */

/* True if the model came with a chat template (tokenizer_config.json / chat_template.jinja
 * next to it, or GGUF tokenizer.chat_template). */
bool el_model_has_chat_template(const el_model *m);
/* Renders a conversation, a JSON array of message objects ([{"role": "user", "content":
 * "hi"}, ...]; every key reaches the template), with the model's chat template as
 * transformers' apply_chat_template(tokenize=False) does, into out (capacity cap,
 * NUL-terminated; *n bytes without it). work (work_cap >= 64 KiB, 1 MiB renders every
 * template tested) is scratch; nothing is allocated. EL_E_UNSUPPORTED if the model has no
 * template or the template uses syntax outside the subset (docs/CHAT.md); EL_E_INVALID if
 * it raises (role alternation, ...) or the JSON is bad; EL_E_NOFIT if out is too small. */
el_status el_chat_format(const el_model *m, const char *messages_json, size_t len,
                         bool add_generation_prompt, void *work, size_t work_cap, char *out,
                         size_t cap, size_t *n);

/* ---- encoders (BERT): hidden states, embeddings, classification -------------------- */

/* The walk: el_model_open -> el_plan_make (ctx = tokens per sequence, batch = sequences per
 * call) -> el_arena_init -> el_model_load -> el_encoder_init -> el_embed / el_classify /
 * el_encode ... -> el_encoder_deinit. An encoder has no KV cache: everything it needs comes
 * from the arena's scratch region, sized exactly by the plan for batch x ctx tokens.
 * Nothing allocates on the heap after el_encoder_init returns. */
typedef struct el_encoder el_encoder;

typedef struct el_encoder_params {
    unsigned threads;  /* CPU threads including the caller; 0 = online CPUs (max 64) */
    el_device device;  /* EL_DEVICE_CPU (0) by default */
} el_encoder_params;

/* Creates an encoder over a loaded model of an encoder family (bert): binds every weight by
 * name with shape and dtype checks, carves its activations from the scratch region (the
 * plan sized them for plan->params.batch sequences of plan->params.ctx tokens) and starts
 * the pool's threads. Errors: EL_E_UNSUPPORTED (not an encoder family, weight dtype),
 * EL_E_USAGE (model not loaded, plan from another model), EL_E_INVALID (missing tensor,
 * wrong shape), EL_E_NOFIT (scratch smaller than the plan), EL_E_NODEV. params may be NULL.
 * The model and arena must outlive the encoder. */
el_status el_encoder_init(el_model *m, el_arena *a, const el_plan *plan,
                          const el_encoder_params *params, el_encoder **out);
/* Stops the threads and returns the encoder's scratch memory to the arena. NULL is fine. */
void el_encoder_deinit(el_encoder *e);
/* A streamed plan's counters (el_session_stream_stats): each el_encode reads every streamed
 * layer once for its whole batch. */
el_status el_encoder_stream_stats(el_encoder *e, el_stream_stats *out);

uint32_t el_encoder_max_batch(const el_encoder *e); /* sequences per call (the plan's batch) */
uint32_t el_encoder_max_seq(const el_encoder *e);   /* tokens per sequence (the plan's ctx) */
uint32_t el_encoder_dim(const el_encoder *e);       /* hidden size: floats per vector */
unsigned el_encoder_threads(const el_encoder *e);
/* Outputs of the classification head (0 when the model has none). */
uint32_t el_encoder_labels(const el_encoder *e);
/* Name of label i: config.json id2label, else "LABEL_<i>" (as transformers names them);
 * NULL if i >= el_encoder_labels. */
const char *el_encoder_label(const el_encoder *e, uint32_t i);
/* True when the names come from id2label. */
bool el_encoder_labels_named(const el_encoder *e);

/* Tokenizes one text, or a pair (b non-NULL), for this encoder with the model's tokenizer:
 * [CLS] a [SEP] (b [SEP]), token type 0 for a's part and 1 for b's, cut to max_len tokens
 * (0 = el_encoder_max_seq; longest-first truncation of the texts, the special tokens are
 * kept). Writes *n <= cap ids (and type ids when type_ids is non-NULL); *truncated (may be
 * NULL) says whether text was dropped. Empty text gives [CLS] [SEP]. EL_E_INVALID for
 * invalid UTF-8 (naming the byte), EL_E_UNSUPPORTED when the model has no WordPiece
 * tokenizer, EL_E_NOFIT if cap < the result. Allocates nothing. */
el_status el_encoder_tokenize(const el_encoder *e, const char *a, size_t alen, const char *b,
                              size_t blen, size_t max_len, int32_t *ids, int32_t *type_ids,
                              size_t cap, size_t *n, bool *truncated);

/* Runs the encoder over batch sequences in one pass. ids and type_ids are [batch, seq]
 * row-major (type_ids NULL = all 0); sequence i is ids[i*seq .. i*seq + lengths[i] - 1],
 * the rest of its row is padding and is never read. 1 <= batch <= max_batch,
 * 1 <= lengths[i] <= seq <= max_seq. Padding costs nothing: the valid tokens are packed
 * before the matmuls. *hidden: the last hidden states, [batch, seq, dim] (rows past a
 * sequence's length are 0), valid until the next call on e. Errors (nothing computed):
 * EL_E_USAGE for counts out of range, EL_E_INVALID for an id outside the vocabulary or a
 * type id outside type_vocab_size (naming sequence and position). */
el_status el_encode(el_encoder *e, const int32_t *ids, const int32_t *type_ids,
                    const uint32_t *lengths, uint32_t batch, uint32_t seq,
                    const float **hidden);

typedef enum el_pooling {
    EL_POOLING_MEAN = 0, /* mean of the last hidden states over the sequence's tokens
                            (sentence-transformers' mean pooling, special tokens included) */
    EL_POOLING_CLS = 1,  /* the hidden state of the first token ([CLS]) */
} el_pooling;

/* "mean", "cls" -> *out; EL_E_USAGE otherwise. */
el_status el_pooling_parse(const char *text, el_pooling *out);

/* el_encode, then one vector per sequence into out ([batch, dim], cap floats), pooled as
 * asked; normalize divides each by its L2 norm (max(norm, 1e-12), as
 * torch.nn.functional.normalize). EL_E_USAGE if cap < batch * dim. */
el_status el_embed(el_encoder *e, const int32_t *ids, const int32_t *type_ids,
                   const uint32_t *lengths, uint32_t batch, uint32_t seq, el_pooling pooling,
                   bool normalize, float *out, size_t cap);

/* el_encode, then the classification head (BertForSequenceClassification: pooler
 * tanh(W h_[CLS] + b), then the classifier) per sequence: logits [batch, labels] into
 * logits (cap floats each for logits and probs); probs (may be NULL), as transformers'
 * text-classification pipeline: config problem_type "regression" -> the logits as they
 * are; "multi_label_classification" or a single-output head -> a sigmoid per label; else
 * softmax over the labels. EL_E_UNSUPPORTED when the model has no classification
 * head (or no pooler), EL_E_USAGE if cap < batch * labels. */
el_status el_classify(el_encoder *e, const int32_t *ids, const int32_t *type_ids,
                      const uint32_t *lengths, uint32_t batch, uint32_t seq, float *logits,
                      float *probs, size_t cap);

#endif /* EDGELOAD_SESSION_H */
