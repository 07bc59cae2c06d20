/* test_tokenizer_gpt2.c - GPT-2 byte-level BPE (tokenizer/hf_bpe.c + gpt2_files.c) against
 * ids recorded from Hugging Face's GPT2TokenizerFast (tests/fixtures/tokenizer_cases/
 * gpt2.json, made by scripts/fixtures_tokenizers.py) on the real vocabulary in
 * ../shared/models/gpt2-tokenizer, opened three ways (vocab.json + merges, el_tokenizer_open
 * on encoder.json, a tokenizer.json built around the same files); decode(encode(s)) == s;
 * long words (heap merge vs rescanning); no allocation in encode/decode; and broken files
 * built by hand (tiny vocabularies). */
// ctest-labels: tokenizer
// ctest-timeout: 120
#include "tests/support/el_alloc_count.h"
#include "tests/support/el_test.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define FIX EL_SOURCE_DIR "/tests/fixtures/tokenizer_cases/gpt2.json"
#define IDS_CAP 4096

static int32_t g_ids[IDS_CAP];

/* Concatenates the decoded pieces of ids into out (cap); returns the length. */
static size_t decode_all(const el_tokenizer *t, const int32_t *ids, size_t n, char *out,
                         size_t cap) {
    size_t o = 0;
    int32_t prev = -1;
    for (size_t i = 0; i < n; i++) {
        char piece[256];
        size_t pl = 0;
        EL_CHECK_OK(el_tokenizer_decode(t, prev, ids[i], piece, sizeof piece, &pl));
        if (o + pl < cap) memcpy(out + o, piece, pl);
        o += pl;
        prev = ids[i];
    }
    return o;
}

/* Every case: ids equal HF's; the pieces give the text back. Returns cases that failed. */
static int check_cases(const el_tokenizer *t, const cJSON *cases, const char *how) {
    int bad = 0, count = 0;
    for (const cJSON *c = cases->child; c; c = c->next, count++) {
        size_t len = 0;
        char *text = el_test_unhex(cJSON_GetObjectItem(c, "hex")->valuestring, &len);
        const cJSON *want = cJSON_GetObjectItem(c, "ids");
        size_t n = 0;
        el_status st = el_tokenizer_encode(t, text, len, false, g_ids, IDS_CAP, &n);
        bool ok = st == EL_OK && n == (size_t)cJSON_GetArraySize(want);
        for (size_t i = 0; ok && i < n; i++)
            ok = g_ids[i] == (int32_t)cJSON_GetArrayItem(want, (int)i)->valuedouble;
        if (!ok) {
            bad++;
            fprintf(stderr, "FAIL %s: ids of \"%s\" differ from HF (status %s, %zu ids):",
                    how, cJSON_GetObjectItem(c, "text")->valuestring, el_status_str(st), n);
            for (size_t i = 0; i < n && i < 24; i++) fprintf(stderr, " %d", (int)g_ids[i]);
            fprintf(stderr, "\n");
        }
        EL_CHECK(ok);
        if (st == EL_OK) {
            char out[4096];
            size_t ol = decode_all(t, g_ids, n, out, sizeof out);
            /* HF's decode gives the same text (checked for the record) */
            const char *hf = cJSON_GetObjectItem(c, "decoded")->valuestring;
            /* <|endoftext|> decodes to nothing (special tokens are skipped) */
            bool special = strstr(text, "<|endoftext|>") != NULL;
            bool rt = special || (ol == len && !memcmp(out, text, len));
            if (!rt)
                fprintf(stderr, "FAIL %s: decode(encode(\"%s\")) != text\n", how,
                        cJSON_GetObjectItem(c, "text")->valuestring);
            EL_CHECK(rt);
            /* strings without NUL: HF's decode is the text too */
            if (!memchr(text, 0, len)) EL_CHECK(strcmp(hf, text) == 0);
        }
        free(text);
    }
    printf("%s: %d cases, %d differ from HF\n", how, count, bad);
    return bad;
}

/* A tokenizer.json around the shared files: the non-model parts HF wrote, the vocabulary
 * verbatim, the merges as strings. */
static bool write_tokenizer_json(const char *dir, const cJSON *parts, const char *path) {
    size_t vl = 0, ml = 0;
    char vp[1024], mp[1024];
    snprintf(vp, sizeof vp, "%s/gpt2-tokenizer/encoder.json", dir);
    snprintf(mp, sizeof mp, "%s/gpt2-tokenizer/vocab.bpe", dir);
    char *vocab = el_test_read_file(vp, &vl);
    char *merges = el_test_read_file(mp, &ml);
    if (!vocab || !merges) return false;
    cJSON *arr = cJSON_CreateArray();
    for (char *line = strtok(merges, "\n"); line; line = strtok(NULL, "\n"))
        if (strncmp(line, "#version", 8) != 0) cJSON_AddItemToArray(arr, cJSON_CreateString(line));
    char *mjson = cJSON_PrintUnformatted(arr);
    char *pj = cJSON_PrintUnformatted(parts);
    size_t cap = vl + strlen(mjson) + strlen(pj) + 256;
    char *out = malloc(cap);
    /* parts is an object: splice the model in before its closing brace */
    pj[strlen(pj) - 1] = 0;
    int k = snprintf(out, cap, "%s,\"model\":{\"type\":\"BPE\",\"vocab\":%s,\"merges\":%s}}", pj,
                     vocab, mjson);
    bool ok = k > 0 && el_test_write_file(path, out, (size_t)k);
    free(out);
    free(pj);
    free(mjson);
    cJSON_Delete(arr);
    free(vocab);
    free(merges);
    return ok;
}

static void test_real(const char *dir, const cJSON *fix) {
    char vp[1024], mp[1024];
    snprintf(vp, sizeof vp, "%s/gpt2-tokenizer/encoder.json", dir);
    snprintf(mp, sizeof mp, "%s/gpt2-tokenizer/vocab.bpe", dir);
    const cJSON *cases = cJSON_GetObjectItem(fix, "cases");

    el_tokenizer *t = NULL;
    EL_CHECK_OK(el_tokenizer_gpt2_open(vp, mp, 50257, &t));
    if (!t) return;
    EL_CHECK(t->vocab_size == 50257);
    EL_CHECK(t->bos_id == 50256 && t->eos_id == 50256);
    EL_CHECK(t->eos_id == (int32_t)cJSON_GetObjectItem(fix, "eos_id")->valuedouble);
    EL_CHECK(t->unk_id == -1 && t->cls_id == -1);
    size_t n = 0;
    EL_CHECK_OK(el_tokenizer_encode(t, "hello world", 11, false, g_ids, IDS_CAP, &n));
    EL_CHECK(n == 2 && g_ids[0] == 31373 && g_ids[1] == 995);
    EL_CHECK(check_cases(t, cases, "vocab.json + merges.txt") == 0);

    /* add_bos prepends <|endoftext|>; empty text is zero ids */
    EL_CHECK_OK(el_tokenizer_encode(t, "hi", 2, true, g_ids, IDS_CAP, &n));
    EL_CHECK(n == 2 && g_ids[0] == 50256);
    EL_CHECK_OK(el_tokenizer_encode(t, "", 0, false, g_ids, IDS_CAP, &n));
    EL_CHECK(n == 0);
    /* the special token decodes to nothing (skip_special_tokens) */
    char buf[64];
    EL_CHECK_OK(el_tokenizer_decode(t, -1, 50256, buf, sizeof buf, &n));
    EL_CHECK(n == 0);
    /* a token of one byte that is not UTF-8 on its own gives that raw byte */
    EL_CHECK_OK(el_tokenizer_encode(t, "\xe2\x80\x94", 3, false, g_ids, IDS_CAP, &n));
    EL_CHECK(n >= 1);

    /* invalid UTF-8: the byte offset is named */
    EL_CHECK_STATUS(el_tokenizer_encode(t, "ab\xff" "c", 4, false, g_ids, IDS_CAP, &n),
                    EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "byte 2") != NULL);
    EL_CHECK_STATUS(el_tokenizer_encode(t, "caf\xc3", 4, false, g_ids, IDS_CAP, &n),
                    EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "byte 3") != NULL);
    /* too small a buffer: the count needed */
    EL_CHECK_STATUS(el_tokenizer_encode(t, "hello world", 11, false, g_ids, 1, &n), EL_E_NOFIT);
    EL_CHECK(n == 2);
    /* BERT pairs are for WordPiece only */
    bool tr = false;
    EL_CHECK_STATUS(el_tokenizer_encode_pair(t, "a", 1, NULL, 0, 8, g_ids, NULL, IDS_CAP, &n,
                                             &tr),
                    EL_E_USAGE);

    /* Long words: the heap merge (room in the buffer) and the rescan (no room) agree, and
     * decode gives the text back. */
    size_t big = 20000;
    char *w = malloc(big + 1);
    for (size_t i = 0; i < big; i++) w[i] = "abcdefghijklmnopqrstuvwxyz"[(i * 7 + i / 13) % 26];
    w[big] = 0;
    int32_t *a = malloc(big * 6 * sizeof *a);
    size_t na = 0, nb = 0;
    EL_CHECK_OK(el_tokenizer_encode(t, w, big, false, a, big * 6, &na));
    EL_CHECK_STATUS(el_tokenizer_encode(t, w, 3000, false, a, 10, &nb), EL_E_NOFIT);
    size_t exact = nb;
    int32_t *b = malloc(exact * sizeof *b);
    int32_t *c = malloc(3000 * 6 * sizeof *c);
    size_t nc = 0;
    EL_CHECK_OK(el_tokenizer_encode(t, w, 3000, false, b, exact, &nb)); /* rescan */
    EL_CHECK_OK(el_tokenizer_encode(t, w, 3000, false, c, 3000 * 6, &nc)); /* heap */
    EL_CHECK(nb == nc && !memcmp(b, c, nb * sizeof *b));
    char *back = malloc(big + 16);
    size_t bl = decode_all(t, a, na, back, big + 16);
    EL_CHECK(bl == big && !memcmp(back, w, big));
    free(back);
    free(b);
    free(c);
    free(a);
    free(w);

    /* encode and decode allocate nothing */
    el_alloc_arm();
    const char *s = "The future of AI is \xf0\x9f\x98\x80 <|endoftext|> 1,000,000 caf\xc3\xa9";
    EL_CHECK_OK(el_tokenizer_encode(t, s, strlen(s), true, g_ids, IDS_CAP, &n));
    for (size_t i = 0; i < n; i++)
        EL_CHECK_OK(el_tokenizer_decode(t, i ? g_ids[i - 1] : -1, g_ids[i], buf, sizeof buf,
                                        &bl));
    EL_CHECK(el_alloc_disarm() == 0);

    /* the model's vocabulary size must match */
    el_tokenizer *t2 = NULL;
    EL_CHECK_STATUS(el_tokenizer_gpt2_open(vp, mp, 50000, &t2), EL_E_INVALID);
    EL_CHECK(t2 == NULL && strstr(el_last_error(), "50257") && strstr(el_last_error(), "50000"));
    el_tokenizer_close(t);

    /* el_tokenizer_open on encoder.json finds vocab.bpe next to it */
    EL_CHECK_OK(el_tokenizer_open(vp, 50257, &t));
    if (t) {
        EL_CHECK(!strcmp(t->vt->name, "hf-bpe") && t->bos_id == 50256);
        EL_CHECK(check_cases(t, cases, "el_tokenizer_open(encoder.json)") == 0);
        el_tokenizer_close(t);
    }
    /* a tokenizer.json holding the same */
    const char *tj = el_test_path("tokenizer.json");
    EL_CHECK(write_tokenizer_json(dir, cJSON_GetObjectItem(fix, "tokenizer_json_parts"), tj));
    t = NULL;
    EL_CHECK_OK(el_tokenizer_open(tj, 50257, &t));
    if (t) {
        EL_CHECK(t->bos_id == 50256 && t->eos_id == 50256);
        EL_CHECK(check_cases(t, cases, "tokenizer.json") == 0);
        el_tokenizer_close(t);
    }
}

/* ---- broken files, tiny vocabularies ------------------------------------------------- */

/* vocab.json with the 256 byte characters (ids 0..255) then extra tokens from 256. */
static void write_vocab(const char *path, const char *const *extra, size_t n_extra,
                        bool drop_byte_a) {
    char *s = malloc(65536);
    size_t o = 0;
    o += (size_t)sprintf(s + o, "{");
    int k = 0;
    for (unsigned b = 0; b < 256; b++) {
        unsigned cp = b;
        bool printable = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || b >= 0xae;
        if (!printable) cp = 256 + (unsigned)k++;
        if (drop_byte_a && b == 'a') {
            o += (size_t)sprintf(s + o, "\"zz\":%u,", b); /* keeps the ids dense */
            continue;
        }
        if (b == '"' || b == '\\') o += (size_t)sprintf(s + o, "\"\\%c\":%u,", (char)b, b);
        else o += (size_t)sprintf(s + o, "\"\\u%04x\":%u,", cp, b);
    }
    for (size_t i = 0; i < n_extra; i++)
        o += (size_t)sprintf(s + o, "\"%s\":%u,", extra[i], 256 + (unsigned)i);
    s[o - 1] = '}';
    EL_CHECK(el_test_write_file(path, s, o));
    free(s);
}

static el_status open_tiny(const char *vocab, const char *merges_text, uint32_t size,
                           el_tokenizer **t) {
    const char *mp = el_test_path("merges.txt");
    EL_CHECK(el_test_write_file(mp, merges_text, strlen(merges_text)));
    return el_tokenizer_gpt2_open(vocab, mp, size, t);
}

static void expect_fail(el_status got, el_status want, const char *needle, const char *what) {
    EL_CHECK_STATUS(got, want);
    if (needle && !strstr(el_last_error(), needle)) {
        fprintf(stderr, "FAIL %s: message \"%s\" lacks '%s'\n", what, el_last_error(), needle);
        EL_CHECK(false);
    }
}

static void test_tiny(void) {
    static const char *const extra[] = {"ab", "abc", "\\u0120a", "<|endoftext|>"};
    static char vp[600], bad[600];
    snprintf(vp, sizeof vp, "%s", el_test_path("vocab.json"));
    snprintf(bad, sizeof bad, "%s", el_test_path("bad.json"));
    write_vocab(vp, extra, 4, false);
    el_tokenizer *t = NULL;
    EL_CHECK_OK(open_tiny(vp, "#version: 0.2\na b\nab c\n\xc4\xa0 a\n", 0, &t));
    if (t) {
        size_t n = 0;
        EL_CHECK(t->vocab_size == 260 && t->bos_id == 259 && t->eos_id == 259);
        EL_CHECK_OK(el_tokenizer_encode(t, "abc abx", 7, false, g_ids, IDS_CAP, &n));
        /* "abc" -> abc; " abx": "a b" (rank 0) before "\u0120 a" (rank 2) -> " " ab x */
        EL_CHECK(n == 4 && g_ids[0] == 257 && g_ids[1] == ' ' && g_ids[2] == 256 &&
                 g_ids[3] == 'x');
        EL_CHECK_OK(el_tokenizer_encode(t, "x<|endoftext|>", 14, false, g_ids, IDS_CAP, &n));
        EL_CHECK(n == 2 && g_ids[1] == 259);
        el_tokenizer_close(t);
    }
    t = NULL;
    /* CRLF and no final newline are fine */
    EL_CHECK_OK(open_tiny(vp, "a b\r\nab c", 260, &t));
    el_tokenizer_close(t);
    t = NULL;
    /* A model with more rows than tokens is fine (padded), with fewer it is not. */
    EL_CHECK_OK(open_tiny(vp, "a b\n", 300, &t));
    el_tokenizer_close(t);
    t = NULL;
    expect_fail(open_tiny(vp, "a b\n", 200, &t), EL_E_INVALID, "200", "size mismatch");
    EL_CHECK(strstr(el_last_error(), "260") != NULL && t == NULL);
    expect_fail(open_tiny(vp, "a b\nzz q\n", 0, &t), EL_E_INVALID, "zz", "unknown token");
    expect_fail(open_tiny(vp, "x y\n", 0, &t), EL_E_INVALID, "merged token", "result unknown");
    expect_fail(open_tiny(vp, "a b c\n", 0, &t), EL_E_INVALID, "line 1", "three parts");
    expect_fail(open_tiny(vp, "a b\n\nab c\n", 0, &t), EL_E_INVALID, "line 2", "empty line");
    expect_fail(el_tokenizer_gpt2_open(vp, el_test_path("nope.txt"), 0, &t), EL_E_IO, "merges",
                "missing merges");

    /* vocab.json shapes */
    el_test_write_file(bad, "[1, 2]", 6);
    expect_fail(open_tiny(bad, "a b\n", 0, &t), EL_E_INVALID, "object", "array vocab");
    el_test_write_file(bad, "{\"a\": \"x\"}", 10);
    expect_fail(open_tiny(bad, "a b\n", 0, &t), EL_E_INVALID, "integer", "string id");
    el_test_write_file(bad, "{\"a\": 1.5}", 10);
    expect_fail(open_tiny(bad, "a b\n", 0, &t), EL_E_INVALID, "integer", "fractional id");
    el_test_write_file(bad, "{\"a\": 0, \"b\": 0}", 16);
    expect_fail(open_tiny(bad, "a b\n", 0, &t), EL_E_INVALID, "id 0", "duplicate id");
    el_test_write_file(bad, "{\"a\": 0, \"b\": 2}", 16);
    expect_fail(open_tiny(bad, "a b\n", 0, &t), EL_E_INVALID, "id 1", "gap");
    el_test_write_file(bad, "{\"a\": 0", 7);
    expect_fail(open_tiny(bad, "a b\n", 0, &t), EL_E_INVALID, NULL, "truncated json");
    write_vocab(bad, extra, 2, true);
    expect_fail(open_tiny(bad, "#version: 0.2\n", 0, &t), EL_E_INVALID, "byte 0x61", "byte missing");

    /* el_tokenizer_open: a vocab.json with no merges next to it */
    char lone_dir[600];
    snprintf(lone_dir, sizeof lone_dir, "%s", el_test_path("lone"));
    char cmd[700];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s'", lone_dir);
    EL_CHECK(system(cmd) == 0);
    char lone[700];
    snprintf(lone, sizeof lone, "%s/vocab.json", lone_dir);
    write_vocab(lone, extra, 2, false);
    expect_fail(el_tokenizer_open(lone, 0, &t), EL_E_INVALID, "merges.txt", "no merges");
    char lm[700];
    snprintf(lm, sizeof lm, "%s/merges.txt", lone_dir);
    el_test_write_file(lm, "a b\n", 4);
    EL_CHECK_OK(el_tokenizer_open(lone, 258, &t));
    el_tokenizer_close(t);
    remove(lm);
    remove(lone);
    rmdir(lone_dir);
}

int main(void) {
    el_alloc_install();
    el_test_tmpdir();
    test_tiny();
    const char *dir = el_test_shared_models();
    if (!dir) {
        el_test_tmpdir_cleanup();
        printf("the GPT-2 vocabulary checks need ../shared/models (absent); tiny checks ran\n");
        int rc = el_test_finish("test_tokenizer_gpt2");
        if (rc) return rc;
        el_test_skip("../shared/models is absent: HF GPT-2 id comparisons skipped");
    }
    size_t fl = 0;
    char *fj = el_test_read_file(FIX, &fl);
    cJSON *fix = fj ? cJSON_Parse(fj) : NULL;
    EL_CHECK(fix != NULL);
    if (fix) {
        printf("fixtures: %s, transformers %s, tokenizers %s\n", FIX,
               cJSON_GetObjectItem(cJSON_GetObjectItem(fix, "versions"), "transformers")->valuestring,
               cJSON_GetObjectItem(cJSON_GetObjectItem(fix, "versions"), "tokenizers")->valuestring);
        test_real(dir, fix);
    }
    cJSON_Delete(fix);
    free(fj);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_tokenizer_gpt2");
}
