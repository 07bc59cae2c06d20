/* fuzz_pack_gguf.c - libFuzzer target for pack's GGUF output (loader/formats/gguf_write.c),
 * the parsers of untrusted bytes it adds: the input's first byte picks a tokenizer.json
 * (even) or a SentencePiece tokenizer.model (odd, the protobuf reader), the rest is that
 * file; a small Llama-shaped safetensors model (made once, 4096 rows) is packed to GGUF with
 * it. Whatever packs must be a GGUF that edgeload's own reader parses, with the tensors and
 * a tokenizer.ggml.model entry. */
#include "fuzz/fuzz_common.h"

#include "edgeload.h"
#include "loader/formats/gguf.h"
#include "loader/formats/gguf_write.h"
#include "platform/platform.h"

#define VOCAB 4096
#define DIM 32

/* Appends a tensor entry to the safetensors header json and returns its byte size. */
static size_t entry(char *json, size_t cap, size_t *off, const char *name, unsigned rows,
                    unsigned cols) {
    size_t bytes = (size_t)rows * (cols ? cols : 1) * 4, n = strlen(json);
    if (cols)
        snprintf(json + n, cap - n, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%u,%u],\"data_offsets\":[%zu,%zu]}",
                 n > 1 ? "," : "", name, rows, cols, *off, *off + bytes);
    else
        snprintf(json + n, cap - n, "%s\"%s\":{\"dtype\":\"F32\",\"shape\":[%u],\"data_offsets\":[%zu,%zu]}",
                 n > 1 ? "," : "", name, rows, *off, *off + bytes);
    *off += bytes;
    return bytes;
}

/* The model folder: config.json and model.safetensors (one layer, weights 0.01). */
static const char *model_dir(void) {
    static char dir[320];
    if (dir[0]) return dir;
    const char *cfg_path = fz_path("pack_gguf", "config.json");
    snprintf(dir, sizeof dir, "%s", cfg_path);
    *strrchr(dir, '/') = 0;
    static const char cfg[] =
        "{\"model_type\":\"llama\",\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":32,"
        "\"intermediate_size\":64,\"num_hidden_layers\":1,\"num_attention_heads\":4,"
        "\"num_key_value_heads\":2,\"vocab_size\":4096,\"max_position_embeddings\":64,"
        "\"rms_norm_eps\":1e-5,\"bos_token_id\":1,\"eos_token_id\":2,\"tie_word_embeddings\":true}";
    fz_write(cfg_path, (const uint8_t *)cfg, strlen(cfg));
    static char json[4096];
    size_t off = 0;
    strcpy(json, "{");
    entry(json, sizeof json, &off, "model.embed_tokens.weight", VOCAB, DIM);
    entry(json, sizeof json, &off, "model.norm.weight", DIM, 0);
    entry(json, sizeof json, &off, "model.layers.0.input_layernorm.weight", DIM, 0);
    entry(json, sizeof json, &off, "model.layers.0.post_attention_layernorm.weight", DIM, 0);
    entry(json, sizeof json, &off, "model.layers.0.self_attn.q_proj.weight", DIM, DIM);
    entry(json, sizeof json, &off, "model.layers.0.self_attn.k_proj.weight", DIM / 2, DIM);
    entry(json, sizeof json, &off, "model.layers.0.self_attn.v_proj.weight", DIM / 2, DIM);
    entry(json, sizeof json, &off, "model.layers.0.self_attn.o_proj.weight", DIM, DIM);
    entry(json, sizeof json, &off, "model.layers.0.mlp.gate_proj.weight", 2 * DIM, DIM);
    entry(json, sizeof json, &off, "model.layers.0.mlp.up_proj.weight", 2 * DIM, DIM);
    entry(json, sizeof json, &off, "model.layers.0.mlp.down_proj.weight", DIM, 2 * DIM);
    strcat(json, "}");
    size_t hlen = strlen(json), total = 8 + hlen + off;
    uint8_t *file = malloc(total);
    CHECK(file != NULL);
    uint64_t h = hlen;
    memcpy(file, &h, 8);
    memcpy(file + 8, json, hlen);
    float v = 0.01f;
    for (size_t i = 0; i < off / 4; i++) memcpy(file + 8 + hlen + 4 * i, &v, 4);
    fz_write(fz_path("pack_gguf", "model.safetensors"), file, total);
    free(file);
    return dir;
}

static el_status file_read(void *ctx, void *dst, size_t n, uint64_t off) {
    return el_file_read_at(ctx, dst, n, off);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    const char *dir = model_dir();
    const char *tok = fz_path("pack_gguf", data[0] & 1 ? "t.model" : "t.json");
    const char *out = fz_path("pack_gguf", "out.gguf");
    fz_write(tok, data + 1, size - 1);
    el_gguf_write_params p = {.dtype = data[0] & 2 ? EL_DT_Q8_0 : EL_DT_NONE, .tokenizer_path = tok};
    el_gguf_write_stats st;
    if (el_gguf_write(dir, out, &p, &st) != EL_OK) return 0;
    el_file f;
    CHECK(el_file_open(&f, out, 0) == EL_OK && f.size == st.file_bytes);
    el_gguf_source src = {file_read, &f, f.size, out};
    el_gguf *g = NULL;
    CHECK(el_gguf_parse(&src, &g) == EL_OK);
    CHECK(g->n_tensors == st.tensors && g->n_kv == st.kv);
    CHECK(el_gguf_find(g, "tokenizer.ggml.model") != NULL);
    el_gguf_free(g);
    el_file_close(&f);
    return 0;
}
