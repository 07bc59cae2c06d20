/* encoder_impl.h - the encoder object behind el_encoder (internal): what models/encoder.c
 * (checks, packing, pooling, the public calls) shares with encoder families (bert). */
#ifndef EL_ENCODER_IMPL_H
#define EL_ENCODER_IMPL_H

#include "models/session_impl.h"

#define EL_LABEL_NAME_MAX 64 /* bytes of a label name, NUL included */

struct el_encoder {
    el_model *model;
    el_arena *arena;
    const el_family *family;
    el_plan plan;                 /* copy of the plan the arena was made from */
    uint64_t marks[3];            /* [kv, scratch, act] offsets at init (el_run_start) */
    uint32_t max_batch;           /* sequences per call, from the plan */
    uint32_t max_seq;             /* tokens per sequence, from the plan */
    el_pool *pool;                /* in scratch */
    uint32_t *starts;             /* [max_batch] first packed row of each sequence */
    uint32_t *lengths;            /* [max_batch] tokens of each sequence */
    uint32_t n_seq;               /* sequences of the current call */
    uint32_t n_rows;              /* packed rows of the current call (sum of lengths) */
    uint32_t max_len;             /* the longest sequence of the current call */
    int32_t *idx;                 /* [5, n_rows] (room for max_batch * max_seq rows) per packed
                                     row: id, type id, position, its sequence's first row and
                                     length; in scratch */
    /* Set by the family's encoder_init: */
    uint32_t dim;                 /* hidden size */
    uint32_t vocab;               /* token ids are < vocab */
    uint32_t n_types;             /* token type ids are < n_types */
    uint32_t n_labels;            /* classification outputs; 0 = no head */
    char (*labels)[EL_LABEL_NAME_MAX]; /* [n_labels] names, in scratch */
    bool labels_named;            /* from id2label */
    float *out;                   /* [max_batch * max_seq, dim]: free after encode (el_encode
                                     unpacks the hidden states into it) */
    void *family_state;           /* owned by the family, in scratch */
    bool on_gpu;                  /* on gpu_stream; weights|act in CUDA memory */
    const el_ops *ops;            /* the backend the encoder runs on */
    void *gpu_stream;             /* el_gpu_stream (cudaStream_t) */
};

/* The encoder and its generic parts (pool, packing buffers) for batch sequences of seq
 * tokens, carved before the family's; NULL when only counting (sc->arena NULL) or failed.
 * Families' plans carve it too. */
el_encoder *el_encoder_carve(el_carver *sc, uint32_t batch, uint32_t seq);

#endif /* EL_ENCODER_IMPL_H */
