/* test_llama_llama2c.c - llama2.c checkpoints: header validation (every field, exact file
 * size), the synthesised HF-named tensor table (names, shapes, file offsets computed here
 * from the header), and the forward pass of a tiny random checkpoint with an untied
 * classifier, GQA and odd sizes against logits from the independent NumPy reference
 * (tests/fixtures/llama2c_tiny_untied.json), per position, batched, chunked, and greedy. */
// ctest-labels: llama;loader
#include "loader/model_impl.h"
#include "tests/llama_fixture.h"

#include <math.h>
#include <string.h>

#define TINY_BIN EL_SOURCE_DIR "/tests/fixtures/llama2c_tiny_untied.bin"
#define TINY_JSON EL_SOURCE_DIR "/tests/fixtures/llama2c_tiny_untied.json"

static void put_header(uint8_t h[28], const int32_t v[7]) {
    for (int i = 0; i < 7; i++) memcpy(h + 4 * i, &v[i], 4);
}

static void test_detect(void) {
    uint8_t h[28];
    const int32_t good[7] = {64, 172, 5, 8, 4, 512, 512};
    put_header(h, good);
    EL_CHECK(el_llama2c_detect(h, 1056540));
    EL_CHECK(!el_llama2c_detect(h, 27));
    /* Each field out of range on its own. */
    static const struct { int field; int32_t value; } bad[] = {
        {0, 0}, {0, -64}, {0, 1 << 17}, {1, 0}, {2, 0}, {2, 5000}, {3, 0}, {3, 7} /* 64 % 7 */,
        {3, 128}, {4, 0}, {4, 3} /* 8 % 3 */, {4, 16}, {5, 0}, {5, INT32_MIN}, {5, 1 << 22},
        {6, 0}, {6, -1}, {3, 64} /* head size 1: odd */,
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int32_t v[7];
        memcpy(v, good, sizeof v);
        v[bad[i].field] = bad[i].value;
        put_header(h, v);
        if (el_llama2c_detect(h, 1u << 30)) fprintf(stderr, "bad header %zu accepted\n", i);
        EL_CHECK(!el_llama2c_detect(h, 1u << 30));
    }
    /* The start of a safetensors file is never a llama2.c header. */
    uint8_t st[28] = {0x40, 0x01, 0, 0, 0, 0, 0, 0, '{', '"', 'a', '"'};
    EL_CHECK(!el_llama2c_detect(st, 4096));
}

/* Writes a copy of the tiny checkpoint with changes; returns its path. */
static const char *write_variant(const char *name, const uint8_t *data, size_t len,
                                 int field, int32_t value, long size_delta) {
    size_t n = (size_t)((long)len + size_delta);
    uint8_t *buf = calloc(1, n > len ? n : len);
    memcpy(buf, data, len);
    if (field >= 0) memcpy(buf + 4 * field, &value, 4);
    const char *p = el_test_path(name);
    EL_CHECK(el_test_write_file(p, buf, n));
    free(buf);
    return p;
}

static void test_bad_files(const uint8_t *data, size_t len) {
    el_model *m = NULL;
    /* Truncated by one byte, by a lot, and one byte too long: exact size or nothing. */
    const char *p = write_variant("cut1.bin", data, len, -1, 0, -1);
    EL_CHECK_STATUS(el_model_open(p, NULL, &m), EL_E_INVALID);
    char want[96];
    snprintf(want, sizeof want, "size %zu, header implies %zu", len - 1, len);
    EL_CHECK(strstr(el_last_error(), want) != NULL);
    EL_CHECK(strstr(el_last_error(), "truncated") != NULL);
    p = write_variant("cut2.bin", data, len, -1, 0, -(long)len + 100);
    EL_CHECK_STATUS(el_model_open(p, NULL, &m), EL_E_INVALID);
    p = write_variant("long.bin", data, len, -1, 0, 1);
    EL_CHECK_STATUS(el_model_open(p, NULL, &m), EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "longer") != NULL);
    /* A tied header (positive vocab) on an untied file: the size no longer matches. */
    p = write_variant("tied.bin", data, len, 5, 67, 0);
    EL_CHECK_STATUS(el_model_open(p, NULL, &m), EL_E_INVALID);
    /* A header field changed: the size check or the field check catches it. */
    p = write_variant("heads.bin", data, len, 3, 3, 0);
    EL_CHECK_STATUS(el_model_open(p, NULL, &m), EL_E_INVALID);
    p = write_variant("layers.bin", data, len, 2, 3, 0);
    EL_CHECK_STATUS(el_model_open(p, NULL, &m), EL_E_INVALID);
    EL_CHECK(m == NULL);
}

static void test_table(el_model *m) {
    /* Header: dim 32, hidden 44, 2 layers, 4 heads, 2 kv heads, vocab -67, seq 32. */
    const uint64_t dim = 32, hid = 44, L = 2, vocab = 67, seq = 32, hs = 8, kvd = 16;
    EL_CHECK(!strcmp(el_model_format(m), "llama2c") && !strcmp(el_model_family(m), "llama"));
    EL_CHECK(el_model_tensor_count(m) == 1 + 9 * L + 1 + 1);
    EL_CHECK(m->config.vocab_size == 67 && !m->config.tie_word_embeddings);
    EL_CHECK(m->config.num_kv_heads == 2 && m->config.head_dim == 8);
    EL_CHECK(m->config.max_positions == 32 && m->config.bos_token_id == 1);
    EL_CHECK(m->flags & EL_MODEL_ROPE_INTERLEAVED);
    /* Offsets in floats from llama2.c's layout, then checked against the table. */
    uint64_t o = 0;
    const uint64_t emb = o;
    o += vocab * dim;
    const uint64_t rms_att = o;
    o += L * dim;
    const uint64_t wq = o;
    o += L * dim * dim;
    const uint64_t wk = o;
    o += L * kvd * dim;
    const uint64_t wv = o;
    o += L * kvd * dim;
    const uint64_t wo = o;
    o += L * dim * dim;
    const uint64_t rms_ffn = o;
    o += L * dim;
    const uint64_t w1 = o;
    o += L * hid * dim;
    const uint64_t w2 = o;
    o += L * dim * hid;
    const uint64_t w3 = o;
    o += L * hid * dim;
    const uint64_t rms_final = o;
    o += dim + 2 * seq * hs / 2;
    const uint64_t wcls = o;
    const struct {
        const char *name;
        uint64_t off, r, c;
    } want[] = {
        {"model.embed_tokens.weight", emb, vocab, dim},
        {"model.layers.1.input_layernorm.weight", rms_att + dim, 0, dim},
        {"model.layers.0.self_attn.q_proj.weight", wq, dim, dim},
        {"model.layers.1.self_attn.k_proj.weight", wk + kvd * dim, kvd, dim},
        {"model.layers.1.self_attn.v_proj.weight", wv + kvd * dim, kvd, dim},
        {"model.layers.1.self_attn.o_proj.weight", wo + dim * dim, dim, dim},
        {"model.layers.0.post_attention_layernorm.weight", rms_ffn, 0, dim},
        {"model.layers.1.mlp.gate_proj.weight", w1 + hid * dim, hid, dim},
        {"model.layers.1.mlp.down_proj.weight", w2 + dim * hid, dim, hid},
        {"model.layers.0.mlp.up_proj.weight", w3, hid, dim},
        {"model.norm.weight", rms_final, 0, dim},
        {"lm_head.weight", wcls, vocab, dim},
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        el_tensor_info t;
        EL_CHECK_OK(el_model_tensor_find(m, want[i].name, &t));
        bool ok = t.file_offset == 28 + 4 * want[i].off && t.dtype == EL_DT_F32 &&
                  (want[i].r ? t.ndim == 2 && t.shape[0] == want[i].r && t.shape[1] == want[i].c
                             : t.ndim == 1 && t.shape[0] == want[i].c);
        if (!ok) fprintf(stderr, "tensor %s: offset %llu\n", want[i].name,
                         (unsigned long long)t.file_offset);
        EL_CHECK(ok);
    }
    EL_CHECK(28 + 4 * (wcls + vocab * dim) == el_model_file_size(m, 0));
}

typedef struct tiny {
    int32_t *ids;
    size_t n_ids;
    float *logits; /* [n_ids, 67] */
    int32_t *greedy;
    size_t n_greedy;
} tiny;

static void test_forward(const tiny *fx, el_dtype dtype, float tol) {
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(TINY_BIN, NULL, &m));
    if (!m) return;
    el_plan_params pp = {0, 1, dtype, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    el_plan plan;
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    EL_CHECK(plan.params.ctx == 32);
    EL_CHECK(plan.region_bytes[EL_REGION_KV] == 8192); /* 2 x 2 layers x 32 x 16 x 4 */
    el_arena *a = el_test_arena(&plan, EL_MEMORY_HOST);
    EL_CHECK_OK(el_model_load(m, &plan, a, NULL, NULL));
    const size_t V = 67;
    for (unsigned chunk = 0; chunk <= 4; chunk += 4) {
        el_session_params sp = {1, EL_DEVICE_CPU, chunk, false};
        el_session *s = NULL;
        EL_CHECK_OK(el_session_init(m, a, &plan, &sp, &s));
        if (!s) break;
        /* Token by token: the logits at every position. */
        const float *lg = NULL;
        float worst = 0;
        for (size_t i = 0; i < fx->n_ids; i++) {
            EL_CHECK_OK(el_session_forward(s, &fx->ids[i], 1, &lg));
            worst = fmaxf(worst, el_test_max_abs_diff(lg, fx->logits + i * V, V));
        }
        if (chunk == 0)
            fprintf(stderr, "tiny %s: per-position logits max |diff| %.3g (tolerance %.3g)\n",
                    el_dtype_name(dtype), worst, tol);
        EL_CHECK(worst <= tol);
        /* The whole sequence in one call (chunk 4: three passes). */
        el_session_reset(s);
        EL_CHECK_OK(el_session_forward(s, fx->ids, fx->n_ids, &lg));
        EL_CHECK(el_test_max_abs_diff(lg, fx->logits + (fx->n_ids - 1) * V, V) <= tol);
        /* Greedy continuation. */
        int32_t got[16];
        size_t n = 0;
        for (; n < fx->n_greedy && n < 16; n++) {
            float best = lg[0];
            int32_t id = 0;
            for (int32_t k = 1; k < (int32_t)V; k++)
                if (lg[k] > best) best = lg[k], id = k;
            got[n] = id;
            EL_CHECK_OK(el_session_forward(s, &id, 1, &lg));
        }
        EL_CHECK(n == fx->n_greedy && !memcmp(got, fx->greedy, n * sizeof *got));
        /* Past the context, and ids outside the vocabulary: refused, cache unchanged. */
        uint32_t pos = el_session_pos(s);
        int32_t bad = 67;
        EL_CHECK_STATUS(el_session_forward(s, &bad, 1, &lg), EL_E_INVALID);
        EL_CHECK(el_session_pos(s) == pos);
        int32_t many[40] = {0};
        EL_CHECK_STATUS(el_session_forward(s, many, 40, &lg), EL_E_TOOLONG);
        EL_CHECK(el_session_pos(s) == pos);
        el_session_deinit(s);
    }
    /* No tokenizer next to this checkpoint: tokenizing says so, and names --tokenizer. */
    int32_t ids[8];
    size_t n;
    el_status st = el_tokenize(m, "hi", 2, true, ids, 8, &n);
    EL_CHECK(st == EL_E_INVALID && strstr(el_last_error(), "--tokenizer"));
    el_arena_deinit(a);
    el_model_close(m);
}

static void test_plan_ctx(void) {
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(TINY_BIN, NULL, &m));
    if (!m) return;
    el_plan plan;
    el_plan_params pp = {16, 1, EL_DT_NONE, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    EL_CHECK(plan.region_bytes[EL_REGION_KV] == 4096);
    pp.batch = 3; /* a decoder session runs one sequence: refused, not reserved unused */
    EL_CHECK_STATUS(el_plan_make(m, &pp, &plan), EL_E_UNSUPPORTED);
    EL_CHECK(strstr(el_last_error(), "--batch 3") != NULL);
    pp.ctx = 33; /* past seq_len */
    pp.batch = 1;
    EL_CHECK_STATUS(el_plan_make(m, &pp, &plan), EL_E_USAGE);
    EL_CHECK(strstr(el_last_error(), "32 positions") != NULL);
    /* A session needs the weights loaded first. */
    pp.ctx = 0;
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    el_arena *a = el_test_arena(&plan, EL_MEMORY_HOST);
    el_session *s = NULL;
    EL_CHECK_STATUS(el_session_init(m, a, &plan, NULL, &s), EL_E_USAGE);
    EL_CHECK(s == NULL);
    el_arena_deinit(a);
    el_model_close(m);
}

int main(void) {
    test_detect();
    size_t len = 0;
    uint8_t *data = (uint8_t *)el_test_read_file(TINY_BIN, &len);
    if (!data) {
        fprintf(stderr, "cannot read %s (run scripts/ref_llama2c.py)\n", TINY_BIN);
        return 1;
    }
    test_bad_files(data, len);
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(TINY_BIN, NULL, &m));
    if (m) test_table(m);
    el_model_close(m);
    cJSON *j = fixture_load(TINY_JSON);
    tiny fx;
    fx.n_ids = fixture_ids(cJSON_GetObjectItem(j, "ids"), &fx.ids);
    fx.n_greedy = fixture_ids(cJSON_GetObjectItem(j, "greedy_ids"), &fx.greedy);
    fx.logits = malloc(fx.n_ids * 67 * sizeof(float));
    size_t row = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "logits")) {
        float *r;
        size_t k = fixture_floats(e, &r);
        EL_CHECK(k == 67);
        if (row < fx.n_ids && k == 67) memcpy(fx.logits + row * 67, r, 67 * sizeof *r);
        row++;
        free(r);
    }
    EL_CHECK(row == fx.n_ids && fx.n_greedy == 16);
    test_forward(&fx, EL_DT_NONE, 1e-4f);
    test_forward(&fx, EL_DT_F16, 0.05f);
    test_plan_ctx();
    free(fx.ids);
    free(fx.greedy);
    free(fx.logits);
    free(data);
    cJSON_Delete(j);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_llama_llama2c");
}
