/* families.c - the registered model families, tried in order by el_model_open. */
#include "loader/model_impl.h"

extern const el_family el_family_llama; /* models/llama.c */
extern const el_family el_family_gpt2;  /* models/gpt2.c */
extern const el_family el_family_bert;  /* models/bert.c */

const el_family *const el_families[] = {
    &el_family_llama,
    &el_family_gpt2,
    &el_family_bert,
    NULL,
};
