/* safetensors.c - validates safetensors headers into the tensor table (every field, every
 * size, overflow, duplicates across shards, exact contiguous coverage of the data section)
 * and owns the growable table itself. */
#include "loader/safetensors.h"
#include "loader/model_impl.h"
#include "platform/platform.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EL_U53 (1ull << 53) /* largest JSON integer we take (exact in a double) */
#define NAME_MSG 160        /* bytes of a tensor name quoted in a message */

/* ---- the table ------------------------------------------------------------------------ */

void el_tensor_table_free(el_tensor_table *t) {
    if (!t) return;
    for (size_t i = 0; i < t->count; i++) free(t->items[i].name);
    free(t->items);
    memset(t, 0, sizeof *t);
}

/* Room for extra more items; on failure t is unchanged. */
static el_status table_reserve(el_tensor_table *t, size_t extra) {
    size_t need;
    if (__builtin_add_overflow(t->count, extra, &need) || need > SIZE_MAX / sizeof(el_tensor))
        return el_errorf(EL_E_NOMEM, "tensor table: %zu + %zu tensors is too many", t->count,
                         extra);
    if (need <= t->capacity) return EL_OK;
    size_t cap = t->capacity ? t->capacity : 16;
    while (cap < need) cap = cap > SIZE_MAX / sizeof(el_tensor) / 2 ? need : cap * 2;
    el_tensor *p = realloc(t->items, cap * sizeof *p);
    if (!p)
        return el_errorf(EL_E_NOMEM, "tensor table: out of memory growing to %zu tensors (%zu "
                         "bytes)", cap, cap * sizeof *p);
    t->items = p;
    t->capacity = cap;
    return EL_OK;
}

el_status el_tensor_table_push(el_tensor_table *t, const el_tensor *tensor) {
    el_status st = table_reserve(t, 1);
    if (st != EL_OK) return st;
    char *name = strdup(tensor->name ? tensor->name : "");
    if (!name) return el_errorf(EL_E_NOMEM, "tensor table: out of memory copying a name");
    t->items[t->count] = *tensor;
    t->items[t->count].name = name;
    t->count++;
    return EL_OK;
}

/* ---- the 8-byte prefix ---------------------------------------------------------------- */

el_status el_st_check_prefix(const uint8_t prefix[8], uint64_t file_size, const char *fname,
                             uint64_t *json_len) {
    if (!fname) fname = "safetensors";
    if (file_size < 8)
        return el_errorf(EL_E_INVALID,
                         "%s: %llu bytes is too small for a safetensors file (8-byte header "
                         "length, then the JSON header)",
                         fname, (unsigned long long)file_size);
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = n << 8 | prefix[i];
    if (n == 0)
        return el_errorf(EL_E_INVALID,
                         "%s: header length: expected 1..%u bytes of JSON, got 0; not a "
                         "safetensors file",
                         fname, (unsigned)EL_ST_HEADER_MAX);
    if (n > EL_ST_HEADER_MAX)
        return el_errorf(EL_E_INVALID,
                         "%s: header length: expected at most %u bytes, got %llu; not a "
                         "safetensors file, or corrupt",
                         fname, (unsigned)EL_ST_HEADER_MAX, (unsigned long long)n);
    if (n > file_size - 8)
        return el_errorf(EL_E_INVALID,
                         "%s: header length: expected at most %llu bytes (file size %llu - 8), "
                         "got %llu; the file is truncated or not safetensors",
                         fname, (unsigned long long)(file_size - 8),
                         (unsigned long long)file_size, (unsigned long long)n);
    *json_len = n;
    return EL_OK;
}

/* ---- the header ----------------------------------------------------------------------- */

typedef struct st_item {
    el_tensor t;     /* name malloc'd; offset absolute */
    uint64_t begin;  /* data_offsets, relative to the data section */
    uint64_t end;
} st_item;

/* Safetensors dtypes that exist in the format but that edgeload does not handle: reported
 * as unsupported rather than corrupt. */
static const char *const k_unsupported_dtypes[] = {
    "U16", "U32", "U64", "F8_E4M3", "F8_E5M2", "F8_E8M0", "F6_E2M3", "F6_E3M2", "F4", "C64",
};

static void shape_str(const uint64_t *shape, uint32_t ndim, char *buf, size_t cap) {
    size_t o = 0;
    o += (size_t)snprintf(buf + o, cap - o, "[");
    for (uint32_t d = 0; d < ndim && o < cap; d++)
        o += (size_t)snprintf(buf + o, cap - o, "%s%llu", d ? ", " : "",
                              (unsigned long long)shape[d]);
    if (o < cap) snprintf(buf + o, cap - o, "]");
}

static el_status parse_dtype(const cJSON *v, const char *fname, const char *pname,
                             el_dtype *out) {
    char got[128];
    if (!cJSON_IsString(v))
        return el_errorf(EL_E_INVALID, "%s: tensor '%s': dtype: expected a string, got %s",
                         fname, pname, el_json_describe(v, got, sizeof got));
    for (int i = 0; i < EL_DT_COUNT; i++) { /* safetensors has no block types */
        if (!el_dtype_is_block((el_dtype)i) && !strcmp(v->valuestring, el_dtype_name((el_dtype)i))) {
            *out = (el_dtype)i;
            return EL_OK;
        }
    }
    el_json_describe(v, got, sizeof got);
    for (size_t i = 0; i < sizeof k_unsupported_dtypes / sizeof k_unsupported_dtypes[0]; i++)
        if (!strcmp(v->valuestring, k_unsupported_dtypes[i]))
            return el_errorf(EL_E_UNSUPPORTED,
                             "%s: tensor '%s': dtype: expected one of F64 F32 F16 BF16 I64 I32 "
                             "I16 I8 U8 BOOL, got %s (valid safetensors, not supported by "
                             "edgeload; convert the model)",
                             fname, pname, got);
    return el_errorf(EL_E_INVALID,
                     "%s: tensor '%s': dtype: expected one of F64 F32 F16 BF16 I64 I32 I16 I8 "
                     "U8 BOOL (exact case), got %s",
                     fname, pname, got);
}

static el_status parse_tensor(const cJSON *m, const char *fname, const char *pname,
                              uint64_t data_len, st_item *it) {
    char got[128], shp[256];
    if (!cJSON_IsObject(m))
        return el_errorf(EL_E_INVALID,
                         "%s: tensor '%s': expected an object {dtype, shape, data_offsets}, "
                         "got %s",
                         fname, pname, el_json_describe(m, got, sizeof got));
    /* cJSON keeps repeated keys; a second "shape" must not silently lose to the first. */
    const cJSON *dtype = NULL, *shape = NULL, *offs = NULL;
    for (const cJSON *c = m->child; c; c = c->next) {
        const cJSON **slot = NULL;
        if (!c->string) continue;
        if (!strcmp(c->string, "dtype")) slot = &dtype;
        else if (!strcmp(c->string, "shape")) slot = &shape;
        else if (!strcmp(c->string, "data_offsets")) slot = &offs;
        if (!slot) continue; /* unknown fields are ignored, as the format allows */
        if (*slot)
            return el_errorf(EL_E_INVALID, "%s: tensor '%s': %s: expected once, got it twice",
                             fname, pname, c->string);
        *slot = c;
    }

    el_status st = parse_dtype(dtype, fname, pname, &it->t.dtype);
    if (st != EL_OK) return st;

    if (!cJSON_IsArray(shape))
        return el_errorf(EL_E_INVALID, "%s: tensor '%s': shape: expected an array, got %s",
                         fname, pname, el_json_describe(shape, got, sizeof got));
    uint32_t nd = 0;
    uint64_t elems = 1;
    bool overflow = false;
    for (const cJSON *c = shape->child; c; c = c->next) {
        if (nd == EL_MAX_DIMS) {
            uint32_t total = nd;
            for (; c; c = c->next) total++;
            return el_errorf(EL_E_INVALID,
                             "%s: tensor '%s': shape: expected at most %d dimensions, got %u",
                             fname, pname, EL_MAX_DIMS, total);
        }
        uint64_t d;
        if (!el_json_get_u64(c, EL_U53, &d))
            return el_errorf(EL_E_INVALID,
                             "%s: tensor '%s': shape[%u]: expected an integer in 0..2^53, "
                             "got %s",
                             fname, pname, nd, el_json_describe(c, got, sizeof got));
        it->t.shape[nd++] = d;
        if (!el_mul_u64(elems, d, &elems)) overflow = true;
    }
    it->t.ndim = nd;
    uint64_t es = el_dtype_size(it->t.dtype);
    /* A zero dimension makes the product 0 whatever the order, so only report overflow when
     * no dimension is 0. */
    bool has_zero = false;
    for (uint32_t d = 0; d < nd; d++) has_zero |= it->t.shape[d] == 0;
    if (has_zero) elems = 0;
    if ((overflow && !has_zero) || !el_mul_u64(elems, es, &it->t.nbytes)) {
        shape_str(it->t.shape, nd, shp, sizeof shp);
        return el_errorf(EL_E_INVALID,
                         "%s: tensor '%s': shape: expected a size that fits in 64 bits, got "
                         "%s x %llu-byte %s (overflows)",
                         fname, pname, shp, (unsigned long long)es,
                         el_dtype_name(it->t.dtype));
    }

    if (!cJSON_IsArray(offs))
        return el_errorf(EL_E_INVALID,
                         "%s: tensor '%s': data_offsets: expected [begin, end], got %s", fname,
                         pname, el_json_describe(offs, got, sizeof got));
    size_t count = 0;
    for (const cJSON *c = offs->child; c; c = c->next) count++;
    if (count != 2)
        return el_errorf(EL_E_INVALID,
                         "%s: tensor '%s': data_offsets: expected 2 numbers [begin, end], got "
                         "%zu",
                         fname, pname, count);
    uint64_t be[2] = {0, 0};
    int k = 0;
    for (const cJSON *c = offs->child; c; c = c->next, k++) {
        if (!el_json_get_u64(c, EL_U53, &be[k]))
            return el_errorf(EL_E_INVALID,
                             "%s: tensor '%s': data_offsets[%d]: expected an integer in "
                             "0..2^53, got %s",
                             fname, pname, k, el_json_describe(c, got, sizeof got));
    }
    if (be[0] > be[1])
        return el_errorf(EL_E_INVALID,
                         "%s: tensor '%s': data_offsets: expected begin <= end, got [%llu, "
                         "%llu]",
                         fname, pname, (unsigned long long)be[0], (unsigned long long)be[1]);
    if (be[1] - be[0] != it->t.nbytes) {
        shape_str(it->t.shape, nd, shp, sizeof shp);
        return el_errorf(EL_E_INVALID,
                         "%s: tensor '%s': data_offsets: expected end - begin = %llu bytes "
                         "(shape %s x %llu-byte %s), got %llu ([%llu, %llu])",
                         fname, pname, (unsigned long long)it->t.nbytes, shp,
                         (unsigned long long)es, el_dtype_name(it->t.dtype),
                         (unsigned long long)(be[1] - be[0]), (unsigned long long)be[0],
                         (unsigned long long)be[1]);
    }
    if (be[1] > data_len)
        return el_errorf(EL_E_INVALID,
                         "%s: tensor '%s': data_offsets: expected end <= %llu (the data "
                         "section size), got %llu; the file is truncated or corrupt",
                         fname, pname, (unsigned long long)data_len,
                         (unsigned long long)be[1]);
    it->begin = be[0];
    it->end = be[1];
    return EL_OK;
}

static el_status parse_metadata(const cJSON *m, const char *fname) {
    char got[128], key[NAME_MSG];
    if (!cJSON_IsObject(m))
        return el_errorf(EL_E_INVALID, "%s: __metadata__: expected an object, got %s", fname,
                         el_json_describe(m, got, sizeof got));
    for (const cJSON *c = m->child; c; c = c->next) {
        if (!cJSON_IsString(c)) {
            const char *k = c->string ? c->string : "";
            return el_errorf(EL_E_INVALID,
                             "%s: __metadata__: '%s': expected a string value, got %s", fname,
                             el_json_printable(k, strlen(k), key, sizeof key),
                             el_json_describe(c, got, sizeof got));
        }
    }
    return EL_OK;
}

static int cmp_item_name(const void *a, const void *b) {
    const st_item *x = *(const st_item *const *)a, *y = *(const st_item *const *)b;
    return strcmp(x->t.name, y->t.name);
}

static int cmp_item_offset(const void *a, const void *b) {
    const st_item *x = *(const st_item *const *)a, *y = *(const st_item *const *)b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return strcmp(x->t.name, y->t.name); /* zero-size ties: a stable, documented order */
}

static const char *pn(const char *name, char *buf) {
    return el_json_printable(name, strlen(name), buf, NAME_MSG);
}

/* Duplicates within the new items (sorted by name) and against the table. */
static el_status check_duplicates(st_item **by_name, size_t n, const el_tensor_table *out,
                                  const char *fname) {
    char a[NAME_MSG];
    for (size_t i = 1; i < n; i++) {
        if (strcmp(by_name[i - 1]->t.name, by_name[i]->t.name)) continue;
        return el_errorf(EL_E_INVALID,
                         "%s: tensor '%s': name: expected once, got it twice (data_offsets "
                         "[%llu, %llu] and [%llu, %llu])",
                         fname, pn(by_name[i]->t.name, a),
                         (unsigned long long)by_name[i - 1]->begin,
                         (unsigned long long)by_name[i - 1]->end,
                         (unsigned long long)by_name[i]->begin,
                         (unsigned long long)by_name[i]->end);
    }
    if (n == 0) return EL_OK;
    st_item key;
    st_item *keyp = &key;
    for (size_t i = 0; i < out->count; i++) {
        const el_tensor *t = &out->items[i];
        key.t.name = t->name;
        st_item **hit = bsearch(&keyp, by_name, n, sizeof *by_name, cmp_item_name);
        if (!hit) continue;
        return el_errorf(EL_E_INVALID,
                         "%s: tensor '%s': name: expected once in the model, got it again "
                         "(already in file #%u at offset %llu); a tensor may be in only one "
                         "shard",
                         fname, pn(t->name, a), (unsigned)t->file,
                         (unsigned long long)t->offset);
    }
    return EL_OK;
}

/* Sorted by offset, the ranges must tile [0, data_len) exactly. */
static el_status check_coverage(st_item **by_off, size_t n, uint64_t data_len,
                                const char *fname) {
    char a[NAME_MSG], b[NAME_MSG];
    uint64_t pos = 0;
    const st_item *prev = NULL;
    for (size_t i = 0; i < n; i++) {
        const st_item *it = by_off[i];
        if (it->begin > pos) {
            if (!prev)
                return el_errorf(EL_E_INVALID,
                                 "%s: gap of %llu bytes at the start of the data section, "
                                 "before tensor '%s' [%llu, %llu]; safetensors tensors must be "
                                 "contiguous from offset 0",
                                 fname, (unsigned long long)it->begin, pn(it->t.name, b),
                                 (unsigned long long)it->begin, (unsigned long long)it->end);
            return el_errorf(EL_E_INVALID,
                             "%s: gap of %llu bytes between tensor '%s' [%llu, %llu] and "
                             "tensor '%s' [%llu, %llu]; safetensors tensors must be contiguous",
                             fname, (unsigned long long)(it->begin - pos), pn(prev->t.name, a),
                             (unsigned long long)prev->begin, (unsigned long long)prev->end,
                             pn(it->t.name, b), (unsigned long long)it->begin,
                             (unsigned long long)it->end);
        }
        if (it->begin < pos)
            return el_errorf(EL_E_INVALID,
                             "%s: overlap: tensor '%s' [%llu, %llu] and tensor '%s' [%llu, "
                             "%llu] share %llu bytes; the file is corrupt",
                             fname, pn(prev->t.name, a), (unsigned long long)prev->begin,
                             (unsigned long long)prev->end, pn(it->t.name, b),
                             (unsigned long long)it->begin, (unsigned long long)it->end,
                             (unsigned long long)((it->end < pos ? it->end : pos) - it->begin));
        pos = it->end;
        prev = it;
    }
    if (pos != data_len) {
        if (!prev)
            return el_errorf(EL_E_INVALID,
                             "%s: data section: expected 0 bytes (the header lists no "
                             "tensors), got %llu trailing bytes",
                             fname, (unsigned long long)data_len);
        return el_errorf(EL_E_INVALID,
                         "%s: data section: expected %llu bytes (the last tensor '%s' ends "
                         "there), got %llu: %llu trailing bytes that no tensor covers; the "
                         "file is corrupt or was appended to",
                         fname, (unsigned long long)pos, pn(prev->t.name, a),
                         (unsigned long long)data_len, (unsigned long long)(data_len - pos));
    }
    return EL_OK;
}

static void free_items(st_item *items, size_t n) {
    for (size_t i = 0; i < n; i++) free(items[i].t.name);
    free(items);
}

el_status el_st_parse_header(const char *json, size_t json_len, uint64_t data_start,
                             uint64_t data_len, uint32_t file_index, const char *fname,
                             el_tensor_table *out) {
    if (!fname) fname = "safetensors";
    uint64_t file_end;
    if (!el_add_u64(data_start, data_len, &file_end))
        return el_errorf(EL_E_INVALID, "%s: data section [%llu + %llu] overflows 64 bits",
                         fname, (unsigned long long)data_start, (unsigned long long)data_len);
    cJSON *root;
    el_status st = el_json_parse(json, json_len, fname, &root);
    if (st != EL_OK) return st;
    char got[128], a[NAME_MSG];
    if (!cJSON_IsObject(root)) {
        st = el_errorf(EL_E_INVALID,
                       "%s: header: expected a JSON object {name: {dtype, shape, "
                       "data_offsets}}, got %s",
                       fname, el_json_describe(root, got, sizeof got));
        cJSON_Delete(root);
        return st;
    }

    size_t members = 0;
    for (const cJSON *c = root->child; c; c = c->next) members++;
    st_item *items = calloc(members ? members : 1, sizeof *items);
    st_item **by_name = malloc((members ? members : 1) * sizeof *by_name);
    st_item **by_off = malloc((members ? members : 1) * sizeof *by_off);
    if (!items || !by_name || !by_off) {
        free(items);
        free(by_name);
        free(by_off);
        cJSON_Delete(root);
        return el_errorf(EL_E_NOMEM, "%s: out of memory for %zu header entries", fname,
                         members);
    }

    size_t n = 0;
    bool seen_meta = false;
    for (const cJSON *c = root->child; c && st == EL_OK; c = c->next) {
        const char *key = c->string ? c->string : "";
        size_t klen = strlen(key); /* exact: the pre-scan rejected \u0000 */
        if (!strcmp(key, "__metadata__")) {
            if (seen_meta)
                st = el_errorf(EL_E_INVALID, "%s: __metadata__: expected once, got it twice",
                               fname);
            else
                st = parse_metadata(c, fname);
            seen_meta = true;
            continue;
        }
        if (klen == 0 || klen > EL_NAME_MAX) {
            st = el_errorf(EL_E_INVALID,
                           "%s: tensor '%s': name: expected 1..%d bytes, got %zu", fname,
                           el_json_printable(key, klen, a, sizeof a), EL_NAME_MAX, klen);
            break;
        }
        if (!el_utf8_valid(key, klen)) {
            st = el_errorf(EL_E_INVALID,
                           "%s: tensor '%s': name: expected valid UTF-8, got invalid bytes",
                           fname, el_json_printable(key, klen, a, sizeof a));
            break;
        }
        st_item *it = &items[n];
        st = parse_tensor(c, fname, el_json_printable(key, klen, a, sizeof a), data_len, it);
        if (st != EL_OK) break;
        it->t.name = malloc(klen + 1);
        if (!it->t.name) {
            st = el_errorf(EL_E_NOMEM, "%s: out of memory copying tensor names", fname);
            break;
        }
        memcpy(it->t.name, key, klen + 1);
        it->t.file = file_index;
        it->t.offset = data_start + it->begin; /* <= data_start + data_len: no overflow */
        it->t.loaded_dtype = it->t.dtype;
        it->t.arena_offset = 0;
        it->t.data = NULL;
        by_name[n] = it;
        by_off[n] = it;
        n++;
    }
    cJSON_Delete(root);

    if (st == EL_OK) {
        qsort(by_name, n, sizeof *by_name, cmp_item_name);
        st = check_duplicates(by_name, n, out, fname);
    }
    if (st == EL_OK) {
        qsort(by_off, n, sizeof *by_off, cmp_item_offset);
        st = check_coverage(by_off, n, data_len, fname);
    }
    if (st == EL_OK) st = table_reserve(out, n);
    if (st == EL_OK) {
        /* Nothing fails past this point: ownership of the names moves to the table. */
        for (size_t i = 0; i < n; i++) {
            out->items[out->count++] = by_off[i]->t;
            by_off[i]->t.name = NULL;
        }
    }
    free_items(items, n);
    free(by_name);
    free(by_off);
    return st;
}
