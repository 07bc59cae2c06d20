/* stream.h - layer streaming (internal): the weights layout of a streamed plan (the tensors
 * outside the decoder's layers resident, the layers in a ring of EL_STREAM_SLOTS slots) and
 * the ring itself: an I/O thread reads layer i + 1 into one slot while layer i is computed
 * from the other. */
#ifndef EL_STREAM_H
#define EL_STREAM_H

#include "loader/model_impl.h"

/* What el_stream_layout measures. */
typedef struct el_stream_shape {
    uint64_t resident_bytes; /* model-level tensors, laid out from 0 in file order */
    uint64_t resident_read;  /* their bytes in storage */
    uint64_t slot_bytes;     /* the largest layer, its tensors laid out from 0 in file order */
    uint64_t pass_bytes;     /* every layer's bytes in storage: one forward pass */
    uint32_t layers;         /* highest stream_layer */
} el_stream_shape;

/* Walks m's tensors as a streamed load places them (64-byte aligned; a layer tensor's
 * offset is within its slot). place: NULL to measure (the plan), else m's tensor table,
 * whose arena_offset and loaded_dtype are set (the load). EL_E_UNSUPPORTED for a layer
 * tensor the load would convert or transpose. */
el_status el_stream_layout(const el_model *m, el_dtype target, el_tensor *place,
                           el_stream_shape *out);

/* The ring's control block: EL_STREAM_SLOTS slots of slot_bytes in the weights region and
 * the I/O thread's state; the block itself is carved in the weights region too. */
typedef struct el_stream {
    el_model *m;
    uint8_t *slot[EL_STREAM_SLOTS];
    uint64_t slot_bytes;
    uint32_t n_layers;
    pthread_mutex_t mu;            /* guards everything below */
    pthread_cond_t cv;
    el_thread io;
    bool running;                  /* a session has started the I/O thread */
    bool stop;
    bool busy;                     /* the I/O thread is reading */
    int32_t want[EL_STREAM_SLOTS]; /* layer asked for in each slot, -1: none */
    int32_t have[EL_STREAM_SLOTS]; /* layer each slot holds, -1: none or being read */
    unsigned cur;                  /* the slot the next layer to compute is asked for in */
    el_status err;                 /* a failed read, handed to the next acquire */
    char msg[512];
    uint64_t bytes_read, layers_read;
    double io_seconds, wait_seconds;
} el_stream;

/* Bytes of the control block as carved (EL_ALIGN_IO aligned), for the plan. */
uint64_t el_stream_block_bytes(void);
/* Starts the I/O thread and asks for layer 0 in slot 0. EL_E_USAGE if already running
 * (one session at a time over a streamed model). */
el_status el_stream_start(el_stream *S);
/* Stops and joins the I/O thread (a no-op when it is not running). */
void el_stream_stop(el_stream *S);
/* Waits until layer l is in a slot and returns that slot in *slot, then asks for layer
 * (l + 1) % n_layers in the other one. The layer's tensors stay valid until the next
 * acquire. EL_E_IO (with the reader's message) when its read failed. */
el_status el_stream_acquire(el_stream *S, uint32_t l, unsigned *slot);
/* Waits for the read in flight, then copies the counters. */
void el_stream_stats_get(el_stream *S, el_stream_stats *out);

#endif /* EL_STREAM_H */
