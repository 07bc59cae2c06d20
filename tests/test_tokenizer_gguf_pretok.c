/* test_tokenizer_gguf_pretok.c - GGUF byte-level BPE tokenizers under the tokenizer.ggml.pre
 * names llama.cpp maps (issue 17) against llama.cpp's llama-tokenize: small GGUF files packed by
 * edgeload from the trained vocabularies of tests/fixtures/tokenizer_pretok (1448 tokens) and
 * renamed with gguf-py, and llama-tokenize's ids for 120 texts each, all recorded by
 * scripts/ref_gguf_pretok.py (tests/fixtures/gguf_pretok): llama-bpe and llama3 (Llama 3's
 * regex, whole-word tokens kept), qwen2, smollm and gpt-2 give llama.cpp's ids for every
 * text (special tokens parsed, BOS as the file says), and so does "default" (llama.cpp's
 * four-regex cascade, which differs from GPT-2's pattern on 14 of the 120 texts;
 * default_digits adds the two-digit tokens, so that its digit triples change ids: without
 * them 11 of its texts fail); a name edgeload does not map is refused by name. */
// ctest-labels: tokenizer;gguf
#include "tests/support/el_test.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define DIR EL_SOURCE_DIR "/tests/fixtures/gguf_pretok"

static int hexval(char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* name.json's cases through name.gguf: texts whose ids equal llama.cpp's. */
static int run(const char *name, int *total) {
    char path[512];
    snprintf(path, sizeof path, "%s/%s.json", DIR, name);
    char *text = el_test_read_file(path, NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    free(text);
    EL_CHECK(ref != NULL);
    if (!ref) return 0;
    snprintf(path, sizeof path, "%s/%s.gguf", DIR, name);
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(path, NULL, &m));
    int same = 0, n = 0;
    const cJSON *c;
    cJSON_ArrayForEach(c, cJSON_GetObjectItem(ref, "cases")) {
        if (!m) break;
        const char *hex = cJSON_GetObjectItem(c, "hex")->valuestring;
        const size_t len = strlen(hex) / 2;
        char *s = malloc(len + 1);
        for (size_t i = 0; i < len; i++)
            s[i] = (char)(hexval(hex[2 * i]) << 4 | hexval(hex[2 * i + 1]));
        s[len] = 0;
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        size_t cap = 3 * len + 8, k = 0;
        int32_t *ids = malloc(cap * sizeof *ids);
        el_status st = el_tokenize(m, s, len, true, ids, cap, &k);
        bool eq = st == EL_OK && (int)k == cJSON_GetArraySize(want);
        for (size_t i = 0; eq && i < k; i++) eq = cJSON_GetArrayItem(want, (int)i)->valueint == ids[i];
        if (!eq && n - same < 3)
            fprintf(stderr, "   %s: '%.*s': %zu ids, llama.cpp %d%s%s\n", name, (int)(len < 40 ? len : 40),
                    s, k, cJSON_GetArraySize(want), st ? ": " : "", st ? el_last_error() : "");
        same += eq;
        n++;
        free(ids);
        free(s);
    }
    el_model_close(m);
    cJSON_Delete(ref);
    *total = n;
    return same;
}

int main(void) {
    static const char *const ok[] = {"llama_bpe", "llama3", "qwen2", "smollm", "gpt_2",
                                     "default", "default_digits"};
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        int n = 0, same = run(ok[i], &n);
        fprintf(stderr, "-- %s: %d of %d texts give llama.cpp's ids\n", ok[i], same, n);
        EL_CHECK(n == 120 && same == n);
    }
    /* A name edgeload does not map (here "falcon", the default file's bytes with its
     * tokenizer.ggml.pre value changed in memory): refused, naming it. */
    size_t len = 0;
    char *g = el_test_read_file(DIR "/default.gguf", &len);
    char *at = NULL;
    for (size_t i = 0; g && i + 7 <= len && !at; i++)
        if (!memcmp(g + i, "default", 7) && i >= 8 && g[i - 8] == 7) at = g + i;
    EL_CHECK(at != NULL);
    if (at) {
        memcpy(at, "falcon!", 7);
        const char *path = el_test_path("falcon.gguf");
        el_test_write_file(path, g, len);
        el_model *m = NULL;
        EL_CHECK_OK(el_model_open(path, NULL, &m));
        int32_t ids[64];
        size_t k = 0;
        if (m) {
            EL_CHECK_STATUS(el_tokenize(m, "I'm here", 8, true, ids, 64, &k), EL_E_UNSUPPORTED);
            EL_CHECK(strstr(el_last_error(), "tokenizer.ggml.pre 'falcon!'") != NULL);
        }
        el_model_close(m);
    }
    free(g);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_tokenizer_gguf_pretok");
}
