/* tok_legacy_shim.c - TEMPORARY stand-ins for the _mem opens of the backends converted on
 * another branch (wordpiece.c, llama2c_tok.c, gguf_spm.c). The integrator deletes this
 * file when that branch lands. Each ignores mem's block: in measure mode it opens and
 * closes (so the checks and the messages are the same, and the measure is 0 bytes); in
 * build mode it returns the heap tokenizer, which el_tokenizer_close frees as before. */
#include "tokenizer/tok_mem.h"
#include "tokenizer/tokenizer.h"

/* Measure mode: nothing is kept (el_tok_measure drops *out without closing it). */
static el_status shim_done(el_tok_mem *mem, el_status s, el_tokenizer **out) {
    if (s == EL_OK && mem && !mem->base) {
        el_tokenizer_close(*out);
        *out = NULL;
    }
    return s;
}

el_status el_tokenizer_wordpiece_open_mem(const char *vocab_txt, bool lowercase,
                                          uint32_t vocab_size, el_tok_mem *mem,
                                          el_tokenizer **out) {
    return shim_done(mem, el_tokenizer_wordpiece_open(vocab_txt, lowercase, vocab_size, out),
                     out);
}

el_status el_tokenizer_wordpiece_parse_mem(const char *data, size_t len, const char *name,
                                           bool lowercase, uint32_t vocab_size,
                                           el_tok_mem *mem, el_tokenizer **out) {
    return shim_done(mem, el_tokenizer_wordpiece_parse(data, len, name, lowercase, vocab_size,
                                                       out), out);
}

el_status el_tokenizer_wordpiece_from_json_mem(const struct cJSON *root, const char *name,
                                               uint32_t vocab_size, el_tok_mem *mem,
                                               el_tokenizer **out) {
    return shim_done(mem, el_tokenizer_wordpiece_from_json(root, name, vocab_size, out), out);
}

el_status el_tokenizer_llama2c_open_mem(const char *path, uint32_t vocab_size, el_tok_mem *mem,
                                        el_tokenizer **out) {
    return shim_done(mem, el_tokenizer_llama2c_open(path, vocab_size, out), out);
}

el_status el_tokenizer_llama2c_parse_mem(const void *data, size_t len, const char *name,
                                         uint32_t vocab_size, el_tok_mem *mem,
                                         el_tokenizer **out) {
    return shim_done(mem, el_tokenizer_llama2c_parse(data, len, name, vocab_size, out), out);
}

el_status el_tokenizer_gguf_spm_open_mem(const struct el_gguf *g, uint32_t vocab_size,
                                         el_tok_mem *mem, el_tokenizer **out) {
    return shim_done(mem, el_tokenizer_gguf_spm_open(g, vocab_size, out), out);
}
