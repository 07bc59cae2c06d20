/* arena.h - allocation inside the one arena (internal): aligned bump allocation per
 * region, scratch marks, and the raw region bounds the loader and kernels write to.
 * Nothing here calls malloc; exhaustion is a status with requested and available bytes. */
#ifndef EL_ARENA_H
#define EL_ARENA_H

#include "edgeload.h"

#include <stddef.h>
#include <stdint.h>

#define EL_ALIGN_DEFAULT 64u   /* cache line: tensors, activations */
#define EL_ALIGN_IO 4096u      /* page: O_DIRECT buffers, region starts */

/* Allocates bytes (> 0) from region r aligned to align (a power of two, <= 4096).
 * EL_E_NOFIT with "region R: requested N bytes, available M" if it does not fit;
 * *out untouched then. The memory is not zeroed. */
el_status el_arena_alloc(el_arena *a, el_region r, uint64_t bytes, size_t align, void **out);
/* el_arena_alloc, then zeroed. */
el_status el_arena_calloc(el_arena *a, el_region r, uint64_t bytes, size_t align, void **out);

/* Scratch-style marks: mark returns the region's current offset; release rewinds to it
 * (a mark from the same region, not newer than the current offset). */
uint64_t el_arena_mark(const el_arena *a, el_region r);
void el_arena_release(el_arena *a, el_region r, uint64_t mark);
void el_arena_reset(el_arena *a, el_region r); /* release to 0 */

/* Where the GPU regions (weights, kv, act) live: host memory or CUDA memory. */
el_memory el_arena_memory(const el_arena *a);

/* Region bounds: base pointer (4 KiB aligned) and capacity in bytes. */
void *el_arena_region_base(const el_arena *a, el_region r);
uint64_t el_arena_region_capacity(const el_arena *a, el_region r);
uint64_t el_arena_region_available(const el_arena *a, el_region r);

#endif /* EL_ARENA_H */
