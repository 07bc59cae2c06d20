/* gpu.h - what the machine's GPUs are, asked of the CUDA runtime in the CUDA module
 * (platform/gpu.c opens it at the first call that asks for a GPU; in builds without the
 * CUDA backend, or without the module, those calls say why). Device kinds are decided
 * from attributes, never from board names: integrated (Jetson: CPU and GPU share DRAM)
 * or discrete, and whether managed memory may be touched by the CPU while kernels run. */
#ifndef EL_PLATFORM_GPU_H
#define EL_PLATFORM_GPU_H

#include "edgeload.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct el_gpu_info {
    int index;
    char name[256];
    int cc_major, cc_minor;      /* compute capability: sm_<major><minor> */
    int sm_count;
    bool integrated;             /* cudaDevAttrIntegrated: shares DRAM with the CPU */
    bool managed;                /* cudaDevAttrManagedMemory */
    bool concurrent_managed;     /* cudaDevAttrConcurrentManagedAccess (0 on Jetson) */
    bool pageable_access;        /* cudaDevAttrPageableMemoryAccess */
    uint64_t total_bytes;        /* device memory (integrated: the shared DRAM) */
    uint64_t free_bytes;         /* discrete: cudaMemGetInfo; integrated: MemAvailable from
                                    /proc/meminfo (cudaMemGetInfo undercounts there) */
    int mem_bus_bits;            /* memory bus width (0 if unknown) */
    double mem_clock_khz;        /* memory clock (0 if unknown) */
} el_gpu_info;

/* True when this build has the CUDA backend compiled in. */
bool el_gpu_built(void);
/* Number of usable GPUs into *n. *n = 0 with EL_OK when the driver reports no device;
 * EL_E_NODEV with the reason (no CUDA backend in this build, no driver, a driver older than
 * the runtime) when the runtime cannot be asked at all. */
el_status el_gpu_count(int *n);
/* Facts about GPU i (0 <= i < count). Creates the device's context (slow: ~100 ms+). */
el_status el_gpu_info_get(int i, el_gpu_info *out);
/* The runtime and driver versions as "runtime 13.0, driver 12.8" (or why not) into buf. */
const char *el_gpu_versions(char *buf, size_t cap);
/* EL_OK if the build's kernels can run on the current GPU; else EL_E_NODEV naming the
 * architectures built (el_cuda_probe), or why there is no module. */
el_status el_gpu_probe(void);
/* The CUDA op table (kernels/ops.h) once the module is loaded (a GPU was asked for), else
 * NULL. */
struct el_ops;
const struct el_ops *el_gpu_ops(void);

/* ---- memory: the arena's CUDA reservations (made at arena init only) ---------------- */

typedef enum el_gpu_mem {
    EL_GPU_MEM_DEVICE,  /* cudaMalloc */
    EL_GPU_MEM_MANAGED, /* cudaMallocManaged, attached to the host (cudaMemAttachHost) until
                           el_gpu_attach gives it to a stream */
    EL_GPU_MEM_PINNED,  /* cudaHostAlloc: page-locked host memory for async copies */
} el_gpu_mem;

/* Reserves bytes of kind k on GPU gpu (the calling thread's current device becomes gpu).
 * EL_E_NODEV naming the kind, the requested bytes and the device's free bytes when the
 * runtime refuses, or when the build has no CUDA. */
el_status el_gpu_reserve(int gpu, el_gpu_mem k, uint64_t bytes, void **out);
void el_gpu_release(el_gpu_mem k, void *p);
/* Reservations made so far by this process (every kind): tests check that nothing after
 * arena init reserves. */
uint64_t el_gpu_reserve_count(void);

/* ---- streams and copies (the session's and the loader's) ----------------------------- */

typedef struct el_gpu_stream el_gpu_stream; /* a cudaStream_t */

el_status el_gpu_stream_create(el_gpu_stream **out);
void el_gpu_stream_destroy(el_gpu_stream *st);
/* Waits for everything queued on st; a kernel fault surfaces here as EL_E_NODEV. */
el_status el_gpu_sync(el_gpu_stream *st);
/* Queues a copy of bytes (any direction; pointers say which) on st. */
el_status el_gpu_copy_async(void *dst, const void *src, uint64_t bytes, el_gpu_stream *st);
/* Queues a strided copy: height rows of width bytes, dst rows dpitch apart, src spitch. */
el_status el_gpu_copy2d_async(void *dst, uint64_t dpitch, const void *src, uint64_t spitch,
                              uint64_t width, uint64_t height, el_gpu_stream *st);

/* Events: a mark on a stream the host can wait for (the loader's staging ring). */
typedef struct el_gpu_event el_gpu_event;
el_status el_gpu_event_create(el_gpu_event **out);
void el_gpu_event_destroy(el_gpu_event *e);
el_status el_gpu_event_record(el_gpu_event *e, el_gpu_stream *st);
el_status el_gpu_event_wait(el_gpu_event *e);
/* Makes work queued on st after this call wait, on the GPU, for e's latest record
 * (cudaStreamWaitEvent; an event never recorded is complete). The host does not wait. */
el_status el_gpu_stream_wait(el_gpu_stream *st, el_gpu_event *e);

/* Page-locks the pages holding bytes at p (host memory the arena already reserved: no new
 * memory) so copies to and from it are direct DMA, truly asynchronous, and capturable;
 * *base: what to give el_gpu_host_unregister. EL_E_NODEV with the runtime's reason. */
el_status el_gpu_host_register(void *p, uint64_t bytes, void **base);
void el_gpu_host_unregister(void *base);

/* ---- CUDA graphs: one decode step captured once, replayed per step ------------------ */

typedef struct el_gpu_graph el_gpu_graph; /* a cudaGraphExec_t */
/* Starts capturing st (cudaStreamCaptureModeThreadLocal: until the capture ends the runtime
 * refuses synchronisation, allocation and pageable copies on this thread; other threads'
 * sessions and loads are not disturbed, as they would be in global mode). */
el_status el_gpu_capture_begin(el_gpu_stream *st);
/* Ends st's capture (always call it after el_gpu_capture_begin) and, when out is not NULL,
 * instantiates what was captured into *out (the template graph is destroyed). The driver
 * keeps the executable graph in memory of its own (host and device, outside the arena):
 * destroy it with el_gpu_graph_destroy. Refused captures say why (EL_E_NODEV). */
el_status el_gpu_capture_end(el_gpu_stream *st, el_gpu_graph **out);
/* Queues one replay of g on st. */
el_status el_gpu_graph_launch(el_gpu_graph *g, el_gpu_stream *st);
void el_gpu_graph_destroy(el_gpu_graph *g);

/* ---- managed memory: stream attachment, placement ------------------------------------- */

/* How a managed block (the start of an EL_GPU_MEM_MANAGED reservation) is attached, as
 * cudaStreamAttachMemAsync: what matters on a device without concurrentManagedAccess
 * (Jetson), where the CPU may not touch managed memory a running kernel may use. */
typedef enum el_gpu_attach_to {
    EL_GPU_ATTACH_HOST,   /* the CPU may use it while any stream runs; no kernel may */
    EL_GPU_ATTACH_STREAM, /* only st's kernels; the CPU while st is idle */
    EL_GPU_ATTACH_GLOBAL, /* every stream's kernels; the CPU only while the GPU is idle */
} el_gpu_attach_to;

/* Queues on st the attachment of the whole block p; it takes effect when st reaches it
 * (synchronise st before the CPU relies on it). */
el_status el_gpu_attach(void *p, el_gpu_attach_to to, el_gpu_stream *st);
/* Where GPU gpu has concurrentManagedAccess (discrete GPUs): advises bytes of managed
 * memory at p read-mostly and preferably on gpu, and queues their prefetch to gpu on st;
 * *done = true. Elsewhere (Jetson, where the runtime refuses both) does nothing, *done =
 * false. */
el_status el_gpu_prefetch(int gpu, const void *p, uint64_t bytes, el_gpu_stream *st, bool *done);

#endif /* EL_PLATFORM_GPU_H */
