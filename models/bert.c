/* bert.c - placeholder: the bert family registers but recognises no model yet. */
#include "loader/model_impl.h"

static bool bert_detect(const el_model *m) {
    (void)m;
    return false;
}

const el_family el_family_bert = {
    .name = "bert",
    .detect = bert_detect,
};
