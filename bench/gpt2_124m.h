/* gpt2_124m.h - the GPT-2 124M-shaped model the benchmarks generate (12 layers, 768 wide,
 * 12 heads, vocab 50257, n_positions 1024; seeded random f32 weights written as an HF
 * folder): bench_gpt2 (CPU) and bench_cuda (GPU) time the same model. */
#ifndef EL_BENCH_GPT2_124M_H
#define EL_BENCH_GPT2_124M_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#define DIM 768
#define HEADS 12
#define LAYERS 12
#define VOCAB 50257
#define NPOS 1024

/* ---- the model ------------------------------------------------------------------------ */

typedef struct spec {
    char name[64];
    uint64_t d0, d1; /* d1 = 0: 1-D */
} spec;

static inline size_t specs(spec *s) {
    size_t n = 0;
#define T(D0, D1, ...) (snprintf(s[n].name, sizeof s[n].name, __VA_ARGS__), s[n].d0 = (D0), s[n++].d1 = (D1))
    T(VOCAB, DIM, "wte.weight");
    T(NPOS, DIM, "wpe.weight");
    for (int l = 0; l < LAYERS; l++) {
        T(DIM, 0, "h.%d.ln_1.weight", l);
        T(DIM, 0, "h.%d.ln_1.bias", l);
        T(DIM, 3 * DIM, "h.%d.attn.c_attn.weight", l);
        T(3 * DIM, 0, "h.%d.attn.c_attn.bias", l);
        T(DIM, DIM, "h.%d.attn.c_proj.weight", l);
        T(DIM, 0, "h.%d.attn.c_proj.bias", l);
        T(DIM, 0, "h.%d.ln_2.weight", l);
        T(DIM, 0, "h.%d.ln_2.bias", l);
        T(DIM, 4 * DIM, "h.%d.mlp.c_fc.weight", l);
        T(4 * DIM, 0, "h.%d.mlp.c_fc.bias", l);
        T(4 * DIM, DIM, "h.%d.mlp.c_proj.weight", l);
        T(DIM, 0, "h.%d.mlp.c_proj.bias", l);
    }
    T(DIM, 0, "ln_f.weight");
    T(DIM, 0, "ln_f.bias");
#undef T
    return n;
}

/* Writes dir/config.json and dir/model.safetensors (f32, values ~ N(0, 0.02)-sized, layer
 * norms ~1) from a fixed seed. Returns 0 or prints why not. */
static inline int write_model(const char *dir) {
    static spec s[2 + 12 * LAYERS + 2];
    size_t n = specs(s);
    static char json[65536];
    size_t len = (size_t)snprintf(json, sizeof json, "{");
    uint64_t off = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = s[i].d0 * (s[i].d1 ? s[i].d1 : 1) * 4;
        if (s[i].d1)
            len += (size_t)snprintf(json + len, sizeof json - len, "%s\"%s\":{\"dtype\":\"F32\","
                                    "\"shape\":[%llu,%llu],\"data_offsets\":[%llu,%llu]}",
                                    i ? "," : "", s[i].name, (unsigned long long)s[i].d0,
                                    (unsigned long long)s[i].d1, (unsigned long long)off,
                                    (unsigned long long)(off + bytes));
        else
            len += (size_t)snprintf(json + len, sizeof json - len, "%s\"%s\":{\"dtype\":\"F32\","
                                    "\"shape\":[%llu],\"data_offsets\":[%llu,%llu]}",
                                    i ? "," : "", s[i].name, (unsigned long long)s[i].d0,
                                    (unsigned long long)off, (unsigned long long)(off + bytes));
        off += bytes;
    }
    len += (size_t)snprintf(json + len, sizeof json - len, "}");
    while (len % 8) json[len++] = ' ';
    char path[1100];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    if (!f) return fprintf(stderr, "bench: cannot write %s\n", path), 2;
    uint64_t hl = len;
    fwrite(&hl, 8, 1, f);
    fwrite(json, 1, len, f);
    static float buf[1 << 18];
    uint64_t rng = 0x9E3779B97F4A7C15ull;
    for (size_t i = 0; i < n; i++) {
        uint64_t left = s[i].d0 * (s[i].d1 ? s[i].d1 : 1);
        bool norm = strstr(s[i].name, "ln_") && strstr(s[i].name, "weight");
        while (left) {
            size_t k = left < (1u << 18) ? (size_t)left : (1u << 18);
            for (size_t j = 0; j < k; j++) {
                rng ^= rng >> 12, rng ^= rng << 25, rng ^= rng >> 27;
                float u = (float)((rng * 0x2545F4914F6CDD1Dull) >> 40) / 16777216.0f - 0.5f;
                buf[j] = norm ? 1.0f + 0.2f * u : 0.07f * u; /* std ~0.02 */
            }
            if (fwrite(buf, 4, k, f) != k) {
                fclose(f);
                return fprintf(stderr, "bench: short write to %s\n", path), 2;
            }
            left -= k;
        }
    }
    if (fclose(f) != 0) return fprintf(stderr, "bench: cannot write %s\n", path), 2;
    snprintf(path, sizeof path, "%s/config.json", dir);
    f = fopen(path, "w");
    if (!f) return fprintf(stderr, "bench: cannot write %s\n", path), 2;
    fprintf(f, "{\"model_type\":\"gpt2\",\"architectures\":[\"GPT2LMHeadModel\"],"
            "\"activation_function\":\"gelu_new\",\"n_embd\":%d,\"n_head\":%d,\"n_layer\":%d,"
            "\"n_positions\":%d,\"vocab_size\":%d,\"layer_norm_epsilon\":1e-05,"
            "\"bos_token_id\":50256,\"eos_token_id\":50256}\n", DIM, HEADS, LAYERS, NPOS, VOCAB);
    fclose(f);
    return 0;
}

#endif /* EL_BENCH_GPT2_124M_H */
