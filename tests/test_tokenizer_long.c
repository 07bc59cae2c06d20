/* test_tokenizer_long.c - long inputs through the SentencePiece-style merging of the
 * llama2.c (tok512.bin) and GGUF SentencePiece (tok_spm.gguf) tokenizers: the ids equal
 * those of a plain rescanning merge loop written here (llama2.c's encode: best score, the
 * leftmost among equals; quadratic, so on an 8 KB prefix), and a 1 MB text made of one
 * paragraph repeated gives that paragraph's reference ids repeated (where the reference
 * shows the text splits cleanly between copies), in well under 10 s each (the speed target
 * itself is in bench/bench_tokenizer); 17,000 characters that no cut can split (merged in
 * the caller's buffer, or EL_E_NOFIT with a count that suffices). And the real GPT-2 and
 * MiniLM (WordPiece, tokenizer.json) tokenizers from ../shared/models on 1 MB: a repeated
 * paragraph and a single 1 MB word. */
// ctest-labels: tokenizer;llama;gguf
// ctest-timeout: 60
#include "tests/llama_fixture.h"
#include "tests/spm_cases.h"
#include "tests/support/el_test.h"

#include "loader/formats/gguf.h"
#include "platform/platform.h"
#include "tokenizer/tokenizer.h"

#include <stdlib.h>
#include <string.h>

#define BIG (1u << 20)   /* bytes of the long text */
#define PREFIX 8192u     /* bytes the reference loop runs on */

/* ---- the reference: a vocabulary and the rescanning loop ----------------------------- */

typedef struct ref_vocab {
    uint32_t n;
    const char **text; /* [n] piece bytes */
    uint32_t *len;     /* [n] */
    float *score;      /* [n] */
    int32_t *slot;     /* hash of the texts, -1 empty; the lowest id of equal texts */
    uint32_t mask;
    bool spm;          /* GGUF SentencePiece rules (else llama2.c's) */
    int32_t byte_id[256]; /* spm: <0xXX> by text, -1 none */
    int32_t unk;
} ref_vocab;

static uint32_t ref_hash(const char *a, size_t al, const char *b, size_t bl) {
    uint32_t h = 2166136261u;
    for (size_t i = 0; i < al; i++) h = (h ^ (unsigned char)a[i]) * 16777619u;
    for (size_t i = 0; i < bl; i++) h = (h ^ (unsigned char)b[i]) * 16777619u;
    return h;
}

static int32_t ref_find(const ref_vocab *v, const char *a, size_t al, const char *b, size_t bl) {
    for (uint32_t i = ref_hash(a, al, b, bl) & v->mask;; i = (i + 1) & v->mask) {
        int32_t id = v->slot[i];
        if (id < 0) return -1;
        if (v->len[id] == al + bl && !memcmp(v->text[id], a, al) &&
            !memcmp(v->text[id] + al, b, bl))
            return id;
    }
}

static void ref_index(ref_vocab *v) {
    uint32_t slots = 16;
    while (slots < 2 * v->n) slots *= 2;
    v->mask = slots - 1;
    v->slot = malloc(slots * sizeof *v->slot);
    memset(v->slot, 0xff, slots * sizeof *v->slot);
    for (uint32_t id = 0; id < v->n; id++) {
        if (ref_find(v, v->text[id], v->len[id], "", 0) >= 0) continue; /* keep the lowest */
        uint32_t i = ref_hash(v->text[id], v->len[id], "", 0) & v->mask;
        while (v->slot[i] >= 0) i = (i + 1) & v->mask;
        v->slot[i] = (int32_t)id;
    }
}

/* A symbol: a token (id >= 0) or a character that is none (spm), by its bytes. */
typedef struct ref_sym {
    int32_t id;
    const char *s;
    size_t len;
} ref_sym;

/* The ids of text[0..len) (no BOS) into out; returns the count. */
static size_t ref_encode(const ref_vocab *v, const char *text, size_t len, int32_t *out) {
    /* the normalized text: the prefix space, and (spm) every ' ' as U+2581 */
    char *norm = malloc(3 * len + 4);
    size_t nl = 0;
    const char *sp = v->spm ? "\xe2\x96\x81" : " ";
    size_t spl = strlen(sp);
    memcpy(norm, sp, spl), nl = spl;
    for (size_t i = 0; i < len; i++) {
        if (text[i] == ' ') memcpy(norm + nl, sp, spl), nl += spl;
        else norm[nl++] = text[i];
    }
    ref_sym *sym = malloc((nl + 1) * sizeof *sym);
    int32_t *pair = malloc((nl + 1) * sizeof *pair);
    size_t m = 0;
    for (size_t i = 0; i < nl;) {
        size_t cl = el_utf8_len(norm, nl, i);
        int32_t id = ref_find(v, norm + i, cl, "", 0);
        if (id >= 0 || v->spm) {
            sym[m++] = (ref_sym){id, id >= 0 ? v->text[id] : norm + i, id >= 0 ? v->len[id] : cl};
        } else { /* llama2.c: the bytes' tokens <0xXX> = 3 + byte */
            for (size_t k = 0; k < cl; k++) {
                int32_t b = 3 + (unsigned char)norm[i + k];
                sym[m++] = (ref_sym){b, v->text[b], v->len[b]};
            }
        }
        i += cl;
    }
    for (size_t i = 0; i + 1 < m; i++)
        pair[i] = ref_find(v, sym[i].s, sym[i].len, sym[i + 1].s, sym[i + 1].len);
    for (;;) {
        size_t best = m;
        for (size_t i = 0; i + 1 < m; i++)
            if (pair[i] >= 0 && (best == m || v->score[pair[i]] > v->score[pair[best]])) best = i;
        if (best == m) break;
        int32_t id = pair[best];
        sym[best] = (ref_sym){id, v->text[id], v->len[id]};
        memmove(sym + best + 1, sym + best + 2, (m - best - 2) * sizeof *sym);
        memmove(pair + best + 1, pair + best + 2, (m - best - 2) * sizeof *pair);
        m--;
        if (best > 0)
            pair[best - 1] = ref_find(v, sym[best - 1].s, sym[best - 1].len, sym[best].s,
                                      sym[best].len);
        if (best + 1 < m)
            pair[best] = ref_find(v, sym[best].s, sym[best].len, sym[best + 1].s,
                                  sym[best + 1].len);
    }
    size_t n = 0;
    for (size_t i = 0; i < m; i++) {
        if (sym[i].id >= 0) {
            out[n++] = sym[i].id;
            continue;
        }
        for (size_t k = 0; k < sym[i].len; k++) { /* spm: a character that is no token */
            int32_t b = v->byte_id[(unsigned char)sym[i].s[k]];
            out[n++] = b >= 0 ? b : v->unk;
        }
    }
    free(norm);
    free(sym);
    free(pair);
    return n;
}

/* tokenizer.bin read here by its format: int32 max length, then (f32 score, int32 len,
 * bytes) per token. */
static void ref_llama2c(ref_vocab *v, const char *bin, size_t size) {
    memset(v, 0, sizeof *v);
    size_t cap = 1024;
    v->text = malloc(cap * sizeof *v->text);
    v->len = malloc(cap * sizeof *v->len);
    v->score = malloc(cap * sizeof *v->score);
    for (size_t o = 4; o + 8 <= size && v->n < cap;) {
        int32_t l;
        memcpy(&v->score[v->n], bin + o, 4);
        memcpy(&l, bin + o + 4, 4);
        v->text[v->n] = bin + o + 8;
        v->len[v->n++] = (uint32_t)l;
        o += 8 + (size_t)l;
    }
    ref_index(v);
}

/* The GGUF's tokens, scores and types (read with the parser's iterator from the bytes). */
static void ref_spm(ref_vocab *v, const el_gguf *g, const char *bytes) {
    memset(v, 0, sizeof *v);
    v->spm = true;
    const el_gguf_kv *tk = el_gguf_find(g, "tokenizer.ggml.tokens");
    const el_gguf_kv *sk = el_gguf_find(g, "tokenizer.ggml.scores");
    EL_CHECK(tk && sk);
    if (!tk || !sk) return;
    v->n = (uint32_t)tk->v.len;
    v->text = malloc(v->n * sizeof *v->text);
    v->len = malloc(v->n * sizeof *v->len);
    v->score = malloc(v->n * sizeof *v->score);
    el_gguf_iter it, si;
    el_gguf_iter_init(g, &tk->v, &it);
    el_gguf_iter_init(g, &sk->v, &si);
    for (uint32_t i = 0; i < v->n; i++) {
        el_gguf_value a, b;
        EL_CHECK_OK(el_gguf_iter_next(&it, &a));
        EL_CHECK_OK(el_gguf_iter_next(&si, &b));
        v->text[i] = bytes + a.offset;
        v->len[i] = (uint32_t)a.len;
        v->score[i] = (float)b.num.f;
    }
    ref_index(v);
    for (int b = 0; b < 256; b++) {
        char hex[8];
        snprintf(hex, sizeof hex, "<0x%02X>", b);
        v->byte_id[b] = ref_find(v, hex, 6, "", 0);
    }
    v->unk = 0;
}

static void ref_free(ref_vocab *v) {
    free(v->text);
    free(v->len);
    free(v->score);
    free(v->slot);
}

/* ---- texts --------------------------------------------------------------------------- */

/* Ordinary English: sentences of common words from a fixed list (no '<', so no special
 * token of tok_spm.gguf), picked by a small LCG from seed. */
static size_t english(char *out, size_t len, uint32_t seed) {
    static const char *const w[] = {
        "the", "a", "little", "girl", "named", "Lily", "was", "playing", "in", "park", "with",
        "her", "friend", "Tom", "they", "saw", "big", "red", "ball", "and", "wanted", "to",
        "play", "together", "one", "day", "happy", "dog", "ran", "after", "it", "sun", "shone",
        "bright", "mother", "said", "we", "can", "go", "home", "now", "because", "time",
        "for", "dinner", "he", "smiled", "looked", "at", "sky", "there", "were", "many",
        "birds", "flying", "over", "trees", "once", "upon", "lived", "small", "house", "near",
        "river", "every", "morning", "she", "would", "walk", "garden", "flowers"};
    size_t nw = sizeof w / sizeof *w, o = 0, inw = 0;
    uint32_t x = seed;
    while (o < len) {
        x = x * 1664525u + 1013904223u;
        const char *word = w[(x >> 8) % nw];
        char piece[32];
        int pl = snprintf(piece, sizeof piece, "%s%s", inw ? " " : "", word);
        inw++;
        if ((x >> 24) % 9 == 0) { /* the end of a sentence */
            pl += snprintf(piece + pl, sizeof piece - (size_t)pl, "%s", (x >> 20) % 3 ? "." : "!");
            if ((x >> 16) % 5 == 0) pl += snprintf(piece + pl, sizeof piece - (size_t)pl, "\n");
            inw = (x >> 16) % 5 != 0;
        } else if ((x >> 24) % 11 == 0) {
            pl += snprintf(piece + pl, sizeof piece - (size_t)pl, ",");
        }
        size_t k = (size_t)pl < len - o ? (size_t)pl : len - o;
        memcpy(out + o, piece, k);
        o += k;
    }
    return o;
}

/* A walk over the lower-case letters where every two neighbours occur together inside some
 * piece of v: nowhere can the tokenizer cut it, so all of it is one stretch to merge. */
static size_t uncut(const ref_vocab *v, char *out, size_t len) {
    bool pair[26][26] = {{false}};
    for (uint32_t id = 0; id < v->n; id++)
        for (uint32_t k = 0; k + 1 < v->len[id]; k++) {
            int a = v->text[id][k] - 'a', b = v->text[id][k + 1] - 'a';
            if (a >= 0 && a < 26 && b >= 0 && b < 26) pair[a][b] = true;
        }
    bool live[26]; /* letters a walk can go on from forever: drop dead ends until none */
    for (int a = 0; a < 26; a++) live[a] = true;
    for (bool changed = true; changed;) {
        changed = false;
        for (int a = 0; a < 26; a++) {
            bool any = false;
            for (int b = 0; b < 26 && live[a] && !any; b++) any = live[b] && pair[a][b];
            if (live[a] && !any) live[a] = false, changed = true;
        }
    }
    int c = 0;
    while (c < 26 && !live[c]) c++;
    EL_CHECK(c < 26);
    uint32_t x = 4242u;
    size_t o = 0;
    while (o < len && c < 26) {
        out[o++] = (char)('a' + c);
        int next[26], nn = 0;
        for (int b = 0; b < 26; b++)
            if (live[b] && pair[c][b]) next[nn++] = b;
        x = x * 1664525u + 1013904223u;
        c = next[(x >> 8) % (uint32_t)nn];
    }
    return o;
}

/* ---- the checks ---------------------------------------------------------------------- */

static int32_t *g_ids, *g_ref;
static size_t g_cap;

static size_t encode(const el_tokenizer *t, const char *text, size_t len, double *secs) {
    size_t n = 0;
    double t0 = now_s();
    el_status s = el_tokenizer_encode(t, text, len, false, g_ids, g_cap, &n);
    if (secs) *secs = now_s() - t0;
    EL_CHECK_OK(s);
    return s == EL_OK ? n : 0;
}

/* 17,000 characters that cannot be cut: past the stack and scratch work space, merged in
 * the caller's buffer; a buffer of just the pre-merge count is EL_E_NOFIT with a count that
 * then suffices. */
static void check_uncut(const char *what, const el_tokenizer *t, const ref_vocab *v) {
    char text[17000];
    size_t len = uncut(v, text, sizeof text);
    size_t nr = ref_encode(v, text, len, g_ref);
    size_t n = encode(t, text, len, NULL);
    bool same = n == nr && !memcmp(g_ids, g_ref, n * sizeof *g_ids);
    EL_CHECK(same);
    size_t need = 0, n2 = 0;
    EL_CHECK_STATUS(el_tokenizer_encode(t, text, len, false, g_ids, len + 1, &need),
                    EL_E_NOFIT);
    EL_CHECK(need > len + 1 && need <= g_cap);
    if (need <= g_cap) {
        EL_CHECK_OK(el_tokenizer_encode(t, text, len, false, g_ids, need, &n2));
        EL_CHECK(n2 == nr && !memcmp(g_ids, g_ref, n2 * sizeof *g_ids));
    }
    printf("%s: %zu characters without a cut: %zu ids, equal to the reference loop: %s; "
           "with room for %zu ids only: EL_E_NOFIT asking for %zu\n", what, len, n,
           same ? "yes" : "NO", len + 1, need);
}

static void check_long(const char *what, const el_tokenizer *t, const ref_vocab *v) {
    check_uncut(what, t, v);
    char *text = malloc(BIG);
    /* 1. a varied 8 KB text against the reference loop */
    english(text, PREFIX, 12345u);
    size_t nr = ref_encode(v, text, PREFIX, g_ref);
    size_t n = encode(t, text, PREFIX, NULL);
    EL_CHECK(n == nr && !memcmp(g_ids, g_ref, n * sizeof *g_ids));
    printf("%s: %zu-byte text, %zu ids, equal to the reference loop: %s\n", what,
           (size_t)PREFIX, n, n == nr && !memcmp(g_ids, g_ref, n * sizeof *g_ids) ? "yes" : "NO");
    /* 2. one paragraph P, then P repeated to 1 MB: the reference gives ids(P) + X for P P
     * and ids(P) + X + X for P P P (the copies split cleanly); the tokenizer must give
     * ids(P) + X * (copies - 1) */
    char para[1200];
    size_t pl = english(para, sizeof para - 1, 777u);
    para[pl - 1] = '\n';
    size_t copies = BIG / pl, big = copies * pl;
    for (size_t i = 0; i < copies; i++) memcpy(text + i * pl, para, pl);
    size_t n1 = ref_encode(v, text, pl, g_ref);
    int32_t *one = malloc(n1 * sizeof *one);
    memcpy(one, g_ref, n1 * sizeof *one);
    size_t n2 = ref_encode(v, text, 2 * pl, g_ref);
    EL_CHECK(n2 > n1 && !memcmp(g_ref, one, n1 * sizeof *one));
    size_t nx = n2 - n1;
    int32_t *x = malloc(nx * sizeof *x);
    memcpy(x, g_ref + n1, nx * sizeof *x);
    size_t n3 = ref_encode(v, text, 3 * pl, g_ref);
    EL_CHECK(n3 == n1 + 2 * nx && !memcmp(g_ref + n1 + nx, x, nx * sizeof *x));
    double secs = 0;
    n = encode(t, text, big, &secs);
    bool same = n == n1 + (copies - 1) * nx && !memcmp(g_ids, one, n1 * sizeof *one);
    for (size_t i = 1; same && i < copies; i++)
        same = !memcmp(g_ids + n1 + (i - 1) * nx, x, nx * sizeof *x);
    EL_CHECK(same);
    printf("%s: %zu bytes (%zu copies of a %zu-byte paragraph): %zu ids in %.3f s, the "
           "paragraph's reference ids repeated: %s\n", what, big, copies, pl, n, secs,
           same ? "yes" : "NO");
    EL_CHECK(secs < 10.0);
    /* 3. 1 MB of varied text: time only */
    english(text, BIG, 99u);
    n = encode(t, text, BIG, &secs);
    printf("%s: %u bytes of varied text: %zu ids in %.3f s\n", what, BIG, n, secs);
    EL_CHECK(n > BIG / 16 && secs < 10.0);
    free(one);
    free(x);
    free(text);
}

/* A 1 MB text through a real tokenizer: one paragraph repeated gives the paragraph's ids
 * repeated (it starts with a letter and ends with a newline, which both tokenizers split on),
 * and one 1 MB word (GPT-2: a single pre-token merged with the heap; WordPiece: past
 * max_input_chars_per_word, one [UNK]) - each in well under 10 s. */
static void check_real(const char *what, el_tokenizer *t) {
    static const char para[] = "The small model loads like firmware, streaming its weights "
                               "from flash into a fixed arena; 42 boards run it.\n";
    const size_t pl = sizeof para - 1, copies = BIG / pl;
    char *text = malloc(BIG + 1);
    for (size_t i = 0; i < copies; i++) memcpy(text + i * pl, para, pl);
    size_t np = 0, n = 0;
    EL_CHECK_OK(el_tokenizer_encode(t, para, pl, false, g_ref, g_cap, &np));
    double t0 = el_now();
    EL_CHECK_OK(el_tokenizer_encode(t, text, copies * pl, false, g_ids, g_cap, &n));
    double dt = el_now() - t0;
    bool same = n == np * copies;
    for (size_t i = 0; same && i < n; i++) same = g_ids[i] == g_ref[i % np];
    fprintf(stderr, "%s: %zu bytes of a repeated paragraph -> %zu ids in %.3f s, %s\n", what,
            copies * pl, n, dt, same ? "the paragraph's ids repeated" : "DIFFERENT ids");
    EL_CHECK(same && dt < 10.0);
    memset(text, 'a', BIG);
    t0 = el_now();
    EL_CHECK_OK(el_tokenizer_encode(t, text, BIG, false, g_ids, g_cap, &n));
    dt = el_now() - t0;
    fprintf(stderr, "%s: one %u-byte word -> %zu ids in %.3f s\n", what, BIG, n, dt);
    EL_CHECK(n >= 1 && dt < 10.0);
    free(text);
}

int main(void) {
    g_cap = 2u * BIG;
    g_ids = malloc(g_cap * sizeof *g_ids);
    g_ref = malloc(2 * BIG * sizeof *g_ref);
    /* llama2.c */
    size_t len = 0;
    char *bin = el_test_read_file(STORIES_TOK, &len);
    el_tokenizer *t = NULL;
    EL_CHECK(bin != NULL);
    if (bin) EL_CHECK_OK(el_tokenizer_llama2c_parse(bin, len, "tok512.bin", 512, &t));
    if (t) {
        ref_vocab v;
        ref_llama2c(&v, bin, len);
        EL_CHECK(v.n == 512);
        check_long("llama2c tok512.bin", t, &v);
        ref_free(&v);
    }
    el_tokenizer_close(t);
    free(bin);
    /* GGUF SentencePiece */
    char *bytes = el_test_read_file(GGUF_DIR "/tok_spm.gguf", &len);
    EL_CHECK(bytes != NULL);
    el_gguf_mem gm = {(const uint8_t *)bytes, len};
    el_gguf_source gs = {el_gguf_mem_read, &gm, len, "tok_spm.gguf"};
    el_gguf *g = NULL;
    t = NULL;
    if (bytes) EL_CHECK_OK(el_gguf_parse(&gs, &g));
    if (g) EL_CHECK_OK(el_tokenizer_gguf_spm_open(g, 0, &t));
    if (t) {
        ref_vocab v;
        ref_spm(&v, g, bytes);
        check_long("gguf-spm tok_spm.gguf", t, &v);
        ref_free(&v);
    }
    el_tokenizer_close(t);
    el_gguf_free(g);
    free(bytes);
    /* The real GPT-2 and MiniLM tokenizers (../shared/models), when present. */
    const char *shared = el_test_shared_models();
    char p1[1024], p2[1024];
    t = NULL;
    snprintf(p1, sizeof p1, "%s/gpt2-tokenizer/encoder.json", shared ? shared : ".");
    snprintf(p2, sizeof p2, "%s/gpt2-tokenizer/vocab.bpe", shared ? shared : ".");
    if (shared && el_tokenizer_gpt2_open(p1, p2, 0, &t) == EL_OK)
        check_real("gpt2 (real)", t);
    else
        fprintf(stderr, "!! the real GPT-2 tokenizer is absent (%s)\n", p1);
    el_tokenizer_close(t);
    t = NULL;
    snprintf(p1, sizeof p1, "%s/all-MiniLM-L6-v2/tokenizer.json", shared ? shared : ".");
    if (shared && el_tokenizer_open(p1, 0, &t) == EL_OK)
        check_real("wordpiece MiniLM tokenizer.json (real)", t);
    else
        fprintf(stderr, "!! the MiniLM tokenizer is absent (%s)\n", p1);
    el_tokenizer_close(t);
    free(g_ids);
    free(g_ref);
    return el_test_finish("test_tokenizer_long");
}
