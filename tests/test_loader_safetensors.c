/* test_loader_safetensors.c - the safetensors prefix and header validator: valid files of
 * every dtype, every malformed-header case we know of, offsets past 4 GiB (in memory and in
 * a real sparse file), and that a failed parse leaves the tensor table untouched. */
// ctest-labels: loader;unit
#include "tests/support/el_test.h"

#include "loader/model_impl.h"
#include "loader/safetensors.h"
#include "platform/platform.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define GIB (1024ull * 1024ull * 1024ull)

static bool err_has(const char *needle) {
    if (strstr(el_last_error(), needle)) return true;
    fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", el_last_error(), needle);
    return false;
}

/* Parses json as the header of file 0 with a data section of data_len bytes. */
static el_status parse(const char *json, uint64_t data_len, el_tensor_table *t) {
    size_t n = strlen(json);
    return el_st_parse_header(json, n, 8 + n, data_len, 0, "t.safetensors", t);
}

/* Expects json to fail with want and a message containing each of the NULL-terminated
 * needles, and the table (which holds one tensor beforehand) to be exactly as it was. */
static void expect_fail_n(const char *json, size_t len, uint64_t data_len, el_status want,
                          const char *const *needles) {
    el_tensor_table t = {0};
    el_tensor pre = {.name = "pre", .dtype = EL_DT_F32, .ndim = 1, .shape = {1}, .nbytes = 4,
                     .offset = 100, .loaded_dtype = EL_DT_F32};
    EL_CHECK_OK(el_tensor_table_push(&t, &pre));
    el_tensor *items = t.items;
    size_t cap = t.capacity;
    el_status st = el_st_parse_header(json, len, 8 + len, data_len, 1, "bad.safetensors", &t);
    if (st != want)
        fprintf(stderr, "  for header: %.200s\n", json);
    EL_CHECK_STATUS(st, want);
    EL_CHECK(strstr(el_last_error(), "bad.safetensors") == el_last_error());
    for (size_t i = 0; needles && needles[i]; i++) EL_CHECK(err_has(needles[i]));
    EL_CHECK(t.count == 1 && t.items == items && t.capacity == cap);
    EL_CHECK(!strcmp(t.items[0].name, "pre") && t.items[0].offset == 100);
    el_tensor_table_free(&t);
}

#define EXPECT_FAIL(json, data_len, want, ...)                                            \
    do {                                                                                  \
        static const char *const needles_[] = {__VA_ARGS__, NULL};                        \
        expect_fail_n(json, strlen(json), data_len, want, needles_);                      \
    } while (0)

/* ---- el_utf8_valid and the JSON guard ------------------------------------------------- */

static void test_utf8(void) {
    static const struct { const char *s; bool ok; } cases[] = {
        {"", true},
        {"plain ascii", true},
        {"\xc3\xa9", true},                 /* U+00E9 */
        {"\xe2\x82\xac", true},             /* U+20AC */
        {"\xf0\x9f\x98\x80", true},         /* U+1F600 */
        {"\xed\x9f\xbf", true},             /* U+D7FF, last before the surrogates */
        {"\xee\x80\x80", true},             /* U+E000, first after */
        {"\xf4\x8f\xbf\xbf", true},         /* U+10FFFF */
        {"\xff", false},
        {"\xfe", false},
        {"\x80", false},                    /* lone continuation */
        {"\xc0\xaf", false},                /* overlong '/' */
        {"\xc1\xbf", false},                /* overlong */
        {"\xe0\x80\xaf", false},            /* overlong 3-byte */
        {"\xf0\x80\x80\xaf", false},        /* overlong 4-byte */
        {"\xed\xa0\x80", false},            /* U+D800 surrogate */
        {"\xed\xbf\xbf", false},            /* U+DFFF surrogate */
        {"\xf4\x90\x80\x80", false},        /* U+110000 */
        {"\xf5\x80\x80\x80", false},
        {"\xc3", false},                    /* truncated */
        {"\xe2\x82", false},                /* truncated */
        {"\xf0\x9f\x98", false},            /* truncated */
        {"a\xc3(", false},                  /* bad continuation */
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        bool got = el_utf8_valid(cases[i].s, strlen(cases[i].s));
        if (got != cases[i].ok) fprintf(stderr, "  utf8 case %zu\n", i);
        EL_CHECK(got == cases[i].ok);
    }
    /* Length is honoured: the bytes after n are not looked at. */
    EL_CHECK(el_utf8_valid("ab\xff", 2));
    EL_CHECK(!el_utf8_valid("\xe2\x82\xac", 2));
}

static void test_depth(void) {
    char deep[200];
    for (int d = 63; d <= 65; d++) {
        memset(deep, '[', (size_t)d);
        memset(deep + d, ']', (size_t)d);
        el_status want = d <= 64 ? EL_OK : EL_E_INVALID;
        EL_CHECK_STATUS(el_json_check_depth(deep, (size_t)(2 * d), 64, "x.json"), want);
    }
    EL_CHECK(err_has("x.json: JSON nests deeper than 64"));
    /* Brackets inside strings do not count, escaped quotes do not end a string. */
    const char *s = "{\"a\": \"[[[[[[\\\"[[[[{{{{\"}";
    EL_CHECK_OK(el_json_check_depth(s, strlen(s), 1, "x.json"));
    EL_CHECK_STATUS(el_json_check_depth("[[", 2, 1, "x.json"), EL_E_INVALID);

    /* A 10000-deep bomb: a clean error, no recursion into cJSON. */
    size_t n = 10000;
    char *bomb = malloc(2 * n + 1);
    memset(bomb, '[', n);
    memset(bomb + n, ']', n);
    bomb[2 * n] = 0;
    EXPECT_FAIL(bomb, 0, EL_E_INVALID, "JSON nests deeper than 64");
    for (size_t i = 0; i < n; i++) bomb[i] = i % 2 ? '{' : '[';
    EXPECT_FAIL(bomb, 0, EL_E_INVALID, "JSON nests deeper than 64");
    free(bomb);

    /* Exactly 64 deep in an ignored field parses; 65 does not. */
    char json[512];
    for (int extra = 62; extra <= 63; extra++) {
        char nest[160];
        memset(nest, '[', (size_t)extra);
        memset(nest + extra, ']', (size_t)extra);
        nest[2 * extra] = 0;
        snprintf(json, sizeof json,
                 "{\"w\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"x\":%s}}",
                 nest);
        el_tensor_table t = {0};
        EL_CHECK_STATUS(parse(json, 1, &t), extra == 62 ? EL_OK : EL_E_INVALID);
        el_tensor_table_free(&t);
    }
}

static void test_lexical(void) {
    EXPECT_FAIL("hello world", 0, EL_E_INVALID, "not valid JSON");
    EXPECT_FAIL("{\"a\" 1}", 0, EL_E_INVALID, "not valid JSON");
    expect_fail_n("", 0, 0, EL_E_INVALID, NULL);
    EXPECT_FAIL("[]", 0, EL_E_INVALID, "expected a JSON object");
    EXPECT_FAIL("42", 0, EL_E_INVALID, "expected a JSON object", "got 42");
    EXPECT_FAIL("\"str\"", 0, EL_E_INVALID, "expected a JSON object");
    EXPECT_FAIL("null", 0, EL_E_INVALID, "expected a JSON object");
    EXPECT_FAIL("{} x", 0, EL_E_INVALID, "after the JSON value");
    EXPECT_FAIL("{}{}", 0, EL_E_INVALID, "after the JSON value");
    EXPECT_FAIL("{\"a\\q\":1}", 0, EL_E_INVALID, "invalid escape");
    EXPECT_FAIL("{\"a\\u00zz\":1}", 0, EL_E_INVALID, "\\u escape");
    EXPECT_FAIL("{\"a\tb\":1}", 0, EL_E_INVALID, "control byte 0x09");
    EXPECT_FAIL("{\"abc", 0, EL_E_INVALID, "not terminated");
    EXPECT_FAIL("{\"abc\\", 0, EL_E_INVALID, "not terminated");
    /* Raw NUL bytes anywhere are refused (cJSON would stop at them). */
    expect_fail_n("{}\0", 3, 0, EL_E_INVALID, NULL);
    expect_fail_n("{\"a\0b\":1}", 9, 0, EL_E_INVALID, NULL);
    /* Trailing whitespace (padding) is fine, and so is an empty table. */
    el_tensor_table t = {0};
    EL_CHECK_OK(parse("{}   \n", 0, &t));
    EL_CHECK_OK(parse(" {\"__metadata__\":{\"format\":\"pt\"}} ", 0, &t));
    EL_CHECK(t.count == 0);
    el_tensor_table_free(&t);
    EXPECT_FAIL("{}", 4, EL_E_INVALID, "4 trailing bytes");
}

/* Every proper prefix of a valid header is rejected (a header cut short by truncation). */
static void test_truncated(void) {
    const char *json = "{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":"
                       "[2,3],\"data_offsets\":[0,24]},\"b\":{\"dtype\":\"BF16\",\"shape\":[],"
                       "\"data_offsets\":[24,26]}}";
    size_t n = strlen(json);
    el_tensor_table t = {0};
    EL_CHECK_OK(parse(json, 26, &t));
    EL_CHECK(t.count == 2);
    el_tensor_table_free(&t);
    int bad = 0;
    for (size_t k = 1; k < n; k++) {
        /* An exact-size heap copy, so ASan sees any read past the cut. */
        char *cut = malloc(k);
        memcpy(cut, json, k);
        el_tensor_table u = {0};
        el_status st = el_st_parse_header(cut, k, 8 + k, 26, 0, "cut", &u);
        if (st != EL_E_INVALID || u.count != 0) bad++;
        el_tensor_table_free(&u);
        free(cut);
    }
    EL_CHECK(bad == 0);
}

/* ---- the prefix ----------------------------------------------------------------------- */

static void le64(uint8_t b[8], uint64_t v) {
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)(v >> (8 * i));
}

static void test_prefix(void) {
    uint8_t p[8];
    uint64_t jl = 0;
    le64(p, 100);
    EL_CHECK_OK(el_st_check_prefix(p, 108, "f", &jl));
    EL_CHECK(jl == 100);
    jl = 7;
    EL_CHECK_STATUS(el_st_check_prefix(p, 107, "f", &jl), EL_E_INVALID); /* 1 byte past */
    EL_CHECK(err_has("100") && err_has("99") && err_has("107"));
    EL_CHECK(jl == 7);
    le64(p, 0);
    EL_CHECK_STATUS(el_st_check_prefix(p, 108, "f", &jl), EL_E_INVALID);
    EL_CHECK(err_has("got 0"));
    le64(p, EL_ST_HEADER_MAX);
    EL_CHECK_OK(el_st_check_prefix(p, 8ull * GIB, "f", &jl));
    EL_CHECK(jl == EL_ST_HEADER_MAX);
    le64(p, (uint64_t)EL_ST_HEADER_MAX + 1);
    EL_CHECK_STATUS(el_st_check_prefix(p, 8ull * GIB, "f", &jl), EL_E_INVALID);
    EL_CHECK(err_has("100000001"));
    le64(p, UINT64_MAX);
    EL_CHECK_STATUS(el_st_check_prefix(p, UINT64_MAX, "f", &jl), EL_E_INVALID);
    le64(p, 1);
    EL_CHECK_STATUS(el_st_check_prefix(p, 7, "f", &jl), EL_E_INVALID);
    EL_CHECK_STATUS(el_st_check_prefix(p, 8, "f", &jl), EL_E_INVALID);
    EL_CHECK_OK(el_st_check_prefix(p, 9, "f", &jl));
    /* Little-endian: the low byte first. */
    const uint8_t q[8] = {0x02, 0x01, 0, 0, 0, 0, 0, 0};
    EL_CHECK_OK(el_st_check_prefix(q, 1000, "f", &jl));
    EL_CHECK(jl == 0x102);
}

/* ---- valid files ---------------------------------------------------------------------- */

static void test_valid_file(void) {
    /* File order as listed; the zero-size tensor sits at the same offset as the next one.
     * (Written with our own header and byte pattern through el_test_write_safetensors_raw.) */
    el_test_tensor spec[] = {
        {"f64", EL_DT_F64, 2, {3, 2}},     {"f32", EL_DT_F32, 1, {5}},
        {"f16", EL_DT_F16, 3, {2, 1, 3}},  {"bf16", EL_DT_BF16, 1, {7}},
        {"i64", EL_DT_I64, 1, {2}},        {"i32", EL_DT_I32, 2, {1, 3}},
        {"empty", EL_DT_F32, 2, {0, 3}},   {"i16", EL_DT_I16, 1, {5}},
        {"i8", EL_DT_I8, 1, {9}},          {"u8", EL_DT_U8, 1, {4}},
        {"bool", EL_DT_BOOL, 1, {3}},      {"scalar", EL_DT_F32, 0, {0}},
        {"\xc3\xa9t\xc3\xa9", EL_DT_F16, 1, {1}},
    };
    size_t n = sizeof spec / sizeof spec[0];
    char json[4096];
    size_t o = (size_t)snprintf(json, sizeof json, "{\"__metadata__\":{\"format\":\"pt\"}");
    uint64_t data_len = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t bytes = el_dtype_size(spec[i].dtype);
        o += (size_t)snprintf(json + o, sizeof json - o, ",\"%s\":{\"dtype\":\"%s\",\"shape\":[",
                              spec[i].name, el_dtype_name(spec[i].dtype));
        for (uint32_t d = 0; d < spec[i].ndim; d++) {
            bytes *= spec[i].shape[d];
            o += (size_t)snprintf(json + o, sizeof json - o, "%s%llu", d ? "," : "",
                                  (unsigned long long)spec[i].shape[d]);
        }
        o += (size_t)snprintf(json + o, sizeof json - o, "],\"data_offsets\":[%llu,%llu]}",
                              (unsigned long long)data_len,
                              (unsigned long long)(data_len + bytes));
        data_len += bytes;
    }
    snprintf(json + o, sizeof json - o, "}");
    uint8_t data[512];
    EL_CHECK(data_len <= sizeof data);
    for (size_t i = 0; i < sizeof data; i++) data[i] = (uint8_t)(i * 31 + 7);
    const char *path = el_test_path("all.safetensors");
    EL_CHECK(el_test_write_safetensors_raw(path, json, data, (size_t)data_len));

    size_t flen = 0;
    char *file = el_test_read_file(path, &flen);
    EL_CHECK(file != NULL && flen == 8 + strlen(json) + data_len);
    if (!file) return;
    uint64_t jl = 0;
    EL_CHECK_OK(el_st_check_prefix((const uint8_t *)file, flen, path, &jl));
    EL_CHECK(jl == strlen(json));
    el_tensor_table t = {0};
    EL_CHECK_OK(el_st_parse_header(file + 8, (size_t)jl, 8 + jl, flen - 8 - jl, 3, path, &t));
    EL_CHECK(t.count == n);
    uint64_t off = 8 + jl;
    for (size_t i = 0; i < n && i < t.count; i++) {
        const el_tensor *x = &t.items[i];
        uint64_t elems = 1;
        for (uint32_t d = 0; d < spec[i].ndim; d++) elems *= spec[i].shape[d];
        uint64_t bytes = elems * el_dtype_size(spec[i].dtype);
        bool ok = !strcmp(x->name, spec[i].name) && x->dtype == spec[i].dtype &&
                  x->ndim == spec[i].ndim && x->nbytes == bytes && x->offset == off &&
                  x->file == 3 && x->loaded_dtype == spec[i].dtype && x->data == NULL &&
                  x->arena_offset == 0;
        for (uint32_t d = 0; d < spec[i].ndim; d++) ok = ok && x->shape[d] == spec[i].shape[d];
        if (!ok) fprintf(stderr, "  tensor %zu (%s) differs\n", i, spec[i].name);
        EL_CHECK(ok);
        /* The offset points at this tensor's bytes of the pattern. */
        if (bytes && x->offset + bytes <= flen)
            EL_CHECK(!memcmp(file + x->offset, data + (off - 8 - jl), bytes));
        off += bytes;
    }
    EL_CHECK(off == flen);
    EL_CHECK(t.items[11].ndim == 0 && t.items[11].nbytes == 4); /* scalar: one element */
    EL_CHECK(t.items[6].nbytes == 0);

    /* The harness writer (random names and data) agrees with the parser too. */
    el_test_tensor small[] = {{"x", EL_DT_F32, 2, {3, 4}}, {"y", EL_DT_BF16, 1, {6}}};
    const char *p2 = el_test_path("small.safetensors");
    EL_CHECK(el_test_write_safetensors(p2, small, 2, 1));
    size_t l2 = 0;
    char *f2 = el_test_read_file(p2, &l2);
    uint64_t j2 = 0;
    EL_CHECK(f2 && el_st_check_prefix((const uint8_t *)f2, l2, p2, &j2) == EL_OK);
    el_tensor_table t2 = {0};
    if (f2) EL_CHECK_OK(el_st_parse_header(f2 + 8, (size_t)j2, 8 + j2, l2 - 8 - j2, 0, p2, &t2));
    EL_CHECK(t2.count == 2 && t2.items[1].offset == 8 + j2 + 48 && t2.items[1].nbytes == 12);
    el_tensor_table_free(&t2);
    free(f2);

    /* A second file's tensors append with their own file index and offsets. */
    const char *json2 = "{\"other\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}";
    EL_CHECK_OK(el_st_parse_header(json2, strlen(json2), 50, 2, 4, "two", &t));
    EL_CHECK(t.count == n + 1 && t.items[n].file == 4 && t.items[n].offset == 50);
    /* ... but the same name again, from any file, is a duplicate. */
    const char *json3 = "{\"f32\":{\"dtype\":\"U8\",\"shape\":[2],\"data_offsets\":[0,2]}}";
    EL_CHECK_STATUS(el_st_parse_header(json3, strlen(json3), 50, 2, 5, "three", &t),
                    EL_E_INVALID);
    EL_CHECK(err_has("three: tensor 'f32'") && err_has("file #3"));
    EL_CHECK(t.count == n + 1);
    el_tensor_table_free(&t);
    EL_CHECK(t.items == NULL && t.count == 0 && t.capacity == 0);
    el_tensor_table_free(NULL);
    free(file);
}

static void test_table_push(void) {
    el_tensor_table t = {0};
    char name[16];
    for (int i = 0; i < 100; i++) {
        snprintf(name, sizeof name, "t%d", i);
        el_tensor x = {.name = name, .dtype = EL_DT_F16, .ndim = 1, .shape = {(uint64_t)i},
                       .nbytes = 2ull * (uint64_t)i, .offset = 1000u + (uint64_t)i};
        EL_CHECK_OK(el_tensor_table_push(&t, &x));
    }
    strcpy(name, "clobbered");
    bool ok = t.count == 100 && t.capacity >= 100;
    for (int i = 0; ok && i < 100; i++) {
        snprintf(name, sizeof name, "t%d", i);
        ok = !strcmp(t.items[i].name, name) && t.items[i].name != name &&
             t.items[i].offset == 1000u + (uint64_t)i && t.items[i].shape[0] == (uint64_t)i;
    }
    EL_CHECK(ok);
    el_tensor_table_free(&t);
    EL_CHECK(t.count == 0 && t.items == NULL);
}

/* ---- malformed tensors ---------------------------------------------------------------- */

#define T(name, dtype, shape, b, e) \
    "\"" name "\":{\"dtype\":\"" dtype "\",\"shape\":" shape ",\"data_offsets\":[" #b "," #e "]}"

static void test_layout(void) {
    EXPECT_FAIL("{" T("a", "F32", "[4]", 0, 16) "," T("b", "F32", "[4]", 8, 24) "}", 24,
                EL_E_INVALID, "overlap", "'a' [0, 16]", "'b' [8, 24]");
    EXPECT_FAIL("{" T("a", "F32", "[4]", 0, 16) "," T("b", "F32", "[4]", 20, 36) "}", 36,
                EL_E_INVALID, "gap of 4 bytes", "'a' [0, 16]", "'b' [20, 36]");
    EXPECT_FAIL("{" T("a", "F32", "[4]", 4, 20) "}", 20, EL_E_INVALID, "gap of 4 bytes",
                "start");
    EXPECT_FAIL("{" T("a", "F32", "[4]", 0, 16) "}", 20, EL_E_INVALID, "4 trailing bytes",
                "'a'");
    EXPECT_FAIL("{" T("a", "F32", "[4]", 0, 16) "}", 12, EL_E_INVALID, "data_offsets",
                "end <= 12", "got 16");
    /* Same range twice. */
    EXPECT_FAIL("{" T("a", "F32", "[4]", 0, 16) "," T("b", "F32", "[4]", 0, 16) "}", 16,
                EL_E_INVALID, "overlap");
    /* A zero-size tensor inside another one's bytes. */
    EXPECT_FAIL("{" T("a", "F32", "[4]", 0, 16) "," T("z", "F32", "[0]", 8, 8) "}", 16,
                EL_E_INVALID, "overlap", "'z'");

    /* Out of order in the JSON, zero-size at the boundaries: fine, and sorted by offset. */
    el_tensor_table t = {0};
    EL_CHECK_OK(parse("{" T("c", "U8", "[3]", 5, 8) "," T("z0", "I8", "[0,7]", 0, 0) ","
                      T("a", "I16", "[2]", 0, 4) "," T("zend", "F64", "[2,0]", 8, 8) ","
                      T("b", "BOOL", "[1]", 4, 5) "}", 8, &t));
    const char *order[] = {"z0", "a", "b", "c", "zend"};
    bool ok = t.count == 5;
    for (size_t i = 0; ok && i < 5; i++) ok = !strcmp(t.items[i].name, order[i]);
    EL_CHECK(ok);
    el_tensor_table_free(&t);
}

static void test_fields(void) {
    EXPECT_FAIL("{" T("a", "F32", "[2,2]", 0, 12) "}", 12, EL_E_INVALID,
                "tensor 'a': data_offsets: expected end - begin = 16", "got 12");
    EXPECT_FAIL("{" T("w", "F8_E4M3", "[4]", 0, 4) "}", 4, EL_E_UNSUPPORTED,
                "tensor 'w': dtype", "got 'F8_E4M3'");
    EXPECT_FAIL("{" T("w", "f32", "[4]", 0, 16) "}", 16, EL_E_INVALID, "tensor 'w': dtype",
                "got 'f32'");
    EXPECT_FAIL("{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, EL_E_INVALID,
                "dtype: expected a string, got 32");
    EXPECT_FAIL("{" T("w", "F32", "[-1]", 0, 4) "}", 4, EL_E_INVALID, "shape[0]", "got -1");
    EXPECT_FAIL("{" T("w", "F32", "[2,1.5]", 0, 12) "}", 12, EL_E_INVALID, "shape[1]",
                "got 1.5");
    EXPECT_FAIL("{" T("w", "F32", "[\"2\"]", 0, 8) "}", 8, EL_E_INVALID, "shape[0]", "'2'");
    EXPECT_FAIL("{" T("w", "F32", "[1e300]", 0, 4) "}", 4, EL_E_INVALID, "shape[0]");
    EXPECT_FAIL("{" T("w", "F32", "[4294967296,4294967296,16]", 0, 4) "}", 4, EL_E_INVALID,
                "tensor 'w': shape", "overflows");
    /* 2^31 * 2^31 * 4 = 2^64: the product fits before the dtype size, not after. */
    EXPECT_FAIL("{" T("w", "F32", "[2147483648,2147483648]", 0, 4) "}", 4, EL_E_INVALID,
                "overflows");
    EXPECT_FAIL("{" T("w", "U8", "[1,1,1,1,1,1,1,1,1]", 0, 1) "}", 1, EL_E_INVALID,
                "at most 8 dimensions, got 9");
    el_tensor_table t = {0};
    EL_CHECK_OK(parse("{" T("w", "U8", "[1,1,1,1,1,1,1,2]", 0, 2) "}", 2, &t));
    EL_CHECK(t.count == 1 && t.items[0].ndim == 8 && t.items[0].shape[7] == 2);
    el_tensor_table_free(&t);
    /* A zero dimension with huge others is zero bytes, not an overflow. */
    EL_CHECK_OK(parse("{" T("w", "F64", "[4294967296,0,4294967296]", 0, 0) "}", 0, &t));
    EL_CHECK(t.count == 1 && t.items[0].nbytes == 0);
    el_tensor_table_free(&t);

    EXPECT_FAIL("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, EL_E_INVALID,
                "dtype: expected a string, got nothing");
    EXPECT_FAIL("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, EL_E_INVALID,
                "shape: expected an array");
    EXPECT_FAIL("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, EL_E_INVALID, "data_offsets");
    EXPECT_FAIL("{\"w\":[1,2]}", 0, EL_E_INVALID, "tensor 'w': expected an object");
    EXPECT_FAIL("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"shape\":[2],\"data_offsets\":[0,4]}}",
                4, EL_E_INVALID, "shape: expected once");
    EXPECT_FAIL("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0]}}", 4,
                EL_E_INVALID, "got 1");
    EXPECT_FAIL("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4,
                EL_E_INVALID, "got 3");
    EXPECT_FAIL("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":\"0-4\"}}", 4,
                EL_E_INVALID, "data_offsets: expected [begin, end]");
    EXPECT_FAIL("{" T("w", "F32", "[0]", 4, 0) "}", 4, EL_E_INVALID, "begin <= end");
    EXPECT_FAIL("{" T("w", "F32", "[1]", -4, 0) "}", 4, EL_E_INVALID, "data_offsets[0]");
    EXPECT_FAIL("{" T("w", "F32", "[1]", 0, 4.5) "}", 4, EL_E_INVALID, "data_offsets[1]");
    /* Unknown fields in a tensor entry are ignored. */
    EL_CHECK_OK(parse("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],"
                      "\"extra\":{\"k\":[1,2]}}}", 4, &t));
    EL_CHECK(t.count == 1);
    el_tensor_table_free(&t);
    /* 1.0 is integral (JSON has no integer type); -0 is 0. */
    EL_CHECK_OK(parse("{" T("w", "F32", "[1.0]", -0, 4.0) "}", 4, &t));
    EL_CHECK(t.count == 1 && t.items[0].nbytes == 4);
    el_tensor_table_free(&t);
}

static void test_names(void) {
    EXPECT_FAIL("{" T("a", "F32", "[1]", 0, 4) "," T("a", "F32", "[1]", 4, 8) "}", 8,
                EL_E_INVALID, "tensor 'a': name: expected once, got it twice");
    /* Duplicates far apart in a larger header. */
    char *big = malloc(64 * 1024);
    size_t o = (size_t)sprintf(big, "{");
    for (int i = 0; i < 500; i++)
        o += (size_t)sprintf(big + o, "%s\"t%d\":{\"dtype\":\"U8\",\"shape\":[1],"
                             "\"data_offsets\":[%d,%d]}", i ? "," : "", i == 499 ? 3 : i, i,
                             i + 1);
    sprintf(big + o, "}");
    EXPECT_FAIL(big, 500, EL_E_INVALID, "tensor 't3'", "twice");
    free(big);

    EXPECT_FAIL("{" T("bad\xff", "F32", "[1]", 0, 4) "}", 4, EL_E_INVALID, "UTF-8",
                "bad\\xff");
    EXPECT_FAIL("{" T("ov\xc0\xaf", "F32", "[1]", 0, 4) "}", 4, EL_E_INVALID, "UTF-8");
    EXPECT_FAIL("{" T("a\\u0000b", "F32", "[1]", 0, 4) "}", 4, EL_E_INVALID, "\\u0000");
    EXPECT_FAIL("{" T("", "F32", "[1]", 0, 4) "}", 4, EL_E_INVALID, "1..512 bytes, got 0");
    /* A lone surrogate escape would give invalid UTF-8: refused either way. */
    EXPECT_FAIL("{" T("s\\ud800", "F32", "[1]", 0, 4) "}", 4, EL_E_INVALID, "bad.safetensors");

    char name[600], json[1024];
    memset(name, 'n', sizeof name);
    for (size_t len = 512; len <= 513; len++) {
        name[len] = 0;
        snprintf(json, sizeof json,
                 "{\"%s\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", name);
        el_tensor_table t = {0};
        EL_CHECK_STATUS(parse(json, 1, &t), len == 512 ? EL_OK : EL_E_INVALID);
        EL_CHECK(t.count == (len == 512 ? 1u : 0u));
        el_tensor_table_free(&t);
        name[len] = 'n';
    }
    /* Escapes decode to UTF-8 names. */
    el_tensor_table t = {0};
    EL_CHECK_OK(parse("{" T("caf\\u00e9.\\ud83d\\ude00", "U8", "[1]", 0, 1) "}", 1, &t));
    EL_CHECK(t.count == 1 && !strcmp(t.items[0].name, "caf\xc3\xa9.\xf0\x9f\x98\x80"));
    el_tensor_table_free(&t);
}

static void test_metadata(void) {
    el_tensor_table t = {0};
    EL_CHECK_OK(parse("{\"__metadata__\":{\"format\":\"pt\",\"k\":\"v\"}," T("a", "U8", "[1]",
                      0, 1) "}", 1, &t));
    EL_CHECK(t.count == 1 && !strcmp(t.items[0].name, "a"));
    el_tensor_table_free(&t);
    EXPECT_FAIL("{\"__metadata__\":{\"format\":1}}", 0, EL_E_INVALID, "__metadata__",
                "'format'", "got 1");
    EXPECT_FAIL("{\"__metadata__\":{\"nested\":{\"a\":\"b\"}}}", 0, EL_E_INVALID,
                "__metadata__");
    EXPECT_FAIL("{\"__metadata__\":\"pt\"}", 0, EL_E_INVALID, "__metadata__: expected an object");
    EXPECT_FAIL("{\"__metadata__\":{},\"__metadata__\":{}}", 0, EL_E_INVALID, "twice");
}

/* ---- past 4 GiB ----------------------------------------------------------------------- */

static void test_big_offsets(void) {
    /* One tensor ending at 5 GiB, one starting past 4 GiB and past 2^32 + 2^31. */
    char json[512];
    uint64_t a_end = 4 * GIB + GIB / 2 + 12; /* past 2^32 + 2^31 */
    uint64_t total = 5 * GIB;
    snprintf(json, sizeof json,
             "{\"a\":{\"dtype\":\"U8\",\"shape\":[%llu],\"data_offsets\":[0,%llu]},"
             "\"b\":{\"dtype\":\"F32\",\"shape\":[%llu],\"data_offsets\":[%llu,%llu]}}",
             (unsigned long long)a_end, (unsigned long long)a_end,
             (unsigned long long)((total - a_end) / 4), (unsigned long long)a_end,
             (unsigned long long)total);
    EL_CHECK((total - a_end) % 4 == 0);
    el_tensor_table t = {0};
    uint64_t data_start = 3 * GIB + 7; /* absolute offsets are exact sums, too */
    EL_CHECK_OK(el_st_parse_header(json, strlen(json), data_start, total, 2, "big", &t));
    EL_CHECK(t.count == 2);
    if (t.count == 2) {
        EL_CHECK(t.items[0].nbytes == a_end && t.items[0].offset == data_start);
        EL_CHECK(t.items[1].offset == data_start + a_end);
        EL_CHECK(t.items[1].offset == 8053063699ull); /* 3 GiB + 7 + 4.5 GiB + 12 */
        EL_CHECK(t.items[1].nbytes == total - a_end && t.items[1].shape[0] == (total - a_end) / 4);
    }
    el_tensor_table_free(&t);
    /* The same header against a data section 1 byte short. */
    snprintf(json, sizeof json,
             "{\"a\":{\"dtype\":\"U8\",\"shape\":[%llu],\"data_offsets\":[0,%llu]}}",
             (unsigned long long)total, (unsigned long long)total);
    expect_fail_n(json, strlen(json), total - 1, EL_E_INVALID, NULL);
    EL_CHECK(err_has("5368709119") && err_has("5368709120"));
    /* 2^53 is the largest accepted integer; above, doubles cannot hold every integer. */
    EXPECT_FAIL("{" T("w", "U8", "[9007199254740994]", 0, 9007199254740994) "}", 0,
                EL_E_INVALID, "shape[0]");
    /* data_start + data_len must not overflow. */
    const char *e = "{}";
    el_tensor_table u = {0};
    EL_CHECK_STATUS(el_st_parse_header(e, 2, UINT64_MAX - 1, 5, 0, "ovf", &u), EL_E_INVALID);
}

/* A real 5 GiB sparse file (no disk used) with a tensor past 4 GiB: prefix and header
 * give its exact offset, and the bytes read there are the ones written there. */
static void test_sparse_file(void) {
    uint64_t pad = 5 * GIB, tail = 4096;
    char json[512];
    snprintf(json, sizeof json,
             "{\"pad\":{\"dtype\":\"U8\",\"shape\":[%llu],\"data_offsets\":[0,%llu]},"
             "\"tail\":{\"dtype\":\"F32\",\"shape\":[%llu],\"data_offsets\":[%llu,%llu]}}",
             (unsigned long long)pad, (unsigned long long)pad,
             (unsigned long long)(tail / 4), (unsigned long long)pad,
             (unsigned long long)(pad + tail));
    const char *path = el_test_path("sparse.safetensors");
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    EL_CHECK(fd >= 0);
    if (fd < 0) return;
    uint64_t jl = strlen(json), size = 8 + jl + pad + tail;
    uint8_t p[8];
    le64(p, jl);
    EL_CHECK(pwrite(fd, p, 8, 0) == 8 && pwrite(fd, json, jl, 8) == (ssize_t)jl);
    if (ftruncate(fd, (off_t)size) != 0) {
        close(fd);
        printf("note: ftruncate to %llu bytes failed here; sparse-file check not run\n",
               (unsigned long long)size);
        return;
    }
    /* Mark the first and last 16 bytes of "tail". */
    const uint64_t want_off = 8 + jl + pad;
    const char mark[16] = "tail-begins-here", endm[16] = "tail-ends-here!!";
    EL_CHECK(pwrite(fd, mark, 16, (off_t)want_off) == 16);
    EL_CHECK(pwrite(fd, endm, 16, (off_t)(size - 16)) == 16);

    struct stat st;
    EL_CHECK(fstat(fd, &st) == 0 && (uint64_t)st.st_size == size);
    printf("sparse file: %llu bytes, %llu bytes on disk\n", (unsigned long long)st.st_size,
           (unsigned long long)st.st_blocks * 512ull);
    uint8_t prefix[8];
    uint64_t got_jl = 0;
    EL_CHECK(pread(fd, prefix, 8, 0) == 8);
    EL_CHECK_OK(el_st_check_prefix(prefix, (uint64_t)st.st_size, path, &got_jl));
    EL_CHECK(got_jl == jl);
    char *hdr = malloc(got_jl);
    EL_CHECK(pread(fd, hdr, got_jl, 8) == (ssize_t)got_jl);
    el_tensor_table t = {0};
    EL_CHECK_OK(el_st_parse_header(hdr, got_jl, 8 + got_jl, (uint64_t)st.st_size - 8 - got_jl,
                                   0, path, &t));
    free(hdr);
    EL_CHECK(t.count == 2);
    if (t.count == 2) {
        const el_tensor *x = &t.items[1];
        EL_CHECK(!strcmp(x->name, "tail") && x->offset == want_off && x->offset > 4 * GIB);
        EL_CHECK(t.items[0].nbytes == pad && t.items[0].offset == 8 + jl);
        char buf[16];
        EL_CHECK(pread(fd, buf, 16, (off_t)x->offset) == 16 && !memcmp(buf, mark, 16));
        EL_CHECK(pread(fd, buf, 16, (off_t)(x->offset + x->nbytes - 16)) == 16 &&
                 !memcmp(buf, endm, 16));
        /* The hole before it reads back as zeros. */
        uint8_t z[4096], zero[4096] = {0};
        EL_CHECK(pread(fd, z, sizeof z, (off_t)(x->offset - sizeof z)) == (ssize_t)sizeof z &&
                 !memcmp(z, zero, sizeof z));
    }
    el_tensor_table_free(&t);
    close(fd);
    unlink(path);
}

/* ---- scale ---------------------------------------------------------------------------- */

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void test_many(void) {
    const int n = 100000;
    size_t cap = (size_t)n * 96 + 16;
    char *json = malloc(cap);
    size_t o = (size_t)snprintf(json, cap, "{");
    /* Listed in reverse offset order so the sort has work to do. */
    for (int i = n - 1; i >= 0; i--)
        o += (size_t)snprintf(json + o, cap - o,
                              "\"model.layers.%d.w\":{\"dtype\":\"F16\",\"shape\":[2,2],"
                              "\"data_offsets\":[%d,%d]}%s",
                              i, i * 8, i * 8 + 8, i ? "," : "");
    snprintf(json + o, cap - o, "}");
    el_tensor_table t = {0};
    double t0 = now_s();
    EL_CHECK_OK(parse(json, (uint64_t)n * 8, &t));
    double dt = now_s() - t0;
    printf("100000 tensors: %.3f s, header %zu bytes\n", dt, o + 1);
    EL_CHECK(t.count == (size_t)n);
    bool ok = true;
    char name[64];
    uint64_t data_start = 8 + strlen(json);
    for (int i = 0; ok && i < n && (size_t)i < t.count; i++) {
        snprintf(name, sizeof name, "model.layers.%d.w", i);
        ok = !strcmp(t.items[i].name, name) && t.items[i].offset == data_start + 8u * (uint64_t)i;
    }
    EL_CHECK(ok);
    EL_CHECK(dt < 30.0); /* generous for sanitizer builds; an O(n^2) check takes minutes */

    /* Against that table, a second shard repeating one name is caught, fast. */
    const char *dup = "{\"model.layers.77777.w\":{\"dtype\":\"U8\",\"shape\":[1],"
                      "\"data_offsets\":[0,1]}}";
    EL_CHECK_STATUS(el_st_parse_header(dup, strlen(dup), 8 + strlen(dup), 1, 1, "s2", &t),
                    EL_E_INVALID);
    EL_CHECK(err_has("model.layers.77777.w") && err_has("file #0"));
    EL_CHECK(t.count == (size_t)n);
    el_tensor_table_free(&t);
    free(json);
}

int main(void) {
    test_utf8();
    test_depth();
    test_lexical();
    test_truncated();
    test_prefix();
    test_valid_file();
    test_table_push();
    test_layout();
    test_fields();
    test_names();
    test_metadata();
    test_big_offsets();
    test_sparse_file();
    test_many();
    return el_test_finish("test_loader_safetensors");
}
