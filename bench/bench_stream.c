/* bench_stream.c - streamed decode (el_plan_stream) against its bound: a decoded token reads
 * every layer once, so it cannot beat (layer bytes per token) / (the storage's sequential
 * read rate). Both are measured in the same run on the same file: the raw rate is a
 * whole-file read() after dropping the page cache; each streamed token starts with the
 * file's page cache dropped too (a model larger than RAM never finds its layers cached).
 * Also printed: the same decode with the page cache warm, and resident (the compute alone);
 * the raw read with O_DIRECT (what one read at a time gets without readahead); the ring's
 * read rate (layer bytes over the I/O thread's busy time).
 * Usage: bench_stream [MODEL] [--tokens N] [--threads N] [--layers N --dim N --hidden N]
 *                     [--slots N] [--direct] [--dtype T]
 *   --slots, --direct: the ring's slots and O_DIRECT reads (el_stream_params); --dtype: the
 *   weights' dtype in the arena (streamed layers converted on the way; resident too).
 *   MODEL: a safetensors/GGUF decoder; default: a generated Llama (f16, default 16 layers
 *   of dim 1024, FFN 2816: ~400 MiB) written to $TMPDIR and deleted afterwards.
 * Prints a table; never run by ctest. */
#include "bench/bench_util.h"
#include "edgeload.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fail(const char *what) {
    fprintf(stderr, "bench_stream: %s: %s\n", what, el_last_error());
    return 2;
}

/* Writes dir/config.json and dir/model.safetensors: an f16 Llama with GQA (kv heads = heads
 * / 4), untied head, vocab 4096, pseudo-random weights in [-1/32, 1/32). */
static bool write_model(const char *dir, unsigned layers, unsigned dim, unsigned hidden) {
    const unsigned heads = dim / 64, kvd = dim / 4, vocab = 4096;
    static const char *const roles[] = {"input_layernorm", "self_attn.q_proj", "self_attn.k_proj",
                                        "self_attn.v_proj", "self_attn.o_proj",
                                        "post_attention_layernorm", "mlp.gate_proj",
                                        "mlp.up_proj", "mlp.down_proj"};
    const unsigned rows[] = {0, dim, kvd, kvd, dim, 0, hidden, hidden, dim};
    const unsigned cols[] = {dim, dim, dim, dim, dim, dim, dim, dim, hidden};
    size_t cap = 4096 + (size_t)layers * 9 * 160, len = 0;
    char *json = malloc(cap);
    uint64_t off = 0;
    if (!json) return false;
    len += (size_t)snprintf(json + len, cap - len, "{");
#define TENSOR(NAME, R, C)                                                                       \
    do {                                                                                         \
        uint64_t n_ = (uint64_t)((R) ? (R) : 1) * (C) * 2;                                       \
        if ((R))                                                                                 \
            len += (size_t)snprintf(json + len, cap - len, "%s\"%s\":{\"dtype\":\"F16\","        \
                                    "\"shape\":[%u,%u],\"data_offsets\":[%llu,%llu]}",           \
                                    off ? "," : "", NAME, (unsigned)(R), (unsigned)(C),          \
                                    (unsigned long long)off, (unsigned long long)(off + n_));    \
        else                                                                                     \
            len += (size_t)snprintf(json + len, cap - len, "%s\"%s\":{\"dtype\":\"F16\","        \
                                    "\"shape\":[%u],\"data_offsets\":[%llu,%llu]}",              \
                                    off ? "," : "", NAME, (unsigned)(C),                         \
                                    (unsigned long long)off, (unsigned long long)(off + n_));    \
        off += n_;                                                                               \
    } while (0)
    char name[128];
    TENSOR("model.embed_tokens.weight", vocab, dim);
    for (unsigned l = 0; l < layers; l++)
        for (unsigned r = 0; r < 9; r++) {
            snprintf(name, sizeof name, "model.layers.%u.%s.weight", l, roles[r]);
            TENSOR(name, rows[r], cols[r]);
        }
    TENSOR("model.norm.weight", 0, dim);
    TENSOR("lm_head.weight", vocab, dim);
#undef TENSOR
    len += (size_t)snprintf(json + len, cap - len, "}");
    char path[1024];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    FILE *f = fopen(path, "wb");
    bool ok = f != NULL;
    uint64_t hl = len;
    if (ok) ok = fwrite(&hl, 8, 1, f) == 1 && fwrite(json, 1, len, f) == len;
    /* f16 values: sign and a small exponent from a xorshift stream (|x| < 1/32). */
    uint16_t buf[1 << 16];
    uint32_t x = 2463534242u;
    for (uint64_t done = 0; ok && done < off; done += sizeof buf) {
        for (size_t i = 0; i < sizeof buf / 2; i++) {
            x ^= x << 13, x ^= x >> 17, x ^= x << 5;
            buf[i] = (uint16_t)((x & 0x8000u) | (0x2000u + (x & 0x7ffu) * 2u)); /* ~1/256 .. 1/32 */
        }
        size_t n = off - done < sizeof buf ? (size_t)(off - done) : sizeof buf;
        ok = fwrite(buf, 1, n, f) == n;
    }
    if (f && fclose(f) != 0) ok = false;
    free(json);
    snprintf(path, sizeof path, "%s/config.json", dir);
    f = fopen(path, "w");
    if (!f) return false;
    fprintf(f, "{\"model_type\":\"llama\",\"hidden_size\":%u,\"intermediate_size\":%u,"
            "\"num_hidden_layers\":%u,\"num_attention_heads\":%u,\"num_key_value_heads\":%u,"
            "\"vocab_size\":%u,\"max_position_embeddings\":256,\"rms_norm_eps\":1e-5,"
            "\"tie_word_embeddings\":false}", dim, hidden, layers, heads, heads / 4, vocab);
    return fclose(f) == 0 && ok;
}

typedef struct result {
    double tok_s;
    double wait_s;     /* per token: the forward pass waiting for layers */
    double read_rate;  /* bytes per second of the I/O thread's busy time */
    uint64_t arena;
    uint64_t pass_bytes;
} result;

/* Decodes tokens greedy tokens after a one-token prompt; drop: page cache dropped before
 * each token. */
static int decode(const char *dir, const char *file, const el_stream_params *str, el_dtype dtype,
                  bool drop, unsigned threads, int tokens, result *r) {
    el_model *m = NULL;
    el_arena *a = NULL;
    el_session *s = NULL;
    if (el_model_open(dir, NULL, &m) != EL_OK) return fail(dir);
    el_plan_params pp = {256, 1, dtype, 0, EL_MEMORY_HOST, EL_DT_NONE};
    el_plan p;
    el_arena_params ap;
    if (el_plan_make(m, &pp, &p) != EL_OK || el_plan_stream_ex(m, str, 0, &p) != EL_OK)
        return fail("plan");
    el_plan_arena_params(&p, p.total_bytes, 0, &ap);
    if (el_arena_init(&a, &ap) != EL_OK) return fail("arena");
    if (el_model_load(m, &p, a, NULL, NULL) != EL_OK) return fail("load");
    el_session_params sp = {threads, EL_DEVICE_CPU, 0, false};
    if (el_session_init(m, a, &p, &sp, &s) != EL_OK) return fail("session");
    int32_t id = 1;
    const float *lg = NULL;
    if (el_session_forward(s, &id, 1, &lg) != EL_OK) return fail("prompt");
    el_stream_stats s0, s1;
    el_session_stream_stats(s, &s0);
    double t = 0;
    for (int k = 0; k < tokens; k++) {
        uint32_t vocab = el_session_vocab(s);
        id = 0;
        for (uint32_t i = 1; i < vocab; i++)
            if (lg[i] > lg[id]) id = (int32_t)i;
        el_stream_stats w;
        el_session_stream_stats(s, &w); /* the next pass's first layer is read already */
        if (drop) bench_drop_cache(file);
        double t0 = bench_now();
        if (el_session_forward(s, &id, 1, &lg) != EL_OK) return fail("decode");
        t += bench_now() - t0;
    }
    el_session_stream_stats(s, &s1);
    r->tok_s = tokens / t;
    r->wait_s = (s1.wait_seconds - s0.wait_seconds) / tokens;
    r->read_rate = s1.io_seconds > s0.io_seconds
                       ? (double)(s1.bytes_read - s0.bytes_read) / (s1.io_seconds - s0.io_seconds)
                       : 0;
    r->arena = p.total_bytes;
    r->pass_bytes = p.stream_pass_bytes;
    el_session_deinit(s);
    el_model_close(m);
    el_arena_deinit(a);
    return 0;
}

int main(int argc, char **argv) {
    const char *model = NULL;
    unsigned threads = 2, layers = 16, dim = 1024, hidden = 2816;
    int tokens = 8;
    el_stream_params on = {EL_STREAM_ON, 0, 0, false}, off = {EL_STREAM_OFF, 0, 0, false};
    el_dtype dtype = EL_DT_NONE;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--tokens") && i + 1 < argc) tokens = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc) threads = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--layers") && i + 1 < argc) layers = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dim") && i + 1 < argc) dim = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hidden") && i + 1 < argc) hidden = (unsigned)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--slots") && i + 1 < argc) on.slots = (uint32_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--direct")) on.direct = true;
        else if (!strcmp(argv[i], "--dtype") && i + 1 < argc) {
            if (el_dtype_parse(argv[++i], &dtype) != EL_OK) return fail("--dtype");
        } else if (argv[i][0] != '-') model = argv[i];
        else {
            fprintf(stderr, "usage: bench_stream [MODEL] [--tokens N] [--threads N] "
                    "[--layers N --dim N --hidden N] [--slots N] [--direct] [--dtype T]\n");
            return 1;
        }
    }
    if (tokens < 1 || dim < 256 || dim % 256 || !layers || !hidden) {
        fprintf(stderr, "bench_stream: --tokens >= 1, --dim a multiple of 256\n");
        return 1;
    }
    char dir[1024], file[1100];
    bool generated = !model;
    if (generated) {
        const char *tmp = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s/bench_stream.XXXXXX", tmp ? tmp : "/tmp");
        if (!mkdtemp(dir) || !write_model(dir, layers, dim, hidden)) {
            fprintf(stderr, "bench_stream: cannot write the model under %s\n", dir);
            return 2;
        }
        snprintf(file, sizeof file, "%s/model.safetensors", dir);
        model = dir;
    } else {
        snprintf(file, sizeof file, "%s", model);
    }
    uint64_t bytes = 0;
    bench_drop_cache(file);
    double raw_t = bench_raw_read(file, &bytes);
    const double raw = (double)bytes / raw_t;
    double draw_t = bench_raw_read_flags(file, O_DIRECT, &bytes);
    const double draw = (double)bytes / draw_t;
    result st, warm, res;
    int rc = decode(model, file, &on, dtype, true, threads, tokens, &st);
    if (!rc) rc = decode(model, file, &on, dtype, false, threads, tokens, &warm);
    if (!rc) rc = decode(model, file, &off, dtype, false, threads, tokens, &res);
    /* Again after the runs (a VM's host may cache what the guest dropped): the bound
     * takes the faster of the two. */
    bench_drop_cache(file);
    double raw_t2 = bench_raw_read(file, &bytes);
    const double raw2 = (double)bytes / raw_t2;
    double draw_t2 = bench_raw_read_flags(file, O_DIRECT, &bytes);
    const double draw2 = (double)bytes / draw_t2;
    if (!rc) {
        const double bound = (raw2 > raw ? raw2 : raw) / (double)st.pass_bytes;
        printf("model %s: %.1f MiB file, %.1f MiB of layers per token, %u threads, %d tokens, "
               "%u slots%s, weights %s\n", model, bytes / 1048576.0, st.pass_bytes / 1048576.0,
               threads, tokens, on.slots ? on.slots : EL_STREAM_SLOTS,
               on.direct ? ", O_DIRECT" : "", dtype == EL_DT_NONE ? "as stored"
                                                                 : el_dtype_name(dtype));
        printf("raw sequential read (page cache dropped): %.1f MB/s before, %.1f MB/s after "
               "the runs -> bound %.2f tok/s\n", raw / 1e6, raw2 / 1e6, bound);
        printf("raw O_DIRECT read (the same 4 MiB reads, no readahead): %.1f MB/s before, "
               "%.1f MB/s after -> %.2f tok/s\n", draw / 1e6, draw2 / 1e6,
               (draw2 > draw ? draw2 : draw) / (double)st.pass_bytes);
        printf("%-30s %10s %10s %12s %12s %12s\n", "run", "arena MiB", "tok/s", "of bound",
               "wait ms/tok", "ring MB/s");
        printf("%-30s %10.1f %10.2f %12.2f %12.1f %12.1f\n", "streamed, cache dropped",
               st.arena / 1048576.0, st.tok_s, st.tok_s / bound, st.wait_s * 1e3,
               st.read_rate / 1e6);
        printf("%-30s %10.1f %10.2f %12s %12.1f %12.1f\n", "streamed, page cache warm",
               warm.arena / 1048576.0, warm.tok_s, "-", warm.wait_s * 1e3,
               warm.read_rate / 1e6);
        printf("%-30s %10.1f %10.2f %12s %12s %12s\n", "resident", res.arena / 1048576.0,
               res.tok_s, "-", "-", "-");
    }
    if (generated) {
        char path[1200];
        snprintf(path, sizeof path, "%s/model.safetensors", dir);
        remove(path);
        snprintf(path, sizeof path, "%s/config.json", dir);
        remove(path);
        remove(dir);
    }
    return rc;
}
