/* gguf.c - the GGUF header parser: magic, version, counts, typed metadata (13 value types,
 * nested arrays), tensor infos, general.alignment and the data section, each field checked
 * against the bytes left in the file before use. See gguf.h for what is kept and the heap
 * budget. */
#include "loader/formats/gguf.h"

#include "loader/safetensors.h" /* el_utf8_valid, el_json_printable */
#include "platform/platform.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define GG_CACHE (64u * 1024u) /* parse read cache */

/* ---- type tables ---------------------------------------------------------------------- */

typedef struct gg_type {
    const char *name;
    uint32_t block; /* elements per block */
    uint32_t bytes; /* bytes per block */
} gg_type;

/* From the gguf package's GGML_QUANT_SIZES (ids 4, 5, 31..33, 36..38 were removed). */
static const gg_type k_types[] = {
    [0] = {"F32", 1, 4},         [1] = {"F16", 1, 2},         [2] = {"Q4_0", 32, 18},
    [3] = {"Q4_1", 32, 20},      [6] = {"Q5_0", 32, 22},      [7] = {"Q5_1", 32, 24},
    [8] = {"Q8_0", 32, 34},      [9] = {"Q8_1", 32, 40},      [10] = {"Q2_K", 256, 84},
    [11] = {"Q3_K", 256, 110},   [12] = {"Q4_K", 256, 144},   [13] = {"Q5_K", 256, 176},
    [14] = {"Q6_K", 256, 210},   [15] = {"Q8_K", 256, 292},   [16] = {"IQ2_XXS", 256, 66},
    [17] = {"IQ2_XS", 256, 74},  [18] = {"IQ3_XXS", 256, 98}, [19] = {"IQ1_S", 256, 50},
    [20] = {"IQ4_NL", 32, 18},   [21] = {"IQ3_S", 256, 110},  [22] = {"IQ2_S", 256, 82},
    [23] = {"IQ4_XS", 256, 136}, [24] = {"I8", 1, 1},         [25] = {"I16", 1, 2},
    [26] = {"I32", 1, 4},        [27] = {"I64", 1, 8},        [28] = {"F64", 1, 8},
    [29] = {"IQ1_M", 256, 56},   [30] = {"BF16", 1, 2},       [34] = {"TQ1_0", 256, 54},
    [35] = {"TQ2_0", 256, 66},   [39] = {"MXFP4", 32, 17},    [40] = {"NVFP4", 64, 36},
    [41] = {"Q1_0", 128, 18},
};
#define GG_NTYPES (sizeof k_types / sizeof k_types[0])

const char *el_gguf_type_name(uint32_t type) {
    return type < GG_NTYPES ? k_types[type].name : NULL;
}

bool el_gguf_type_block(uint32_t type, uint32_t *block, uint32_t *bytes) {
    if (!el_gguf_type_name(type)) return false;
    *block = k_types[type].block;
    *bytes = k_types[type].bytes;
    return true;
}

el_dtype el_gguf_dtype(uint32_t type) {
    switch (type) {
    case 0: return EL_DT_F32;
    case 1: return EL_DT_F16;
    case 30: return EL_DT_BF16;
    case 24: return EL_DT_I8;
    case 25: return EL_DT_I16;
    case 26: return EL_DT_I32;
    case 27: return EL_DT_I64;
    case 28: return EL_DT_F64;
    case 2: return EL_DT_Q4_0; /* ggml's block types, bit-compatible (kernels/cpu/quant.c) */
    case 3: return EL_DT_Q4_1;
    case 6: return EL_DT_Q5_0;
    case 7: return EL_DT_Q5_1;
    case 8: return EL_DT_Q8_0;
    case 12: return EL_DT_Q4_K;
    case 13: return EL_DT_Q5_K;
    case 14: return EL_DT_Q6_K;
    default: return EL_DT_NONE; /* other block types: inspect only */
    }
}

static const char *const k_value_names[EL_GGUF_TYPE_COUNT] = {
    "u8", "i8", "u16", "i16", "u32", "i32", "f32", "bool", "string", "array", "u64", "i64", "f64",
};
/* Encoded bytes of a scalar (0 for string and array). */
static const uint8_t k_value_size[EL_GGUF_TYPE_COUNT] = {1, 1, 2, 2, 4, 4, 4, 1, 0, 0, 8, 8, 8};

const char *el_gguf_value_type_name(uint32_t type) {
    return type < EL_GGUF_TYPE_COUNT ? k_value_names[type] : "?";
}

el_status el_gguf_mem_read(void *ctx, void *dst, size_t n, uint64_t off) {
    const el_gguf_mem *m = ctx;
    if (off > m->n || n > m->n - off)
        return el_errorf(EL_E_IO, "read of %zu bytes at %llu past the end (%zu bytes)", n,
                         (unsigned long long)off, m->n);
    memcpy(dst, m->p + off, n);
    return EL_OK;
}

/* ---- the bounded cursor --------------------------------------------------------------- */

typedef struct gg_cur {
    const el_gguf_source *src;
    uint64_t pos;       /* next byte */
    uint8_t *cache;     /* cap bytes */
    size_t cap;
    uint64_t cache_off;
    size_t cache_len;
    el_status io;       /* EL_OK, or the source's failure (already reported) */
} gg_cur;

static uint64_t cur_left(const gg_cur *c) {
    return c->pos <= c->src->size ? c->src->size - c->pos : 0;
}

/* Reads n bytes at pos and advances; false if fewer are left or the source fails. */
static bool cur_get(gg_cur *c, void *dst, size_t n) {
    if (n > cur_left(c)) return false;
    uint8_t *d = dst;
    while (n) {
        if (c->pos >= c->cache_off && c->pos < c->cache_off + c->cache_len) {
            size_t at = (size_t)(c->pos - c->cache_off), k = c->cache_len - at;
            if (k > n) k = n;
            memcpy(d, c->cache + at, k);
            d += k;
            n -= k;
            c->pos += k;
            continue;
        }
        if (n >= c->cap) { /* large: straight through */
            el_status s = c->src->read(c->src->ctx, d, n, c->pos);
            if (s != EL_OK) c->io = s;
            if (s != EL_OK) return false;
            c->pos += n;
            return true;
        }
        uint64_t left = cur_left(c);
        size_t fill = left < c->cap ? (size_t)left : c->cap;
        el_status s = c->src->read(c->src->ctx, c->cache, fill, c->pos);
        if (s != EL_OK) {
            c->io = s;
            c->cache_len = 0;
            return false;
        }
        c->cache_off = c->pos;
        c->cache_len = fill;
    }
    return true;
}

static bool cur_skip(gg_cur *c, uint64_t n) {
    if (n > cur_left(c)) return false;
    c->pos += n;
    return true;
}

static uint64_t le(const uint8_t *p, size_t n) {
    uint64_t v = 0;
    for (size_t i = n; i-- > 0;) v = v << 8 | p[i];
    return v;
}

static bool cur_u32(gg_cur *c, uint32_t *v) {
    uint8_t b[4];
    if (!cur_get(c, b, 4)) return false;
    *v = (uint32_t)le(b, 4);
    return true;
}

static bool cur_u64(gg_cur *c, uint64_t *v) {
    uint8_t b[8];
    if (!cur_get(c, b, 8)) return false;
    *v = le(b, 8);
    return true;
}

/* ---- messages ------------------------------------------------------------------------- */

static el_status bad(const gg_cur *c, const char *field, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static el_status bad(const gg_cur *c, const char *field, const char *fmt, ...) {
    char msg[600];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return el_errorf(EL_E_INVALID, "%s: %s: %s", c->src->name, field, msg);
}

/* The failure of a short read: the source's own error, else truncation. */
static el_status short_read(const gg_cur *c, const char *field, uint64_t need) {
    if (c->io != EL_OK) return c->io;
    return bad(c, field, "expected %llu more bytes at offset %llu, got %llu (the file is "
               "truncated or the field is corrupt)", (unsigned long long)need,
               (unsigned long long)c->pos, (unsigned long long)cur_left(c));
}

/* ---- values --------------------------------------------------------------------------- */

/* Fewest bytes one element of type t can take: what count x this must fit in the file. */
static uint64_t min_elem_bytes(uint32_t t) {
    if (t == EL_GGUF_STRING) return 8;
    if (t == EL_GGUF_ARRAY) return 12;
    return k_value_size[t];
}

static void decode_scalar(uint32_t t, const uint8_t *b, el_gguf_value *v) {
    uint64_t u = le(b, k_value_size[t]);
    switch (t) {
    case EL_GGUF_I8: v->num.i = (int8_t)u; break;
    case EL_GGUF_I16: v->num.i = (int16_t)u; break;
    case EL_GGUF_I32: v->num.i = (int32_t)u; break;
    case EL_GGUF_I64: memcpy(&v->num.i, &u, 8); break;
    case EL_GGUF_F32: {
        uint32_t w = (uint32_t)u;
        float f;
        memcpy(&f, &w, 4);
        v->num.f = f;
        break;
    }
    case EL_GGUF_F64: memcpy(&v->num.f, &u, 8); break;
    default: v->num.u = u; break;
    }
}

/* Reads one value of type t at the cursor (for an array: its element type, count and
 * elements, which are walked and validated, not kept). field names it in messages. */
static el_status walk_value(gg_cur *c, uint32_t t, int depth, const char *field,
                            el_gguf_value *v) {
    memset(v, 0, sizeof *v);
    v->type = t;
    uint8_t b[8];
    if (t != EL_GGUF_STRING && t != EL_GGUF_ARRAY) {
        if (!cur_get(c, b, k_value_size[t])) return short_read(c, field, k_value_size[t]);
        decode_scalar(t, b, v);
        if (t == EL_GGUF_BOOL && v->num.u > 1)
            return bad(c, field, "expected a bool (0 or 1), got %llu",
                       (unsigned long long)v->num.u);
        return EL_OK;
    }
    if (t == EL_GGUF_STRING) {
        if (!cur_u64(c, &v->len)) return short_read(c, field, 8);
        if (v->len > cur_left(c))
            return bad(c, field, "string length: expected at most %llu (bytes left in the "
                       "file), got %llu", (unsigned long long)cur_left(c),
                       (unsigned long long)v->len);
        v->offset = c->pos;
        v->size = v->len;
        cur_skip(c, v->len);
        return EL_OK;
    }
    uint32_t et;
    if (!cur_u32(c, &et)) return short_read(c, field, 4);
    if (et >= EL_GGUF_TYPE_COUNT)
        return bad(c, field, "array element type: expected 0..12, got %u", et);
    if (et == EL_GGUF_ARRAY && depth + 2 > EL_GGUF_MAX_DEPTH) /* levels counted from 1 */
        return bad(c, field, "arrays nested deeper than %d", EL_GGUF_MAX_DEPTH);
    if (!cur_u64(c, &v->len)) return short_read(c, field, 8);
    uint64_t min;
    if (!el_mul_u64(v->len, min_elem_bytes(et), &min) || min > cur_left(c))
        return bad(c, field, "array length: %llu %s elements need at least %llu x %llu bytes, "
                   "%llu are left in the file", (unsigned long long)v->len,
                   k_value_names[et], (unsigned long long)v->len,
                   (unsigned long long)min_elem_bytes(et), (unsigned long long)cur_left(c));
    v->elem_type = et;
    v->offset = c->pos;
    if (et != EL_GGUF_STRING && et != EL_GGUF_ARRAY && et != EL_GGUF_BOOL) {
        cur_skip(c, min);
    } else {
        char sub[300];
        for (uint64_t i = 0; i < v->len; i++) {
            el_gguf_value e;
            el_status s;
            if (et == EL_GGUF_ARRAY) { /* (nested arrays are rare: name the index always) */
                snprintf(sub, sizeof sub, "%s[%llu]", field, (unsigned long long)i);
                s = walk_value(c, et, depth + 1, sub, &e);
            } else {
                s = walk_value(c, et, depth + 1, field, &e);
            }
            if (s != EL_OK) return s;
        }
    }
    v->size = c->pos - v->offset;
    return EL_OK;
}

/* ---- the parse ------------------------------------------------------------------------ */

static bool charge(el_gguf *g, uint64_t bytes) {
    uint64_t t;
    if (!el_add_u64(g->heap_bytes, bytes, &t) || t > EL_GGUF_HEAP_MAX) return false;
    g->heap_bytes = t;
    return true;
}

static el_status over_budget(const gg_cur *c, const char *field) {
    return bad(c, field, "holding the header would take more than the %llu MiB of memory "
               "a GGUF header may use", (unsigned long long)(EL_GGUF_HEAP_MAX >> 20));
}

/* A length-prefixed name (key or tensor name): 1..max bytes, valid UTF-8, no NUL. */
static el_status read_name(gg_cur *c, el_gguf *g, uint64_t max, const char *field, char **out) {
    uint64_t n;
    if (!cur_u64(c, &n)) return short_read(c, field, 8);
    if (n == 0 || n > max)
        return bad(c, field, "length: expected 1..%llu bytes, got %llu", (unsigned long long)max,
                   (unsigned long long)n);
    if (n > cur_left(c)) return short_read(c, field, n);
    if (!charge(g, n + 1)) return over_budget(c, field);
    char *p = malloc((size_t)n + 1);
    if (!p) return el_errorf(EL_E_NOMEM, "%s: %s: out of memory", c->src->name, field);
    if (!cur_get(c, p, (size_t)n)) {
        free(p);
        return short_read(c, field, n);
    }
    p[n] = 0;
    if (memchr(p, 0, (size_t)n) || !el_utf8_valid(p, (size_t)n)) {
        char shown[160];
        el_json_printable(p, (size_t)n, shown, sizeof shown);
        free(p);
        return bad(c, field, "expected valid UTF-8 without NUL bytes, got '%s'", shown);
    }
    *out = p;
    return EL_OK;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int cmp_tensor_off(const void *a, const void *b) {
    const el_gguf_tensor *x = *(const el_gguf_tensor *const *)a;
    const el_gguf_tensor *y = *(const el_gguf_tensor *const *)b;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return 0;
}

/* Duplicate names among n strings (keys or tensor names): the first repeated one or NULL.
 * scratch holds n pointers. */
static const char *first_duplicate(const char **scratch, size_t n) {
    qsort(scratch, n, sizeof *scratch, cmp_str);
    for (size_t i = 1; i < n; i++)
        if (!strcmp(scratch[i - 1], scratch[i])) return scratch[i];
    return NULL;
}

static el_status parse_kvs(gg_cur *c, el_gguf *g, uint64_t n) {
    char field[EL_GGUF_KEY_MAX + 64];
    for (uint64_t i = 0; i < n; i++) {
        el_gguf_kv *kv = &g->kv[i];
        snprintf(field, sizeof field, "metadata[%llu] key", (unsigned long long)i);
        el_status s = read_name(c, g, EL_GGUF_KEY_MAX, field, &kv->key);
        if (s != EL_OK) return s;
        g->n_kv = (size_t)i + 1; /* owns the key from here */
        snprintf(field, sizeof field, "metadata '%s'", kv->key);
        uint32_t t;
        if (!cur_u32(c, &t)) return short_read(c, field, 4);
        if (t >= EL_GGUF_TYPE_COUNT)
            return bad(c, field, "value type: expected 0..12, got %u", t);
        if ((s = walk_value(c, t, 0, field, &kv->v)) != EL_OK) return s;
        if (t == EL_GGUF_STRING) { /* top-level strings are kept (charged) */
            if (!charge(g, kv->v.len + 1)) return over_budget(c, field);
            char *p = malloc((size_t)kv->v.len + 1);
            if (!p) return el_errorf(EL_E_NOMEM, "%s: %s: out of memory", c->src->name, field);
            s = kv->v.len ? c->src->read(c->src->ctx, p, (size_t)kv->v.len, kv->v.offset) : EL_OK;
            p[kv->v.len] = 0;
            kv->v.str = p;
            if (s != EL_OK) return s;
        }
        if (!strcmp(kv->key, "general.alignment")) {
            if (t != EL_GGUF_U32)
                return bad(c, field, "expected a u32, got %s", k_value_names[t]);
            uint64_t a = kv->v.num.u;
            if (a == 0 || (a & (a - 1)))
                return bad(c, field, "expected a power of two > 0, got %llu",
                           (unsigned long long)a);
            g->alignment = a;
        }
    }
    const char **scratch = NULL;
    if (n > 1) {
        if (!charge(g, n * sizeof *scratch)) return over_budget(c, "metadata keys");
        if (!(scratch = malloc((size_t)n * sizeof *scratch)))
            return el_errorf(EL_E_NOMEM, "%s: out of memory", c->src->name);
        for (uint64_t i = 0; i < n; i++) scratch[i] = g->kv[i].key;
        const char *dup = first_duplicate(scratch, (size_t)n);
        el_status s = dup ? bad(c, "metadata", "key '%s' appears more than once", dup) : EL_OK;
        free(scratch);
        g->heap_bytes -= n * sizeof *scratch;
        return s;
    }
    return EL_OK;
}

static el_status parse_tensor_info(gg_cur *c, el_gguf *g, uint64_t i) {
    el_gguf_tensor *t = &g->tensors[i];
    char field[EL_GGUF_NAME_MAX + 64];
    snprintf(field, sizeof field, "tensor[%llu] name", (unsigned long long)i);
    el_status s = read_name(c, g, EL_GGUF_NAME_MAX, field, &t->name);
    if (s != EL_OK) return s;
    g->n_tensors = (size_t)i + 1;
    snprintf(field, sizeof field, "tensor '%s'", t->name);
    if (!cur_u32(c, &t->n_dims)) return short_read(c, field, 4);
    if (t->n_dims < 1 || t->n_dims > EL_GGUF_MAX_DIMS)
        return bad(c, field, "n_dims: expected 1..%d, got %u", EL_GGUF_MAX_DIMS, t->n_dims);
    uint64_t elems = 1;
    bool zero = false, overflow = false;
    for (uint32_t d = 0; d < EL_GGUF_MAX_DIMS; d++) t->ne[d] = 1;
    for (uint32_t d = 0; d < t->n_dims; d++) {
        if (!cur_u64(c, &t->ne[d])) return short_read(c, field, 8);
        if (t->ne[d] >> 63)
            return bad(c, field, "ne[%u]: expected at most 2^63 - 1, got %llu", d,
                       (unsigned long long)t->ne[d]);
        zero |= t->ne[d] == 0;
        overflow |= !el_mul_u64(elems, t->ne[d], &elems);
    }
    if (!cur_u32(c, &t->type)) return short_read(c, field, 4);
    uint32_t block, bpb;
    if (!el_gguf_type_block(t->type, &block, &bpb))
        return bad(c, field, "type: expected a known GGML type id (0..%u, not 4, 5, 31..33, "
                   "36..38), got %u", (unsigned)GG_NTYPES - 1, t->type);
    if (t->ne[0] % block)
        return bad(c, field, "ne[0] (row length): expected a multiple of %s's block of %u, "
                   "got %llu", k_types[t->type].name, block, (unsigned long long)t->ne[0]);
    if (zero) elems = 0;
    if ((overflow && !zero) || !el_mul_u64(elems / block, bpb, &t->nbytes) || t->nbytes >> 62)
        return bad(c, field, "shape: expected a size that fits in 2^62 bytes, got ne "
                   "[%llu, %llu, %llu, %llu] of %s", (unsigned long long)t->ne[0],
                   (unsigned long long)t->ne[1], (unsigned long long)t->ne[2],
                   (unsigned long long)t->ne[3], k_types[t->type].name);
    if (!cur_u64(c, &t->offset)) return short_read(c, field, 8);
    if (t->offset % g->alignment)
        return bad(c, field, "offset: expected a multiple of the alignment %llu, got %llu",
                   (unsigned long long)g->alignment, (unsigned long long)t->offset);
    return EL_OK;
}

/* After the infos: data section placement, every range inside the file, no overlaps, no
 * duplicate names. Offsets become absolute. */
static el_status check_tensors(gg_cur *c, el_gguf *g) {
    const uint64_t size = c->src->size;
    if (!el_align_up_u64(c->pos, g->alignment, &g->data_offset))
        return bad(c, "data section", "offset overflows");
    if (g->n_tensors == 0) return EL_OK;
    if (g->data_offset > size)
        return bad(c, "data section", "expected to start at %llu, inside the file, but the "
                   "file has %llu bytes", (unsigned long long)g->data_offset,
                   (unsigned long long)size);
    const uint64_t data_len = size - g->data_offset;
    for (size_t i = 0; i < g->n_tensors; i++) {
        el_gguf_tensor *t = &g->tensors[i];
        uint64_t end;
        if (!el_add_u64(t->offset, t->nbytes, &end) || end > data_len) {
            char field[EL_GGUF_NAME_MAX + 32];
            snprintf(field, sizeof field, "tensor '%s' offset", t->name);
            return bad(c, field, "expected offset + %llu bytes within the %llu-byte data "
                       "section, got offset %llu", (unsigned long long)t->nbytes,
                       (unsigned long long)data_len, (unsigned long long)t->offset);
        }
        t->offset += g->data_offset;
    }
    size_t n = g->n_tensors;
    if (n < 2) return EL_OK;
    if (!charge(g, n * sizeof(void *))) return over_budget(c, "tensors");
    const void **scratch = malloc(n * sizeof *scratch);
    if (!scratch) return el_errorf(EL_E_NOMEM, "%s: out of memory", c->src->name);
    for (size_t i = 0; i < n; i++) scratch[i] = &g->tensors[i];
    qsort(scratch, n, sizeof *scratch, cmp_tensor_off);
    el_status s = EL_OK;
    /* In offset order, each non-empty range must start at or after the furthest end so far
     * (empty tensors occupy nothing and may sit anywhere). */
    const el_gguf_tensor *far = NULL; /* the non-empty tensor ending furthest so far */
    for (size_t i = 0; i < n && s == EL_OK; i++) {
        const el_gguf_tensor *b = scratch[i];
        if (!b->nbytes) continue;
        if (far && far->offset + far->nbytes > b->offset)
            s = bad(c, "tensor offsets", "expected disjoint ranges, got '%s' [%llu, +%llu) "
                    "overlapping '%s' at %llu", far->name,
                    (unsigned long long)(far->offset - g->data_offset),
                    (unsigned long long)far->nbytes, b->name,
                    (unsigned long long)(b->offset - g->data_offset));
        if (!far || b->offset + b->nbytes > far->offset + far->nbytes) far = b;
    }
    if (s == EL_OK) {
        for (size_t i = 0; i < n; i++) scratch[i] = g->tensors[i].name;
        const char *dup = first_duplicate((const char **)scratch, n);
        if (dup) s = bad(c, "tensor names", "'%s' appears more than once", dup);
    }
    free(scratch);
    g->heap_bytes -= n * sizeof(void *);
    return s;
}

static el_status parse(gg_cur *c, el_gguf *g) {
    uint8_t magic[4];
    if (!cur_get(c, magic, 4)) return short_read(c, "magic", 4);
    if (memcmp(magic, "GGUF", 4)) {
        char shown[32];
        el_json_printable((const char *)magic, 4, shown, sizeof shown);
        return bad(c, "magic", "expected 'GGUF', got '%s'", shown);
    }
    if (!cur_u32(c, &g->version)) return short_read(c, "version", 4);
    uint32_t swapped = __builtin_bswap32(g->version);
    if (g->version == 1)
        return el_errorf(EL_E_UNSUPPORTED, "%s: version: GGUF v1 (32-bit counts) is not "
                         "supported: expected 2 or 3; convert the file with a newer llama.cpp",
                         c->src->name);
    if (swapped == 2 || swapped == 3)
        return el_errorf(EL_E_UNSUPPORTED, "%s: version: big-endian GGUF v%u is not "
                         "supported (expected little-endian): convert it with "
                         "gguf-convert-endian", c->src->name, swapped);
    if (g->version != 2 && g->version != 3)
        return bad(c, "version", "expected 2 or 3, got %u", g->version);
    uint64_t nt, nkv;
    if (!cur_u64(c, &nt)) return short_read(c, "tensor_count", 8);
    if (!cur_u64(c, &nkv)) return short_read(c, "metadata_kv_count", 8);
    /* Each tensor info takes at least 33 bytes, each entry 14: both must fit. */
    if (nt > EL_GGUF_MAX_TENSORS || nt * 33 > cur_left(c))
        return bad(c, "tensor_count", "expected at most %llu (%u accepted, 33 bytes each in "
                   "the %llu left), got %llu",
                   (unsigned long long)(cur_left(c) / 33 < EL_GGUF_MAX_TENSORS
                                            ? cur_left(c) / 33 : EL_GGUF_MAX_TENSORS),
                   EL_GGUF_MAX_TENSORS, (unsigned long long)cur_left(c), (unsigned long long)nt);
    if (nkv > EL_GGUF_MAX_KV || nkv * 14 + nt * 33 > cur_left(c))
        return bad(c, "metadata_kv_count", "expected at most %llu (%u accepted, 14 bytes each "
                   "in the %llu left after the tensor infos), got %llu",
                   (unsigned long long)((cur_left(c) - nt * 33) / 14 < EL_GGUF_MAX_KV
                                            ? (cur_left(c) - nt * 33) / 14 : EL_GGUF_MAX_KV),
                   EL_GGUF_MAX_KV, (unsigned long long)(cur_left(c) - nt * 33),
                   (unsigned long long)nkv);
    if (!charge(g, nkv * sizeof(el_gguf_kv) + nt * sizeof(el_gguf_tensor)))
        return over_budget(c, "tensor_count");
    g->kv = calloc(nkv ? (size_t)nkv : 1, sizeof *g->kv);
    g->tensors = calloc(nt ? (size_t)nt : 1, sizeof *g->tensors);
    if (!g->kv || !g->tensors) return el_errorf(EL_E_NOMEM, "%s: out of memory", c->src->name);
    el_status s = parse_kvs(c, g, nkv);
    for (uint64_t i = 0; s == EL_OK && i < nt; i++) s = parse_tensor_info(c, g, i);
    if (s == EL_OK) s = check_tensors(c, g);
    return s;
}

el_status el_gguf_parse(const el_gguf_source *src, el_gguf **out) {
    *out = NULL;
    el_gguf *g = calloc(1, sizeof *g);
    gg_cur c = {src, 0, malloc(GG_CACHE), GG_CACHE, 0, 0, EL_OK};
    if (!g || !c.cache) {
        free(g);
        free(c.cache);
        return el_errorf(EL_E_NOMEM, "%s: out of memory", src->name);
    }
    g->src = *src;
    g->alignment = EL_GGUF_DEFAULT_ALIGNMENT;
    g->heap_bytes = sizeof *g + GG_CACHE;
    el_status s = parse(&c, g);
    free(c.cache);
    g->heap_bytes -= GG_CACHE;
    if (s != EL_OK) {
        el_gguf_free(g);
        return s;
    }
    *out = g;
    return EL_OK;
}

void el_gguf_free(el_gguf *g) {
    if (!g) return;
    for (size_t i = 0; i < g->n_kv; i++) {
        free(g->kv[i].key);
        free((char *)g->kv[i].v.str);
    }
    for (size_t i = 0; i < g->n_tensors; i++) {
        free(g->tensors[i].name);
        free(g->tensors[i].el_name);
    }
    free(g->kv);
    free(g->tensors);
    free(g->by_el_name);
    free(g);
}

const el_gguf_kv *el_gguf_find(const el_gguf *g, const char *key) {
    for (size_t i = 0; i < g->n_kv; i++)
        if (!strcmp(g->kv[i].key, key)) return &g->kv[i];
    return NULL;
}

/* ---- reading arrays back -------------------------------------------------------------- */

void el_gguf_iter_init(const el_gguf *g, const el_gguf_value *arr, el_gguf_iter *it) {
    it->g = g;
    it->type = arr->elem_type;
    it->left = arr->type == EL_GGUF_ARRAY ? arr->len : 0;
    it->pos = arr->offset;
    it->cache_off = 0;
    it->cache_len = 0;
}

el_status el_gguf_iter_next(el_gguf_iter *it, el_gguf_value *out) {
    if (!it->left) return el_errorf(EL_E_USAGE, "GGUF array: no more elements");
    gg_cur c = {&it->g->src, it->pos, it->cache, sizeof it->cache, it->cache_off,
                it->cache_len, EL_OK};
    el_status s = walk_value(&c, it->type, 1, "array element", out);
    it->cache_off = c.cache_off;
    it->cache_len = c.cache_len;
    if (s != EL_OK) return s;
    it->pos = c.pos;
    it->left--;
    return EL_OK;
}

el_status el_gguf_iter_read_string(const el_gguf_iter *it, const el_gguf_value *v, char *buf,
                                   size_t cap, size_t *len) {
    if (!cap) return el_errorf(EL_E_USAGE, "el_gguf_iter_read_string: no room");
    size_t n = v->len < cap - 1 ? (size_t)v->len : cap - 1;
    /* The walk past the string read its length through the cache, which usually holds the
     * bytes after it too: no system call per token. */
    if (v->offset >= it->cache_off && v->offset - it->cache_off <= it->cache_len &&
        n <= it->cache_len - (size_t)(v->offset - it->cache_off)) {
        memcpy(buf, it->cache + (v->offset - it->cache_off), n);
        buf[n] = 0;
        if (len) *len = n;
        return EL_OK;
    }
    return el_gguf_read_string(it->g, v, buf, cap, len);
}

el_status el_gguf_read_string(const el_gguf *g, const el_gguf_value *v, char *buf, size_t cap,
                              size_t *len) {
    if (!cap) return el_errorf(EL_E_USAGE, "el_gguf_read_string: no room");
    size_t n = v->len < cap - 1 ? (size_t)v->len : cap - 1;
    el_status s = n ? g->src.read(g->src.ctx, buf, n, v->offset) : EL_OK;
    buf[s == EL_OK ? n : 0] = 0;
    if (len) *len = s == EL_OK ? n : 0;
    return s;
}
