/* test_tokenizer_gguf_gemma3.c - the real Gemma 3 270M vocabulary (262,144 SentencePiece
 * tokens in gemma-3-270m-q4_k_m.gguf, from scripts/fetch_gguf.sh, or EL_GEMMA3_GGUF=path)
 * against llama.cpp: ~50 texts (tests/fixtures/gguf/gemma3_cases.json: llama-tokenize's ids
 * with BOS, llama_detokenize's text, recorded by scripts/fixtures_spm.py), Gemma's special
 * ids, the heap the tokenizer holds, and the time to encode 1 MB of text (as many short
 * stretches between Gemma's user-defined newline and space-run tokens, and as one stretch;
 * the whole must take under 10 times what a quarter of it takes: not quadratic).
 * Skipped, loudly, when the file is absent. */
// ctest-labels: tokenizer;gguf
// ctest-timeout: 60
#include "tests/support/el_test.h"
#include "tests/spm_cases.h"

#include "loader/formats/gguf.h"
#include "platform/platform.h"

static el_status file_read(void *ctx, void *dst, size_t n, uint64_t off) {
    return el_file_read_at((el_file *)ctx, dst, n, off);
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
        char *in = el_test_unhex(cJSON_GetObjectItem(c, "hex")->valuestring, &len);
        char *want = el_test_unhex(cJSON_GetObjectItem(c, "dec_bos")->valuestring, &wl);
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
            EL_CHECK(n > bl / 8 && full < 10.0 && full < 10 * quarter + 0.1);
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
    test_gemma3();
    return el_test_finish("test_tokenizer_gguf_gemma3");
}
