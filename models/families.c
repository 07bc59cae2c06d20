/* families.c - the registered model families, tried in order by el_model_open. */
#include "loader/model_impl.h"

extern const el_family el_family_llama; /* models/llama.c */

const el_family *const el_families[] = {
    &el_family_llama,
    NULL,
};
