/* test_loader_gguf_hostile.c - hostile GGUF headers: a small valid file built here, then
 * truncated at every byte, every header bit flipped, and each class of llama.cpp reader CVE
 * planted (huge counts and lengths, n_dims 5, unknown types, rows not a whole block,
 * misaligned / overlapping / out-of-file offsets, alignment 0 and 3, nesting, duplicates,
 * a header needing more than the heap budget): each is EL_E_INVALID (or EL_E_UNSUPPORTED
 * for v1 / big-endian) naming the file and the field, never a crash. Then the CLI: inspect
 * exits 0 on a good file and 2 on a bad one; a llama file with a Q8_0 tensor plans with an
 * error naming it. */
// ctest-labels: loader;gguf
// ctest-timeout: 60
#include "tests/support/el_test.h"

#include "loader/formats/gguf.h"
#include "platform/platform.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

#define FNAME "hostile.gguf"

/* ---- a byte builder ------------------------------------------------------------------- */

typedef struct gb {
    uint8_t p[4096];
    size_t n;
} gb;

static size_t put(gb *b, const void *x, size_t n) {
    size_t at = b->n;
    memcpy(b->p + b->n, x, n);
    b->n += n;
    return at;
}
static size_t put_u32(gb *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    return put(b, x, 4);
}
static size_t put_u64(gb *b, uint64_t v) {
    size_t at = put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
    return at;
}
static size_t put_str(gb *b, const char *s) {
    size_t at = put_u64(b, strlen(s));
    put(b, s, strlen(s));
    return at;
}
static void set_u32(gb *b, size_t at, uint32_t v) {
    for (int i = 0; i < 4; i++) b->p[at + i] = (uint8_t)(v >> (8 * i));
}
static void set_u64(gb *b, size_t at, uint64_t v) {
    for (int i = 0; i < 8; i++) b->p[at + i] = (uint8_t)(v >> (8 * i));
}

/* Field offsets of the base file. */
typedef struct base {
    gb b;
    size_t version, n_tensors, n_kv, key0_len, arch_len, align_type, align_val, arr_count,
        str1_len, nested_count, inner_type, bool_val, t0_name, t0_ndims, t0_ne0, t0_ne1, t0_type,
        t0_off, t1_ndims, t1_ne0, t1_type, t1_off, infos_end;
    size_t sections[16]; /* offsets where a section ends */
    size_t n_sections;
} base;

/* header | general.architecture "test" | general.alignment u32 32 | t.tokens ["ab", "c"] |
 * t.nested [[1, 2], [3]] (u8) | t.flag bool | tensor a F32 [4, 2] at 0 | tensor b Q8_0 [32]
 * at 32 | padding to 32 | 66 data bytes */
static void build(base *x) {
    memset(x, 0, sizeof *x);
    gb *b = &x->b;
    put(b, "GGUF", 4);
    x->version = put_u32(b, 3);
    x->n_tensors = put_u64(b, 2);
    x->n_kv = put_u64(b, 5);
    x->sections[x->n_sections++] = b->n;
    x->key0_len = put_str(b, "general.architecture");
    put_u32(b, EL_GGUF_STRING);
    x->arch_len = put_str(b, "test");
    x->sections[x->n_sections++] = b->n;
    put_str(b, "general.alignment");
    x->align_type = put_u32(b, EL_GGUF_U32);
    x->align_val = put_u32(b, 32);
    x->sections[x->n_sections++] = b->n;
    put_str(b, "t.tokens");
    put_u32(b, EL_GGUF_ARRAY);
    put_u32(b, EL_GGUF_STRING);
    x->arr_count = put_u64(b, 2);
    put_str(b, "ab");
    x->str1_len = put_str(b, "c");
    x->sections[x->n_sections++] = b->n;
    put_str(b, "t.nested");
    put_u32(b, EL_GGUF_ARRAY);
    put_u32(b, EL_GGUF_ARRAY);
    x->nested_count = put_u64(b, 2);
    x->inner_type = put_u32(b, EL_GGUF_U8);
    put_u64(b, 2);
    put(b, "\x01\x02", 2);
    put_u32(b, EL_GGUF_U8);
    put_u64(b, 1);
    put(b, "\x03", 1);
    x->sections[x->n_sections++] = b->n;
    put_str(b, "t.flag");
    put_u32(b, EL_GGUF_BOOL);
    x->bool_val = put(b, "\x01", 1);
    x->sections[x->n_sections++] = b->n;
    x->t0_name = put_str(b, "a");
    x->t0_ndims = put_u32(b, 2);
    x->t0_ne0 = put_u64(b, 4);
    x->t0_ne1 = put_u64(b, 2);
    x->t0_type = put_u32(b, 0);
    x->t0_off = put_u64(b, 0);
    x->sections[x->n_sections++] = b->n;
    put_str(b, "b");
    x->t1_ndims = put_u32(b, 1);
    x->t1_ne0 = put_u64(b, 32);
    x->t1_type = put_u32(b, 8);
    x->t1_off = put_u64(b, 32);
    x->infos_end = b->n;
    x->sections[x->n_sections++] = b->n;
    while (b->n % 32) b->p[b->n++] = 0;
    x->sections[x->n_sections++] = b->n; /* data start */
    for (int i = 0; i < 66; i++) b->p[b->n++] = (uint8_t)i;
}

/* ---- parsing from memory -------------------------------------------------------------- */

static el_status parse_bytes(const uint8_t *p, size_t n, el_gguf **out) {
    el_gguf_mem m = {p, n};
    el_gguf_source src = {el_gguf_mem_read, &m, n, FNAME};
    el_gguf *g = NULL;
    el_status s = el_gguf_parse(&src, &g);
    if (out) *out = g;
    else el_gguf_free(g);
    return s;
}

/* A parse of b that must fail with want, naming the file and containing field. */
static void expect(const gb *b, el_status want, const char *field, const char *what) {
    el_status s = parse_bytes(b->p, b->n, NULL);
    const char *e = el_last_error();
    bool ok = s == want && !strncmp(e, FNAME ": ", strlen(FNAME) + 2) && strstr(e, field);
    if (!ok)
        fprintf(stderr, "  %s: got %s '%s', want %s naming '%s'\n", what, el_status_str(s), e,
                el_status_str(want), field);
    EL_CHECK(ok);
}

static void test_valid_base(void) {
    base x;
    build(&x);
    el_gguf *g = NULL;
    EL_CHECK_OK(parse_bytes(x.b.p, x.b.n, &g));
    if (!g) return;
    EL_CHECK(g->n_kv == 5 && g->n_tensors == 2 && g->alignment == 32);
    EL_CHECK(g->data_offset == x.sections[x.n_sections - 1]);
    EL_CHECK(g->tensors[1].nbytes == 34 && g->tensors[1].offset == g->data_offset + 32);
    el_gguf_free(g);
    gb v2 = x.b; /* version 2 has the same layout */
    set_u32(&v2, x.version, 2);
    EL_CHECK_OK(parse_bytes(v2.p, v2.n, &g));
    EL_CHECK(g && g->version == 2);
    el_gguf_free(g);
}

static void test_truncation(void) {
    base x;
    build(&x);
    size_t fails = 0;
    for (size_t n = 0; n < x.b.n; n++) {
        el_status s = parse_bytes(x.b.p, n, NULL);
        const char *e = el_last_error();
        if (s != EL_E_INVALID || strncmp(e, FNAME ": ", strlen(FNAME) + 2)) {
            if (fails++ < 5)
                fprintf(stderr, "  truncated to %zu: %s '%s'\n", n, el_status_str(s), e);
        }
    }
    fprintf(stderr, "truncation at each of %zu offsets: %zu not refused as expected\n", x.b.n,
            fails);
    EL_CHECK(fails == 0);
    /* At section boundaries, the field that is cut off is named (early on, the counts
     * already promise more than the bytes left). */
    static const char *const next_field[] = {"tensor_count", "tensor_count",
                                             "metadata_kv_count", "metadata_kv_count",
                                             "metadata[4] key", "tensor[0] name",
                                             "tensor[1] name", "tensor 'a' offset"};
    for (size_t i = 0; i + 2 < x.n_sections && i < sizeof next_field / sizeof *next_field; i++) {
        gb t = x.b;
        t.n = x.sections[i];
        char what[64];
        snprintf(what, sizeof what, "truncated at section end %zu", i);
        expect(&t, EL_E_INVALID, next_field[i], what);
    }
    gb t = x.b;
    t.n = x.sections[x.n_sections - 1] + 40; /* inside tensor b's bytes */
    expect(&t, EL_E_INVALID, "tensor 'b' offset", "truncated inside the data");
}

static void test_planted(void) {
    base x;
    build(&x);
    gb b;
#define CASE(stmt, want, field, what) \
    do {                              \
        b = x.b;                      \
        stmt;                         \
        expect(&b, want, field, what);\
    } while (0)
    CASE(b.p[0] = 'X', EL_E_INVALID, "magic", "bad magic");
    CASE(set_u32(&b, x.version, 1), EL_E_UNSUPPORTED, "version", "v1");
    CASE(set_u32(&b, x.version, 3u << 24), EL_E_UNSUPPORTED, "big-endian", "big-endian");
    CASE(set_u32(&b, x.version, 7), EL_E_INVALID, "version", "version 7");
    CASE(set_u64(&b, x.n_tensors, 1ull << 62), EL_E_INVALID, "tensor_count", "huge tensor count");
    CASE(set_u64(&b, x.n_tensors, 100), EL_E_INVALID, "tensor_count", "tensor count > bytes");
    CASE(set_u64(&b, x.n_kv, ~0ull), EL_E_INVALID, "metadata_kv_count", "huge kv count");
    CASE(set_u64(&b, x.key0_len, 1ull << 40), EL_E_INVALID, "metadata[0] key", "huge key");
    CASE(set_u64(&b, x.key0_len, 0), EL_E_INVALID, "metadata[0] key", "empty key");
    CASE(set_u64(&b, x.arch_len, ~0ull), EL_E_INVALID, "'general.architecture': string length",
         "huge string");
    CASE(set_u64(&b, x.arr_count, 1ull << 61), EL_E_INVALID, "'t.tokens': array length",
         "huge array");
    CASE(set_u64(&b, x.str1_len, 1ull << 50), EL_E_INVALID, "'t.tokens': string length",
         "huge string in an array");
    CASE(set_u64(&b, x.nested_count, 1ull << 60), EL_E_INVALID, "'t.nested': array length",
         "huge nested array");
    CASE(set_u32(&b, x.inner_type, 13), EL_E_INVALID, "'t.nested'[0]: array element type",
         "unknown inner element type");
    CASE(set_u32(&b, x.align_type, 13), EL_E_INVALID, "value type", "unknown value type");
    CASE(set_u32(&b, x.align_type, EL_GGUF_I32), EL_E_INVALID, "general.alignment",
         "alignment not u32");
    CASE(set_u32(&b, x.align_val, 0), EL_E_INVALID, "general.alignment", "alignment 0");
    CASE(set_u32(&b, x.align_val, 3), EL_E_INVALID, "general.alignment", "alignment 3");
    CASE(set_u32(&b, x.align_val, 64), EL_E_INVALID, "tensor 'b'", "alignment 64: b misaligned");
    CASE(b.p[x.bool_val] = 2, EL_E_INVALID, "'t.flag'", "bool 2");
    CASE(b.p[x.key0_len + 8] = 0xff, EL_E_INVALID, "UTF-8", "key not UTF-8");
    CASE(b.p[x.t0_name + 8] = 'b', EL_E_INVALID, "'b' appears more than once", "duplicate name");
    CASE(memcpy(b.p + x.key0_len + 8, "general.alignment\0\0\0", 20);
         set_u64(&b, x.key0_len, 17);
         /* the value that follows is now read from inside the old key: any error is fine,
            but it must be a refusal */
         , EL_E_INVALID, FNAME, "key rewritten");
    CASE(set_u32(&b, x.t0_ndims, 5), EL_E_INVALID, "n_dims", "n_dims 5");
    CASE(set_u32(&b, x.t0_ndims, 0), EL_E_INVALID, "n_dims", "n_dims 0");
    CASE(set_u32(&b, x.t0_type, 4), EL_E_INVALID, "tensor 'a': type", "removed type id 4");
    CASE(set_u32(&b, x.t0_type, 1000), EL_E_INVALID, "tensor 'a': type", "type id 1000");
    CASE(set_u64(&b, x.t1_ne0, 33), EL_E_INVALID, "row length", "row not a whole Q8_0 block");
    CASE(set_u64(&b, x.t0_ne0, 1ull << 62), EL_E_INVALID, "tensor 'a': shape", "size overflow");
    CASE(set_u64(&b, x.t0_ne1, 1ull << 63), EL_E_INVALID, "ne[1]", "ne past 2^63");
    CASE(set_u64(&b, x.t1_off, 33), EL_E_INVALID, "alignment", "misaligned offset");
    CASE(set_u64(&b, x.t1_off, 0), EL_E_INVALID, "disjoint", "overlapping tensors");
    CASE(set_u64(&b, x.t1_off, 64), EL_E_INVALID, "tensor 'b' offset", "past the file");
    CASE(set_u64(&b, x.t1_off, ~0ull - 31), EL_E_INVALID, "tensor 'b' offset", "offset wraps");
#undef CASE
    /* Nesting: 5 arrays deep is refused, 4 is accepted. */
    for (int depth = 4; depth <= 5; depth++) {
        gb n = {{0}, 0};
        put(&n, "GGUF", 4);
        put_u32(&n, 3);
        put_u64(&n, 0);
        put_u64(&n, 1);
        put_str(&n, "deep");
        put_u32(&n, EL_GGUF_ARRAY);
        for (int d = 0; d < depth; d++) {
            put_u32(&n, d + 1 < depth ? EL_GGUF_ARRAY : EL_GGUF_U8);
            put_u64(&n, 1);
        }
        put(&n, "\x05", 1);
        if (depth == 5) expect(&n, EL_E_INVALID, "nested deeper", "5 deep");
        else EL_CHECK_OK(parse_bytes(n.p, n.n, NULL));
    }
    /* Overlap hidden behind an empty tensor: a [0, 64), z (empty) at 32, b [32, 64). */
    gb o = {{0}, 0};
    put(&o, "GGUF", 4);
    put_u32(&o, 3);
    put_u64(&o, 3);
    put_u64(&o, 0);
    static const struct { const char *name; uint64_t ne, off; } ts[] = {
        {"a", 16, 0}, {"z", 0, 32}, {"b", 8, 32}};
    for (int i = 0; i < 3; i++) {
        put_str(&o, ts[i].name);
        put_u32(&o, 1);
        put_u64(&o, ts[i].ne);
        put_u32(&o, 0);
        put_u64(&o, ts[i].off);
    }
    while (o.n % 32) o.p[o.n++] = 0;
    memset(o.p + o.n, 0, 64);
    o.n += 64;
    expect(&o, EL_E_INVALID, "disjoint", "overlap behind an empty tensor (found by fuzz_gguf)");
    /* An empty array and no tensors at all are fine. */
    gb e = {{0}, 0};
    put(&e, "GGUF", 4);
    put_u32(&e, 2);
    put_u64(&e, 0);
    put_u64(&e, 1);
    put_str(&e, "empty");
    put_u32(&e, EL_GGUF_ARRAY);
    put_u32(&e, EL_GGUF_STRING);
    put_u64(&e, 0);
    EL_CHECK_OK(parse_bytes(e.p, e.n, NULL));
}

static void test_bit_flips(void) {
    base x;
    build(&x);
    size_t ok = 0, refused = 0, other = 0;
    for (size_t i = 0; i < x.infos_end; i++) {
        for (int bit = 0; bit < 8; bit++) {
            gb b = x.b;
            b.p[i] ^= (uint8_t)(1u << bit);
            el_gguf *g = NULL;
            el_status s = parse_bytes(b.p, b.n, &g);
            if (s == EL_OK) {
                ok++;
                /* Whatever parses obeys the contract. */
                for (size_t t = 0; t < g->n_tensors; t++) {
                    const el_gguf_tensor *u = &g->tensors[t];
                    EL_CHECK(u->offset >= g->data_offset && u->offset + u->nbytes <= b.n);
                    EL_CHECK((u->offset - g->data_offset) % g->alignment == 0);
                }
                el_gguf_free(g);
            } else if ((s == EL_E_INVALID || s == EL_E_UNSUPPORTED) &&
                       !strncmp(el_last_error(), FNAME ": ", strlen(FNAME) + 2)) {
                refused++;
            } else {
                if (other++ < 5) fprintf(stderr, "  flip %zu.%d: %s\n", i, bit, el_last_error());
            }
        }
    }
    fprintf(stderr, "bit flips in the %zu header bytes: %zu parse, %zu refused, %zu other\n",
            x.infos_end, ok, refused, other);
    EL_CHECK(other == 0 && refused > ok);
}

/* A virtual file of 65536 entries, each a 1000-byte key and a 2000-byte string: about
 * 196 MB to hold, more than the budget. */
#define V_KEY 1000u
#define V_VAL 2000u
#define V_REC (8u + V_KEY + 4u + 8u + V_VAL)

static el_status virt_read(void *ctx, void *dst, size_t n, uint64_t off) {
    (void)ctx;
    uint8_t *d = dst;
    gb h = {{0}, 0};
    put(&h, "GGUF", 4);
    put_u32(&h, 3);
    put_u64(&h, 0);
    put_u64(&h, EL_GGUF_MAX_KV);
    for (size_t i = 0; i < n; i++, off++) {
        if (off < 24) {
            d[i] = h.p[off];
            continue;
        }
        uint64_t r = (off - 24) / V_REC, k = (off - 24) % V_REC;
        if (k < 8) {
            d[i] = (uint8_t)((uint64_t)V_KEY >> (8 * k));
        } else if (k < 8 + 9) { /* "k%08u", then 'x' up to V_KEY */
            char key[16];
            snprintf(key, sizeof key, "k%08u", (unsigned)r);
            d[i] = (uint8_t)key[k - 8];
        } else if (k < 8 + V_KEY) {
            d[i] = 'x';
        } else if (k < 8 + V_KEY + 4) {
            d[i] = k == 8 + V_KEY ? EL_GGUF_STRING : 0;
        } else if (k < 8 + V_KEY + 12) {
            d[i] = (uint8_t)((uint64_t)V_VAL >> (8 * (k - 8 - V_KEY - 4)));
        } else {
            d[i] = 'v';
        }
    }
    return EL_OK;
}

static void test_budget(void) {
    el_gguf_source src = {virt_read, NULL, 24 + (uint64_t)EL_GGUF_MAX_KV * V_REC, FNAME};
    el_gguf *g = NULL;
    el_status s = el_gguf_parse(&src, &g);
    fprintf(stderr, "virtual %.0f MB header: %s\n", (double)src.size / 1e6, el_last_error());
    EL_CHECK(s == EL_E_INVALID && g == NULL && strstr(el_last_error(), "64 MiB"));
}

/* ---- models and the CLI --------------------------------------------------------------- */

static void test_cli(void) {
    el_test_tmpdir();
    char args[1200], *out = NULL, *err = NULL;
    const char *good = EL_SOURCE_DIR "/tests/fixtures/gguf/llama_gqa_f32.gguf";
    snprintf(args, sizeof args, "inspect '%s'", good);
    EL_CHECK(el_test_run_cli(args, &out, &err) == 0);
    EL_CHECK(out && strstr(out, "llama.block_count") && strstr(out, "format   gguf") &&
             strstr(out, "model.layers.1.self_attn.k_proj.weight") && strstr(out, "[32, 64]"));
    free(out), free(err);
    snprintf(args, sizeof args, "inspect --json '%s'", good);
    EL_CHECK(el_test_run_cli(args, &out, &err) == 0);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    EL_CHECK(j && cJSON_GetObjectItem(j, "gguf") &&
             cJSON_GetArraySize(cJSON_GetObjectItem(j, "tensors")) == 20);
    cJSON_Delete(j);
    free(out), free(err);

    /* The same file cut inside its tensor infos: exit 2, file and field named. */
    size_t n = 0;
    char *bytes = el_test_read_file(good, &n);
    EL_CHECK(bytes && n > 2000);
    if (!bytes) return;
    const char *cut = el_test_path("cut.gguf");
    EL_CHECK(el_test_write_file(cut, bytes, 1000));
    snprintf(args, sizeof args, "inspect '%s'", cut);
    EL_CHECK(el_test_run_cli(args, &out, &err) == 2);
    EL_CHECK(err && strstr(err, "cut.gguf: tensor") && strstr(err, "expected"));
    if (err) fprintf(stderr, "cut file: %s", err);
    free(out), free(err);

    /* blk.0.attn_q.weight retyped Q8_0 (its bytes shrink, still inside the file): opens and
     * inspects, refuses to plan naming the tensor and the type. */
    const char *qn = "blk.0.attn_q.weight";
    char *at = memmem(bytes, n, qn, strlen(qn));
    EL_CHECK(at != NULL);
    if (at) {
        size_t type_at = (size_t)(at - bytes) + strlen(qn) + 4 + 2 * 8;
        bytes[type_at] = 9; /* Q8_1: ggml's activation type, never a weight here */
        const char *q8 = el_test_path("q8.gguf");
        EL_CHECK(el_test_write_file(q8, bytes, n));
        el_model *m = NULL;
        EL_CHECK_OK(el_model_open(q8, NULL, &m));
        el_plan plan;
        if (m) EL_CHECK_STATUS(el_plan_make(m, NULL, &plan), EL_E_UNSUPPORTED);
        EL_CHECK(strstr(el_last_error(), "tensor 'blk.0.attn_q.weight': GGML type Q8_1"));
        el_model_close(m);
        snprintf(args, sizeof args, "inspect '%s'", q8);
        EL_CHECK(el_test_run_cli(args, &out, &err) == 0);
        EL_CHECK(out && strstr(out, "Q8_1"));
        free(out), free(err);
        snprintf(args, sizeof args, "plan '%s'", q8);
        EL_CHECK(el_test_run_cli(args, &out, &err) == 2);
        EL_CHECK(err && strstr(err, "GGML type Q8_1 cannot be loaded"));
        free(out), free(err);
    }
    free(bytes);
    snprintf(args, sizeof args, "plan '%s/tests/fixtures/gguf/meta_all.gguf'", EL_SOURCE_DIR);
    EL_CHECK(el_test_run_cli(args, &out, &err) == 2);
    EL_CHECK(err && strstr(err, "architecture 'mamba' is not supported yet (supported: llama, "
                                "qwen2, gemma3, phi3, gpt2, bert)"));
    free(out), free(err);
}

int main(void) {
    test_valid_base();
    test_truncation();
    test_planted();
    test_bit_flips();
    test_budget();
    test_cli();
    el_test_tmpdir_cleanup();
    return el_test_finish("test_loader_gguf_hostile");
}
