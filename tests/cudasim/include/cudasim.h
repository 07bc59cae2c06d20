/* cudasim.h - what tests can ask the CUDA emulator (tests/cudasim/cudasim.cc) beyond the
 * runtime API: call counts and live bytes per memory kind (for "nothing allocates after
 * init" checks on the GPU paths), the emulated thread order, the queue, the text of the last
 * error. Only in builds with -DEL_CUDA_SIM=ON (EL_CUDA_SIM is defined there). */
#ifndef ELSIM_CUDASIM_H
#define ELSIM_CUDASIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The device name every emulated device reports: never mistaken for a GPU. */
#define ELSIM_DEVICE_NAME "cudasim (simulated, CPU)"

typedef struct elsim_stats {
    /* calls that succeeded since the start or elsim_reset_stats() */
    uint64_t malloc_calls;        /* cudaMalloc */
    uint64_t managed_calls;       /* cudaMallocManaged */
    uint64_t host_alloc_calls;    /* cudaHostAlloc + cudaMallocHost */
    uint64_t host_register_calls; /* cudaHostRegister */
    uint64_t free_calls;          /* cudaFree + cudaFreeHost */
    uint64_t launches;            /* kernel launches queued (valid configurations) */
    uint64_t launch_errors;       /* launches refused (cudaGetLastError reports them) */
    uint64_t kernels_run;         /* launches executed */
    uint64_t blocks_run;          /* blocks executed */
    uint64_t memcpys;             /* cudaMemcpy*, executed */
    uint64_t memsets;             /* cudaMemset*, executed */
    uint64_t syncs;               /* points where queued work ran */
    /* managed memory (calls accepted; a device prefetch or a device-located advice is
     * refused without concurrentManagedAccess, as on Jetson, and not counted) */
    uint64_t attaches[3];         /* cudaStreamAttachMemAsync: [0] global, [1] host, [2] single */
    uint64_t prefetches_device;   /* cudaMemPrefetchAsync to a device */
    uint64_t prefetch_device_bytes;
    uint64_t prefetches_host;     /* cudaMemPrefetchAsync to the host */
    uint64_t advises[7];          /* cudaMemAdvise by advice (1 SetReadMostly, 3
                                     SetPreferredLocation, ...; [0] unused) */
    uint64_t captures;            /* cudaStreamEndCapture calls that returned a graph */
    uint64_t graph_instantiations; /* cudaGraphInstantiate(WithFlags) */
    uint64_t graph_launches;      /* cudaGraphLaunch calls queued */
    uint64_t graph_nodes_run;     /* operations queued by those launches (in launches,
                                     memcpys and memsets only when they run as graph nodes:
                                     `launches` counts the host's kernel launches) */
    uint64_t ops_reordered;       /* queued operations run while an older one stayed
                                     queued (ELSIM_STREAM_ORDER other than submit) */
    /* now (not reset) */
    uint64_t device_bytes;        /* live cudaMalloc bytes (as requested) */
    uint64_t managed_bytes;       /* live cudaMallocManaged bytes */
    uint64_t host_bytes;          /* live cudaHostAlloc / cudaMallocHost bytes */
    uint64_t device_bytes_peak;   /* largest device + managed bytes live at once */
    uint64_t pending;             /* queued operations not yet run */
} elsim_stats;

void elsim_stats_get(elsim_stats *out);
/* Zeroes the call counters (live and peak bytes stay). */
void elsim_reset_stats(void);

/* The order in which a block's warps run between two __syncthreads (each warp as far as it
 * can go before the next), and a warp's lanes between two warp operations. Reverse (the
 * default) runs the last warp and lane first: a thread that reads, without a barrier, what a
 * LOWER thread writes (a broadcast from thread 0) sees stale data. Forward catches reads of
 * what a HIGHER thread writes (tree reductions). Random shuffles both (seeded) every phase.
 * Any order catches a thread writing what another warp has yet to read (a missing barrier
 * before shared memory is reused). ELSIM_ORDER=forward|reverse|random|random:SEED sets it
 * at start. */
typedef enum elsim_order { ELSIM_REVERSE = 0, ELSIM_FORWARD = 1, ELSIM_RANDOM = 2 } elsim_order;
void elsim_set_order(elsim_order order, uint64_t seed);
elsim_order elsim_get_order(void);
const char *elsim_order_name(elsim_order order);

/* Which queued operations a synchronisation runs, and in what order. SUBMIT (the default):
 * everything queued before it, in submission order, so a missing dependency between streams
 * goes unseen whenever submission order happens to satisfy it. The others keep only what
 * CUDA guarantees: a synchronisation runs what it waits for and what that depends on (its
 * stream's earlier work, the records its event waits name, the legacy stream's implicit
 * synchronisation with blocking streams), everything else stays queued, as late as a GPU
 * may leave it (until a synchronisation needs it, cudaDeviceSynchronize, a free or a full
 * queue). What runs, runs in submission order under FIFO; under LIFO a stream runs as far
 * as it can before another starts, the one with the newest ready operation first (a kernel
 * that forgot to wait for a copy runs before it; a copy that forgot to wait for the kernels
 * reading its destination runs ahead of them); under SHUFFLE the next operation is a random
 * ready one (seeded). ELSIM_STREAM_ORDER=submit|fifo|lifo|shuffle|shuffle:SEED sets it at
 * start; switching with work queued is safe (dependencies are always recorded). */
typedef enum elsim_stream_order {
    ELSIM_STREAMS_SUBMIT = 0,
    ELSIM_STREAMS_FIFO = 1,
    ELSIM_STREAMS_LIFO = 2,
    ELSIM_STREAMS_SHUFFLE = 3
} elsim_stream_order;
void elsim_set_stream_order(elsim_stream_order order, uint64_t seed);
elsim_stream_order elsim_get_stream_order(void);
const char *elsim_stream_order_name(elsim_stream_order order);

/* The emulator's explanation of the last failed runtime call of this thread ("" if none). */
const char *elsim_last_message(void);

/* Runs every queued operation, frees everything (as cudaDeviceReset) and reads the ELSIM_*
 * environment again (tests that change it with setenv). */
void elsim_reconfigure(void);

#ifdef __cplusplus
}
#endif

#endif /* ELSIM_CUDASIM_H */
