/* test_tokenizer_gguf_spm.c - the SentencePiece tokenizer a GGUF file carries
 * (tokenizer.ggml.model "llama") against llama.cpp itself:
 *  - tests/fixtures/gguf/tok_spm.gguf and tok_spm_noprefix.gguf (a 1,000-piece BPE
 *    SentencePiece vocabulary with byte fallback, user-defined and control tokens, made by
 *    scripts/fixtures_spm.py): for ~300 texts (ASCII, accents, CJK, emoji, digits, runs of
 *    spaces, newlines and tabs, special tokens inside text, characters without a piece,
 *    stretches longer than the encoder's stack work space and one longer than its scratch,
 *    merged in the caller's buffer), the ids llama-tokenize gives with
 *    and without BOS (and EOS where the file asks for it), and the text llama.cpp's
 *    llama_detokenize gives for them, decoded here token by token;
 *  - the empty text (llama.cpp: nothing, or BOS alone), EL_E_NOFIT and its count, invalid
 *    UTF-8, and the refusal of a token text twice or of a byte-type token not <0xXX>.
 * The real Gemma 3 vocabulary: test_tokenizer_gguf_gemma3. */
// ctest-labels: tokenizer;gguf
// ctest-timeout: 30
#include "tests/support/el_test.h"
#include "tests/spm_cases.h"

#include "loader/formats/gguf.h"
#include "platform/platform.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* A tokenizer-only GGUF from memory; *bytes keeps its bytes (freed by the caller). */
static el_tokenizer *open_mem(const char *path, char **bytes, el_gguf **g) {
    size_t n = 0;
    *bytes = el_test_read_file(path, &n);
    EL_CHECK(*bytes != NULL);
    if (!*bytes) return NULL;
    static el_gguf_mem mem[4];
    static int k;
    mem[k & 3] = (el_gguf_mem){(const uint8_t *)*bytes, n};
    el_gguf_source src = {el_gguf_mem_read, &mem[k++ & 3], n, path};
    el_tokenizer *t = NULL;
    EL_CHECK_OK(el_gguf_parse(&src, g));
    if (*g) EL_CHECK_OK(el_tokenizer_gguf_open(*g, 0, &t));
    return t;
}

/* One case on one file: encode with and without BOS, decode both. */
static bool check_case(const el_tokenizer *t, const char *in, size_t len, const cJSON *f,
                       int32_t *ids, size_t cap, char *dec, size_t dcap) {
    bool ok = true;
    for (int bos = 0; bos < 2; bos++) {
        size_t n = 0;
        el_status s = el_tokenizer_encode(t, in, len, bos, ids, cap, &n);
        bool enc = s == EL_OK && same_ids(ids, n, cJSON_GetObjectItem(f, bos ? "ids_bos"
                                                                             : "ids"));
        size_t wl = 0;
        const cJSON *dec_hex = cJSON_GetObjectItem(f, bos ? "dec_bos" : "dec");
        char *want = el_test_unhex(dec_hex->valuestring, &wl);
        size_t dl = enc ? decode_all(t, ids, n, dec, dcap) : (size_t)-1;
        bool d = dl == wl && want && !memcmp(dec, want, wl);
        if (!enc || !d)
            fprintf(stderr, "  %s'%.60s' (%zu bytes)%s: %s differs from llama.cpp\n",
                    bos ? "BOS + " : "", in, len, len > 60 ? "..." : "",
                    !enc ? "encode" : "decode");
        free(want);
        ok = ok && enc && d;
    }
    return ok;
}

static void test_fixture_cases(void) {
    const char *names[] = {"tok_spm.gguf", "tok_spm_noprefix.gguf"};
    el_tokenizer *t[2] = {NULL, NULL};
    char *bytes[2] = {NULL, NULL};
    el_gguf *g[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", GGUF_DIR, names[i]);
        t[i] = open_mem(path, &bytes[i], &g[i]);
    }
    char *text = el_test_read_file(GGUF_DIR "/tok_spm_cases.json", NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    free(text);
    EL_CHECK(ref != NULL);
    size_t cap = 1 << 18, dcap = 1 << 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    char *dec = malloc(dcap);
    size_t ncase = 0, same = 0, longest = 0;
    const cJSON *cases = ref ? cJSON_GetObjectItem(ref, "cases") : NULL;
    for (const cJSON *c = cases ? cases->child : NULL; c && t[0] && t[1]; c = c->next) {
        size_t len = 0;
        char *in = el_test_unhex(cJSON_GetObjectItem(c, "hex")->valuestring, &len);
        size_t chars = 0; /* characters: the encoder's work is by character */
        for (size_t i = 0; i < len; i++) chars += ((unsigned char)in[i] & 0xc0) != 0x80;
        if (chars > longest) longest = chars;
        const cJSON *files = cJSON_GetObjectItem(c, "files");
        for (int i = 0; i < 2; i++, ncase++)
            same += check_case(t[i], in, len, cJSON_GetObjectItem(files, names[i]), ids, cap,
                               dec, dcap);
        free(in);
    }
    fprintf(stderr, "tok_spm: %zu of %zu (text, file) cases give llama.cpp's ids and "
            "detokenized text (longest text %zu characters)\n", same, ncase, longest);
    EL_CHECK(ncase >= 400 && same == ncase && longest > 16384 + 1);

    if (t[0]) {
        /* llama.cpp: "" gives nothing, or BOS alone */
        size_t n = 9;
        EL_CHECK_OK(el_tokenizer_encode(t[0], "", 0, false, ids, cap, &n));
        EL_CHECK(n == 0);
        EL_CHECK_OK(el_tokenizer_encode(t[0], "", 0, true, ids, cap, &n));
        EL_CHECK(n == 1 && ids[0] == 1);
        EL_CHECK(t[0]->bos_id == 1 && t[0]->eos_id == 2 && t[0]->unk_id == 0);
        /* too small a buffer: NOFIT with a count that then suffices, same ids */
        const char *s = "hello world, the quick brown fox";
        size_t want = 0;
        EL_CHECK_OK(el_tokenizer_encode(t[0], s, strlen(s), true, ids, cap, &want));
        int32_t small[4];
        EL_CHECK_STATUS(el_tokenizer_encode(t[0], s, strlen(s), true, small, 4, &n),
                        EL_E_NOFIT);
        EL_CHECK(n == want);
        /* a stretch longer than the stack work space: the count asks for work room */
        size_t big = 5000;
        char *lt = malloc(big);
        for (size_t i = 0; lt && i < big; i++) lt[i] = "ab c"[i % 4];
        EL_CHECK_STATUS(el_tokenizer_encode(t[0], lt, big, false, ids, 100, &n), EL_E_NOFIT);
        size_t need = n;
        EL_CHECK(need > 100 && need <= cap);
        size_t n1 = 0, n2 = 0;
        EL_CHECK_OK(el_tokenizer_encode(t[0], lt, big, false, ids, cap, &n1));
        int32_t *ids2 = malloc(need * sizeof *ids2);
        EL_CHECK_OK(el_tokenizer_encode(t[0], lt, big, false, ids2, need, &n2));
        EL_CHECK(n1 == n2 && ids2 && !memcmp(ids, ids2, n1 * sizeof *ids));
        free(ids2);
        free(lt);
        /* invalid UTF-8 is refused, naming the byte */
        EL_CHECK_STATUS(el_tokenizer_encode(t[0], "ab\xff", 3, false, ids, cap, &n),
                        EL_E_INVALID);
        EL_CHECK(strstr(el_last_error(), "byte 2") != NULL);
        fprintf(stderr, "tok_spm: %zu bytes of heap for %u tokens\n",
                el_tokenizer_gguf_spm_heap_bytes(t[0]), t[0]->vocab_size);
    }
    for (int i = 0; i < 2; i++) {
        el_tokenizer_close(t[i]);
        el_gguf_free(g[i]);
        free(bytes[i]);
    }
    cJSON_Delete(ref);
    free(ids);
    free(dec);
}

/* The fixture with "<0x41>" rewritten to `to` (6 bytes): refused with `want`. */
static void test_refused(const char *to, const char *want) {
    size_t n = 0;
    char *bytes = el_test_read_file(GGUF_DIR "/tok_spm.gguf", &n);
    EL_CHECK(bytes != NULL);
    if (!bytes) return;
    char *at = memmem(bytes, n, "<0x41>", 6);
    EL_CHECK(at != NULL);
    if (at) memcpy(at, to, 6);
    el_gguf_mem mem = {(const uint8_t *)bytes, n};
    el_gguf_source src = {el_gguf_mem_read, &mem, n, "bad.gguf"};
    el_gguf *g = NULL;
    el_tokenizer *t = NULL;
    EL_CHECK_OK(el_gguf_parse(&src, &g));
    if (g) EL_CHECK_STATUS(el_tokenizer_gguf_open(g, 0, &t), EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), want) != NULL);
    el_tokenizer_close(t);
    el_gguf_free(g);
    free(bytes);
}

int main(void) {
    test_fixture_cases();
    test_refused("<0x42>", "'<0x42>' is token"); /* a text twice */
    test_refused("<0xZ1>", "'<0xZ1>' has the byte type (6)");
    return el_test_finish("test_tokenizer_gguf_spm");
}
