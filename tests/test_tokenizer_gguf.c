/* test_tokenizer_gguf.c - the tokenizer a GGUF file carries (tokenizer.ggml.model "gpt2"),
 * opened with the model (tests/fixtures/gguf/llama_gqa_gpt2tok_f16.gguf, made by
 * scripts/fixtures_gguf.py): ids and decoded text equal what the `tokenizers` library gives
 * with the same tokenizer (gpt2tok_cases.json), also for SmolLM2's pre-tokenizer (digits
 * apart, a byte without its token: tok_smollm.gguf), control tokens such as <|im_start|> are one
 * id, no BOS is added (add_bos_token false), and an unsupported tokenizer model or
 * pre-tokenizer is refused by name. */
// ctest-labels: tokenizer;gguf
// ctest-timeout: 30
#include "tests/support/el_test.h"

#include "loader/formats/gguf.h"
#include "loader/model_impl.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define GGUF_DIR EL_SOURCE_DIR "/tests/fixtures/gguf"

/* Every case of cases_json (texts as hex, the ids `tokenizers` gave, its decode) through t:
 * encode (asking for BOS: the files say none), then decode piece by piece. */
static void check_cases(const el_tokenizer *t, const char *cases_json, const char *what) {
    char *text = el_test_read_file(cases_json, NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    free(text);
    EL_CHECK(ref != NULL);
    size_t ncase = 0, same = 0;
    const cJSON *cases = ref ? cJSON_GetObjectItem(ref, "cases") : NULL;
    for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next, ncase++) {
        char in[512], want_dec[512], got_dec[1024];
        size_t len = el_test_unhex_into(cJSON_GetObjectItem(c, "hex")->valuestring, in, sizeof in);
        size_t dlen = el_test_unhex_into(cJSON_GetObjectItem(c, "decoded_hex")->valuestring,
                                         want_dec, sizeof want_dec);
        int32_t ids[600];
        size_t n = 0;
        bool ok = el_tokenizer_encode(t, in, len, true, ids, 600, &n) == EL_OK;
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        ok = ok && n == (size_t)cJSON_GetArraySize(want);
        for (size_t i = 0; ok && i < n; i++)
            ok = ids[i] == (int32_t)cJSON_GetArrayItem(want, (int)i)->valuedouble;
        size_t glen = 0;
        for (size_t i = 0; ok && i < n; i++) {
            size_t k = 0;
            ok = t->vt->decode(t, i ? ids[i - 1] : -1, ids[i], got_dec + glen,
                               sizeof got_dec - glen, &k) == EL_OK;
            glen += k;
        }
        ok = ok && glen == dlen && !memcmp(got_dec, want_dec, dlen);
        if (!ok) fprintf(stderr, "  case %zu ('%.*s') differs from tokenizers\n", ncase,
                         (int)len, in);
        same += ok;
    }
    fprintf(stderr, "%s: %zu of %zu texts give the ids and text of the tokenizers library\n",
            what, same, ncase);
    EL_CHECK(ncase >= 10 && same == ncase);
    cJSON_Delete(ref);
}

/* The model's tokenizer (opened with it from its metadata). */
static void test_model(void) {
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(GGUF_DIR "/llama_gqa_gpt2tok_f16.gguf", NULL, &m));
    const el_tokenizer *t = NULL;
    if (m) EL_CHECK_OK(m->family->tokenizer(m, &t));
    if (!t) {
        el_model_close(m);
        return;
    }
    int32_t bos = 0, eos = 0;
    el_token_special(m, &bos, &eos);
    EL_CHECK(bos == -1 && eos == 2);
    check_cases(t, GGUF_DIR "/gpt2tok_cases.json", "gpt2 pre-tokenizer, with the model");
    /* A control token is one id. */
    int32_t ids[16];
    size_t n = 0;
    EL_CHECK_OK(el_tokenize(m, "<|im_start|>", 12, false, ids, 16, &n));
    EL_CHECK(n == 1 && ids[0] == 1);
    el_model_close(m);
}

/* A tokenizer-only file with SmolLM2's pre-tokenizer (digits apart) and a byte without its
 * token, parsed from memory. */
static void test_smollm_pre(void) {
    size_t n = 0;
    char *bytes = el_test_read_file(GGUF_DIR "/tok_smollm.gguf", &n);
    EL_CHECK(bytes != NULL);
    el_gguf_mem mem = {(const uint8_t *)bytes, n};
    el_gguf_source src = {el_gguf_mem_read, &mem, n, "tok_smollm.gguf"};
    el_gguf *g = NULL;
    el_tokenizer *t = NULL;
    if (bytes) EL_CHECK_OK(el_gguf_parse(&src, &g));
    if (g) EL_CHECK_OK(el_tokenizer_gguf_open(g, 512, &t));
    if (t) check_cases(t, GGUF_DIR "/tok_smollm_cases.json", "smollm pre-tokenizer");
    el_tokenizer_close(t);
    el_gguf_free(g);
    free(bytes);
}

/* The fixture with the 4-byte string value of key rewritten to `to`. */
static void test_refused(const char *key, const char *to, const char *want) {
    size_t n = 0;
    char *bytes = el_test_read_file(GGUF_DIR "/llama_gqa_gpt2tok_f16.gguf", &n);
    EL_CHECK(bytes != NULL);
    if (!bytes) return;
    char *at = memmem(bytes, n, key, strlen(key));
    EL_CHECK(at != NULL && strlen(to) == 4);
    if (at) memcpy(at + strlen(key) + 4 + 8, to, 4); /* after the type and the length */
    const char *p = el_test_path("refused.gguf");
    EL_CHECK(el_test_write_file(p, bytes, n));
    free(bytes);
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(p, NULL, &m)); /* inspect, plan and load still work */
    int32_t ids[8];
    size_t k = 0;
    if (m) EL_CHECK_STATUS(el_tokenize(m, "hi", 2, false, ids, 8, &k), EL_E_UNSUPPORTED);
    EL_CHECK(strstr(el_last_error(), want) != NULL);
    el_model_close(m);
}

/* tokenizer.ggml.eos_token_id 9999 of 512 tokens: refused naming the key (the check once
 * read the tokenizer it had just closed; found by fuzz_gguf). */
static void test_eos_out_of_range(void) {
    size_t n = 0;
    char *bytes = el_test_read_file(GGUF_DIR "/llama_gqa_gpt2tok_f16.gguf", &n);
    const char *key = "tokenizer.ggml.eos_token_id";
    char *at = bytes ? memmem(bytes, n, key, strlen(key)) : NULL;
    EL_CHECK(at != NULL);
    if (!at) {
        free(bytes);
        return;
    }
    uint32_t v = 9999;
    memcpy(at + strlen(key) + 4, &v, 4); /* after the u32 type tag */
    const char *p = el_test_path("eos.gguf");
    EL_CHECK(el_test_write_file(p, bytes, n));
    free(bytes);
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(p, NULL, &m));
    int32_t ids[8];
    size_t k = 0;
    if (m) EL_CHECK_STATUS(el_tokenize(m, "hi", 2, false, ids, 8, &k), EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "'tokenizer.ggml.eos_token_id': expected an id below the "
                                     "512 tokens, got 9999") != NULL);
    el_model_close(m);
}

/* ---- the real GPT-2 vocabulary as llama.cpp's converter stores it ------------------------ */

typedef struct wbuf {
    uint8_t *p;
    size_t n, cap;
} wbuf;

static void w_put(wbuf *b, const void *x, size_t n) {
    if (b->n + n > b->cap) {
        size_t cap = (b->cap ? b->cap * 2 : 1 << 16) + n;
        uint8_t *q = realloc(b->p, cap);
        if (!q) abort();
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->n, x, n);
    b->n += n;
}
static void w_u32(wbuf *b, uint32_t v) { w_put(b, &v, 4); } /* little-endian hosts */
static void w_u64(wbuf *b, uint64_t v) { w_put(b, &v, 8); }
static void w_str(wbuf *b, const char *s, size_t n) {
    w_u64(b, n);
    w_put(b, s, n);
}
static void w_key(wbuf *b, const char *k, uint32_t type) {
    w_str(b, k, strlen(k));
    w_u32(b, type);
}

/* encoder.json + vocab.bpe from ../shared/models/gpt2-tokenizer written as GGUF metadata
 * (tokens by id, "a b" merges, <|endoftext|> a control token, bos = eos = 50256), then the
 * HF GPT2TokenizerFast ids of tests/fixtures/tokenizer_cases/gpt2.json. */
static void test_real_gpt2(void) {
    const char *dir = el_test_shared_models();
    if (!dir) {
        printf("../shared/models is absent: the real GPT-2 vocabulary check is skipped\n");
        return;
    }
    char path[600];
    snprintf(path, sizeof path, "%s/gpt2-tokenizer/encoder.json", dir);
    char *enc = el_test_read_file(path, NULL);
    snprintf(path, sizeof path, "%s/gpt2-tokenizer/vocab.bpe", dir);
    size_t mlen = 0;
    char *bpe = el_test_read_file(path, &mlen);
    char *cases_text = el_test_read_file(EL_SOURCE_DIR "/tests/fixtures/tokenizer_cases/gpt2.json",
                                         NULL);
    cJSON *vocab = enc ? cJSON_Parse(enc) : NULL;
    cJSON *ref = cases_text ? cJSON_Parse(cases_text) : NULL;
    free(enc);
    free(cases_text);
    EL_CHECK(vocab && bpe && ref);
    if (!vocab || !bpe || !ref) {
        cJSON_Delete(vocab), cJSON_Delete(ref), free(bpe);
        return;
    }
    int nv = cJSON_GetArraySize(vocab);
    const char **tok = calloc((size_t)nv, sizeof *tok);
    for (const cJSON *e = vocab->child; e; e = e->next)
        if ((int)e->valuedouble >= 0 && (int)e->valuedouble < nv)
            tok[(int)e->valuedouble] = e->string;
    /* merges: the lines after "#version", up to the last non-empty one */
    size_t nm = 0;
    char *lines = strchr(bpe, '\n');
    for (char *p = lines; p && *p; p = strchr(p + 1, '\n'))
        if (p[1] && p[1] != '\n') nm++;
    wbuf b = {0};
    w_put(&b, "GGUF", 4);
    w_u32(&b, 3);
    w_u64(&b, 0);
    w_u64(&b, 7);
    w_key(&b, "general.architecture", EL_GGUF_STRING);
    w_str(&b, "gpt2", 4);
    w_key(&b, "tokenizer.ggml.model", EL_GGUF_STRING);
    w_str(&b, "gpt2", 4);
    w_key(&b, "tokenizer.ggml.pre", EL_GGUF_STRING);
    w_str(&b, "gpt2", 4);
    w_key(&b, "tokenizer.ggml.tokens", EL_GGUF_ARRAY);
    w_u32(&b, EL_GGUF_STRING);
    w_u64(&b, (uint64_t)nv);
    for (int i = 0; i < nv; i++) w_str(&b, tok[i] ? tok[i] : "", tok[i] ? strlen(tok[i]) : 0);
    w_key(&b, "tokenizer.ggml.token_type", EL_GGUF_ARRAY);
    w_u32(&b, EL_GGUF_I32);
    w_u64(&b, (uint64_t)nv);
    for (int i = 0; i < nv; i++)
        w_u32(&b, tok[i] && !strcmp(tok[i], "<|endoftext|>") ? 3 : 1);
    w_key(&b, "tokenizer.ggml.merges", EL_GGUF_ARRAY);
    w_u32(&b, EL_GGUF_STRING);
    w_u64(&b, nm);
    for (char *p = lines; p && *p && p[1]; ) {
        char *q = strchr(p + 1, '\n');
        size_t l = q ? (size_t)(q - p - 1) : strlen(p + 1);
        if (l) w_str(&b, p + 1, l);
        p = q;
    }
    w_key(&b, "tokenizer.ggml.eos_token_id", EL_GGUF_U32);
    w_u32(&b, 50256);
    free(tok);
    free(bpe);
    cJSON_Delete(vocab);

    el_gguf_mem m = {b.p, b.n};
    el_gguf_source src = {el_gguf_mem_read, &m, b.n, "gpt2.gguf"};
    el_gguf *g = NULL;
    el_tokenizer *t = NULL;
    EL_CHECK_OK(el_gguf_parse(&src, &g));
    if (g) EL_CHECK_OK(el_tokenizer_gguf_open(g, 50257, &t));
    size_t count = 0, same = 0;
    static int32_t ids[1 << 16];
    const cJSON *cases = cJSON_GetObjectItem(ref, "cases");
    for (const cJSON *c = cases && t ? cases->child : NULL; c; c = c->next, count++) {
        const char *h = cJSON_GetObjectItem(c, "hex")->valuestring;
        size_t hl = strlen(h) / 2, n = 0;
        char *text = malloc(hl + 1);
        el_test_unhex_into(h, text, hl);
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        bool ok = el_tokenizer_encode(t, text, hl, true, ids, 1 << 16, &n) == EL_OK &&
                  n == (size_t)cJSON_GetArraySize(want);
        for (size_t i = 0; ok && i < n; i++)
            ok = ids[i] == (int32_t)cJSON_GetArrayItem(want, (int)i)->valuedouble;
        same += ok;
        free(text);
    }
    printf("real GPT-2 vocabulary from GGUF metadata: %zu of %zu texts give HF's ids\n", same,
           count);
    EL_CHECK(count > 50 && same == count);
    el_tokenizer_close(t);
    el_gguf_free(g);
    free(b.p);
    cJSON_Delete(ref);
}

int main(void) {
    el_test_tmpdir();
    test_model();
    test_smollm_pre();
    test_real_gpt2();
    test_refused("tokenizer.ggml.pre", "qwe2", "tokenizer.ggml.pre 'qwe2' is not supported yet");
    test_refused("tokenizer.ggml.model", "rwkv",
                 "tokenizer.ggml.model 'rwkv' is not supported yet (supported: gpt2, "
                 "llama, bert)");
    test_eos_out_of_range();
    el_test_tmpdir_cleanup();
    return el_test_finish("test_tokenizer_gguf");
}
