/* attn_split.h - how the CUDA decoder attention (kernels/cuda/attention.cu) cuts a context
 * into chunks, one definition for the kernel and for the plans that size its partials
 * (models/decoder.c carves them in the act region, inside the attention scratch).
 *
 * A query row whose keys span len positions is cut into el_attn_splits(len) chunks of at
 * least EL_ATTN_SPLIT_POS positions (at most EL_ATTN_SPLIT_MAX chunks: longer contexts get
 * longer chunks). Each (row, head, chunk) leaves a partial: the chunk's running max m, its
 * sum of exp(score - m) and head_dim unnormalised weighted values; a second kernel combines
 * the chunks of each (row, head). A context of one chunk needs no partials. */
#ifndef EL_KERNELS_ATTN_SPLIT_H
#define EL_KERNELS_ATTN_SPLIT_H

#include <stdint.h>

#define EL_ATTN_SPLIT_POS 256u /* positions per chunk, at least */
#define EL_ATTN_SPLIT_MAX 256u /* chunks per row, at most */

static inline uint64_t el_attn_splits(uint64_t len) {
    uint64_t s = (len + EL_ATTN_SPLIT_POS - 1) / EL_ATTN_SPLIT_POS;
    return s < EL_ATTN_SPLIT_MAX ? s : EL_ATTN_SPLIT_MAX;
}

/* Floats of partials for rows query rows of heads heads whose keys span len positions:
 * [rows, heads, splits] of (head_dim accumulators, then max and sum); 0 for one chunk.
 * Callers keep the product small (a plan's context, heads and head_dim are checked). */
static inline uint64_t el_attn_partial_floats(uint64_t rows, uint64_t heads, uint64_t head_dim,
                                              uint64_t len) {
    const uint64_t s = el_attn_splits(len);
    return s > 1 ? rows * heads * s * (head_dim + 2) : 0;
}

#endif /* EL_KERNELS_ATTN_SPLIT_H */
