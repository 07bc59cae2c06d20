/* fuzz_common.h - helpers shared by the fuzz targets that need the input as a file (the
 * tokenizer and checkpoint entry points take paths) and the tokenizer contract checks
 * (tokenizer/tokenizer.h) they run on whatever opens. Included by fuzz/fuzz_*.c only. */
#ifndef EL_FUZZ_COMMON_H
#define EL_FUZZ_COMMON_H

#include "tokenizer/tokenizer.h"

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(c) \
    do {         \
        if (!(c)) __builtin_trap(); \
    } while (0)

/* ---- one scratch folder per process ------------------------------------------------ */

#define FZ_FILES_MAX 8

static char fz_dir[256];                   /* $TMPDIR/elfuzz_<tag>.XXXXXX */
static char fz_files[FZ_FILES_MAX][320];   /* files written in it, removed at exit */
static int fz_nfiles;

static void fz_remove_all(void) {
    for (int i = 0; i < fz_nfiles; i++) unlink(fz_files[i]);
    if (fz_dir[0]) rmdir(fz_dir);
}

/* The path of file name in the process's scratch folder (made on first use). */
static const char *fz_path(const char *tag, const char *name) {
    if (!fz_dir[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(fz_dir, sizeof fz_dir, "%s/elfuzz_%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", tag);
        CHECK(mkdtemp(fz_dir) != NULL);
        atexit(fz_remove_all);
    }
    char p[320];
    snprintf(p, sizeof p, "%s/%s", fz_dir, name);
    for (int i = 0; i < fz_nfiles; i++)
        if (!strcmp(fz_files[i], p)) return fz_files[i];
    CHECK(fz_nfiles < FZ_FILES_MAX);
    memcpy(fz_files[fz_nfiles], p, sizeof p);
    return fz_files[fz_nfiles++];
}

/* Replaces the file at path with data[0..size). */
static void fz_write(const char *path, const uint8_t *data, size_t size) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    CHECK(fd >= 0);
    size_t done = 0;
    while (done < size) {
        ssize_t k = write(fd, data + done, size - done);
        CHECK(k > 0);
        done += (size_t)k;
    }
    CHECK(close(fd) == 0);
}

/* ---- tokenizer contract checks ----------------------------------------------------- */

#define FZ_IDS_CAP 4096   /* ids per encode: well above what the texts below need */
#define FZ_TEXT_MAX 256   /* bytes of the input encoded as text */

static int32_t fz_ids[FZ_IDS_CAP], fz_ref[FZ_IDS_CAP];

/* Decodes id after prev into buffers of two sizes; on EL_OK the piece fits with its NUL.
 * Returns the bytes of the piece when the larger buffer held it, else SIZE_MAX; the piece
 * is left in out (capacity 1024) when out is not NULL. */
static size_t fz_check_decode(const el_tokenizer *t, int32_t prev, int32_t id, char *out) {
    static const size_t caps[] = {8, 1024};
    size_t got = SIZE_MAX;
    for (size_t k = 0; k < 2; k++) {
        char buf[1024];
        memset(buf, 0x5a, sizeof buf);
        size_t n = 12345;
        el_status st = el_tokenizer_decode(t, prev, id, buf, caps[k], &n);
        CHECK(st == EL_OK || st == EL_E_NOFIT);
        if (st == EL_OK) {
            CHECK(n < caps[k] && buf[n] == 0);
            if (k == 1) {
                got = n;
                if (out) memcpy(out, buf, n + 1);
            }
        }
    }
    return got;
}

/* Every id decodes (after nothing and after BOS); ids outside the vocabulary are refused. */
static void fz_check_vocab(const el_tokenizer *t) {
    CHECK(t->vocab_size >= 1);
    CHECK(t->bos_id >= -1 && t->bos_id < (int32_t)t->vocab_size);
    CHECK(t->eos_id >= -1 && t->eos_id < (int32_t)t->vocab_size);
    for (uint32_t id = 0; id < t->vocab_size; id++) {
        fz_check_decode(t, -1, (int32_t)id, NULL);
        if (t->bos_id >= 0) fz_check_decode(t, t->bos_id, (int32_t)id, NULL);
    }
    size_t n = 0;
    char buf[64];
    CHECK(el_tokenizer_decode(t, -1, -1, buf, sizeof buf, &n) == EL_E_INVALID);
    CHECK(el_tokenizer_decode(t, -1, (int32_t)t->vocab_size, buf, sizeof buf, &n) ==
          EL_E_INVALID);
}

/* Encodes text (with and without BOS) and checks: invalid UTF-8 is EL_E_INVALID; ids are in
 * the vocabulary; one id less of room is EL_E_NOFIT with a count that then fits and gives
 * the same ids; every id decodes. round_trip: the decoded pieces must give the text back
 * (llama2.c: no normalizer; the dummy-prefix space may remain when it was spelled as a
 * byte token); only asked for when the text cannot contain a <0xXX> piece. */
static void fz_check_encode(const el_tokenizer *t, const char *text, size_t len,
                            bool round_trip) {
    bool valid = el_utf8_check(text, len) == len;
    for (int bos = 0; bos < 2; bos++) {
        size_t n = 0;
        el_status st = el_tokenizer_encode(t, text, len, bos, fz_ids, FZ_IDS_CAP, &n);
        if (!valid) {
            CHECK(st == EL_E_INVALID);
            continue;
        }
        if (bos && t->bos_id < 0) {
            CHECK(st != EL_OK);
            continue;
        }
        /* EL_E_UNSUPPORTED: text an NFC normalizer would change (hf-bpe) */
        CHECK(st == EL_OK || st == EL_E_NOFIT || st == EL_E_INVALID || st == EL_E_UNSUPPORTED);
        if (st == EL_E_NOFIT) {
            CHECK(n > FZ_IDS_CAP);
            continue;
        }
        if (st != EL_OK) continue; /* a character the vocabulary cannot spell */
        CHECK(n <= FZ_IDS_CAP);
        if (bos) CHECK(n >= 1 && fz_ids[0] == t->bos_id);
        if (len == 0) CHECK(n == (size_t)bos);
        for (size_t i = 0; i < n; i++)
            CHECK(fz_ids[i] >= 0 && (uint32_t)fz_ids[i] < t->vocab_size);
        if (n > 0) {
            memcpy(fz_ref, fz_ids, n * sizeof *fz_ids);
            size_t m = 0;
            st = el_tokenizer_encode(t, text, len, bos, fz_ids, n - 1, &m);
            CHECK(st == EL_E_NOFIT && m >= n);
            if (m <= FZ_IDS_CAP) {
                size_t n2 = 0;
                st = el_tokenizer_encode(t, text, len, bos, fz_ids, m, &n2);
                CHECK(st == EL_OK && n2 == n && !memcmp(fz_ids, fz_ref, n * sizeof *fz_ids));
            }
        }
        /* The text's pieces, each after the id before it (BOS first when asked for). A
         * text id equal to the BOS id (a vocabulary whose id 1 is not <s>) would strip the
         * next piece's space as after BOS: no round trip then. */
        char back[2 * FZ_TEXT_MAX + 8], piece[1024];
        size_t blen = 0;
        bool whole = true;
        if (bos) fz_check_decode(t, -1, fz_ref[0], NULL);
        for (size_t i = (size_t)bos; i < n; i++) {
            int32_t prev = i > 0 ? fz_ref[i - 1] : -1;
            if (i > 0 && i - 1 >= (size_t)bos && prev == t->bos_id) whole = false;
            size_t pl = fz_check_decode(t, prev, fz_ref[i], piece);
            if (pl == SIZE_MAX || blen + pl > sizeof back) {
                whole = false;
            } else {
                memcpy(back + blen, piece, pl);
                blen += pl;
            }
        }
        if (round_trip && whole && len <= FZ_TEXT_MAX) {
            bool same = blen == len && !memcmp(back, text, len);
            bool spaced = blen == len + 1 && back[0] == ' ' && !memcmp(back + 1, text, len);
            /* Without BOS the dummy prefix always stays. */
            CHECK(len == 0 ? blen == 0 : bos ? (same || spaced) : spaced);
        }
    }
}

/* Fixed texts, then the input's own first and last FZ_TEXT_MAX bytes (valid or not). */
static void fz_check_texts(const el_tokenizer *t, const uint8_t *data, size_t size,
                           bool round_trip) {
    static const char *const texts[] = {
        "Once upon a time",
        "",
        " ",
        "  two  spaces\tand\na newline ",
        ("h\xc3\xa9llo w\xc3\xb6rld \xe2\x96\x81x \xe2\x96\x81\xe2\x96\x81 "
         "\xe6\x97\xa5\xe6\x9c\xac \xf0\x9f\x99\x82"),
        "<s>a</s><unk> <0x41>",
        "\xff\xfe",          /* invalid: not UTF-8 lead bytes */
        "\xe2\x96",          /* invalid: truncated */
        "\xed\xa0\x80",      /* invalid: a surrogate */
        "\xc0\xaf",          /* invalid: overlong */
    };
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        size_t len = strlen(texts[i]);
        fz_check_encode(t, texts[i], len, round_trip && !memchr(texts[i], '<', len));
    }
    size_t k = size < FZ_TEXT_MAX ? size : FZ_TEXT_MAX;
    const char *head = (const char *)data, *tail = (const char *)data + size - k;
    fz_check_encode(t, head, k, round_trip && !memchr(head, '<', k));
    fz_check_encode(t, tail, k, round_trip && !memchr(tail, '<', k));
}

/* BERT pairs (WordPiece only; others must refuse): [CLS] a [SEP] b [SEP] within max_len,
 * type ids 0 then 1, the room needed reported exactly. */
static void fz_check_pairs(const el_tokenizer *t, const uint8_t *data, size_t size) {
    static int32_t types[FZ_IDS_CAP];
    size_t k = size < FZ_TEXT_MAX ? size : FZ_TEXT_MAX;
    const char *a = (const char *)data, *b = (const char *)data + size - k / 2;
    bool valid_a = el_utf8_check(a, k) == k, valid_b = el_utf8_check(b, k / 2) == k / 2;
    static const size_t lens[] = {3, 8, 64, 512};
    for (size_t j = 0; j < 4; j++) {
        size_t n = 0;
        bool tr = false;
        el_status st = el_tokenizer_encode_pair(t, a, k, j & 1 ? NULL : b, k / 2, lens[j], fz_ids,
                                                types, FZ_IDS_CAP, &n, &tr);
        if (strcmp(t->vt->name, "wordpiece") != 0) {
            CHECK(st == EL_E_USAGE);
            return;
        }
        if (!valid_a || (!(j & 1) && !valid_b)) {
            CHECK(st == EL_E_INVALID);
            continue;
        }
        CHECK(st == EL_OK);
        CHECK(n >= 2 && n <= lens[j] && fz_ids[0] == t->cls_id && fz_ids[n - 1] == t->sep_id);
        for (size_t i = 0; i < n; i++) {
            CHECK(fz_ids[i] >= 0 && (uint32_t)fz_ids[i] < t->vocab_size);
            CHECK(types[i] == 0 || types[i] == 1);
            if (i > 0) CHECK(types[i] >= types[i - 1]);
        }
        size_t m = 0;
        CHECK(el_tokenizer_encode_pair(t, a, k, j & 1 ? NULL : b, k / 2, lens[j], fz_ids, NULL,
                                       n - 1, &m, &tr) == EL_E_NOFIT && m == n);
    }
}

#endif /* EL_FUZZ_COMMON_H */
