/* stream.h - layer streaming (internal): the weights layout of a streamed plan (the tensors
 * outside the decoder's layers and the first `pinned` layers resident, the other layers in a
 * ring of slots) and the ring itself: an I/O thread reads the next layers into free slots
 * while a layer is computed from its slot. Layers the load converts or transposes, O_DIRECT
 * windows and .elimg chunks go through the ring's stage (one piece, in the weights region). */
#ifndef EL_STREAM_H
#define EL_STREAM_H

#include "loader/model_impl.h"
#include "platform/gpu.h"

/* A GPU ring's host side: layers are read into one of these while the one before is
 * copied to its GPU slot. */
#define EL_STREAM_HOST_SLOTS 2

/* O_DIRECT layers: the stage is split into up to this many piece buffers, one per reader
 * (the I/O thread and EL_STREAM_DEPTH - 1 helpers), so that several reads are in flight
 * (O_DIRECT has no kernel readahead) and a piece is copied while others are read. */
#ifndef EL_STREAM_DEPTH
#define EL_STREAM_DEPTH 4
#endif

/* What el_stream_layout measures. A tensor's group: 0 (resident) when it is outside the
 * layers or in a pinned layer, else its stream_layer. */
typedef struct el_stream_shape {
    uint64_t resident_bytes; /* group 0, laid out from 0 in file order */
    uint64_t resident_read;  /* its bytes in storage (an image: its chunks' stored bytes) */
    uint64_t slot_bytes;     /* the largest streamed layer, laid out from 0 in file order */
    uint64_t pass_bytes;     /* every streamed layer's bytes in storage: one forward pass */
    uint64_t staged_max;     /* the largest streamed tensor converted or transposed (stored) */
    uint64_t tensor_max;     /* the largest streamed tensor (stored bytes) */
    uint32_t layers;         /* highest stream_layer */
} el_stream_shape;

/* Walks m's tensors as a streamed load places them (64-byte aligned; a streamed tensor's
 * offset is within its slot) with the first `pinned` layers resident. place: NULL to
 * measure (the plan), else m's tensor table, whose arena_offset and loaded_dtype are set
 * (the load). */
el_status el_stream_layout(const el_model *m, el_dtype target, uint32_t pinned, el_tensor *place,
                           el_stream_shape *out);

/* The ring's control block: n_slots slots of slot_bytes and the stage in the weights
 * region, and the I/O thread's state; the block itself is carved in the weights region
 * too (zeroed). Slot k is the ring's k-th: slots hold consecutive streamed layers.
 * A GPU plan (gpu): the slots are in the GPU weights region (device or managed memory);
 * the block, the stage and EL_STREAM_HOST_SLOTS host slots of slot_bytes are in the
 * staging region (host memory; pinned with device memory), kept after the load. The I/O
 * thread reads a layer into a host slot and queues its copy into the GPU slot on `copy`
 * (device memory: a stream of its own, so a layer's copy overlaps the layer before's
 * kernels; managed memory: the session's stream, since on a device without
 * concurrentManagedAccess the block is attached to that stream alone). Events order it:
 * slot_free[k] (compute, after the kernels that read slot k) before the copy into k,
 * slot_ready[k] (copy) before the kernels that read it, host_free[h] (copy) before the
 * host slot is read into again. */
typedef struct el_stream {
    el_model *m;
    uint8_t *slot[EL_STREAM_SLOTS_MAX];
    uint64_t slot_bytes;
    unsigned n_slots;
    uint32_t n_layers;             /* the decoder's layers */
    uint32_t first;                /* layers 0 .. first - 1 are pinned (resident) */
    el_dtype target;               /* the plan's dtype */
    uint8_t *stage;                /* stage_bytes: a piece (non-image: chunk + one page) or an
                                      image's stored + decoded chunk (half each) */
    uint64_t stage_bytes;
    bool want_direct;              /* the plan asked for O_DIRECT */
    bool direct;                   /* some file is read with O_DIRECT this session */
    int direct_fd[EL_MAX_FILES];   /* O_DIRECT descriptors while running, -1: buffered */
    int64_t staged_chunk;          /* the image chunk decoded in the stage's upper half, -1 */
    /* A layer's pieces, shared by its readers (guarded by job_mu): reader r reads into
     * stage + r * buf_bytes and places what it read into the slot. */
    unsigned n_bufs;               /* readers: 1 (the I/O thread) + helpers started */
    uint64_t buf_bytes;            /* a reader's part of the stage (EL_DIRECT_ALIGN multiple) */
    struct el_stream_helper {
        struct el_stream *S;
        unsigned r;                /* its buffer */
        el_thread thread;
    } helper[EL_STREAM_DEPTH];     /* [1 .. n_bufs) */
    pthread_mutex_t job_mu;
    pthread_cond_t job_cv;
    bool job_stop;
    uint32_t job_layer;            /* stream_layer of the tensors being read */
    uint8_t *job_dst;              /* their slot */
    size_t job_t;                  /* the next piece: tensor index (count: none left) */
    uint64_t job_e;                /* and its first element */
    unsigned job_active;           /* pieces being read or placed */
    el_status job_err;             /* the first failed piece's */
    char job_msg[512];
    pthread_mutex_t mu;            /* guards everything below */
    pthread_cond_t cv;
    el_thread io;
    bool running;                  /* a session has started the I/O thread */
    bool stop;
    bool busy;                     /* the I/O thread is reading */
    int32_t want[EL_STREAM_SLOTS_MAX]; /* layer asked for in each slot, -1: none */
    int32_t have[EL_STREAM_SLOTS_MAX]; /* layer each slot holds, -1: none or being read */
    unsigned cur;                  /* the slot the next layer to compute is asked for in */
    el_status err;                 /* a failed read, handed to the next acquire */
    char msg[512];
    uint64_t bytes_read, layers_read;
    double io_seconds, wait_seconds;
    /* GPU plans (see above); set by the load (gpu, host) and el_stream_start (the rest). */
    bool gpu;
    bool device;                   /* GPU device memory (else managed) */
    uint8_t *host[EL_STREAM_HOST_SLOTS];
    el_gpu_stream *compute;        /* the session's stream */
    el_gpu_stream *copy;           /* own stream (device memory) or compute (managed) */
    bool own_copy;
    el_gpu_event *slot_free[EL_STREAM_SLOTS_MAX];
    el_gpu_event *slot_ready[EL_STREAM_SLOTS_MAX];
    el_gpu_event *host_free[EL_STREAM_HOST_SLOTS];
    bool host_busy[EL_STREAM_HOST_SLOTS]; /* a copy out of host slot h is queued */
    unsigned host_next;            /* the host slot the I/O thread reads into next */
} el_stream;

/* Bytes of the control block as carved (EL_ALIGN_IO aligned), for the plan. */
uint64_t el_stream_block_bytes(void);
/* Reads group 0 (the resident tensors, pinned layers included) of an .elimg image into the
 * weights region at base, through the stage (the load; the I/O thread is not running). */
el_status el_stream_read_resident(el_stream *S, uint8_t *base, uint64_t *bytes);
/* Opens the O_DIRECT descriptors the plan asked for, starts the I/O thread and asks for the
 * first n_slots - 1 streamed layers. compute: the session's stream on a GPU plan (a copy
 * stream and the events are created here), NULL on the CPU. EL_E_USAGE if already running
 * (one session at a time over a streamed model) or when the plan's device is not the
 * session's. */
el_status el_stream_start(el_stream *S, el_gpu_stream *compute);
/* Stops and joins the I/O thread, waits for its copies, destroys the copy stream and the
 * events, closes the O_DIRECT descriptors (a no-op when it is not running). */
void el_stream_stop(el_stream *S);
/* Waits until streamed layer l (first <= l < n_layers) is in a slot and returns that slot in
 * *slot, then asks for the layer n_slots - 1 further on (wrapping to first) in the slot the
 * previous layer was computed from. The layer's tensors stay valid until the next acquire.
 * EL_E_IO (with the reader's message) when its read failed. A GPU plan: the layer's copy
 * is queued, and the session's stream made to wait for it (kernels queued after this
 * call see the layer); the previous slot is handed over once the kernels queued before
 * this call are done with it. */
el_status el_stream_acquire(el_stream *S, uint32_t l, unsigned *slot);
/* Where p (a streamed tensor's data, bound in slot 0 as the load points it) lies in slot k;
 * any other pointer unchanged. */
const void *el_stream_in_slot(const el_stream *S, unsigned k, const void *p);
/* Waits for the reads asked for, then copies the counters. */
void el_stream_stats_get(el_stream *S, el_stream_stats *out);

#endif /* EL_STREAM_H */
