/* tok_gen.h - a generated Llama-3-sized byte-level BPE tokenizer.json (test and bench code
 * only): 128,000 tokens (the 256 byte characters, then tokens grown as BPE vocabularies
 * grow: a token and a character or a short token, from a small alphabet of letters and
 * 'Ġ'), 2 special added tokens (ids 128000, 128001), 280,000 merges (each token's making,
 * then every other split of a token into two tokens), half spelled "a b" and half
 * ["a", "b"]. Deterministic (fixed xorshift seed); about 8.5 MiB. */
#ifndef EL_TEST_TOK_GEN_H
#define EL_TEST_TOK_GEN_H

#include "tokenizer/tokenizer.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


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

static inline uint64_t rnd(gen *g) {
    g->rng ^= g->rng << 13;
    g->rng ^= g->rng >> 7;
    g->rng ^= g->rng << 17;
    return g->rng;
}

static inline uint64_t hash(const char *s, size_t n) {
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

static inline int32_t find(const gen *g, const char *s, size_t n) {
    for (uint64_t i = hash(s, n) & ((1u << 18) - 1);; i = (i + 1) & ((1u << 18) - 1)) {
        int32_t id = g->slot[i];
        if (id < 0) return -1;
        if (g->len[id] == n && !memcmp(g->str[id], s, n)) return id;
    }
}

static inline void add_token(gen *g, const char *s, size_t n) {
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
static inline bool add_merge(gen *g, uint32_t a, uint32_t b) {
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
static inline uint32_t pick_char(gen *g) {
    static const char alpha[] = "etaoinshrdlu ";
    char c = alpha[rnd(g) % (sizeof alpha - 1)];
    char u[4];
    size_t ul = el_tokenizer_byte_char((unsigned char)c, u);
    return (uint32_t)find(g, u, ul);
}

/* A made token, low ids more often (so merges chain); below 256 + lim. */
static inline uint32_t pick_made(gen *g, uint32_t lim) {
    uint32_t span = g->n - 256 < lim ? g->n - 256 : lim;
    uint64_t x = rnd(g) % span, y = rnd(g) % span;
    return 256 + (uint32_t)(x < y ? x : y);
}

static inline void gen_make(gen *g) {
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

static inline size_t put_str(char *o, const char *s, size_t n) {
    size_t k = 0;
    o[k++] = '"';
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '"' || s[i] == '\\') o[k++] = '\\';
        o[k++] = s[i];
    }
    o[k++] = '"';
    return k;
}

static inline bool gen_write(const gen *g, const char *path) {
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
           g->n_merges, o / (1024.0 * 1024.0));
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(b, 1, o, f) == o;
    if (f && fclose(f) != 0) ok = false;
    free(b);
    return ok;
}

/* Writes the tokenizer to path and a prompt of made tokens' text (ASCII, at most about 400
 * bytes) into prompt (capacity cap >= 512). False if something failed. */
static inline bool tok_gen_write(const char *path, char *prompt, size_t cap) {
    gen *g = calloc(1, sizeof *g);
    if (!g) return false;
    g->slot = malloc((1u << 18) * sizeof *g->slot);
    g->pairs = calloc(1u << 20, sizeof *g->pairs);
    g->merge = malloc(G_MERGES * sizeof *g->merge);
    bool ok = g->slot && g->pairs && g->merge;
    if (ok) {
        memset(g->slot, 0xff, (1u << 18) * sizeof *g->slot);
        g->rng = 0x2545F4914F6CDD1Dull;
        gen_make(g);
        ok = g->n == G_VOCAB && g->n_merges == G_MERGES && gen_write(g, path);
    }
    size_t pl = 0;
    for (int i = 0; ok && i < 150 && pl < 400 && pl + 2 * G_MAXLEN < cap; i++) {
        uint32_t id = 256 + (uint32_t)(rnd(g) % 3000);
        const char *s = g->str[id];
        for (size_t k = 0; k < g->len[id];) {
            if (!memcmp(s + k, "\xc4\xa0", 2)) { /* 'Ġ' is a space */
                prompt[pl++] = ' ';
                k += 2;
            } else {
                prompt[pl++] = s[k++];
            }
        }
    }
    if (cap) prompt[pl] = 0;
    for (uint32_t i = 0; i < g->n; i++) free(g->str[i]);
    free(g->slot);
    free(g->pairs);
    free(g->merge);
    free(g);
    return ok;
}

#endif /* EL_TEST_TOK_GEN_H */
