/* gguf.h - GGUF (llama.cpp's model file, v2 and v3, little-endian) read and validated
 * completely before any tensor byte is touched (internal).
 *
 * The parse reads through a bounded cursor over a random-access source (a file, or bytes in
 * memory for tests and the fuzzer). Every count and length is checked against the bytes
 * left in the file before it is used; everything the parse keeps on the heap (keys, tensor
 * names, top-level string values, the two tables, sort scratch) is charged against
 * EL_GGUF_HEAP_MAX, so a hostile file cannot make it allocate more than that. Array values
 * are validated by walking them, not kept: their elements are read back on demand through
 * el_gguf_iter. Messages: "FILE: FIELD: expected X, got Y"; every failure is EL_E_INVALID
 * except a big-endian or v1 file (EL_E_UNSUPPORTED) and I/O errors (EL_E_IO). */
#ifndef EL_GGUF_H
#define EL_GGUF_H

#include "edgeload.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define EL_GGUF_MAX_TENSORS 65536u        /* tensor infos accepted */
#define EL_GGUF_MAX_KV 65536u             /* metadata entries accepted */
#define EL_GGUF_MAX_DEPTH 4               /* levels of arrays in one value (4 = an array of
                                             arrays of arrays of arrays) */
#define EL_GGUF_KEY_MAX 1024u             /* bytes in a metadata key */
#define EL_GGUF_NAME_MAX 255u             /* bytes in a tensor name (ggml's own limit is 63) */
#define EL_GGUF_MAX_DIMS 4
#define EL_GGUF_HEAP_MAX (64ull << 20)    /* heap the parse may hold, all of it together */
#define EL_GGUF_DEFAULT_ALIGNMENT 32u

/* Metadata value types, as numbered in the file. */
enum {
    EL_GGUF_U8, EL_GGUF_I8, EL_GGUF_U16, EL_GGUF_I16, EL_GGUF_U32, EL_GGUF_I32, EL_GGUF_F32,
    EL_GGUF_BOOL, EL_GGUF_STRING, EL_GGUF_ARRAY, EL_GGUF_U64, EL_GGUF_I64, EL_GGUF_F64,
    EL_GGUF_TYPE_COUNT
};

/* A random-access byte source. read fills dst[0..n) from off (within size) or fails. */
typedef struct el_gguf_source {
    el_status (*read)(void *ctx, void *dst, size_t n, uint64_t off);
    void *ctx;
    uint64_t size;       /* bytes */
    const char *name;    /* for messages; must outlive the el_gguf */
} el_gguf_source;

/* Bytes in memory as a source (tests, the fuzzer): ctx points at one of these. A read past
 * n fails with EL_E_IO. */
typedef struct el_gguf_mem {
    const uint8_t *p;
    size_t n;
} el_gguf_mem;
el_status el_gguf_mem_read(void *ctx, void *dst, size_t n, uint64_t off);

/* One value. Scalars are in num; strings and arrays are located in the source. */
typedef struct el_gguf_value {
    uint32_t type;       /* EL_GGUF_* */
    uint32_t elem_type;  /* arrays: the elements' type */
    union {
        uint64_t u;      /* U8..U64 and BOOL (0 or 1) */
        int64_t i;       /* I8..I64 */
        double f;        /* F32, F64 */
    } num;
    uint64_t len;        /* string: bytes; array: elements */
    uint64_t offset;     /* string: its first byte; array: its first element (absolute) */
    uint64_t size;       /* string: len; array: encoded bytes of all its elements */
    const char *str;     /* top-level strings: NUL-terminated copy (owned by the el_gguf;
                            may hold an inner NUL: compare with len); else NULL */
} el_gguf_value;

typedef struct el_gguf_kv {
    char *key;           /* NUL-terminated, valid UTF-8 */
    el_gguf_value v;
} el_gguf_kv;

typedef struct el_gguf_tensor {
    char *name;          /* as in the file, NUL-terminated, valid UTF-8 */
    char *el_name;       /* the name in the model's tensor table (mapped to the Hugging
                            Face name for supported architectures), set by the model glue */
    uint32_t type;       /* GGML type id, known (el_gguf_type_name != NULL) */
    uint32_t n_dims;     /* 1..4 */
    uint64_t ne[EL_GGUF_MAX_DIMS]; /* elements per dimension, ne[0] innermost (a row) */
    uint64_t offset;     /* absolute offset of the first byte, a multiple of the alignment
                            from the data section's start */
    uint64_t nbytes;
} el_gguf_tensor;

typedef struct el_gguf {
    el_gguf_source src;
    uint32_t version;        /* 2 or 3 */
    uint64_t alignment;      /* general.alignment or 32; a power of two */
    uint64_t data_offset;    /* start of the data section (absolute) */
    el_gguf_kv *kv;          /* n_kv, in file order, keys unique */
    size_t n_kv;
    el_gguf_tensor *tensors; /* n_tensors, in file order, names unique, ranges disjoint */
    size_t n_tensors;
    uint64_t heap_bytes;     /* charged against EL_GGUF_HEAP_MAX */
    el_gguf_tensor **by_el_name; /* the n_tensors tensors sorted by el_name (set by the
                                    model glue; NULL before) */
    /* Set by the model glue: why this file cannot be planned (unsupported architecture,
     * block type, RoPE scaling); "" = it can. Inspect still works. */
    el_status refuse_status;
    char refuse[400];
} el_gguf;

/* Parses and validates the whole header of src. *out is owned by the caller
 * (el_gguf_free); on failure *out is NULL and nothing is held. */
el_status el_gguf_parse(const el_gguf_source *src, el_gguf **out);
void el_gguf_free(el_gguf *g); /* NULL is fine */

/* The entry with this key, or NULL. */
const el_gguf_kv *el_gguf_find(const el_gguf *g, const char *key);

/* Reading an array's elements in order (nested arrays come back as array values that can
 * be iterated in turn). The iterator holds a small read cache. */
typedef struct el_gguf_iter {
    const el_gguf *g;
    uint32_t type;           /* element type */
    uint64_t left;           /* elements not yet returned */
    uint64_t pos;            /* offset of the next element */
    uint64_t cache_off;      /* source offset of cache[0] */
    size_t cache_len;
    uint8_t cache[4096];
} el_gguf_iter;

void el_gguf_iter_init(const el_gguf *g, const el_gguf_value *arr, el_gguf_iter *it);
/* The next element into *out (strings: len and offset, str NULL). EL_E_USAGE past the
 * end; EL_E_IO / EL_E_INVALID if the source changed since the parse. */
el_status el_gguf_iter_next(el_gguf_iter *it, el_gguf_value *out);
/* Copies up to cap - 1 bytes of a string value into buf and terminates it; *len (may be
 * NULL) gets the bytes copied. */
el_status el_gguf_read_string(const el_gguf *g, const el_gguf_value *v, char *buf, size_t cap,
                              size_t *len);
/* The same for a string the iterator just returned: from its cache when the bytes are
 * there (they usually are), else as el_gguf_read_string. */
el_status el_gguf_iter_read_string(const el_gguf_iter *it, const el_gguf_value *v, char *buf,
                                   size_t cap, size_t *len);

/* GGML tensor types (ids as in ggml.h; removed ids are unknown). */
const char *el_gguf_type_name(uint32_t type);          /* "Q4_1"; NULL if unknown */
/* Elements per block and bytes per block; false if unknown. */
bool el_gguf_type_block(uint32_t type, uint32_t *block, uint32_t *bytes);
const char *el_gguf_value_type_name(uint32_t type);    /* "u32", "string", ...; "?" */
/* The el_dtype a GGML type loads as, or EL_DT_NONE when edgeload cannot load it yet (the
 * block types: the one place to extend when they gain dtypes). */
el_dtype el_gguf_dtype(uint32_t type);

struct el_model;
/* With m->files[0] open and starting with "GGUF": parses it (m->gguf), fills m->tensors
 * (row-major shapes, names mapped for supported architectures), m->format ("gguf") and,
 * for supported architectures, m->config and m->flags. Other architectures open with
 * their GGUF names and no config, and refuse to plan (refuse above). */
el_status el_gguf_model_open(struct el_model *m);
/* The GGUF tensor name (llama.cpp's) of the Hugging Face tensor name hf for the GGUF
 * architecture arch ("llama", "qwen2", "gemma3", "phi3", "gpt2") into out (cap bytes): the
 * inverse of the mapping the reader applies (GPT-2's "transformer." prefix is dropped).
 * False when hf is not one of arch's tensors. */
bool el_gguf_name_from_hf(const char *arch, const char *hf, char *out, size_t cap);
/* EL_OK if m (a GGUF model) can be planned and loaded, else the recorded refusal. */
el_status el_gguf_plan_check(const struct el_model *m);
/* The stored type name of a model tensor: the GGML name for GGUF models, else the dtype. */
const char *el_gguf_tensor_type_name(const struct el_model *m, size_t i);

#endif /* EL_GGUF_H */
