/* test_loader_gguf.c - GGUF files made by the `gguf` package's writer (scripts/fixtures_gguf.py)
 * through the public API: the llama GGUF made from tests/fixtures/hf_llama_gqa (q/k rows in
 * llama.cpp's permuted order) gives the logits and greedy ids of the safetensors model it came
 * from, in f32 and f16, and of transformers' recordings, also packed into an .elimg; it
 * streams byte-identically with and without O_DIRECT, with progress; with the interleaved-RoPE flag
 * cleared it does not (so the comparison can fail); every metadata value of meta_all.gguf
 * reads back as gguf.GGUFReader read it (meta_all.json); an unsupported architecture and a
 * block type refuse to plan with their names. */
// ctest-labels: loader;gguf
// ctest-timeout: 60
#include "tests/support/el_test.h"

#include "loader/formats/gguf.h"
#include "loader/image.h"
#include "loader/model_impl.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FIX EL_SOURCE_DIR "/tests/fixtures"
#define GGUF_DIR FIX "/gguf"
#define N_GREEDY 16
#define SAME_TOL 1e-5f  /* GGUF vs the safetensors it came from, same runtime */
#define REF_TOL 1e-4f   /* vs transformers (test_llama_hf.c's tolerance) */

typedef struct run_out {
    float *logits;      /* [n_prompt][vocab], one position per forward pass */
    int32_t greedy[N_GREEDY];
} run_out;

/* Opens path, loads it with dtype, runs the prompt one token at a time and then N_GREEDY
 * greedy steps. clear_flags: the RoPE layout flag removed (the negative control). */
static bool run_family(const char *path, const char *family, el_dtype dtype,
                       const int32_t *ids, size_t n, bool clear_flags, run_out *out) {
    memset(out, 0, sizeof *out);
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(path, NULL, &m));
    if (!m) return false;
    EL_CHECK(!strcmp(el_model_family(m), family));
    if (clear_flags) m->flags &= ~(uint32_t)EL_MODEL_ROPE_INTERLEAVED;
    el_plan_params pp = {0, 1, dtype, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    el_plan plan;
    el_arena *a = NULL;
    el_session *s = NULL;
    bool ok = false;
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    a = el_test_arena(&plan, EL_MEMORY_HOST);
    if (a) EL_CHECK_OK(el_model_load(m, &plan, a, NULL, NULL));
    el_session_params sp = {1, EL_DEVICE_CPU, 0, false};
    if (a) EL_CHECK_OK(el_session_init(m, a, &plan, &sp, &s));
    if (s) {
        size_t V = el_session_vocab(s);
        out->logits = malloc(n * V * sizeof(float));
        const float *lg = NULL;
        for (size_t i = 0; i < n && out->logits; i++) {
            if (el_session_forward(s, &ids[i], 1, &lg) != EL_OK || !lg) break;
            memcpy(out->logits + i * V, lg, V * sizeof(float));
        }
        for (size_t g = 0; g < N_GREEDY && lg; g++) {
            size_t best = 0;
            for (size_t j = 1; j < V; j++)
                if (lg[j] > lg[best]) best = j;
            out->greedy[g] = (int32_t)best;
            int32_t id = (int32_t)best;
            if (el_session_forward(s, &id, 1, &lg) != EL_OK) break;
        }
        ok = out->logits != NULL;
    }
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
    return ok;
}

static bool run_model(const char *path, el_dtype dtype, const int32_t *ids, size_t n,
                      bool clear_flags, run_out *out) {
    return run_family(path, "llama", dtype, ids, n, clear_flags, out);
}

static float max_diff(const float *a, const float *b, size_t n) {
    float d = 0;
    for (size_t i = 0; i < n; i++) d = fmaxf(d, fabsf(a[i] - b[i]));
    return d;
}

static size_t json_ids(const cJSON *arr, int32_t *out, size_t cap) {
    size_t n = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e && n < cap; e = e->next)
        out[n++] = (int32_t)e->valuedouble;
    return n;
}

static void test_logits(void) {
    char *text = el_test_read_file(FIX "/hf_llama_gqa/reference.json", NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    free(text);
    EL_CHECK(ref != NULL);
    if (!ref) return;
    int32_t ids[64], greedy[N_GREEDY], greedy16[N_GREEDY];
    size_t n = json_ids(cJSON_GetObjectItem(ref, "prompt_ids"), ids, 64);
    EL_CHECK(json_ids(cJSON_GetObjectItem(ref, "greedy_ids"), greedy, N_GREEDY) == N_GREEDY);
    EL_CHECK(json_ids(cJSON_GetObjectItem(ref, "greedy_ids_f16w"), greedy16, N_GREEDY) ==
             N_GREEDY);
    const size_t V = 512;
    size_t nb = 0;
    float *hf = (float *)el_test_read_file(FIX "/hf_llama_gqa/logits_f32.bin", &nb);
    EL_CHECK(hf && nb == n * V * sizeof(float));

    /* The GGUF packed into an image runs the same. */
    el_test_tmpdir();
    const char *img = el_test_path("gguf.elimg");
    el_image_pack_params ipp = {EL_DT_NONE, EL_IMG_CODEC_SHUFFLE_LZ4, 0, NULL, 0, false};
    EL_CHECK_OK(el_image_pack(GGUF_DIR "/llama_gqa_f32.gguf", img, &ipp, NULL));

    run_out st, gg, st16, gg16, gg32as16, bad, packed;
    bool ok = run_model(FIX "/hf_llama_gqa", EL_DT_NONE, ids, n, false, &st) &&
              run_model(GGUF_DIR "/llama_gqa_f32.gguf", EL_DT_NONE, ids, n, false, &gg) &&
              run_model(FIX "/hf_llama_gqa", EL_DT_F16, ids, n, false, &st16) &&
              run_model(GGUF_DIR "/llama_gqa_f16.gguf", EL_DT_NONE, ids, n, false, &gg16) &&
              run_model(GGUF_DIR "/llama_gqa_f32.gguf", EL_DT_F16, ids, n, false, &gg32as16) &&
              run_model(GGUF_DIR "/llama_gqa_f32.gguf", EL_DT_NONE, ids, n, true, &bad) &&
              run_model(img, EL_DT_NONE, ids, n, false, &packed);
    EL_CHECK(ok);
    if (ok && hf && nb == n * V * sizeof(float)) {
        float d = max_diff(gg.logits, st.logits, n * V);
        fprintf(stderr, "gguf f32 vs safetensors f32: max |diff| %.3g over %zu positions\n", d, n);
        EL_CHECK(d <= SAME_TOL);
        d = max_diff(gg.logits, hf, n * V);
        fprintf(stderr, "gguf f32 vs transformers: max |diff| %.3g\n", d);
        EL_CHECK(d <= REF_TOL);
        EL_CHECK(!memcmp(gg.greedy, greedy, sizeof greedy));
        EL_CHECK(!memcmp(gg.greedy, st.greedy, sizeof greedy));
        d = max_diff(gg16.logits, st16.logits, n * V);
        fprintf(stderr, "gguf f16 vs safetensors loaded as f16: max |diff| %.3g\n", d);
        EL_CHECK(d <= SAME_TOL);
        EL_CHECK(!memcmp(gg16.greedy, greedy16, sizeof greedy16));
        d = max_diff(gg32as16.logits, gg16.logits, n * V);
        fprintf(stderr, "gguf f32 loaded as f16 vs gguf f16: max |diff| %.3g\n", d);
        EL_CHECK(d <= SAME_TOL);
        d = max_diff(packed.logits, gg.logits, n * V);
        fprintf(stderr, "gguf packed into .elimg vs gguf: max |diff| %.3g\n", d);
        EL_CHECK(d == 0 && !memcmp(packed.greedy, gg.greedy, sizeof greedy));
        /* Negative control: position 0 has no rotation to get wrong; later ones do. */
        float d0 = max_diff(bad.logits, st.logits, V);
        float dn = max_diff(bad.logits + V, st.logits + V, (n - 1) * V);
        fprintf(stderr, "without the interleaved-RoPE flag: position 0 %.3g, later %.3g\n", d0,
                dn);
        EL_CHECK(d0 <= SAME_TOL && dn > 1e-2f);
    }
    free(st.logits), free(gg.logits), free(st16.logits), free(gg16.logits);
    free(gg32as16.logits), free(bad.logits), free(packed.logits), free(hf);
    cJSON_Delete(ref);
}

/* llama.cpp's converter on a transformers fixture (scripts/fixtures_gguf_arch.py): GPT-2
 * (Conv1D weights stored as rows, fused QKV, learned positions) and Phi-3 (fused qkv and
 * gate|up): the fixture's prompt gives transformers' logits and greedy ids. */
static void test_converted(const char *gguf, const char *fixture, const char *family) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s/reference.json", FIX, fixture);
    char *text = el_test_read_file(path, NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    free(text);
    EL_CHECK(ref != NULL);
    if (!ref) return;
    int32_t ids[64], greedy[N_GREEDY];
    size_t n = json_ids(cJSON_GetObjectItem(ref, "prompt_ids"), ids, 64);
    EL_CHECK(json_ids(cJSON_GetObjectItem(ref, "greedy_ids"), greedy, N_GREEDY) == N_GREEDY);
    const size_t V = 512;
    size_t nb = 0;
    snprintf(path, sizeof path, "%s/%s/logits_f32.bin", FIX, fixture);
    float *hf = (float *)el_test_read_file(path, &nb);
    EL_CHECK(hf && nb == n * V * sizeof(float));
    snprintf(path, sizeof path, "%s/%s", GGUF_DIR, gguf);
    run_out gg;
    if (run_family(path, family, EL_DT_NONE, ids, n, false, &gg) && hf &&
        nb == n * V * sizeof(float)) {
        float d = max_diff(gg.logits, hf, n * V);
        fprintf(stderr, "%s vs transformers: max |diff| %.3g over %zu positions\n", gguf, d, n);
        EL_CHECK(d <= REF_TOL);
        EL_CHECK(!memcmp(gg.greedy, greedy, sizeof greedy));
    }
    free(gg.logits), free(hf);
    cJSON_Delete(ref);
}

/* A "bert" tokenizer from GGUF metadata (llama.cpp's phantom-space WordPiece vocabulary):
 * the ids transformers' BertTokenizer gives with the vocab.txt the file was made from. */
/* The GGUF's WordPiece vocabulary against transformers' ids; path: the GGUF, or an image
 * packed from it (its tokenizer.* metadata stored as tokenizer.gguf). */
static void test_bert_tokenizer(const char *path) {
    char *text = el_test_read_file(GGUF_DIR "/bert_wpm_cases.json", NULL);
    cJSON *root = text ? cJSON_Parse(text) : NULL;
    const cJSON *cases = cJSON_GetObjectItem(root, "cases");
    EL_CHECK(cases != NULL);
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(path, NULL, &m));
    int n = 0, same = 0;
    for (const cJSON *c = cases ? cases->child : NULL; c && m; c = c->next, n++) {
        const char *t = cJSON_GetObjectItem(c, "text")->valuestring;
        int32_t want[64], got[64];
        size_t nw = json_ids(cJSON_GetObjectItem(c, "ids"), want, 64), ng = 0;
        if (el_tokenize(m, t, strlen(t), true, got, 64, &ng) == EL_OK && ng == nw &&
            !memcmp(got, want, nw * sizeof *got))
            same++;
        else
            fprintf(stderr, "  bert gguf tokenizer differs on '%s'\n", t);
    }
    fprintf(stderr, "bert gguf tokenizer (%s): %d of %d texts as transformers\n", path, same,
            n);
    EL_CHECK(n >= 8 && same == n);
    el_model_close(m);
    cJSON_Delete(root);
    free(text);
}

/* ---- metadata against gguf.GGUFReader ------------------------------------------------- */

static const char *type_of(const cJSON *e) {
    const cJSON *t = cJSON_GetObjectItem(e, "type");
    return cJSON_IsString(t) ? t->valuestring : "";
}

/* v (type vt) equals the JSON value j; arrays element by element, recursively. */
static bool same_value(const el_gguf *g, const el_gguf_value *v, const cJSON *j) {
    char buf[256];
    switch (v->type) {
    case EL_GGUF_U8: case EL_GGUF_U16: case EL_GGUF_U32: case EL_GGUF_U64:
        return cJSON_IsNumber(j) && (double)v->num.u == j->valuedouble;
    case EL_GGUF_I8: case EL_GGUF_I16: case EL_GGUF_I32: case EL_GGUF_I64:
        return cJSON_IsNumber(j) && (double)v->num.i == j->valuedouble;
    case EL_GGUF_F32: case EL_GGUF_F64:
        return cJSON_IsNumber(j) && v->num.f == j->valuedouble &&
               signbit(v->num.f) == signbit(j->valuedouble);
    case EL_GGUF_BOOL: return cJSON_IsBool(j) && (v->num.u != 0) == cJSON_IsTrue(j);
    case EL_GGUF_STRING: {
        size_t n = 0;
        if (!cJSON_IsString(j) || el_gguf_read_string(g, v, buf, sizeof buf, &n) != EL_OK)
            return false;
        return n == v->len && n == strlen(j->valuestring) && !memcmp(buf, j->valuestring, n);
    }
    case EL_GGUF_ARRAY: {
        if (!cJSON_IsArray(j) || (uint64_t)cJSON_GetArraySize(j) != v->len) return false;
        el_gguf_iter it;
        el_gguf_iter_init(g, v, &it);
        for (const cJSON *c = j->child; c; c = c->next) {
            el_gguf_value e;
            if (el_gguf_iter_next(&it, &e) != EL_OK || !same_value(g, &e, c)) return false;
        }
        el_gguf_value e;
        return el_gguf_iter_next(&it, &e) == EL_E_USAGE;
    }
    default: return false;
    }
}

/* A GGUF packed into an image keeps its tokenizer: every text of a byte-level BPE GGUF
 * tokenizes the same from the image as from the GGUF, and the BERT cases as transformers. */
static void test_image_tokenizer(void) {
    const char *img = el_test_path("bert.elimg");
    el_image_pack_params ipp = {EL_DT_NONE, EL_IMG_CODEC_SHUFFLE_LZ4, 0, NULL, 0, false};
    EL_CHECK_OK(el_image_pack(GGUF_DIR "/bert_base_f32.gguf", img, &ipp, NULL));
    test_bert_tokenizer(img);

    const char *img2 = el_test_path("gpt2tok.elimg");
    EL_CHECK_OK(el_image_pack(GGUF_DIR "/llama_gqa_gpt2tok_f16.gguf", img2, &ipp, NULL));
    el_model *a = NULL, *b = NULL;
    EL_CHECK_OK(el_model_open(GGUF_DIR "/llama_gqa_gpt2tok_f16.gguf", NULL, &a));
    EL_CHECK_OK(el_model_open(img2, NULL, &b));
    static const char *const texts[] = {
        "Hello world", "  leading spaces and 12345 digits", "caf\xc3\xa9 \xe2\x82\xac 100",
        "<|im_start|>user\nhi<|im_end|>", "",
    };
    int same = 0, n = (int)(sizeof texts / sizeof texts[0]);
    for (int i = 0; a && b && i < n; i++) {
        int32_t x[64], y[64];
        size_t nx = 0, ny = 0;
        el_status sa = el_tokenize(a, texts[i], strlen(texts[i]), true, x, 64, &nx);
        el_status sb = el_tokenize(b, texts[i], strlen(texts[i]), true, y, 64, &ny);
        if (sa == EL_OK && sb == EL_OK && nx == ny && !memcmp(x, y, nx * sizeof *x)) same++;
        else fprintf(stderr, "  image tokenizer differs on '%s'\n", texts[i]);
    }
    EL_CHECK(same == n);
    el_model_close(a);
    el_model_close(b);
}

static void test_metadata(void) {
    char *text = el_test_read_file(GGUF_DIR "/meta_all.json", NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    free(text);
    EL_CHECK(ref != NULL);
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(GGUF_DIR "/meta_all.gguf", NULL, &m));
    if (!ref || !m) {
        cJSON_Delete(ref);
        el_model_close(m);
        return;
    }
    const el_gguf *g = m->gguf;
    EL_CHECK(g && g->version == 3);
    EL_CHECK(!strcmp(el_model_format(m), "gguf") && !strcmp(el_model_family(m), "generic"));
    EL_CHECK(g->alignment == (uint64_t)cJSON_GetObjectItem(ref, "alignment")->valuedouble);
    EL_CHECK(g->data_offset == (uint64_t)cJSON_GetObjectItem(ref, "data_offset")->valuedouble);
    const cJSON *meta = cJSON_GetObjectItem(ref, "metadata");
    EL_CHECK((size_t)cJSON_GetArraySize(meta) == g->n_kv);
    size_t i = 0, same = 0;
    bool types[EL_GGUF_TYPE_COUNT] = {false}, nested = false;
    for (const cJSON *e = meta ? meta->child : NULL; e && i < g->n_kv; e = e->next, i++) {
        const el_gguf_kv *kv = &g->kv[i];
        bool ok = !strcmp(kv->key, cJSON_GetObjectItem(e, "key")->valuestring) &&
                  !strcmp(el_gguf_value_type_name(kv->v.type), type_of(e)) &&
                  same_value(g, &kv->v, cJSON_GetObjectItem(e, "value"));
        if (kv->v.type == EL_GGUF_ARRAY) {
            types[kv->v.elem_type] = true;
            nested |= kv->v.elem_type == EL_GGUF_ARRAY;
            const cJSON *et = cJSON_GetObjectItem(e, "elem_type");
            if (cJSON_IsString(et))
                ok = ok && !strcmp(el_gguf_value_type_name(kv->v.elem_type), et->valuestring);
        }
        types[kv->v.type] = true;
        if (!ok) fprintf(stderr, "  metadata '%s' differs from gguf.GGUFReader's\n", kv->key);
        same += ok;
    }
    fprintf(stderr, "metadata: %zu of %zu entries read back as gguf.GGUFReader reads them\n",
            same, g->n_kv);
    EL_CHECK(same == g->n_kv);
    for (int t = 0; t < EL_GGUF_TYPE_COUNT; t++) EL_CHECK(types[t]); /* all 13 covered */
    EL_CHECK(nested);
    /* The top-level string is also kept as a C string. */
    const el_gguf_kv *s = el_gguf_find(g, "t.string");
    EL_CHECK(s && s->v.str && !strcmp(s->v.str, "h\xc3\xa9llo, w\xc3\xb6rld \xe2\x9c\x93"));

    /* Tensors: names, GGML types, row-major shapes (ne reversed), sizes, offsets. */
    const cJSON *tj = cJSON_GetObjectItem(ref, "tensors");
    EL_CHECK((size_t)cJSON_GetArraySize(tj) == g->n_tensors &&
             el_model_tensor_count(m) == g->n_tensors);
    i = 0;
    for (const cJSON *e = tj ? tj->child : NULL; e && i < g->n_tensors; e = e->next, i++) {
        const el_gguf_tensor *t = &g->tensors[i];
        const char *name = cJSON_GetObjectItem(e, "name")->valuestring;
        el_tensor_info ti;
        bool ok = !strcmp(t->name, name) &&
                  !strcmp(el_gguf_type_name(t->type),
                          cJSON_GetObjectItem(e, "type")->valuestring) &&
                  t->nbytes == (uint64_t)cJSON_GetObjectItem(e, "nbytes")->valuedouble &&
                  t->offset == (uint64_t)cJSON_GetObjectItem(e, "offset")->valuedouble &&
                  el_model_tensor_find(m, name, &ti) == EL_OK && ti.nbytes == t->nbytes &&
                  ti.file_offset == t->offset;
        const cJSON *ne = cJSON_GetObjectItem(e, "ne");
        ok = ok && (uint32_t)cJSON_GetArraySize(ne) == ti.ndim;
        for (uint32_t d = 0; ok && d < ti.ndim; d++)
            ok = ti.shape[ti.ndim - 1 - d] == (uint64_t)cJSON_GetArrayItem(ne, (int)d)->valuedouble;
        if (!ok) fprintf(stderr, "  tensor '%s' differs from gguf.GGUFReader's\n", name);
        EL_CHECK(ok);
        EL_CHECK(ti.dtype == el_gguf_dtype(t->type));
    }
    /* Planning refuses: the architecture first. */
    el_plan plan;
    EL_CHECK_STATUS(el_plan_make(m, NULL, &plan), EL_E_UNSUPPORTED);
    EL_CHECK(strstr(el_last_error(), "architecture 'mamba' is not supported yet (supported: "
                                     "llama, qwen2, gemma3, phi3, gpt2, bert)") != NULL);
    EL_CHECK(strstr(el_last_error(), "meta_all.gguf") != NULL);
    /* With the architecture refusal cleared by hand, the block types (Q8_0, Q4_1, Q4_K)
     * plan as loadable weights, each its GGUF byte size. */
    m->gguf->refuse[0] = 0;
    EL_CHECK_OK(el_plan_make(m, NULL, &plan));
    for (size_t i = 0; i < el_model_tensor_count(m); i++) {
        el_tensor_info ti;
        EL_CHECK_OK(el_model_tensor(m, i, &ti));
        EL_CHECK(ti.dtype != EL_DT_NONE || !strcmp(ti.name, "d.i32"));
    }
    el_model_close(m);
    cJSON_Delete(ref);
}

/* ---- streaming: O_DIRECT, progress, every byte in place ---------------------------------- */

typedef struct prog {
    uint64_t calls, last_done, total;
    bool monotonic;
} prog;

static void on_progress(const el_load_progress *p, void *user) {
    prog *g = user;
    g->monotonic &= p->bytes_done >= g->last_done;
    g->last_done = p->bytes_done;
    g->total = p->bytes_total;
    g->calls++;
}

/* Loads the f32 GGUF (64 KiB chunks, smaller than the embedding) with and without O_DIRECT
 * and checks every tensor's bytes against the file at its GGUF offset. */
static void test_stream(bool direct) {
    const char *path = GGUF_DIR "/llama_gqa_f32.gguf";
    size_t fn = 0;
    char *file = el_test_read_file(path, &fn);
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(path, NULL, &m));
    if (!m || !file) {
        el_model_close(m);
        free(file);
        return;
    }
    el_plan_params pp = {0, 1, EL_DT_NONE, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    el_plan plan;
    el_arena *a = NULL;
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    EL_CHECK(plan.read_bytes == 384256); /* the tensors, not the header */
    a = el_test_arena(&plan, EL_MEMORY_HOST);
    prog pg = {0, 0, 0, true};
    el_load_params lp = {direct, on_progress, &pg};
    el_load_stats st;
    if (a) EL_CHECK_OK(el_model_load(m, &plan, a, &lp, &st));
    size_t same = 0, n = el_model_tensor_count(m);
    for (size_t i = 0; a && i < n; i++) {
        el_tensor_info ti;
        el_model_tensor(m, i, &ti);
        same += ti.data && ti.file_offset + ti.nbytes <= fn &&
                !memcmp(ti.data, file + ti.file_offset, ti.nbytes);
    }
    fprintf(stderr, "load %s: %zu of %zu tensors byte-identical to the file, %llu progress "
            "calls\n", direct ? "O_DIRECT" : "buffered", same, n, (unsigned long long)pg.calls);
    EL_CHECK(same == n && n == 20);
    EL_CHECK(pg.calls > 0 && pg.monotonic && pg.last_done == pg.total &&
             pg.total == plan.read_bytes);
    el_arena_deinit(a);
    el_model_close(m);
    free(file);
}

int main(void) {
    test_logits();
    test_converted("gpt2_small_f32.gguf", "hf_gpt2_small", "gpt2");
    test_converted("phi3_f32.gguf", "hf_llama_phi3", "phi3");
    test_bert_tokenizer(GGUF_DIR "/bert_base_f32.gguf");
    test_image_tokenizer();
    test_metadata();
    test_stream(false);
    test_stream(true);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_loader_gguf");
}
