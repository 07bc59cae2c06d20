/* dtype.c - element types: names, block sizes, byte counts of rows and tensors, parsing. */
#include "platform/platform.h"

#include <strings.h>

static const char *const k_dtype_name[] = {
#define EL_X_NAME(name, str, block, bytes) str,
    EL_DTYPE_LIST(EL_X_NAME)
#undef EL_X_NAME
};

static const struct { uint16_t block, bytes; } k_dtype_block[] = {
#define EL_X_BLOCK(name, str, block, bytes) {block, bytes},
    EL_DTYPE_LIST(EL_X_BLOCK)
#undef EL_X_BLOCK
};

static bool dtype_valid(el_dtype t) { return (int)t >= 0 && t < EL_DT_COUNT; }

const char *el_dtype_name(el_dtype t) {
    if (!dtype_valid(t)) return "NONE";
    return k_dtype_name[t];
}

size_t el_dtype_size(el_dtype t) {
    if (!dtype_valid(t) || k_dtype_block[t].block != 1) return 0;
    return k_dtype_block[t].bytes;
}

size_t el_dtype_block(el_dtype t) { return dtype_valid(t) ? k_dtype_block[t].block : 0; }

size_t el_dtype_block_bytes(el_dtype t) { return dtype_valid(t) ? k_dtype_block[t].bytes : 0; }

bool el_dtype_is_block(el_dtype t) { return dtype_valid(t) && k_dtype_block[t].block > 1; }

bool el_dtype_row_bytes(el_dtype t, uint64_t cols, uint64_t *out) {
    if (!dtype_valid(t) || cols % k_dtype_block[t].block) return false;
    return el_mul_u64(cols / k_dtype_block[t].block, k_dtype_block[t].bytes, out);
}

el_status el_dtype_tensor_bytes(el_dtype t, const uint64_t *shape, uint32_t ndim,
                                const char *name, uint64_t *out) {
    if (!dtype_valid(t))
        return el_errorf(EL_E_INVALID, "tensor '%s': no element type", name ? name : "?");
    uint64_t cols = ndim ? shape[ndim - 1] : 1, rows = 1, row_bytes;
    bool zero = false, overflow = false;
    for (uint32_t d = 0; d + 1 < ndim; d++) {
        zero |= shape[d] == 0;
        if (!el_mul_u64(rows, shape[d], &rows)) overflow = true;
    }
    if (cols % k_dtype_block[t].block)
        return el_errorf(EL_E_INVALID,
                         "tensor '%s': rows of %llu elements are not a whole number of %s "
                         "blocks (%u elements each)",
                         name ? name : "?", (unsigned long long)cols, k_dtype_name[t],
                         (unsigned)k_dtype_block[t].block);
    if (zero) rows = 0, overflow = false; /* a zero dimension: 0 bytes whatever the order */
    if (overflow || !el_dtype_row_bytes(t, cols, &row_bytes) ||
        !el_mul_u64(rows, row_bytes, out))
        return el_errorf(EL_E_INVALID, "tensor '%s': %s size overflows 64 bits",
                         name ? name : "?", k_dtype_name[t]);
    return EL_OK;
}

el_status el_dtype_parse(const char *text, el_dtype *out) {
    static const struct { const char *alias; el_dtype t; } aliases[] = {
        {"fp32", EL_DT_F32}, {"float32", EL_DT_F32}, {"float", EL_DT_F32},
        {"fp16", EL_DT_F16}, {"float16", EL_DT_F16}, {"half", EL_DT_F16},
        {"bfloat16", EL_DT_BF16}, {"fp64", EL_DT_F64}, {"float64", EL_DT_F64},
    };
    if (!text) return el_errorf(EL_E_USAGE, "missing dtype");
    for (int i = 0; i < EL_DT_COUNT; i++) {
        if (!strcasecmp(text, k_dtype_name[i])) {
            *out = (el_dtype)i;
            return EL_OK;
        }
    }
    for (size_t i = 0; i < sizeof aliases / sizeof aliases[0]; i++) {
        if (!strcasecmp(text, aliases[i].alias)) {
            *out = aliases[i].t;
            return EL_OK;
        }
    }
    return el_errorf(EL_E_USAGE, "unknown dtype '%s' (expected f32, f16, bf16, q8_0, q4_k, ...)",
                     text);
}
