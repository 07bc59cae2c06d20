/* fuzz_safetensors.c - libFuzzer target for the untrusted-JSON parsers: the input is a
 * whole safetensors file in memory (prefix, then header, then data), and the same bytes
 * are also fed to the sharded-index and config.json parsers. Successful parses are checked
 * against their contracts, so logic bugs crash too, not only memory errors. */
#include "loader/model_impl.h"
#include "loader/safetensors.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define CHECK(c) \
    do {         \
        if (!(c)) __builtin_trap(); \
    } while (0)

/* cJSON is a system library without sanitizer instrumentation, so ASan cannot see it read
 * past the input. The input is copied to end exactly at a PROT_NONE page instead: any read
 * past size faults. */
static const uint8_t *guarded_copy(const uint8_t *data, size_t size) {
    static uint8_t *map;
    static size_t map_len; /* readable bytes before the guard page */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t need = (size + page - 1) / page * page;
    if (need == 0) need = page;
    if (need > map_len) {
        if (map) munmap(map, map_len + page);
        map = mmap(NULL, need + page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
                   0);
        CHECK(map != MAP_FAILED);
        CHECK(mprotect(map + need, page, PROT_NONE) == 0);
        map_len = need;
    }
    uint8_t *p = map + map_len - size;
    memcpy(p, data, size);
    return p;
}

static void check_table(const el_tensor_table *t, size_t pre, uint64_t data_start,
                        uint64_t data_len) {
    uint64_t pos = data_start;
    for (size_t i = pre; i < t->count; i++) {
        const el_tensor *x = &t->items[i];
        size_t n = strlen(x->name);
        CHECK(n >= 1 && n <= EL_NAME_MAX && el_utf8_valid(x->name, n));
        CHECK(x->file == 1 && x->ndim <= EL_MAX_DIMS && x->dtype >= 0 && x->dtype < EL_DT_COUNT);
        CHECK(x->loaded_dtype == x->dtype && x->data == NULL);
        uint64_t elems = 1;
        for (uint32_t d = 0; d < x->ndim; d++) CHECK(el_mul_u64(elems, x->shape[d], &elems));
        uint64_t bytes;
        CHECK(el_mul_u64(elems, el_dtype_size(x->dtype), &bytes) && bytes == x->nbytes);
        CHECK(x->offset == pos); /* contiguous, in offset order */
        pos += x->nbytes;
        for (size_t j = 0; j < pre; j++) CHECK(strcmp(t->items[j].name, x->name) != 0);
    }
    CHECK(pos == data_start + data_len);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const uint8_t *buf = guarded_copy(data, size);
    const char *text = (const char *)buf;

    if (size >= 8) {
        uint64_t json_len = 0;
        if (el_st_check_prefix(buf, size, "fuzz", &json_len) == EL_OK) {
            CHECK(json_len >= 1 && json_len <= size - 8);
            /* One tensor already in the table, as if from an earlier shard. */
            el_tensor_table t = {0};
            el_tensor pre = {.name = "a", .dtype = EL_DT_U8, .ndim = 1, .shape = {1},
                             .nbytes = 1};
            CHECK(el_tensor_table_push(&t, &pre) == EL_OK);
            uint64_t data_start = 8 + json_len;
            el_status st = el_st_parse_header(text + 8, (size_t)json_len, data_start,
                                              size - data_start, 1, "fuzz", &t);
            if (st == EL_OK)
                check_table(&t, 1, data_start, size - data_start);
            else
                CHECK(t.count == 1 && !strcmp(t.items[0].name, "a"));
            el_tensor_table_free(&t);
        }
    }

    el_st_index idx;
    memset(&idx, 0, sizeof idx);
    if (el_st_index_parse(text, size, "fuzz", &idx) == EL_OK) {
        CHECK(idx.name_count >= 1 && idx.shard_count >= 1 && idx.shard_count <= idx.name_count);
        for (size_t i = 0; i < idx.name_count; i++) {
            CHECK(idx.name_shard[i] < idx.shard_count);
            if (i) CHECK(strcmp(idx.names[i - 1], idx.names[i]) < 0);
        }
        for (size_t i = 0; i < idx.shard_count; i++) {
            CHECK(idx.shards[i][0] && !strchr(idx.shards[i], '/'));
            CHECK(strcmp(idx.shards[i], ".") && strcmp(idx.shards[i], ".."));
            if (i) CHECK(strcmp(idx.shards[i - 1], idx.shards[i]) < 0);
        }
        /* An empty table must fail the check (every entry is missing). */
        el_tensor_table empty = {0};
        CHECK(el_st_index_check(&idx, &empty, "fuzz") == EL_E_INVALID);
        el_st_index_free(&idx);
    } else {
        CHECK(idx.names == NULL && idx.shards == NULL);
    }

    el_config c;
    memset(&c, 0, sizeof c);
    if (el_config_parse(text, size, "fuzz", &c) == EL_OK) {
        CHECK((c.num_labels == 0) == (c.id2label == NULL) && c.num_labels <= 4096);
        for (uint32_t i = 0; i < c.num_labels; i++) CHECK(memchr(c.id2label[i], 0, 64));
        CHECK(memchr(c.model_type, 0, sizeof c.model_type));
        CHECK(memchr(c.architecture, 0, sizeof c.architecture));
        CHECK(memchr(c.hidden_act, 0, sizeof c.hidden_act));
        CHECK(c.eos_token_id >= -1 && c.bos_token_id >= -1 && c.pad_token_id >= -1);
        el_config_free(&c);
    }

    /* The raw depth scan, on its own, must accept or refuse without reading past size. */
    (void)el_json_check_depth(text, size, EL_JSON_DEPTH_MAX, "fuzz");
    return 0;
}
