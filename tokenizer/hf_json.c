/* hf_json.c - the hf-bpe build's sources for tokenizer.json (tokenizer/hf_src.h): a parsed
 * cJSON tree, or the file streamed with a bounded transient (tokenizer/json_stream.h): the
 * window, one string, one captured part at a time, and the small tree of the parts that
 * are not tables. */
#include "tokenizer/hf_src.h"
#include "tokenizer/json_stream.h"

#include "loader/safetensors.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A field that may be absent or null. */
static const cJSON *get(const cJSON *obj, const char *key) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, key);
    return (v && !cJSON_IsNull(v)) ? v : NULL;
}

/* Merge m (element i): "a b" or ["a", "b"]. */
static el_status tree_merge(const char *name, uint32_t i, const cJSON *m, el_hf_merge_fn fn,
                            void *u) {
    if (cJSON_IsString(m)) {
        const char *s = m->valuestring;
        size_t n = strlen(s), sp = 0;
        el_status st = el_hf_merge_split(name, "model.merges", i, s, n, &sp);
        return st != EL_OK ? st : fn(u, i, s, sp, s + sp + 1, n - sp - 1);
    }
    if (cJSON_IsArray(m) && cJSON_GetArraySize(m) == 2 &&
        cJSON_IsString(cJSON_GetArrayItem(m, 0)) && cJSON_IsString(cJSON_GetArrayItem(m, 1))) {
        const char *a = cJSON_GetArrayItem(m, 0)->valuestring;
        const char *b = cJSON_GetArrayItem(m, 1)->valuestring;
        return fn(u, i, a, strlen(a), b, strlen(b));
    }
    char d[64];
    return el_errorf(EL_E_INVALID,
                     "%s: model.merges[%u] is %s: expected \"a b\" or [\"a\", \"b\"]", name,
                     (unsigned)i, el_json_describe(m, d, sizeof d));
}

/* ---- a parsed tree ------------------------------------------------------------------ */

static el_status tree_vocab(void *ctx, el_hf_vocab_fn fn, void *u) {
    const el_hf_src *src = ctx;
    const cJSON *v = get(get(src->root, "model"), "vocab");
    for (const cJSON *it = v ? v->child : NULL; it; it = it->next) {
        el_status st = fn(u, it->string, strlen(it->string), it);
        if (st != EL_OK) return st;
    }
    return EL_OK;
}

static el_status tree_added(void *ctx, el_hf_added_fn fn, void *u) {
    const el_hf_src *src = ctx;
    const cJSON *a = get(src->root, "added_tokens");
    uint32_t i = 0;
    for (const cJSON *it = cJSON_IsArray(a) ? a->child : NULL; it; it = it->next, i++) {
        el_status st = fn(u, i, it);
        if (st != EL_OK) return st;
    }
    return EL_OK;
}

static el_status tree_merges(void *ctx, el_hf_merge_fn fn, void *u) {
    const el_hf_src *src = ctx;
    const cJSON *m = get(get(src->root, "model"), "merges");
    uint32_t i = 0;
    for (const cJSON *it = cJSON_IsArray(m) ? m->child : NULL; it; it = it->next, i++) {
        el_status st = tree_merge(src->name, i, it, fn, u);
        if (st != EL_OK) return st;
    }
    return EL_OK;
}

void el_hf_src_tree(el_hf_src *src, const cJSON *root, const char *name) {
    memset(src, 0, sizeof *src);
    src->root = root;
    src->name = name;
    src->ctx = src;
    src->vocab = tree_vocab;
    src->added = tree_added;
    src->merges = tree_merges;
    src->n_merges = UINT64_MAX;
}

/* ---- streamed ----------------------------------------------------------------------- */

/* Adds value (owned) to obj under key; EL_E_NOMEM naming the file on failure. */
static el_status add_item(cJSON *obj, const char *key, cJSON *value, const char *name) {
    if (value && cJSON_AddItemToObject(obj, key, value)) return EL_OK;
    cJSON_Delete(value);
    return el_errorf(EL_E_NOMEM, "%s: out of memory", name);
}

/* The elements of the array at offset at (js ends after it). */
static el_status count_array(el_jstream *js, uint64_t at, uint64_t *n) {
    el_js_seek(js, at);
    el_status st = el_js_begin(js, '[');
    bool first = true, more = true;
    uint64_t k = 0;
    while (st == EL_OK) {
        if ((st = el_js_arr_next(js, &first, &more)) != EL_OK || !more) break;
        if ((st = el_js_skip(js)) == EL_OK) k++;
    }
    if (st == EL_OK) *n = k;
    return st;
}

/* A part of tokenizer.json into obj under key, within the parts' budget. */
static el_status capture(el_hf_stream *hs, cJSON *obj, const char *key, const char *field) {
    el_jstream *js = hs->js;
    uint64_t at = el_js_tell(js);
    cJSON *v = NULL;
    el_status st = el_js_capture(js, EL_HF_PART_MAX, field, &v);
    if (st != EL_OK) return st;
    hs->part_bytes += js->pos - at;
    if (hs->part_bytes > EL_HF_PARTS_MAX) {
        cJSON_Delete(v);
        return el_errorf(EL_E_INVALID, "%s: the parts of tokenizer.json other than its tables "
                         "take more than %u bytes (at %s): not a tokenizer this reads",
                         js->name, EL_HF_PARTS_MAX, field);
    }
    return add_item(obj, key, v, js->name);
}

/* The value next in js: a table (open '{' or '[') at *at (first occurrence) with an empty
 * placeholder of its type in obj; a container of the other kind skipped, an empty one in
 * its place (so that a Unigram vocabulary is never read); a scalar captured as it is (the
 * build reports the wrong type). */
static el_status table_or_capture(el_hf_stream *hs, cJSON *obj, const char *key, char open,
                                  const char *field, uint64_t *at, uint64_t *count) {
    el_jstream *js = hs->js;
    int c = -1;
    el_status st = el_js_peek(js, &c);
    if (st != EL_OK) return st;
    if (c == '{' + '[' - open) {
        if ((st = el_js_skip(js)) != EL_OK) return st;
        return add_item(obj, key, c == '{' ? cJSON_CreateObject() : cJSON_CreateArray(),
                        js->name);
    }
    if (c != open) return capture(hs, obj, key, field);
    *at = el_js_tell(js);
    if ((st = count ? count_array(js, *at, count) : el_js_skip(js)) != EL_OK) return st;
    return add_item(obj, key, open == '{' ? cJSON_CreateObject() : cJSON_CreateArray(),
                    js->name);
}

/* One member of an object being scanned: the key copied (keys past 127 bytes are no field
 * anything reads: skipped), first occurrence only, as cJSON's lookups see it. */
static el_status next_key(el_jstream *js, cJSON *obj, bool *first, bool *more, char *key,
                          size_t cap, bool *use) {
    const char *k;
    size_t kl;
    el_status st = el_js_obj_next(js, first, more, &k, &kl);
    if (st != EL_OK || !*more) return st;
    *use = kl < cap;
    if (*use) {
        memcpy(key, k, kl + 1);
        *use = cJSON_GetObjectItemCaseSensitive(obj, key) == NULL;
    }
    return EL_OK;
}

/* The fields the build reads besides the tables (tokenizer/hf_bpe.c); others are skipped. */
static const char *const k_model_keys[] = {"type", "dropout", "continuing_subword_prefix",
                                           "end_of_word_suffix", "fuse_unk", "byte_fallback",
                                           "ignore_merges", "unk_token", NULL};
static const char *const k_top_keys[] = {"normalizer", "pre_tokenizer", "decoder",
                                         "post_processor", NULL};

static bool known(const char *const *keys, const char *key) {
    for (; *keys; keys++)
        if (!strcmp(*keys, key)) return true;
    return false;
}

static el_status scan_model(el_hf_stream *hs, cJSON *model) {
    el_jstream *js = hs->js;
    el_status st = el_js_begin(js, '{');
    bool first = true, more = true;
    while (st == EL_OK) {
        char key[128];
        bool use = false;
        if ((st = next_key(js, model, &first, &more, key, sizeof key, &use)) != EL_OK || !more)
            break;
        if (!use) {
            st = el_js_skip(js);
        } else if (!strcmp(key, "vocab")) {
            st = table_or_capture(hs, model, key, '{', "model.vocab", &hs->vocab_at, NULL);
        } else if (!strcmp(key, "merges")) {
            st = table_or_capture(hs, model, key, '[', "model.merges", &hs->merges_at,
                                  &hs->n_merges);
        } else if (known(k_model_keys, key)) {
            char field[160];
            snprintf(field, sizeof field, "model.%s", key);
            st = capture(hs, model, key, field);
        } else {
            st = el_js_skip(js); /* nothing the build reads */
        }
    }
    return st;
}

static el_status stream_vocab(void *ctx, el_hf_vocab_fn fn, void *u) {
    el_hf_stream *hs = ctx;
    return hs->vocab_at == UINT64_MAX ? EL_OK : el_hf_stream_vocab(hs->js, hs->vocab_at, fn, u);
}

el_status el_hf_stream_vocab(el_jstream *js, uint64_t at, el_hf_vocab_fn fn, void *u) {
    el_js_seek(js, at);
    el_status st = el_js_begin(js, '{');
    bool first = true, more = true;
    while (st == EL_OK) {
        const char *k;
        size_t kl;
        if ((st = el_js_obj_next(js, &first, &more, &k, &kl)) != EL_OK || !more) break;
        /* k stays valid: numbers and captures do not touch js->str. */
        int c = -1;
        if ((st = el_js_peek(js, &c)) != EL_OK) break;
        if (c == '-' || (c >= '0' && c <= '9')) {
            cJSON num;
            memset(&num, 0, sizeof num);
            num.type = cJSON_Number;
            if ((st = el_js_number(js, &num.valuedouble)) == EL_OK) st = fn(u, k, kl, &num);
        } else {
            cJSON *v = NULL;
            st = el_js_capture(js, EL_HF_PART_MAX, "a vocabulary id", &v);
            if (st == EL_OK) st = fn(u, k, kl, v);
            cJSON_Delete(v);
        }
    }
    return st;
}

static el_status stream_added(void *ctx, el_hf_added_fn fn, void *u) {
    el_hf_stream *hs = ctx;
    if (hs->added_at == UINT64_MAX) return EL_OK;
    el_jstream *js = hs->js;
    el_js_seek(js, hs->added_at);
    el_status st = el_js_begin(js, '[');
    bool first = true, more = true;
    for (uint32_t i = 0; st == EL_OK; i++) {
        if ((st = el_js_arr_next(js, &first, &more)) != EL_OK || !more) break;
        cJSON *o = NULL;
        char field[48];
        snprintf(field, sizeof field, "added_tokens[%u]", (unsigned)i);
        st = el_js_capture(js, EL_HF_PART_MAX, field, &o);
        if (st == EL_OK) st = fn(u, i, o);
        cJSON_Delete(o);
    }
    return st;
}

/* One merge: "a b", or ["a", "b"] read as two strings; anything else captured for the
 * message. */
static el_status stream_merge(el_hf_stream *hs, uint32_t i, el_hf_merge_fn fn, void *u) {
    el_jstream *js = hs->js;
    uint64_t at = el_js_tell(js);
    int c = -1;
    el_status st = el_js_peek(js, &c);
    if (st != EL_OK) return st;
    const char *s;
    size_t n, sp;
    if (c == '"') {
        if ((st = el_js_string(js, &s, &n)) != EL_OK) return st;
        if ((st = el_hf_merge_split(js->name, "model.merges", i, s, n, &sp)) != EL_OK) return st;
        return fn(u, i, s, sp, s + sp + 1, n - sp - 1);
    }
    if (c == '[') {
        bool first = true, more = false;
        size_t al = 0;
        st = el_js_begin(js, '[');
        if (st == EL_OK) st = el_js_arr_next(js, &first, &more);
        if (st == EL_OK && more && (st = el_js_peek(js, &c)) == EL_OK && c == '"' &&
            (st = el_js_string(js, &s, &n)) == EL_OK) {
            if (n + 1 > hs->pair_cap) {
                char *p = realloc(hs->pair, n + 1);
                if (!p) return el_errorf(EL_E_NOMEM, "%s: out of memory", js->name);
                hs->pair = p;
                hs->pair_cap = n + 1;
            }
            memcpy(hs->pair, s, n + 1);
            al = n;
            if ((st = el_js_arr_next(js, &first, &more)) == EL_OK && more &&
                (st = el_js_peek(js, &c)) == EL_OK && c == '"' &&
                (st = el_js_string(js, &s, &n)) == EL_OK &&
                (st = el_js_arr_next(js, &first, &more)) == EL_OK && !more)
                return fn(u, i, hs->pair, al, s, n);
        }
        if (st != EL_OK) return st;
    }
    /* Not a merge: the value itself for the message. */
    el_js_seek(js, at);
    cJSON *v = NULL;
    char field[48];
    snprintf(field, sizeof field, "model.merges[%u]", (unsigned)i);
    if ((st = el_js_capture(js, EL_HF_PART_MAX, field, &v)) != EL_OK) return st;
    char d[64];
    st = el_errorf(EL_E_INVALID, "%s: model.merges[%u] is %s: expected \"a b\" or [\"a\", \"b\"]",
                   js->name, (unsigned)i, el_json_describe(v, d, sizeof d));
    cJSON_Delete(v);
    return st;
}

static el_status stream_merges(void *ctx, el_hf_merge_fn fn, void *u) {
    el_hf_stream *hs = ctx;
    if (hs->merges_at == UINT64_MAX) return EL_OK;
    el_jstream *js = hs->js;
    el_js_seek(js, hs->merges_at);
    el_status st = el_js_begin(js, '[');
    bool first = true, more = true;
    for (uint32_t i = 0; st == EL_OK; i++) {
        if ((st = el_js_arr_next(js, &first, &more)) != EL_OK || !more) break;
        st = stream_merge(hs, i, fn, u);
    }
    return st;
}

el_status el_hf_stream_open(el_hf_stream *hs, el_jstream *js, el_hf_src *src) {
    memset(hs, 0, sizeof *hs);
    memset(src, 0, sizeof *src);
    hs->js = js;
    hs->vocab_at = hs->merges_at = hs->added_at = UINT64_MAX;
    hs->n_merges = UINT64_MAX;
    hs->root = cJSON_CreateObject();
    if (!hs->root) return el_errorf(EL_E_NOMEM, "%s: out of memory", js->name);
    int c = -1;
    el_status st = el_js_peek(js, &c);
    if (st != EL_OK) return st;
    if (c != '{') {
        cJSON *v = NULL;
        if ((st = el_js_capture(js, EL_HF_PART_MAX, "the top level", &v)) != EL_OK) return st;
        char d[64];
        st = el_errorf(EL_E_INVALID, "%s: the top level must be an object, got %s", js->name,
                       el_json_describe(v, d, sizeof d));
        cJSON_Delete(v);
        return st;
    }
    st = el_js_begin(js, '{');
    bool first = true, more = true;
    while (st == EL_OK) {
        char key[128];
        bool use = false;
        if ((st = next_key(js, hs->root, &first, &more, key, sizeof key, &use)) != EL_OK ||
            !more)
            break;
        if (!use) {
            st = el_js_skip(js);
        } else if (!strcmp(key, "model")) {
            if ((st = el_js_peek(js, &c)) != EL_OK) break;
            if (c == '{') {
                cJSON *model = cJSON_CreateObject();
                if ((st = add_item(hs->root, key, model, js->name)) == EL_OK)
                    st = scan_model(hs, model);
            } else if (c == '[') { /* described by the build, not read */
                if ((st = el_js_skip(js)) == EL_OK)
                    st = add_item(hs->root, key, cJSON_CreateArray(), js->name);
            } else {
                st = capture(hs, hs->root, key, "model");
            }
        } else if (!strcmp(key, "added_tokens")) {
            st = table_or_capture(hs, hs->root, key, '[', "added_tokens", &hs->added_at, NULL);
        } else if (known(k_top_keys, key)) {
            st = capture(hs, hs->root, key, key);
        } else {
            st = el_js_skip(js); /* version, truncation, padding, ...: not read */
        }
    }
    if (st == EL_OK) st = el_js_finish(js);
    if (st != EL_OK) return st;
    src->root = hs->root;
    src->name = js->name;
    src->ctx = hs;
    src->vocab = stream_vocab;
    src->added = stream_added;
    src->merges = stream_merges;
    src->n_merges = hs->merges_at == UINT64_MAX ? 0 : hs->n_merges;
    return EL_OK;
}

void el_hf_stream_free(el_hf_stream *hs) {
    cJSON_Delete(hs->root);
    free(hs->pair);
    hs->root = NULL;
    hs->pair = NULL;
}
