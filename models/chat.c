/* chat.c - a model's chat template (tokenizer_config.json or chat_template.jinja next to
 * it, or GGUF tokenizer.chat_template with its BOS/EOS texts), loaded at open, and
 * el_chat_format, which renders a conversation with it (tokenizer/chat_template.c). */
#include "loader/formats/gguf.h"
#include "loader/model_impl.h"
#include "models/arch.h"
#include "platform/platform.h"
#include "tokenizer/chat_template.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The text of token id of a GGUF vocabulary (tokenizer.ggml.tokens[id]), malloc'd; NULL
 * when absent. */
static char *gguf_token_text(const el_gguf *g, const char *id_key) {
    const el_gguf_kv *idkv = el_gguf_find(g, id_key), *toks = el_gguf_find(g, "tokenizer.ggml.tokens");
    if (!idkv || !toks || toks->v.type != EL_GGUF_ARRAY || toks->v.elem_type != EL_GGUF_STRING)
        return NULL;
    uint64_t id = idkv->v.num.u;
    if (idkv->v.type > EL_GGUF_I32 || id >= toks->v.len) return NULL;
    el_gguf_iter it;
    el_gguf_iter_init(g, &toks->v, &it);
    el_gguf_value v;
    for (uint64_t i = 0; i <= id; i++)
        if (el_gguf_iter_next(&it, &v) != EL_OK) return NULL;
    char *out = malloc(v.len + 1);
    if (out && el_gguf_read_string(g, &v, out, v.len + 1, NULL) != EL_OK) {
        free(out);
        out = NULL;
    }
    return out;
}

static el_status chat_from_gguf(el_model *m, el_chat_config *c) {
    const el_gguf_kv *kv = el_gguf_find(m->gguf, "tokenizer.chat_template");
    if (!kv) return EL_OK;
    if (kv->v.type != EL_GGUF_STRING || kv->v.len > EL_CHAT_TEMPLATE_MAX)
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.chat_template': expected a "
                         "string of at most %u bytes", m->path, EL_CHAT_TEMPLATE_MAX);
    c->tmpl = malloc(kv->v.len + 1);
    if (!c->tmpl) return el_errorf(EL_E_NOMEM, "%s: out of memory", m->path);
    memcpy(c->tmpl, kv->v.str, kv->v.len);
    c->tmpl[kv->v.len] = 0;
    c->tmpl_len = kv->v.len;
    c->bos_token = gguf_token_text(m->gguf, "tokenizer.ggml.bos_token_id");
    c->eos_token = gguf_token_text(m->gguf, "tokenizer.ggml.eos_token_id");
    return EL_OK;
}

/* A side file's whole text (at most EL_CHAT_TEMPLATE_MAX + 64 KiB), malloc'd and
 * NUL-terminated into *out. */
static el_status read_text(const char *path, char **out, size_t *len) {
    el_file f;
    memset(&f, 0, sizeof f);
    el_status st = el_file_open(&f, path, 0);
    if (st == EL_OK && f.size > EL_CHAT_TEMPLATE_MAX + (64u << 10))
        st = el_errorf(EL_E_INVALID, "%s: %llu bytes is over the %u-byte limit for chat files",
                       path, (unsigned long long)f.size, EL_CHAT_TEMPLATE_MAX + (64u << 10));
    char *buf = st == EL_OK ? malloc((size_t)f.size + 1) : NULL;
    if (st == EL_OK && !buf) st = el_errorf(EL_E_NOMEM, "%s: out of memory", path);
    if (st == EL_OK && f.size) st = el_file_read_at(&f, buf, (size_t)f.size, 0);
    el_file_close(&f);
    if (st != EL_OK) {
        free(buf);
        return st;
    }
    buf[f.size] = 0;
    *out = buf;
    *len = (size_t)f.size;
    return EL_OK;
}

/* tokenizer_config.json (template, bos/eos) and chat_template.jinja (the template, when
 * present: newer transformers save it apart) found with the model, each by its own path,
 * so a packed image's copies work as a folder's do. */
static el_status chat_from_side_files(el_model *m, el_chat_config *c) {
    char path[1100], *text = NULL;
    size_t len = 0;
    el_status s = EL_OK;
    if (el_model_side_file(m, "tokenizer_config.json", path, sizeof path) &&
        (s = read_text(path, &text, &len)) == EL_OK) {
        s = el_chat_config_parse(text, len, path, c);
        free(text);
    }
    if (s == EL_OK && el_model_side_file(m, "chat_template.jinja", path, sizeof path) &&
        (s = read_text(path, &text, &len)) == EL_OK) {
        free(c->tmpl);
        c->tmpl = text;
        c->tmpl_len = len;
    }
    return s;
}

el_status el_model_chat_open(el_model *m) {
    el_chat_config *c = calloc(1, sizeof *c);
    if (!c) return el_errorf(EL_E_NOMEM, "%s: out of memory", m->path);
    el_status s = m->gguf ? chat_from_gguf(m, c) : chat_from_side_files(m, c);
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
    if (!m->chat) return;
    el_chat_config_free(m->chat);
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
    el_chat_opts o;
    memset(&o, 0, sizeof o);
    o.add_generation_prompt = add_generation_prompt;
    o.bos_token = m->chat->bos_token;
    o.eos_token = m->chat->eos_token;
    return el_chat_render_json(m->chat->tmpl, m->chat->tmpl_len, messages_json, len, &o, work,
                               work_cap, out, cap, n);
}
