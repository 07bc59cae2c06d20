/* test_loader_storage_cb.c - el_storage_set: models read through caller callbacks (here:
 * files held in memory under names no file system has). stories260K and its tokenizer
 * found next to it, loaded and generating the independent NumPy reference's greedy ids;
 * a BERT safetensors model with its config.json by "DIR/model.safetensors", embedding as
 * transformers does; every byte read through the callbacks; a failing read is EL_E_IO
 * naming the file; direct I/O refused; NULL restores the file system. */
// ctest-labels: loader;quick
// ctest-timeout: 60
#include "tests/llama_fixture.h"

#include <errno.h>
#include <math.h>
#include <string.h>

typedef struct mem_file {
    const char *name;
    char *data;
    size_t size;
} mem_file;

typedef struct mem_storage {
    mem_file files[8];
    int n;
    int open_handles;
    uint64_t bytes_read;
    bool fail_reads;
} mem_storage;

static int mem_open(void *user, const char *name, void **handle, uint64_t *size) {
    mem_storage *ms = user;
    for (int i = 0; i < ms->n; i++)
        if (!strcmp(ms->files[i].name, name)) {
            *handle = &ms->files[i];
            *size = ms->files[i].size;
            ms->open_handles++;
            return 0;
        }
    return ENOENT;
}

static int64_t mem_read(void *user, void *handle, void *buf, size_t n, uint64_t off) {
    mem_storage *ms = user;
    const mem_file *f = handle;
    if (ms->fail_reads) return -EIO;
    if (off >= f->size) return 0;
    size_t k = f->size - off < n ? (size_t)(f->size - off) : n;
    if (k > 1000) k = 1000; /* short reads: the library must continue them */
    memcpy(buf, f->data + off, k);
    ms->bytes_read += k;
    return (int64_t)k;
}

static void mem_close(void *user, void *handle) {
    (void)handle;
    ((mem_storage *)user)->open_handles--;
}

static void add(mem_storage *ms, const char *name, const char *path) {
    mem_file *f = &ms->files[ms->n++];
    f->name = name;
    f->data = el_test_read_file(path, &f->size);
    EL_CHECK(f->data != NULL);
}

static bool on_token(void *user, int32_t id, const char *piece, size_t len) {
    int32_t *ids = user;
    if (ids[0] < 24) ids[1 + ids[0]++] = id;
    return true;
}

static void test_stories(mem_storage *ms) {
    cJSON *fx = fixture_load(STORIES_FIXTURE);
    int32_t *want = NULL;
    size_t n_want = fixture_ids(cJSON_GetObjectItem(fx, "generated_ids"), &want);
    el_model *m = NULL;
    el_arena *a = NULL;
    el_session *s = NULL;
    el_plan plan;
    el_plan_params pp = {.ctx = 64, .batch = 1, .dtype = EL_DT_NONE};
    int32_t got[25] = {0};
    /* The real path is unknown to the storage: nothing falls back to the file system. */
    EL_CHECK_STATUS(el_model_open(STORIES_BIN, NULL, &m), EL_E_IO);
    EL_CHECK(strstr(el_last_error(), "stories260K.bin") != NULL);
    EL_CHECK_OK(el_model_open("flash:/models/stories260K.bin", NULL, &m));
    if (!m) goto out;
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    a = el_test_arena(&plan, EL_MEMORY_HOST);
    uint64_t before = ms->bytes_read;
    /* Direct I/O needs a descriptor. */
    el_load_params lp = {.direct_io = true};
    EL_CHECK_STATUS(el_model_load(m, &plan, a, &lp, NULL), EL_E_UNSUPPORTED);
    el_arena_deinit(a);
    a = NULL;
    a = el_test_arena(&plan, EL_MEMORY_HOST);
    el_load_stats ls;
    EL_CHECK_OK(el_model_load(m, &plan, a, NULL, &ls));
    /* The weights, and the tokenizer file its tables are built from during the load. */
    EL_CHECK(ms->bytes_read - before > ls.bytes_read && ls.bytes_read == plan.read_bytes);
    EL_CHECK_OK(el_session_init(m, a, &plan, NULL, &s));
    const char *prompt = cJSON_GetObjectItem(fx, "prompt")->valuestring;
    if (s) EL_CHECK_OK(el_generate(s, prompt, 24, NULL, on_token, got, NULL));
    EL_CHECK(got[0] == 24 && n_want >= 24 && !memcmp(got + 1, want, 24 * sizeof *want));
    /* A failing read: EL_E_IO naming the file (a fresh model: this one is loaded). */
    el_session_deinit(s);
    s = NULL;
    el_arena_deinit(a);
    el_model_close(m);
    m = NULL;
    a = NULL;
    EL_CHECK_OK(el_model_open("flash:/models/stories260K.bin", NULL, &m));
    a = el_test_arena(&plan, EL_MEMORY_HOST);
    ms->fail_reads = true;
    if (m && a)
    EL_CHECK_STATUS(el_model_load(m, &plan, a, NULL, NULL), EL_E_IO);
    fprintf(stderr, "failing reads: %s\n", el_last_error());
    EL_CHECK(strstr(el_last_error(), "flash:/models/") != NULL); /* the tokenizer file first */
    ms->fail_reads = false;
out:
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
    free(want);
    cJSON_Delete(fx);
}

/* hf_bert_base: config.json found next to "DIR/model.safetensors"; mean-pooled, normalized
 * vectors against transformers' (reference.json mean_norm). */
static void test_bert(void) {
    cJSON *ref = fixture_load(EL_SOURCE_DIR "/tests/fixtures/hf_bert_base/reference.json");
    int32_t *ids = NULL, *types = NULL, *lens32 = NULL;
    float *want = NULL;
    fixture_ids(cJSON_GetObjectItem(ref, "input_ids"), &ids);
    fixture_ids(cJSON_GetObjectItem(ref, "token_type_ids"), &types);
    size_t batch = fixture_ids(cJSON_GetObjectItem(ref, "lengths"), &lens32);
    const cJSON *mn = cJSON_GetObjectItem(ref, "mean_norm");
    uint32_t seq = (uint32_t)cJSON_GetObjectItem(ref, "seq")->valuedouble;
    el_model *m = NULL;
    el_arena *a = NULL;
    el_encoder *e = NULL;
    el_plan plan;
    el_plan_params pp = {.ctx = seq, .batch = (uint32_t)batch, .dtype = EL_DT_NONE};
    EL_CHECK_OK(el_model_open("net:/bert/model.safetensors", NULL, &m));
    if (!m) goto out;
    EL_CHECK(!strcmp(el_model_family(m), "bert"));
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    a = el_test_arena(&plan, EL_MEMORY_HOST);
    EL_CHECK_OK(el_model_load(m, &plan, a, NULL, NULL));
    EL_CHECK_OK(el_encoder_init(m, a, &plan, NULL, &e));
    if (!e) goto out;
    uint32_t dim = el_encoder_dim(e), lens[16];
    for (size_t i = 0; i < batch && i < 16; i++) lens[i] = (uint32_t)lens32[i];
    float out[16 * 64];
    EL_CHECK(batch <= 16 && dim <= 64);
    EL_CHECK_OK(el_embed(e, ids, types, lens, (uint32_t)batch, seq, EL_POOLING_MEAN, true, out,
                         sizeof out / sizeof out[0]));
    float worst = 0;
    for (size_t i = 0; i < batch; i++) {
        size_t n = fixture_floats(cJSON_GetArrayItem(mn, (int)i), &want);
        EL_CHECK(n == dim);
        for (size_t j = 0; j < n && j < dim; j++) worst = fmaxf(worst, fabsf(out[i * dim + j] - want[j]));
        free(want);
    }
    EL_CHECK(worst < 1e-4f);
out:
    el_encoder_deinit(e);
    el_arena_deinit(a);
    el_model_close(m);
    free(ids);
    free(types);
    free(lens32);
    cJSON_Delete(ref);
}

int main(void) {
    fixture_require_stories();
    static mem_storage ms;
    add(&ms, "flash:/models/stories260K.bin", STORIES_BIN);
    add(&ms, "flash:/models/tok512.bin", STORIES_TOK);
    add(&ms, "net:/bert/model.safetensors", EL_SOURCE_DIR "/tests/fixtures/hf_bert_base/model.safetensors");
    add(&ms, "net:/bert/config.json", EL_SOURCE_DIR "/tests/fixtures/hf_bert_base/config.json");
    el_storage st = {.user = &ms, .open = mem_open, .read = mem_read, .close = mem_close};
    el_storage bad = {.user = &ms, .open = mem_open};
    EL_CHECK_STATUS(el_storage_set(&bad), EL_E_USAGE);
    EL_CHECK_OK(el_storage_set(&st));
    test_stories(&ms);
    test_bert();
    EL_CHECK(ms.open_handles == 0); /* every open was closed */
    EL_CHECK_OK(el_storage_set(NULL));
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(STORIES_BIN, NULL, &m)); /* the file system again */
    el_model_close(m);
    for (int i = 0; i < ms.n; i++) free(ms.files[i].data);
    return el_test_finish("test_loader_storage_cb");
}
