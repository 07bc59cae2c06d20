/* bench_tokenizer.c - encode throughput of the GPT-2 byte-level BPE and the BERT WordPiece
 * tokenizers against a UTF-8 validation pass over the same bytes, measured in one run.
 *
 * Generates about 1 MiB of mixed text (English words with punctuation and numbers, runs of
 * spaces and newlines, accented Latin, Greek, Cyrillic, CJK, emoji; fixed seed), then for N
 * repetitions (default 5) times:
 *   utf8       - el_utf8_check over the text (the baseline: one pass over the bytes)
 *   gpt2       - el_tokenizer_encode with the real GPT-2 vocabulary
 *   wordpiece  - el_tokenizer_encode with the all-MiniLM-L6-v2 vocabulary (uncased)
 *   llama2c    - el_tokenizer_encode with stories260K's tok512.bin (SentencePiece-style
 *                merging, O(m log m); target: 1 MiB in well under a second, where the
 *                rescanning loop it replaced took 5.2 s for 100 KB)
 * and prints the medians in MB/s, ids per second, and each tokenizer's time over the
 * baseline's. The tokenizer files come from --models DIR, else $EL_SHARED_MODELS, else
 * ../shared/models (run from the project root).
 *
 * --dump FILE writes the text to FILE and the ids to FILE.gpt2.ids / FILE.wordpiece.ids /
 * FILE.llama2c.ids.
 *
 * usage: bench_tokenizer [--models DIR] [--reps N] [--mib N] [--dump FILE] */
#include "bench/bench_util.h"
#include "platform/platform.h"
#include "tokenizer/tokenizer.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;
static uint32_t rng(void) {
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return (uint32_t)(rng_state >> 11);
}

static char *make_text(size_t target, size_t *len) {
    static const char *const words[] = {
        "the", "of", "and", "model", "memory", "loader", "tokenizer", "arena", "edge",
        "device", "inference", "weights", "streamed", "into", "place", "Jetson", "board",
        "It's", "don't", "they'll", "I'm", "3.14159", "1,000,000", "2026", "x86_64",
        "caf\xc3\xa9", "na\xc3\xafve", "Stra\xc3\x9f" "e", "\xce\xba\xce\xb1\xce\xbb\xce\xb7",
        "\xd0\x81\xd0\xbb\xd0\xba\xd0\xb0", "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e",
        "\xe4\xb8\xad\xe6\x96\x87", "\xf0\x9f\x98\x80", "supercalifragilistic",
        "(parenthesised)", "\"quoted\"", "end.", "comma,", "what?", "yes!",
    };
    const size_t nw = sizeof words / sizeof words[0];
    char *s = malloc(target + 64);
    size_t o = 0;
    while (o < target) {
        const char *w = words[rng() % nw];
        size_t l = strlen(w);
        memcpy(s + o, w, l);
        o += l;
        uint32_t r = rng() % 100;
        const char *sep = r < 85 ? " " : r < 92 ? ". " : r < 96 ? "\n" : r < 98 ? "  " : "\n\n";
        memcpy(s + o, sep, strlen(sep));
        o += strlen(sep);
    }
    *len = o;
    return s;
}

int main(int argc, char **argv) {
    const char *models = getenv("EL_SHARED_MODELS") ? getenv("EL_SHARED_MODELS") : "../shared/models";
    const char *dump = NULL;
    int reps = 5;
    size_t mib = 1;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--models") && i + 1 < argc) models = argv[++i];
        else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--mib") && i + 1 < argc) mib = (size_t)atoi(argv[++i]);
        else if (!strcmp(argv[i], "--dump") && i + 1 < argc) dump = argv[++i];
        else {
            fprintf(stderr, "usage: bench_tokenizer [--models DIR] [--reps N] [--mib N] "
                            "[--dump FILE]\n");
            return 1;
        }
    }
    if (reps < 1 || reps > 100 || mib < 1 || mib > 1024) {
        fprintf(stderr, "bench_tokenizer: --reps 1..100, --mib 1..1024\n");
        return 1;
    }
    size_t len = 0;
    char *text = make_text(mib << 20, &len);
    if (dump) {
        FILE *f = fopen(dump, "wb");
        if (f) {
            fwrite(text, 1, len, f);
            fclose(f);
        }
    }
    char vp[1024], mp[1024], wp[1024], lp[1024];
    snprintf(vp, sizeof vp, "%s/gpt2-tokenizer/encoder.json", models);
    snprintf(mp, sizeof mp, "%s/gpt2-tokenizer/vocab.bpe", models);
    snprintf(wp, sizeof wp, "%s/all-MiniLM-L6-v2/vocab.txt", models);
    snprintf(lp, sizeof lp, "%s/stories260K/tok512.bin", models);
    enum { NTOK = 3 };
    el_tokenizer *tok[NTOK] = {NULL, NULL, NULL};
    if (el_tokenizer_gpt2_open(vp, mp, 0, &tok[0]) != EL_OK ||
        el_tokenizer_wordpiece_open(wp, true, 0, &tok[1]) != EL_OK ||
        el_tokenizer_llama2c_open(lp, 0, &tok[2]) != EL_OK) {
        fprintf(stderr, "bench_tokenizer: %s\n", el_last_error());
        return 4;
    }
    size_t cap = len + 16;
    int32_t *ids = malloc(cap * sizeof *ids);
    double t_base[100], t_tok[NTOK][100];
    size_t n_ids[NTOK] = {0, 0, 0};
    volatile size_t sink = 0;
    for (int r = 0; r < reps; r++) {
        double t0 = el_now();
        sink += el_utf8_check(text, len);
        t_base[r] = el_now() - t0;
        for (int k = 0; k < NTOK; k++) {
            t0 = el_now();
            if (el_tokenizer_encode(tok[k], text, len, false, ids, cap, &n_ids[k]) != EL_OK) {
                fprintf(stderr, "bench_tokenizer: %s\n", el_last_error());
                return 2;
            }
            t_tok[k][r] = el_now() - t0;
            if (dump && r == 0) { /* the ids too, for comparing with other tokenizers */
                char ip[1100];
                static const char *const dn[NTOK] = {"gpt2", "wordpiece", "llama2c"};
                snprintf(ip, sizeof ip, "%s.%s.ids", dump, dn[k]);
                FILE *f = fopen(ip, "w");
                for (size_t i = 0; f && i < n_ids[k]; i++) fprintf(f, i ? " %d" : "%d", ids[i]);
                if (f) fclose(f);
            }
        }
    }
    (void)sink;
    double mb = (double)len / 1e6;
    double base = bench_median(t_base, reps);
    printf("text: %zu bytes of generated mixed text, %d repetitions, medians\n", len, reps);
    printf("%-10s %10s %12s %14s %10s\n", "pass", "ms", "MB/s", "ids/s", "x baseline");
    printf("%-10s %10.3f %12.1f %14s %10s\n", "utf8", base * 1e3, mb / base, "-", "1.0");
    static const char *const names[NTOK] = {"gpt2", "wordpiece", "llama2c"};
    for (int k = 0; k < NTOK; k++) {
        double m = bench_median(t_tok[k], reps);
        printf("%-10s %10.3f %12.1f %14.0f %10.1f  (%zu ids)\n", names[k], m * 1e3, mb / m,
               (double)n_ids[k] / m, m / base, n_ids[k]);
    }
    for (int k = 0; k < NTOK; k++) el_tokenizer_close(tok[k]);
    free(ids);
    free(text);
    return 0;
}
