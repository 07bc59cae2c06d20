/* test_tokenizer_arena.c - tokenizers live in the plan's tokenizer region (issue 18):
 *   - the real GPT-2 tokenizer (../shared/models/gpt2-tokenizer, encoder.json + vocab.bpe)
 *     on the hf_gpt2_vocab50257 fixture: `plan` shows a tokenizer region, and a `generate`
 *     run peaks (VmHWM) within the plan's total + 4 MiB, with the prompt ids the heap-built
 *     tokenizer gives;
 *   - a generated Llama-3-sized byte-level BPE tokenizer.json (128,000 tokens + 2 added,
 *     280,000 merges, both merge spellings; written here, deterministic) on a synthetic
 *     GPT-2 model of 128,256 rows: `generate` within the arena + 4 MiB, its prompt ids equal
 *     to the heap-built tokenizer's (el_tokenizer_open), the tokenizer region used.
 * Skips the first part without ../shared/models. */
// ctest-labels: tokenizer;model;cli
// ctest-timeout: 60
#include "tests/gpt2_synth.h"
#include "tests/support/el_test.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024.0 * 1024.0)
#define SLACK (4ull << 20) /* what may sit outside the arena: binary, libc, stacks */

/* Runs the CLI; its --json output parsed (NULL on failure). */
static cJSON *cli_json(const char *args) {
    char *out = NULL, *err = NULL;
    int rc = el_test_run_cli(args, &out, &err);
    cJSON *j = rc == 0 && out ? cJSON_Parse(out) : NULL;
    if (!j) fprintf(stderr, "edgeload %s: exit %d\nstdout: %s\nstderr: %s\n", args, rc,
                    out ? out : "", err ? err : "");
    free(out);
    free(err);
    return j;
}

static double num(const cJSON *o, const char *path) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *it = o;
    for (char *tok = strtok(buf, "."); tok && it; tok = strtok(NULL, "."))
        it = cJSON_GetObjectItemCaseSensitive(it, tok);
    return cJSON_IsNumber(it) ? it->valuedouble : -1;
}

/* generate's prompt_ids equal want[0..n). */
static bool same_ids(const cJSON *j, const int32_t *want, size_t n) {
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "prompt_ids");
    if (!cJSON_IsArray(ids) || (size_t)cJSON_GetArraySize(ids) != n) return false;
    size_t i = 0;
    for (const cJSON *it = ids->child; it; it = it->next, i++)
        if ((int32_t)it->valuedouble != want[i]) return false;
    return true;
}

/* One generate run: VmHWM within the arena it reserved + SLACK, the tokenizer region used,
 * the prompt's ids as want. */
static void check_generate(const char *what, const char *model, const char *tok,
                           const char *prompt, const int32_t *want, size_t nw,
                           double plan_total) {
    char args[2400];
    snprintf(args, sizeof args, "generate '%s' --tokenizer '%s' -p '%s' -n 4 --temp 0 --json",
             model, tok, prompt);
    cJSON *j = cli_json(args);
    EL_CHECK(j != NULL);
    if (!j) return;
    double hwm = num(j, "memory.vm_hwm"), reserved = num(j, "memory.arena.reserved");
    double tok_used = num(j, "memory.arena.regions.tokenizer.used");
    printf("%s: arena %.2f MiB (plan %.2f MiB, tokenizer region %.2f MiB used), VmHWM %.2f MiB "
           "(bound %.2f MiB), time to first token %.3f s\n", what, reserved / MIB,
           plan_total / MIB, tok_used / MIB, hwm / MIB, (reserved + SLACK) / MIB,
           num(j, "stats.time_to_first_token_s"));
    EL_CHECK(hwm > 0 && hwm <= reserved + (double)SLACK);
    EL_CHECK(plan_total < 0 || reserved == plan_total);
    EL_CHECK(tok_used > 0);
    EL_CHECK(same_ids(j, want, nw));
    cJSON_Delete(j);
}

/* Heap-built reference ids for text (el_tokenizer_open, vocab check off). */
static size_t heap_ids(const char *tok, const char *text, int32_t *ids, size_t cap) {
    el_tokenizer *t = NULL;
    EL_CHECK_OK(el_tokenizer_open(tok, 0, &t));
    size_t n = 0;
    if (t) EL_CHECK_OK(el_tokenizer_encode(t, text, strlen(text), false, ids, cap, &n));
    el_tokenizer_close(t);
    return n;
}

static void test_gpt2_real(void) {
    const char *shared = el_test_shared_models();
    char tok[900];
    snprintf(tok, sizeof tok, "%s/gpt2-tokenizer/encoder.json", shared ? shared : "");
    FILE *f = shared ? fopen(tok, "rb") : NULL;
    if (!f) {
        printf("the real GPT-2 tokenizer is not in ../shared/models: its part is skipped\n");
        return;
    }
    fclose(f);
    const char *model = EL_SOURCE_DIR "/tests/fixtures/hf_gpt2_vocab50257";
    char args[2000];
    snprintf(args, sizeof args, "plan '%s' --tokenizer '%s' --json", model, tok);
    cJSON *p = cli_json(args);
    EL_CHECK(p != NULL);
    double total = p ? num(p, "total") : -1, region = p ? num(p, "regions.tokenizer") : -1;
    EL_CHECK(region > 1024 * 1024); /* 50,257 tokens and 50,000 merges: MiBs, in the plan */
    cJSON_Delete(p);
    static const char prompt[] = "The quick brown fox jumps over the lazy dog. Hello, world!";
    int32_t want[64];
    size_t n = heap_ids(tok, prompt, want, 64);
    EL_CHECK(n > 10);
    check_generate("GPT-2 (real tokenizer)", model, tok, prompt, want, n, total);
}

/* ---- a generated 128k byte-level BPE tokenizer.json ------------------------------------ */

#define G_VOCAB 128000u
#define G_MERGES 280000u
#define G_MAXLEN 24u

typedef struct gen {
    char *str[G_VOCAB];
    uint8_t len[G_VOCAB];
    uint32_t n;
    int32_t *slot; /* string -> id, open addressing (1 << 18), -1 empty */
    uint64_t *pairs; /* (a << 32 | b) + 1, open addressing (1 << 20), 0 empty */
    uint32_t (*merge)[2];
    uint32_t n_merges;
    uint64_t rng;
} gen;

static uint64_t rnd(gen *g) {
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return g->rng;
}

static uint64_t hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static int32_t find(const gen *g, const char *s, size_t n) {
    for (uint64_t i = hash(s, n) & ((1u << 18) - 1);; i = (i + 1) & ((1u << 18) - 1)) {
        int32_t id = g->slot[i];
        if (id < 0) return -1;
        if (g->len[id] == n && !memcmp(g->str[id], s, n)) return id;
    }
}

static void add_token(gen *g, const char *s, size_t n) {
    uint32_t id = g->n++;
    g->str[id] = malloc(n + 1);
    memcpy(g->str[id], s, n);
    g->str[id][n] = 0;
    g->len[id] = (uint8_t)n;
    uint64_t i = hash(s, n) & ((1u << 18) - 1);
    while (g->slot[i] >= 0) i = (i + 1) & ((1u << 18) - 1);
    g->slot[i] = (int32_t)id;
}

/* Adds merge (a, b) unless the pair is there already. */
static bool add_merge(gen *g, uint32_t a, uint32_t b) {
    uint64_t key = ((uint64_t)a << 32 | b) + 1;
    uint64_t i = (key * 0x9E3779B97F4A7C15ull >> 40) & ((1u << 20) - 1);
    while (g->pairs[i] && g->pairs[i] != key) i = (i + 1) & ((1u << 20) - 1);
    if (g->pairs[i] || g->n_merges >= G_MERGES) return false;
    g->pairs[i] = key;
    g->merge[g->n_merges][0] = a;
    g->merge[g->n_merges][1] = b;
    g->n_merges++;
    return true;
}

/* A letter or 'Ġ' (space). */
static uint32_t pick_char(gen *g) {
    static const char alpha[] = "etaoinshrdlu ";
    char c = alpha[rnd(g) % (sizeof alpha - 1)];
    char u[4];
    size_t ul = el_tokenizer_byte_char((unsigned char)c, u);
    return (uint32_t)find(g, u, ul);
}

/* A made token, low ids more often (so merges chain); below 256 + lim. */
static uint32_t pick_made(gen *g, uint32_t lim) {
    uint32_t span = g->n - 256 < lim ? g->n - 256 : lim;
    uint64_t x = rnd(g) % span, y = rnd(g) % span;
    return 256 + (uint32_t)(x < y ? x : y);
}

static void gen_make(gen *g) {
    char u[4];
    for (unsigned b = 0; b < 256; b++) add_token(g, u, el_tokenizer_byte_char(b, u));
    char cat[2 * G_MAXLEN];
    while (g->n < G_VOCAB) {
        /* as BPE vocabularies grow: a token, then a character or a short token */
        uint32_t a = g->n == 256 || rnd(g) % 4 == 0 ? pick_char(g) : pick_made(g, UINT32_MAX);
        uint32_t b = g->n == 256 || rnd(g) % 5 < 3 ? pick_char(g) : pick_made(g, 500);
        size_t n = (size_t)g->len[a] + g->len[b];
        if (n > G_MAXLEN) continue;
        memcpy(cat, g->str[a], g->len[a]);
        memcpy(cat + g->len[a], g->str[b], g->len[b]);
        if (find(g, cat, n) < 0) {
            add_token(g, cat, n);
            add_merge(g, a, b);
        } else {
            add_merge(g, a, b); /* another spelling of a token there already */
        }
    }
    /* More spellings: every split of a made token into two tokens, until 280k. */
    for (uint32_t id = 256; id < g->n && g->n_merges < G_MERGES; id++) {
        const char *s = g->str[id];
        for (size_t k = 1; k < g->len[id]; k++) {
            if (((unsigned char)s[k] & 0xc0) == 0x80) continue; /* inside a character */
            int32_t l = find(g, s, k), r = find(g, s + k, g->len[id] - k);
            if (l >= 0 && r >= 0) add_merge(g, (uint32_t)l, (uint32_t)r);
        }
    }
}

static size_t put_str(char *o, const char *s, size_t n) {
    size_t k = 0;
    o[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') o[k++] = '\\';
        o[k++] = s[i];
    }
    o[k++] = '"';
    return k;
}

static bool gen_write(const gen *g, const char *path) {
    size_t cap = (size_t)64 << 20, o = 0;
    char *b = malloc(cap);
    if (!b) return false;
    o += (size_t)sprintf(b + o, "{\"version\":\"1.0\",\"truncation\":null,\"padding\":null,"
                         "\"added_tokens\":[");
    static const char *const added[] = {"<|begin_of_text|>", "<|end_of_text|>"};
    for (int i = 0; i < 2; i++)
        o += (size_t)sprintf(b + o, "%s{\"id\":%u,\"content\":\"%s\",\"single_word\":false,"
                             "\"lstrip\":false,\"rstrip\":false,\"normalized\":false,"
                             "\"special\":true}", i ? "," : "", G_VOCAB + i, added[i]);
    o += (size_t)sprintf(b + o, "],\"normalizer\":null,\"pre_tokenizer\":{\"type\":"
                         "\"ByteLevel\",\"add_prefix_space\":false,\"trim_offsets\":true,"
                         "\"use_regex\":true},\"post_processor\":null,\"decoder\":{\"type\":"
                         "\"ByteLevel\",\"add_prefix_space\":true,\"trim_offsets\":true,"
                         "\"use_regex\":true},\"model\":{\"type\":\"BPE\",\"dropout\":null,"
                         "\"unk_token\":null,\"fuse_unk\":false,\"byte_fallback\":false,"
                         "\"ignore_merges\":false,\"vocab\":{");
    for (uint32_t i = 0; i < g->n; i++) {
        if (i) b[o++] = ',';
        o += put_str(b + o, g->str[i], g->len[i]);
        o += (size_t)sprintf(b + o, ":%u", i);
    }
    o += (size_t)sprintf(b + o, "},\"merges\":[");
    for (uint32_t i = 0; i < g->n_merges; i++) {
        const uint32_t a = g->merge[i][0], c = g->merge[i][1];
        if (i) b[o++] = ',';
        if (i % 2) { /* the ["a", "b"] spelling (newer files) */
            b[o++] = '[';
            o += put_str(b + o, g->str[a], g->len[a]);
            b[o++] = ',';
            o += put_str(b + o, g->str[c], g->len[c]);
            b[o++] = ']';
        } else { /* "a b" (older files); byte-level tokens hold no ' ' */
            char pair[2 * G_MAXLEN + 1];
            memcpy(pair, g->str[a], g->len[a]);
            pair[g->len[a]] = ' ';
            memcpy(pair + g->len[a] + 1, g->str[c], g->len[c]);
            o += put_str(b + o, pair, (size_t)g->len[a] + 1 + g->len[c]);
        }
        if (o + 4096 > cap) {
            free(b);
            return false;
        }
    }
    o += (size_t)sprintf(b + o, "]}}");
    printf("generated tokenizer.json: %u tokens + 2 added, %u merges, %.1f MiB\n", g->n,
           g->n_merges, o / MIB);
    bool ok = el_test_write_file(path, b, o);
    free(b);
    return ok;
}

static void test_generated_128k(void) {
    gen *g = calloc(1, sizeof *g);
    g->slot = malloc((1u << 18) * sizeof *g->slot);
    g->pairs = calloc(1u << 20, sizeof *g->pairs);
    g->merge = malloc(G_MERGES * sizeof *g->merge);
    EL_CHECK(g->slot && g->pairs && g->merge);
    memset(g->slot, 0xff, (1u << 18) * sizeof *g->slot);
    g->rng = 0x2545F4914F6CDD1Dull;
    gen_make(g);
    EL_CHECK(g->n == G_VOCAB && g->n_merges == G_MERGES);
    char tok[700];
    snprintf(tok, sizeof tok, "%s", el_test_path("tok128k.json"));
    EL_CHECK(gen_write(g, tok));

    /* A prompt of made tokens' text (ASCII: the symbols are). */
    char prompt[1200];
    size_t pl = 0;
    for (int i = 0; i < 150 && pl < 400; i++) {
        uint32_t id = 256 + (uint32_t)(rnd(g) % 3000);
        const char *s = g->str[id];
        for (size_t k = 0; k < g->len[id];) {
            if (!memcmp(s + k, "\xc4\xa0", 2)) { /* 'Ġ' is a space */
                prompt[pl++] = ' ';
                k += 2;
            } else {
                char c = s[k++];
                prompt[pl++] = c == '\'' ? ' ' : c;
            }
        }
    }
    prompt[pl] = 0;
    for (uint32_t i = 0; i < g->n; i++) free(g->str[i]);
    free(g->slot);
    free(g->pairs);
    free(g->merge);
    free(g);

    static int32_t want[1200];
    size_t n = heap_ids(tok, prompt, want, 1200);
    EL_CHECK(n > 20 && n < pl / 2); /* merges fired */
    gpt2_synth s;
    gpt2_synth_default(&s);
    s.dim = 16;
    s.heads = 2;
    s.layers = 1;
    s.inner = 32;
    s.vocab = 128256; /* Llama 3's rows: more than the tokenizer's 128,002 tokens */
    s.n_pos = 1024;
    char dir[256];
    snprintf(dir, sizeof dir, "%.200s", el_test_path("gpt2_128k"));
    EL_CHECK(gpt2_synth_write(dir, &s));
    char args[2000];
    snprintf(args, sizeof args, "plan '%s' --tokenizer '%s' --json", dir, tok);
    cJSON *p = cli_json(args);
    double total = p ? num(p, "total") : -1, region = p ? num(p, "regions.tokenizer") : -1;
    printf("128k tokenizer: tokenizer region %.2f MiB of a %.2f MiB plan\n", region / MIB,
           total / MIB);
    EL_CHECK(region > 8 * 1024 * 1024);
    cJSON_Delete(p);
    check_generate("generated 128k tokenizer", dir, tok, prompt, want, n, total);
}

int main(void) {
    test_gpt2_real();
    test_generated_128k();
    return el_test_finish("test_tokenizer_arena");
}
