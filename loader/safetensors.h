/* safetensors.h - validated tensor tables from safetensors headers, sharded indexes and
 * HF config.json (internal).
 *
 * Parsers work on bytes in memory with their length (so fuzz targets and tests call them
 * directly) and convert cJSON trees into typed structs, freeing cJSON before returning.
 * Nothing is trusted: every count, offset and size is checked (overflow included) before
 * any data is touched. Messages name the file, the field, expected and actual. */
#ifndef EL_SAFETENSORS_H
#define EL_SAFETENSORS_H

#include "edgeload.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EL_ST_HEADER_MAX (100u * 1000u * 1000u) /* bytes of JSON header accepted */
#define EL_JSON_DEPTH_MAX 64                    /* nesting accepted in any JSON we read */
/* JSON values accepted in one document: cJSON spends ~64 bytes per value, so a hostile
 * header of "[0,0,0,...]" under the 100 MB cap would otherwise need ~3 GB while parsing.
 * 4M values (~256 MiB transient) is ~4x a 128k-vocab tokenizer.json. */
#define EL_JSON_VALUES_MAX 4000000u
#define EL_NAME_MAX 512                         /* bytes in a tensor name */

/* One tensor as stored. name is owned by the table that holds it. */
typedef struct el_tensor {
    char *name;                     /* NUL-terminated, valid UTF-8 */
    el_dtype dtype;                 /* as stored */
    uint32_t ndim;
    uint64_t shape[EL_MAX_DIMS];
    uint64_t nbytes;                /* bytes as stored (el_dtype_tensor_bytes) */
    uint32_t file;                  /* index of the file that holds it */
    uint64_t offset;                /* absolute offset of the first byte in that file */
    /* Set by the family's open hook (before the plan): */
    bool transpose2d;               /* stored [rows, cols] = shape, placed in the arena as
                                       [cols, rows] (the transpose), e.g. GPT-2's Conv1D
                                       [in, out] weights placed as [out, in] like nn.Linear.
                                       2-D only; always loaded through staging. */
    uint32_t stream_layer;          /* 1 + the decoder layer the tensor belongs to (layer
                                       streaming reads it into a ring slot); 0: model-level */
    /* Filled by the plan / load: */
    el_dtype loaded_dtype;          /* dtype in the arena */
    uint64_t arena_offset;          /* offset in the weights region */
    void *data;                     /* in the arena after load, else NULL */
    bool x8;                        /* its bytes are in the CPU's 8-row tiles (set by the
                                       first CPU session, el_weights_tile_cpu; cleared by a
                                       load) */
} el_tensor;

/* A growable table (malloc'd at open time, before any arena exists). */
typedef struct el_tensor_table {
    el_tensor *items;
    size_t count;
    size_t capacity;
} el_tensor_table;

void el_tensor_table_free(el_tensor_table *t); /* frees names and items; zeroes t */

/* Validates the 8-byte little-endian header length of a file of file_size bytes.
 * On success *json_len is the JSON length (<= EL_ST_HEADER_MAX, <= file_size - 8). */
el_status el_st_check_prefix(const uint8_t prefix[8], uint64_t file_size, const char *fname,
                             uint64_t *json_len);

/* Parses a safetensors JSON header (json, json_len bytes, not NUL-terminated) of a file
 * whose data section is data_len bytes long and starts at data_start in the file. Appends
 * the tensors to out with file index file_index and absolute offsets. Checks: valid UTF-8
 * names, no duplicates within out, known dtype, ndim <= EL_MAX_DIMS, integral non-negative
 * dims and offsets (up to 2^53), product overflow, end - begin == nbytes, all ranges within
 * data_len, and, sorted by offset, contiguous and non-overlapping, covering data_len.
 * "__metadata__" must be an object of strings. On failure out is left as it was.
 * Appended tensors are in offset order; a data section with bytes after the last tensor is
 * rejected (the format has no padding there). Known safetensors dtypes that edgeload does
 * not handle (F8_E4M3, U32, ...) give EL_E_UNSUPPORTED; anything else wrong EL_E_INVALID,
 * "FILE: tensor 'NAME': field: expected X, got Y". */
el_status el_st_parse_header(const char *json, size_t json_len, uint64_t data_start,
                             uint64_t data_len, uint32_t file_index, const char *fname,
                             el_tensor_table *out);

/* model.safetensors.index.json: the weight map (tensor name -> shard file name). */
typedef struct el_st_index {
    char **shards;          /* unique shard file names (relative, no '/', no ".."), sorted */
    size_t shard_count;
    char **names;           /* tensor names, sorted (strcmp), unique */
    uint32_t *name_shard;   /* shard index of each name */
    size_t name_count;
} el_st_index;

/* {"metadata": {...} (optional), "weight_map": {name: shard, ...}} with at least one entry,
 * each name once, shards plain file names (not empty, no '/' or '\', not "." or "..",
 * valid UTF-8), at most EL_MAX_FILES shards. Everything is malloc'd and owned by *out
 * (free with el_st_index_free); on failure *out is unchanged. */
el_status el_st_index_parse(const char *json, size_t json_len, const char *fname,
                            el_st_index *out);
void el_st_index_free(el_st_index *idx); /* NULL or zeroed is fine; zeroes idx */
/* After all shards are parsed into t: every tensor in t must be in the index, in the shard
 * the index names, and every index entry must exist in t.
 * Contract: a tensor's file field is its shard's position in idx->shards (sorted order), so
 * the caller opens idx->shards[i] as file i. A tensor in two shards is caught earlier, by
 * el_st_parse_header's duplicate check when the second shard is parsed into t. */
el_status el_st_index_check(const el_st_index *idx, const el_tensor_table *t,
                            const char *fname);

/* HF config.json, the fields any family needs; absent fields are 0 / "" / false with the
 * matching has_ flag cleared. Families read what they need and report what is missing. */
typedef struct el_config {
    char model_type[32];            /* "llama", "gpt2", "bert", ... */
    char architecture[64];          /* architectures[0] */
    char hidden_act[32];            /* hidden_act / activation_function */
    char position_embedding_type[32]; /* BERT: "absolute" ("" = absent = absolute) */
    char problem_type[48];          /* classifier heads: "single_label_classification", ... */
    uint32_t hidden_size;           /* hidden_size | n_embd | dim */
    uint32_t intermediate_size;     /* intermediate_size | n_inner (0 = 4 * hidden) */
    uint32_t num_layers;            /* num_hidden_layers | n_layer */
    uint32_t num_heads;             /* num_attention_heads | n_head */
    uint32_t num_kv_heads;          /* num_key_value_heads (0 = num_heads) */
    uint32_t head_dim;              /* head_dim (0 = hidden / heads) */
    uint32_t vocab_size;
    uint32_t max_positions;         /* max_position_embeddings | n_positions */
    uint32_t type_vocab_size;       /* BERT token types */
    double norm_eps;                /* rms_norm_eps | layer_norm_epsilon | layer_norm_eps */
    double rope_theta;              /* 0 = 10000 */
    char rope_type[16];             /* "" / "default", "linear", "llama3" (others refused) */
    double rope_factor;             /* linear, llama3 */
    double rope_low_freq_factor;    /* llama3 */
    double rope_high_freq_factor;   /* llama3 */
    double rope_original_max_pos;   /* llama3: original_max_position_embeddings */
    bool tie_word_embeddings;
    bool has_tie_word_embeddings;
    bool attention_bias;            /* Llama: q, k, v and o projections have biases */
    bool mlp_bias;                  /* Llama: gate, up and down projections have biases */
    bool use_sliding_window;        /* Qwen2: sliding_window applies only when true */
    bool bidirectional;             /* use_bidirectional_attention (Gemma 3 encoders) */
    uint32_t sliding_window;        /* attention window in tokens (0 = none / null) */
    uint32_t max_window_layers;     /* Qwen2: layers from here on use the window */
    uint32_t sliding_window_pattern; /* Gemma 3 without layer_types: every Nth layer global */
    uint32_t n_layer_types;         /* layer_types entries (0 = absent) */
    uint64_t sliding_layers[64];    /* bit i: layer_types[i] is "sliding_attention" */
    double rope_local_theta;        /* Gemma 3 sliding layers' RoPE base (0 = absent) */
    double query_pre_attn_scalar;   /* Gemma: scores scaled by its -1/2 power (0 = absent) */
    char softcapping[40];           /* a logit softcapping key that is set ("" = none) */
    int64_t bos_token_id;           /* -1 if absent */
    int64_t eos_token_id;           /* -1 if absent (first of a list) */
    int64_t pad_token_id;           /* -1 if absent */
    uint32_t num_labels;            /* id2label entries */
    char (*id2label)[64];           /* num_labels names, malloc'd; NULL if none */
} el_config;

/* Parses config.json text. Unknown fields are ignored; present fields of the wrong type or
 * range give EL_E_INVALID naming the field. null counts as absent; of repeated keys the
 * last wins (as in Python's json). Integers: 0..UINT32_MAX; token ids: -1..UINT32_MAX or a
 * list of them (the first is taken); model_type and hidden_act longer than their buffers
 * are rejected, architectures[0] and id2label names are cut at a UTF-8 boundary. id2label
 * keys must be exactly "0".."n-1" (n <= 4096). On failure *out is unchanged; on success
 * the caller frees it with el_config_free. */
el_status el_config_parse(const char *json, size_t json_len, const char *fname, el_config *out);
void el_config_free(el_config *c); /* frees id2label; NULL is fine */

/* Shared JSON helpers (loader/json_util.c). */
/* EL_E_INVALID unless json nests at most max_depth deep (scanned outside strings). */
el_status el_json_check_depth(const char *json, size_t len, int max_depth, const char *fname);
/* True if s[0..n) is valid UTF-8 (no overlongs, no surrogates, <= U+10FFFF). */
bool el_utf8_valid(const char *s, size_t n);

struct cJSON;
/* Parses json (len bytes, need not be NUL-terminated; nothing past len is read) into a
 * cJSON tree that the caller frees with cJSON_Delete. Before cJSON sees the bytes it checks
 * nesting (EL_JSON_DEPTH_MAX) and every string (terminated, valid escapes, no raw control
 * byte, no \u0000 and no invalid \u digits, which cJSON would silently turn into a NUL that
 * truncates the string); after, that only whitespace follows the value. EL_E_INVALID with
 * the byte position otherwise; *out is NULL on failure. */
el_status el_json_parse(const char *json, size_t len, const char *fname, struct cJSON **out);
/* True if item is a number that is integral and in [0, max]; max <= 2^53 (beyond that a
 * double no longer holds every integer). Never uses cJSON's valueint (clamped at INT_MAX). */
bool el_json_get_u64(const struct cJSON *item, uint64_t max, uint64_t *out);
/* A short description of item for "got ..." in messages: a number ("1.5"), a quoted
 * string ("'abc'", made printable and cut), or the type ("array", "object", "null", ...).
 * Writes into buf (capacity cap) and returns it. */
const char *el_json_describe(const struct cJSON *item, char *buf, size_t cap);
/* s[0..n) made safe for a one-line message: control bytes, quotes and (if s is not valid
 * UTF-8) bytes >= 0x80 become \xHH; cut with "..." to fit cap. Returns buf. */
const char *el_json_printable(const char *s, size_t n, char *buf, size_t cap);

#endif /* EL_SAFETENSORS_H */
