/* weights.h - binding a family's weights by name (internal): the lookup, the shape check
 * against what the config implies, and the dtype check every family does the same way. */
#ifndef EL_MODELS_WEIGHTS_H
#define EL_MODELS_WEIGHTS_H

#include "kernels/ops.h"
#include "loader/model_impl.h"

/* Binds roles [from, to) of a role table into w[r]: names[r] an el_arch_name format (the
 * layer in place of %u; NULL: the architecture has no such role) found as prefix + name,
 * its stored shape checked against shape[r] = {rows, cols} ([cols] when rows is 0; cols 0:
 * this model has not the role, w[r] is left as it is) and its arena dtype (target: the
 * plan's dtype when planning, EL_DT_COUNT once loaded: then w[r].p is the data).
 * EL_E_INVALID for a missing tensor ("(<family> family)") or a wrong shape (with the shape
 * the config implies), EL_E_UNSUPPORTED for a dtype the kernels do not take, EL_E_USAGE
 * when binding a model that is not loaded. */
el_status el_weight_bind_roles(const el_model *m, const char *family, const char *prefix,
                               const char *const *names, const uint64_t (*shape)[2], int from,
                               int to, uint32_t layer, el_dtype target, el_weight *w);

/* Once per load, for sessions on the CPU from a host arena: repacks every block-type matrix
 * (Q8_0 ... Q6_K) whose rows are a multiple of 8 (and whose 8-row tile fits tmp, cap bytes)
 * in place into the CPU's 8-row tiles (kernels/cpu/quant.h, el_q_x8_repack) and marks it
 * (el_tensor.x8; bind copies the mark into el_weight.x8), so that decode streams each tile as
 * one run. Every CPU kernel takes tiled weights with the untiled bits; no GPU may read them
 * (hence host arenas only). Not for streamed loads, nor where EL_CPU_TILES=0. The caller makes
 * sure every row range it slices off a weight starts at a multiple of 8. */
void el_weights_tile_cpu(el_model *m, void *tmp, size_t cap);

#endif /* EL_MODELS_WEIGHTS_H */
