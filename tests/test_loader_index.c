/* test_loader_index.c - model.safetensors.index.json: parsing (sorted shards and names,
 * unsafe shard names refused) and the cross-check against the tensors the shards hold. */
// ctest-labels: loader;unit
#include "tests/support/el_test.h"

#include "loader/safetensors.h"

#include <stdlib.h>
#include <string.h>

static bool err_has(const char *needle) {
    if (strstr(el_last_error(), needle)) return true;
    fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", el_last_error(), needle);
    return false;
}

static el_status parse_index(const char *json, el_st_index *idx) {
    return el_st_index_parse(json, strlen(json), "model.safetensors.index.json", idx);
}

/* Expects the index to fail with a message containing needle, leaving *out untouched. */
static void expect_index_fail(const char *json, const char *needle) {
    el_st_index idx;
    memset(&idx, 0xA5, sizeof idx);
    el_st_index before = idx;
    EL_CHECK_STATUS(parse_index(json, &idx), EL_E_INVALID);
    EL_CHECK(err_has("model.safetensors.index.json: "));
    if (needle) EL_CHECK(err_has(needle));
    EL_CHECK(!memcmp(&idx, &before, sizeof idx));
}

/* A one-tensor header line for shard headers. */
#define T(name, b, e) "\"" name "\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[" #b "," #e "]}"

static el_status add_shard(const char *json, uint64_t data_len, uint32_t file,
                           const char *fname, el_tensor_table *t) {
    return el_st_parse_header(json, strlen(json), 8 + strlen(json), data_len, file, fname, t);
}

/* Shard 0 = model-00001-of-00002, shard 1 = model-00002-of-00002 (sorted order). */
static const char *k_index =
    "{\"metadata\": {\"total_size\": 16},\n"
    " \"weight_map\": {\n"
    "   \"lm_head.weight\": \"model-00002-of-00002.safetensors\",\n"
    "   \"embed.weight\": \"model-00001-of-00002.safetensors\",\n"
    "   \"layers.0.w\": \"model-00001-of-00002.safetensors\",\n"
    "   \"norm.weight\": \"model-00002-of-00002.safetensors\"\n"
    " }}\n";
static const char *k_shard0 = "{" T("embed.weight", 0, 4) "," T("layers.0.w", 4, 8) "}";
static const char *k_shard1 = "{" T("norm.weight", 0, 4) "," T("lm_head.weight", 4, 8) "}";

static void test_good(void) {
    el_st_index idx = {0};
    EL_CHECK_OK(parse_index(k_index, &idx));
    EL_CHECK(idx.shard_count == 2 && idx.name_count == 4);
    if (idx.shard_count == 2 && idx.name_count == 4) {
        EL_CHECK(!strcmp(idx.shards[0], "model-00001-of-00002.safetensors"));
        EL_CHECK(!strcmp(idx.shards[1], "model-00002-of-00002.safetensors"));
        const char *names[] = {"embed.weight", "layers.0.w", "lm_head.weight", "norm.weight"};
        const uint32_t shard[] = {0, 0, 1, 1};
        bool ok = true;
        for (int i = 0; i < 4; i++)
            ok = ok && !strcmp(idx.names[i], names[i]) && idx.name_shard[i] == shard[i];
        EL_CHECK(ok);
    }
    el_tensor_table t = {0};
    EL_CHECK_OK(add_shard(k_shard0, 8, 0, "s0", &t));
    EL_CHECK_OK(add_shard(k_shard1, 8, 1, "s1", &t));
    EL_CHECK_OK(el_st_index_check(&idx, &t, "model.safetensors.index.json"));
    el_tensor_table_free(&t);
    el_st_index_free(&idx);
    EL_CHECK(idx.shards == NULL && idx.names == NULL && idx.shard_count == 0);
    el_st_index_free(NULL);

    /* No metadata (optional) and null metadata are fine; one shard. */
    EL_CHECK_OK(parse_index("{\"weight_map\":{\"a\":\"model.safetensors\"}}", &idx));
    EL_CHECK(idx.shard_count == 1 && idx.name_count == 1 && idx.name_shard[0] == 0);
    el_st_index_free(&idx);
    EL_CHECK_OK(parse_index("{\"metadata\":null,\"weight_map\":{\"a\":\"m.safetensors\"}}",
                            &idx));
    el_st_index_free(&idx);
}

static void test_bad_index(void) {
    expect_index_fail("{\"metadata\":{}}", "weight_map");
    expect_index_fail("{\"metadata\":{},\"weight_map\":[]}", "weight_map");
    expect_index_fail("{\"weight_map\":{}}", "at least one");
    expect_index_fail("[]", "expected a JSON object");
    expect_index_fail("{\"weight_map\":{\"a\":\"x.safetensors\"},\"metadata\":5}", "metadata");
    expect_index_fail("{\"weight_map\":{\"a\":\"x\"},\"weight_map\":{\"b\":\"y\"}}", "twice");
    expect_index_fail("{\"weight_map\":{\"a\":\"sub/x.safetensors\"}}", "path separator");
    expect_index_fail("{\"weight_map\":{\"a\":\"../x.safetensors\"}}", "path separator");
    expect_index_fail("{\"weight_map\":{\"a\":\"/etc/passwd\"}}", "path separator");
    expect_index_fail("{\"weight_map\":{\"a\":\"..\\\\x\"}}", "path separator");
    expect_index_fail("{\"weight_map\":{\"a\":\"..\"}}", "folder");
    expect_index_fail("{\"weight_map\":{\"a\":\".\"}}", "folder");
    expect_index_fail("{\"weight_map\":{\"a\":\"\"}}", "empty");
    expect_index_fail("{\"weight_map\":{\"a\":\"x\xff.safetensors\"}}", "UTF-8");
    expect_index_fail("{\"weight_map\":{\"a\":7}}", "got 7");
    expect_index_fail("{\"weight_map\":{\"\":\"x\"}}", "tensor ''");
    expect_index_fail("{\"weight_map\":{\"a\\u0000b\":\"x\"}}", "\\u0000");
    expect_index_fail("{\"weight_map\":{\"a\":\"x.st\",\"b\":\"y.st\",\"a\":\"z.st\"}}",
                      "tensor 'a': expected once, got it twice");
    expect_index_fail("{\"weight_map\":{\"a\":\"x\"}", "not valid JSON");
    expect_index_fail("{\"weight_map\":{\"a\":\"x\"}} trailing", "after the JSON value");
    /* More shards than a model can open. */
    size_t cap = 300 * 48;
    char *json = malloc(cap);
    size_t o = (size_t)snprintf(json, cap, "{\"weight_map\":{");
    for (int i = 0; i < 257; i++)
        o += (size_t)snprintf(json + o, cap - o, "%s\"t%d\":\"s%d.safetensors\"", i ? "," : "",
                              i, i);
    snprintf(json + o, cap - o, "}}");
    el_st_index idx = {0};
    EL_CHECK_STATUS(parse_index(json, &idx), EL_E_UNSUPPORTED);
    EL_CHECK(err_has("257"));
    free(json);
}

static void test_check(void) {
    el_st_index idx = {0};
    EL_CHECK_OK(parse_index(k_index, &idx));

    /* An index entry that no shard holds. */
    el_tensor_table t = {0};
    EL_CHECK_OK(add_shard(k_shard0, 8, 0, "s0", &t));
    EL_CHECK_OK(add_shard("{" T("norm.weight", 0, 4) "}", 4, 1, "s1", &t));
    EL_CHECK_STATUS(el_st_index_check(&idx, &t, "idx.json"), EL_E_INVALID);
    EL_CHECK(err_has("idx.json: tensor 'lm_head.weight'") &&
             err_has("model-00002-of-00002.safetensors"));
    el_tensor_table_free(&t);

    /* A shard tensor the index does not list. */
    EL_CHECK_OK(add_shard(k_shard0, 8, 0, "s0", &t));
    EL_CHECK_OK(add_shard("{" T("norm.weight", 0, 4) "," T("lm_head.weight", 4, 8) ","
                          T("extra.bias", 8, 12) "}", 12, 1, "s1", &t));
    EL_CHECK_STATUS(el_st_index_check(&idx, &t, "idx.json"), EL_E_INVALID);
    EL_CHECK(err_has("tensor 'extra.bias'") && err_has("weight_map") &&
             err_has("model-00002-of-00002.safetensors"));
    el_tensor_table_free(&t);

    /* A tensor in a different shard than the index says. */
    EL_CHECK_OK(add_shard("{" T("embed.weight", 0, 4) "}", 4, 0, "s0", &t));
    EL_CHECK_OK(add_shard("{" T("layers.0.w", 0, 4) "," T("norm.weight", 4, 8) ","
                          T("lm_head.weight", 8, 12) "}", 12, 1, "s1", &t));
    EL_CHECK_STATUS(el_st_index_check(&idx, &t, "idx.json"), EL_E_INVALID);
    EL_CHECK(err_has("tensor 'layers.0.w'") &&
             err_has("expected 'model-00001-of-00002.safetensors'") &&
             err_has("got 'model-00002-of-00002.safetensors'"));
    el_tensor_table_free(&t);

    /* A tensor in two shards: the second shard's header is refused when parsed into the
     * same table, naming the tensor and the first file, and the table keeps shard 0 only. */
    EL_CHECK_OK(add_shard(k_shard0, 8, 0, "model-00001-of-00002.safetensors", &t));
    EL_CHECK_STATUS(add_shard("{" T("norm.weight", 0, 4) "," T("layers.0.w", 4, 8) ","
                              T("lm_head.weight", 8, 12) "}", 12, 1,
                              "model-00002-of-00002.safetensors", &t),
                    EL_E_INVALID);
    EL_CHECK(err_has("model-00002-of-00002.safetensors: tensor 'layers.0.w'") &&
             err_has("file #0"));
    EL_CHECK(t.count == 2);
    el_tensor_table_free(&t);

    /* A file index beyond the index's shards is reported, not read out of bounds. */
    EL_CHECK_OK(add_shard(k_shard0, 8, 7, "s7", &t));
    EL_CHECK_STATUS(el_st_index_check(&idx, &t, "idx.json"), EL_E_INVALID);
    EL_CHECK(err_has("#7"));
    el_tensor_table_free(&t);

    /* An empty table against the index: the first entry is missing. */
    EL_CHECK_STATUS(el_st_index_check(&idx, &t, "idx.json"), EL_E_INVALID);
    EL_CHECK(err_has("embed.weight"));
    el_st_index_free(&idx);
}

/* Many tensors over a few shards: parse, check, and the sort keeps it fast. */
static void test_many(void) {
    const int n = 20000, shards = 7;
    size_t cap = (size_t)n * 80 + 64;
    char *json = malloc(cap);
    size_t o = (size_t)snprintf(json, cap, "{\"weight_map\":{");
    for (int i = n - 1; i >= 0; i--)
        o += (size_t)snprintf(json + o, cap - o, "\"w.%d\":\"model-%05d.safetensors\"%s", i,
                              i % shards, i ? "," : "");
    snprintf(json + o, cap - o, "}}");
    el_st_index idx = {0};
    EL_CHECK_OK(parse_index(json, &idx));
    EL_CHECK(idx.shard_count == (size_t)shards && idx.name_count == (size_t)n);
    el_tensor_table t = {0};
    bool ok = true;
    for (int s = 0; s < shards && ok; s++) {
        /* Shard s holds every tensor i with i % shards == s. */
        size_t hc = (size_t)n * 90 / (size_t)shards + 4096, ho = 0;
        char *h = malloc(hc);
        ho += (size_t)snprintf(h, hc, "{");
        uint64_t off = 0;
        for (int i = s; i < n; i += shards, off += 4)
            ho += (size_t)snprintf(h + ho, hc - ho,
                                   "%s\"w.%d\":{\"dtype\":\"I32\",\"shape\":[],"
                                   "\"data_offsets\":[%llu,%llu]}",
                                   off ? "," : "", i, (unsigned long long)off,
                                   (unsigned long long)off + 4);
        snprintf(h + ho, hc - ho, "}");
        ok = add_shard(h, off, (uint32_t)s, "shard", &t) == EL_OK;
        free(h);
    }
    EL_CHECK(ok && t.count == (size_t)n);
    EL_CHECK_OK(el_st_index_check(&idx, &t, "idx.json"));
    el_tensor_table_free(&t);
    el_st_index_free(&idx);
    free(json);
}

int main(void) {
    test_good();
    test_bad_index();
    test_check();
    test_many();
    return el_test_finish("test_loader_index");
}
