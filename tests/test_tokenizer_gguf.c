/* test_tokenizer_gguf.c - the tokenizer a GGUF file carries (tokenizer.ggml.model "gpt2"),
 * opened with the model (tests/fixtures/gguf/llama_gqa_gpt2tok_f16.gguf, made by
 * scripts/fixtures_gguf.py): ids and decoded text equal what the `tokenizers` library gives
 * with the same tokenizer (gpt2tok_cases.json), control tokens such as <|im_start|> are one
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

static size_t unhex(const char *h, char *out, size_t cap) {
    size_t n = 0;
    for (; h[0] && h[1] && n < cap; h += 2) {
        unsigned v = 0;
        sscanf(h, "%2x", &v);
        out[n++] = (char)v;
    }
    return n;
}

static void test_cases(void) {
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(GGUF_DIR "/llama_gqa_gpt2tok_f16.gguf", NULL, &m));
    char *text = el_test_read_file(GGUF_DIR "/gpt2tok_cases.json", NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    free(text);
    EL_CHECK(ref != NULL);
    if (!m || !ref) {
        el_model_close(m);
        cJSON_Delete(ref);
        return;
    }
    int32_t bos = 0, eos = 0;
    el_token_special(m, &bos, &eos);
    EL_CHECK(bos == -1 && eos == 2);
    size_t ncase = 0, same = 0;
    const cJSON *cases = cJSON_GetObjectItem(ref, "cases");
    for (const cJSON *c = cases ? cases->child : NULL; c; c = c->next, ncase++) {
        char in[512], want_dec[512], got_dec[1024];
        size_t len = unhex(cJSON_GetObjectItem(c, "hex")->valuestring, in, sizeof in);
        size_t dlen = unhex(cJSON_GetObjectItem(c, "decoded_hex")->valuestring, want_dec,
                            sizeof want_dec);
        int32_t ids[600];
        size_t n = 0;
        bool ok = el_tokenize(m, in, len, true, ids, 600, &n) == EL_OK;
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        ok = ok && n == (size_t)cJSON_GetArraySize(want);
        for (size_t i = 0; ok && i < n; i++)
            ok = ids[i] == (int32_t)cJSON_GetArrayItem(want, (int)i)->valuedouble;
        size_t glen = 0;
        for (size_t i = 0; ok && i < n; i++) {
            size_t k = 0;
            ok = el_token_piece(m, i ? ids[i - 1] : -1, ids[i], got_dec + glen,
                                sizeof got_dec - glen, &k) == EL_OK;
            glen += k;
        }
        ok = ok && glen == dlen && !memcmp(got_dec, want_dec, dlen);
        if (!ok) fprintf(stderr, "  case %zu ('%.*s') differs from tokenizers\n", ncase,
                         (int)len, in);
        same += ok;
    }
    fprintf(stderr, "gguf gpt2 tokenizer: %zu of %zu texts give the ids and text of the "
            "tokenizers library\n", same, ncase);
    EL_CHECK(ncase >= 8 && same == ncase);
    /* A control token is one id. */
    int32_t ids[16];
    size_t n = 0;
    EL_CHECK_OK(el_tokenize(m, "<|im_start|>", 12, false, ids, 16, &n));
    EL_CHECK(n == 1 && ids[0] == 1);
    el_model_close(m);
    cJSON_Delete(ref);
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

int main(void) {
    el_test_tmpdir();
    test_cases();
    test_refused("tokenizer.ggml.pre", "qwe2", "tokenizer.ggml.pre 'qwe2' is not supported yet");
    test_refused("tokenizer.ggml.model", "bert",
                 "tokenizer.ggml.model 'bert' is not supported yet (supported: gpt2)");
    el_test_tmpdir_cleanup();
    return el_test_finish("test_tokenizer_gguf");
}
