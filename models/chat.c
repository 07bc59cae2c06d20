/* chat.c - a model's chat template (tokenizer_config.json or chat_template.jinja next to
 * it, or GGUF tokenizer.chat_template with its BOS/EOS texts: tokenizer/chat_config.c),
 * loaded at open, and el_chat_format, which renders a conversation with it
 * (tokenizer/chat_template.c). */
#include "loader/model_impl.h"
#include "loader/formats/gguf.h"
#include "models/arch.h"
#include "tokenizer/chat_template.h"

#include <stdlib.h>
#include <string.h>

el_status el_model_chat_open(el_model *m) {
    el_chat_config *c = calloc(1, sizeof *c);
    if (!c) return el_errorf(EL_E_NOMEM, "%s: out of memory", m->path);
    char tc[1100], tj[1100]; /* each side file by its own path: packed images work too */
    const el_gguf *g = el_model_tok_gguf(m);
    const bool has_tc = !g && el_model_side_file(m, "tokenizer_config.json", tc, sizeof tc);
    const bool has_tj = !g && el_model_side_file(m, "chat_template.jinja", tj, sizeof tj);
    el_status s = g ? el_chat_config_gguf(g, m->path, c)
                    : el_chat_config_load(has_tc ? tc : NULL, has_tj ? tj : NULL, c);
    if (s == EL_OK && c->tmpl) {
        /* A template that does not parse is refused at open, by name, not at the first
         * chat; a 1 MiB template needs a few MiB of scratch once, here. */
        size_t cap = 4 * c->tmpl_len + (256u << 10);
        void *work = malloc(cap);
        s = work ? el_chat_check(c->tmpl, c->tmpl_len, work, cap)
                 : el_errorf(EL_E_NOMEM, "%s: out of memory", m->path);
        free(work);
        if (s != EL_OK) s = el_errorf(s, "%s: chat template: %s", m->path, el_last_error());
    }
    if (s != EL_OK || !c->tmpl) {
        el_chat_config_free(c);
        free(c);
        return s;
    }
    m->chat = c;
    return EL_OK;
}

void el_model_chat_close(el_model *m) {
    el_chat_config_free(m->chat); /* NULL is fine */
    free(m->chat);
    m->chat = NULL;
}

bool el_model_has_chat_template(const el_model *m) { return m && m->chat && m->chat->tmpl; }

el_status el_chat_format(const el_model *m, const char *messages_json, size_t len,
                         bool add_generation_prompt, void *work, size_t work_cap, char *out,
                         size_t cap, size_t *n) {
    if (!m || !messages_json || !work || !out || !n)
        return el_errorf(EL_E_USAGE, "el_chat_format: NULL argument");
    if (!el_model_has_chat_template(m))
        return el_errorf(EL_E_UNSUPPORTED, "%s: the model has no chat template "
                         "(tokenizer_config.json chat_template, chat_template.jinja or GGUF "
                         "tokenizer.chat_template)", m->path);
    el_chat_opts o = {.add_generation_prompt = add_generation_prompt,
                      .bos_token = m->chat->bos_token, .eos_token = m->chat->eos_token};
    return el_chat_render_json(m->chat->tmpl, m->chat->tmpl_len, messages_json, len, &o, work,
                               work_cap, out, cap, n);
}
