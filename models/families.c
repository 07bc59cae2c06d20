/* families.c - the registered model families, tried in order by el_model_open. */
#include "loader/model_impl.h"

const el_family *const el_families[] = {
    NULL,
};
