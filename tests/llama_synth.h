/* llama_synth.h - the layer-streaming tests' generated models (test code only): a Llama
 * with GQA and an untied head, 16 layers of ~3 MiB of f32 weights (random, seeded), its
 * vocabulary stories260K's (tok512.bin tokenizes the CLI's prompts); and a 4-layer GPT-2
 * (Conv1D weights, transposed on the way). Shared by test_llama_stream (CPU) and
 * test_cuda_stream (the emulated GPU). */
#ifndef EL_TEST_LLAMA_SYNTH_H
#define EL_TEST_LLAMA_SYNTH_H

#include "edgeload.h"
#include "tests/gpt2_synth.h"
#include "tests/support/el_test.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#define DIM 256
#define HEADS 4
#define KV_HEADS 2
#define HIDDEN 768
#define LAYERS 16
#define VOCAB 512 /* stories260K's tok512.bin tokenizes the CLI's prompt */
#define CTX 128
#define TOK EL_SOURCE_DIR "/assets/stories260K/tok512.bin"

/* dir/config.json and dir/model.safetensors of a Llama with GQA and an untied head. */
static inline void llama_synth_write(const char *dir) {
    mkdir(dir, 0755);
    static el_test_tensor t[3 + 9 * LAYERS];
    static char names[9 * LAYERS][64];
    size_t n = 0;
    const uint64_t kvd = (uint64_t)DIM / HEADS * KV_HEADS;
    t[n++] = (el_test_tensor){"model.embed_tokens.weight", EL_DT_F32, 2, {VOCAB, DIM}};
    static const struct { const char *name; uint64_t rows, cols; } roles[] = {
        {"input_layernorm", 0, DIM},      {"self_attn.q_proj", DIM, DIM},
        {"self_attn.k_proj", 0, DIM},     {"self_attn.v_proj", 0, DIM},
        {"self_attn.o_proj", DIM, DIM},   {"post_attention_layernorm", 0, DIM},
        {"mlp.gate_proj", HIDDEN, DIM},   {"mlp.up_proj", HIDDEN, DIM},
        {"mlp.down_proj", DIM, HIDDEN},
    };
    for (unsigned l = 0; l < LAYERS; l++)
        for (unsigned r = 0; r < 9; r++) {
            char *nm = names[l * 9 + r];
            snprintf(nm, 64, "model.layers.%u.%s.weight", l, roles[r].name);
            uint64_t rows = r == 2 || r == 3 ? kvd : roles[r].rows;
            t[n++] = rows ? (el_test_tensor){nm, EL_DT_F32, 2, {rows, roles[r].cols}}
                          : (el_test_tensor){nm, EL_DT_F32, 1, {roles[r].cols}};
        }
    t[n++] = (el_test_tensor){"model.norm.weight", EL_DT_F32, 1, {DIM}};
    t[n++] = (el_test_tensor){"lm_head.weight", EL_DT_F32, 2, {VOCAB, DIM}};
    char path[700], cfg[700];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    EL_CHECK(el_test_write_safetensors(path, t, n, 21));
    snprintf(cfg, sizeof cfg,
             "{\"model_type\":\"llama\",\"hidden_size\":%d,\"intermediate_size\":%d,"
             "\"num_hidden_layers\":%d,\"num_attention_heads\":%d,\"num_key_value_heads\":%d,"
             "\"vocab_size\":%d,\"max_position_embeddings\":%d,\"rms_norm_eps\":1e-5,"
             "\"tie_word_embeddings\":false,\"bos_token_id\":1,\"eos_token_id\":2}",
             DIM, HIDDEN, LAYERS, HEADS, KV_HEADS, VOCAB, CTX);
    snprintf(path, sizeof path, "%s/config.json", dir);
    EL_CHECK(el_test_write_file(path, cfg, strlen(cfg)));
}

/* dir (cap bytes) = <tmpdir>/gpt2, holding gpt2_synth's default GPT-2 with 4 layers and CTX
 * positions; checks that it was written. */
static inline void llama_synth_gpt2_write(char *dir, size_t cap) {
    snprintf(dir, cap, "%s/gpt2", el_test_tmpdir());
    gpt2_synth g;
    gpt2_synth_default(&g);
    g.layers = 4;
    g.n_pos = CTX;
    EL_CHECK(gpt2_synth_write(dir, &g));
}

/* Sum of the stored bytes of the tensors of the model at path whose names contain needle
 * (a streamed pass reads those of "model.layers."). */
static inline uint64_t bytes_named(const char *path, const char *needle) {
    el_model *m = NULL;
    uint64_t sum = 0;
    EL_CHECK_OK(el_model_open(path, NULL, &m));
    for (size_t i = 0; m && i < el_model_tensor_count(m); i++) {
        el_tensor_info t;
        if (el_model_tensor(m, i, &t) == EL_OK && strstr(t.name, needle)) sum += t.nbytes;
    }
    el_model_close(m);
    return sum;
}

#endif /* EL_TEST_LLAMA_SYNTH_H */
