/* test_bert_plan.c - the bert-large scenario without the weights: a bert-large-uncased-shaped
 * BertForSequenceClassification folder (24 layers, hidden 1024, 16 heads, intermediate 4096,
 * vocab 30522, 512 positions, 2 labels; ~335M parameters) is written at test time as a
 * complete safetensors header over a sparse data section (no disk blocks, nothing committed).
 * Checks: the weights region equals the tensors' bytes (64-byte aligned) in f32 and half of
 * that in f16; no KV region; scratch grows with --batch and --ctx; a plan and its check read
 * no weight (bytes read by this process, from /proc/self/io); el_plan_check's advice names
 * --dtype f16, a shorter --ctx and a smaller --batch that fit; `edgeload plan` prints every
 * region and exits 3 with that advice, `edgeload classify` refuses with exit 3 before
 * reserving or reading anything. */
// ctest-labels: bert;plan
// ctest-timeout: 120
#include "tests/support/el_test.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { DIM = 1024, INTER = 4096, LAYERS = 24, VOCAB = 30522, POS = 512, LABELS = 2 };

typedef struct tdesc {
    char name[96];
    uint64_t rows, cols; /* rows 0 = 1-D */
} tdesc;

static size_t describe(tdesc *t) {
    size_t n = 0;
#define T(nm, r, c) (snprintf(t[n].name, sizeof t[n].name, "%s", nm), t[n].rows = (r), t[n].cols = (c), n++)
    T("bert.embeddings.word_embeddings.weight", VOCAB, DIM);
    T("bert.embeddings.position_embeddings.weight", POS, DIM);
    T("bert.embeddings.token_type_embeddings.weight", 2, DIM);
    T("bert.embeddings.LayerNorm.weight", 0, DIM);
    T("bert.embeddings.LayerNorm.bias", 0, DIM);
    static const struct {
        const char *s;
        uint64_t r, c;
    } per[] = {
        {"attention.self.query.weight", DIM, DIM}, {"attention.self.query.bias", 0, DIM},
        {"attention.self.key.weight", DIM, DIM},   {"attention.self.key.bias", 0, DIM},
        {"attention.self.value.weight", DIM, DIM}, {"attention.self.value.bias", 0, DIM},
        {"attention.output.dense.weight", DIM, DIM}, {"attention.output.dense.bias", 0, DIM},
        {"attention.output.LayerNorm.weight", 0, DIM}, {"attention.output.LayerNorm.bias", 0, DIM},
        {"intermediate.dense.weight", INTER, DIM}, {"intermediate.dense.bias", 0, INTER},
        {"output.dense.weight", DIM, INTER},       {"output.dense.bias", 0, DIM},
        {"output.LayerNorm.weight", 0, DIM},       {"output.LayerNorm.bias", 0, DIM},
    };
    for (int l = 0; l < LAYERS; l++)
        for (size_t i = 0; i < sizeof per / sizeof per[0]; i++) {
            snprintf(t[n].name, sizeof t[n].name, "bert.encoder.layer.%d.%s", l, per[i].s);
            t[n].rows = per[i].r;
            t[n].cols = per[i].c;
            n++;
        }
    T("bert.pooler.dense.weight", DIM, DIM);
    T("bert.pooler.dense.bias", 0, DIM);
    T("classifier.weight", LABELS, DIM);
    T("classifier.bias", 0, LABELS);
#undef T
    return n;
}

static uint64_t numel(const tdesc *t) { return t->rows ? t->rows * t->cols : t->cols; }

/* Writes DIR/model.safetensors (header + sparse data) and DIR/config.json; returns the
 * parameter count and the expected weights bytes in f32 / f16 (each tensor 64-aligned). */
static bool make_model(const char *dir, uint64_t *params, uint64_t *w32, uint64_t *w16) {
    static tdesc t[LAYERS * 16 + 16];
    size_t n = describe(t);
    size_t cap = 64 * 1024, len = 0;
    char *json = malloc(cap);
    uint64_t off = 0;
    *params = *w32 = *w16 = 0;
    len += (size_t)snprintf(json + len, cap - len, "{\"__metadata__\":{\"format\":\"pt\"}");
    for (size_t i = 0; i < n; i++) {
        uint64_t e = numel(&t[i]);
        if (t[i].rows)
            len += (size_t)snprintf(json + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%llu,%llu],"
                                    "\"data_offsets\":[%llu,%llu]}", t[i].name,
                                    (unsigned long long)t[i].rows, (unsigned long long)t[i].cols,
                                    (unsigned long long)off, (unsigned long long)(off + 4 * e));
        else
            len += (size_t)snprintf(json + len, cap - len, ",\"%s\":{\"dtype\":\"F32\",\"shape\":[%llu],"
                                    "\"data_offsets\":[%llu,%llu]}", t[i].name,
                                    (unsigned long long)t[i].cols, (unsigned long long)off,
                                    (unsigned long long)(off + 4 * e));
        off += 4 * e;
        *params += e;
        *w32 = (*w32 + 63) / 64 * 64 + 4 * e;
        *w16 = (*w16 + 63) / 64 * 64 + 2 * e;
    }
    len += (size_t)snprintf(json + len, cap - len, "}");
    char path[600];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    uint8_t prefix[8];
    for (int i = 0; i < 8; i++) prefix[i] = (uint8_t)((uint64_t)len >> (8 * i));
    bool ok = fd >= 0 && write(fd, prefix, 8) == 8 && write(fd, json, len) == (ssize_t)len &&
              ftruncate(fd, (off_t)(8 + len + off)) == 0;
    if (fd >= 0) close(fd);
    free(json);
    char cfg[1024];
    int k = snprintf(cfg, sizeof cfg,
                     "{\"architectures\":[\"BertForSequenceClassification\"],\"model_type\":\"bert\","
                     "\"hidden_size\":%d,\"intermediate_size\":%d,\"num_hidden_layers\":%d,"
                     "\"num_attention_heads\":16,\"vocab_size\":%d,\"max_position_embeddings\":%d,"
                     "\"type_vocab_size\":2,\"hidden_act\":\"gelu\",\"layer_norm_eps\":1e-12,"
                     "\"id2label\":{\"0\":\"NEGATIVE\",\"1\":\"POSITIVE\"}}",
                     DIM, INTER, LAYERS, VOCAB, POS);
    snprintf(path, sizeof path, "%s/config.json", dir);
    return ok && el_test_write_file(path, cfg, (size_t)k);
}

static uint64_t rchar(void) {
    FILE *f = fopen("/proc/self/io", "r");
    if (!f) return 0;
    char line[128];
    unsigned long long v = 0;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "rchar: %llu", &v) == 1) break;
    fclose(f);
    return v;
}

static el_plan plan_of(el_model *m, uint32_t batch, uint32_t ctx, el_dtype dt) {
    el_plan p;
    memset(&p, 0, sizeof p);
    el_plan_params pp = {ctx, batch, dt, 0, EL_MEMORY_HOST, EL_DT_F32};
    EL_CHECK_OK(el_plan_make(m, &pp, &p));
    return p;
}

int main(void) {
    const char *dir = el_test_tmpdir();
    uint64_t params = 0, w32 = 0, w16 = 0;
    EL_CHECK(make_model(dir, &params, &w32, &w16));
    printf("bert-large-shaped classifier: %llu parameters, f32 weights %llu bytes\n",
           (unsigned long long)params, (unsigned long long)w32);
    EL_CHECK(params > 330000000ull && params < 340000000ull);

    uint64_t r0 = rchar();
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(dir, NULL, &m));
    if (!m) return el_test_finish("test_bert_plan");
    EL_CHECK(!strcmp(el_model_family(m), "bert"));
    el_plan p32 = plan_of(m, 1, 0, EL_DT_NONE), p16 = plan_of(m, 1, 0, EL_DT_F16);
    el_plan b8 = plan_of(m, 8, 512, EL_DT_NONE), c128 = plan_of(m, 8, 128, EL_DT_NONE);
    el_plan b32 = plan_of(m, 32, 512, EL_DT_F16);
    EL_CHECK(p32.params.ctx == 512 && p32.params.batch == 1);
    EL_CHECK(p32.region_bytes[EL_REGION_WEIGHTS] == (w32 + 4095) / 4096 * 4096);
    EL_CHECK(p16.region_bytes[EL_REGION_WEIGHTS] == (w16 + 4095) / 4096 * 4096);
    EL_CHECK(p32.region_bytes[EL_REGION_KV] == 0 && b8.region_bytes[EL_REGION_KV] == 0);
    /* act: activations for batch x ctx tokens. Four [tokens, 1024] f32 buffers alone are
     * 16 KiB per token; the FFN buffer is capped at 256 rows. */
    uint64_t s1 = p32.region_bytes[EL_REGION_ACT], s8 = b8.region_bytes[EL_REGION_ACT];
    uint64_t s8c = c128.region_bytes[EL_REGION_ACT];
    printf("act: batch 1 x 512: %llu, batch 8 x 512: %llu, batch 8 x 128: %llu bytes\n",
           (unsigned long long)s1, (unsigned long long)s8, (unsigned long long)s8c);
    EL_CHECK(s1 >= 512ull * 16384 && s8 >= 8ull * 512 * 16384 && s8c >= 8ull * 128 * 16384);
    EL_CHECK(s8 > s8c && s8c > s1 / 2);
    /* Linear in the batch: per extra sequence of 512 tokens the four buffers, packed ids and
     * type ids, and 16 heads x 512 attention scores; the FFN buffer does not grow. */
    EL_CHECK(s8 - s1 <= 7ull * 512 * (16384 + 8) + 7ull * 16 * 512 * 4 + 65536);

    /* Too small: f32 batch 1 in 1 GiB; f16 would fit. */
    uint64_t G = 1ull << 30;
    EL_CHECK_STATUS(el_plan_check(m, &p32, G), EL_E_NOFIT);
    const char *msg = el_last_error();
    printf("advice (f32, 1 GiB): %s\n", msg);
    EL_CHECK(strstr(msg, "--dtype f16 needs") && strstr(msg, "(fits)"));
    /* f16, batch 32 x 512 (~0.9 GiB) in 768 MiB: a shorter --ctx or a smaller --batch fits. */
    const uint64_t A = 768ull << 20;
    EL_CHECK_STATUS(el_plan_check(m, &b32, A), EL_E_NOFIT);
    msg = el_last_error();
    printf("advice (f16, batch 32 x 512, 768 MiB): %s\n", msg);
    const char *ctx_adv = strstr(msg, "--ctx "), *batch_adv = strstr(msg, "--batch ");
    EL_CHECK(ctx_adv && batch_adv);
    if (ctx_adv) EL_CHECK(strstr(ctx_adv, "(fits)") != NULL);
    if (batch_adv) {
        unsigned bb = 0;
        EL_CHECK(sscanf(batch_adv, "--batch %u", &bb) == 1 && bb > 1 && bb < 32);
        EL_CHECK(strstr(batch_adv, "(fits)") != NULL);
        el_plan pb = plan_of(m, bb, 512, EL_DT_F16), pb1 = plan_of(m, bb + 1, 512, EL_DT_F16);
        EL_CHECK(pb.total_bytes <= A && pb1.total_bytes > A); /* the largest that fits */
    }
    uint64_t read = rchar() - r0;
    printf("bytes read by open + 5 plans + checks: %llu (weights: %llu)\n",
           (unsigned long long)read, (unsigned long long)w32);
    EL_CHECK(read < 4u * 1024 * 1024);
    el_model_close(m);

    /* The CLI. */
    char args[1024], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "plan %s --batch 8 --ctx 512", dir);
    int rc = el_test_run_cli(args, &out, &err);
    EL_CHECK(rc == 0);
    EL_CHECK(out && strstr(out, "weights") && strstr(out, "kv") && strstr(out, "scratch") &&
             strstr(out, "staging") && strstr(out, "total") && strstr(out, "bert"));
    if (out) printf("%s", out);
    free(out);
    free(err);
    snprintf(args, sizeof args, "plan %s --batch 32 --ctx 512 --dtype f16 --arena 768M", dir);
    rc = el_test_run_cli(args, &out, &err);
    EL_CHECK(rc == 3);
    EL_CHECK(err && strstr(err, "--ctx") && strstr(err, "--batch") && strstr(err, "missing"));
    EL_CHECK(out && strstr(out, "DOES NOT FIT"));
    if (err) printf("stderr: %s", err);
    free(out);
    free(err);
    snprintf(args, sizeof args, "classify %s --arena 1G hello", dir);
    rc = el_test_run_cli(args, &out, &err);
    EL_CHECK(rc == 3);
    EL_CHECK(err && strstr(err, "--dtype f16"));
    free(out);
    free(err);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_bert_plan");
}
