/* gguf_write.h - pack's GGUF output (internal; loader/formats/gguf_write.c): a decoder model
 * (safetensors, llama2.c, .elimg, GGUF) written as a GGUF v3 file that llama.cpp loads, with
 * the names, layouts and metadata keys its convert_hf_to_gguf.py writes. */
#ifndef EL_GGUF_WRITE_H
#define EL_GGUF_WRITE_H

#include "edgeload.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct el_gguf_write_params {
    el_dtype dtype;             /* EL_DT_NONE = as stored; f32/f16/bf16/q8_0/q4_0/q4_1/q5_0/q5_1 */
    const char *tokenizer_path; /* as el_model_open_params; a tokenizer.json here is written */
    uint64_t src_offset;        /* source is an .elimg at this offset */
    bool write_through;         /* as el_image_pack_params */
} el_gguf_write_params;

typedef struct el_gguf_write_stats {
    uint64_t file_bytes;        /* the GGUF file */
    uint64_t header_bytes;      /* magic .. the data section (metadata and tensor infos) */
    uint64_t buffer_bytes;      /* the tensor buffers' peak (three buffers of one row group) */
    uint32_t tensors, quantized, kept; /* kept: 2-D tensors left as stored under a Q* dtype */
    uint32_t kv;                /* metadata entries */
    char arch[16];              /* general.architecture */
    char tokenizer[32];         /* "gpt2 (pre: llama-bpe)", "llama", "none" */
} el_gguf_write_stats;

/* Writes the model at src as a GGUF v3 file at out, through the pack output machinery
 * (temporary file, fsync, rename; out refused when a directory, a device without
 * write_through, or the model's own file). Tensors stream one row group at a time (a few
 * MiB; one head of rows at least for llama's permuted q/k); an .elimg source is loaded
 * into an arena first. EL_E_UNSUPPORTED names what GGUF or llama.cpp cannot express. */
el_status el_gguf_write(const char *src, const char *out, const el_gguf_write_params *p,
                        el_gguf_write_stats *stats);

/* The tokenizer.* metadata of the GGUF model m as a GGUF v3 file of its own (no tensors):
 * what `pack` stores in an .elimg as "tokenizer.gguf". *out is malloc'ed (caller frees). */
el_status el_gguf_tokenizer_blob(const el_model *m, uint8_t **out, size_t *len);

#endif /* EL_GGUF_WRITE_H */
