/* test_pack_gguf.c - `pack MODEL -o X.gguf` (loader/formats/gguf_write.c): the transformers
 * fixtures llama (GQA), qwen2, gpt2, phi3 and gemma3 packed to GGUF in f32 and q8_0 and read
 * back by edgeload's GGUF reader give the logits of the source model run from safetensors
 * (f32: within 1e-5; q8_0: bit-equal to quantize-on-load of the source, the quantizer being
 * the same) for a prompt longer than Gemma's sliding window; the q8_0 logits differ from the
 * f32 ones (so the comparisons can fail). The tokenizer written into the metadata encodes
 * strings to the ids the source tokenizer.json gives (SentencePiece-style and SmolLM2's
 * byte-level BPE), a SentencePiece tokenizer.model gives the pieces, scores and types the
 * sentencepiece library reads and encodes as it does, and llama.cpp's pre-tokenizer names
 * are written for Llama 3 and Qwen2 regexes; tokenizer_config.json's chat template and
 * add_bos_token are carried. Hostile outputs: a directory, a device, the input itself: refused, nothing
 * clobbered; a pack killed with SIGKILL at random times leaves the old OUT or a whole new
 * one. */
// ctest-labels: loader;gguf
// ctest-timeout: 60
#include "tests/image_common.h"
#include "tests/support/el_test.h"
#include "tests/support/el_test_proc.h"

#include "loader/formats/gguf.h"
#include "loader/formats/gguf_write.h"
#include "loader/image.h"
#include "loader/model_impl.h"

#include <cjson/cJSON.h>
#include <dirent.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define FIX EL_SOURCE_DIR "/tests/fixtures"
#define F32_TOL 1e-5f

static const int32_t k_ids[] = {1, 17, 250, 3, 99, 400, 7, 12, 305, 64};
#define N_IDS (sizeof k_ids / sizeof k_ids[0])

/* Logits [N_IDS][vocab] of path loaded with dtype, one token per forward pass. */
static float *run(const char *path, el_dtype dtype, size_t *vocab) {
    el_model *m = NULL;
    el_arena *a = NULL;
    el_session *s = NULL;
    float *out = NULL;
    el_plan plan;
    el_plan_params pp = {0, 1, dtype, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    EL_CHECK_OK(el_model_open(path, NULL, &m));
    if (m) EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    if (m) a = el_test_arena(&plan, EL_MEMORY_HOST);
    if (a) EL_CHECK_OK(el_model_load(m, &plan, a, NULL, NULL));
    el_session_params sp = {1, EL_DEVICE_CPU, 0, false};
    if (a) EL_CHECK_OK(el_session_init(m, a, &plan, &sp, &s));
    /* the source's arithmetic for both (a GGUF defaults to llama.cpp's: --numerics) */
    if (s) EL_CHECK_OK(el_session_set_numerics(s, EL_NUMERICS_EXACT));
    if (s) {
        size_t V = el_session_vocab(s);
        *vocab = V;
        out = calloc(N_IDS * V, sizeof(float));
        const float *lg = NULL;
        for (size_t i = 0; i < N_IDS && out; i++) {
            int32_t id = (int32_t)((size_t)k_ids[i] % V); /* llama2c_tiny has 67 tokens */
            EL_CHECK_OK(el_session_forward(s, &id, 1, &lg));
            if (!lg) break;
            memcpy(out + i * V, lg, V * sizeof(float));
        }
    }
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
    return out;
}

static el_status file_read(void *ctx, void *dst, size_t n, uint64_t off) {
    return el_file_read_at(ctx, dst, n, off);
}

/* Parses the GGUF at path (which must outlive it); f stays open for the array reads and is
 * closed after el_gguf_free. */
static el_gguf *parse_gguf(const char *path, el_file *f) {
    el_gguf *g = NULL;
    EL_CHECK_OK(el_file_open(f, path, 0));
    el_gguf_source gs = {file_read, f, f->size, path};
    EL_CHECK_OK(el_gguf_parse(&gs, &g));
    return g;
}

static el_status pack(const char *src, const char *out, el_dtype dt, const char *tok) {
    el_gguf_write_params p = {.dtype = dt, .tokenizer_path = tok};
    return el_gguf_write(src, out, &p, NULL);
}

/* The ids of text through m's tokenizer (with BOS where the model adds one). */
static size_t tokenize(const char *model, const char *tok, const char *text, bool bos, int32_t *ids,
                       size_t cap) {
    el_model *m = NULL;
    el_model_open_params op = {.tokenizer_path = tok};
    size_t n = 0;
    EL_CHECK_OK(el_model_open(model, &op, &m));
    if (m) EL_CHECK_OK(el_tokenize(m, text, strlen(text), bos, ids, cap, &n));
    el_model_close(m);
    return n;
}

static const char *const k_texts[] = {
    "hello world", "The quick brown fox, 1234 jumps!", "  two  spaces\nand a line", "caf\xc3\xa9 na\xc3\xafve",
};

static void same_tokens(const char *src, const char *src_tok, const char *gguf, bool bos) {
    for (size_t i = 0; i < sizeof k_texts / sizeof k_texts[0]; i++) {
        int32_t a[256], b[256];
        size_t na = tokenize(src, src_tok, k_texts[i], bos, a, 256);
        size_t nb = tokenize(gguf, NULL, k_texts[i], bos, b, 256);
        EL_CHECK(na > 1 && na == nb && !memcmp(a, b, na * sizeof *a));
        if (na != nb || memcmp(a, b, na * sizeof *a))
            printf("   %s: '%s': %zu ids from the source, %zu from the GGUF\n", gguf, k_texts[i], na, nb);
    }
}

/* One fixture: f32 and q8_0 GGUFs against the source. */
/* has_tok: the tokenizer is compared too (bos: with BOS asked for). */
static void fixture(const char *dir, const char *src, const char *name, bool has_tok, bool bos) {
    char f32[1200], q8[1200];
    snprintf(f32, sizeof f32, "%s/%s_f32.gguf", dir, name);
    snprintf(q8, sizeof q8, "%s/%s_q8_0.gguf", dir, name);
    EL_CHECK_OK(pack(src, f32, EL_DT_F32, NULL));
    EL_CHECK_OK(pack(src, q8, EL_DT_Q8_0, NULL));
    size_t v0 = 0, v1 = 0, v2 = 0, v3 = 0;
    float *want = run(src, EL_DT_F32, &v0), *got = run(f32, EL_DT_NONE, &v1);
    float *wq = run(src, EL_DT_Q8_0, &v2), *gq = run(q8, EL_DT_NONE, &v3);
    EL_CHECK(want && got && wq && gq && v0 == v1 && v0 == v2 && v0 == v3);
    if (want && got && wq && gq && v0 == v1 && v0 == v2 && v0 == v3) {
        float maxd = 0, qd = 0;
        for (size_t i = 0; i < N_IDS * v0; i++) {
            float d = fabsf(want[i] - got[i]);
            if (!(d <= maxd)) maxd = d;
            if (fabsf(wq[i] - want[i]) > qd) qd = fabsf(wq[i] - want[i]);
        }
        bool bit = !memcmp(wq, gq, N_IDS * v0 * sizeof(float));
        printf("   %-8s f32 GGUF vs source: max |d| %.3g; q8_0 GGUF vs quantize-on-load: %s "
               "(q8_0 vs f32: %.3g)\n", name, maxd, bit ? "bit-equal" : "DIFFERENT", qd);
        EL_CHECK(maxd <= F32_TOL);
        EL_CHECK(bit);
        EL_CHECK(qd > 1e-6f); /* the quantized run is another run */
    }
    free(want);
    free(got);
    free(wq);
    free(gq);
    if (has_tok) same_tokens(src, NULL, f32, bos);
}

/* src (any format) packed to GGUF as stored runs as src does (f32 sources: within 1e-5). */
static void same_run(const char *dir, const char *src, const char *name) {
    char out[1200];
    snprintf(out, sizeof out, "%s/%s.gguf", dir, name);
    EL_CHECK_OK(pack(src, out, EL_DT_NONE, NULL));
    size_t v0 = 0, v1 = 0;
    float *want = run(src, EL_DT_NONE, &v0), *got = run(out, EL_DT_NONE, &v1);
    EL_CHECK(want && got && v0 == v1);
    float maxd = 0;
    for (size_t i = 0; want && got && v0 == v1 && i < N_IDS * v0; i++)
        if (!(fabsf(want[i] - got[i]) <= maxd)) maxd = fabsf(want[i] - got[i]);
    printf("   %-18s GGUF vs its source: max |d| %.3g\n", name, maxd);
    EL_CHECK(maxd <= F32_TOL);
    free(want);
    free(got);
}

/* Other sources: llama2.c (q/k already in pairs), GGUF files written by llama.cpp's own
 * converter (their tokenizer metadata copied), .elimg images (llama, and GPT-2 whose Conv1D
 * weights the image holds transposed already). */
static void sources(const char *dir) {
    char img[1200];
    /* Llama variants: q/k/v/o and MLP biases, head_dim != hidden / heads, an untied head,
     * linear RoPE scaling */
    same_run(dir, FIX "/hf_llama_bias", "llama_bias");
    same_run(dir, FIX "/hf_llama_head_dim", "llama_head_dim");
    same_run(dir, FIX "/hf_llama_untied", "llama_untied");
    same_run(dir, FIX "/hf_llama_linear", "llama_linear");
    same_run(dir, FIX "/llama2c_tiny_untied.bin", "from_llama2c");
    same_run(dir, FIX "/gguf/llama_gqa_f32.gguf", "from_gguf_llama");
    same_run(dir, FIX "/gguf/phi3_f32.gguf", "from_gguf_phi3");
    char out[1200];
    snprintf(out, sizeof out, "%s/from_gguf_phi3.gguf", dir);
    for (size_t i = 0; i < sizeof k_texts / sizeof k_texts[0]; i++) {
        int32_t a[256], b[256];
        size_t na = tokenize(FIX "/gguf/phi3_f32.gguf", NULL, k_texts[i], true, a, 256);
        size_t nb = tokenize(out, NULL, k_texts[i], true, b, 256);
        EL_CHECK(na > 1 && na == nb && !memcmp(a, b, na * sizeof *a));
    }
    /* the third: an image quantized to Q8_0 (its blocks copied as they are) */
    static const char *const k_img[][2] = {{"hf_llama_gqa", "from_elimg_llama"},
                                           {"hf_gpt2_small", "from_elimg_gpt2"},
                                           {"hf_llama_gqa", "from_elimg_llama_q8"}};
    for (size_t i = 0; i < 3; i++) {
        char src[1200];
        snprintf(src, sizeof src, FIX "/%s", k_img[i][0]);
        snprintf(img, sizeof img, "%s/%s.elimg", dir, k_img[i][1]);
        el_image_pack_params ip = {.dtype = i == 2 ? EL_DT_Q8_0 : EL_DT_NONE,
                                   .codec = EL_IMG_CODEC_SHUFFLE_LZ4};
        EL_CHECK_OK(el_image_pack(src, img, &ip, NULL));
        same_run(dir, img, k_img[i][1]);
    }
}

/* hf_llama_gemma3 with the layer layout GGUF gemma3 can say (every sixth layer global: three
 * sliding layers) and the head-size query scale llama.cpp uses; the fixture as it is is
 * refused by name. */
static void gemma3(const char *dir) {
    char src[1200], path[1400], out[1200];
    snprintf(out, sizeof out, "%s/gemma_refused.gguf", dir);
    EL_CHECK_STATUS(pack(FIX "/hf_llama_gemma3", out, EL_DT_F32, NULL), EL_E_UNSUPPORTED);
    EL_CHECK(strstr(el_last_error(), "layer 1") != NULL);
    snprintf(src, sizeof src, "%s/gemma3", dir);
    mkdir(src, 0755);
    size_t n = 0;
    char *text = el_test_read_file(FIX "/hf_llama_gemma3/config.json", &n);
    cJSON *cfg = text ? cJSON_ParseWithLength(text, n) : NULL;
    EL_CHECK(cfg != NULL);
    if (!cfg) return;
    cJSON *lt = cJSON_CreateArray();
    for (int i = 0; i < 3; i++) cJSON_AddItemToArray(lt, cJSON_CreateString("sliding_attention"));
    cJSON_ReplaceItemInObject(cfg, "layer_types", lt);
    cJSON_ReplaceItemInObject(cfg, "query_pre_attn_scalar", cJSON_CreateNumber(16));
    char *js = cJSON_Print(cfg);
    snprintf(path, sizeof path, "%s/config.json", src);
    EL_CHECK(js && el_test_write_file(path, js, strlen(js)));
    snprintf(path, sizeof path, "%s/model.safetensors", src);
    EL_CHECK(symlink(FIX "/hf_llama_gemma3/model.safetensors", path) == 0);
    snprintf(path, sizeof path, "%s/tokenizer.json", src);
    EL_CHECK(symlink(FIX "/hf_llama_gemma3/tokenizer.json", path) == 0);
    /* a chat template and add_bos_token from tokenizer_config.json */
    static const char tcfg[] = "{\"add_bos_token\": false, \"chat_template\": \"{% for m in "
                               "messages %}<start>{{ m.content }}{% endfor %}\"}";
    snprintf(path, sizeof path, "%s/tokenizer_config.json", src);
    EL_CHECK(el_test_write_file(path, tcfg, strlen(tcfg)));
    free(js);
    free(text);
    cJSON_Delete(cfg);
    fixture(dir, src, "gemma3", true, false);
    snprintf(out, sizeof out, "%s/gemma3_f32.gguf", dir);
    el_file f;
    el_gguf *g = parse_gguf(out, &f);
    const el_gguf_kv *ct = g ? el_gguf_find(g, "tokenizer.chat_template") : NULL;
    const el_gguf_kv *ab = g ? el_gguf_find(g, "tokenizer.ggml.add_bos_token") : NULL;
    EL_CHECK(ct && ct->v.str && !strcmp(ct->v.str, "{% for m in messages %}<start>{{ m.content }}{% endfor %}"));
    EL_CHECK(ab && ab->v.type == EL_GGUF_BOOL && ab->v.num.u == 0);
    el_gguf_free(g);
    el_file_close(&f);
}

/* A Llama-shaped safetensors folder with a vocabulary of vocab rows; ~30 MB at hidden 512. */
static void synth_llama(const char *dir, uint32_t vocab, uint32_t hidden) {
    mkdir(dir, 0755);
    char path[1200], cfg[1024];
    snprintf(cfg, sizeof cfg,
             "{\"model_type\":\"llama\",\"architectures\":[\"LlamaForCausalLM\"],\"hidden_size\":%u,"
             "\"intermediate_size\":%u,\"num_hidden_layers\":2,\"num_attention_heads\":8,"
             "\"num_key_value_heads\":4,\"vocab_size\":%u,\"max_position_embeddings\":256,"
             "\"rms_norm_eps\":1e-5,\"rope_theta\":10000,\"bos_token_id\":1,\"eos_token_id\":2,"
             "\"tie_word_embeddings\":true,\"hidden_act\":\"silu\"}",
             hidden, 2 * hidden, vocab);
    snprintf(path, sizeof path, "%s/config.json", dir);
    EL_CHECK(el_test_write_file(path, cfg, strlen(cfg)));
    static char names[32][80];
    el_test_tensor t[32];
    size_t n = 0;
    uint64_t h = hidden, kv = hidden / 2, ff = 2 * hidden;
#define T(nm, r, c) do { snprintf(names[n], sizeof names[n], "%s", nm); \
        t[n] = (el_test_tensor){names[n], EL_DT_F32, (c) ? 2u : 1u, {(r), (c)}}; n++; } while (0)
    T("model.embed_tokens.weight", vocab, h);
    T("model.norm.weight", h, 0);
    for (int l = 0; l < 2; l++) {
        char b[80];
        static const char *const roles[] = {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj",
                                            "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj",
                                            "mlp.down_proj"};
        const uint64_t rows[] = {h, kv, kv, h, ff, ff, h}, cols[] = {h, h, h, h, h, h, ff};
        for (int r = 0; r < 7; r++) {
            snprintf(b, sizeof b, "model.layers.%d.%s.weight", l, roles[r]);
            T(b, rows[r], cols[r]);
        }
        snprintf(b, sizeof b, "model.layers.%d.input_layernorm.weight", l);
        T(b, h, 0);
        snprintf(b, sizeof b, "model.layers.%d.post_attention_layernorm.weight", l);
        T(b, h, 0);
    }
#undef T
    for (size_t i = 0; i < n; i++)
        if (t[i].ndim == 1) t[i].shape[1] = 0;
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    EL_CHECK(el_test_write_safetensors(path, t, n, 3));
}

/* The byte-level tokenizers of tests/fixtures/tokenizer_pretok on a model of their size:
 * SmolLM2's, Llama 3's and Qwen2's are named as llama.cpp names them (smollm, llama-bpe,
 * qwen2) and encode as the tokenizer.json does. */
static void byte_level(const char *dir) {
    char src[1200], out[1200];
    static const struct { const char *file, *pre; bool run; } k[] = {
        {"smollm2.json", "smollm", true}, {"llama3.json", "llama-bpe", true}, {"qwen2.json", "qwen2", true},
    };
    snprintf(src, sizeof src, "%s/synth1448", dir);
    synth_llama(src, 1448, 64);
    for (size_t i = 0; i < 3; i++) {
        char tok[1200];
        snprintf(tok, sizeof tok, FIX "/tokenizer_pretok/%s", k[i].file);
        snprintf(out, sizeof out, "%s/bl_%zu.gguf", dir, i);
        EL_CHECK_OK(pack(src, out, EL_DT_NONE, tok));
        el_file f;
        el_gguf *g = parse_gguf(out, &f);
        const el_gguf_kv *model = g ? el_gguf_find(g, "tokenizer.ggml.model") : NULL;
        const el_gguf_kv *pre = g ? el_gguf_find(g, "tokenizer.ggml.pre") : NULL;
        EL_CHECK(model && model->v.str && !strcmp(model->v.str, "gpt2"));
        EL_CHECK(pre && pre->v.str && !strcmp(pre->v.str, k[i].pre));
        el_gguf_free(g);
        el_file_close(&f);
        if (k[i].run) same_tokens(src, tok, out, false);
    }
    /* more token ids than embedding rows: refused */
    snprintf(out, sizeof out, "%s/too_many.gguf", dir);
    EL_CHECK(pack(FIX "/hf_llama_gqa", out, EL_DT_NONE, FIX "/tokenizer_pretok/smollm2.json") != EL_OK);
    EL_CHECK(access(out, F_OK) != 0);
}

/* tests/fixtures/pack_gguf/tokenizer.model (scripts/fixtures_pack_gguf.py) as the llama
 * vocabulary: tokens, scores and types equal what the sentencepiece library reads from it,
 * and edgeload's GGUF tokenizer encodes its cases to sentencepiece's ids; a truncated model
 * is refused. */
static void spm_model(const char *dir) {
    char out[1200];
    snprintf(out, sizeof out, "%s/spm.gguf", dir);
    EL_CHECK_OK(pack(FIX "/hf_llama_gqa", out, EL_DT_NONE, FIX "/pack_gguf/tokenizer.model"));
    size_t n = 0;
    char *text = el_test_read_file(FIX "/pack_gguf/tokenizer_model.json", &n);
    cJSON *ref = text ? cJSON_ParseWithLength(text, n) : NULL;
    free(text);
    EL_CHECK(ref != NULL);
    el_file f;
    el_gguf *g = parse_gguf(out, &f);
    const el_gguf_kv *tok = g ? el_gguf_find(g, "tokenizer.ggml.tokens") : NULL;
    const el_gguf_kv *sc = g ? el_gguf_find(g, "tokenizer.ggml.scores") : NULL;
    const el_gguf_kv *ty = g ? el_gguf_find(g, "tokenizer.ggml.token_type") : NULL;
    const el_gguf_kv *pre = g ? el_gguf_find(g, "tokenizer.ggml.add_space_prefix") : NULL;
    const cJSON *pieces = cJSON_GetObjectItem(ref, "pieces"), *scores = cJSON_GetObjectItem(ref, "scores");
    const cJSON *types = cJSON_GetObjectItem(ref, "types");
    EL_CHECK(tok && sc && ty && pre && tok->v.len == 512 && sc->v.len == 512 && ty->v.len == 512);
    EL_CHECK(pre && pre->v.num.u == (uint64_t)cJSON_IsTrue(cJSON_GetObjectItem(ref, "add_dummy_prefix")));
    int diffs = 0;
    if (tok && sc && ty && cJSON_GetArraySize(pieces) == 512) {
        static el_gguf_iter a, b, c;
        el_gguf_iter_init(g, &tok->v, &a);
        el_gguf_iter_init(g, &sc->v, &b);
        el_gguf_iter_init(g, &ty->v, &c);
        for (int i = 0; i < 512; i++) {
            el_gguf_value va, vb, vc;
            char piece[256];
            if (el_gguf_iter_next(&a, &va) != EL_OK || el_gguf_iter_next(&b, &vb) != EL_OK ||
                el_gguf_iter_next(&c, &vc) != EL_OK ||
                el_gguf_read_string(g, &va, piece, sizeof piece, NULL) != EL_OK) {
                diffs++;
                break;
            }
            diffs += strcmp(piece, cJSON_GetArrayItem(pieces, i)->valuestring) != 0;
            diffs += (float)vb.num.f != (float)cJSON_GetArrayItem(scores, i)->valuedouble;
            diffs += vc.num.i != (int64_t)cJSON_GetArrayItem(types, i)->valuedouble;
        }
    }
    EL_CHECK(diffs == 0);
    el_gguf_free(g);
    el_file_close(&f);
    const cJSON *cases = cJSON_GetObjectItem(ref, "cases"), *cs;
    int ok = 0, all = 0;
    cJSON_ArrayForEach(cs, cases) {
        int32_t ids[256];
        const cJSON *want = cJSON_GetObjectItem(cs, "ids");
        size_t got = tokenize(out, NULL, cJSON_GetObjectItem(cs, "text")->valuestring, false, ids, 256);
        bool same = got == (size_t)cJSON_GetArraySize(want);
        for (size_t i = 0; same && i < got; i++) same = ids[i] == cJSON_GetArrayItem(want, (int)i)->valueint;
        ok += same;
        all++;
    }
    printf("   tokenizer.model: 512 pieces/scores/types as sentencepiece reads them (%d differ); "
           "%d of %d texts encode to sentencepiece's ids\n", diffs, ok, all);
    EL_CHECK(all == 4 && ok == all);
    cJSON_Delete(ref);
    /* a truncated model: refused, no file */
    char cut[1200];
    snprintf(cut, sizeof cut, "%s/cut.model", dir);
    text = el_test_read_file(FIX "/pack_gguf/tokenizer.model", &n);
    EL_CHECK(text && el_test_write_file(cut, text, n / 2));
    free(text);
    snprintf(out, sizeof out, "%s/cut.gguf", dir);
    EL_CHECK_STATUS(pack(FIX "/hf_llama_gqa", out, EL_DT_NONE, cut), EL_E_INVALID);
    EL_CHECK(access(out, F_OK) != 0);
}

static void hostile(const char *dir) {
    char out[1200], self[1200];
    /* a directory */
    snprintf(out, sizeof out, "%s/adir.gguf", dir);
    mkdir(out, 0755);
    EL_CHECK_STATUS(pack(FIX "/hf_llama_gqa", out, EL_DT_NONE, NULL), EL_E_USAGE);
    struct stat st;
    EL_CHECK(stat(out, &st) == 0 && S_ISDIR(st.st_mode));
    /* an existing device */
    EL_CHECK_STATUS(pack(FIX "/hf_llama_gqa", "/dev/null", EL_DT_NONE, NULL), EL_E_USAGE);
    EL_CHECK(stat("/dev/null", &st) == 0 && S_ISCHR(st.st_mode));
    /* the input itself */
    snprintf(self, sizeof self, "%s/self.gguf", dir);
    EL_CHECK_OK(pack(FIX "/hf_llama_gqa", self, EL_DT_F32, NULL));
    size_t n0 = 0, n1 = 0;
    char *before = el_test_read_file(self, &n0);
    EL_CHECK_STATUS(pack(self, self, EL_DT_Q8_0, NULL), EL_E_USAGE);
    EL_CHECK(strstr(el_last_error(), "own file") != NULL);
    char *after = el_test_read_file(self, &n1);
    EL_CHECK(before && after && n0 == n1 && !memcmp(before, after, n0));
    free(before);
    free(after);
    /* what cannot be said: an unsupported --dtype, an encoder family, Llama 3 RoPE scaling,
     * Mistral's and Qwen2's sliding windows */
    snprintf(out, sizeof out, "%s/bad.gguf", dir);
    EL_CHECK_STATUS(pack(FIX "/hf_llama_gqa", out, EL_DT_Q4_K, NULL), EL_E_USAGE);
    EL_CHECK_STATUS(pack(FIX "/hf_bert_base", out, EL_DT_NONE, NULL), EL_E_UNSUPPORTED);
    EL_CHECK_STATUS(pack(FIX "/hf_llama_llama3", out, EL_DT_NONE, NULL), EL_E_UNSUPPORTED);
    EL_CHECK(strstr(el_last_error(), "llama3") != NULL);
    EL_CHECK_STATUS(pack(FIX "/hf_llama_mistral", out, EL_DT_NONE, NULL), EL_E_UNSUPPORTED);
    EL_CHECK(strstr(el_last_error(), "sliding window") != NULL);
    EL_CHECK_STATUS(pack(FIX "/hf_llama_qwen2win", out, EL_DT_NONE, NULL), EL_E_UNSUPPORTED);
    EL_CHECK(access(out, F_OK) != 0);
}

/* The CLI: the format from the extension (any case) or --format; a bad --format is a usage
 * error. */
static void cli(const char *dir) {
    char args[2600], path[1200];
    char *out = NULL;
    snprintf(path, sizeof path, "%s/cli.bin", dir);
    snprintf(args, sizeof args, "pack '%s' -o '%s' --format gguf --dtype q4_0", FIX "/hf_llama_gqa", path);
    EL_CHECK(el_test_run_cli(args, &out, NULL) == 0);
    EL_CHECK(out && strstr(out, "GGUF v3") && strstr(out, "tokenizer llama"));
    free(out);
    size_t n = 0;
    char *bytes = el_test_read_file(path, &n);
    EL_CHECK(bytes && n > 4 && !memcmp(bytes, "GGUF", 4));
    free(bytes);
    snprintf(path, sizeof path, "%s/cli.GGUF", dir);
    snprintf(args, sizeof args, "pack '%s' -o '%s'", FIX "/hf_llama_gqa", path);
    EL_CHECK(el_test_run_cli(args, NULL, NULL) == 0);
    bytes = el_test_read_file(path, &n);
    EL_CHECK(bytes && n > 4 && !memcmp(bytes, "GGUF", 4));
    free(bytes);
    snprintf(args, sizeof args, "pack '%s' -o '%s' --format onnx", FIX "/hf_llama_gqa", path);
    EL_CHECK(el_test_run_cli(args, NULL, NULL) == 1);
    snprintf(args, sizeof args, "pack '%s' -o '%s' --codec lz4", FIX "/hf_llama_gqa", path);
    EL_CHECK(el_test_run_cli(args, NULL, NULL) == 1); /* an image option is not ignored */
    snprintf(args, sizeof args, "pack '%s' -o '%s/bert.gguf'", FIX "/hf_bert_base", dir);
    EL_CHECK(el_test_run_cli(args, NULL, NULL) == 2);
}

/* SIGKILL at random times during `edgeload pack big -o OUT.gguf` over an existing OUT: OUT is
 * the old file or the whole new one, never a part. */
static void killed(const char *dir) {
    char src[1200], out[1200], fresh[1200];
    snprintf(src, sizeof src, "%s/big", dir);
    synth_llama(src, 4096, 512);
    snprintf(out, sizeof out, "%s/out.gguf", dir);
    snprintf(fresh, sizeof fresh, "%s/fresh.gguf", dir);
    EL_CHECK_OK(pack(src, fresh, EL_DT_Q8_0, NULL));
    size_t new_len = 0;
    char *neu = el_test_read_file(fresh, &new_len);
    static const char old[] = "the previous OUT";
    /* $EL_CLI may be a command line (qemu-aarch64 -L ... edgeload under a cross build): run
     * through sh, which execs it, so the pid is the pack's own */
    const char *cli = getenv("EL_CLI");
    if (!cli || !*cli) cli = EL_BINARY_DIR "/edgeload";
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "exec %s pack '%s' -o '%s' --dtype q8_0", cli, src, out);
    /* how long a whole pack takes: the kills fall in [0, 1.3 x that) */
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    pid_t pid = fork();
    if (pid == 0) {
        int devnull = open("/dev/null", O_WRONLY);
        dup2(devnull, 1);
        execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
        _exit(127);
    }
    int wst = 0;
    waitpid(pid, &wst, 0);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    EL_CHECK(WIFEXITED(wst) && WEXITSTATUS(wst) == 0);
    long us = (t1.tv_sec - t0.tv_sec) * 1000000L + (t1.tv_nsec - t0.tv_nsec) / 1000;
    srand((unsigned)time(NULL));
    int olds = 0, news = 0, bad = 0;
    for (int k = 0; k < 12 && neu; k++) {
        EL_CHECK(el_test_write_file(out, old, sizeof old));
        const char *const argv[] = {"/bin/sh", "-c", cmd, NULL};
        el_test_proc_kill_after(argv, rand() % (us * 13 / 10 + 1));
        size_t n = 0;
        char *got = el_test_read_file(out, &n);
        bool is_old = got && n == sizeof old && !memcmp(got, old, n);
        bool is_new = got && n == new_len && !memcmp(got, neu, n);
        olds += is_old;
        news += is_new;
        bad += !(is_old || is_new);
        free(got);
        img_remove_temp_files(dir);
    }
    printf("   SIGKILL during pack (a whole pack: %ld ms): 12 runs, %d left the old OUT, %d the "
           "new, %d broken\n", us / 1000, olds, news, bad);
    EL_CHECK(bad == 0);
    free(neu);
}

int main(void) {
    char dir[1024];
    snprintf(dir, sizeof dir, "%s", el_test_tmpdir());
    fixture(dir, FIX "/hf_llama_gqa", "llama", true, true);
    fixture(dir, FIX "/hf_llama_qwen2", "qwen2", true, true);
    fixture(dir, FIX "/hf_gpt2_small", "gpt2", false, false);
    fixture(dir, FIX "/hf_llama_phi3", "phi3", true, true);
    gemma3(dir);
    sources(dir);
    byte_level(dir);
    spm_model(dir);
    hostile(dir);
    cli(dir);
    killed(dir);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_pack_gguf");
}
