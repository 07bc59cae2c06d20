/* model_impl.h - the model object behind el_model (internal) and the family table that
 * model families (llama, gpt2, bert) plug into: tensor roles, plan sizes, forward passes.
 * The loader never asks "which family"; it calls through the table. */
#ifndef EL_MODEL_IMPL_H
#define EL_MODEL_IMPL_H

#include "edgeload.h"
#include "loader/safetensors.h"
#include "platform/platform.h"

#define EL_MAX_FILES 256 /* shards per model */

typedef struct el_model el_model;
struct el_tokenizer; /* tokenizer/tokenizer.h */
typedef struct el_carver el_carver; /* models/session_impl.h */

typedef struct el_family {
    const char *name; /* "llama", ... */
    const void *arch; /* decoder families: their el_arch (models/arch.h) */
    /* True if the family recognises the opened model (config model_type, tensor names). */
    bool (*detect)(const struct el_family *f, const el_model *m);
    /* Validates config against the tensor table (names, shapes) and sizes the per-session
     * regions for params: KV cache, activation (act) and scratch bytes. Reads no weight. */
    el_status (*plan)(const el_model *m, const el_plan_params *p, uint64_t *kv_bytes,
                      uint64_t *act_bytes, uint64_t *scratch_bytes);
    /* Optional open-time work after detection (tokenizer, config checks); may malloc.
     * Family data goes in m->family_data; close frees it. */
    el_status (*open)(el_model *m);
    void (*close)(el_model *m);
    /* Prompts are encoded without BOS even when asked (GPT-2: transformers starts a prompt
     * with its first token; <|endoftext|> only separates documents). */
    bool prompt_without_bos;

    /* Sessions (models/session.c calls these; NULL = the family cannot run). The passes run
     * on s->ops (the CPU's or the GPU's op table, kernels/ops.h). */
    /* Binds weights, carves KV/scratch from s->arena, sets s->logits, s->vocab,
     * s->max_ctx, the stop tokens and s->family_state. */
    el_status (*session_init)(el_session *s);
    /* Runs n tokens (1 <= n <= s->chunk, ids already checked) at positions s->pos ..;
     * fills s->logits for the last one when want_logits (queued on the GPU: the caller
     * synchronises). Fails only when the backend refuses a launch or copy (EL_E_NODEV
     * with the runtime's reason). */
    el_status (*forward)(el_session *s, const int32_t *ids, size_t n, bool want_logits);
    /* The tokenizer opened with the model, or the status saying why there is none. */
    el_status (*tokenizer)(const el_model *m, const struct el_tokenizer **out);
    /* Builds the tokenizer measured at open (m->tokenizer_bytes) into block, cap bytes of
     * the arena's tokenizer region (el_model_load). NULL: the family has none. */
    el_status (*tokenizer_load)(el_model *m, void *block, uint64_t cap);

    /* Encoders (models/encoder.c calls these; NULL = not an encoder family). */
    /* Binds weights, carves the family's activations from e's scratch carver (the same
     * sequence the family's plan counted) and sets e->dim, e->vocab, e->n_types,
     * e->n_labels, e->labels, e->out and e->family_state. */
    el_status (*encoder_init)(el_encoder *e, el_carver *scratch, el_carver *act);
    /* Runs e->n_seq sequences, already checked, packed: sequence i is rows
     * e->starts[i] .. + e->lengths[i] - 1 of e->idx (models/session_impl.h),
     * on e->ops. *hidden: the last hidden states in the same packed rows, [rows, e->dim],
     * host memory, valid until the next call (on the GPU once the caller synchronised). */
    el_status (*encode)(el_encoder *e, const float **hidden);
    /* After encode: the classification head on each sequence's first row into logits
     * [n_seq, e->n_labels] (host memory). NULL when the family has no head. */
    el_status (*classify)(el_encoder *e, float *logits);
} el_family;

/* Registered families, NULL-terminated (models/arch.c). */
extern const el_family *const el_families[];

struct el_model {
    char path[1024];                 /* as given */
    char format[32];                 /* "safetensors", "safetensors-sharded", "llama2c" */
    el_file files[EL_MAX_FILES];     /* open for the model's lifetime */
    uint32_t file_count;
    el_tensor_table tensors;         /* file order */
    el_config config;                /* from config.json or the checkpoint header */
    bool has_config;
    const el_family *family;         /* NULL = generic (loadable, not runnable) */
    char tokenizer_path[1024];       /* "" if none found */
    uint64_t tokenizer_bytes;        /* its tables, measured at open: the plan's tokenizer
                                        region (0: none, or a backend that builds on the heap) */
    /* Family-specific open-time data (e.g. llama2.c rope layout), owned by the family. */
    uint32_t flags;
    void *family_data;               /* owned by the family (open/close) */
    bool loaded;                     /* el_model_load succeeded */
    bool tiled;                      /* el_weights_tile_cpu has run since the load */
    struct el_stream *stream;        /* a streamed load's layer ring (in the weights region),
                                        else NULL (loader/stream.h) */
    /* Opened from an .elimg image (loader/image.h): then format is the source's format
     * (families key on it) and el_model_format() says "elimg". NULL otherwise. */
    struct el_image *image;
    /* The chat template and the special tokens it reads (models/chat.c, open time), NULL
     * when the model has none. */
    struct el_chat_config *chat;
    /* Opened from a GGUF file (loader/formats/gguf.h): its parsed header. NULL otherwise. */
    struct el_gguf *gguf;
};

enum {
    EL_MODEL_ROPE_INTERLEAVED = 1u << 0, /* llama2.c q/k layout (pairs), not rotate-half */
    EL_MODEL_NORM_PLUS_ONE = 1u << 1,    /* Gemma norm weights stored as 1 + w (GGUF) */
    EL_MODEL_LINEAR_ROWS = 1u << 2,      /* GPT-2's Conv1D weights stored as rows [out, in]
                                            already (GGUF): not transposed on load */
};

/* llama2.c legacy checkpoints (loader/llama2c.c). */
/* True if the 28-byte header is a plausible llama2.c header for a file of file_size bytes. */
bool el_llama2c_detect(const uint8_t head[28], uint64_t file_size);
/* With m->files[0] open: validates the header against the exact file size and fills
 * m->config, m->tensors (HF Llama names, file offsets; freq_cis tables skipped), m->format
 * ("llama2c") and m->flags (EL_MODEL_ROPE_INTERLEAVED). */
el_status el_llama2c_read(el_model *m);

/* Opens one more file into m (EL_E_USAGE past EL_MAX_FILES); *index gets its index. */
el_status el_model_add_file(el_model *m, const char *path, uint32_t *index);
/* Appends a tensor (name copied). For loaders that synthesise tables (llama2.c). */
el_status el_tensor_table_push(el_tensor_table *t, const el_tensor *tensor);
/* A file that travels with the model (tokenizer.json, vocab.txt, merges.txt, ...): for a
 * folder or file model, name next to the model's first file; for a packed image, the copy
 * stored inside it. True with a path el_file/fopen can open in path (capacity cap); false
 * when the model has no such file. Families find side files only through this. */
bool el_model_side_file(const el_model *m, const char *name, char *path, size_t cap);
/* The GGUF header holding the model's tokenizer.* metadata: the model's own (a GGUF file)
 * or the tokenizer.gguf stored in an image packed from one; NULL otherwise. */
const struct el_gguf *el_model_tok_gguf(const el_model *m);
/* Index of a tensor by exact name, or -1. Linear; open-time only. */
long el_model_find(const el_model *m, const char *name);

#endif /* EL_MODEL_IMPL_H */
