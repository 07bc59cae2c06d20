/* test_image_corrupt.c - nothing from a damaged image is used: a flipped bit in every chunk
 * fails the load and verify naming the chunk index, its image offset and its tensors; a bit
 * flipped in the header, the manifest, the chunk table or a stored file fails the open
 * naming the region; truncation at every chunk boundary and mid-chunk is found at open
 * (before any output); hostile headers, tables and manifests with valid CRCs give exit 2
 * naming the field. */
// ctest-labels: image
#include "tests/image_common.h"

#include "platform/crc32c.h"

#include <math.h>

static uint8_t *g_img;     /* the good image */
static size_t g_len;
static el_img_meta g_meta; /* its parsed metadata */

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void rehead(uint8_t *img) { put32(img + 124, el_crc32c(0, img, 124)); }
static void retable(uint8_t *img) {
    put32(img + 84, el_crc32c(0, img + g_meta.h.table_offset, (size_t)g_meta.h.chunk_count * 32));
    rehead(img);
}

/* Writes buf as bad.elimg and opens it; returns the status (the model is closed). */
static el_status try_open(const uint8_t *buf, size_t len) {
    const char *p = el_test_path("bad.elimg");
    EL_CHECK(el_test_write_file(p, buf, len));
    el_model *m = NULL;
    el_status s = el_model_open(p, NULL, &m);
    el_model_close(m);
    return s;
}

static bool is_corrupt(el_status s) { return s == EL_E_INVALID || s == EL_E_UNSUPPORTED; }

/* The hostile variant (a copy of the image changed by fn) is refused naming field. */
static void hostile(const char *what, void (*fn)(uint8_t *img, size_t *len), const char *field) {
    uint8_t *c = malloc(g_len + 70000);
    memcpy(c, g_img, g_len);
    size_t len = g_len;
    fn(c, &len);
    el_status s = try_open(c, len);
    bool ok = is_corrupt(s) && strstr(el_last_error(), field);
    if (!ok) fprintf(stderr, "   hostile %s: %s: %s\n", what, el_status_str(s), el_last_error());
    EL_CHECK(ok);
    char args[1200], *out = NULL;
    snprintf(args, sizeof args, "inspect '%s'", el_test_path("bad.elimg"));
    EL_CHECK(el_test_run_cli(args, &out, NULL) == 2);
    EL_CHECK(out && out[0] == 0);
    free(out);
    free(c);
}

static void h_image_size(uint8_t *b, size_t *n) { put64(b + 72, *n + 4096); rehead(b); }
static void h_manifest_past(uint8_t *b, size_t *n) { put64(b + 32, (uint64_t)*n * 4); rehead(b); }
static void h_manifest_huge(uint8_t *b, size_t *n) { (void)n; put64(b + 32, 1ull << 40); rehead(b); }
static void h_manifest_wrap(uint8_t *b, size_t *n) { (void)n; put64(b + 24, UINT64_MAX - 10); rehead(b); }
static void h_count_overflow(uint8_t *b, size_t *n) { (void)n; put32(b + 20, UINT32_MAX); rehead(b); }
static void h_payload_huge(uint8_t *b, size_t *n) { (void)n; put64(b + 56, UINT64_MAX); rehead(b); }
static void h_chunk_zero(uint8_t *b, size_t *n) { (void)n; put64(b + 64, 0); rehead(b); }
static void h_table_overlap(uint8_t *b, size_t *n) { (void)n; put64(b + 40, g_meta.h.manifest_offset); rehead(b); }
static void h_version(uint8_t *b, size_t *n) { (void)n; b[8] = 2; rehead(b); }
static void h_flags(uint8_t *b, size_t *n) { (void)n; b[12] = 1; rehead(b); }
static void h_payload_off(uint8_t *b, size_t *n) { (void)n; put64(b + 48, g_meta.h.payload_offset + 100); rehead(b); }
static void h_reserved(uint8_t *b, size_t *n) { (void)n; b[100] = 1; rehead(b); }
static uint8_t *entry(uint8_t *b, uint32_t i) { return b + g_meta.h.table_offset + (size_t)i * 32; }
static void t_overlap(uint8_t *b, size_t *n) { (void)n; put64(entry(b, 1), g_meta.chunks[0].offset); retable(b); }
static void t_raw_big(uint8_t *b, size_t *n) { (void)n; put32(entry(b, 0) + 12, (uint32_t)g_meta.h.chunk_size + 4096); retable(b); }
static void t_stored_big(uint8_t *b, size_t *n) { (void)n; put32(entry(b, 0) + 8, (uint32_t)g_meta.h.chunk_size + 1); retable(b); }
static void t_codec(uint8_t *b, size_t *n) { (void)n; entry(b, 0)[16] = 7; retable(b); }
static void t_past_end(uint8_t *b, size_t *n) {
    uint32_t last = g_meta.h.chunk_count - 1;
    put64(entry(b, last), (uint64_t)*n); /* starts at the end: runs past image_size */
    retable(b);
}
static void t_unaligned(uint8_t *b, size_t *n) { (void)n; put64(entry(b, 1), g_meta.chunks[1].offset + 8); retable(b); }

/* Replaces the manifest text (it must fit in the manifest's region). */
static void set_manifest(uint8_t *b, const char *text, size_t len) {
    memcpy(b + g_meta.h.manifest_offset, text, len);
    put64(b + 32, len);
    put32(b + 80, el_crc32c(0, text, len));
    rehead(b);
}
static void m_not_json(uint8_t *b, size_t *n) { (void)n; set_manifest(b, "this is not JSON", 16); }
static void m_depth_bomb(uint8_t *b, size_t *n) {
    (void)n;
    char bomb[2001];
    for (int i = 0; i < 1000; i++) {
        bomb[i] = '[';
        bomb[1999 - i] = ']';
    }
    set_manifest(b, bomb, 2000);
}
static void m_array(uint8_t *b, size_t *n) { (void)n; set_manifest(b, "[1,2,3]", 7); }
/* Edits the manifest text: the first `from` becomes `to`. */
static void edit_manifest(uint8_t *b, const char *from, const char *to) {
    size_t ml = (size_t)g_meta.h.manifest_size;
    char *t = malloc(ml + 64);
    memcpy(t, g_img + g_meta.h.manifest_offset, ml);
    t[ml] = 0;
    char *hit = strstr(t, from);
    EL_CHECK(hit != NULL);
    if (hit) {
        size_t fl = strlen(from), tl = strlen(to);
        memmove(hit + tl, hit + fl, ml - (size_t)(hit - t) - fl + 1);
        memcpy(hit, to, tl);
        set_manifest(b, t, strlen(t));
    }
    free(t);
}
static void m_align(uint8_t *b, size_t *n) { (void)n; edit_manifest(b, "\"tensor_alignment\":64", "\"tensor_alignment\":32"); }
static void m_payload(uint8_t *b, size_t *n) { (void)n; edit_manifest(b, "\"payload\":{\"size\":", "\"payload\":{\"size\":1"); }
static void m_offset(uint8_t *b, size_t *n) { (void)n; edit_manifest(b, "\"offset\":0,", "\"offset\":64,"); }
static void m_flag(uint8_t *b, size_t *n) { (void)n; edit_manifest(b, "\"bytes\":160000,\"flags\":[]", "\"bytes\":160000,\"flags\":[\"transposed\"]"); }
static void m_dtype(uint8_t *b, size_t *n) { (void)n; edit_manifest(b, "\"dtype\":\"U8\"", "\"dtype\":\"Q4\""); }
static void m_shape(uint8_t *b, size_t *n) { (void)n; edit_manifest(b, "\"shape\":[40000]", "\"shape\":[40001]"); }
static void m_side(uint8_t *b, size_t *n) { (void)n; edit_manifest(b, "\"name\":\"vocab.txt\"", "\"name\":\"../vocab.txt\""); }
static void m_side_past(uint8_t *b, size_t *n) { (void)n; edit_manifest(b, "\"name\":\"vocab.txt\",\"offset\":", "\"name\":\"vocab.txt\",\"offset\":9"); }

/* The test model: compressible floats (lz4 and shuffle-lz4 chunks), random bytes (stored
 * plain), a small tensor; and a vocab.txt next to it (stored in the image). */
static void write_model(const char *path) {
    size_t n1 = 40000, n2 = 70000, n3 = 100000, n4 = 10;
    size_t bytes = n1 * 4 + n2 * 2 + n3 + n4 * 4;
    uint8_t *d = malloc(bytes), *p = d;
    for (size_t i = 0; i < n1; i++) {
        float v = (float)(i % 7);
        memcpy(p + 4 * i, &v, 4);
    }
    p += n1 * 4;
    for (size_t i = 0; i < n2; i++) {
        float v = sinf((float)i * 0.001f);
        uint16_t h = (uint16_t)(0x3800 + (int)(v * 512.0f)); /* f16 bit patterns near 0.5 */
        memcpy(p + 2 * i, &h, 2);
    }
    p += n2 * 2;
    uint32_t x = 12345;
    for (size_t i = 0; i < n3; i++) {
        x = x * 1103515245u + 12345u;
        p[i] = (uint8_t)(x >> 23);
    }
    p += n3;
    for (size_t i = 0; i < n4; i++) {
        float v = (float)i;
        memcpy(p + 4 * i, &v, 4);
    }
    char json[1024];
    snprintf(json, sizeof json,
             "{\"smooth.f32\":{\"dtype\":\"F32\",\"shape\":[40000],\"data_offsets\":[0,160000]},"
             "\"wave.f16\":{\"dtype\":\"F16\",\"shape\":[70000],\"data_offsets\":[160000,300000]},"
             "\"zz.noise\":{\"dtype\":\"U8\",\"shape\":[100000],\"data_offsets\":[300000,400000]},"
             "\"zz.small\":{\"dtype\":\"F32\",\"shape\":[10],\"data_offsets\":[400000,400040]}}");
    EL_CHECK(el_test_write_safetensors_raw(path, json, d, bytes));
    free(d);
    char vocab[1200];
    snprintf(vocab, sizeof vocab, "%s", path);
    char *slash = strrchr(vocab, '/');
    snprintf(slash + 1, sizeof vocab - (size_t)(slash + 1 - vocab), "vocab.txt");
    /* A vocabulary WordPiece accepts: pack validates the tokenizer files it stores. */
    static const char k_vocab[] = "[PAD]\n[UNK]\n[CLS]\n[SEP]\nhello\nworld\n";
    EL_CHECK(el_test_write_file(vocab, k_vocab, sizeof k_vocab - 1));
}

/* The first tensor overlapping chunk ci (for the message check). */
static const char *tensor_in_chunk(uint32_t ci) {
    uint64_t lo = (uint64_t)ci * g_meta.h.chunk_size, hi = lo + g_meta.chunks[ci].raw_size;
    for (size_t i = 0; i < g_meta.tensors.count; i++) {
        const el_tensor *t = &g_meta.tensors.items[i];
        if (t->nbytes && t->arena_offset < hi && t->arena_offset + t->nbytes > lo) return t->name;
    }
    return "(padding)";
}

static void flip_chunks(void) {
    uint8_t *c = malloc(g_len);
    const char *p = el_test_path("flip.elimg");
    uint32_t x = 7;
    for (uint32_t ci = 0; ci < g_meta.h.chunk_count; ci++) {
        const el_img_chunk *k = &g_meta.chunks[ci];
        memcpy(c, g_img, g_len);
        x = x * 1664525u + 1013904223u;
        uint64_t bit = (uint64_t)(x >> 4) % ((uint64_t)k->stored_size * 8);
        c[k->offset + bit / 8] ^= (uint8_t)(1u << (bit % 8));
        EL_CHECK(el_test_write_file(p, c, g_len));
        char want_chunk[64], want_off[64];
        snprintf(want_chunk, sizeof want_chunk, "chunk %u ", ci);
        snprintf(want_off, sizeof want_off, "image offset %llu", (unsigned long long)k->offset);
        const char *tn = tensor_in_chunk(ci);
        img_loaded l;
        el_status s = img_load(p, 0, EL_DT_NONE, &l);
        const char *e = el_last_error();
        bool named = s == EL_E_INVALID && strstr(e, want_chunk) && strstr(e, want_off) && strstr(e, tn);
        if (!named) fprintf(stderr, "   chunk %u (%s): %s: %s\n", ci, el_img_codec_name(k->codec), el_status_str(s), e);
        EL_CHECK(named);
        EL_CHECK(!l.m || !l.m->loaded);
        img_unload(&l);
        el_image_verify_report r;
        s = el_image_verify(p, 0, &r);
        EL_CHECK(s == EL_E_INVALID && strstr(el_last_error(), want_chunk) && strstr(el_last_error(), tn));
        if (ci == 0 || ci + 1 == g_meta.h.chunk_count) {
            char args[1200], *out = NULL, *err = NULL;
            snprintf(args, sizeof args, "verify '%s'", p);
            EL_CHECK(el_test_run_cli(args, NULL, &err) == 2);
            EL_CHECK(err && strstr(err, want_chunk) && strstr(err, tn));
            free(err);
            err = NULL;
            snprintf(args, sizeof args, "load '%s' --no-progress", p);
            EL_CHECK(el_test_run_cli(args, &out, &err) == 2);
            EL_CHECK(out && out[0] == 0 && err && strstr(err, want_chunk));
            free(out);
            free(err);
        }
    }
    free(c);
}

static void flip_regions(void) {
    uint8_t *c = malloc(g_len);
    int bad = 0;
    /* Every header byte. */
    for (int i = 0; i < (int)EL_IMG_HEADER_SIZE; i++) {
        memcpy(c, g_img, g_len);
        c[i] ^= (uint8_t)(1u << (i % 8));
        el_status s = try_open(c, g_len);
        const char *want = i < 8 ? "not a safetensors" : "header_crc";
        if (!is_corrupt(s) || !strstr(el_last_error(), want)) {
            fprintf(stderr, "   header byte %d: %s: %s\n", i, el_status_str(s), el_last_error());
            bad++;
        }
    }
    /* Every chunk table byte. */
    for (uint64_t i = 0; i < (uint64_t)g_meta.h.chunk_count * 32; i++) {
        memcpy(c, g_img, g_len);
        c[g_meta.h.table_offset + i] ^= (uint8_t)(1u << (i % 8));
        el_status s = try_open(c, g_len);
        if (!is_corrupt(s) || !strstr(el_last_error(), "table_crc")) bad++;
    }
    /* Manifest bytes across its length. */
    for (uint64_t i = 0; i < g_meta.h.manifest_size; i += 1 + g_meta.h.manifest_size / 97) {
        memcpy(c, g_img, g_len);
        c[g_meta.h.manifest_offset + i] ^= (uint8_t)(1u << (i % 8));
        el_status s = try_open(c, g_len);
        if (!is_corrupt(s) || !strstr(el_last_error(), "manifest_crc")) bad++;
    }
    /* The stored vocab.txt. */
    EL_CHECK(g_meta.side_count == 1 && !strcmp(g_meta.side[0].name, "vocab.txt"));
    for (uint64_t i = 0; g_meta.side_count && i < g_meta.side[0].size; i++) {
        memcpy(c, g_img, g_len);
        c[g_meta.side[0].offset + i] ^= 0x10;
        el_status s = try_open(c, g_len);
        if (!is_corrupt(s) || !strstr(el_last_error(), "'vocab.txt'")) bad++;
    }
    EL_CHECK(bad == 0);
    free(c);
}

static void truncations(void) {
    int bad = 0;
    for (uint32_t ci = 0; ci < g_meta.h.chunk_count; ci++) {
        const el_img_chunk *k = &g_meta.chunks[ci];
        uint64_t cuts[2] = {k->offset, k->offset + k->stored_size / 2};
        for (int j = 0; j < 2; j++) {
            el_status s = try_open(g_img, (size_t)cuts[j]);
            if (s != EL_E_INVALID || !strstr(el_last_error(), "truncated")) {
                fprintf(stderr, "   cut at %llu: %s: %s\n", (unsigned long long)cuts[j], el_status_str(s), el_last_error());
                bad++;
            }
        }
    }
    el_status s = try_open(g_img, g_len - 1);
    EL_CHECK(s == EL_E_INVALID && strstr(el_last_error(), "truncated"));
    s = try_open(g_img, 100);
    EL_CHECK(s == EL_E_INVALID && strstr(el_last_error(), "truncated"));
    EL_CHECK(bad == 0);
    /* The CLI: exit 2, nothing on stdout. */
    EL_CHECK(el_test_write_file(el_test_path("cut.elimg"), g_img, (size_t)g_meta.chunks[1].offset + 100));
    char args[1200], *out = NULL;
    snprintf(args, sizeof args, "load '%s' --no-progress", el_test_path("cut.elimg"));
    EL_CHECK(el_test_run_cli(args, &out, NULL) == 2);
    EL_CHECK(out && out[0] == 0);
    free(out);
}

int main(void) {
    char src[1200], img[1200];
    snprintf(src, sizeof src, "%s", el_test_path("m.safetensors"));
    snprintf(img, sizeof img, "%s", el_test_path("m.elimg"));
    write_model(src);
    el_image_pack_params p = {.dtype = EL_DT_NONE, .codec = EL_IMG_CODEC_SHUFFLE_LZ4, .chunk_bytes = 65536};
    el_image_pack_stats st;
    EL_CHECK_OK(el_image_pack(src, img, &p, &st));
    printf("   image: %u chunks: %u none, %u lz4, %u shuffle-lz4\n", st.chunks, st.chunks_by_codec[0],
           st.chunks_by_codec[1], st.chunks_by_codec[2]);
    EL_CHECK(st.chunks_by_codec[0] > 0 && st.chunks_by_codec[2] > 0);
    g_img = (uint8_t *)el_test_read_file(img, &g_len);
    EL_CHECK_OK(el_img_meta_parse_memory(g_img, g_len, "m.elimg", &g_meta));
    flip_chunks();
    /* lz4 without shuffle too. */
    p.codec = EL_IMG_CODEC_LZ4;
    EL_CHECK_OK(el_image_pack(src, img, &p, &st));
    EL_CHECK(st.chunks_by_codec[1] > 0);
    free(g_img);
    el_img_meta_free(&g_meta);
    g_img = (uint8_t *)el_test_read_file(img, &g_len);
    EL_CHECK_OK(el_img_meta_parse_memory(g_img, g_len, "m.elimg", &g_meta));
    flip_chunks();
    flip_regions();
    truncations();
    hostile("image_size past the end", h_image_size, "image_size");
    hostile("manifest past the payload", h_manifest_past, "manifest");
    hostile("manifest_size huge", h_manifest_huge, "manifest_size");
    hostile("manifest_offset wraps", h_manifest_wrap, "manifest_offset");
    hostile("chunk_count overflow", h_count_overflow, "chunk_count");
    hostile("payload_size huge", h_payload_huge, "chunk_count");
    hostile("chunk_size 0", h_chunk_zero, "chunk_size");
    hostile("table over the manifest", h_table_overlap, "manifest_offset");
    hostile("version 2", h_version, "version_major");
    hostile("unknown flag", h_flags, "flags");
    hostile("payload_offset unaligned", h_payload_off, "payload_offset");
    hostile("reserved byte", h_reserved, "reserved");
    hostile("overlapping chunks", t_overlap, "chunk 1: offset");
    hostile("raw size larger than the plan", t_raw_big, "raw_size");
    hostile("stored larger than raw", t_stored_big, "stored_size");
    hostile("unknown codec", t_codec, "codec");
    hostile("chunk past the end", t_past_end, "offset");
    hostile("chunk unaligned", t_unaligned, "chunk 1: offset");
    hostile("manifest not JSON", m_not_json, "manifest");
    hostile("manifest depth bomb", m_depth_bomb, "manifest");
    hostile("manifest an array", m_array, "manifest");
    hostile("tensor alignment", m_align, "tensor_alignment");
    hostile("payload size", m_payload, "payload.size");
    hostile("tensor offset", m_offset, "offset");
    hostile("unknown tensor flag", m_flag, "flags");
    hostile("unknown dtype", m_dtype, "dtype");
    hostile("shape vs bytes", m_shape, "bytes");
    hostile("side file path", m_side, "plain file name");
    hostile("side file past the payload", m_side_past, "vocab.txt");
    free(g_img);
    el_img_meta_free(&g_meta);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_image_corrupt");
}
