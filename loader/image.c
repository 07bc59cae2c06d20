/* image.c - the .elimg format: the header, chunk table and manifest parsers (every field
 * validated, every region CRC-checked before use), chunk decoding (LZ4 safe decoder,
 * byte-shuffle), and the model side: opening an image as an el_model, its side files and
 * its memory plan. docs/FORMAT.md is the byte-exact specification this code follows. */
#include "loader/formats/gguf.h"
#include "loader/image.h"

#include "loader/load_impl.h"
#include "platform/crc32c.h"

#include <cjson/cJSON.h>
#include <errno.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#if defined(__x86_64__)
#include <emmintrin.h>
#elif defined(__aarch64__)
#include <arm_neon.h>
#endif

static const char *const k_codec_names[EL_IMG_CODEC_COUNT] = {"none", "lz4", "shuffle-lz4"};

const char *el_img_codec_name(el_img_codec c) {
    return (unsigned)c < EL_IMG_CODEC_COUNT ? k_codec_names[c] : "unknown";
}

el_status el_img_codec_parse(const char *s, el_img_codec *out) {
    for (int i = 0; i < EL_IMG_CODEC_COUNT; i++)
        if (s && !strcmp(s, k_codec_names[i])) {
            *out = (el_img_codec)i;
            return EL_OK;
        }
    return el_errorf(EL_E_USAGE, "--codec %s: expected none, lz4 or shuffle-lz4", s ? s : "");
}

bool el_img_magic_ok(const uint8_t head[EL_IMG_MAGIC_LEN]) {
    return memcmp(head, EL_IMG_MAGIC, EL_IMG_MAGIC_LEN) == 0;
}

static uint16_t rd16(const uint8_t *p) { return (uint16_t)(p[0] | (p[1] << 8)); }
static uint32_t rd32(const uint8_t *p) {
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint64_t rd64(const uint8_t *p) { return (uint64_t)rd32(p) | ((uint64_t)rd32(p + 4) << 32); }

/* ---- header --------------------------------------------------------------------------- */

/* [off, off + len) lies within [lo, hi]; false on overflow. */
static bool region_in(uint64_t off, uint64_t len, uint64_t lo, uint64_t hi) {
    uint64_t end;
    return el_add_u64(off, len, &end) && off >= lo && end <= hi;
}

static bool disjoint(uint64_t a, uint64_t alen, uint64_t b, uint64_t blen) {
    return a + alen <= b || b + blen <= a; /* callers checked both ends for overflow */
}

el_status el_img_header_parse(const uint8_t raw[EL_IMG_HEADER_SIZE], uint64_t avail,
                              const char *name, el_img_header *out) {
    if (avail < EL_IMG_HEADER_SIZE)
        return el_errorf(EL_E_INVALID, "%s: truncated: %llu bytes, an image header needs %u",
                         name, (unsigned long long)avail, EL_IMG_HEADER_SIZE);
    if (!el_img_magic_ok(raw))
        return el_errorf(EL_E_INVALID, "%s: magic: not an edgeload image (expected \"ELIMG\\0\\r\\n\")", name);
    el_img_header h;
    memset(&h, 0, sizeof h);
    h.header_crc = rd32(raw + 124);
    uint32_t crc = el_crc32c(0, raw, 124);
    if (crc != h.header_crc)
        return el_errorf(EL_E_INVALID, "%s: header_crc: CRC32C of header bytes 0..123 is 0x%08x, "
                         "the header says 0x%08x: the header is corrupt", name, crc, h.header_crc);
    h.version_major = rd16(raw + 8);
    h.version_minor = rd16(raw + 10);
    h.flags = rd32(raw + 12);
    h.header_size = rd32(raw + 16);
    h.chunk_count = rd32(raw + 20);
    h.manifest_offset = rd64(raw + 24);
    h.manifest_size = rd64(raw + 32);
    h.table_offset = rd64(raw + 40);
    h.payload_offset = rd64(raw + 48);
    h.payload_size = rd64(raw + 56);
    h.chunk_size = rd64(raw + 64);
    h.image_size = rd64(raw + 72);
    h.manifest_crc = rd32(raw + 80);
    h.table_crc = rd32(raw + 84);
    if (h.version_major != EL_IMG_VERSION_MAJOR)
        return el_errorf(EL_E_UNSUPPORTED, "%s: version_major: image format %u.%u, this edgeload "
                         "reads %u.x", name, h.version_major, h.version_minor, EL_IMG_VERSION_MAJOR);
    if (h.flags != 0)
        return el_errorf(EL_E_UNSUPPORTED, "%s: flags: unknown flag bits 0x%08x", name, h.flags);
    if (h.header_size != EL_IMG_HEADER_SIZE)
        return el_errorf(EL_E_INVALID, "%s: header_size: expected %u, got %u", name,
                         EL_IMG_HEADER_SIZE, h.header_size);
    for (int i = 88; i < 124; i++)
        if (raw[i])
            return el_errorf(EL_E_INVALID, "%s: reserved: header byte %d is 0x%02x, expected 0",
                             name, i, raw[i]);
    if (h.chunk_size < EL_IMG_CHUNK_MIN || h.chunk_size > EL_IMG_CHUNK_MAX ||
        h.chunk_size % EL_IMG_ALIGN)
        return el_errorf(EL_E_INVALID, "%s: chunk_size: %llu, expected a multiple of 4096 in "
                         "64 KiB..1 GiB", name, (unsigned long long)h.chunk_size);
    uint64_t want_chunks = h.payload_size / h.chunk_size + (h.payload_size % h.chunk_size != 0);
    if (h.chunk_count > EL_IMG_CHUNKS_MAX || want_chunks != h.chunk_count)
        return el_errorf(EL_E_INVALID, "%s: chunk_count: %u, but payload_size %llu in chunks of "
                         "%llu needs %llu (at most %u)", name, h.chunk_count,
                         (unsigned long long)h.payload_size, (unsigned long long)h.chunk_size,
                         (unsigned long long)want_chunks, EL_IMG_CHUNKS_MAX);
    if (h.image_size > avail)
        return el_errorf(EL_E_INVALID, "%s: image_size: truncated: the image is %llu bytes, only "
                         "%llu are there", name, (unsigned long long)h.image_size,
                         (unsigned long long)avail);
    if (h.payload_offset % EL_IMG_ALIGN || h.payload_offset > h.image_size)
        return el_errorf(EL_E_INVALID, "%s: payload_offset: %llu, expected a multiple of 4096 "
                         "within image_size %llu", name, (unsigned long long)h.payload_offset,
                         (unsigned long long)h.image_size);
    uint64_t table_len = (uint64_t)h.chunk_count * EL_IMG_ENTRY_SIZE;
    if (h.table_offset % 8 || !region_in(h.table_offset, table_len, EL_IMG_HEADER_SIZE, h.payload_offset))
        return el_errorf(EL_E_INVALID, "%s: table_offset: chunk table of %llu bytes at %llu is not "
                         "8-aligned between the header and payload_offset %llu", name,
                         (unsigned long long)table_len, (unsigned long long)h.table_offset,
                         (unsigned long long)h.payload_offset);
    if (h.manifest_size < 2 || h.manifest_size > EL_IMG_MANIFEST_MAX)
        return el_errorf(EL_E_INVALID, "%s: manifest_size: %llu, expected 2..%u", name,
                         (unsigned long long)h.manifest_size, EL_IMG_MANIFEST_MAX);
    if (!region_in(h.manifest_offset, h.manifest_size, EL_IMG_HEADER_SIZE, h.payload_offset) ||
        !disjoint(h.manifest_offset, h.manifest_size, h.table_offset, table_len))
        return el_errorf(EL_E_INVALID, "%s: manifest_offset: manifest at %llu (%llu bytes) is not "
                         "between the header and payload_offset or overlaps the chunk table",
                         name, (unsigned long long)h.manifest_offset,
                         (unsigned long long)h.manifest_size);
    *out = h;
    return EL_OK;
}

/* ---- chunk table ------------------------------------------------------------------------ */

el_status el_img_table_parse(const uint8_t *tbl, size_t len, const el_img_header *h,
                             const char *name, el_img_chunk *out) {
    if (len != (uint64_t)h->chunk_count * EL_IMG_ENTRY_SIZE)
        return el_errorf(EL_E_INVALID, "%s: chunk table: %zu bytes, expected %u entries", name,
                         len, h->chunk_count);
    uint32_t crc = el_crc32c(0, tbl, len);
    if (crc != h->table_crc)
        return el_errorf(EL_E_INVALID, "%s: table_crc: chunk table CRC32C 0x%08x, the header says "
                         "0x%08x: the chunk table is corrupt", name, crc, h->table_crc);
    uint64_t prev_end = h->payload_offset;
    for (uint32_t i = 0; i < h->chunk_count; i++) {
        const uint8_t *e = tbl + (size_t)i * EL_IMG_ENTRY_SIZE;
        el_img_chunk c;
        c.offset = rd64(e);
        c.stored_size = rd32(e + 8);
        c.raw_size = rd32(e + 12);
        c.codec = e[16];
        c.elem_size = e[17];
        c.crc_stored = rd32(e + 20);
        c.crc_raw = rd32(e + 24);
        uint64_t start = (uint64_t)i * h->chunk_size;
        uint64_t want_raw = h->payload_size - start < h->chunk_size ? h->payload_size - start
                                                                    : h->chunk_size;
        if (c.raw_size != want_raw)
            return el_errorf(EL_E_INVALID, "%s: chunk %u: raw_size %u, the header implies %llu",
                             name, i, c.raw_size, (unsigned long long)want_raw);
        if (c.codec >= EL_IMG_CODEC_COUNT)
            return el_errorf(EL_E_UNSUPPORTED, "%s: chunk %u: codec %u unknown (0 none, 1 lz4, "
                             "2 shuffle-lz4)", name, i, c.codec);
        if (c.stored_size == 0 || c.stored_size > c.raw_size ||
            (c.codec == EL_IMG_CODEC_NONE && c.stored_size != c.raw_size))
            return el_errorf(EL_E_INVALID, "%s: chunk %u: stored_size %u with raw_size %u and "
                             "codec %s", name, i, c.stored_size, c.raw_size,
                             el_img_codec_name(c.codec));
        bool shuffled = c.codec == EL_IMG_CODEC_SHUFFLE_LZ4;
        bool elem_ok = shuffled ? (c.elem_size == 1 || c.elem_size == 2 || c.elem_size == 4 ||
                                   c.elem_size == 8)
                                : c.elem_size == 0;
        if (!elem_ok)
            return el_errorf(EL_E_INVALID, "%s: chunk %u: elem_size %u with codec %s", name, i,
                             c.elem_size, el_img_codec_name(c.codec));
        if (c.codec == EL_IMG_CODEC_NONE && c.crc_raw != c.crc_stored)
            return el_errorf(EL_E_INVALID, "%s: chunk %u: crc_raw 0x%08x differs from crc_stored "
                             "0x%08x of the same plain bytes", name, i, c.crc_raw, c.crc_stored);
        if (rd16(e + 18) || rd32(e + 28))
            return el_errorf(EL_E_INVALID, "%s: chunk %u: reserved bytes not zero", name, i);
        if (c.offset % EL_IMG_ALIGN || c.offset < prev_end ||
            !region_in(c.offset, c.stored_size, h->payload_offset, h->image_size))
            return el_errorf(EL_E_INVALID, "%s: chunk %u: offset %llu (%u bytes): expected 4 KiB "
                             "aligned, after the previous chunk (ends %llu) and within image_size "
                             "%llu", name, i, (unsigned long long)c.offset, c.stored_size,
                             (unsigned long long)prev_end, (unsigned long long)h->image_size);
        prev_end = c.offset + c.stored_size;
        out[i] = c;
    }
    return EL_OK;
}

/* ---- manifest --------------------------------------------------------------------------- */

static const cJSON *jget(const cJSON *obj, const char *key) {
    const cJSON *hit = NULL; /* the last of repeated keys, as elsewhere */
    for (const cJSON *c = obj ? obj->child : NULL; c; c = c->next)
        if (c->string && !strcmp(c->string, key)) hit = c;
    return hit;
}

static el_status want_u64(const cJSON *v, uint64_t max, const char *name, const char *field,
                          uint64_t *out) {
    char got[96];
    if (!v || !el_json_get_u64(v, max, out))
        return el_errorf(EL_E_INVALID, "%s: manifest: %s: expected an integer 0..%llu, got %s",
                         name, field, (unsigned long long)max,
                         v ? el_json_describe(v, got, sizeof got) : "nothing");
    return EL_OK;
}

static el_status want_str(const cJSON *v, size_t cap, const char *name, const char *field,
                          char *dst) {
    char got[96];
    if (!cJSON_IsString(v) || strlen(v->valuestring) >= cap ||
        !el_utf8_valid(v->valuestring, strlen(v->valuestring)))
        return el_errorf(EL_E_INVALID, "%s: manifest: %s: expected a UTF-8 string shorter than "
                         "%zu bytes, got %s", name, field, cap,
                         v ? el_json_describe(v, got, sizeof got) : "nothing");
    snprintf(dst, cap, "%s", v->valuestring);
    return EL_OK;
}

static bool dtype_from_name(const char *s, el_dtype *out) {
    for (int d = 0; d < EL_DT_COUNT; d++)
        if (!strcmp(s, el_dtype_name((el_dtype)d))) {
            *out = (el_dtype)d;
            return true;
        }
    return false;
}

static int cmp_str_ptr(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static el_status parse_tensor(const cJSON *jt, size_t i, uint64_t *pos, const char *name,
                              el_tensor *t) {
    char field[64], tname[EL_NAME_MAX + 1];
    snprintf(field, sizeof field, "tensors[%zu].name", i);
    el_status s = want_str(jget(jt, "name"), sizeof tname, name, field, tname);
    if (s != EL_OK) return s;
    if (!tname[0]) return el_errorf(EL_E_INVALID, "%s: manifest: %s: empty", name, field);
    snprintf(field, sizeof field, "tensors[%zu].dtype", i);
    char dt[16];
    if ((s = want_str(jget(jt, "dtype"), sizeof dt, name, field, dt)) != EL_OK) return s;
    if (!dtype_from_name(dt, &t->dtype))
        return el_errorf(EL_E_UNSUPPORTED, "%s: manifest: tensor '%s': dtype '%s' unknown", name,
                         tname, dt);
    const cJSON *shape = jget(jt, "shape");
    int nd = cJSON_IsArray(shape) ? cJSON_GetArraySize(shape) : -1;
    if (nd < 0 || nd > EL_MAX_DIMS)
        return el_errorf(EL_E_INVALID, "%s: manifest: tensor '%s': shape: expected a list of at "
                         "most %d integers", name, tname, EL_MAX_DIMS);
    uint64_t elems = 1;
    t->ndim = (uint32_t)nd;
    int d = 0;
    for (const cJSON *c = shape->child; c; c = c->next, d++) {
        snprintf(field, sizeof field, "tensor '%.20s' shape[%d]", tname, d);
        if ((s = want_u64(c, 1ull << 53, name, field, &t->shape[d])) != EL_OK) return s;
        if (!el_mul_u64(elems, t->shape[d], &elems))
            return el_errorf(EL_E_INVALID, "%s: manifest: tensor '%s': shape overflows", name, tname);
    }
    uint64_t bytes = 0, off = 0, want_off = 0;
    if (el_dtype_tensor_bytes(t->dtype, t->shape, t->ndim, tname, &t->nbytes) != EL_OK)
        return el_errorf(EL_E_INVALID, "%s: manifest: %s", name, el_last_error());
    snprintf(field, sizeof field, "tensor '%.20s' bytes", tname);
    if ((s = want_u64(jget(jt, "bytes"), 1ull << 53, name, field, &bytes)) != EL_OK) return s;
    if (bytes != t->nbytes)
        return el_errorf(EL_E_INVALID, "%s: manifest: tensor '%s': bytes %llu, shape and dtype "
                         "give %llu", name, tname, (unsigned long long)bytes,
                         (unsigned long long)t->nbytes);
    snprintf(field, sizeof field, "tensor '%.20s' offset", tname);
    if ((s = want_u64(jget(jt, "offset"), 1ull << 53, name, field, &off)) != EL_OK) return s;
    if (!el_align_up_u64(*pos, EL_TENSOR_ALIGN, &want_off) || off != want_off)
        return el_errorf(EL_E_INVALID, "%s: manifest: tensor '%s': offset %llu, the layout rule "
                         "(%u-byte aligned, in order) puts it at %llu", name, tname,
                         (unsigned long long)off, EL_TENSOR_ALIGN, (unsigned long long)want_off);
    if (!el_add_u64(off, bytes, pos))
        return el_errorf(EL_E_INVALID, "%s: manifest: tensor '%s': end overflows", name, tname);
    /* Placement flags: an image is read only by a reader that knows every flag, since a
     * flag changes what the bytes mean. None is defined in format 1.0. */
    const cJSON *fl = jget(jt, "flags");
    if (fl && (!cJSON_IsArray(fl) || cJSON_GetArraySize(fl) != 0)) {
        char got[96];
        const cJSON *f0 = cJSON_IsArray(fl) ? fl->child : fl;
        return el_errorf(EL_E_UNSUPPORTED, "%s: manifest: tensor '%s': flags: unknown placement "
                         "flag %s (this edgeload knows none)", name, tname,
                         el_json_describe(f0, got, sizeof got));
    }
    t->name = strdup(tname);
    if (!t->name) return el_errorf(EL_E_NOMEM, "out of memory");
    t->file = 0;
    t->offset = off;
    t->arena_offset = off;
    t->loaded_dtype = t->dtype;
    return EL_OK;
}

static el_status parse_tensors(const cJSON *arr, const el_img_header *h, const char *name,
                               el_tensor_table *out) {
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    if (n < 0) return el_errorf(EL_E_INVALID, "%s: manifest: tensors: expected a list", name);
    el_status s = EL_OK;
    uint64_t pos = 0;
    size_t i = 0;
    for (const cJSON *jt = arr->child; jt && s == EL_OK; jt = jt->next, i++) {
        if (!cJSON_IsObject(jt)) {
            s = el_errorf(EL_E_INVALID, "%s: manifest: tensors[%zu]: expected an object", name, i);
            break;
        }
        el_tensor t;
        memset(&t, 0, sizeof t);
        s = parse_tensor(jt, i, &pos, name, &t);
        if (s == EL_OK) s = el_tensor_table_push(out, &t);
        free(t.name); /* push copies the name */
    }
    if (s == EL_OK && pos != h->payload_size)
        s = el_errorf(EL_E_INVALID, "%s: manifest: tensors end at payload byte %llu, the header's "
                      "payload_size is %llu", name, (unsigned long long)pos,
                      (unsigned long long)h->payload_size);
    if (s == EL_OK && out->count > 1) { /* unique names */
        char **names = malloc(out->count * sizeof *names);
        if (!names) return el_errorf(EL_E_NOMEM, "out of memory");
        for (size_t k = 0; k < out->count; k++) names[k] = out->items[k].name;
        qsort(names, out->count, sizeof *names, cmp_str_ptr);
        for (size_t k = 1; k < out->count && s == EL_OK; k++)
            if (!strcmp(names[k - 1], names[k]))
                s = el_errorf(EL_E_INVALID, "%s: manifest: tensor '%s' listed twice", name, names[k]);
        free(names);
    }
    return s;
}

static el_status parse_files(const cJSON *arr, const el_img_header *h, const char *name,
                             el_img_meta *out) {
    if (!arr) return EL_OK;
    int n = cJSON_IsArray(arr) ? cJSON_GetArraySize(arr) : -1;
    if (n < 0 || n > (int)EL_IMG_SIDE_FILES_MAX)
        return el_errorf(EL_E_INVALID, "%s: manifest: files: expected a list of at most %u",
                         name, EL_IMG_SIDE_FILES_MAX);
    uint64_t table_len = (uint64_t)h->chunk_count * EL_IMG_ENTRY_SIZE;
    el_status s;
    for (const cJSON *jf = arr->child; jf; jf = jf->next) {
        el_img_side *f = &out->side[out->side_count];
        char field[48];
        snprintf(field, sizeof field, "files[%u].name", out->side_count);
        if ((s = want_str(jget(jf, "name"), sizeof f->name, name, field, f->name)) != EL_OK) return s;
        if (!f->name[0] || f->name[0] == '.' || strchr(f->name, '/') || strchr(f->name, '\\'))
            return el_errorf(EL_E_INVALID, "%s: manifest: %s: '%s' is not a plain file name",
                             name, field, f->name);
        uint64_t crc = 0;
        snprintf(field, sizeof field, "files[%u].offset", out->side_count);
        if ((s = want_u64(jget(jf, "offset"), 1ull << 53, name, field, &f->offset)) != EL_OK) return s;
        snprintf(field, sizeof field, "files[%u].size", out->side_count);
        if ((s = want_u64(jget(jf, "size"), EL_IMG_SIDE_MAX, name, field, &f->size)) != EL_OK) return s;
        snprintf(field, sizeof field, "files[%u].crc32c", out->side_count);
        if ((s = want_u64(jget(jf, "crc32c"), UINT32_MAX, name, field, &crc)) != EL_OK) return s;
        f->crc = (uint32_t)crc;
        if (!region_in(f->offset, f->size, EL_IMG_HEADER_SIZE, h->payload_offset) ||
            !disjoint(f->offset, f->size, h->table_offset, table_len) ||
            !disjoint(f->offset, f->size, h->manifest_offset, h->manifest_size))
            return el_errorf(EL_E_INVALID, "%s: manifest: file '%s' at %llu (%llu bytes) is not "
                             "between the header and the payload or overlaps the table or "
                             "manifest", name, f->name, (unsigned long long)f->offset,
                             (unsigned long long)f->size);
        for (uint32_t k = 0; k < out->side_count; k++) {
            if (!strcmp(out->side[k].name, f->name))
                return el_errorf(EL_E_INVALID, "%s: manifest: file '%s' listed twice", name, f->name);
            if (!disjoint(f->offset, f->size, out->side[k].offset, out->side[k].size))
                return el_errorf(EL_E_INVALID, "%s: manifest: files '%s' and '%s' overlap", name,
                                 out->side[k].name, f->name);
        }
        out->side_count++;
    }
    return EL_OK;
}

static el_status parse_model(const cJSON *jm, const char *name, el_img_meta *out) {
    if (!cJSON_IsObject(jm))
        return el_errorf(EL_E_INVALID, "%s: manifest: model: expected an object", name);
    const cJSON *fl = jget(jm, "flags");
    if (fl && !cJSON_IsArray(fl))
        return el_errorf(EL_E_INVALID, "%s: manifest: model.flags: expected a list", name);
    for (const cJSON *c = fl ? fl->child : NULL; c; c = c->next) {
        if (cJSON_IsString(c) && !strcmp(c->valuestring, "rope_interleaved")) {
            out->model_flags |= EL_MODEL_ROPE_INTERLEAVED;
            continue;
        }
        char got[96];
        return el_errorf(EL_E_UNSUPPORTED, "%s: manifest: model.flags: unknown flag %s", name,
                         el_json_describe(c, got, sizeof got));
    }
    el_status s = want_str(jget(jm, "source_format"), sizeof out->source_format, name,
                           "model.source_format", out->source_format);
    if (s != EL_OK) return s;
    const cJSON *cfg = jget(jm, "config");
    if (cfg && !cJSON_IsNull(cfg)) {
        if (!cJSON_IsObject(cfg))
            return el_errorf(EL_E_INVALID, "%s: manifest: model.config: expected an object", name);
        out->config_json = cJSON_PrintUnformatted(cfg);
        if (!out->config_json) return el_errorf(EL_E_NOMEM, "out of memory");
    }
    return EL_OK;
}

el_status el_img_manifest_parse(const char *json, size_t len, const el_img_header *h,
                                const char *name, el_img_meta *out) {
    uint32_t crc = el_crc32c(0, json, len);
    if (len != h->manifest_size || crc != h->manifest_crc)
        return el_errorf(EL_E_INVALID, "%s: manifest_crc: manifest CRC32C 0x%08x, the header says "
                         "0x%08x: the manifest is corrupt", name, crc, h->manifest_crc);
    cJSON *root = NULL;
    char fname[1100];
    snprintf(fname, sizeof fname, "%s: manifest", name);
    el_status s = el_json_parse(json, len, fname, &root);
    if (s != EL_OK) return s;
    char fmt[32];
    uint64_t v = 0;
    const cJSON *pl = jget(root, "payload"), *pk = jget(root, "pack"), *plan = jget(root, "plan");
    if (!cJSON_IsObject(root))
        s = el_errorf(EL_E_INVALID, "%s: manifest: expected a JSON object", name);
    if (s == EL_OK) s = want_str(jget(root, "format"), sizeof fmt, name, "format", fmt);
    if (s == EL_OK && strcmp(fmt, "edgeload-image"))
        s = el_errorf(EL_E_INVALID, "%s: manifest: format: expected 'edgeload-image', got '%s'",
                      name, fmt);
    if (s == EL_OK && !cJSON_IsObject(pl))
        s = el_errorf(EL_E_INVALID, "%s: manifest: payload: expected an object", name);
    if (s == EL_OK) s = want_u64(jget(pl, "size"), 1ull << 53, name, "payload.size", &v);
    if (s == EL_OK && v != h->payload_size)
        s = el_errorf(EL_E_INVALID, "%s: manifest: payload.size %llu, header payload_size %llu",
                      name, (unsigned long long)v, (unsigned long long)h->payload_size);
    if (s == EL_OK) s = want_u64(jget(pl, "tensor_alignment"), 1u << 20, name,
                                 "payload.tensor_alignment", &v);
    if (s == EL_OK && v != EL_TENSOR_ALIGN)
        s = el_errorf(EL_E_UNSUPPORTED, "%s: manifest: payload.tensor_alignment %llu, this "
                      "edgeload lays weights out at %u", name, (unsigned long long)v, EL_TENSOR_ALIGN);
    if (s == EL_OK && !cJSON_IsObject(pk))
        s = el_errorf(EL_E_INVALID, "%s: manifest: pack: expected an object", name);
    if (s == EL_OK) s = want_str(jget(pk, "codec"), sizeof out->pack_codec, name, "pack.codec",
                                 out->pack_codec);
    if (s == EL_OK) s = want_str(jget(pk, "dtype"), sizeof out->pack_dtype, name, "pack.dtype",
                                 out->pack_dtype);
    if (s == EL_OK) s = want_u64(jget(pk, "chunk_size"), EL_IMG_CHUNK_MAX, name, "pack.chunk_size", &v);
    if (s == EL_OK && v != h->chunk_size)
        s = el_errorf(EL_E_INVALID, "%s: manifest: pack.chunk_size %llu, header chunk_size %llu",
                      name, (unsigned long long)v, (unsigned long long)h->chunk_size);
    if (s == EL_OK) s = want_str(jget(root, "producer"), sizeof out->producer, name, "producer",
                                 out->producer);
    if (s == EL_OK && plan && cJSON_IsObject(plan) && jget(plan, "total"))
        s = want_u64(jget(plan, "total"), 1ull << 53, name, "plan.total", &out->plan_total);
    if (s == EL_OK) s = parse_model(jget(root, "model"), name, out);
    if (s == EL_OK) s = parse_tensors(jget(root, "tensors"), h, name, &out->tensors);
    if (s == EL_OK) s = parse_files(jget(root, "files"), h, name, out);
    cJSON_Delete(root);
    return s;
}

/* ---- whole metadata ---------------------------------------------------------------------- */

void el_img_meta_free(el_img_meta *m) {
    if (!m) return;
    free(m->chunks);
    free(m->config_json);
    el_tensor_table_free(&m->tensors);
    memset(m, 0, sizeof *m);
}

el_status el_img_meta_parse_memory(const uint8_t *img, size_t len, const char *name,
                                   el_img_meta *out) {
    memset(out, 0, sizeof *out);
    el_status s = el_img_header_parse(img, len, name, &out->h);
    if (s != EL_OK) return s;
    const el_img_header *h = &out->h;
    size_t tlen = (size_t)h->chunk_count * EL_IMG_ENTRY_SIZE;
    out->chunks = malloc(tlen ? tlen : 1);
    if (!out->chunks) return el_errorf(EL_E_NOMEM, "out of memory");
    s = el_img_table_parse(img + h->table_offset, tlen, h, name, out->chunks);
    if (s == EL_OK)
        s = el_img_manifest_parse((const char *)img + h->manifest_offset, (size_t)h->manifest_size,
                                  h, name, out);
    if (s != EL_OK) el_img_meta_free(out);
    return s;
}

el_status el_img_meta_read(el_file *f, uint64_t base, el_img_meta *out) {
    memset(out, 0, sizeof *out);
    if (base > f->size)
        return el_errorf(EL_E_INVALID, "%s: --offset %llu is past the end (%llu bytes)", f->path,
                         (unsigned long long)base, (unsigned long long)f->size);
    uint8_t raw[EL_IMG_HEADER_SIZE];
    uint64_t avail = f->size - base;
    el_status s = EL_OK;
    if (avail >= EL_IMG_HEADER_SIZE) s = el_file_read_at(f, raw, sizeof raw, base);
    if (s != EL_OK) return s;
    if ((s = el_img_header_parse(raw, avail, f->path, &out->h)) != EL_OK) return s;
    const el_img_header *h = &out->h;
    size_t tlen = (size_t)h->chunk_count * EL_IMG_ENTRY_SIZE;
    uint8_t *tbl = malloc(tlen ? tlen : 1);
    char *man = malloc((size_t)h->manifest_size);
    out->chunks = malloc(tlen ? tlen : 1);
    if (!tbl || !man || !out->chunks) s = el_errorf(EL_E_NOMEM, "out of memory");
    if (s == EL_OK) s = el_file_read_at(f, tbl, tlen, base + h->table_offset);
    if (s == EL_OK) s = el_img_table_parse(tbl, tlen, h, f->path, out->chunks);
    if (s == EL_OK) s = el_file_read_at(f, man, (size_t)h->manifest_size, base + h->manifest_offset);
    if (s == EL_OK) s = el_img_manifest_parse(man, (size_t)h->manifest_size, h, f->path, out);
    free(tbl);
    free(man);
    if (s != EL_OK) el_img_meta_free(out);
    return s;
}

const char *el_img_chunk_where(const el_img_meta *m, const el_tensor_table *tensors,
                               uint32_t ci, char *buf, size_t cap) {
    const el_img_chunk *c = &m->chunks[ci];
    uint64_t lo = (uint64_t)ci * m->h.chunk_size, hi = lo + c->raw_size;
    int n = snprintf(buf, cap, "chunk %u (image offset %llu, %u stored bytes, %s; payload "
                     "bytes %llu..%llu; tensors", ci, (unsigned long long)c->offset,
                     c->stored_size, el_img_codec_name(c->codec), (unsigned long long)lo,
                     (unsigned long long)hi);
    size_t len = n > 0 && (size_t)n < cap ? (size_t)n : cap - 1;
    /* Tensors overlapping [lo, hi): binary search for the first that ends after lo. */
    const el_tensor *t = tensors->items;
    size_t a = 0, b = tensors->count, shown = 0;
    while (a < b) {
        size_t mid = (a + b) / 2;
        if (t[mid].arena_offset + t[mid].nbytes <= lo) a = mid + 1; else b = mid;
    }
    for (size_t i = a; i < tensors->count && t[i].arena_offset < hi; i++) {
        if (t[i].nbytes == 0) continue;
        if (len + 80 >= cap) {
            n = snprintf(buf + len, cap - len, " ...");
            len += n > 0 ? (size_t)n : 0;
            break;
        }
        n = snprintf(buf + len, cap - len, "%s %s", shown ? "," : "", t[i].name);
        if (n > 0) len = len + (size_t)n < cap ? len + (size_t)n : cap - 1;
        shown++;
    }
    if (!shown && len + 8 < cap) len += (size_t)snprintf(buf + len, cap - len, " (padding)");
    if (len + 2 < cap) snprintf(buf + len, cap - len, ")");
    return buf;
}

/* ---- decoding ----------------------------------------------------------------------------- */

void el_img_shuffle(const uint8_t *src, uint8_t *dst, size_t n, unsigned elem) {
    size_t k = elem ? n / elem : 0;
    for (unsigned b = 0; b < elem; b++)
        for (size_t i = 0; i < k; i++) dst[b * k + i] = src[i * elem + b];
    memcpy(dst + k * elem, src + k * elem, n - k * elem);
}

/* Elements [0, k & ~15) of a 2- or 4-byte unshuffle, 16 at a time (SSE2 unpacks, NEON
 * interleaving stores); returns how many it did. */
static size_t unshuffle_vec(const uint8_t *src, uint8_t *dst, size_t k, unsigned elem) {
    size_t i = 0;
#if defined(__x86_64__)
    if (elem == 2) {
        for (; i + 16 <= k; i += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(src + k + i));
            _mm_storeu_si128((__m128i *)(dst + 2 * i), _mm_unpacklo_epi8(a, b));
            _mm_storeu_si128((__m128i *)(dst + 2 * i + 16), _mm_unpackhi_epi8(a, b));
        }
    } else if (elem == 4) {
        for (; i + 16 <= k; i += 16) {
            __m128i a = _mm_loadu_si128((const __m128i *)(src + i));
            __m128i b = _mm_loadu_si128((const __m128i *)(src + k + i));
            __m128i c = _mm_loadu_si128((const __m128i *)(src + 2 * k + i));
            __m128i d = _mm_loadu_si128((const __m128i *)(src + 3 * k + i));
            __m128i ab0 = _mm_unpacklo_epi8(a, b), ab1 = _mm_unpackhi_epi8(a, b);
            __m128i cd0 = _mm_unpacklo_epi8(c, d), cd1 = _mm_unpackhi_epi8(c, d);
            _mm_storeu_si128((__m128i *)(dst + 4 * i), _mm_unpacklo_epi16(ab0, cd0));
            _mm_storeu_si128((__m128i *)(dst + 4 * i + 16), _mm_unpackhi_epi16(ab0, cd0));
            _mm_storeu_si128((__m128i *)(dst + 4 * i + 32), _mm_unpacklo_epi16(ab1, cd1));
            _mm_storeu_si128((__m128i *)(dst + 4 * i + 48), _mm_unpackhi_epi16(ab1, cd1));
        }
    }
#elif defined(__aarch64__)
    if (elem == 2) {
        for (; i + 16 <= k; i += 16) {
            uint8x16x2_t v = {{vld1q_u8(src + i), vld1q_u8(src + k + i)}};
            vst2q_u8(dst + 2 * i, v);
        }
    } else if (elem == 4) {
        for (; i + 16 <= k; i += 16) {
            uint8x16x4_t v = {{vld1q_u8(src + i), vld1q_u8(src + k + i),
                               vld1q_u8(src + 2 * k + i), vld1q_u8(src + 3 * k + i)}};
            vst4q_u8(dst + 4 * i, v);
        }
    }
#else
    (void)src, (void)dst, (void)k, (void)elem;
#endif
    return i;
}

void el_img_unshuffle(const uint8_t *src, uint8_t *dst, size_t n, unsigned elem) {
    size_t k = elem ? n / elem : 0;
    if (elem == 2) {
        const uint8_t *p0 = src, *p1 = src + k;
        for (size_t i = unshuffle_vec(src, dst, k, 2); i < k; i++) {
            dst[2 * i] = p0[i];
            dst[2 * i + 1] = p1[i];
        }
    } else if (elem == 4) {
        const uint8_t *p0 = src, *p1 = src + k, *p2 = src + 2 * k, *p3 = src + 3 * k;
        for (size_t i = unshuffle_vec(src, dst, k, 4); i < k; i++) {
            uint32_t v = (uint32_t)p0[i] | ((uint32_t)p1[i] << 8) | ((uint32_t)p2[i] << 16) |
                         ((uint32_t)p3[i] << 24);
            memcpy(dst + 4 * i, &v, 4);
        }
    } else {
        for (unsigned b = 0; b < elem; b++)
            for (size_t i = 0; i < k; i++) dst[i * elem + b] = src[b * k + i];
    }
    memcpy(dst + k * elem, src + k * elem, n - k * elem);
}

int el_img_decode(const el_img_chunk *c, const uint8_t *stored, uint8_t *dst, uint8_t *scratch) {
    if (el_crc32c(0, stored, c->stored_size) != c->crc_stored) return 1;
    if (c->codec == EL_IMG_CODEC_NONE) {
        /* Stored bytes are the raw bytes: the table parser checked crc_raw == crc_stored. */
        if (dst != stored) memcpy(dst, stored, c->raw_size);
        return 0;
    } else {
        int r = LZ4_decompress_safe((const char *)stored, (char *)dst, (int)c->stored_size,
                                    (int)c->raw_size);
        if (r < 0 || (uint32_t)r != c->raw_size) return 2;
        if (c->codec == EL_IMG_CODEC_SHUFFLE_LZ4 && c->elem_size > 1) {
            memcpy(scratch, dst, c->raw_size);
            el_img_unshuffle(scratch, dst, c->raw_size, c->elem_size);
        }
    }
    return el_crc32c(0, dst, c->raw_size) == c->crc_raw ? 0 : 3;
}

/* ---- the model side ------------------------------------------------------------------------ */

/* Checks each stored file's CRC32C in bounded pieces. Nothing is copied: the files are
 * read in place, through windows onto the image (el_image_side_file). */
static el_status check_side_files(el_model *m, el_image *img) {
    el_file *f = &m->files[0];
    uint8_t piece[16384];
    for (uint32_t i = 0; i < img->meta.side_count; i++) {
        const el_img_side *sf = &img->meta.side[i];
        uint32_t crc = 0;
        for (uint64_t done = 0; done < sf->size;) {
            size_t n = sf->size - done < sizeof piece ? (size_t)(sf->size - done) : sizeof piece;
            el_status s = el_file_read_at(f, piece, n, img->base + sf->offset + done);
            if (s != EL_OK) return s;
            crc = el_crc32c(crc, piece, n);
            done += n;
        }
        if (crc != sf->crc)
            return el_errorf(EL_E_INVALID, "%s: file '%s' stored in the image (offset %llu, %llu "
                             "bytes): CRC32C 0x%08x, the manifest says 0x%08x: corrupt", f->path,
                             sf->name, (unsigned long long)sf->offset,
                             (unsigned long long)sf->size, crc, sf->crc);
    }
    return EL_OK;
}

static el_status tok_src_read(void *ctx, void *dst, size_t n, uint64_t off) {
    const el_image *img = ctx;
    if (off > img->tok_src.size || n > img->tok_src.size - off)
        return el_errorf(EL_E_IO, "%s: read past the stored tokenizer.gguf", img->tok_src.f->path);
    return el_file_read_at(img->tok_src.f, dst, n, img->tok_src.off + off);
}

/* The stored tokenizer.gguf (pack's copy of a GGUF source's tokenizer.* metadata), parsed
 * and validated like any GGUF header; read in place later by the GGUF tokenizer. */
static el_status open_tok_gguf(el_model *m, el_image *img) {
    for (uint32_t i = 0; i < img->meta.side_count; i++) {
        const el_img_side *sf = &img->meta.side[i];
        if (strcmp(sf->name, "tokenizer.gguf")) continue;
        img->tok_src.f = &m->files[0];
        img->tok_src.off = img->base + sf->offset;
        img->tok_src.size = sf->size;
        snprintf(img->tok_src.name, sizeof img->tok_src.name, "%.1000s: stored tokenizer.gguf",
                 m->path);
        el_gguf_source src = {tok_src_read, img, sf->size, img->tok_src.name};
        return el_gguf_parse(&src, &img->tok_gguf);
    }
    return EL_OK;
}

el_status el_image_open(el_model *m, uint64_t base) {
    el_image *img = calloc(1, sizeof *img);
    if (!img) return el_errorf(EL_E_NOMEM, "out of memory");
    img->base = base;
    m->image = img;
    el_status s = el_img_meta_read(&m->files[0], base, &img->meta);
    if (s != EL_OK) return s;
    /* The tensor table moves to the model. */
    el_tensor_table_free(&m->tensors);
    m->tensors = img->meta.tensors;
    memset(&img->meta.tensors, 0, sizeof img->meta.tensors);
    if (img->meta.config_json) {
        char fname[1100];
        snprintf(fname, sizeof fname, "%s: manifest model.config", m->path);
        s = el_config_parse(img->meta.config_json, strlen(img->meta.config_json), fname, &m->config);
        if (s != EL_OK) return s;
        m->has_config = true;
    }
    m->flags = img->meta.model_flags;
    snprintf(m->format, sizeof m->format, "%s", img->meta.source_format);
    if ((s = check_side_files(m, img)) != EL_OK) return s;
    return open_tok_gguf(m, img);
}

void el_image_close(el_model *m) {
    el_image *img = m ? m->image : NULL;
    if (!img) return;
    el_img_meta_free(&img->meta);
    el_gguf_free(img->tok_gguf);
    free(img);
    m->image = NULL;
}

bool el_image_side_file(const el_model *m, const char *name, char *path, size_t cap) {
    const el_image *img = m->image;
    for (uint32_t i = 0; img && i < img->meta.side_count; i++) {
        const el_img_side *sf = &img->meta.side[i];
        if (strcmp(sf->name, name)) continue;
        return el_file_window_path(path, cap, m->files[0].path, img->base + sf->offset,
                                   sf->size, sf->name);
    }
    return false;
}

void el_image_staging(const el_img_meta *m, unsigned *threads, uint64_t *slot_bytes) {
    /* One CPU stays with the I/O thread: a decode worker spinning for its next job on the
     * I/O thread's core halves the read rate (measured on 2 CPUs). */
    unsigned n = el_cpu_count() > 1 ? el_cpu_count() - 1 : 1;
    if (n > EL_IMG_DECODE_THREADS_MAX) n = EL_IMG_DECODE_THREADS_MAX;
    if (n > m->h.chunk_count) n = m->h.chunk_count;
    if (n < 1) n = 1;
    uint32_t largest = 0;
    for (uint32_t i = 0; i < m->h.chunk_count; i++)
        if (m->chunks[i].codec != EL_IMG_CODEC_NONE && m->chunks[i].raw_size > largest)
            largest = m->chunks[i].raw_size;
    *threads = n;
    *slot_bytes = ((uint64_t)largest + EL_IMG_ALIGN - 1) & ~(uint64_t)(EL_IMG_ALIGN - 1);
}

el_status el_image_plan(const el_model *m, el_plan *p) {
    const el_image *img = m->image;
    el_dtype want = p->params.dtype;
    for (size_t i = 0; i < m->tensors.count && want != EL_DT_NONE; i++) {
        const el_tensor *t = &m->tensors.items[i];
        if (el_plan_tensor_dtype(t, want) != t->dtype)
            return el_errorf(EL_E_USAGE, "%s: the image holds '%s' as %s; --dtype %s would need a "
                             "conversion, and an image is placed as packed: repack with "
                             "`edgeload pack SOURCE --dtype %s`", m->path, t->name,
                             el_dtype_name(t->dtype), el_dtype_name(want), el_dtype_name(want));
    }
    uint64_t slot = 0, staging = 0, stored = 0;
    unsigned n = 1;
    el_image_staging(&img->meta, &n, &slot);
    staging = slot * 2u * n; /* slot <= 1 GiB, n <= 4 */
    for (uint32_t i = 0; i < img->meta.h.chunk_count; i++) stored += img->meta.chunks[i].stored_size;
    if (p->region_bytes[EL_REGION_WEIGHTS] < img->meta.h.payload_size)
        return el_errorf(EL_E_INVALID, "%s: payload of %llu bytes does not match the weights "
                         "layout (%llu bytes)", m->path, (unsigned long long)img->meta.h.payload_size,
                         (unsigned long long)p->region_bytes[EL_REGION_WEIGHTS]);
    p->params.chunk_bytes = img->meta.h.chunk_size;
    p->region_bytes[EL_REGION_STAGING] = staging;
    p->read_bytes = stored;
    return EL_OK;
}
