/* gpt2.c - placeholder: the gpt2 family registers but recognises no model yet. */
#include "loader/model_impl.h"

static bool gpt2_detect(const el_model *m) {
    (void)m;
    return false;
}

const el_family el_family_gpt2 = {
    .name = "gpt2",
    .detect = gpt2_detect,
};
