/* gpt2_synth.h - synthetic GPT-2 folders for tests (test code only): config.json plus a
 * model.safetensors of el_test_fill weights with GPT-2's tensor names and stored (Conv1D)
 * shapes, with knobs to break one thing at a time (a missing tensor, a wrong shape, a
 * config that disagrees with the weights). */
#ifndef EL_TEST_GPT2_SYNTH_H
#define EL_TEST_GPT2_SYNTH_H

#include "tests/support/el_test.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef struct gpt2_synth {
    uint32_t dim, heads, layers, inner, vocab, n_pos;
    el_dtype dtype;
    bool prefix;              /* "transformer." names */
    const char *omit;         /* a tensor name (without prefix) left out, or NULL */
    const char *reshape;      /* a tensor name (without prefix) given one extra column */
    /* config.json values where they differ from the weights (0 = as the weights) */
    uint32_t cfg_vocab, cfg_layers, cfg_heads, cfg_n_pos;
    const char *activation;   /* NULL = "gelu_new" */
} gpt2_synth;

static inline void gpt2_synth_default(gpt2_synth *g) {
    memset(g, 0, sizeof *g);
    g->dim = 32;
    g->heads = 4;
    g->layers = 2;
    g->inner = 128;
    g->vocab = 300;
    g->n_pos = 64;
    g->dtype = EL_DT_F32;
}

/* Writes dir/config.json and dir/model.safetensors (dir is created). */
static inline bool gpt2_synth_write(const char *dir, const gpt2_synth *g) {
    mkdir(dir, 0755);
    static el_test_tensor t[4 + 12 * 64];
    static char names[4 + 12 * 64][96];
    size_t n = 0;
    const char *px = g->prefix ? "transformer." : "";
#define ADD(NAME, ND, D0, D1)                                                             \
    do {                                                                                  \
        char base_[80];                                                                   \
        snprintf(base_, sizeof base_, "%s", NAME);                                        \
        if (g->omit && !strcmp(g->omit, base_)) break;                                    \
        snprintf(names[n], sizeof names[n], "%s%s", px, base_);                           \
        uint64_t d1_ = (D1) + (g->reshape && !strcmp(g->reshape, base_) ? 1 : 0);         \
        uint64_t d0_ = (D0) + (g->reshape && !strcmp(g->reshape, base_) && (ND) == 1);    \
        t[n] = (el_test_tensor){names[n], g->dtype, (ND), {d0_, d1_}};                    \
        n++;                                                                              \
    } while (0)
    if (g->layers > 64) return false;
    ADD("wte.weight", 2, g->vocab, g->dim);
    ADD("wpe.weight", 2, g->n_pos, g->dim);
    char nm[80];
    for (uint32_t l = 0; l < g->layers; l++) {
        snprintf(nm, sizeof nm, "h.%u.ln_1.weight", l); ADD(nm, 1, g->dim, 0);
        snprintf(nm, sizeof nm, "h.%u.ln_1.bias", l); ADD(nm, 1, g->dim, 0);
        snprintf(nm, sizeof nm, "h.%u.attn.c_attn.weight", l); ADD(nm, 2, g->dim, 3 * g->dim);
        snprintf(nm, sizeof nm, "h.%u.attn.c_attn.bias", l); ADD(nm, 1, 3 * g->dim, 0);
        snprintf(nm, sizeof nm, "h.%u.attn.c_proj.weight", l); ADD(nm, 2, g->dim, g->dim);
        snprintf(nm, sizeof nm, "h.%u.attn.c_proj.bias", l); ADD(nm, 1, g->dim, 0);
        snprintf(nm, sizeof nm, "h.%u.ln_2.weight", l); ADD(nm, 1, g->dim, 0);
        snprintf(nm, sizeof nm, "h.%u.ln_2.bias", l); ADD(nm, 1, g->dim, 0);
        snprintf(nm, sizeof nm, "h.%u.mlp.c_fc.weight", l); ADD(nm, 2, g->dim, g->inner);
        snprintf(nm, sizeof nm, "h.%u.mlp.c_fc.bias", l); ADD(nm, 1, g->inner, 0);
        snprintf(nm, sizeof nm, "h.%u.mlp.c_proj.weight", l); ADD(nm, 2, g->inner, g->dim);
        snprintf(nm, sizeof nm, "h.%u.mlp.c_proj.bias", l); ADD(nm, 1, g->dim, 0);
    }
    ADD("ln_f.weight", 1, g->dim, 0);
    ADD("ln_f.bias", 1, g->dim, 0);
#undef ADD
    char path[700];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (!el_test_write_safetensors(path, t, n, 5)) return false;
    char cfg[1024];
    uint32_t vocab = g->cfg_vocab ? g->cfg_vocab : g->vocab;
    int len = snprintf(cfg, sizeof cfg,
                       "{\"model_type\": \"gpt2\", \"architectures\": [\"GPT2LMHeadModel\"], "
                       "\"activation_function\": \"%s\", \"n_embd\": %u, \"n_head\": %u, "
                       "\"n_layer\": %u, \"n_inner\": %u, \"n_positions\": %u, "
                       "\"vocab_size\": %u, \"layer_norm_epsilon\": 1e-05, "
                       "\"eos_token_id\": %u, \"bos_token_id\": %u}\n",
                       g->activation ? g->activation : "gelu_new", g->dim,
                       g->cfg_heads ? g->cfg_heads : g->heads,
                       g->cfg_layers ? g->cfg_layers : g->layers, g->inner,
                       g->cfg_n_pos ? g->cfg_n_pos : g->n_pos, vocab, vocab - 1, vocab - 1);
    snprintf(path, sizeof path, "%s/config.json", dir);
    return el_test_write_file(path, cfg, (size_t)len);
}

#endif /* EL_TEST_GPT2_SYNTH_H */
