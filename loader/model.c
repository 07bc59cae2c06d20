/* model.c - el_model_open: finds the model's files, reads and validates every header
 * (safetensors, sharded index, llama2.c checkpoint, config.json) and builds the tensor
 * table in file order. Reads no weight bytes; heap use is bounded by the headers. */
#include "loader/formats/gguf.h"
#include "loader/image.h"
#include "loader/model_impl.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define EL_INDEX_MAX (64u * 1024u * 1024u)  /* bytes of index JSON accepted */
#define EL_CONFIG_MAX (16u * 1024u * 1024u) /* bytes of config.json accepted */

static bool is_dir(const char *p) {
    if (el_storage_active()) return false; /* storage callbacks have no folders */
    struct stat st;
    return stat(p, &st) == 0 && S_ISDIR(st.st_mode);
}

static bool is_file(const char *p) {
    if (el_storage_active()) return el_storage_exists(p);
    struct stat st;
    return stat(p, &st) == 0 && !S_ISDIR(st.st_mode);
}

static el_status join_path(char *out, size_t cap, const char *dir, const char *name) {
    int n = snprintf(out, cap, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= cap)
        return el_errorf(EL_E_USAGE, "path too long: %s/%s", dir, name);
    return EL_OK;
}


el_status el_model_add_file(el_model *m, const char *path, uint32_t *index) {
    if (m->file_count >= EL_MAX_FILES)
        return el_errorf(EL_E_UNSUPPORTED, "%s: more than %u files in one model", path,
                         EL_MAX_FILES);
    el_file *f = &m->files[m->file_count];
    el_status s = el_file_open(f, path, 0);
    if (s != EL_OK) return s;
    *index = m->file_count++;
    return EL_OK;
}

long el_model_find(const el_model *m, const char *name) {
    for (size_t i = 0; i < m->tensors.count; i++)
        if (!strcmp(m->tensors.items[i].name, name)) return (long)i;
    return -1;
}

/* Reads a whole small file (a JSON document) of at most max bytes into a malloc'd buffer. */
static el_status read_small(const char *path, size_t max, char **out, size_t *len) {
    el_file f;
    el_status s = el_file_open(&f, path, 0);
    if (s != EL_OK) return s;
    if (f.size > max) {
        el_file_close(&f);
        return el_errorf(EL_E_INVALID, "%s: %llu bytes, more than the %zu accepted", path,
                         (unsigned long long)f.size, max);
    }
    char *buf = malloc((size_t)f.size + 1);
    if (!buf) {
        el_file_close(&f);
        return el_errorf(EL_E_NOMEM, "%s: cannot allocate %llu bytes", path,
                         (unsigned long long)f.size);
    }
    s = f.size ? el_file_read_at(&f, buf, (size_t)f.size, 0) : EL_OK;
    el_file_close(&f);
    if (s != EL_OK) {
        free(buf);
        return s;
    }
    buf[f.size] = 0;
    *out = buf;
    *len = (size_t)f.size;
    return EL_OK;
}

/* Parses the header of files[index] (a safetensors file) into m->tensors. */
static el_status read_safetensors_header(el_model *m, uint32_t index) {
    el_file *f = &m->files[index];
    uint8_t prefix[8];
    if (f->size < 8)
        return el_errorf(EL_E_INVALID, "%s: %llu bytes, too short for a safetensors header",
                         f->path, (unsigned long long)f->size);
    el_status s = el_file_read_at(f, prefix, 8, 0);
    if (s != EL_OK) return s;
    uint64_t json_len;
    s = el_st_check_prefix(prefix, f->size, f->path, &json_len);
    if (s != EL_OK) return s;
    char *json = malloc((size_t)json_len + 1);
    if (!json)
        return el_errorf(EL_E_NOMEM, "%s: cannot allocate %llu header bytes", f->path,
                         (unsigned long long)json_len);
    s = el_file_read_at(f, json, (size_t)json_len, 8);
    if (s == EL_OK) {
        json[json_len] = 0;
        uint64_t data_start = 8 + json_len;
        s = el_st_parse_header(json, (size_t)json_len, data_start, f->size - data_start, index,
                               f->path, &m->tensors);
    }
    free(json);
    return s;
}

static el_status open_sharded(el_model *m, const char *index_path) {
    char *json = NULL;
    size_t len = 0;
    el_status s = read_small(index_path, EL_INDEX_MAX, &json, &len);
    if (s != EL_OK) return s;
    el_st_index idx;
    memset(&idx, 0, sizeof idx);
    s = el_st_index_parse(json, len, index_path, &idx);
    free(json);
    if (s != EL_OK) return s;
    char dir[1024], shard[1200];
    el_path_dir(index_path, dir, sizeof dir);
    /* Every shard is opened and its header validated before any weight is read. */
    for (size_t i = 0; s == EL_OK && i < idx.shard_count; i++) {
        uint32_t fi = 0;
        s = join_path(shard, sizeof shard, dir, idx.shards[i]);
        if (s == EL_OK && !is_file(shard))
            s = el_errorf(EL_E_INVALID, "%s: shard '%s' listed in the index is missing",
                          index_path, idx.shards[i]);
        if (s == EL_OK) s = el_model_add_file(m, shard, &fi);
        if (s == EL_OK) s = read_safetensors_header(m, fi);
    }
    if (s == EL_OK) s = el_st_index_check(&idx, &m->tensors, index_path);
    el_st_index_free(&idx);
    snprintf(m->format, sizeof m->format, "safetensors-sharded");
    return s;
}

static el_status open_config(el_model *m, const char *dir) {
    char path[1200];
    el_status s = join_path(path, sizeof path, dir, "config.json");
    if (s != EL_OK || !is_file(path)) return EL_OK; /* optional */
    char *json = NULL;
    size_t len = 0;
    s = read_small(path, EL_CONFIG_MAX, &json, &len);
    if (s != EL_OK) return s;
    s = el_config_parse(json, len, path, &m->config);
    free(json);
    if (s == EL_OK) m->has_config = true;
    return s;
}

static int cmp_file_order(const void *a, const void *b) {
    const el_tensor *x = a, *y = b;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    if (x->offset != y->offset) return x->offset < y->offset ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* An .elimg image at offset (> 0) in path: opens it into m; not an image there is an
 * error, since --offset only means something for images (at offset 0, open_file finds the
 * magic among the first bytes it reads anyway). */
static el_status open_image(el_model *m, const char *path, uint64_t offset) {
    el_file f;
    el_status s = el_file_open(&f, path, 0);
    if (s != EL_OK) return s;
    uint8_t magic[EL_IMG_MAGIC_LEN] = {0};
    bool ok = offset <= f.size && f.size - offset >= sizeof magic &&
              el_file_read_at(&f, magic, sizeof magic, offset) == EL_OK && el_img_magic_ok(magic);
    el_file_close(&f);
    if (!ok)
        return el_errorf(EL_E_INVALID, "%s: no edgeload image at --offset %llu (magic "
                         "\"ELIMG\\0\\r\\n\" not found there)", path, (unsigned long long)offset);
    uint32_t fi = 0;
    if ((s = el_model_add_file(m, path, &fi)) != EL_OK) return s;
    return el_image_open(m, offset);
}

/* Decides the format of a single file from its first bytes. */
static el_status open_file(el_model *m, const char *path) {
    uint32_t fi = 0;
    el_status s = el_model_add_file(m, path, &fi);
    if (s != EL_OK) return s;
    el_file *f = &m->files[fi];
    uint8_t head[28];
    memset(head, 0, sizeof head);
    size_t n = f->size < sizeof head ? (size_t)f->size : sizeof head;
    if (n > 0 && (s = el_file_read_at(f, head, n, 0)) != EL_OK) return s;
    uint64_t json_len;
    if (n >= EL_IMG_MAGIC_LEN && el_img_magic_ok(head)) return el_image_open(m, 0);
    if (n >= 4 && !memcmp(head, "GGUF", 4)) return el_gguf_model_open(m);
    if (n > 8 && head[8] == '{') {
        s = el_st_check_prefix(head, f->size, path, &json_len);
        if (s != EL_OK) return s;
        snprintf(m->format, sizeof m->format, "safetensors");
        return read_safetensors_header(m, fi);
    }
    if (n == sizeof head && el_llama2c_detect(head, f->size)) return el_llama2c_read(m);
    return el_errorf(EL_E_INVALID,
                     "%s: not a safetensors file (no '{' after the 8-byte length), not GGUF "
                     "(no \"GGUF\" magic) and not a llama2.c checkpoint (header does not "
                     "match the file size)",
                     path);
}

el_status el_model_open(const char *path, const el_model_open_params *params, el_model **out) {
    if (!path || !out) return el_errorf(EL_E_USAGE, "el_model_open: NULL argument");
    *out = NULL;
    el_model *m = calloc(1, sizeof *m);
    if (!m) return el_errorf(EL_E_NOMEM, "cannot allocate the model object");
    /* files[i] is valid below file_count only: the rest (EL_MAX_FILES x 1 KiB) stays
     * untouched, so its pages never count in RSS (calloc's fresh mapping). */
    m->files[0].fd = -1;
    m->config.bos_token_id = m->config.eos_token_id = m->config.pad_token_id = -1;
    snprintf(m->path, sizeof m->path, "%s", path);
    if (params && params->tokenizer_path)
        snprintf(m->tokenizer_path, sizeof m->tokenizer_path, "%s", params->tokenizer_path);

    char dir[1024], p[1200];
    el_status s = EL_OK;
    if (is_dir(path)) {
        snprintf(dir, sizeof dir, "%s", path);
        if ((s = join_path(p, sizeof p, dir, "model.safetensors.index.json")) == EL_OK &&
            is_file(p)) {
            s = open_sharded(m, p);
        } else if (s == EL_OK && (s = join_path(p, sizeof p, dir, "model.safetensors")) == EL_OK) {
            if (is_file(p))
                s = open_file(m, p);
            else
                s = el_errorf(EL_E_INVALID,
                              "%s: no model.safetensors or model.safetensors.index.json in "
                              "this folder",
                              path);
        }
    } else if (!is_file(path)) {
        s = el_errorf(EL_E_IO, "%s: %s", path, strerror(errno));
    } else if (params && params->offset) {
        s = open_image(m, path, params->offset); /* --offset: only images have one */
    } else {
        el_path_dir(path, dir, sizeof dir);
        size_t pl = strlen(path);
        if (pl >= 11 && !strcmp(path + pl - 11, ".index.json"))
            s = open_sharded(m, path);
        else
            s = open_file(m, path);
    }
    /* A llama2.c checkpoint carries its config in its header; others read config.json. */
    if (s == EL_OK && !m->has_config && !m->image && !m->gguf) s = open_config(m, dir);
    if (s == EL_OK) {
        /* An image's table is already in payload order (its layout depends on that order). */
        if (!m->image && m->tensors.count) /* (a GGUF file may hold no tensor) */
            qsort(m->tensors.items, m->tensors.count, sizeof(el_tensor), cmp_file_order);
        for (size_t i = 0; el_families[i] && !m->family; i++)
            if (el_families[i]->detect(el_families[i], m)) m->family = el_families[i];
        if (m->family && m->family->open) s = m->family->open(m);
    }
    if (s != EL_OK) {
        el_model_close(m);
        return s;
    }
    *out = m;
    return EL_OK;
}

void el_model_close(el_model *m) {
    if (!m) return;
    if (m->family && m->family->close) m->family->close(m);
    el_image_close(m);
    el_gguf_free(m->gguf);
    for (uint32_t i = 0; i < m->file_count; i++) el_file_close(&m->files[i]);
    el_tensor_table_free(&m->tensors);
    el_config_free(&m->config);
    free(m);
}

const char *el_model_format(const el_model *m) { return m->image ? "elimg" : m->format; }

const char *el_model_family(const el_model *m) {
    return m->family ? m->family->name : "generic";
}

size_t el_model_file_count(const el_model *m) { return m->file_count; }

const char *el_model_file_path(const el_model *m, size_t i) {
    return i < m->file_count ? m->files[i].path : NULL;
}

uint64_t el_model_file_size(const el_model *m, size_t i) {
    return i < m->file_count ? m->files[i].size : 0;
}

size_t el_model_tensor_count(const el_model *m) { return m->tensors.count; }

static void fill_info(const el_tensor *t, el_tensor_info *out) {
    out->name = t->name;
    out->dtype = t->dtype;
    out->ndim = t->ndim;
    memcpy(out->shape, t->shape, sizeof out->shape);
    out->nbytes = t->nbytes;
    out->file_index = t->file;
    out->file_offset = t->offset;
    out->loaded_dtype = t->loaded_dtype;
    out->data = t->data;
    out->cpu_tiles = t->x8;
}

el_status el_model_tensor(const el_model *m, size_t i, el_tensor_info *out) {
    if (i >= m->tensors.count)
        return el_errorf(EL_E_USAGE, "tensor index %zu out of range (%zu tensors)", i,
                         m->tensors.count);
    fill_info(&m->tensors.items[i], out);
    return EL_OK;
}

el_status el_model_tensor_find(const el_model *m, const char *name, el_tensor_info *out) {
    long i = el_model_find(m, name);
    if (i < 0) return el_errorf(EL_E_INVALID, "%s: no tensor named '%s'", m->path, name);
    fill_info(&m->tensors.items[i], out);
    return EL_OK;
}

const el_gguf *el_model_tok_gguf(const el_model *m) {
    if (m->gguf) return m->gguf;
    return m->image ? m->image->tok_gguf : NULL;
}

bool el_model_side_file(const el_model *m, const char *name, char *path, size_t cap) {
    if (m->file_count == 0 || !name || !*name || strchr(name, '/')) return false;
    if (m->image) return el_image_side_file(m, name, path, cap);
    char dir[1024];
    el_path_dir(m->files[0].path, dir, sizeof dir);
    int k = snprintf(path, cap, "%s/%s", dir, name);
    if (k < 0 || (size_t)k >= cap) return false;
    if (el_storage_active()) return el_storage_exists(path);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}
