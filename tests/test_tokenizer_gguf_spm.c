/* test_tokenizer_gguf_spm.c - the SentencePiece tokenizer a GGUF file carries
 * (tokenizer.ggml.model "llama") against llama.cpp itself:
 *  - tests/fixtures/gguf/tok_spm.gguf and tok_spm_noprefix.gguf (a 1,000-piece BPE
 *    SentencePiece vocabulary with byte fallback, user-defined and control tokens, made by
 *    scripts/fixtures_spm.py): for ~300 texts (ASCII, accents, CJK, emoji, digits, runs of
 *    spaces, newlines and tabs, special tokens inside text, characters without a piece, two
 *    stretches longer than the encoder's stack work space), the ids llama-tokenize gives with
 *    and without BOS (and EOS where the file asks for it), and the text llama.cpp's
 *    llama_detokenize gives for them, decoded here token by token;
 *  - the empty text (llama.cpp: nothing, or BOS alone), EL_E_NOFIT and its count, invalid
 *    UTF-8, and the refusal of a token text twice or of a byte-type token not <0xXX>;
 *  - the real Gemma 3 270M vocabulary (262,144 tokens; scripts/fetch_gguf.sh, or
 *    EL_GEMMA3_GGUF=path): ~50 texts against llama-tokenize's ids, the heap it holds, and the
 *    time to encode 1 MB of text. Skipped, loudly, when the file is absent. */
// ctest-labels: tokenizer;gguf
// ctest-timeout: 60
#include "tests/support/el_test.h"

#include "loader/formats/gguf.h"
#include "platform/platform.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GGUF_DIR EL_SOURCE_DIR "/tests/fixtures/gguf"

static char *unhex(const char *h, size_t *n) {
    size_t len = strlen(h) / 2;
    char *out = malloc(len + 1);
    for (size_t i = 0; out && i < len; i++) {
        unsigned v = 0;
        sscanf(h + 2 * i, "%2x", &v);
        out[i] = (char)v;
    }
    if (out) out[len] = 0;
    *n = len;
    return out;
}

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

/* ids equal to the JSON array want? */
static bool same_ids(const int32_t *ids, size_t n, const cJSON *want) {
    if (!want || n != (size_t)cJSON_GetArraySize(want)) return false;
    size_t i = 0;
    for (const cJSON *w = want->child; w; w = w->next, i++)
        if (ids[i] != (int32_t)w->valuedouble) return false;
    return true;
}

/* Decodes ids token by token (prev -1 first) into buf; its length, or (size_t)-1. */
static size_t decode_all(const el_tokenizer *t, const int32_t *ids, size_t n, char *buf,
                         size_t cap) {
    size_t len = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = 0;
        if (el_tokenizer_decode(t, i ? ids[i - 1] : -1, ids[i], buf + len, cap - len, &k) !=
            EL_OK)
            return (size_t)-1;
        len += k;
    }
    return len;
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
        char *want = unhex(cJSON_GetObjectItem(f, bos ? "dec_bos" : "dec")->valuestring, &wl);
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
    size_t cap = 1 << 17, dcap = 1 << 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    char *dec = malloc(dcap);
    size_t ncase = 0, same = 0, longest = 0;
    const cJSON *cases = ref ? cJSON_GetObjectItem(ref, "cases") : NULL;
    for (const cJSON *c = cases ? cases->child : NULL; c && t[0] && t[1]; c = c->next) {
        size_t len = 0;
        char *in = unhex(cJSON_GetObjectItem(c, "hex")->valuestring, &len);
        if (len > longest) longest = len;
        const cJSON *files = cJSON_GetObjectItem(c, "files");
        for (int i = 0; i < 2; i++, ncase++)
            same += check_case(t[i], in, len, cJSON_GetObjectItem(files, names[i]), ids, cap,
                               dec, dcap);
        free(in);
    }
    fprintf(stderr, "tok_spm: %zu of %zu (text, file) cases give llama.cpp's ids and "
            "detokenized text (longest text %zu bytes)\n", same, ncase, longest);
    EL_CHECK(ncase >= 400 && same == ncase && longest > 2000);

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

static el_status file_read(void *ctx, void *dst, size_t n, uint64_t off) {
    return el_file_read_at((el_file *)ctx, dst, n, off);
}

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void test_gemma3(void) {
    const char *path = getenv("EL_GEMMA3_GGUF");
    if (!path) path = EL_SOURCE_DIR "/.cache/gguf/gemma-3-270m-q4_k_m.gguf";
    el_file f;
    if (el_file_open(&f, path, 0) != EL_OK)
        el_test_skip("\n\n*** SKIPPED: the real Gemma 3 270M GGUF is not at %s: run "
                     "scripts/fetch_gguf.sh (or set EL_GEMMA3_GGUF) to check the 262,144-token "
                     "SentencePiece vocabulary against llama.cpp ***\n", path);
    el_gguf_source src = {file_read, &f, f.size, path};
    el_gguf *g = NULL;
    el_tokenizer *t = NULL;
    EL_CHECK_OK(el_gguf_parse(&src, &g));
    double t0 = now_s();
    if (g) EL_CHECK_OK(el_tokenizer_gguf_open(g, 262144, &t));
    double t_open = now_s() - t0;
    char *text = el_test_read_file(GGUF_DIR "/gemma3_cases.json", NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    free(text);
    EL_CHECK(ref != NULL && t != NULL);
    size_t cap = 1 << 12;
    int32_t ids[1 << 12];
    char dec[1 << 14];
    size_t ncase = 0, same = 0;
    const cJSON *cases = ref ? cJSON_GetObjectItem(ref, "cases") : NULL;
    for (const cJSON *c = cases ? cases->child : NULL; c && t; c = c->next, ncase++) {
        size_t len = 0, n = 0, wl = 0;
        char *in = unhex(cJSON_GetObjectItem(c, "hex")->valuestring, &len);
        char *want = unhex(cJSON_GetObjectItem(c, "dec_bos")->valuestring, &wl);
        bool ok = el_tokenizer_encode(t, in, len, true, ids, cap, &n) == EL_OK &&
                  same_ids(ids, n, cJSON_GetObjectItem(c, "ids_bos"));
        size_t dl = ok ? decode_all(t, ids, n, dec, sizeof dec) : (size_t)-1;
        ok = ok && dl == wl && !memcmp(dec, want, wl);
        if (!ok) fprintf(stderr, "  gemma3: '%s' differs from llama.cpp\n", in);
        same += ok;
        free(in);
        free(want);
    }
    fprintf(stderr, "gemma3: %zu of %zu texts give llama-tokenize's ids and llama.cpp's "
            "detokenized text\n", same, ncase);
    EL_CHECK(ncase >= 40 && same == ncase);
    if (t) {
        EL_CHECK(t->bos_id == 2 && t->eos_id == 1 && t->unk_id == 3);
        fprintf(stderr, "gemma3: open %.2f s, %zu bytes of heap for %u tokens\n", t_open,
                el_tokenizer_gguf_spm_heap_bytes(t), t->vocab_size);
        /* 1 MB of text: with Gemma's user-defined newlines and space runs (many short
         * stretches), and as one stretch (single spaces only: merged in the caller's buffer) */
        static const char *const pieces[2] = {
            "The quick brown fox jumps over the lazy dog. café naïve 我们正在测试中文分词。 "
            "emoji 😀🚀 12345 67890\n    def f(x):\n\treturn x * 2  \n",
            "The quick brown fox jumps over the lazy dog. café naïve 我们正在测试中文分词。 "
            "emoji 😀🚀 12345 67890 def f(x): return x * 2 "};
        size_t mb = 1u << 20;
        char *big = malloc(mb);
        size_t bcap = 12 * mb;
        int32_t *bids = malloc(bcap * sizeof *bids);
        EL_CHECK(big && bids);
        for (int k = 0; k < 2 && big && bids; k++) {
            size_t pl = strlen(pieces[k]), bl = 0, n = 0, n4 = 0;
            while (bl + pl <= mb) {
                memcpy(big + bl, pieces[k], pl);
                bl += pl;
            }
            double a = now_s();
            EL_CHECK_OK(el_tokenizer_encode(t, big, bl, true, bids, bcap, &n));
            double full = now_s() - a;
            a = now_s();
            EL_CHECK_OK(el_tokenizer_encode(t, big, bl / 4, true, bids, bcap, &n4));
            double quarter = now_s() - a;
            fprintf(stderr, "gemma3: encode %zu bytes (%s) -> %zu ids in %.3f s (%.3f s for a "
                    "quarter of it)\n", bl, k ? "one stretch" : "many stretches", n, full,
                    quarter);
            EL_CHECK(n > bl / 8 && full < 10.0 && full < 8 * quarter + 0.05);
        }
        free(big);
        free(bids);
    }
    el_tokenizer_close(t);
    cJSON_Delete(ref);
    el_gguf_free(g);
    el_file_close(&f);
}

int main(void) {
    test_fixture_cases();
    test_refused("<0x42>", "'<0x42>' is token"); /* a text twice */
    test_refused("<0xZ1>", "'<0xZ1>' has the byte type (6)");
    test_gemma3();
    return el_test_finish("test_tokenizer_gguf_spm");
}
