/* weights.c - see weights.h. */
#include "models/weights.h"
#include "models/arch.h"
#include "loader/load_impl.h"
#include "kernels/cpu/quant.h"
#include "platform/platform.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* "[a, b, c]" for t's shape into buf (capacity cap). */
static void shape_str(const el_tensor *t, char *buf, size_t cap) {
    size_t len = (size_t)snprintf(buf, cap, "[");
    for (uint32_t d = 0; d < t->ndim && len + 24 < cap; d++)
        len += (size_t)snprintf(buf + len, cap - len, "%s%llu", d ? ", " : "",
                                (unsigned long long)t->shape[d]);
    snprintf(buf + len, cap - len, "]");
}

static el_status bind(const el_model *m, const char *family, const char *prefix,
                      const char *name, uint64_t rows, uint64_t cols, el_dtype target,
                      el_weight *out) {
    char full[200];
    snprintf(full, sizeof full, "%s%s", prefix, name);
    long i = el_model_find(m, full);
    if (i < 0)
        return el_errorf(EL_E_INVALID, "%s: missing tensor %s (%s family)", m->path, full,
                         family);
    const el_tensor *t = &m->tensors.items[i];
    bool ok = rows ? t->ndim == 2 && t->shape[0] == rows && t->shape[1] == cols
                   : t->ndim == 1 && t->shape[0] == cols;
    if (!ok) {
        char got[96];
        shape_str(t, got, sizeof got);
        if (rows)
            return el_errorf(EL_E_INVALID, "%s: tensor %s has shape %s, the config implies "
                             "[%llu, %llu]", m->path, full, got, (unsigned long long)rows,
                             (unsigned long long)cols);
        return el_errorf(EL_E_INVALID, "%s: tensor %s has shape %s, the config implies [%llu]",
                         m->path, full, got, (unsigned long long)cols);
    }
    el_dtype dt = target == EL_DT_COUNT ? t->loaded_dtype : el_plan_tensor_dtype(t, target);
    bool block = el_dtype_is_block(dt);
    if (dt != EL_DT_F32 && dt != EL_DT_F16 && dt != EL_DT_BF16 && !(block && rows))
        return el_errorf(EL_E_UNSUPPORTED, "%s: tensor %s is %s in the arena; the kernels take "
                         "F32, F16 or BF16 vectors and F32, F16, BF16 or block-quantized "
                         "matrices (try --dtype f16)", m->path, full, el_dtype_name(dt));
    if (block && cols % el_dtype_block(dt))
        return el_errorf(EL_E_INVALID, "%s: tensor %s is %s, whose rows are blocks of %zu, but "
                         "its rows have %llu columns", m->path, full, el_dtype_name(dt),
                         el_dtype_block(dt), (unsigned long long)cols);
    out->p = target == EL_DT_COUNT ? t->data : NULL;
    out->dt = dt;
    out->x8 = target == EL_DT_COUNT && t->x8;
    if (target == EL_DT_COUNT && !out->p)
        return el_errorf(EL_E_USAGE, "%s: tensor %s is not loaded", m->path, full);
    return EL_OK;
}

el_status el_weight_bind_roles(const el_model *m, const char *family, const char *prefix,
                               const char *const *names, const uint64_t (*shape)[2], int from,
                               int to, uint32_t layer, el_dtype target, el_weight *w) {
    char name[160];
    for (int r = from; r < to; r++) {
        if (!names[r] || !shape[r][1]) continue;
        el_arch_name(name, sizeof name, names[r], layer);
        EL_TRY(bind(m, family, prefix, name, shape[r][0], shape[r][1], target, &w[r]));
    }
    return EL_OK;
}

void el_weights_tile_cpu(el_model *m, void *tmp, size_t cap) {
    if (m->tiled || !m->loaded) return;
    m->tiled = true;
    const char *env = getenv("EL_CPU_TILES");
    if (m->stream || (env && !strcmp(env, "0"))) return;
    const el_isa isa = el_cpu_isa_best();
    for (size_t i = 0; i < m->tensors.count; i++) {
        el_tensor *t = &m->tensors.items[i];
        const el_dtype dt = t->loaded_dtype;
        if (!t->data || t->ndim != 2 || t->transpose2d || !el_q_x8_can(isa, dt, t->shape[0]) ||
            t->shape[1] % el_dtype_block(dt) ||
            8 * (t->shape[1] / el_dtype_block(dt)) * el_dtype_block_bytes(dt) > cap)
            continue;
        el_q_x8_repack(dt, t->data, t->shape[0], t->shape[1] / el_dtype_block(dt), tmp, true);
        t->x8 = true;
    }
}
