/* fuzz_tokenizer_json.c - libFuzzer target for HF tokenizer.json files: the input is a whole
 * tokenizer.json, opened through el_tokenizer_open, which picks the BPE backend
 * (tokenizer/hf_bpe.c: byte fallback or ByteLevel) or WordPiece (tokenizer/wordpiece.c) by
 * model.type. The entry points take a path, so the input is written to one scratch file per
 * process. When it opens, fixed strings and the input's own bytes (valid UTF-8 or not) are
 * encoded and every id is decoded, and the results are checked against the contracts in
 * tokenizer.h (fuzz/fuzz_common.h), so logic bugs crash too, not only memory errors. The
 * same bytes streamed from memory (el_tokenizer_hf_bpe_parse) must give the file's status,
 * and the same tokenizer when it opens. */
#include "fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fz_path("tokjson", "tokenizer.json");
    fz_write(path, data, size);
    size_t i = 0;
    while (i < size && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
        i++;
    bool json = i < size && data[i] == '{';
    el_tokenizer *t = (el_tokenizer *)&data; /* any non-NULL value: open must clear it */
    el_status st = json ? el_tokenizer_open(path, 0, &t) : el_tokenizer_hf_bpe_open(path, 0, &t);
    if (!json || (st == EL_OK && !strcmp(t->vt->name, "hf-bpe"))) {
        el_tokenizer *tm = (el_tokenizer *)&data;
        el_status sm = el_tokenizer_hf_bpe_parse((const char *)data, size, "fuzz", 0, &tm);
        CHECK(sm == st || (st != EL_OK && sm != EL_OK));
        CHECK(sm == EL_OK ? tm && tm->vocab_size == t->vocab_size && tm->bos_id == t->bos_id
                          : tm == NULL);
        el_tokenizer_close(tm);
    }
    if (st != EL_OK) {
        CHECK(t == NULL && el_last_error()[0] != 0);
        return 0;
    }
    CHECK(t != NULL);
    /* A model vocabulary larger than the file's: padding rows for BPE, refused otherwise. */
    el_tokenizer *t2 = NULL;
    el_status s2 = json ? el_tokenizer_open(path, t->vocab_size + 1, &t2)
                        : el_tokenizer_hf_bpe_open(path, t->vocab_size + 1, &t2);
    if (!strcmp(t->vt->name, "hf-bpe")) {
        CHECK(s2 == EL_OK && t2 && t2->vocab_size == t->vocab_size);
        el_tokenizer_close(t2);
        t2 = NULL;
    } else {
        CHECK(s2 == EL_E_INVALID && !t2);
    }
    /* The BPE backend's own entry point gives the same tokenizer. */
    if (!strcmp(t->vt->name, "hf-bpe")) {
        CHECK(el_tokenizer_hf_bpe_open(path, t->vocab_size, &t2) == EL_OK && t2 &&
              t2->vocab_size == t->vocab_size && t2->bos_id == t->bos_id &&
              t2->eos_id == t->eos_id);
        el_tokenizer_close(t2);
    }
    fz_check_vocab(t);
    fz_check_texts(t, data, size, false);
    fz_check_pairs(t, data, size);
    el_tokenizer_close(t);
    return 0;
}
