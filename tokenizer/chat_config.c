/* chat_config.c - finds a model's chat template and the special tokens it reads
 * (tokenizer_config.json, chat_template.jinja) at model-open time (see chat_template.h).
 * cJSON is used only while parsing; the results are plain malloc'd strings. */
#include "tokenizer/chat_template.h"

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

static bool exists(const char *path) {
    el_file f;
    if (el_file_open(&f, path, 0) != EL_OK) return false;
    el_file_close(&f);
    return true;
}

el_status el_chat_config_load(const char *dir, el_chat_config *out) {
    memset(out, 0, sizeof *out);
    char path[4096];
    if ((size_t)snprintf(path, sizeof path, "%s/tokenizer_config.json", dir) >= sizeof path)
        return el_errorf(EL_E_USAGE, "%s: path too long", dir);
    el_status st = EL_OK;
    if (exists(path)) {
        cJSON *root = NULL;
        st = el_tokenizer_read_json(path, &root);
        if (st == EL_OK) st = from_root(root, path, out);
        cJSON_Delete(root);
    }
    snprintf(path, sizeof path, "%s/chat_template.jinja", dir);
    if (st == EL_OK && exists(path)) {
        el_file f;
        memset(&f, 0, sizeof f);
        st = el_file_open(&f, path, 0);
        if (st == EL_OK && f.size > EL_CHAT_TEMPLATE_MAX)
            st = el_errorf(EL_E_INVALID, "%s: %llu bytes is over the %u-byte limit for a chat template", path,
                           (unsigned long long)f.size, EL_CHAT_TEMPLATE_MAX);
        char *buf = st == EL_OK ? malloc((size_t)f.size + 1) : NULL;
        if (st == EL_OK && !buf) st = el_errorf(EL_E_NOMEM, "%s: out of memory", path);
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

void el_chat_config_free(el_chat_config *c) {
    if (!c) return;
    free(c->tmpl);
    free(c->bos_token);
    free(c->eos_token);
    memset(c, 0, sizeof *c);
}
