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

/* Managed arenas (no-ops for host and device memory). The CUDA block is attached to the
 * host from el_arena_init on: the loader writes it from the CPU while other models' kernels
 * run, even without concurrentManagedAccess (Jetson). A session or encoder attaches it to
 * its stream at start (queued on stream: cudaMemAttachSingle; a second holder at once
 * makes it global) and gives it back to the host at its end (queued on its stream, before
 * that stream's last synchronisation). */
el_status el_arena_gpu_attach(el_arena *a, void *stream);
el_status el_arena_gpu_detach(el_arena *a, void *stream);
/* True while a session or encoder holds the managed block (the loader refuses then). */
bool el_arena_gpu_held(const el_arena *a);
/* The weights region's used bytes advised read-mostly on the arena's GPU and prefetched
 * there on stream, where the device has concurrentManagedAccess (*done = true); elsewhere
 * (Jetson: the runtime refuses device prefetches) nothing (*done = false). */
el_status el_arena_gpu_prefetch_weights(el_arena *a, void *stream, bool *done);

#endif /* EL_ARENA_H */
