/* fuzz_llama2c.c - libFuzzer target for the llama2.c formats: the input is written to a
 * scratch file and opened as a model (loader/llama2c.c: el_llama2c_detect, el_model_open),
 * and input[2..] is opened as a tokenizer.bin (tokenizer/llama2c_tok.c through
 * el_tokenizer_open) with the vocabulary size in input[0..2) (little-endian; 0 = any).
 * A checkpoint that opens must agree with the size its header implies (computed here
 * independently), and is planned, loaded and run for two positions; a tokenizer that opens
 * goes through the contract checks of fuzz/fuzz_common.h, including the text round trip. */
#include "fuzz/fuzz_common.h"

#include "edgeload.h"
#include "loader/model_impl.h"

#define L2C_HEADER 28

static int32_t rd_i32(const uint8_t *p) {
    uint32_t u = (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                 (uint32_t)p[3] << 24;
    int32_t v;
    memcpy(&v, &u, sizeof v);
    return v;
}

/* The file size a llama2.c header implies (run.c's memory_map_weights), or 0 when the
 * header is out of range. Bounds as documented in loader/llama2c.c. */
static uint64_t implied_size(const uint8_t *h, bool *tied, uint64_t *tensors) {
    int64_t dim = rd_i32(h), hid = rd_i32(h + 4), nl = rd_i32(h + 8), nh = rd_i32(h + 12);
    int64_t nkv = rd_i32(h + 16), voc = rd_i32(h + 20), seq = rd_i32(h + 24);
    if (dim < 1 || dim > 65536 || hid < 1 || hid > 262144 || nl < 1 || nl > 1024) return 0;
    if (nh < 1 || nh > dim || dim % nh || (dim / nh) % 2) return 0;
    if (nkv < 1 || nkv > nh || nh % nkv) return 0;
    if (voc == 0 || voc < -(1 << 21) || voc > (1 << 21) || seq < 1 || seq > (1 << 20)) return 0;
    *tied = voc > 0;
    uint64_t v = (uint64_t)(voc > 0 ? voc : -voc), d = (uint64_t)dim, hs = d / (uint64_t)nh;
    uint64_t kv = hs * (uint64_t)nkv, f = (uint64_t)hid, L = (uint64_t)nl;
    /* Every term is below 2^62 with these bounds. */
    uint64_t floats = v * d + L * (d + d * d + 2 * kv * d + d * d + d + 3 * f * d) + d +
                      (uint64_t)seq * hs + (*tied ? 0 : v * d);
    *tensors = 1 + 9 * L + 1 + (*tied ? 0 : 1);
    return L2C_HEADER + 4 * floats;
}

/* Plans, loads and runs ctx (1 or 2) positions: a tiny context keeps the KV cache small
 * whatever seq_len says. Nothing here may fail on a checkpoint that opened, except a reservation
 * the machine refuses. */
static void run_model(el_model *m, uint32_t ctx, el_dtype dt, int32_t a, int32_t b) {
    el_plan_params pp = {ctx, 1, dt, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    el_plan plan;
    CHECK(el_plan_make(m, &pp, &plan) == EL_OK);
    el_arena_params ap;
    el_plan_arena_params(&plan, plan.total_bytes, 0, &ap);
    el_arena *arena = NULL;
    if (el_arena_init(&arena, &ap) != EL_OK) return;
    CHECK(el_model_load(m, &plan, arena, NULL, NULL) == EL_OK);
    for (size_t i = 0; i < el_model_tensor_count(m); i++) {
        el_tensor_info ti;
        CHECK(el_model_tensor(m, i, &ti) == EL_OK && ti.data != NULL);
        CHECK(ti.loaded_dtype == (dt == EL_DT_NONE ? EL_DT_F32 : dt));
    }
    el_session_params sp = {1, EL_DEVICE_CPU, 0, false};
    el_session *s = NULL;
    CHECK(el_session_init(m, arena, &plan, &sp, &s) == EL_OK);
    uint32_t vocab = el_session_vocab(s);
    CHECK(el_session_ctx(s) == ctx);
    int32_t ids[2] = {(int32_t)((uint32_t)a % vocab), (int32_t)((uint32_t)b % vocab)};
    const float *logits = NULL;
    CHECK(el_session_forward(s, ids, ctx, &logits) == EL_OK && logits &&
          el_session_pos(s) == ctx);
    /* The context is full: one more position is refused, the cache unchanged. */
    CHECK(el_session_forward(s, ids, 1, &logits) == EL_E_TOOLONG && el_session_pos(s) == ctx);
    int32_t bad = (int32_t)vocab;
    el_session_reset(s);
    CHECK(el_session_forward(s, &bad, 1, &logits) == EL_E_INVALID && el_session_pos(s) == 0);
    el_session_deinit(s);
    el_arena_deinit(arena);
}

/* The model folder also holds tokenizer.bin = input[2..] (written first), which the llama
 * family tries to open next to the checkpoint with the header's vocabulary size. */
static void check_model(const uint8_t *data, size_t size) {
    const char *path = fz_path("llama2c", "model.bin");
    fz_write(path, data, size);
    bool detect = size >= L2C_HEADER && el_llama2c_detect(data, size);
    el_model *m = (el_model *)&data; /* any non-NULL value: open must clear it */
    el_status st = el_model_open(path, NULL, &m);
    CHECK((st == EL_OK) == (m != NULL));
    /* Bytes 8.. starting with '{' are tried as safetensors first; fuzz_safetensors covers
     * that path. */
    if (size > 8 && data[8] == '{') {
        el_model_close(m);
        return;
    }
    bool tied = false;
    uint64_t tensors = 0, want = size >= L2C_HEADER ? implied_size(data, &tied, &tensors) : 0;
    CHECK(detect == (want != 0));
    CHECK((st == EL_OK) == (want != 0 && want == size));
    if (st != EL_OK) return;
    CHECK(!strcmp(el_model_format(m), "llama2c") && !strcmp(el_model_family(m), "llama"));
    CHECK(el_model_tensor_count(m) == tensors);
    /* Slices of the file, in order, without overlap, all F32. */
    uint64_t end = L2C_HEADER;
    for (size_t i = 0; i < el_model_tensor_count(m); i++) {
        el_tensor_info ti;
        CHECK(el_model_tensor(m, i, &ti) == EL_OK);
        CHECK(ti.dtype == EL_DT_F32 && ti.file_index == 0 && ti.data == NULL);
        uint64_t elems = 1;
        for (uint32_t d = 0; d < ti.ndim; d++) elems *= ti.shape[d];
        CHECK(ti.nbytes == elems * 4 && ti.file_offset >= end &&
              ti.file_offset + ti.nbytes <= size);
        end = ti.file_offset + ti.nbytes;
    }
    el_tensor_info emb;
    CHECK(el_model_tensor_find(m, "model.embed_tokens.weight", &emb) == EL_OK);
    CHECK((el_model_tensor_find(m, "lm_head.weight", &emb) == EL_OK) == !tied);
    /* The tokenizer next to it opened or its failure is reported by el_tokenize. */
    int32_t ids[8];
    size_t n = 0;
    st = el_tokenize(m, "ab", 2, true, ids, 8, &n);
    CHECK(st == EL_OK || el_last_error()[0] != 0);
    static const el_dtype dts[] = {EL_DT_NONE, EL_DT_F16, EL_DT_BF16};
    uint32_t ctx = rd_i32(data + 24) >= 2 ? 2 : 1;
    run_model(m, ctx, dts[size % 3], rd_i32(data + 28), (int32_t)size);
    el_model_close(m);
}

static void check_tokenizer(const uint8_t *data, size_t size) {
    if (size < 2) return;
    uint32_t vocab = (uint32_t)data[0] | (uint32_t)data[1] << 8;
    const char *path = fz_path("llama2c", "tokenizer.bin");
    el_tokenizer *t = NULL;
    el_status st = el_tokenizer_open(path, vocab, &t);
    if (st != EL_OK) {
        CHECK(t == NULL && el_last_error()[0] != 0);
        return;
    }
    /* The same bytes from memory give the same tokenizer. */
    el_tokenizer *t2 = NULL;
    bool json = !strcmp(t->vt->name, "hf-bpe");
    if (!json) {
        CHECK(el_tokenizer_llama2c_parse(data + 2, size - 2, "fuzz", vocab, &t2) == EL_OK);
        CHECK(t2->vocab_size == t->vocab_size && (vocab == 0 || t->vocab_size == vocab));
        CHECK(t->bos_id == 1 && t->eos_id == 2);
        el_tokenizer_close(t2);
    }
    fz_check_vocab(t);
    fz_check_texts(t, data + 2, size - 2, !json);
    el_tokenizer_close(t);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *tok = fz_path("llama2c", "tokenizer.bin");
    if (size >= 2)
        fz_write(tok, data + 2, size - 2);
    else
        unlink(tok);
    check_model(data, size);
    check_tokenizer(data, size);
    return 0;
}
