/* st_index.c - model.safetensors.index.json (the weight map of a sharded checkpoint):
 * parsed into sorted names and shards, and checked against the tensors the shards hold. */
#include "loader/model_impl.h"
#include "loader/safetensors.h"
#include "platform/platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_MSG 160     /* bytes of a name quoted in a message */
#define SHARD_NAME_MAX 255 /* bytes in a shard file name (NAME_MAX on Linux) */

typedef struct idx_entry {
    const char *name;  /* tensor name, in the cJSON tree */
    const char *shard; /* shard file name, in the cJSON tree */
} idx_entry;

static int cmp_entry_name(const void *a, const void *b) {
    return strcmp(((const idx_entry *)a)->name, ((const idx_entry *)b)->name);
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static const char *pn(const char *s, char *buf) {
    return el_json_printable(s, strlen(s), buf, NAME_MSG);
}

/* A shard must name a file next to the index: nothing that walks out of the folder. */
static el_status check_shard_name(const cJSON *v, const char *fname, const char *tname) {
    char got[128];
    if (!cJSON_IsString(v))
        return el_errorf(EL_E_INVALID,
                         "%s: weight_map: tensor '%s': expected a shard file name (string), "
                         "got %s",
                         fname, tname, el_json_describe(v, got, sizeof got));
    const char *s = v->valuestring;
    size_t n = strlen(s);
    const char *why = NULL;
    if (n == 0) why = "it is empty";
    else if (n > SHARD_NAME_MAX) why = "it is longer than 255 bytes";
    else if (strchr(s, '/') || strchr(s, '\\')) why = "it contains a path separator";
    else if (!strcmp(s, ".") || !strcmp(s, "..")) why = "it names a folder";
    else if (!el_utf8_valid(s, n)) why = "it is not valid UTF-8";
    if (why)
        return el_errorf(EL_E_INVALID,
                         "%s: weight_map: tensor '%s': expected a plain file name next to the "
                         "index, got %s (%s)",
                         fname, tname, el_json_describe(v, got, sizeof got), why);
    return EL_OK;
}

void el_st_index_free(el_st_index *idx) {
    if (!idx) return;
    for (size_t i = 0; i < idx->shard_count; i++) free(idx->shards[i]);
    for (size_t i = 0; i < idx->name_count; i++) free(idx->names[i]);
    free(idx->shards);
    free(idx->names);
    free(idx->name_shard);
    memset(idx, 0, sizeof *idx);
}

/* Copies the sorted entries and their unique shards into out (all or nothing). */
static el_status build_index(const idx_entry *e, size_t n, const char **shard_sorted,
                             size_t shard_count, const char *fname, el_st_index *out) {
    el_st_index r;
    memset(&r, 0, sizeof r);
    r.shards = calloc(shard_count, sizeof *r.shards);
    r.names = calloc(n, sizeof *r.names);
    r.name_shard = calloc(n, sizeof *r.name_shard);
    bool ok = r.shards && r.names && r.name_shard;
    for (size_t i = 0; ok && i < shard_count; i++, r.shard_count++)
        ok = (r.shards[i] = strdup(shard_sorted[i])) != NULL;
    for (size_t i = 0; ok && i < n; i++, r.name_count++) {
        const char **hit =
            bsearch(&e[i].shard, shard_sorted, shard_count, sizeof *shard_sorted, cmp_str_ptr);
        r.name_shard[i] = (uint32_t)(hit - shard_sorted); /* present: built from e */
        ok = (r.names[i] = strdup(e[i].name)) != NULL;
    }
    if (!ok) {
        /* Counts cover exactly the slots filled (a failed strdup left NULL, free-safe). */
        el_st_index_free(&r);
        return el_errorf(EL_E_NOMEM, "%s: out of memory for %zu index entries", fname, n);
    }
    *out = r;
    return EL_OK;
}

el_status el_st_index_parse(const char *json, size_t json_len, const char *fname,
                            el_st_index *out) {
    if (!fname) fname = "model.safetensors.index.json";
    cJSON *root;
    el_status st = el_json_parse(json, json_len, fname, &root);
    if (st != EL_OK) return st;
    char got[128], a[NAME_MSG], b[NAME_MSG];
    idx_entry *e = NULL;
    const char **shards = NULL;
    const cJSON *wm = NULL, *meta = NULL;

    if (!cJSON_IsObject(root)) {
        st = el_errorf(EL_E_INVALID,
                       "%s: expected a JSON object {\"metadata\": {...}, \"weight_map\": "
                       "{...}}, got %s",
                       fname, el_json_describe(root, got, sizeof got));
        goto done;
    }
    for (const cJSON *c = root->child; c; c = c->next) {
        const cJSON **slot = NULL;
        if (c->string && !strcmp(c->string, "weight_map")) slot = &wm;
        else if (c->string && !strcmp(c->string, "metadata")) slot = &meta;
        if (!slot) continue;
        if (*slot) {
            st = el_errorf(EL_E_INVALID, "%s: %s: expected once, got it twice", fname,
                           c->string);
            goto done;
        }
        *slot = c;
    }
    if (meta && !cJSON_IsObject(meta) && !cJSON_IsNull(meta)) {
        st = el_errorf(EL_E_INVALID, "%s: metadata: expected an object, got %s", fname,
                       el_json_describe(meta, got, sizeof got));
        goto done;
    }
    if (!cJSON_IsObject(wm)) {
        st = el_errorf(EL_E_INVALID,
                       "%s: weight_map: expected an object {tensor name: shard file}, got %s; "
                       "not a safetensors index",
                       fname, el_json_describe(wm, got, sizeof got));
        goto done;
    }

    size_t n = 0;
    for (const cJSON *c = wm->child; c; c = c->next) n++;
    if (n == 0) {
        st = el_errorf(EL_E_INVALID,
                       "%s: weight_map: expected at least one tensor, got an empty map", fname);
        goto done;
    }
    e = malloc(n * sizeof *e);
    shards = malloc(n * sizeof *shards);
    if (!e || !shards) {
        st = el_errorf(EL_E_NOMEM, "%s: out of memory for %zu index entries", fname, n);
        goto done;
    }
    size_t i = 0;
    for (const cJSON *c = wm->child; c; c = c->next, i++) {
        const char *name = c->string ? c->string : "";
        size_t len = strlen(name); /* exact: the pre-scan rejected \u0000 */
        if (len == 0 || len > EL_NAME_MAX || !el_utf8_valid(name, len)) {
            st = el_errorf(EL_E_INVALID,
                           "%s: weight_map: tensor '%s': name: expected 1..%d bytes of valid "
                           "UTF-8, got %zu bytes%s",
                           fname, el_json_printable(name, len, a, sizeof a), EL_NAME_MAX, len,
                           el_utf8_valid(name, len) ? "" : " (invalid UTF-8)");
            goto done;
        }
        st = check_shard_name(c, fname, el_json_printable(name, len, a, sizeof a));
        if (st != EL_OK) goto done;
        e[i].name = name;
        e[i].shard = c->valuestring;
        shards[i] = c->valuestring;
    }

    qsort(e, n, sizeof *e, cmp_entry_name);
    for (i = 1; i < n; i++) {
        if (strcmp(e[i - 1].name, e[i].name)) continue;
        st = el_errorf(EL_E_INVALID,
                       "%s: weight_map: tensor '%s': expected once, got it twice (shards '%s' "
                       "and '%s')",
                       fname, pn(e[i].name, a), pn(e[i - 1].shard, b),
                       el_json_printable(e[i].shard, strlen(e[i].shard), got, sizeof got));
        goto done;
    }
    qsort(shards, n, sizeof *shards, cmp_str_ptr);
    size_t u = 0;
    for (i = 0; i < n; i++)
        if (u == 0 || strcmp(shards[u - 1], shards[i])) shards[u++] = shards[i];
    if (u > EL_MAX_FILES) {
        st = el_errorf(EL_E_UNSUPPORTED,
                       "%s: weight_map: expected at most %d shard files, got %zu", fname,
                       EL_MAX_FILES, u);
        goto done;
    }
    st = build_index(e, n, shards, u, fname, out);

done:
    free(e);
    free(shards);
    cJSON_Delete(root);
    return st;
}

static int cmp_key_name(const void *key, const void *elem) {
    return strcmp((const char *)key, *(const char *const *)elem);
}

static const char *shard_of(const el_st_index *idx, uint32_t file, char *buf, size_t cap) {
    if (file < idx->shard_count) return el_json_printable(idx->shards[file],
                                                          strlen(idx->shards[file]), buf, cap);
    snprintf(buf, cap, "#%u (no such shard in the index)", (unsigned)file);
    return buf;
}

el_status el_st_index_check(const el_st_index *idx, const el_tensor_table *t,
                            const char *fname) {
    if (!fname) fname = "model.safetensors.index.json";
    char a[NAME_MSG], b[NAME_MSG], c[NAME_MSG];
    bool *seen = calloc(idx->name_count ? idx->name_count : 1, sizeof *seen);
    if (!seen) return el_errorf(EL_E_NOMEM, "%s: out of memory checking the index", fname);
    el_status st = EL_OK;
    for (size_t i = 0; st == EL_OK && i < t->count; i++) {
        const el_tensor *x = &t->items[i];
        char **hit = bsearch(x->name, idx->names, idx->name_count, sizeof *idx->names,
                             cmp_key_name);
        if (!hit) {
            st = el_errorf(EL_E_INVALID,
                           "%s: tensor '%s': weight_map: expected an entry for it, got none "
                           "(it is in shard '%s'); the index and the shards disagree",
                           fname, pn(x->name, a), shard_of(idx, x->file, b, sizeof b));
            break;
        }
        size_t k = (size_t)(hit - idx->names);
        if (idx->name_shard[k] != x->file) {
            st = el_errorf(EL_E_INVALID,
                           "%s: tensor '%s': shard: expected '%s' (as the index says), got "
                           "'%s'; the index and the shards disagree",
                           fname, pn(x->name, a),
                           shard_of(idx, idx->name_shard[k], b, sizeof b),
                           shard_of(idx, x->file, c, sizeof c));
            break;
        }
        seen[k] = true;
    }
    for (size_t k = 0; st == EL_OK && k < idx->name_count; k++) {
        if (seen[k]) continue;
        st = el_errorf(EL_E_INVALID,
                       "%s: tensor '%s': expected in shard '%s' (as the index says), got no "
                       "such tensor in that shard",
                       fname, pn(idx->names[k], a),
                       shard_of(idx, idx->name_shard[k], b, sizeof b));
    }
    free(seen);
    return st;
}
