/* test_tokenizer_hf_bpe.c - the tokenizer.json BPE backend against ids and decodes recorded
 * from Hugging Face tokenizers/transformers (tests/fixtures/hf_tokenizer/cases.json, made
 * by scripts/make_fixtures.py), plus broken and unsupported files and bad arguments. */
// ctest-labels: tokenizer
#include "tests/support/el_test.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define FIXDIR EL_SOURCE_DIR "/tests/fixtures/hf_tokenizer"
#define IDS_CAP 8192

static int32_t g_ids[IDS_CAP];

/* Prints a JSON-ish rendering of text for failure messages (first 60 bytes). */
static void show_text(const char *s) {
    fputc('"', stderr);
    for (size_t i = 0; s[i] && i < 60; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\n') fputs("\\n", stderr);
        else if (c == '\t') fputs("\\t", stderr);
        else fputc(c, stderr);
    }
    fputs(strlen(s) > 60 ? "...\"" : "\"", stderr);
}

/* ids from a JSON array; returns the count (<= cap). */
static size_t json_ids(const cJSON *arr, int32_t *out, size_t cap) {
    size_t n = 0;
    for (const cJSON *it = arr ? arr->child : NULL; it && n < cap; it = it->next)
        out[n++] = (int32_t)it->valuedouble;
    return n;
}

static bool same_ids(const char *what, const char *text, const int32_t *got, size_t ngot,
                     const int32_t *want, size_t nwant) {
    size_t i = 0;
    while (i < ngot && i < nwant && got[i] == want[i]) i++;
    if (i == ngot && i == nwant) return true;
    fprintf(stderr, "  %s of ", what);
    show_text(text);
    fprintf(stderr, ": %zu ids, want %zu; first difference at %zu: got %d want %d\n", ngot,
            nwant, i, i < ngot ? (int)got[i] : -1, i < nwant ? (int)want[i] : -1);
    return false;
}

static void check_case(const el_tokenizer *t, const cJSON *c) {
    const char *text = cJSON_GetObjectItem(c, "text")->valuestring;
    const char *decoded = cJSON_GetObjectItem(c, "decoded")->valuestring;
    size_t len = strlen(text);
    static int32_t want[IDS_CAP], want_nb[IDS_CAP];
    size_t nw = json_ids(cJSON_GetObjectItem(c, "ids"), want, IDS_CAP);
    size_t nwb = json_ids(cJSON_GetObjectItem(c, "ids_no_bos"), want_nb, IDS_CAP);
    size_t n = 0;

    /* Exact ids, with and without BOS. */
    EL_CHECK_OK(el_tokenizer_encode(t, text, len, true, g_ids, IDS_CAP, &n));
    EL_CHECK(same_ids("encode", text, g_ids, n, want, nw));
    EL_CHECK_OK(el_tokenizer_encode(t, text, len, false, g_ids, IDS_CAP, &n));
    EL_CHECK(same_ids("encode without BOS", text, g_ids, n, want_nb, nwb));

    /* One id short: EL_E_NOFIT with the count needed. The count is exact unless one word
     * (a run without spaces) outgrows the fixed work buffer; then it is an upper bound.
     * Exact counts for the long multi-word corpus also show that text without a
     * pre-tokenizer (legacy, Metaspace split=false) is worked on word by word. */
    size_t run = 0, longest = 0;
    for (size_t i = 0; i < len; i++) {
        run = text[i] == ' ' ? 0 : run + 1;
        if (run > longest) longest = run;
    }
    if (nw >= 2) {
        EL_CHECK_STATUS(el_tokenizer_encode(t, text, len, true, g_ids, nw - 1, &n),
                        EL_E_NOFIT);
        EL_CHECK(longest > 1000 ? n >= nw : n == nw);
        EL_CHECK_STATUS(el_tokenizer_encode(t, text, len, true, NULL, 0, &n), EL_E_NOFIT);
        EL_CHECK(longest > 1000 ? n >= nw : n == nw);
    }

    /* Token-by-token decode, concatenated, equals HF's decode(skip_special_tokens=True).
     * HF strips the leading space of the first non-special token of the whole sequence;
     * decode(prev, id) cannot see the whole sequence and strips after BOS (where a
     * generation's text starts) or at the very start. The two agree unless a BOS occurs
     * inside the text or another special token comes right after the leading BOS, so
     * those cases (literal "<s>"/"</s>" typed into a prompt) check encode only. */
    bool comparable = true;
    for (size_t i = 1; i < nw; i++) comparable = comparable && want[i] != t->bos_id;
    if (nw > 1) comparable = comparable && want[1] != t->eos_id;
    if (comparable) {
        size_t cap = 4 * len + 64, used = 0;
        char *out = malloc(cap);
        bool ok = out != NULL;
        int32_t prev = -1;
        for (size_t i = 0; ok && i < nw; i++) {
            size_t k = 0;
            el_status st = el_tokenizer_decode(t, prev, want[i], out + used, cap - used, &k);
            ok = st == EL_OK;
            used += k;
            prev = want[i];
        }
        EL_CHECK(ok);
        if (ok && (used != strlen(decoded) || memcmp(out, decoded, used) != 0)) {
            fputs("  decode of ", stderr);
            show_text(text);
            fputs(": got ", stderr);
            out[used < cap ? used : cap - 1] = 0;
            show_text(out);
            fputs(" want ", stderr);
            show_text(decoded);
            fputc('\n', stderr);
            ok = false;
        }
        EL_CHECK(ok);
        free(out);
    }
}

static void check_fixture_tokenizer(const char *name, const cJSON *spec) {
    char path[1024];
    snprintf(path, sizeof path, "%s/%s", FIXDIR,
             cJSON_GetObjectItem(spec, "file")->valuestring);
    uint32_t vocab = (uint32_t)cJSON_GetObjectItem(spec, "vocab_size")->valuedouble;
    el_tokenizer *t = NULL;
    EL_CHECK_OK(el_tokenizer_hf_bpe_open(path, vocab, &t));
    if (!t) return;
    EL_CHECK(strcmp(t->vt->name, "hf-bpe") == 0);
    EL_CHECK(t->vocab_size == vocab);
    EL_CHECK(t->bos_id == (int32_t)cJSON_GetObjectItem(spec, "bos_id")->valuedouble);
    EL_CHECK(t->eos_id == (int32_t)cJSON_GetObjectItem(spec, "eos_id")->valuedouble);
    int before = el_test_failed;
    const cJSON *cases = cJSON_GetObjectItem(spec, "cases");
    int count = 0;
    for (const cJSON *c = cases->child; c; c = c->next, count++) check_case(t, c);
    EL_CHECK(count > 0);
    fprintf(stderr, "%s (%s): %d cases, %s\n", name, path + strlen(FIXDIR) + 1, count,
            el_test_failed == before ? "all match HF" : "MISMATCHES above");

    /* Decode edge cases. */
    char buf[64];
    size_t n = 0;
    EL_CHECK_STATUS(el_tokenizer_decode(t, -1, (int32_t)vocab, buf, sizeof buf, &n),
                    EL_E_INVALID);
    EL_CHECK_STATUS(el_tokenizer_decode(t, -1, -5, buf, sizeof buf, &n), EL_E_INVALID);
    EL_CHECK_OK(el_tokenizer_decode(t, 5, t->bos_id, buf, sizeof buf, &n));
    EL_CHECK(n == 0 && buf[0] == 0); /* special tokens decode to nothing */
    el_tokenizer_close(t);

    /* The model's vocabulary may be larger than the tokenizer's (padded rows), not
     * smaller. */
    t = NULL;
    EL_CHECK_OK(el_tokenizer_hf_bpe_open(path, vocab + 1, &t));
    el_tokenizer_close(t);
    t = NULL;
    EL_CHECK_STATUS(el_tokenizer_hf_bpe_open(path, vocab - 1, &t), EL_E_INVALID);
    EL_CHECK(t == NULL);
    char a[16], b[16];
    snprintf(a, sizeof a, "%u", (unsigned)vocab);
    snprintf(b, sizeof b, "%u", (unsigned)vocab - 1);
    EL_CHECK(strstr(el_last_error(), a) && strstr(el_last_error(), b));
}

/* ---- behaviour beyond the fixtures --------------------------------------------------- */

static void check_bad_text(void) {
    el_tokenizer *t = NULL;
    EL_CHECK_OK(el_tokenizer_hf_bpe_open(FIXDIR "/tokenizer.json", 0, &t));
    if (!t) return;
    static const struct {
        const char *s;
        size_t len;
        const char *at;
    } bad[] = {
        {"abc\xff", 4, "byte 3"},            /* never valid */
        {"\xc3", 1, "byte 0"},               /* truncated sequence */
        {"ok \xc0\xaf", 5, "byte 3"},        /* overlong '/' */
        {"\xed\xa0\x80", 3, "byte 0"},       /* UTF-16 surrogate */
        {"\xf4\x90\x80\x80", 4, "byte 0"},   /* above U+10FFFF */
        {"a\x80z", 3, "byte 1"},             /* lone continuation byte */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        size_t n = 99;
        EL_CHECK_STATUS(el_tokenizer_encode(t, bad[i].s, bad[i].len, true, g_ids, IDS_CAP, &n),
                        EL_E_INVALID);
        EL_CHECK(strstr(el_last_error(), bad[i].at) != NULL);
        EL_CHECK(n == 0);
    }
    /* A NUL inside the text is a character like any other, not an end. */
    size_t n1 = 0, n2 = 0;
    EL_CHECK_OK(el_tokenizer_encode(t, "a\0b", 3, false, g_ids, IDS_CAP, &n1));
    EL_CHECK_OK(el_tokenizer_encode(t, "a", 1, false, g_ids, IDS_CAP, &n2));
    EL_CHECK(n1 > n2);
    /* Decode into a buffer too small for the piece (plus NUL). */
    int32_t the = -1;
    size_t n = 0;
    EL_CHECK_OK(el_tokenizer_encode(t, "The", 3, false, &the, 1, &n));
    char small[3];
    EL_CHECK_STATUS(el_tokenizer_decode(t, -1, the, small, sizeof small, &n), EL_E_NOFIT);
    EL_CHECK(n == 3 && small[sizeof small - 1] == 0); /* "The" needs 4 bytes */
    char ok[4];
    EL_CHECK_OK(el_tokenizer_decode(t, -1, the, ok, sizeof ok, &n));
    EL_CHECK(n == 3 && strcmp(ok, "The") == 0);
    el_tokenizer_close(t);
}

/* A small tokenizer.json assembled from parts, for broken and unsupported files. */
#define SP "\\u2581"
#define V_OK "{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"" SP "\":3,\"a\":4,\"" SP "a\":5}"
#define M_OK "[\"" SP " a\"]"
#define N_OK                                                                             \
    "{\"type\":\"Sequence\",\"normalizers\":[{\"type\":\"Prepend\",\"prepend\":\"" SP   \
    "\"},{\"type\":\"Replace\",\"pattern\":{\"String\":\" \"},\"content\":\"" SP "\"}]}"
#define D_OK                                                                             \
    "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Replace\",\"pattern\":{\"String\":\"" \
    SP "\"},\"content\":\" \"},{\"type\":\"ByteFallback\"},{\"type\":\"Fuse\"},"         \
    "{\"type\":\"Strip\",\"content\":\" \",\"start\":1,\"stop\":0}]}"
#define A_OK                                                                             \
    "[{\"id\":1,\"content\":\"<s>\",\"single_word\":false,\"lstrip\":false,"             \
    "\"rstrip\":false,\"normalized\":false,\"special\":true}]"

typedef struct tok_parts {
    const char *type;       /* model.type */
    const char *vocab;
    const char *merges;
    const char *model_extra;/* unk_token and more model fields, with a leading comma */
    const char *normalizer;
    const char *pretok;
    const char *decoder;
    const char *added;
    const char *post;
} tok_parts;

static const char *write_tok(const char *name, const tok_parts *p) {
    static char json[8192];
    snprintf(json, sizeof json,
             "{\"version\":\"1.0\",\"added_tokens\":%s,\"normalizer\":%s,"
             "\"pre_tokenizer\":%s,\"post_processor\":%s,\"decoder\":%s,"
             "\"model\":{\"type\":%s,\"fuse_unk\":true,"
             "\"byte_fallback\":false%s,\"vocab\":%s,\"merges\":%s}}",
             p->added ? p->added : A_OK, p->normalizer ? p->normalizer : N_OK,
             p->pretok ? p->pretok : "null", p->post ? p->post : "null",
             p->decoder ? p->decoder : D_OK, p->type ? p->type : "\"BPE\"",
             p->model_extra ? p->model_extra : ",\"unk_token\":\"<unk>\"",
             p->vocab ? p->vocab : V_OK,
             p->merges ? p->merges : M_OK);
    const char *path = el_test_path(name);
    EL_CHECK(el_test_write_file(path, json, strlen(json)));
    return path;
}

/* Opening a file made from parts gives want, and the message names `needle`. */
static void expect_open(const char *name, const tok_parts *p, el_status want,
                        const char *needle) {
    el_tokenizer *t = NULL;
    el_status st = el_tokenizer_hf_bpe_open(write_tok(name, p), 0, &t);
    EL_CHECK_STATUS(st, want);
    if (st != want || (needle && !strstr(el_last_error(), needle)))
        fprintf(stderr, "  %s: status %s, message \"%s\" (want it to mention '%s')\n", name,
                el_status_str(st), el_last_error(), needle ? needle : "");
    if (needle) EL_CHECK(strstr(el_last_error(), needle) != NULL);
    if (want != EL_OK) EL_CHECK(t == NULL);
    el_tokenizer_close(t);
}

static void check_bad_files(void) {
    /* The base file is fine: "a a" -> "▁a▁a" -> symbols ▁ a ▁ a -> merge "▁ a" twice. */
    tok_parts base = {0};
    el_tokenizer *t = NULL;
    EL_CHECK_OK(el_tokenizer_hf_bpe_open(write_tok("base.json", &base), 6, &t));
    if (t) {
        size_t n = 0;
        EL_CHECK_OK(el_tokenizer_encode(t, "a a", 3, true, g_ids, IDS_CAP, &n));
        EL_CHECK(n == 3 && g_ids[0] == 1 && g_ids[1] == 5 && g_ids[2] == 5);
        /* 'b' is not in the vocabulary and there is no byte fallback: one fused <unk>. */
        EL_CHECK_OK(el_tokenizer_encode(t, "abb", 3, false, g_ids, IDS_CAP, &n));
        EL_CHECK(n == 2 && g_ids[0] == 5 && g_ids[1] == 0);
        el_tokenizer_close(t);
    }

    /* Not JSON at all, JSON of the wrong shape, empty, missing, too deep. */
    const char *p = el_test_path("garbage.json");
    const char *cut = "{\"model\": {\"type\": \"BPE\", ";
    EL_CHECK(el_test_write_file(p, cut, strlen(cut)));
    EL_CHECK_STATUS(el_tokenizer_hf_bpe_open(p, 0, &t), EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "garbage.json") != NULL);
    p = el_test_path("array.json");
    EL_CHECK(el_test_write_file(p, "[1, 2, 3]", 9));
    EL_CHECK_STATUS(el_tokenizer_hf_bpe_open(p, 0, &t), EL_E_INVALID);
    p = el_test_path("empty.json");
    EL_CHECK(el_test_write_file(p, "", 0));
    EL_CHECK_STATUS(el_tokenizer_hf_bpe_open(p, 0, &t), EL_E_INVALID);
    EL_CHECK(el_tokenizer_hf_bpe_open(el_test_path("does-not-exist.json"), 0, &t) != EL_OK);
    EL_CHECK(t == NULL);
    {
        static char deep[4096];
        size_t k = 0;
        k += (size_t)snprintf(deep, sizeof deep, "{\"model\":");
        for (int i = 0; i < 200; i++) deep[k++] = '[';
        for (int i = 0; i < 200; i++) deep[k++] = ']';
        deep[k++] = '}';
        p = el_test_path("deep.json");
        EL_CHECK(el_test_write_file(p, deep, k));
        EL_CHECK_STATUS(el_tokenizer_hf_bpe_open(p, 0, &t), EL_E_INVALID);
        EL_CHECK(strstr(el_last_error(), "deeper") != NULL);
    }

    /* Other model kinds belong to other backends. */
    tok_parts x = base;
    x.type = "\"WordPiece\"";
    expect_open("wordpiece.json", &x, EL_E_UNSUPPORTED, "WordPiece");
    x = base;
    x.type = "\"Unigram\"";
    expect_open("unigram.json", &x, EL_E_UNSUPPORTED, "Unigram");
    x = base;
    x.type = "null";
    expect_open("notype.json", &x, EL_E_INVALID, "model.type");

    /* Merges that do not fit the vocabulary. */
    x = base;
    x.merges = "[\"" SP " zz\"]";
    expect_open("merge_unknown.json", &x, EL_E_INVALID, "'zz'");
    x = base;
    x.merges = "[[\"q\", \"a\"]]";
    expect_open("merge_pair_unknown.json", &x, EL_E_INVALID, "'q'");
    x = base;
    x.merges = "[\"a a\"]";
    expect_open("merge_result.json", &x, EL_E_INVALID, "merged token is not in");
    x = base;
    x.merges = "[\"" SP "a\"]";
    expect_open("merge_one.json", &x, EL_E_INVALID, "merges[0]");
    x = base;
    x.merges = "[\"" SP " a\", 7]";
    expect_open("merge_number.json", &x, EL_E_INVALID, "merges[1]");
    x = base; /* the [a, b] spelling is accepted too */
    x.merges = "[[\"" SP "\", \"a\"]]";
    expect_open("merge_pair.json", &x, EL_OK, NULL);

    /* Vocabulary ids out of range, duplicated, or not integers. */
    x = base;
    x.vocab = "{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"" SP "\":3,\"a\":4,\"" SP "a\":50}";
    expect_open("vocab_gap.json", &x, EL_E_INVALID, "out of range");
    x = base;
    x.vocab = "{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"" SP "\":3,\"a\":-4,\"" SP "a\":5}";
    expect_open("vocab_negative.json", &x, EL_E_INVALID, "'a'");
    x = base;
    x.vocab = "{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"" SP "\":3,\"a\":4.5,\"" SP "a\":5}";
    expect_open("vocab_fraction.json", &x, EL_E_INVALID, "'a'");
    x = base;
    x.vocab = "{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"" SP "\":3,\"a\":4,\"" SP "a\":99999999}";
    expect_open("vocab_huge.json", &x, EL_E_INVALID, "token ids must be");
    x = base;
    x.vocab = "{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"" SP "\":3,\"a\":3,\"" SP "a\":5}";
    expect_open("vocab_dup_id.json", &x, EL_E_INVALID, "id 3");
    x = base;
    x.vocab = "{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"" SP "\":3,\"a\":4,\"a\":5}";
    expect_open("vocab_dup_token.json", &x, EL_E_INVALID, "appears twice");
    x = base;
    x.vocab = "[\"<unk>\"]";
    expect_open("vocab_array.json", &x, EL_E_INVALID, "model.vocab");
    x = base;
    x.added = "[{\"id\":1,\"content\":\"<bos>\",\"special\":true}]";
    expect_open("added_conflict.json", &x, EL_E_INVALID, "added_tokens[0]");
    x = base; /* an added token repeating a vocabulary string under a new id is fine */
    x.vocab = "{\"<unk>\":0,\"<s>\":1,\"</s>\":2,\"" SP "\":3,\"a\":4,\"" SP "a\":5}";
    x.added = "[{\"id\":1,\"content\":\"<s>\",\"special\":true},"
              "{\"id\":6,\"content\":\"a\",\"special\":false}]";
    expect_open("added_repeat.json", &x, EL_OK, NULL);
    x = base;
    x.model_extra = ",\"unk_token\":\"<nope>\"";
    expect_open("unk_missing.json", &x, EL_E_INVALID, "unk_token");

    /* Pipeline components this backend does not implement are named. */
    x = base;
    x.normalizer = "{\"type\":\"NFKC\"}";
    expect_open("nfkc.json", &x, EL_E_UNSUPPORTED, "NFKC");
    x = base;
    x.normalizer = "{\"type\":\"Replace\",\"pattern\":{\"Regex\":\" +\"},\"content\":\"x\"}";
    expect_open("regex.json", &x, EL_E_UNSUPPORTED, "regex");
    x = base;
    x.pretok = "{\"type\":\"ByteLevel\",\"add_prefix_space\":false}";
    expect_open("bytelevel.json", &x, EL_E_UNSUPPORTED, "ByteLevel");
    x = base;
    x.pretok = "{\"type\":\"Metaspace\",\"replacement\":\"" SP "\","
               "\"prepend_scheme\":\"sometimes\"}";
    expect_open("scheme.json", &x, EL_E_INVALID, "prepend_scheme");
    x = base;
    x.decoder = "{\"type\":\"ByteLevel\"}";
    expect_open("dec_bytelevel.json", &x, EL_E_UNSUPPORTED, "ByteLevel");
    x = base;
    x.decoder = "null";
    expect_open("dec_null.json", &x, EL_E_UNSUPPORTED, "decoder");
    x = base;
    x.decoder = "{\"type\":\"Sequence\",\"decoders\":[{\"type\":\"Strip\",\"content\":\" \","
                "\"start\":0,\"stop\":1}]}";
    expect_open("dec_strip_end.json", &x, EL_E_UNSUPPORTED, "stop 1");
    x = base;
    /* lstrip / rstrip / single_word are HF's (test_tokenizer_pretok); normalized true is not */
    x.added = "[{\"id\":1,\"content\":\"<s>\",\"normalized\":true,\"special\":true}]";
    expect_open("normalized.json", &x, EL_E_UNSUPPORTED, "normalized");
    x = base;
    x.model_extra = ",\"unk_token\":\"<unk>\",\"dropout\":0.1";
    expect_open("dropout.json", &x, EL_E_UNSUPPORTED, "dropout");
    x = base;
    x.model_extra = ",\"unk_token\":\"<unk>\",\"continuing_subword_prefix\":\"##\"";
    expect_open("prefix.json", &x, EL_E_UNSUPPORTED, "continuing_subword_prefix");
    x = base;
    x.post = "{\"type\":\"RobertaProcessing\"}";
    expect_open("post.json", &x, EL_E_UNSUPPORTED, "post_processor");
    x = base;
    x.post = "{\"type\":\"TemplateProcessing\",\"single\":[{\"Sequence\":{\"id\":\"A\"}},"
             "{\"SpecialToken\":{\"id\":\"</s>\"}}],\"special_tokens\":{}}";
    expect_open("post_eos.json", &x, EL_E_UNSUPPORTED, "post_processor");

    /* No unk and no byte fallback: an unknown character is an error, not a guess. */
    x = base;
    x.model_extra = ",\"unk_token\":null";
    t = NULL;
    EL_CHECK_OK(el_tokenizer_hf_bpe_open(write_tok("no_unk.json", &x), 0, &t));
    if (t) {
        size_t n = 0;
        EL_CHECK_STATUS(el_tokenizer_encode(t, "a b", 3, false, g_ids, IDS_CAP, &n),
                        EL_E_INVALID);
        EL_CHECK(strstr(el_last_error(), "byte 2") != NULL);
        el_tokenizer_close(t);
    }
}

int main(void) {
    size_t len = 0;
    char *json = el_test_read_file(FIXDIR "/cases.json", &len);
    EL_CHECK(json != NULL);
    if (!json) return el_test_finish("test_tokenizer_hf_bpe");
    cJSON *root = cJSON_ParseWithLength(json, len);
    EL_CHECK(root != NULL);
    const cJSON *toks = root ? cJSON_GetObjectItem(root, "tokenizers") : NULL;
    int count = 0;
    for (const cJSON *s = toks ? toks->child : NULL; s; s = s->next, count++)
        check_fixture_tokenizer(s->string, s);
    EL_CHECK(count >= 6); /* legacy, metaspace, metaspace_split, ignore_merges, unk x2 */
    cJSON_Delete(root);
    free(json);

    el_test_tmpdir();
    check_bad_text();
    check_bad_files();
    el_test_tmpdir_cleanup();
    return el_test_finish("test_tokenizer_hf_bpe");
}
