/* spm_cases.h - helpers of the GGUF SentencePiece tokenizer tests (test_tokenizer_gguf_spm,
 * test_tokenizer_gguf_gemma3): reference cases as JSON (texts and decoded texts as hex, ids as
 * arrays), recorded by scripts/fixtures_spm.py from llama.cpp. */
#ifndef EL_TESTS_SPM_CASES_H
#define EL_TESTS_SPM_CASES_H

#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define GGUF_DIR EL_SOURCE_DIR "/tests/fixtures/gguf"

/* ids equal to the JSON array want? */
static inline bool same_ids(const int32_t *ids, size_t n, const cJSON *want) {
    if (!want || n != (size_t)cJSON_GetArraySize(want)) return false;
    size_t i = 0;
    for (const cJSON *w = want->child; w; w = w->next, i++)
        if (ids[i] != (int32_t)w->valuedouble) return false;
    return true;
}

/* Decodes ids token by token (prev -1 first) into buf; its length, or (size_t)-1. */
static inline size_t decode_all(const el_tokenizer *t, const int32_t *ids, size_t n,
                                char *buf, size_t cap) {
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

static inline double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + ts.tv_nsec * 1e-9;
}

#endif /* EL_TESTS_SPM_CASES_H */
