/* image_pack.c - the image tools: pack (load the source with the normal loader into an
 * arena, cut the weights region into chunks, encode, CRC, write atomically), verify (every
 * CRC, every chunk decoded) and flash (aligned writes to a device, partition or file, fsync,
 * read back and verify). These are host-side tools: they allocate freely; the no-allocation
 * rule is for el_model_load. */
#include "arena/arena.h"
#include "loader/formats/gguf.h"
#include "loader/formats/gguf_write.h"
#include "loader/image.h"
#include "loader/load_impl.h"
#include "platform/crc32c.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <lz4.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define PACK_CHUNK_DEFAULT (1024u * 1024u)
#define CONFIG_MAX (16u * 1024u * 1024u)

static void wr16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void wr64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}

/* Reads a whole file of at most max bytes (malloc'd; *len its size). */
static el_status read_whole(const char *path, uint64_t max, uint8_t **out, size_t *len) {
    el_file f;
    el_status s = el_file_open(&f, path, 0);
    if (s != EL_OK) return s;
    if (f.size > max) {
        el_file_close(&f);
        return el_errorf(EL_E_INVALID, "%s: %llu bytes, more than the %llu an image stores", path,
                         (unsigned long long)f.size, (unsigned long long)max);
    }
    uint8_t *buf = malloc((size_t)f.size + 1);
    if (!buf) s = el_errorf(EL_E_NOMEM, "%s: out of memory", path);
    if (s == EL_OK && f.size) s = el_file_read_at(&f, buf, (size_t)f.size, 0);
    if (s == EL_OK) {
        buf[f.size] = 0;
        *out = buf;
        *len = (size_t)f.size;
    } else {
        free(buf);
    }
    el_file_close(&f);
    return s;
}

el_status el_pack_read_file(const char *path, uint64_t max, uint8_t **out, size_t *len) {
    return read_whole(path, max, out, len);
}

/* ---- manifest ----------------------------------------------------------------------------- */

static cJSON *synth_config(const el_config *c) {
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    if (c->model_type[0]) cJSON_AddStringToObject(o, "model_type", c->model_type);
    if (c->architecture[0]) {
        cJSON *a = cJSON_AddArrayToObject(o, "architectures");
        if (a) cJSON_AddItemToArray(a, cJSON_CreateString(c->architecture));
    }
    if (c->hidden_act[0]) cJSON_AddStringToObject(o, "hidden_act", c->hidden_act);
#define NUM(key, v) if (v) cJSON_AddNumberToObject(o, key, (double)(v))
    NUM("hidden_size", c->hidden_size);
    NUM("intermediate_size", c->intermediate_size);
    NUM("num_hidden_layers", c->num_layers);
    NUM("num_attention_heads", c->num_heads);
    NUM("num_key_value_heads", c->num_kv_heads);
    NUM("head_dim", c->head_dim);
    NUM("vocab_size", c->vocab_size);
    NUM("max_position_embeddings", c->max_positions);
    NUM("type_vocab_size", c->type_vocab_size);
    NUM("rms_norm_eps", c->norm_eps);
    NUM("rope_theta", c->rope_theta);
#undef NUM
    if (c->has_tie_word_embeddings) cJSON_AddBoolToObject(o, "tie_word_embeddings", c->tie_word_embeddings);
    if (c->bos_token_id >= 0) cJSON_AddNumberToObject(o, "bos_token_id", (double)c->bos_token_id);
    if (c->eos_token_id >= 0) cJSON_AddNumberToObject(o, "eos_token_id", (double)c->eos_token_id);
    if (c->pad_token_id >= 0) cJSON_AddNumberToObject(o, "pad_token_id", (double)c->pad_token_id);
    return o;
}

/* The config object: the source's config.json (its content; parsed and re-serialised), the
 * config of an image being repacked, or one synthesised from a header (llama2.c, GGUF).
 * NULL (EL_OK) when the model has none. */
static el_status config_json(const el_model *m, cJSON **out) {
    *out = NULL;
    char path[1200];
    uint8_t *text = NULL;
    size_t len = 0;
    el_status s = EL_OK;
    if (m->image && m->image->meta.config_json) {
        const char *t = m->image->meta.config_json;
        return el_json_parse(t, strlen(t), "config", out);
    }
    if (!m->image && strcmp(m->format, "llama2c") && strcmp(m->format, "gguf") &&
        el_model_side_file(m, "config.json", path, sizeof path)) {
        if ((s = read_whole(path, CONFIG_MAX, &text, &len)) != EL_OK) return s;
        s = el_json_parse((const char *)text, len, path, out);
        free(text);
        return s;
    }
    if (!m->has_config) return EL_OK;
    *out = synth_config(&m->config);
    return *out ? EL_OK : el_errorf(EL_E_NOMEM, "out of memory");
}

static const char *const k_side_names[] = {
    "tokenizer.json", "tokenizer.model", "tokenizer.bin", "tokenizer_config.json",
    "chat_template.jinja", "special_tokens_map.json", "vocab.json", "merges.txt", "vocab.txt",
    "tokenizer.gguf", NULL,
};

typedef struct side_src {
    char name[64];
    char path[1200];
    uint8_t *data;
    size_t len;
} side_src;

static bool side_has(const side_src *s, uint32_t n, const char *name) {
    for (uint32_t i = 0; i < n; i++)
        if (!strcmp(s[i].name, name)) return true;
    return false;
}

static el_status side_add(side_src *s, uint32_t *n, const char *name, const char *path) {
    if (side_has(s, *n, name) || *n >= EL_IMG_SIDE_FILES_MAX) return EL_OK;
    side_src *d = &s[*n];
    snprintf(d->name, sizeof d->name, "%s", name);
    snprintf(d->path, sizeof d->path, "%s", path);
    el_status st = read_whole(path, EL_IMG_SIDE_MAX, &d->data, &d->len);
    if (st == EL_OK) (*n)++;
    return st;
}

/* The files that travel with the model: an explicit --tokenizer, the known tokenizer and
 * vocabulary names next to the source, tok<vocab>.bin (llama2.c). */
static el_status collect_side(const el_model *m, const char *tokenizer_path, side_src *s,
                              uint32_t *n) {
    char path[1200], name[64];
    el_status st = EL_OK;
    if (tokenizer_path) {
        const char *base = strrchr(tokenizer_path, '/');
        base = base ? base + 1 : tokenizer_path;
        snprintf(name, sizeof name, "%s", base);
        if ((st = side_add(s, n, name, tokenizer_path)) != EL_OK) return st;
    }
    for (int i = 0; k_side_names[i] && st == EL_OK; i++)
        if (el_model_side_file(m, k_side_names[i], path, sizeof path))
            st = side_add(s, n, k_side_names[i], path);
    snprintf(name, sizeof name, "tok%u.bin", m->config.vocab_size);
    if (st == EL_OK && m->config.vocab_size && el_model_side_file(m, name, path, sizeof path))
        st = side_add(s, n, name, path);
    /* A GGUF's tokenizer is metadata: its tokenizer.* entries travel as a GGUF of their own. */
    if (st == EL_OK && m->gguf && !tokenizer_path && *n < EL_IMG_SIDE_FILES_MAX &&
        el_gguf_find(m->gguf, "tokenizer.ggml.model")) {
        side_src *d = &s[*n];
        snprintf(d->name, sizeof d->name, "tokenizer.gguf");
        snprintf(d->path, sizeof d->path, "%s (its tokenizer metadata)", m->path);
        st = el_gguf_tokenizer_blob(m, &d->data, &d->len);
        if (st == EL_OK && d->len > EL_IMG_SIDE_MAX)
            st = el_errorf(EL_E_UNSUPPORTED, "%s: %zu bytes, more than a stored file may hold "
                           "(%u)", d->path, d->len, EL_IMG_SIDE_MAX);
        if (st == EL_OK) (*n)++;
    }
    return st;
}

/* Every tokenizer and config file that goes into the image opens the way the runtime will
 * open it (tokenizers against the model's vocabulary, JSON strictly): a corrupt file is
 * refused here instead of baked into an image that verifies. */
static el_status validate_side(const el_model *m, const side_src *s, uint32_t n) {
    uint32_t vocab = m->config.vocab_size;
    for (uint32_t i = 0; i < n; i++) {
        const char *name = s[i].name, *dot = strrchr(name, '.');
        el_status st = EL_OK;
        el_tokenizer *t = NULL;
        if (!strcmp(name, "vocab.json") || !strcmp(name, "merges.txt")) {
            const char *other = name[0] == 'v' ? "merges.txt" : "vocab.json";
            const side_src *o = NULL;
            for (uint32_t k = 0; k < n; k++)
                if (!strcmp(s[k].name, other)) o = &s[k];
            if (!o) continue; /* half a pair is not a tokenizer the runtime would open */
            if (name[0] != 'v') continue; /* the pair is checked once */
            st = el_tokenizer_gpt2_open(s[i].path, o->path, vocab, &t);
        } else if (!strcmp(name, "tokenizer.json") || !strcmp(name, "tokenizer.bin") ||
                   !strcmp(name, "vocab.txt") ||
                   (!strncmp(name, "tok", 3) && dot && !strcmp(dot, ".bin"))) {
            st = el_tokenizer_open(s[i].path, vocab, &t);
        } else if (!strcmp(name, "tokenizer.gguf")) {
            el_gguf_mem mem = {s[i].data, s[i].len};
            el_gguf_source src = {el_gguf_mem_read, &mem, s[i].len, s[i].path};
            el_gguf *g = NULL;
            st = el_gguf_parse(&src, &g);
            if (st == EL_OK) st = el_tokenizer_gguf_open(g, vocab, &t);
            el_tokenizer_close(t);
            t = NULL;
            el_gguf_free(g);
        } else if (dot && !strcmp(dot, ".json")) {
            cJSON *root = NULL;
            st = el_json_parse((const char *)s[i].data, s[i].len, s[i].path, &root);
            cJSON_Delete(root);
        }
        el_tokenizer_close(t);
        if (st != EL_OK) {
            char why[600];
            snprintf(why, sizeof why, "%s", el_last_error());
            return el_errorf(st, "%s; refusing to pack it into an image", why);
        }
    }
    return EL_OK;
}

static cJSON *make_manifest(const el_model *m, const el_plan *plan, const el_image_pack_params *p,
                            uint64_t chunk, uint64_t payload, cJSON *config, const side_src *side,
                            uint32_t nside, const uint64_t *side_off) {
    cJSON *root = cJSON_CreateObject();
    if (!root) return NULL;
    cJSON_AddStringToObject(root, "format", "edgeload-image");
    cJSON_AddStringToObject(root, "producer", "edgeload " EL_VERSION_STRING);
    cJSON *model = cJSON_AddObjectToObject(root, "model");
    if (model) {
        cJSON_AddStringToObject(model, "family", el_model_family(m));
        cJSON_AddStringToObject(model, "source_format", m->format);
        cJSON *fl = cJSON_AddArrayToObject(model, "flags");
        if (fl && (m->flags & EL_MODEL_ROPE_INTERLEAVED))
            cJSON_AddItemToArray(fl, cJSON_CreateString("rope_interleaved"));
        if (config) cJSON_AddItemToObject(model, "config", config);
    }
    cJSON *pk = cJSON_AddObjectToObject(root, "pack");
    if (pk) {
        cJSON_AddStringToObject(pk, "codec", el_img_codec_name(p->codec));
        cJSON_AddNumberToObject(pk, "chunk_size", (double)chunk);
        cJSON_AddStringToObject(pk, "dtype", p->dtype == EL_DT_NONE ? "as-stored" : el_dtype_name(p->dtype));
    }
    cJSON *pl = cJSON_AddObjectToObject(root, "plan");
    if (pl) {
        cJSON_AddNumberToObject(pl, "ctx", plan->params.ctx);
        cJSON_AddNumberToObject(pl, "batch", plan->params.batch);
        cJSON_AddStringToObject(pl, "kv_dtype", el_dtype_name(plan->params.kv_dtype));
        for (int r = 0; r < EL_REGION_COUNT; r++)
            cJSON_AddNumberToObject(pl, el_region_name((el_region)r), (double)plan->region_bytes[r]);
        cJSON_AddNumberToObject(pl, "total", (double)plan->total_bytes);
    }
    cJSON *py = cJSON_AddObjectToObject(root, "payload");
    if (py) {
        cJSON_AddNumberToObject(py, "size", (double)payload);
        cJSON_AddNumberToObject(py, "tensor_alignment", EL_TENSOR_ALIGN);
    }
    cJSON *ts = cJSON_AddArrayToObject(root, "tensors");
    for (size_t i = 0; ts && i < m->tensors.count; i++) {
        const el_tensor *t = &m->tensors.items[i];
        cJSON *o = cJSON_CreateObject();
        if (!o) continue;
        cJSON_AddStringToObject(o, "name", t->name);
        cJSON_AddStringToObject(o, "dtype", el_dtype_name(t->loaded_dtype));
        cJSON *sh = cJSON_AddArrayToObject(o, "shape");
        for (uint32_t d = 0; sh && d < t->ndim; d++)
            cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)t->shape[d]));
        cJSON_AddNumberToObject(o, "offset", (double)t->arena_offset);
        cJSON_AddNumberToObject(o, "bytes", (double)el_tensor_loaded_bytes(t));
        cJSON_AddArrayToObject(o, "flags");
        cJSON_AddItemToArray(ts, o);
    }
    cJSON *fs = cJSON_AddArrayToObject(root, "files");
    for (uint32_t i = 0; fs && i < nside; i++) {
        cJSON *o = cJSON_CreateObject();
        if (!o) continue;
        cJSON_AddStringToObject(o, "name", side[i].name);
        cJSON_AddNumberToObject(o, "offset", (double)side_off[i]);
        cJSON_AddNumberToObject(o, "size", (double)side[i].len);
        cJSON_AddNumberToObject(o, "crc32c", (double)el_crc32c(0, side[i].data, side[i].len));
        cJSON_AddItemToArray(fs, o);
    }
    return root;
}

/* ---- chunks --------------------------------------------------------------------------------- */

/* The element size and dtype of the tensor covering most of [lo, hi) (the shuffle's
 * element size; padding counts for nothing). */
static el_dtype dominant(const el_model *m, uint64_t lo, uint64_t hi) {
    uint64_t best = 0;
    el_dtype dt = EL_DT_U8;
    for (size_t i = 0; i < m->tensors.count; i++) {
        const el_tensor *t = &m->tensors.items[i];
        uint64_t bytes = el_tensor_loaded_bytes(t);
        uint64_t a = t->arena_offset > lo ? t->arena_offset : lo;
        uint64_t b = t->arena_offset + bytes < hi ? t->arena_offset + bytes : hi;
        if (b > a && b - a > best) {
            best = b - a;
            dt = t->loaded_dtype;
        }
    }
    return dt;
}

/* Encodes raw (n bytes) with codec into out (capacity LZ4_compressBound(n)); tmp: n bytes.
 * Keeps "none" when the encoding does not shrink the chunk. */
static void encode(const uint8_t *raw, size_t n, el_img_codec codec, unsigned elem, uint8_t *out,
                   int cap, uint8_t *tmp, el_img_chunk *c) {
    c->codec = EL_IMG_CODEC_NONE;
    c->elem_size = 0;
    c->stored_size = (uint32_t)n;
    if (codec == EL_IMG_CODEC_NONE) return;
    const uint8_t *src = raw;
    if (codec == EL_IMG_CODEC_SHUFFLE_LZ4) {
        el_img_shuffle(raw, tmp, n, elem);
        src = tmp;
    }
    int k = LZ4_compress_default((const char *)src, (char *)out, (int)n, cap);
    if (k <= 0 || (size_t)k >= n) return;
    c->codec = (uint8_t)codec;
    c->elem_size = codec == EL_IMG_CODEC_SHUFFLE_LZ4 ? (uint8_t)elem : 0;
    c->stored_size = (uint32_t)k;
}

/* ---- pack ------------------------------------------------------------------------------------ */

typedef struct pack_out {
    char tmp[1200];
    int fd;
} pack_out;

static el_status write_image(const el_model *m, const el_plan *plan, const el_image_pack_params *p,
                             const uint8_t *payload, uint64_t psize, uint64_t chunk,
                             side_src *side, uint32_t nside, int fd, const char *tmpname,
                             el_image_pack_stats *st) {
    el_status s = EL_OK;
    uint64_t count64 = psize / chunk + (psize % chunk != 0);
    if (count64 > EL_IMG_CHUNKS_MAX)
        return el_errorf(EL_E_USAGE, "%llu chunks: more than %u; use a larger --chunk",
                         (unsigned long long)count64, EL_IMG_CHUNKS_MAX);
    uint32_t count = (uint32_t)count64;
    uint64_t table_off = EL_IMG_HEADER_SIZE, table_len = (uint64_t)count * EL_IMG_ENTRY_SIZE;
    uint64_t pos = table_off + table_len, side_off[EL_IMG_SIDE_FILES_MAX];
    for (uint32_t i = 0; i < nside; i++) {
        pos = (pos + 7) & ~7ull;
        side_off[i] = pos;
        pos += side[i].len;
    }
    uint64_t man_off = (pos + 7) & ~7ull;
    cJSON *config = NULL;
    if ((s = config_json(m, &config)) != EL_OK) return s;
    cJSON *man = make_manifest(m, plan, p, chunk, psize, config, side, nside, side_off);
    char *mtext = man ? cJSON_PrintUnformatted(man) : NULL;
    cJSON_Delete(man);
    if (!mtext) {
        if (!man) cJSON_Delete(config);
        return el_errorf(EL_E_NOMEM, "out of memory building the manifest");
    }
    size_t mlen = strlen(mtext);
    uint64_t payload_off = (man_off + mlen + EL_IMG_ALIGN - 1) & ~(uint64_t)(EL_IMG_ALIGN - 1);

    uint8_t *table = calloc(1, table_len ? (size_t)table_len : 1);
    int cap = LZ4_compressBound((int)chunk);
    uint8_t *out = malloc((size_t)cap), *tmp = malloc((size_t)chunk);
    if (!table || !out || !tmp) s = el_errorf(EL_E_NOMEM, "out of memory");
    uint64_t at = payload_off, last_end = man_off + mlen;
    for (uint32_t ci = 0; s == EL_OK && ci < count; ci++) {
        uint64_t lo = (uint64_t)ci * chunk;
        size_t n = (size_t)(psize - lo < chunk ? psize - lo : chunk);
        el_dtype dt = dominant(m, lo, lo + n);
        el_img_chunk c;
        memset(&c, 0, sizeof c);
        /* Shuffle by element; block types (mixed fields) by byte. */
        unsigned es = el_dtype_is_block(dt) ? 1u : (unsigned)el_dtype_size(dt);
        encode(payload + lo, n, p->codec, es, out, cap, tmp, &c);
        const uint8_t *stored = c.codec == EL_IMG_CODEC_NONE ? payload + lo : out;
        c.raw_size = (uint32_t)n;
        c.offset = at;
        c.crc_stored = el_crc32c(0, stored, c.stored_size);
        c.crc_raw = el_crc32c(0, payload + lo, n);
        s = el_fd_write_at(fd, stored, c.stored_size, at, tmpname);
        uint8_t *e = table + (size_t)ci * EL_IMG_ENTRY_SIZE;
        wr64(e, c.offset);
        wr32(e + 8, c.stored_size);
        wr32(e + 12, c.raw_size);
        e[16] = c.codec;
        e[17] = c.elem_size;
        wr32(e + 20, c.crc_stored);
        wr32(e + 24, c.crc_raw);
        last_end = at + c.stored_size;
        at = (at + c.stored_size + EL_IMG_ALIGN - 1) & ~(uint64_t)(EL_IMG_ALIGN - 1);
        st->raw_bytes[dt] += n;
        st->stored_bytes[dt] += c.stored_size;
        st->raw_total += n;
        st->stored_total += c.stored_size;
        st->chunks_by_codec[c.codec]++;
    }
    /* The image ends at a 4 KiB boundary (flashing stays aligned); the pad after the last
     * chunk (or after the manifest when there is none) is written so the file is exactly
     * image_size long. */
    uint64_t image_size = count ? at : payload_off;
    if (s == EL_OK && image_size > last_end) {
        static const uint8_t zeros[EL_IMG_ALIGN];
        s = el_fd_write_at(fd, zeros, (size_t)(image_size - last_end), last_end, tmpname);
    }
    for (uint32_t i = 0; s == EL_OK && i < nside; i++)
        s = el_fd_write_at(fd, side[i].data, side[i].len, side_off[i], tmpname);
    if (s == EL_OK) s = el_fd_write_at(fd, mtext, mlen, man_off, tmpname);
    if (s == EL_OK) s = el_fd_write_at(fd, table, (size_t)table_len, table_off, tmpname);
    if (s == EL_OK) {
        uint8_t h[EL_IMG_HEADER_SIZE];
        memset(h, 0, sizeof h);
        memcpy(h, EL_IMG_MAGIC, EL_IMG_MAGIC_LEN);
        wr16(h + 8, EL_IMG_VERSION_MAJOR);
        wr16(h + 10, EL_IMG_VERSION_MINOR);
        wr32(h + 12, 0);
        wr32(h + 16, EL_IMG_HEADER_SIZE);
        wr32(h + 20, count);
        wr64(h + 24, man_off);
        wr64(h + 32, mlen);
        wr64(h + 40, table_off);
        wr64(h + 48, payload_off);
        wr64(h + 56, psize);
        wr64(h + 64, chunk);
        wr64(h + 72, image_size);
        wr32(h + 80, el_crc32c(0, mtext, mlen));
        wr32(h + 84, el_crc32c(0, table, (size_t)table_len));
        wr32(h + 124, el_crc32c(0, h, 124));
        s = el_fd_write_at(fd, h, sizeof h, 0, tmpname);
    }
    st->chunks = count;
    st->image_bytes = image_size;
    free(mtext);
    free(table);
    free(out);
    free(tmp);
    return s;
}

/* Loads src into an arena with the normal loader: the weights region is then the payload. */
static el_status load_source(const char *src, const el_image_pack_params *p, el_model **mo,
                             el_plan *plan, el_arena **ao) {
    el_model_open_params op = {.tokenizer_path = p->tokenizer_path, .offset = p->src_offset};
    el_status s = el_model_open(src, &op, mo);
    if (s != EL_OK) return s;
    return el_pack_load_weights(*mo, p->dtype, plan, ao);
}

el_status el_pack_load_weights(el_model *m, el_dtype dtype, el_plan *plan, el_arena **ao) {
    el_plan_params pp = {0, 0, dtype, 0, EL_MEMORY_HOST, EL_DT_NONE};
    el_status s;
    if ((s = el_plan_make(m, &pp, plan)) != EL_OK) return s;
    el_arena_params ap;
    el_plan_arena_params(plan, 0, 0, &ap);
    /* Only weights and staging are used while packing. */
    ap.region_bytes[EL_REGION_KV] = ap.region_bytes[EL_REGION_SCRATCH] = 0;
    ap.region_bytes[EL_REGION_ACT] = 0;
    ap.size = ap.region_bytes[EL_REGION_WEIGHTS] + ap.region_bytes[EL_REGION_STAGING] +
              ap.region_bytes[EL_REGION_TOKENIZER];
    if (ap.size == 0) ap.size = EL_IMG_ALIGN;
    if ((s = el_arena_init(ao, &ap)) != EL_OK) return s;
    return el_model_load(m, plan, *ao, NULL, NULL);
}

static el_status sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return el_errorf(EL_E_IO, "%s: cannot open the folder to fsync it: %s", dir, strerror(errno));
    el_status s = el_fd_sync(fd, dir);
    close(fd);
    return s;
}

/* ---- output --------------------------------------------------------------------------------- */

/* Where the image goes. REPLACE: a temporary file in path's folder renamed over path (path
 * absent or a regular file; a symlink's target with write_through). INTO: written into the
 * opened device itself (block devices, positioned writes). STREAM: built in an unnamed
 * temporary file, then copied in order (character devices, FIFOs). */
typedef enum out_kind { OUT_REPLACE, OUT_INTO, OUT_STREAM } out_kind;

static const char *file_kind(mode_t m) {
    return S_ISDIR(m) ? "a directory" : S_ISLNK(m) ? "a symbolic link" : S_ISCHR(m) ? "a character device"
         : S_ISBLK(m) ? "a block device" : S_ISFIFO(m) ? "a FIFO" : S_ISSOCK(m) ? "a socket"
         : "not a regular file";
}

static el_status out_resolve(const char *out, bool through, char *path, size_t cap, out_kind *kind) {
    struct stat st;
    snprintf(path, cap, "%s", out);
    *kind = OUT_REPLACE;
    if (lstat(out, &st) != 0) {
        if (errno == ENOENT) return EL_OK;
        return el_errorf(EL_E_IO, "%s: %s", out, strerror(errno));
    }
    if (S_ISREG(st.st_mode)) return EL_OK;
    const char *what = file_kind(st.st_mode);
    if (S_ISDIR(st.st_mode) || S_ISSOCK(st.st_mode))
        return el_errorf(EL_E_USAGE, "-o %s: is %s; pack writes a file: give a file name", out, what);
    if (!through)
        return el_errorf(EL_E_USAGE, "-o %s: is %s; pack only creates or replaces regular files "
                         "(atomically); pass --write-through to write the image %s", out, what,
                         S_ISLNK(st.st_mode) ? "to the link's target" : "into it (not atomic)");
    if (S_ISLNK(st.st_mode)) {
        char real[PATH_MAX];
        if (stat(out, &st) != 0 || !realpath(out, real))
            return el_errorf(EL_E_IO, "-o %s: the symbolic link's target: %s", out, strerror(errno));
        if (S_ISREG(st.st_mode)) {
            snprintf(path, cap, "%s", real);
            return EL_OK;
        }
        if (S_ISDIR(st.st_mode) || S_ISSOCK(st.st_mode))
            return el_errorf(EL_E_USAGE, "-o %s: links to %s (%s); give a file name", out,
                             file_kind(st.st_mode), real);
        snprintf(path, cap, "%s", real);
    }
    if (S_ISBLK(st.st_mode)) {
        *kind = OUT_INTO;
        return el_image_target_check_mounted(path);
    }
    *kind = OUT_STREAM;
    return EL_OK;
}

/* Removes `.BASE.tmp.XXXXXX` files in dir that no live pack holds (each pack holds an
 * exclusive flock on its temporary file until it is renamed): what a killed pack left. */
static void clean_stale_temps(const char *dir, const char *base) {
    char prefix[300];
    int k = snprintf(prefix, sizeof prefix, ".%s.tmp.", base);
    if (k < 0 || (size_t)k >= sizeof prefix) return;
    DIR *d = opendir(dir);
    if (!d) return;
    for (struct dirent *e; (e = readdir(d));) {
        if (strncmp(e->d_name, prefix, (size_t)k) || strlen(e->d_name) != (size_t)k + 6) continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) continue;
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && flock(fd, LOCK_EX | LOCK_NB) == 0)
            unlinkat(dirfd(d), e->d_name, 0);
        close(fd);
    }
    closedir(d);
}

/* A temporary file for the image in dir: unnamed (O_TMPFILE) where the filesystem has it,
 * else `.BASE.tmp.XXXXXX` (named: *named is true; removed by the caller or the next pack).
 * Held with an exclusive flock so clean_stale_temps leaves it alone. */
static el_status temp_open(const char *dir, const char *base, char *name, size_t cap, bool *named,
                           int *fd_out) {
    *named = false;
    int fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0644);
    if (fd < 0) {
        int k = snprintf(name, cap, "%s/.%s.tmp.XXXXXX", dir, base);
        if (k < 0 || (size_t)k >= cap) return el_errorf(EL_E_USAGE, "%s/%s: path too long", dir, base);
        if ((fd = mkstemp(name)) < 0)
            return el_errorf(EL_E_IO, "cannot create a temporary file in %s: %s", dir, strerror(errno));
        *named = true;
        /* mkstemp makes the file 0600; an image is as readable as any file we write. */
        if (fchmod(fd, 0644) != 0) {
            el_status s = el_errorf(EL_E_IO, "%s: chmod: %s", name, strerror(errno));
            close(fd);
            unlink(name);
            return s;
        }
    } else {
        snprintf(name, cap, "%.1000s/(unnamed temporary file for %.200s)", dir, base);
    }
    flock(fd, LOCK_EX);
    *fd_out = fd;
    return EL_OK;
}

/* Gives the unnamed temporary file fd the name `.BASE.tmp.XXXXXX` in dir (into name). */
static el_status temp_link(int fd, const char *dir, const char *base, char *name, size_t cap) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    static const char k_chars[] = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    uint64_t x = (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 32) ^ (uint64_t)ts.tv_sec;
    for (int tries = 0; tries < 100; tries++) {
        char suffix[7];
        for (int i = 0; i < 6; i++) {
            x = x * 6364136223846793005ull + 1442695040888963407ull;
            suffix[i] = k_chars[(x >> 33) % (sizeof k_chars - 1)];
        }
        suffix[6] = 0;
        int k = snprintf(name, cap, "%s/.%s.tmp.%s", dir, base, suffix);
        if (k < 0 || (size_t)k >= cap) return el_errorf(EL_E_USAGE, "%s/%s: path too long", dir, base);
        /* AT_EMPTY_PATH needs CAP_DAC_READ_SEARCH; /proc/self/fd works for anyone. */
        if (linkat(fd, "", AT_FDCWD, name, AT_EMPTY_PATH) == 0 ||
            (errno != EEXIST && linkat(AT_FDCWD, proc, AT_FDCWD, name, AT_SYMLINK_FOLLOW) == 0))
            return EL_OK;
        if (errno != EEXIST)
            return el_errorf(EL_E_IO, "%s: cannot link the temporary file: %s", name, strerror(errno));
    }
    return el_errorf(EL_E_IO, "%s/.%s.tmp.*: no free temporary name", dir, base);
}

/* Copies size bytes of fd from offset 0 to target, in order (a FIFO or character device). */
static el_status stream_copy(int fd, uint64_t size, const char *target) {
    int t = open(target, O_WRONLY | O_CLOEXEC);
    if (t < 0) return el_errorf(EL_E_IO, "%s: cannot open for writing: %s", target, strerror(errno));
    el_status s = EL_OK;
    static uint8_t buf[1 << 16];
    for (uint64_t pos = 0; s == EL_OK && pos < size;) {
        size_t n = size - pos < sizeof buf ? (size_t)(size - pos) : sizeof buf;
        ssize_t r = pread(fd, buf, n, (off_t)pos);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) {
            s = el_errorf(EL_E_IO, "reading the temporary image back: %s", r < 0 ? strerror(errno) : "short file");
            break;
        }
        for (ssize_t done = 0; s == EL_OK && done < r;) {
            ssize_t w = write(t, buf + done, (size_t)(r - done));
            if (w < 0 && errno == EINTR) continue;
            if (w <= 0)
                s = el_errorf(EL_E_IO, "%s: write of %zd bytes at offset %llu failed: %s", target,
                              r - done, (unsigned long long)(pos + (uint64_t)done),
                              w < 0 ? strerror(errno) : "no progress");
            else
                done += w;
        }
        pos += (uint64_t)r;
    }
    /* fsync where the target has a medium behind it (FIFOs and most character devices
     * have none: EINVAL). */
    if (s == EL_OK && fsync(t) != 0 && errno != EINVAL && errno != EROFS)
        s = el_errorf(EL_E_IO, "%s: fsync failed: %s", target, strerror(errno));
    if (close(t) != 0 && s == EL_OK) s = el_errorf(EL_E_IO, "%s: close failed: %s", target, strerror(errno));
    return s;
}

el_status el_pack_output_check(const char *out, bool write_through) {
    char path[PATH_MAX];
    out_kind kind;
    return out_resolve(out, write_through, path, sizeof path, &kind);
}

el_status el_pack_output_not_input(const char *out, const el_model *m) {
    struct stat o, in;
    if (stat(out, &o) != 0) return EL_OK; /* absent: nothing of the input can be there */
    for (uint32_t i = 0; i < m->file_count; i++) {
        const el_file *f = &m->files[i];
        if (f->fd < 0 || f->fd == EL_FILE_FD_CALLBACKS || fstat(f->fd, &in) != 0) continue;
        if (in.st_dev == o.st_dev && in.st_ino == o.st_ino)
            return el_errorf(EL_E_USAGE, "-o %s: is the model's own file %s; write to another "
                             "file", out, f->path);
    }
    return EL_OK;
}

/* Writes the output to out as out_resolve decided: see el_pack_output_write in image.h. */
el_status el_pack_output_write(const char *out, bool write_through, el_pack_writer fn, void *ctx,
                               uint64_t *size) {
    char path[PATH_MAX], dir[PATH_MAX], tmpname[PATH_MAX + 64];
    out_kind kind;
    *size = 0;
    el_status s = out_resolve(out, write_through, path, sizeof path, &kind);
    if (s != EL_OK) return s;
    if (kind == OUT_INTO) {
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        if (fd < 0) return el_errorf(EL_E_IO, "%s: cannot open for writing: %s", path, strerror(errno));
        s = fn(ctx, fd, path, size);
        if (s == EL_OK) s = el_fd_sync(fd, path);
        if (close(fd) != 0 && s == EL_OK) s = el_errorf(EL_E_IO, "%s: close failed: %s", path, strerror(errno));
        return s;
    }
    if (kind == OUT_STREAM) {
        const char *tdir = getenv("TMPDIR");
        snprintf(dir, sizeof dir, "%s", tdir && *tdir ? tdir : "/tmp");
    } else {
        el_path_dir(path, dir, sizeof dir);
    }
    const char *base = strrchr(path, '/');
    base = base ? base + 1 : path;
    if (kind == OUT_REPLACE) clean_stale_temps(dir, base);
    bool named;
    int fd = -1;
    if ((s = temp_open(dir, base, tmpname, sizeof tmpname, &named, &fd)) != EL_OK) return s;
    if (named && kind == OUT_STREAM) unlink(tmpname); /* only the descriptor is needed */
    bool linked = named && kind == OUT_REPLACE;
    s = fn(ctx, fd, tmpname, size);
    if (s == EL_OK && kind == OUT_STREAM) s = stream_copy(fd, *size, path);
    if (s == EL_OK && kind == OUT_REPLACE) s = el_fd_sync(fd, tmpname);
    if (s == EL_OK && kind == OUT_REPLACE && !named) {
        s = temp_link(fd, dir, base, tmpname, sizeof tmpname);
        linked = s == EL_OK;
    }
    if (s == EL_OK && kind == OUT_REPLACE) s = el_path_rename(tmpname, path);
    if (s != EL_OK && linked) unlink(tmpname); /* a failed rename leaves it in place */
    if (close(fd) != 0 && s == EL_OK) s = el_errorf(EL_E_IO, "%s: close failed: %s", tmpname, strerror(errno));
    /* After the rename the new image is in place; the folder's fsync makes that durable. */
    if (s == EL_OK && kind == OUT_REPLACE) s = sync_dir(dir);
    return s;
}

/* write_image as an el_pack_writer. */
typedef struct image_job {
    const el_model *m;
    const el_plan *plan;
    const el_image_pack_params *p;
    const uint8_t *payload;
    uint64_t psize, chunk;
    side_src *side;
    uint32_t nside;
    el_image_pack_stats *st;
} image_job;

static el_status image_job_write(void *ctx, int fd, const char *name, uint64_t *size) {
    image_job *j = ctx;
    el_status s = write_image(j->m, j->plan, j->p, j->payload, j->psize, j->chunk, j->side,
                              j->nside, fd, name, j->st);
    *size = j->st->image_bytes;
    return s;
}

el_status el_image_pack(const char *src, const char *out, const el_image_pack_params *p,
                        el_image_pack_stats *stats) {
    el_image_pack_stats st;
    memset(&st, 0, sizeof st);
    uint64_t chunk = p->chunk_bytes ? p->chunk_bytes : PACK_CHUNK_DEFAULT;
    if (chunk < EL_IMG_CHUNK_MIN || chunk > EL_IMG_CHUNK_MAX || chunk % EL_IMG_ALIGN)
        return el_errorf(EL_E_USAGE, "--chunk %llu: must be a multiple of 4 KiB between 64 KiB "
                         "and 1 GiB", (unsigned long long)chunk);
    if ((unsigned)p->codec >= EL_IMG_CODEC_COUNT) return el_errorf(EL_E_USAGE, "unknown codec");
    /* The output is checked first: a refused -o costs no load. */
    char path[PATH_MAX];
    out_kind kind;
    el_status s = out_resolve(out, p->write_through, path, sizeof path, &kind);
    if (s != EL_OK) return s;
    el_model *m = NULL;
    el_arena *a = NULL;
    el_plan plan;
    side_src side[EL_IMG_SIDE_FILES_MAX];
    memset(side, 0, sizeof side);
    uint32_t nside = 0;
    s = load_source(src, p, &m, &plan, &a);
    if (s == EL_OK) s = collect_side(m, p->tokenizer_path, side, &nside);
    if (s == EL_OK) s = validate_side(m, side, nside);
    /* The payload: the weights region from its base to the end of the last tensor. */
    const uint8_t *payload = NULL;
    uint64_t psize = 0;
    for (size_t i = 0; s == EL_OK && i < m->tensors.count; i++) {
        const el_tensor *t = &m->tensors.items[i];
        uint64_t end = t->arena_offset + el_tensor_loaded_bytes(t);
        if (!payload) payload = (const uint8_t *)t->data - t->arena_offset;
        if (end > psize) psize = end;
    }
    if (s == EL_OK) s = el_pack_output_not_input(out, m);
    image_job job = {m, &plan, p, payload, psize, chunk, side, nside, &st};
    uint64_t size = 0;
    if (s == EL_OK) s = el_pack_output_write(out, p->write_through, image_job_write, &job, &size);
    for (uint32_t i = 0; i < nside; i++) free(side[i].data);
    el_arena_deinit(a);
    el_model_close(m);
    if (stats) *stats = st;
    return s;
}

/* ---- verify ------------------------------------------------------------------------------------ */

el_status el_image_verify(const char *path, uint64_t base, el_image_verify_report *r) {
    el_image_verify_report rep;
    memset(&rep, 0, sizeof rep);
    el_file f;
    el_status s = el_file_open(&f, path, 0);
    if (s != EL_OK) return s;
    el_img_meta meta;
    if ((s = el_img_meta_read(&f, base, &meta)) != EL_OK) {
        el_file_close(&f);
        return s;
    }
    for (uint32_t i = 0; s == EL_OK && i < meta.side_count; i++) {
        const el_img_side *sf = &meta.side[i];
        uint8_t *buf = malloc(sf->size ? (size_t)sf->size : 1);
        if (!buf) s = el_errorf(EL_E_NOMEM, "out of memory");
        if (s == EL_OK) s = el_file_read_at(&f, buf, (size_t)sf->size, base + sf->offset);
        uint32_t crc = s == EL_OK ? el_crc32c(0, buf, (size_t)sf->size) : 0;
        if (s == EL_OK && crc != sf->crc)
            s = el_errorf(EL_E_INVALID, "%s: file '%s' stored in the image (offset %llu, %llu "
                          "bytes): CRC32C 0x%08x, the manifest says 0x%08x", path, sf->name,
                          (unsigned long long)sf->offset, (unsigned long long)sf->size, crc, sf->crc);
        free(buf);
        rep.side_files++;
    }
    uint8_t *src = malloc((size_t)meta.h.chunk_size), *dst = malloc((size_t)meta.h.chunk_size);
    if (!src || !dst) s = el_errorf(EL_E_NOMEM, "out of memory");
    for (uint32_t ci = 0; s == EL_OK && ci < meta.h.chunk_count; ci++) {
        const el_img_chunk *c = &meta.chunks[ci];
        char where[600];
        s = el_file_read_at(&f, src, c->stored_size, base + c->offset);
        if (s != EL_OK) {
            char why[600];
            snprintf(why, sizeof why, "%s", el_last_error());
            s = el_errorf(s, "%s; reading %s", why, el_img_chunk_where(&meta, &meta.tensors, ci, where, sizeof where));
            break;
        }
        int why = el_img_decode(c, src, dst, src);
        if (why)
            s = el_errorf(EL_E_INVALID, "%s: %s: %s", path, el_img_chunk_where(&meta, &meta.tensors, ci, where, sizeof where),
                          why == 1 ? "CRC32C of the stored bytes does not match"
                          : why == 2 ? "LZ4 data is corrupt"
                                     : "CRC32C of the decoded bytes does not match");
        rep.chunks++;
        rep.stored_bytes += c->stored_size;
        rep.raw_bytes += c->raw_size;
    }
    free(src);
    free(dst);
    el_img_meta_free(&meta);
    el_file_close(&f);
    if (r) *r = rep;
    return s;
}
