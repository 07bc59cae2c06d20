/* families.c - the registered model families, tried in order by el_model_open. The
 * decoders are architectures of one decoder (models/arch.c); bert is the encoder. */
#include "loader/model_impl.h"

extern const el_family el_family_llama, el_family_mistral, el_family_qwen2, el_family_phi3,
    el_family_gemma3, el_family_gpt2;
extern const el_family el_family_bert; /* models/bert.c */

const el_family *const el_families[] = {
    &el_family_llama, &el_family_mistral, &el_family_qwen2, &el_family_phi3, &el_family_gemma3,
    &el_family_gpt2, &el_family_bert,
    NULL,
};
