/* dtype.c - element type names, sizes and parsing. */
#include "platform/platform.h"

#include <strings.h>

static const char *const k_dtype_name[] = {
#define EL_X_NAME(name, str, size) str,
    EL_DTYPE_LIST(EL_X_NAME)
#undef EL_X_NAME
};

static const size_t k_dtype_size[] = {
#define EL_X_SIZE(name, str, size) size,
    EL_DTYPE_LIST(EL_X_SIZE)
#undef EL_X_SIZE
};

const char *el_dtype_name(el_dtype t) {
    if ((int)t < 0 || t >= EL_DT_COUNT) return "NONE";
    return k_dtype_name[t];
}

size_t el_dtype_size(el_dtype t) {
    if ((int)t < 0 || t >= EL_DT_COUNT) return 0;
    return k_dtype_size[t];
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
    return el_errorf(EL_E_USAGE, "unknown dtype '%s' (expected f32, f16, bf16, ...)", text);
}
