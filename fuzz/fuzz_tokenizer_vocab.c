/* fuzz_tokenizer_vocab.c - libFuzzer target for the tokenizer files that are not a
 * tokenizer.json: BERT vocab.txt (el_tokenizer_wordpiece_parse) and GPT-2 vocab.json +
 * merges.txt (el_tokenizer_gpt2_from_json). The first byte selects: bit 0 clear = vocab.txt
 * (bit 1: lowercase) from the rest; set = vocab.json and merges.txt from the rest, split at
 * the first NUL byte. Whatever opens goes through the tokenizer contract checks
 * (fuzz/fuzz_common.h). */
#include "fuzz/fuzz_common.h"

#include "loader/safetensors.h"

#include <cjson/cJSON.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t sel = data[0];
    const char *rest = (const char *)data + 1;
    size_t n = size - 1;
    el_tokenizer *t = (el_tokenizer *)&data;
    el_status st;
    if (!(sel & 1)) {
        st = el_tokenizer_wordpiece_parse(rest, n, "vocab.txt", (sel & 2) != 0, 0, &t);
    } else {
        const char *nul = memchr(rest, 0, n);
        size_t vl = nul ? (size_t)(nul - rest) : n;
        const char *m = nul ? nul + 1 : rest + n;
        size_t ml = nul ? n - vl - 1 : 0;
        cJSON *vocab = NULL;
        st = el_json_parse(rest, vl, "vocab.json", &vocab);
        if (st == EL_OK) {
            st = el_tokenizer_gpt2_from_json(vocab, m, ml, "vocab.json", 0, &t);
        } else {
            t = NULL;
        }
        if (st == EL_OK) {
            el_tokenizer *t2 = NULL; /* a larger model vocabulary: padding rows */
            CHECK(el_tokenizer_gpt2_from_json(vocab, m, ml, "vocab.json", t->vocab_size + 1,
                                              &t2) == EL_OK && t2);
            el_tokenizer_close(t2);
            t2 = NULL;
            if (t->vocab_size > 1) /* a smaller one: the last token is a vocabulary token */
                CHECK(el_tokenizer_gpt2_from_json(vocab, m, ml, "vocab.json",
                                                  t->vocab_size - 1, &t2) == EL_E_INVALID &&
                      !t2);
        }
        cJSON_Delete(vocab);
    }
    if (st != EL_OK) {
        CHECK(t == NULL && el_last_error()[0] != 0);
        return 0;
    }
    CHECK(t != NULL);
    fz_check_vocab(t);
    fz_check_texts(t, data, size, false);
    fz_check_pairs(t, data, size);
    el_tokenizer_close(t);
    return 0;
}
