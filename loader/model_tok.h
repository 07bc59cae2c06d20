/* model_tok.h - the tokenizer a model family opens with the model (internal): one lookup
 * for every family, so --tokenizer, the side files tried and the "why not" message behave
 * alike for Llama, GPT-2 and BERT. The tokenizer is the family's m->family_data. */
#ifndef EL_MODEL_TOK_H
#define EL_MODEL_TOK_H

#include "loader/model_impl.h"

/* For a family's open hook: opens the tokenizer into m->family_data. An explicit
 * m->tokenizer_path (--tokenizer) must open: its failure is returned as "--tokenizer: ...".
 * Otherwise the side files names[0..n) are tried in order (el_model_side_file, then
 * el_tokenizer_open, which dispatches by content; a name "vocab.json+merges.txt" is a GPT-2
 * pair, both found with the model, which also works inside packed images); the first that
 * opens wins and its path goes to m->tokenizer_path. When none does,
 * the reason is kept (the first failure, else "no tokenizer found next to the model
 * (<what>): pass --tokenizer FILE") for the tokenizer hook, and EL_OK is returned so inspect,
 * plan and load still work without one. EL_E_NOMEM if the slot cannot be allocated. */
el_status el_family_tok_open(el_model *m, const char *const *names, size_t n,
                             const char *what);
/* The family hooks that go with it: .close, .tokenizer and .tokenizer_load. The open only
 * measures the tables (m->tokenizer_bytes, the plan's tokenizer region); el_model_load
 * builds them into that region (.tokenizer_load); a model used without a load builds them on
 * the heap at its first use (.tokenizer), once, freed at close. */
void el_family_tok_close(el_model *m);
el_status el_family_tok_get(const el_model *m, const struct el_tokenizer **out);
el_status el_family_tok_load(el_model *m, void *block, uint64_t cap);

#endif /* EL_MODEL_TOK_H */
