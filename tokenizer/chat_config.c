/* chat_config.c - finds a model's chat template and the special tokens it reads
 * (tokenizer_config.json, chat_template.jinja, or a GGUF's metadata) at model-open time
 * (see chat_template.h).
 * cJSON is used only while parsing; the results are plain malloc'd strings. */
#include "tokenizer/chat_template.h"

#include "loader/formats/gguf.h"
#include "loader/safetensors.h"
#include "platform/platform.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char *dup_n(const char *s, size_t n) {
    char *d = malloc(n + 1);
    if (d) {
        memcpy(d, s, n);
        d[n] = 0;
    }
    return d;
}

/* A special token: "text" or {"content": "text", ...} (AddedToken); NULL/null: absent. */
static el_status token_of(const cJSON *root, const char *key, const char *fname, char **out) {
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, key);
    if (cJSON_IsObject(t)) t = cJSON_GetObjectItemCaseSensitive(t, "content");
    if (!t || cJSON_IsNull(t)) return EL_OK;
    if (!cJSON_IsString(t)) {
        char b[64];
        return el_errorf(EL_E_INVALID, "%s: %s must be a string or {\"content\": string}, got %s", fname, key,
                         el_json_describe(t, b, sizeof b));
    }
    *out = dup_n(t->valuestring, strlen(t->valuestring));
    return *out ? EL_OK : el_errorf(EL_E_NOMEM, "%s: out of memory for %s", fname, key);
}

static el_status set_template(el_chat_config *c, const char *s, const char *fname) {
    size_t n = strlen(s);
    if (n > EL_CHAT_TEMPLATE_MAX)
        return el_errorf(EL_E_INVALID, "%s: chat template of %zu bytes is over the %u-byte limit", fname, n,
                         EL_CHAT_TEMPLATE_MAX);
    free(c->tmpl);
    c->tmpl = dup_n(s, n);
    c->tmpl_len = n;
    return c->tmpl ? EL_OK : el_errorf(EL_E_NOMEM, "%s: out of memory for the chat template", fname);
}

static el_status from_root(const cJSON *root, const char *fname, el_chat_config *out) {
    if (!cJSON_IsObject(root)) return el_errorf(EL_E_INVALID, "%s: expected a JSON object", fname);
    el_status st = token_of(root, "bos_token", fname, &out->bos_token);
    if (st == EL_OK) st = token_of(root, "eos_token", fname, &out->eos_token);
    if (st != EL_OK) return st;
    const cJSON *t = cJSON_GetObjectItemCaseSensitive(root, "chat_template");
    if (!t || cJSON_IsNull(t)) return EL_OK;
    if (cJSON_IsString(t)) return set_template(out, t->valuestring, fname);
    if (cJSON_IsArray(t)) { /* [{"name": "default", "template": "..."}, {"name": "tool_use", ...}] */
        const cJSON *it;
        cJSON_ArrayForEach(it, t) {
            const cJSON *nm = cJSON_GetObjectItemCaseSensitive(it, "name");
            const cJSON *tp = cJSON_GetObjectItemCaseSensitive(it, "template");
            if (cJSON_IsString(nm) && !strcmp(nm->valuestring, "default")) {
                if (!cJSON_IsString(tp))
                    return el_errorf(EL_E_INVALID, "%s: chat_template \"default\" has no template string", fname);
                return set_template(out, tp->valuestring, fname);
            }
        }
        return el_errorf(EL_E_INVALID, "%s: chat_template is a list of named templates without one named "
                         "\"default\"", fname);
    }
    char b[64];
    return el_errorf(EL_E_INVALID, "%s: chat_template must be a string or a list of {name, template}, got %s",
                     fname, el_json_describe(t, b, sizeof b));
}

el_status el_chat_config_parse(const char *json, size_t len, const char *fname, el_chat_config *out) {
    memset(out, 0, sizeof *out);
    cJSON *root = NULL;
    el_status st = el_json_parse(json, len, fname, &root);
    if (st == EL_OK) st = from_root(root, fname, out);
    cJSON_Delete(root);
    if (st != EL_OK) el_chat_config_free(out);
    return st;
}

el_status el_chat_config_load(const char *config_json, const char *jinja, el_chat_config *out) {
    memset(out, 0, sizeof *out);
    el_status st = EL_OK;
    if (config_json) {
        cJSON *root = NULL;
        st = el_tokenizer_read_json(config_json, &root);
        if (st == EL_OK) st = from_root(root, config_json, out);
        cJSON_Delete(root);
    }
    if (st == EL_OK && jinja) {
        el_file f;
        memset(&f, 0, sizeof f);
        st = el_file_open(&f, jinja, 0);
        if (st == EL_OK && f.size > EL_CHAT_TEMPLATE_MAX)
            st = el_errorf(EL_E_INVALID, "%s: %llu bytes is over the %u-byte limit for a chat template", jinja,
                           (unsigned long long)f.size, EL_CHAT_TEMPLATE_MAX);
        char *buf = st == EL_OK ? malloc((size_t)f.size + 1) : NULL;
        if (st == EL_OK && !buf) st = el_errorf(EL_E_NOMEM, "%s: out of memory", jinja);
        if (st == EL_OK) st = f.size ? el_file_read_at(&f, buf, (size_t)f.size, 0) : EL_OK;
        if (st == EL_OK) {
            buf[f.size] = 0;
            free(out->tmpl);
            out->tmpl = buf;
            out->tmpl_len = (size_t)f.size;
        } else {
            free(buf);
        }
        el_file_close(&f);
    }
    if (st != EL_OK) el_chat_config_free(out);
    return st;
}

/* The text of the token whose id is at id_key in a GGUF vocabulary (tokenizer.ggml.tokens),
 * malloc'd; NULL when absent. */
static char *gguf_token_text(const el_gguf *g, const char *id_key) {
    const el_gguf_kv *idkv = el_gguf_find(g, id_key);
    const el_gguf_kv *toks = el_gguf_find(g, "tokenizer.ggml.tokens");
    if (!idkv || !toks || toks->v.type != EL_GGUF_ARRAY || toks->v.elem_type != EL_GGUF_STRING)
        return NULL;
    uint64_t id = idkv->v.num.u;
    if (idkv->v.type > EL_GGUF_I32 || id >= toks->v.len) return NULL;
    el_gguf_iter it;
    el_gguf_iter_init(g, &toks->v, &it);
    el_gguf_value v;
    for (uint64_t i = 0; i <= id; i++)
        if (el_gguf_iter_next(&it, &v) != EL_OK) return NULL;
    char *text = malloc(v.len + 1);
    if (text && el_gguf_read_string(g, &v, text, v.len + 1, NULL) != EL_OK) {
        free(text);
        text = NULL;
    }
    return text;
}

el_status el_chat_config_gguf(const el_gguf *g, const char *fname, el_chat_config *out) {
    memset(out, 0, sizeof *out);
    const el_gguf_kv *kv = el_gguf_find(g, "tokenizer.chat_template");
    if (!kv) return EL_OK;
    if (kv->v.type != EL_GGUF_STRING || kv->v.len > EL_CHAT_TEMPLATE_MAX)
        return el_errorf(EL_E_INVALID, "%s: metadata 'tokenizer.chat_template': expected a string of at most "
                         "%u bytes", fname, EL_CHAT_TEMPLATE_MAX);
    out->tmpl = dup_n(kv->v.str, kv->v.len);
    if (!out->tmpl) return el_errorf(EL_E_NOMEM, "%s: out of memory", fname);
    out->tmpl_len = kv->v.len;
    out->bos_token = gguf_token_text(g, "tokenizer.ggml.bos_token_id");
    out->eos_token = gguf_token_text(g, "tokenizer.ggml.eos_token_id");
    return EL_OK;
}

void el_chat_config_free(el_chat_config *c) {
    if (!c) return;
    free(c->tmpl);
    free(c->bos_token);
    free(c->eos_token);
    memset(c, 0, sizeof *c);
}
