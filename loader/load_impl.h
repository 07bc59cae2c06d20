/* load_impl.h - pieces shared by the plan and the streaming loader (internal): the
 * weights layout rule and the dtype conversion decisions, so both compute the same. */
#ifndef EL_LOAD_IMPL_H
#define EL_LOAD_IMPL_H

#include "loader/model_impl.h"

#define EL_TENSOR_ALIGN 64u  /* every tensor starts on a cache line in the weights region */
#define EL_STAGING_SLOTS 2u  /* double buffering: the I/O thread fills one, the caller drains one */
/* Populating ahead of a reader starts on the next multiple of this (the x86-64 huge page),
 * so the two threads never fault the same huge page. */
#define EL_POPULATE_GAP (2u * 1024u * 1024u)

/* True if a tensor stored as `from` is converted when loading with target dtype
 * (float types only; EL_DT_NONE keeps everything as stored). */
bool el_plan_converts(el_dtype from, el_dtype target);
/* The dtype a tensor stored as `from` has in the arena. */
el_dtype el_plan_loaded_dtype(el_dtype from, el_dtype target);
/* The dtype tensor t has in the arena with target: a float target converts float tensors
 * (el_plan_loaded_dtype); a quantized target (Q8_0, Q4_0, Q4_1, Q5_0, Q5_1) takes the float
 * matrices whose rows are whole blocks and that are not transposed at load, and leaves the
 * rest as stored (norms, biases, 1-D tensors, rows that are not whole blocks). */
el_dtype el_plan_tensor_dtype(const el_tensor *t, el_dtype target);
/* Bytes the tensor takes in the arena. */
el_status el_plan_tensor_bytes(const el_tensor *t, el_dtype target, uint64_t *out);

/* Bytes a planned or loaded tensor takes in the arena (its loaded_dtype; validated when
 * planned, so 0 only for a tensor no plan accepted). */
uint64_t el_tensor_loaded_bytes(const el_tensor *t);

/* Converts n elements from src (any alignment) to dst (float types; same type = copy, where
 * n counts blocks of a block type; a float type to Q8_0/Q4_0/Q4_1/Q5_0/Q5_1 quantizes n, a
 * multiple of 32, as gguf-py does). */
void el_convert(el_dtype from, const void *src, el_dtype to, void *dst, uint64_t n);
/* el_convert's vector paths (loader/convert.c): f16 -> f32, f32 -> f16, bf16 -> f32 where
 * the CPU has them, bit for bit the scalar conversions; false = not handled, nothing done. */
bool el_convert_fast(el_dtype from, const void *src, el_dtype to, void *dst, uint64_t n);
/* A 32 x 32 block of 4-byte elements, source rows ld elements apart, transposed into dst
 * (rows ldd elements apart) as they are or, f16 = true, f32 rounded to f16 (as
 * el_fp32_to_fp16); false = no vector path here, nothing done. */
bool el_transpose32_fast(const void *src, uint64_t ld, void *dst, uint64_t ldd, bool f16);

/* True if the tensor goes through the staging slots when loading with target dtype (a
 * dtype conversion, or transpose2d); false = read straight into place (unless O_DIRECT). */
bool el_plan_staged(const el_tensor *t, el_dtype target);
/* For a transpose2d tensor: src holds elements [elem0, elem0 + count) of the stored
 * row-major [rows, cols] matrix (dtype from, any alignment); each is converted to `to` and
 * written to its place in dst, the start of the whole [cols, rows] transpose. Cache-blocked
 * for the whole stored rows of the piece. */
void el_convert_transposed(el_dtype from, const void *src, el_dtype to, void *dst,
                           uint64_t rows, uint64_t cols, uint64_t elem0, uint64_t count);

/* Staged pieces, shared by the resident load (load.c) and the layer ring (stream.c). */
/* Elements (blocks of a block type) of t per piece of at most room stored bytes: whole
 * stored rows of a transposed tensor when one fits, whole blocks when quantized. */
uint64_t el_load_piece_elems(const el_tensor *t, uint64_t room);
/* Converts (or transposes) stored elements [elem, elem + count) of t, at src, into their
 * place in t's arena bytes, which start at dst (t->loaded_dtype). */
void el_load_place(const el_tensor *t, const void *src, uint8_t *dst, uint64_t elem,
                   uint64_t count);
/* Reads [off, off + n) of a file into buf through its O_DIRECT descriptor df: the aligned
 * window lands at buf (chunk + one page of room); the part past the file's last whole
 * page comes through the buffered descriptor bf. *skew: off's place in buf. */
el_status el_load_read_direct(el_file *df, el_file *bf, uint8_t *buf, uint64_t off, uint64_t n,
                              uint64_t *skew);

#endif /* EL_LOAD_IMPL_H */
