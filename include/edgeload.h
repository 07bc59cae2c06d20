/* edgeload.h - the public API: open a model (headers only), plan, reserve one arena, load
 * weights into it, run. The only header users include.
 *
 * Ownership, once for all: every pointer returned by an el_* function is owned by the
 * library object it came from and stays valid until that object's _close/_deinit; strings
 * passed in are copied when they must outlive the call. Every _deinit/_close accepts NULL.
 * Fallible functions return el_status; el_last_error() then holds a one-line message (what
 * was needed, what was there, what to do) for the calling thread. */
#ifndef EDGELOAD_H
#define EDGELOAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The exported API. Every declaration between EL_API_BEGIN and EL_API_END (this header
 * and edgeload_session.h) is visible in libedgeload.so; the library is compiled with
 * -fvisibility=hidden, so everything else stays internal. EL_API marks one declaration. */
#if defined(__GNUC__) || defined(__clang__)
#define EL_API __attribute__((visibility("default")))
#define EL_API_BEGIN _Pragma("GCC visibility push(default)")
#define EL_API_END _Pragma("GCC visibility pop")
#else
#define EL_API
#define EL_API_BEGIN
#define EL_API_END
#endif

#ifdef __cplusplus
extern "C" {
#endif
EL_API_BEGIN

#define EL_VERSION_STRING "0.1.0"

/* ---- status ------------------------------------------------------------------------ */

/* X(name, cli exit code, text). The exit codes are the CLI contract (README). */
#define EL_STATUS_LIST(X)                                                   \
    X(EL_OK, 0, "ok")                                                       \
    X(EL_E_USAGE, 1, "invalid argument")                                    \
    X(EL_E_INVALID, 2, "invalid or corrupt input")                          \
    X(EL_E_UNSUPPORTED, 2, "unsupported input")                             \
    X(EL_E_NOFIT, 3, "does not fit")                                        \
    X(EL_E_NOMEM, 3, "memory reservation failed")                           \
    X(EL_E_IO, 4, "I/O error")                                              \
    X(EL_E_NODEV, 5, "requested device unavailable")                        \
    X(EL_E_TOOLONG, 6, "request longer than the context")

typedef enum el_status {
#define EL_X_ENUM(name, code, text) name,
    EL_STATUS_LIST(EL_X_ENUM)
#undef EL_X_ENUM
    EL_STATUS_COUNT
} el_status;

const char *el_status_str(el_status s);     /* static string; "unknown status" if out of range */
int el_status_exit_code(el_status s);       /* the CLI exit code for s */
const char *el_last_error(void);            /* thread-local message of the last failure ("" if none) */

/* ---- sizes ------------------------------------------------------------------------- */

/* Parses "1.5G", "512M", "4096K", "123" (bytes), optional "iB"/"B" suffix ("1.5GiB"); K/M/G/T
 * are powers of 1024. Strict: no sign, no spaces, no trailing junk, overflow rejected.
 * EL_E_USAGE with a message on failure. */
el_status el_size_parse(const char *text, uint64_t *out_bytes);
/* Human form "1.50 GiB" into buf (always NUL-terminated); returns buf. */
char *el_size_format(uint64_t bytes, char *buf, size_t cap);

/* ---- element types ----------------------------------------------------------------- */

/* X(name, spelling, elements per block, bytes per block). Scalar types are blocks of one
 * element (spelled as safetensors does). The block types are ggml/GGUF's layouts, bit for bit
 * (docs/QUANT.md): blocks of 32 (Q8_0 = f16 d + 32 x i8; Q4_0/Q5_0 = d + 4/5-bit q - 8/16;
 * Q4_1/Q5_1 = d, min + 4/5-bit q) and super-blocks of 256 (Q4_K, Q5_K, Q6_K). A row of a
 * block type holds a whole number of blocks. */
#define EL_DTYPE_LIST(X)                 \
    X(EL_DT_F64, "F64", 1, 8)            \
    X(EL_DT_F32, "F32", 1, 4)            \
    X(EL_DT_F16, "F16", 1, 2)            \
    X(EL_DT_BF16, "BF16", 1, 2)          \
    X(EL_DT_I64, "I64", 1, 8)            \
    X(EL_DT_I32, "I32", 1, 4)            \
    X(EL_DT_I16, "I16", 1, 2)            \
    X(EL_DT_I8, "I8", 1, 1)              \
    X(EL_DT_U8, "U8", 1, 1)              \
    X(EL_DT_BOOL, "BOOL", 1, 1)          \
    X(EL_DT_Q8_0, "Q8_0", 32, 34)        \
    X(EL_DT_Q4_0, "Q4_0", 32, 18)        \
    X(EL_DT_Q4_1, "Q4_1", 32, 20)        \
    X(EL_DT_Q5_0, "Q5_0", 32, 22)        \
    X(EL_DT_Q5_1, "Q5_1", 32, 24)        \
    X(EL_DT_Q4_K, "Q4_K", 256, 144)      \
    X(EL_DT_Q5_K, "Q5_K", 256, 176)      \
    X(EL_DT_Q6_K, "Q6_K", 256, 210)

typedef enum el_dtype {
    EL_DT_NONE = -1, /* "keep as stored" where a target dtype is asked for */
#define EL_X_ENUM(name, str, block, bytes) name,
    EL_DTYPE_LIST(EL_X_ENUM)
#undef EL_X_ENUM
    EL_DT_COUNT
} el_dtype;

const char *el_dtype_name(el_dtype t);      /* "F32", "Q4_K", ...; "NONE" */
/* Bytes per element of a scalar type; 0 for a block type and for EL_DT_NONE (size block
 * types with el_dtype_row_bytes / el_dtype_tensor_bytes). */
size_t el_dtype_size(el_dtype t);
size_t el_dtype_block(el_dtype t);          /* elements per block: 1, 32 or 256; 0 for NONE */
size_t el_dtype_block_bytes(el_dtype t);    /* bytes per block; 0 for NONE */
bool el_dtype_is_block(el_dtype t);         /* a quantized block type (block > 1) */
/* Bytes of cols elements of t into *out; false when cols is not a whole number of blocks
 * or the size overflows 64 bits. */
bool el_dtype_row_bytes(el_dtype t, uint64_t cols, uint64_t *out);
/* Bytes of a tensor of t with shape[ndim] (rows of shape[ndim - 1] elements; ndim 0 is one
 * element). EL_E_INVALID naming the tensor when its rows are not a whole number of blocks
 * or the size overflows. */
el_status el_dtype_tensor_bytes(el_dtype t, const uint64_t *shape, uint32_t ndim,
                                const char *name, uint64_t *out);
/* Case-insensitive: "f32", "F16", "bf16", "fp16", "float32", "q8_0", "q4_k" ... EL_E_USAGE if
 * unknown. */
el_status el_dtype_parse(const char *text, el_dtype *out);

/* ---- memory regions and the arena -------------------------------------------------- */

typedef enum el_region {
    EL_REGION_WEIGHTS, /* persistent model weights */
    EL_REGION_KV,      /* KV cache, per session */
    EL_REGION_SCRATCH, /* host-side session state: session, pool, ids, sampler, tables */
    EL_REGION_STAGING, /* chunk buffers, only while loading */
    EL_REGION_ACT,     /* activations the kernels read and write (GPU memory on CUDA) */
    EL_REGION_TOKENIZER, /* the tokenizer's tables (host memory, never on the GPU): measured
                            at el_model_open, built at el_model_load */
    EL_REGION_COUNT
} el_region;

/* "weights", "kv", "scratch", "staging", "act", "tokenizer" */
const char *el_region_name(el_region r);

typedef struct el_arena el_arena;

enum {
    EL_ARENA_LOCK = 1u << 0,      /* mlock the arena; falls back with a warning */
    EL_ARENA_HUGEPAGES = 1u << 1, /* MAP_HUGETLB, then THP advice; falls back with a warning */
    EL_ARENA_PREFAULT = 1u << 2,  /* touch every page at init so later use cannot fault-OOM */
};

/* Where the arena's memory comes from. On a GPU the regions the kernels touch (weights,
 * kv, act) live in one CUDA allocation; scratch (and staging) stay on the host. */
typedef enum el_memory {
    EL_MEMORY_HOST = 0,     /* one host mapping: the CPU backend */
    EL_MEMORY_CUDA_MANAGED, /* weights|kv|act: one cudaMallocManaged block (integrated GPUs:
                               the loader writes it in place, the kernels read it there) */
    EL_MEMORY_CUDA_DEVICE,  /* weights|kv|act: one cudaMalloc block; staging: pinned host
                               memory (cudaHostAlloc) the loader copies through */
} el_memory;

const char *el_memory_name(el_memory m); /* "host", "managed", "device" */
/* True for the regions that live in GPU memory under a CUDA backing. */
bool el_region_on_gpu(el_region r);

typedef struct el_arena_params {
    uint64_t size;                             /* bytes to reserve, > 0 */
    uint64_t region_bytes[EL_REGION_COUNT];    /* capacity per region; sum <= size; the
                                                  remainder is added to scratch */
    unsigned flags;                            /* EL_ARENA_* (host memory only) */
    el_memory memory;                          /* EL_MEMORY_HOST (0) by default */
    int gpu;                                   /* CUDA device index for CUDA memory */
} el_arena_params;

typedef struct el_region_stats {
    uint64_t capacity; /* bytes */
    uint64_t used;     /* bytes now allocated (alignment padding included) */
    uint64_t peak;     /* highest used */
} el_region_stats;

typedef struct el_arena_stats {
    uint64_t reserved;                         /* bytes mapped at init */
    uint64_t used;                             /* sum of region used */
    uint64_t peak;                             /* sum of region peaks */
    el_region_stats region[EL_REGION_COUNT];
    bool locked;                               /* mlock succeeded */
    bool hugepages;                            /* backed by explicit huge pages */
    el_memory memory;                          /* where weights|kv|act live */
    uint64_t gpu_reserved;                     /* of reserved: bytes in CUDA memory */
} el_arena_stats;

/* The one reservation. Regions are carved in the order weights|kv|scratch|staging|act, each
 * 4 KiB aligned. EL_E_NOMEM (with requested and MemAvailable bytes) if the mapping fails,
 * EL_E_USAGE if the regions do not add up within size. CUDA memory (params->memory): the
 * GPU regions come from one CUDA allocation made here and nowhere else; EL_E_NODEV (with
 * requested and free bytes) when it fails or the build/machine has no CUDA. */
el_status el_arena_init(el_arena **out, const el_arena_params *params);
void el_arena_deinit(el_arena *a);
void el_arena_stats_get(const el_arena *a, el_arena_stats *out);

/* An arena in the caller's memory (a static array, a carve-out reserved at boot, memory
 * mapped elsewhere): the regions and the arena's own descriptor are carved from buf, so
 * nothing is allocated and el_arena_deinit releases nothing (buf must outlive the arena).
 * Host memory only (EL_E_USAGE for CUDA memory and for EL_ARENA_LOCK/HUGEPAGES: lock or map
 * the buffer yourself); EL_ARENA_PREFAULT writes every page once. buf needs no alignment;
 * cap must be at least el_arena_buffer_bytes(params) (the size rounded up to 4 KiB plus
 * EL_ARENA_BUFFER_OVERHEAD), else EL_E_NOFIT with both numbers. */
#define EL_ARENA_BUFFER_OVERHEAD 8192u
el_status el_arena_buffer_bytes(const el_arena_params *params, uint64_t *out);
el_status el_arena_init_buffer(el_arena **out, const el_arena_params *params, void *buf,
                               size_t cap);

/* ---- storage: where the library's reads go ----------------------------------------- */

/* Storage callbacks, SQLite-VFS style: once set, every file the library reads (model
 * files, config.json, tokenizers, sharded indexes, .elimg images) is opened, read and
 * closed through them, so a product can load from a raw partition, a network stream or
 * memory. Names are the paths the library would open: the path given to el_model_open and
 * the files it looks for next to it ("DIR/config.json", "DIR/tok512.bin"). There are no
 * folders: open a Hugging Face folder's model as "DIR/model.safetensors". */
typedef struct el_storage {
    void *user; /* passed to every callback */
    /* Opens name for reading: *handle (given back to read and close) and *size in bytes.
     * Returns 0, or a positive errno value (ENOENT: no such name; the library also asks
     * this to learn whether an optional file such as config.json exists). */
    int (*open)(void *user, const char *name, void **handle, uint64_t *size);
    /* Reads up to n bytes at offset off into buf: the count read (0 only at the end), or a
     * negative errno value. Short reads are continued by the library. May be called from
     * the loader's I/O thread. */
    int64_t (*read)(void *user, void *handle, void *buf, size_t n, uint64_t off);
    void (*close)(void *user, void *handle); /* optional */
} el_storage;

/* Routes the library's reads through *s (copied; s->user must stay valid), or back to the
 * file system when s is NULL. Process-wide, like a registered VFS: set it before opening
 * models, never while one is open or loading. EL_E_USAGE if open or read is NULL. While
 * callbacks are set, O_DIRECT loads (el_load_params.direct_io) are refused with
 * EL_E_UNSUPPORTED: direct I/O needs a file descriptor. */
el_status el_storage_set(const el_storage *s);

/* ---- models ------------------------------------------------------------------------ */

#define EL_MAX_DIMS 8

typedef struct el_model el_model;

typedef struct el_tensor_info {
    const char *name;             /* owned by the model */
    el_dtype dtype;               /* as stored in the file */
    uint32_t ndim;
    uint64_t shape[EL_MAX_DIMS];
    uint64_t nbytes;              /* bytes in the file */
    uint32_t file_index;          /* index into the model's files */
    uint64_t file_offset;         /* absolute offset of the first byte in that file */
    el_dtype loaded_dtype;        /* dtype in the arena (after a load; else planned) */
    const void *data;             /* in the arena after el_model_load, else NULL (a streamed
                                     layer's tensor: its place in the ring's first slot, which
                                     holds whichever layer was read there last) */
    bool cpu_tiles;               /* true once a CPU session has repacked this block-type
                                     matrix in place into the CPU's 8-row tiles (docs/CPU.md,
                                     "8-row tiles"): data then holds the same bytes in another
                                     order; EL_CPU_TILES=0 keeps GGUF's */
} el_tensor_info;

typedef struct el_model_open_params {
    const char *tokenizer_path;   /* optional explicit tokenizer file; NULL = next to model */
    uint64_t offset;              /* byte offset of an .elimg image inside path (a raw
                                     partition or block device); 0 = the start */
} el_model_open_params;

/* Reads headers only: format, config, tensor table (validated completely), no weights.
 * path: a .safetensors file, a folder with model.safetensors or a sharded index,
 * a GGUF file, or a llama2.c checkpoint. params may be NULL. */
el_status el_model_open(const char *path, const el_model_open_params *params, el_model **out);
void el_model_close(el_model *m);

const char *el_model_format(const el_model *m);       /* "safetensors", "safetensors-sharded", "llama2c", "gguf", "elimg" */
const char *el_model_family(const el_model *m);       /* "llama", "mistral", "qwen2", "phi3", "gemma3", "gpt2", "bert", or "generic" */
size_t el_model_file_count(const el_model *m);
const char *el_model_file_path(const el_model *m, size_t i);
uint64_t el_model_file_size(const el_model *m, size_t i);
size_t el_model_tensor_count(const el_model *m);
/* Tensor i in file order; EL_E_USAGE if i is out of range. */
el_status el_model_tensor(const el_model *m, size_t i, el_tensor_info *out);
/* By name; EL_E_INVALID with the name if absent. */
el_status el_model_tensor_find(const el_model *m, const char *name, el_tensor_info *out);

/* ---- the memory plan --------------------------------------------------------------- */

typedef struct el_plan_params {
    uint32_t ctx;                 /* context length in tokens; 0 = the model's maximum */
    uint32_t batch;               /* sequences per pass; 0 = 1 */
    el_dtype dtype;               /* weight dtype in the arena; EL_DT_NONE = as stored */
    uint64_t chunk_bytes;         /* I/O chunk; 0 = 4 MiB */
    el_memory memory;             /* the arena's backing; EL_MEMORY_CUDA_DEVICE adds the
                                     pinned upload buffers to staging */
    el_dtype kv_dtype;            /* a decoder's KV cache: EL_DT_F16 (half the bytes; keys
                                     and values rounded to nearest even, attention in f32)
                                     or EL_DT_F32. EL_DT_NONE = the default, F16: the CPU and
                                     CUDA kernels both read it. 0 (what a zero-filled struct,
                                     or one initialised without this member, holds) = F32, the
                                     cache before this member existed. Resolved to F16 or F32
                                     in el_plan.params; encoders have no KV cache. */
} el_plan_params;

typedef struct el_plan {
    el_plan_params params;                   /* as resolved (defaults filled in) */
    uint64_t region_bytes[EL_REGION_COUNT];  /* bytes per region, 4 KiB multiples */
    uint64_t total_bytes;                    /* sum: the arena this model needs */
    uint64_t read_bytes;                     /* weight bytes to read from storage */
    uint64_t tensor_count;
    uint64_t quantized_count;                /* tensors quantized on load (a Q* dtype) */
    uint64_t kept_count;                     /* with a Q* dtype: tensors kept as stored
                                                (norms, biases, 1-D, rows not whole blocks) */
    uint64_t max_input;                      /* bytes of one input text (a prompt, a stdin
                                                line, a conversation); see el_plan_input */
    uint64_t input_bytes;                    /* of scratch: batch buffers of max_input + 1
                                                bytes and one EL_INPUT_PIECE read buffer */
    /* Layer streaming (el_plan_stream; all 0 for a resident plan): */
    bool streamed;                           /* decoder layers are read from storage into a
                                                ring of stream_slots slots every pass */
    uint64_t stream_slot_bytes;              /* one slot: the largest layer's tensors */
    uint64_t stream_pass_bytes;              /* read per forward pass (every layer once): per
                                                decoded token, per prefill chunk */
    uint32_t stream_layers;                  /* the decoder's layers (pinned ones included) */
    uint32_t stream_slots;                   /* slots in the ring (>= 2) */
    uint32_t stream_pinned;                  /* first layers kept resident (not re-read) */
    uint64_t stream_stage_bytes;             /* the ring's staging piece (in the weights
                                                region): layers converted or transposed on
                                                the way, O_DIRECT windows, .elimg chunks */
    bool stream_direct;                      /* layers read with O_DIRECT through the stage
                                                (where the file system allows) */
} el_plan;

/* --stream: resident (the whole model in the arena), streamed, or streamed only when the
 * resident plan does not fit the arena. */
typedef enum el_stream_mode {
    EL_STREAM_OFF = 0,
    EL_STREAM_AUTO,
    EL_STREAM_ON,
} el_stream_mode;
#define EL_STREAM_SLOTS 2u /* layer slots in the ring: one computed, one being read */

/* Input bounds. A text longer than its context can hold in tokens is useless, so the
 * default limit follows the context (a token is rarely over 16 bytes). */
#define EL_INPUT_BYTES_PER_TOKEN 16u
#define EL_INPUT_MIN (4u << 10)             /* the smallest default */
#define EL_INPUT_DEFAULT_MAX (1u << 20)     /* the largest default */
#define EL_INPUT_LIMIT (1ull << 30)         /* the largest max_input */
#define EL_INPUT_PIECE (64u << 10)          /* input is read in pieces of this many bytes */

/* Computes every region from headers, config and params; reads no weight. A model that
 * runs gets the default input bound (el_plan_input with 0). */
el_status el_plan_make(const el_model *m, const el_plan_params *params, el_plan *out);
/* Sets the plan's input bound: max_input bytes per text (0 = ctx * EL_INPUT_BYTES_PER_TOKEN
 * within [EL_INPUT_MIN, EL_INPUT_DEFAULT_MAX]) and moves the input buffers (input_bytes)
 * into scratch and the total. Models that do not run (no family) plan no input.
 * EL_E_USAGE for max_input over EL_INPUT_LIMIT. */
el_status el_plan_input(const el_model *m, uint64_t max_input, el_plan *p);
/* Layer streaming for a plan from el_plan_make (after el_plan_input): EL_STREAM_ON, or
 * EL_STREAM_AUTO when p's total exceeds arena_bytes, re-plans the weights region as the
 * tensors outside the decoder's layers (resident) plus EL_STREAM_SLOTS slots of the
 * largest layer; the layers are then read from storage in every forward pass (CPU only).
 * EL_STREAM_OFF and a fitting AUTO leave p as it is. Layers the load converts (--dtype,
 * quantize-on-load) or transposes (GPT-2's Conv1D) go through the ring's stage; an .elimg
 * image's chunks are decoded into the slots. EL_E_UNSUPPORTED naming the reason: a family
 * without layers (encoders), CUDA memory. */
el_status el_plan_stream(const el_model *m, el_stream_mode mode, uint64_t arena_bytes,
                         el_plan *p);
#define EL_STREAM_SLOTS_MAX 16u
#define EL_STREAM_PIN_AUTO UINT32_MAX /* pin as many layers as the arena holds */
/* el_plan_stream_ex's choices (a zeroed struct: mode off). */
typedef struct el_stream_params {
    el_stream_mode mode;
    uint32_t slots;      /* ring slots, 2 .. EL_STREAM_SLOTS_MAX; 0 = EL_STREAM_SLOTS. Capped
                            at one fewer than the streamed layers (at least 2): as many
                            would keep every layer */
    uint32_t pin_layers; /* the first layers kept resident, read once at load; fewer than the
                            decoder's layers. EL_STREAM_PIN_AUTO: as many as fit arena_bytes
                            next to the ring (none when arena_bytes is UINT64_MAX: no budget) */
    bool direct;         /* layers read with O_DIRECT (the stage holds the aligned windows);
                            a file system that refuses O_DIRECT falls back to buffered reads */
} el_stream_params;
/* el_plan_stream with a ring of sp->slots slots, sp->pin_layers layers resident and
 * O_DIRECT; EL_E_USAGE for slots or pin_layers out of range. */
el_status el_plan_stream_ex(const el_model *m, const el_stream_params *sp, uint64_t arena_bytes,
                            el_plan *p);
/* "off", "auto", "on"; el_stream_parse: EL_E_USAGE if text is none of them. */
const char *el_stream_mode_name(el_stream_mode mode);
el_status el_stream_parse(const char *text, el_stream_mode *out);

/* Checks a plan against an arena size. EL_E_NOFIT when it does not fit, with a message
 * giving needed, available and missing bytes and what would fit ("--dtype f16 needs ...",
 * "--ctx 512 saves ..."). */
el_status el_plan_check(const el_model *m, const el_plan *plan, uint64_t arena_bytes);
/* Arena parameters for a plan in an arena of arena_bytes. */
void el_plan_arena_params(const el_plan *plan, uint64_t arena_bytes, unsigned flags,
                          el_arena_params *out);

/* ---- loading ----------------------------------------------------------------------- */

typedef struct el_load_progress {
    uint64_t bytes_done;          /* bytes read from storage so far */
    uint64_t bytes_total;         /* bytes to read */
    double seconds;               /* since load start */
} el_load_progress;

typedef void (*el_progress_fn)(const el_load_progress *p, void *user);

typedef struct el_load_params {
    bool direct_io;               /* O_DIRECT reads through aligned staging */
    el_progress_fn progress;      /* optional, called from the calling thread */
    void *progress_user;
} el_load_params;

typedef struct el_load_stats {
    uint64_t bytes_read;          /* from storage */
    uint64_t tensors;             /* tensors placed */
    double seconds;               /* wall time of the load */
} el_load_stats;

/* Builds the model's tokenizer into the tokenizer region (before any weight byte: its parse
 * transient, at most 1 MiB of heap freed before returning, never overlaps staging), then
 * streams every tensor into the weights region of an arena made from the same plan
 * (converting dtype as the plan says). Allocates nothing else on the heap. The tokenizer then
 * lives in the arena: close the model before destroying the arena. Once it returns
 * EL_OK, el_model_tensor*() report where each tensor landed. params and stats may be NULL. */
el_status el_model_load(el_model *m, const el_plan *plan, el_arena *a,
                        const el_load_params *params, el_load_stats *stats);

/* ---- process facts ----------------------------------------------------------------- */

typedef struct el_mem_report {
    uint64_t vm_rss;              /* bytes, /proc/self/status VmRSS */
    uint64_t vm_hwm;              /* bytes, VmHWM: the peak resident set */
    uint64_t mem_available;       /* bytes, /proc/meminfo MemAvailable; 0 if unknown */
} el_mem_report;

el_status el_mem_report_get(el_mem_report *out);

/* ---- sessions, tokens, generation ------------------------------------------------- */

#include "edgeload_session.h"

EL_API_END
#ifdef __cplusplus
}
#endif

#endif /* EDGELOAD_H */
