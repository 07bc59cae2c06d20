/* test_tokenizer_llama2c.c - the llama2.c tokenizer.bin backend against the encodings the
 * independent reference (scripts/ref_llama2c.py) recorded for tok512.bin: the prompt,
 * spaces, newlines, characters missing from the 512-token vocabulary (byte fallback), the
 * empty string; decode round trips; invalid UTF-8; small buffers; malformed files. */
// ctest-labels: tokenizer;llama
#include "tests/llama_fixture.h"
#include "tokenizer/tokenizer.h"

#include <math.h>
#include <string.h>

static el_tokenizer *g_tok;

/* Encodes with a roomy buffer (the cached merge path) and with exactly the pre-merge count
 * (the in-place path); both must agree. Returns the count, ids in out. */
static size_t encode_both(const char *text, size_t len, bool bos, int32_t *out, size_t cap) {
    size_t n = 0;
    EL_CHECK_OK(el_tokenizer_encode(g_tok, text, len, bos, out, cap, &n));
    /* Find the pre-merge count through EL_E_NOFIT with cap 0. */
    size_t need = 0;
    el_status s = el_tokenizer_encode(g_tok, text, len, bos, NULL, 0, &need);
    if (need == 0) { /* nothing to write at all */
        EL_CHECK(s == EL_OK && n == 0);
        return n;
    }
    EL_CHECK(s == EL_E_NOFIT);
    EL_CHECK(need >= n);
    int32_t *tight = malloc(need * sizeof *tight);
    size_t n2 = 0;
    EL_CHECK_OK(el_tokenizer_encode(g_tok, text, len, bos, tight, need, &n2));
    EL_CHECK(n2 == n && memcmp(tight, out, n * sizeof *out) == 0);
    if (need > 1) { /* one less than the pre-merge count: does not fit */
        EL_CHECK_STATUS(el_tokenizer_encode(g_tok, text, len, bos, tight, need - 1, &n2),
                        EL_E_NOFIT);
        EL_CHECK(n2 == need);
    }
    free(tight);
    return n;
}

/* Concatenates the decoded pieces (prev-aware) into buf. */
static size_t decode_all(const int32_t *ids, size_t n, char *buf, size_t cap) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == 0 && ids[0] == g_tok->bos_id) continue;
        size_t k = 0;
        EL_CHECK_OK(el_tokenizer_decode(g_tok, i ? ids[i - 1] : -1, ids[i], buf + len,
                                        cap - len, &k));
        len += k;
    }
    buf[len] = 0;
    return len;
}

static void test_fixture_encodings(void) {
    cJSON *j = fixture_load(STORIES_FIXTURE);
    int32_t ids[512], *want;
    char text[2048];
    /* The prompt. */
    const char *prompt = cJSON_GetObjectItem(j, "prompt")->valuestring;
    size_t nw = fixture_ids(cJSON_GetObjectItem(j, "prompt_ids"), &want);
    size_t n = encode_both(prompt, strlen(prompt), true, ids, 512);
    EL_CHECK(n == nw && memcmp(ids, want, n * sizeof *ids) == 0);
    free(want);
    /* Every recorded sample, and its round trip. */
    const cJSON *e;
    int count = 0;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "encodings")) {
        const char *s = cJSON_GetObjectItem(e, "text")->valuestring;
        nw = fixture_ids(cJSON_GetObjectItem(e, "ids"), &want);
        n = encode_both(s, strlen(s), true, ids, 512);
        bool same = n == nw && memcmp(ids, want, n * sizeof *ids) == 0;
        if (!same) fprintf(stderr, "encoding of '%s' differs from the reference\n", s);
        EL_CHECK(same);
        decode_all(ids, n, text, sizeof text);
        EL_CHECK(strcmp(text, s) == 0);
        free(want);
        count++;
    }
    EL_CHECK(count >= 9);
    cJSON_Delete(j);
}

static void test_byte_fallback(void) {
    /* Characters tok512 lacks are spelled as <0xXX> tokens: id 3 + byte. */
    static const char *texts[] = {"日本", "\xf0\x9f\x98\x80", "\xc2\xa9"};
    for (size_t k = 0; k < 3; k++) {
        const char *s = texts[k];
        int32_t ids[64];
        size_t n = 0;
        EL_CHECK_OK(el_tokenizer_encode(g_tok, s, strlen(s), false, ids, 64, &n));
        /* Drop the leading space token(s) of the dummy prefix, then the bytes follow. */
        size_t len = strlen(s), i = n - len;
        bool ok = n >= len;
        for (size_t b = 0; ok && b < len; b++)
            ok = ids[i + b] == 3 + (int32_t)(unsigned char)s[b];
        EL_CHECK(ok);
        /* Without BOS the dummy-prefix space stays: " " + the text comes back. */
        char buf[64];
        decode_all(ids, n, buf, sizeof buf);
        EL_CHECK(buf[0] == ' ' && strcmp(buf + 1, s) == 0);
    }
    /* A byte token decodes to its raw byte, whatever precedes it. */
    char buf[8];
    size_t k = 0;
    EL_CHECK_OK(el_tokenizer_decode(g_tok, 1, 3 + '\n', buf, sizeof buf, &k));
    EL_CHECK(k == 1 && buf[0] == '\n');
    EL_CHECK_OK(el_tokenizer_decode(g_tok, 5, 3 + 0xe6, buf, sizeof buf, &k));
    EL_CHECK(k == 1 && (unsigned char)buf[0] == 0xe6);
}

static void test_edges(void) {
    int32_t ids[16];
    size_t n = 99;
    EL_CHECK_OK(el_tokenizer_encode(g_tok, "", 0, true, ids, 16, &n));
    EL_CHECK(n == 1 && ids[0] == 1);
    EL_CHECK_OK(el_tokenizer_encode(g_tok, "", 0, false, ids, 16, &n));
    EL_CHECK(n == 0);
    EL_CHECK_OK(el_tokenizer_encode(g_tok, NULL, 0, false, ids, 16, &n));
    EL_CHECK(n == 0);
    /* BOS alone in a buffer of one. */
    EL_CHECK_OK(el_tokenizer_encode(g_tok, "", 0, true, ids, 1, &n));
    EL_CHECK_STATUS(el_tokenizer_encode(g_tok, "", 0, true, ids, 0, &n), EL_E_NOFIT);

    /* Invalid UTF-8 anywhere: rejected with the byte offset. */
    static const struct { const char *s; size_t at; } bad[] = {
        {"\xff", 0}, {"ab\x80", 2}, {"a\xc3", 1}, {"\xc0\x80", 0}, {"x\xed\xa0\x80", 1},
        {"\xf4\x90\x80\x80", 0}, {"ok \xe2\x82", 3}, {"\xf8\x88\x80\x80\x80", 0},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        EL_CHECK_STATUS(el_tokenizer_encode(g_tok, bad[i].s, strlen(bad[i].s), true, ids, 16,
                                            &n),
                        EL_E_INVALID);
        char want[32];
        snprintf(want, sizeof want, "at byte %zu", bad[i].at);
        EL_CHECK(strstr(el_last_error(), want) != NULL);
    }
    /* Embedded NUL is valid UTF-8 and spelled with the <0x00> byte token. */
    EL_CHECK_OK(el_tokenizer_encode(g_tok, "a\0b", 3, false, ids, 16, &n));
    bool has0 = false;
    for (size_t i = 0; i < n; i++) has0 = has0 || ids[i] == 3;
    EL_CHECK(has0);

    /* Decode: ids out of range, small buffers, the space after BOS. */
    char buf[16];
    EL_CHECK_STATUS(el_tokenizer_decode(g_tok, 1, 512, buf, sizeof buf, &n), EL_E_INVALID);
    EL_CHECK_STATUS(el_tokenizer_decode(g_tok, 1, -1, buf, sizeof buf, &n), EL_E_INVALID);
    int32_t once[8];
    EL_CHECK_OK(el_tokenizer_encode(g_tok, "Once", 4, true, once, 8, &n));
    EL_CHECK(n == 2);
    size_t k;
    EL_CHECK_OK(el_tokenizer_decode(g_tok, 1, once[1], buf, sizeof buf, &k));
    EL_CHECK(k == 4 && !strcmp(buf, "Once"));
    EL_CHECK_OK(el_tokenizer_decode(g_tok, 7, once[1], buf, sizeof buf, &k));
    EL_CHECK(k == 5 && !strcmp(buf, " Once"));
    EL_CHECK_STATUS(el_tokenizer_decode(g_tok, 7, once[1], buf, 5, &k), EL_E_NOFIT);

    /* A long text round-trips, in both merge paths. */
    char text[3000], back[3000];
    size_t len = 0;
    while (len + 60 < sizeof text)
        len += (size_t)snprintf(text + len, sizeof text - len,
                                "Lily saw a big dog. \"Hi!\" she said; it ran.\n");
    int32_t *many = malloc(4000 * sizeof *many);
    size_t m = encode_both(text, len, true, many, 4000);
    EL_CHECK(m > 100 && m < len);
    decode_all(many, m, back, sizeof back);
    EL_CHECK(strcmp(back, text) == 0);
    free(many);
}

/* ---- malformed files ------------------------------------------------------------------ */

static size_t put_i32(unsigned char *p, int32_t v) {
    memcpy(p, &v, 4);
    return 4;
}

static void test_malformed(void) {
    char *good = el_test_read_file(STORIES_TOK, NULL);
    size_t good_len = 0;
    free(el_test_read_file(STORIES_TOK, &good_len));
    el_tokenizer *t = NULL;
    /* The whole file parses; a shorter or longer vocabulary than the model's does not. */
    EL_CHECK_OK(el_tokenizer_llama2c_parse(good, good_len, "tok512.bin", 512, &t));
    el_tokenizer_close(t);
    EL_CHECK_OK(el_tokenizer_llama2c_parse(good, good_len, "tok512.bin", 0, &t));
    EL_CHECK(t && t->vocab_size == 512);
    el_tokenizer_close(t);
    EL_CHECK_STATUS(el_tokenizer_llama2c_parse(good, good_len, "tok512.bin", 32000, &t),
                    EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "512") && strstr(el_last_error(), "32000"));
    EL_CHECK(t == NULL);
    /* Every truncation is rejected, never read past. */
    int rejected = 0, tried = 0;
    for (size_t cut = 0; cut < good_len; cut += 1 + cut / 16) {
        tried++;
        if (el_tokenizer_llama2c_parse(good, cut, "cut", 512, &t) == EL_E_INVALID) rejected++;
        else el_tokenizer_close(t);
    }
    EL_CHECK(rejected == tried);

    unsigned char b[64];
    size_t o = 0;
    o += put_i32(b + o, 4);
    float nan_score = NAN;
    memcpy(b + o, &nan_score, 4), o += 4;
    o += put_i32(b + o, 1);
    b[o++] = 'a';
    EL_CHECK_STATUS(el_tokenizer_llama2c_parse(b, o, "nan", 0, &t), EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "finite"));

    static const int32_t lens[] = {-1, 0, 5, 1000};
    for (size_t i = 0; i < 4; i++) {
        o = 0;
        o += put_i32(b + o, 4);
        float sc = 0;
        memcpy(b + o, &sc, 4), o += 4;
        o += put_i32(b + o, lens[i]);
        memcpy(b + o, "abcd", 4), o += 4;
        EL_CHECK_STATUS(el_tokenizer_llama2c_parse(b, o, "len", 0, &t), EL_E_INVALID);
    }
    o = 0;
    o += put_i32(b + o, 0); /* max_token_length 0 */
    EL_CHECK_STATUS(el_tokenizer_llama2c_parse(b, o, "max", 0, &t), EL_E_INVALID);
    free(good);

    /* Dispatch by content: JSON (even after whitespace) goes to the tokenizer.json backend,
     * which refuses this one naming the file; a real one opens there; a SentencePiece
     * .model is refused by name; a missing file is an I/O error. */
    const char *json = el_test_path("tokenizer.json");
    EL_CHECK(el_test_write_file(json, "  \n{\"model\": {}}", 16));
    el_status s = el_tokenizer_open(json, 512, &t);
    EL_CHECK(s != EL_OK && strstr(el_last_error(), "tokenizer.json"));
    const char *hf = EL_SOURCE_DIR "/tests/fixtures/hf_llama_gqa/tokenizer.json";
    struct stat st;
    if (stat(hf, &st) == 0) {
        EL_CHECK_OK(el_tokenizer_open(hf, 0, &t));
        EL_CHECK(t && strcmp(t->vt->name, "hf-bpe") == 0);
        el_tokenizer_close(t);
    }
    const char *spm = el_test_path("tokenizer.model");
    EL_CHECK(el_test_write_file(spm, "\x0a\x09\x0a\x05<unk>", 9));
    EL_CHECK_STATUS(el_tokenizer_open(spm, 512, &t), EL_E_UNSUPPORTED);
    EL_CHECK(strstr(el_last_error(), "SentencePiece"));
    EL_CHECK_STATUS(el_tokenizer_open(el_test_path("absent.bin"), 512, &t), EL_E_IO);
}

int main(void) {
    fixture_require_stories();
    EL_CHECK_OK(el_tokenizer_open(STORIES_TOK, 512, &g_tok));
    if (!g_tok) return el_test_finish("test_tokenizer_llama2c");
    EL_CHECK(g_tok->vocab_size == 512 && g_tok->bos_id == 1 && g_tok->eos_id == 2);
    EL_CHECK(strcmp(g_tok->vt->name, "llama2c") == 0);
    test_fixture_encodings();
    test_byte_fallback();
    test_edges();
    test_malformed();
    el_tokenizer_close(g_tok);
    el_tokenizer_close(NULL);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_tokenizer_llama2c");
}
