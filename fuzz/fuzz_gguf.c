/* fuzz_gguf.c - libFuzzer target for the GGUF reader (loader/formats/gguf.c): the input is
 * parsed from memory; a header that parses is checked against the reader's contract (counts,
 * every tensor inside the file, aligned, disjoint, a known type with whole blocks) and every
 * array is read back to its last element, nested ones too. Inputs that parse are also
 * written to a file and opened as a model (loader/formats/gguf_model.c), then planned, and
 * a tokenizer from its metadata (tokenizer/gguf_tok.c) encodes and decodes a text. */
#include "fuzz/fuzz_common.h"

#include "edgeload.h"
#include "loader/formats/gguf.h"
#include "loader/model_impl.h"

/* Reads every element of an array value (recursively); returns the elements seen. */
static uint64_t walk(const el_gguf *g, const el_gguf_value *v, int depth) {
    CHECK(depth < EL_GGUF_MAX_DEPTH);
    el_gguf_iter it;
    el_gguf_iter_init(g, v, &it);
    uint64_t seen = 0;
    for (uint64_t i = 0; i < v->len; i++) {
        el_gguf_value e;
        CHECK(el_gguf_iter_next(&it, &e) == EL_OK);
        CHECK(e.type == v->elem_type);
        if (e.type == EL_GGUF_ARRAY) seen += walk(g, &e, depth + 1);
        if (e.type == EL_GGUF_STRING) {
            char buf[64];
            size_t n = 0;
            CHECK(el_gguf_read_string(g, &e, buf, sizeof buf, &n) == EL_OK && n <= e.len);
        }
        if (e.type == EL_GGUF_BOOL) CHECK(e.num.u <= 1);
        seen++;
    }
    el_gguf_value e;
    CHECK(el_gguf_iter_next(&it, &e) == EL_E_USAGE);
    CHECK(it.pos == v->offset + v->size);
    return seen;
}

static void check(const el_gguf *g, size_t size) {
    CHECK(g->version == 2 || g->version == 3);
    CHECK(g->alignment && !(g->alignment & (g->alignment - 1)));
    CHECK(g->n_kv <= EL_GGUF_MAX_KV && g->n_tensors <= EL_GGUF_MAX_TENSORS);
    CHECK(g->heap_bytes <= EL_GGUF_HEAP_MAX);
    for (size_t i = 0; i < g->n_kv; i++) {
        const el_gguf_kv *kv = &g->kv[i];
        size_t kl = strlen(kv->key);
        CHECK(kl >= 1 && kl <= EL_GGUF_KEY_MAX && el_utf8_valid(kv->key, kl));
        CHECK(kv->v.type < EL_GGUF_TYPE_COUNT);
        CHECK(el_gguf_find(g, kv->key) == kv); /* keys unique */
        if (kv->v.type == EL_GGUF_STRING)
            CHECK(kv->v.str && kv->v.offset + kv->v.len <= size);
        if (kv->v.type == EL_GGUF_ARRAY) {
            CHECK(kv->v.offset + kv->v.size <= size);
            walk(g, &kv->v, 0);
        }
    }
    for (size_t i = 0; i < g->n_tensors; i++) {
        const el_gguf_tensor *t = &g->tensors[i];
        uint32_t block, bytes;
        CHECK(el_gguf_type_block(t->type, &block, &bytes));
        CHECK(t->n_dims >= 1 && t->n_dims <= EL_GGUF_MAX_DIMS && t->ne[0] % block == 0);
        CHECK(t->offset >= g->data_offset && (t->offset - g->data_offset) % g->alignment == 0);
        CHECK(t->offset <= size && t->nbytes <= size - t->offset);
        for (size_t j = 0; j < i; j++) {
            const el_gguf_tensor *u = &g->tensors[j];
            CHECK(strcmp(t->name, u->name) != 0);
            if (t->nbytes && u->nbytes)
                CHECK(t->offset + t->nbytes <= u->offset || u->offset + u->nbytes <= t->offset);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    el_gguf_mem m = {data, size};
    el_gguf_source src = {el_gguf_mem_read, &m, size, "fuzz"};
    el_gguf *g = NULL;
    el_status s = el_gguf_parse(&src, &g);
    if (s != EL_OK) {
        /* (EL_E_IO would mean a read past the input: the reader must never ask for one) */
        CHECK(g == NULL && (s == EL_E_INVALID || s == EL_E_UNSUPPORTED || s == EL_E_NOMEM));
        return 0;
    }
    check(g, size);
    el_gguf_free(g);

    /* The same bytes as a model file: open, and plan what opens. */
    const char *path = fz_path("gguf", "model.gguf");
    fz_write(path, data, size);
    el_model *model = NULL;
    if (el_model_open(path, NULL, &model) == EL_OK) {
        CHECK(!strcmp(el_model_format(model), "gguf"));
        CHECK(el_model_tensor_count(model) == model->gguf->n_tensors);
        el_plan_params pp = {2, 1, EL_DT_NONE, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
        el_plan plan;
        (void)el_plan_make(model, &pp, &plan);
        /* A metadata tokenizer that opened encodes and decodes. */
        static const char text[] = "Hello <|im_end|> w\xc3\xb6rld 123";
        int32_t ids[64];
        size_t n = 0;
        if (el_tokenize(model, text, sizeof text - 1, true, ids, 64, &n) == EL_OK) {
            static char piece[1 << 17]; /* a token decodes to at most its 64 KiB */
            size_t k = 0;
            for (size_t i = 0; i < n; i++)
                CHECK(el_token_piece(model, i ? ids[i - 1] : -1, ids[i], piece, sizeof piece,
                                     &k) == EL_OK);
        }
        el_model_close(model);
    }
    return 0;
}
