/* test_tokenizer_mem.c - the WordPiece, llama2.c and GGUF SentencePiece tokenizers built
 * into one block (tokenizer/tok_mem.h): the measured size is exact (a block of that size
 * holds the build, one byte less is refused with EL_E_NOMEM), and a tokenizer built into a
 * caller's block (as the arena's tokenizer region) gives the reference ids of the existing
 * case files (HF BertTokenizerFast, llama2.c's reference, llama-tokenize) exactly as the
 * heap-block tokenizer does. The real MiniLM tokenizer's bytes are printed and bounded,
 * with the transient that parsing its tokenizer.json with cJSON takes. */
// ctest-labels: tokenizer
// ctest-timeout: 30
#include "tests/llama_fixture.h"
#include "tests/spm_cases.h"
#include "tests/support/el_test.h"

#include "loader/formats/gguf.h"
#include "tokenizer/tok_mem.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <malloc.h>
#include <stdlib.h>
#include <string.h>

#define BERT_FIX EL_SOURCE_DIR "/tests/fixtures/tokenizer_cases/bert.json"
#define IDS_CAP (1u << 18)

static int32_t g_a[IDS_CAP], g_b[IDS_CAP];

/* One backend's _mem entry with its arguments. */
typedef struct src {
    const char *what;
    el_status (*open)(const struct src *s, el_tok_mem *mem, el_tokenizer **out);
    const char *path;
    const char *data;
    size_t len;
    const cJSON *root;
    const el_gguf *g;
    uint32_t vocab;
} src;

static el_status o_wp_file(const src *s, el_tok_mem *m, el_tokenizer **o) {
    return el_tokenizer_wordpiece_open_mem(s->path, true, s->vocab, m, o);
}
static el_status o_wp_parse(const src *s, el_tok_mem *m, el_tokenizer **o) {
    return el_tokenizer_wordpiece_parse_mem(s->data, s->len, s->what, true, s->vocab, m, o);
}
static el_status o_wp_json(const src *s, el_tok_mem *m, el_tokenizer **o) {
    return el_tokenizer_wordpiece_from_json_mem(s->root, s->what, s->vocab, m, o);
}
static el_status o_l2c_file(const src *s, el_tok_mem *m, el_tokenizer **o) {
    return el_tokenizer_llama2c_open_mem(s->path, s->vocab, m, o);
}
static el_status o_l2c_parse(const src *s, el_tok_mem *m, el_tokenizer **o) {
    return el_tokenizer_llama2c_parse_mem(s->data, s->len, s->what, s->vocab, m, o);
}
static el_status o_spm(const src *s, el_tok_mem *m, el_tokenizer **o) {
    return el_tokenizer_gguf_spm_open_mem(s->g, s->vocab, m, o);
}

/* The heap form of the same source. */
static el_status open_heap(const src *s, el_tokenizer **o) {
    if (s->open == o_wp_file) return el_tokenizer_wordpiece_open(s->path, true, s->vocab, o);
    if (s->open == o_wp_parse)
        return el_tokenizer_wordpiece_parse(s->data, s->len, s->what, true, s->vocab, o);
    if (s->open == o_wp_json) return el_tokenizer_wordpiece_from_json(s->root, s->what, s->vocab, o);
    if (s->open == o_l2c_file) return el_tokenizer_llama2c_open(s->path, s->vocab, o);
    if (s->open == o_l2c_parse)
        return el_tokenizer_llama2c_parse(s->data, s->len, s->what, s->vocab, o);
    return el_tokenizer_gguf_spm_open(s->g, s->vocab, o);
}

/* Measures s, then builds it into a 4 KiB-aligned block of exactly that size (*block, the
 * caller frees it after the tokenizer); a block one byte short must be refused. */
static el_tokenizer *build_block(const src *s, size_t *bytes, void **block) {
    el_tok_mem m;
    el_tok_mem_measure(&m);
    el_tokenizer *t = NULL;
    EL_CHECK_OK(s->open(s, &m, &t));
    *bytes = m.used;
    el_tok_mem_release(&m);
    size_t round = (*bytes + 4095) & ~(size_t)4095;
    *block = aligned_alloc(4096, round ? round : 4096);
    EL_CHECK(*block != NULL && *bytes > 0);
    if (!*block || !*bytes) return NULL;
    el_tok_mem_block(&m, *block, *bytes - 1);
    EL_CHECK_STATUS(s->open(s, &m, &t), EL_E_NOMEM);
    memset(*block, 0xa5, round); /* the build must not rely on zeroed memory */
    el_tok_mem_block(&m, *block, *bytes);
    t = NULL;
    EL_CHECK_OK(s->open(s, &m, &t));
    EL_CHECK(m.used == *bytes && t != NULL && t->block == NULL && t->vt->close == NULL);
    return t;
}

/* Encodes in with both tokenizers (with and without BOS): the ids must be equal, and equal
 * to want (a JSON array) when given. */
static bool same_both(const el_tokenizer *a, const el_tokenizer *b, const char *in, size_t len,
                      bool bos, const cJSON *want) {
    size_t na = 0, nb = 0;
    el_status sa = el_tokenizer_encode(a, in, len, bos, g_a, IDS_CAP, &na);
    el_status sb = el_tokenizer_encode(b, in, len, bos, g_b, IDS_CAP, &nb);
    bool ok = sa == EL_OK && sb == EL_OK && na == nb && !memcmp(g_a, g_b, na * sizeof *g_a);
    if (ok && want) ok = same_ids(g_a, na, want);
    if (!ok) fprintf(stderr, "  %.40s: block and heap tokenizers differ (or not the reference)\n", in);
    return ok;
}

/* Opens s both ways, checks the block is exact and the ids on the cases are the same. */
typedef bool (*cases_fn)(const el_tokenizer *blk, const el_tokenizer *heap, const void *ctx);

static size_t check_source(const src *s, cases_fn cases, const void *ctx) {
    size_t bytes = 0;
    void *block = NULL;
    el_tokenizer *tb = build_block(s, &bytes, &block);
    el_tokenizer *th = NULL;
    EL_CHECK_OK(open_heap(s, &th));
    EL_CHECK(th && th->block != NULL);
    if (tb && th) {
        EL_CHECK(tb->vocab_size == th->vocab_size && tb->bos_id == th->bos_id &&
                 tb->eos_id == th->eos_id && tb->unk_id == th->unk_id);
        EL_CHECK(cases(tb, th, ctx));
    }
    printf("%-34s %9zu bytes of tables\n", s->what, bytes);
    el_tokenizer_close(tb); /* nothing to free but the block */
    el_tokenizer_close(th);
    free(block);
    return bytes;
}

/* ---- the case files ----------------------------------------------------------------- */

static bool bert_cases(const el_tokenizer *a, const el_tokenizer *b, const void *ctx) {
    const cJSON *fix = ctx;
    bool ok = true;
    int n = 0;
    for (const cJSON *c = cJSON_GetObjectItem(fix, "cases")->child; c; c = c->next, n++) {
        size_t len = 0;
        char *in = el_test_unhex(cJSON_GetObjectItem(c, "hex")->valuestring, &len);
        ok = same_both(a, b, in, len, false, NULL) && ok;
        /* the reference is [CLS] text [SEP]: the pair form of the block tokenizer */
        size_t k = 0;
        bool tr = false;
        EL_CHECK_OK(el_tokenizer_encode_pair(a, in, len, NULL, 0, IDS_CAP, g_a, NULL, IDS_CAP,
                                             &k, &tr));
        ok = same_ids(g_a, k, cJSON_GetObjectItem(c, "ids")) && ok;
        free(in);
    }
    EL_CHECK(n >= 20);
    return ok;
}

static bool stories_cases(const el_tokenizer *a, const el_tokenizer *b, const void *ctx) {
    const cJSON *j = ctx;
    const char *prompt = cJSON_GetObjectItem(j, "prompt")->valuestring;
    bool ok = same_both(a, b, prompt, strlen(prompt), true, cJSON_GetObjectItem(j, "prompt_ids"));
    int n = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, cJSON_GetObjectItem(j, "encodings")) {
        const char *s = cJSON_GetObjectItem(e, "text")->valuestring;
        ok = same_both(a, b, s, strlen(s), true, cJSON_GetObjectItem(e, "ids")) && ok;
        ok = same_both(a, b, s, strlen(s), false, NULL) && ok;
        n++;
    }
    EL_CHECK(n >= 9);
    return ok;
}

static bool spm_cases(const el_tokenizer *a, const el_tokenizer *b, const void *ctx) {
    const cJSON *ref = ctx;
    bool ok = true;
    int n = 0;
    for (const cJSON *c = cJSON_GetObjectItem(ref, "cases")->child; c; c = c->next, n++) {
        size_t len = 0;
        char *in = el_test_unhex(cJSON_GetObjectItem(c, "hex")->valuestring, &len);
        const cJSON *f = cJSON_GetObjectItem(cJSON_GetObjectItem(c, "files"), "tok_spm.gguf");
        ok = same_both(a, b, in, len, false, cJSON_GetObjectItem(f, "ids")) && ok;
        ok = same_both(a, b, in, len, true, cJSON_GetObjectItem(f, "ids_bos")) && ok;
        free(in);
    }
    EL_CHECK(n >= 200);
    return ok;
}

/* ---- cJSON's transient while tokenizer.json is parsed ------------------------------- */

static size_t g_live, g_peak;
static void *count_malloc(size_t n) {
    void *p = malloc(n);
    if (p) g_live += malloc_usable_size(p);
    if (g_live > g_peak) g_peak = g_live;
    return p;
}
static void count_free(void *p) {
    if (p) g_live -= malloc_usable_size(p);
    free(p);
}

static void test_minilm(const char *dir) {
    char tj[1024], vt[1024];
    snprintf(tj, sizeof tj, "%s/all-MiniLM-L6-v2/tokenizer.json", dir);
    snprintf(vt, sizeof vt, "%s/all-MiniLM-L6-v2/vocab.txt", dir);
    char *fj = el_test_read_file(BERT_FIX, NULL);
    cJSON *fix = fj ? cJSON_Parse(fj) : NULL;
    free(fj);
    EL_CHECK(fix != NULL);
    size_t jl = 0;
    char *json = el_test_read_file(tj, &jl);
    EL_CHECK(json != NULL);
    cJSON_Hooks hooks = {count_malloc, count_free};
    cJSON_InitHooks(&hooks);
    cJSON *root = json ? cJSON_ParseWithLength(json, jl) : NULL;
    cJSON_InitHooks(NULL);
    EL_CHECK(root != NULL);
    printf("MiniLM tokenizer.json: %zu bytes of file, %zu bytes of cJSON tree (the transient "
           "of the from_json path, outside the build)\n", jl, g_peak);
    size_t vl = 0;
    char *vtxt = el_test_read_file(vt, &vl);
    EL_CHECK(vtxt != NULL);
    if (!fix || !root || !vtxt) goto out;
    src s[3] = {
        {"MiniLM vocab.txt (file)", o_wp_file, .path = vt, .vocab = 30522},
        {"MiniLM vocab.txt (bytes)", o_wp_parse, .data = vtxt, .len = vl, .vocab = 30522},
        {"MiniLM tokenizer.json", o_wp_json, .root = root, .vocab = 30522},
    };
    size_t bytes[3];
    for (int i = 0; i < 3; i++) {
        bytes[i] = check_source(&s[i], bert_cases, fix);
        EL_CHECK(bytes[i] > 30522 * 8 && bytes[i] < (4u << 20));
    }
    EL_CHECK(bytes[0] == bytes[1]);
out:
    cJSON_Delete(root);
    cJSON_Delete(fix);
    free(json);
    free(vtxt);
}

/* Every file-read entry reads tokenizer.bin through its window: a read error half way is
 * reported, not a partial table. */
static void test_llama2c(void) {
    cJSON *j = fixture_load(STORIES_FIXTURE);
    size_t len = 0;
    char *bin = el_test_read_file(STORIES_TOK, &len);
    EL_CHECK(j && bin);
    if (!j || !bin) return;
    src s[2] = {
        {"tok512.bin (file)", o_l2c_file, .path = STORIES_TOK, .vocab = 512},
        {"tok512.bin (bytes)", o_l2c_parse, .data = bin, .len = len, .vocab = 512},
    };
    size_t b0 = check_source(&s[0], stories_cases, j);
    size_t b1 = check_source(&s[1], stories_cases, j);
    EL_CHECK(b0 == b1 && b0 < (1u << 20));
    /* errors in measure mode are the build's errors */
    el_tok_mem m;
    el_tok_mem_measure(&m);
    el_tokenizer *t = NULL;
    EL_CHECK_STATUS(el_tokenizer_llama2c_parse_mem(bin, len - 1, "cut", 512, &m, &t),
                    EL_E_INVALID);
    EL_CHECK_STATUS(el_tokenizer_llama2c_open_mem(el_test_path("absent.bin"), 512, &m, &t),
                    EL_E_IO);
    el_tok_mem_release(&m);
    cJSON_Delete(j);
    free(bin);
}

/* Files larger than the read window (64 KiB), records and lines across its edges: a
 * tokenizer.bin of tok512's pieces and 30,000 more (lengths 1..300), and a vocab.txt of
 * 40,000 lines; read from the file and from bytes they give the same tables. A line longer
 * than the window is refused by name. */
static void test_big_files(void) {
    size_t len = 0;
    char *bin = el_test_read_file(STORIES_TOK, &len);
    EL_CHECK(bin != NULL);
    if (!bin) return;
    size_t cap = len + 30000u * 320u;
    char *big = malloc(cap);
    memcpy(big, bin, len);
    int32_t max_len = 320;
    memcpy(big, &max_len, 4);
    size_t o = len;
    uint32_t x = 7u;
    for (int i = 0; i < 30000; i++) {
        x = x * 1664525u + 1013904223u;
        char piece[320];
        int pl = snprintf(piece, sizeof piece, "~%d~", i);
        int32_t l = pl + (int32_t)((x >> 8) % 290u);
        memset(piece + pl, 'a' + i % 26, (size_t)(l - pl));
        float score = -1000.0f - (float)i;
        memcpy(big + o, &score, 4);
        memcpy(big + o + 4, &l, 4);
        memcpy(big + o + 8, piece, (size_t)l);
        o += 8 + (size_t)l;
    }
    const char *path = el_test_path("big.bin");
    FILE *f = fopen(path, "wb");
    EL_CHECK(f && fwrite(big, 1, o, f) == o);
    if (f) fclose(f);
    src s[2] = {
        {"tokenizer.bin of 30512 (file)", o_l2c_file, .path = path, .vocab = 30512},
        {"tokenizer.bin of 30512 (bytes)", o_l2c_parse, .data = big, .len = o, .vocab = 30512},
    };
    size_t b[2];
    el_tokenizer *t[2] = {NULL, NULL};
    void *blk[2] = {NULL, NULL};
    for (int i = 0; i < 2; i++) {
        t[i] = build_block(&s[i], &b[i], &blk[i]);
        printf("%-34s %9zu bytes of tables (file %zu bytes)\n", s[i].what, b[i], o);
    }
    EL_CHECK(b[0] == b[1] && o > (4u << 20 >> 2));
    size_t same = 0;
    for (int32_t id = 0; t[0] && t[1] && id < 30512; id++) {
        char p0[400], p1[400];
        size_t n0 = 0, n1 = 0;
        EL_CHECK_OK(el_tokenizer_decode(t[0], -1, id, p0, sizeof p0, &n0));
        EL_CHECK_OK(el_tokenizer_decode(t[1], -1, id, p1, sizeof p1, &n1));
        same += n0 == n1 && !memcmp(p0, p1, n0);
    }
    EL_CHECK(same == 30512);
    for (int i = 0; i < 2; i++) free(blk[i]);
    /* vocab.txt: the specials, then 40,000 lines of 1..12 bytes */
    char *vt = malloc(40000u * 16u + 64);
    size_t vl = (size_t)sprintf(vt, "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\n");
    for (int i = 0; i < 40000; i++) vl += (size_t)sprintf(vt + vl, "w%d%s\n", i, i % 3 ? "" : "xyz");
    const char *vp = el_test_path("vocab.txt");
    f = fopen(vp, "wb");
    EL_CHECK(f && fwrite(vt, 1, vl, f) == vl);
    if (f) fclose(f);
    el_tokenizer *w[2] = {NULL, NULL};
    EL_CHECK_OK(el_tokenizer_wordpiece_open(vp, true, 40005, &w[0]));
    EL_CHECK_OK(el_tokenizer_wordpiece_parse(vt, vl, "vocab.txt", true, 40005, &w[1]));
    if (w[0] && w[1]) {
        EL_CHECK(same_both(w[0], w[1], "w39999 w123xyz w7 w8", 20, true, NULL));
        size_t n = 0;
        EL_CHECK_OK(el_tokenizer_encode(w[0], "w39998", 6, false, g_a, IDS_CAP, &n));
        EL_CHECK(n == 1 && g_a[0] == 40003);
    }
    el_tokenizer_close(w[0]);
    el_tokenizer_close(w[1]);
    /* one line longer than the window */
    f = fopen(vp, "wb");
    for (int i = 0; f && i < 70000; i++) fputc('x', f);
    if (f) fclose(f);
    el_tokenizer *bad = NULL;
    EL_CHECK_STATUS(el_tokenizer_wordpiece_open(vp, true, 0, &bad), EL_E_UNSUPPORTED);
    EL_CHECK(bad == NULL && strstr(el_last_error(), "longer than") != NULL);
    free(vt);
    free(big);
    free(bin);
}

static void test_spm(void) {
    size_t n = 0;
    char *bytes = el_test_read_file(GGUF_DIR "/tok_spm.gguf", &n);
    char *text = el_test_read_file(GGUF_DIR "/tok_spm_cases.json", NULL);
    cJSON *ref = text ? cJSON_Parse(text) : NULL;
    free(text);
    EL_CHECK(bytes && ref);
    el_gguf_mem gm = {(const uint8_t *)bytes, n};
    el_gguf_source gs = {el_gguf_mem_read, &gm, n, "tok_spm.gguf"};
    el_gguf *g = NULL;
    if (bytes) EL_CHECK_OK(el_gguf_parse(&gs, &g));
    if (g && ref) {
        src s = {"tok_spm.gguf", o_spm, .g = g, .vocab = 0};
        size_t b = check_source(&s, spm_cases, ref);
        el_tokenizer *t = NULL;
        EL_CHECK_OK(el_tokenizer_gguf_spm_open(g, 0, &t));
        EL_CHECK(t && el_tokenizer_gguf_spm_heap_bytes(t) == b);
        el_tokenizer_close(t);
    }
    el_gguf_free(g);
    cJSON_Delete(ref);
    free(bytes);
}

int main(void) {
    el_test_tmpdir();
    test_llama2c();
    test_big_files();
    test_spm();
    const char *dir = el_test_shared_models();
    if (dir) test_minilm(dir);
    else printf("../shared/models is absent: the MiniLM checks are skipped\n");
    el_test_tmpdir_cleanup();
    return el_test_finish("test_tokenizer_mem");
}
