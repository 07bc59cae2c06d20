/* test_loader_config.c - HF config.json parsing: a real BERT config from the shared models
 * folder, GPT-2 and Llama spellings, token-id lists, id2label, and wrong types or ranges. */
// ctest-labels: loader;unit
#include "tests/support/el_test.h"

#include "loader/safetensors.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static bool err_has(const char *needle) {
    if (strstr(el_last_error(), needle)) return true;
    fprintf(stderr, "  message \"%s\" lacks \"%s\"\n", el_last_error(), needle);
    return false;
}

static el_status parse(const char *json, el_config *c) {
    return el_config_parse(json, strlen(json), "config.json", c);
}

/* Expects failure naming field, with *out untouched. */
static void expect_fail(const char *json, const char *field) {
    el_config c;
    memset(&c, 0, sizeof c);
    c.hidden_size = 777;
    c.eos_token_id = 12345;
    EL_CHECK_STATUS(parse(json, &c), EL_E_INVALID);
    EL_CHECK(err_has("config.json: ") && err_has(field));
    EL_CHECK(c.hidden_size == 777 && c.eos_token_id == 12345 && c.id2label == NULL);
}

static void test_minilm(void) {
    const char *dir = el_test_shared_models();
    char path[1200];
    size_t n = 0;
    char *json = NULL;
    if (dir) {
        snprintf(path, sizeof path, "%s/all-MiniLM-L6-v2/config.json", dir);
        json = el_test_read_file(path, &n);
    }
    if (!json) {
        printf("note: %s/all-MiniLM-L6-v2/config.json not found; real-config check not run\n",
               dir ? dir : "(no shared models folder)");
        return;
    }
    el_config c;
    EL_CHECK_OK(el_config_parse(json, n, path, &c));
    /* The values in that file (sentence-transformers/all-MiniLM-L6-v2). */
    EL_CHECK(!strcmp(c.model_type, "bert"));
    EL_CHECK(!strcmp(c.architecture, "BertModel"));
    EL_CHECK(!strcmp(c.hidden_act, "gelu"));
    EL_CHECK(c.hidden_size == 384 && c.intermediate_size == 1536);
    EL_CHECK(c.num_layers == 6 && c.num_heads == 12 && c.num_kv_heads == 0);
    EL_CHECK(c.vocab_size == 30522 && c.max_positions == 512 && c.type_vocab_size == 2);
    EL_CHECK(c.norm_eps == 1e-12);
    EL_CHECK(c.pad_token_id == 0 && c.bos_token_id == -1 && c.eos_token_id == -1);
    EL_CHECK(!c.has_tie_word_embeddings && c.rope_theta == 0.0);
    EL_CHECK(c.num_labels == 0 && c.id2label == NULL);
    el_config_free(&c);
    free(json);
}

static void test_gpt2(void) {
    /* The GPT-2 (124M) config.json, as published. */
    const char *json =
        "{\"activation_function\": \"gelu_new\", \"architectures\": [\"GPT2LMHeadModel\"],"
        " \"attn_pdrop\": 0.1, \"bos_token_id\": 50256, \"embd_pdrop\": 0.1,"
        " \"eos_token_id\": 50256, \"initializer_range\": 0.02, \"layer_norm_epsilon\": 1e-05,"
        " \"model_type\": \"gpt2\", \"n_ctx\": 1024, \"n_embd\": 768, \"n_head\": 12,"
        " \"n_inner\": null, \"n_layer\": 12, \"n_positions\": 1024, \"resid_pdrop\": 0.1,"
        " \"summary_activation\": null, \"summary_first_dropout\": 0.1,"
        " \"summary_proj_to_labels\": true, \"summary_type\": \"cls_index\","
        " \"summary_use_proj\": true,"
        " \"task_specific_params\": {\"text-generation\": {\"do_sample\": true, \"max_length\": 50}},"
        " \"vocab_size\": 50257}";
    el_config c;
    EL_CHECK_OK(parse(json, &c));
    EL_CHECK(!strcmp(c.model_type, "gpt2") && !strcmp(c.architecture, "GPT2LMHeadModel"));
    EL_CHECK(!strcmp(c.hidden_act, "gelu_new"));
    EL_CHECK(c.hidden_size == 768 && c.num_layers == 12 && c.num_heads == 12);
    EL_CHECK(c.max_positions == 1024 && c.vocab_size == 50257);
    EL_CHECK(c.intermediate_size == 0); /* n_inner: null */
    EL_CHECK(c.norm_eps == 1e-05);
    EL_CHECK(c.bos_token_id == 50256 && c.eos_token_id == 50256 && c.pad_token_id == -1);
    EL_CHECK(!c.has_tie_word_embeddings);
    el_config_free(&c);
}

static void test_llama(void) {
    /* TinyLlama-1.1B-style config. */
    const char *json =
        "{\"architectures\": [\"LlamaForCausalLM\"], \"attention_bias\": false,"
        " \"bos_token_id\": 1, \"eos_token_id\": 2, \"hidden_act\": \"silu\","
        " \"hidden_size\": 2048, \"initializer_range\": 0.02, \"intermediate_size\": 5632,"
        " \"max_position_embeddings\": 2048, \"model_type\": \"llama\","
        " \"num_attention_heads\": 32, \"num_hidden_layers\": 22, \"num_key_value_heads\": 4,"
        " \"pretraining_tp\": 1, \"rms_norm_eps\": 1e-05, \"rope_scaling\": null,"
        " \"rope_theta\": 10000.0, \"tie_word_embeddings\": false, \"torch_dtype\": \"bfloat16\","
        " \"transformers_version\": \"4.35.0\", \"use_cache\": true, \"vocab_size\": 32000,"
        " \"head_dim\": 64}";
    el_config c;
    EL_CHECK_OK(parse(json, &c));
    EL_CHECK(!strcmp(c.model_type, "llama") && !strcmp(c.architecture, "LlamaForCausalLM"));
    EL_CHECK(!strcmp(c.hidden_act, "silu"));
    EL_CHECK(c.hidden_size == 2048 && c.intermediate_size == 5632 && c.num_layers == 22);
    EL_CHECK(c.num_heads == 32 && c.num_kv_heads == 4 && c.head_dim == 64);
    EL_CHECK(c.max_positions == 2048 && c.vocab_size == 32000);
    EL_CHECK(c.norm_eps == 1e-05 && c.rope_theta == 10000.0);
    EL_CHECK(c.has_tie_word_embeddings && !c.tie_word_embeddings);
    EL_CHECK(c.bos_token_id == 1 && c.eos_token_id == 2 && c.pad_token_id == -1);
    el_config_free(&c);

    /* Llama-3 style: eos list (the first is taken), big rope_theta, tied embeddings. */
    EL_CHECK_OK(parse("{\"model_type\":\"llama\",\"eos_token_id\":[128001,128008,128009],"
                      "\"rope_theta\":500000.0,\"tie_word_embeddings\":true,"
                      "\"bos_token_id\":128000}", &c));
    EL_CHECK(c.eos_token_id == 128001 && c.bos_token_id == 128000);
    EL_CHECK(c.rope_theta == 500000.0 && c.has_tie_word_embeddings && c.tie_word_embeddings);
    el_config_free(&c);
    EL_CHECK_OK(parse("{\"eos_token_id\":[],\"pad_token_id\":-1,\"bos_token_id\":null}", &c));
    EL_CHECK(c.eos_token_id == -1 && c.pad_token_id == -1 && c.bos_token_id == -1);
    el_config_free(&c);
    EL_CHECK_OK(parse("{\"eos_token_id\":4294967295}", &c));
    EL_CHECK(c.eos_token_id == 4294967295ll);
    el_config_free(&c);
}

static void test_fields(void) {
    el_config c;
    /* Empty: every default. */
    EL_CHECK_OK(parse("{}", &c));
    EL_CHECK(c.model_type[0] == 0 && c.hidden_size == 0 && c.bos_token_id == -1 &&
             c.eos_token_id == -1 && c.pad_token_id == -1 && !c.has_tie_word_embeddings);
    el_config_free(&c);
    /* Spelling precedence: the HF name wins over the GPT-2 one wherever they sit. */
    EL_CHECK_OK(parse("{\"n_embd\": 5, \"hidden_size\": 7, \"dim\": 9, \"n_layer\": 3}", &c));
    EL_CHECK(c.hidden_size == 7 && c.num_layers == 3);
    el_config_free(&c);
    EL_CHECK_OK(parse("{\"dim\": 288, \"n_head\": 6}", &c));
    EL_CHECK(c.hidden_size == 288 && c.num_heads == 6);
    el_config_free(&c);
    /* Repeated keys: the last wins, as in Python's json. */
    EL_CHECK_OK(parse("{\"hidden_size\": 1, \"hidden_size\": 2}", &c));
    EL_CHECK(c.hidden_size == 2);
    el_config_free(&c);
    /* Ranges. */
    EL_CHECK_OK(parse("{\"vocab_size\": 4294967295, \"hidden_size\": 0}", &c));
    EL_CHECK(c.vocab_size == 4294967295u);
    el_config_free(&c);
    EL_CHECK_OK(parse("{\"num_hidden_layers\": 6.0}", &c));
    EL_CHECK(c.num_layers == 6);
    el_config_free(&c);

    expect_fail("{\"hidden_size\": \"384\"}", "hidden_size");
    expect_fail("{\"hidden_size\": 384.5}", "hidden_size: expected an integer");
    expect_fail("{\"n_embd\": -1}", "n_embd");
    expect_fail("{\"vocab_size\": 4294967296}", "vocab_size");
    expect_fail("{\"num_attention_heads\": true}", "num_attention_heads");
    expect_fail("{\"intermediate_size\": [1]}", "intermediate_size");
    expect_fail("{\"tie_word_embeddings\": 1}", "tie_word_embeddings");
    expect_fail("{\"model_type\": 5}", "model_type");
    expect_fail("{\"model_type\": \"a-model-type-name-far-too-long-for-32\"}", "model_type");
    expect_fail("{\"architectures\": \"BertModel\"}", "architectures");
    expect_fail("{\"architectures\": [7]}", "architectures[0]");
    expect_fail("{\"hidden_act\": [\"gelu\"]}", "hidden_act");
    expect_fail("{\"activation_function\": \"g\xff\"}", "activation_function");
    expect_fail("{\"eos_token_id\": \"2\"}", "eos_token_id");
    expect_fail("{\"eos_token_id\": [2, \"3\"]}", "eos_token_id[1]");
    expect_fail("{\"bos_token_id\": -2}", "bos_token_id");
    expect_fail("{\"pad_token_id\": 1.5}", "pad_token_id");
    expect_fail("{\"rms_norm_eps\": \"1e-5\"}", "rms_norm_eps");
    expect_fail("{\"layer_norm_eps\": -1e-5}", "layer_norm_eps");
    expect_fail("{\"layer_norm_epsilon\": 1e999}", "layer_norm_epsilon");
    expect_fail("{\"rope_theta\": 0}", "rope_theta");
    expect_fail("{\"rope_theta\": 1e999}", "rope_theta");
    expect_fail("{\"rope_theta\": \"10000\"}", "rope_theta");
    expect_fail("[1, 2]", "expected a JSON object");
    expect_fail("{\"hidden_size\": 1", "not valid JSON");
    expect_fail("{\"a\":[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]"
                "]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]}",
                "nests deeper than 64");

    /* A long architecture name is cut (display only), at a UTF-8 boundary. */
    char json[512], arch[128];
    memset(arch, 'A', 61);
    strcpy(arch + 61, "\xc3\xa9XYZ"); /* bytes 61-62 are 'é': 63 is the last that fits */
    snprintf(json, sizeof json, "{\"architectures\": [\"%s\"]}", arch);
    EL_CHECK_OK(parse(json, &c));
    EL_CHECK(strlen(c.architecture) == 63 && !memcmp(c.architecture, arch, 63));
    el_config_free(&c);
    memset(arch, 'A', 62);
    strcpy(arch + 62, "\xc3\xa9XYZ"); /* 'é' at 62-63 would be split: cut before it */
    snprintf(json, sizeof json, "{\"architectures\": [\"%s\"]}", arch);
    EL_CHECK_OK(parse(json, &c));
    EL_CHECK(strlen(c.architecture) == 62 && el_utf8_valid(c.architecture, 62));
    el_config_free(&c);
    EL_CHECK_OK(parse("{\"architectures\": []}", &c));
    EL_CHECK(c.architecture[0] == 0);
    el_config_free(&c);
}

static void test_id2label(void) {
    el_config c;
    EL_CHECK_OK(parse("{\"id2label\": {\"1\": \"POSITIVE\", \"0\": \"NEGATIVE\"},"
                      " \"label2id\": {\"NEGATIVE\": 0, \"POSITIVE\": 1}}", &c));
    EL_CHECK(c.num_labels == 2 && c.id2label != NULL);
    if (c.num_labels == 2 && c.id2label) {
        EL_CHECK(!strcmp(c.id2label[0], "NEGATIVE"));
        EL_CHECK(!strcmp(c.id2label[1], "POSITIVE"));
    }
    el_config_free(&c);
    EL_CHECK(c.id2label == NULL && c.num_labels == 0);
    el_config_free(NULL);

    expect_fail("{\"id2label\": {\"0\": \"A\", \"2\": \"B\"}}", "id2label");
    expect_fail("{\"id2label\": {\"0\": \"A\", \"1\": 5}}", "id2label[\"1\"]");
    expect_fail("{\"id2label\": {\"0\": \"A\", \"0\": \"B\"}}", "id2label");
    expect_fail("{\"id2label\": {\"00\": \"A\"}}", "'00'");
    expect_fail("{\"id2label\": {\"+0\": \"A\"}}", "id2label");
    expect_fail("{\"id2label\": {\" 0\": \"A\"}}", "id2label");
    expect_fail("{\"id2label\": {\"x\": \"A\"}}", "id2label");
    expect_fail("{\"id2label\": [\"A\", \"B\"]}", "id2label");
    EL_CHECK_OK(parse("{\"id2label\": {}}", &c));
    EL_CHECK(c.num_labels == 0 && c.id2label == NULL);
    el_config_free(&c);

    /* Long names are cut to 63 bytes. */
    char name[200], json[400];
    memset(name, 'L', 150);
    name[150] = 0;
    snprintf(json, sizeof json, "{\"id2label\": {\"0\": \"%s\"}}", name);
    EL_CHECK_OK(parse(json, &c));
    EL_CHECK(c.num_labels == 1 && strlen(c.id2label[0]) == 63 &&
             !memcmp(c.id2label[0], name, 63));
    el_config_free(&c);

    /* At the edge: 63 bytes fit, 64 are cut to 63. */
    for (size_t len = 63; len <= 64; len++) {
        name[len] = 0;
        snprintf(json, sizeof json, "{\"id2label\": {\"1\": \"x\", \"0\": \"%s\"}}", name);
        EL_CHECK_OK(parse(json, &c));
        EL_CHECK(c.num_labels == 2 && strlen(c.id2label[0]) == 63 && !strcmp(c.id2label[1], "x"));
        el_config_free(&c);
        name[len] = 'L';
    }

    /* 4096 labels are accepted, 4097 are not. */
    for (int n = 4096; n <= 4097; n++) {
        size_t cap = (size_t)n * 32 + 64, o = 0;
        char *big = malloc(cap);
        o += (size_t)snprintf(big, cap, "{\"id2label\": {");
        for (int i = n - 1; i >= 0; i--)
            o += (size_t)snprintf(big + o, cap - o, "\"%d\": \"L%d\"%s", i, i, i ? ", " : "");
        snprintf(big + o, cap - o, "}}");
        memset(&c, 0, sizeof c);
        EL_CHECK_STATUS(parse(big, &c), n == 4096 ? EL_OK : EL_E_INVALID);
        if (n == 4096) {
            EL_CHECK(c.num_labels == 4096 && !strcmp(c.id2label[4095], "L4095") &&
                     !strcmp(c.id2label[17], "L17"));
        } else {
            EL_CHECK(err_has("4096") && c.id2label == NULL);
        }
        el_config_free(&c);
        free(big);
    }
}

/* RoPE scaling in both layouts: what is read, what is refused by name. */
static void test_rope(void) {
    el_config c;
    memset(&c, 0, sizeof c);
    EL_CHECK_OK(parse("{\"rope_scaling\": {\"type\": \"linear\", \"factor\": 4.0}, "
                      "\"rope_theta\": 10000.0}", &c));
    EL_CHECK(!strcmp(c.rope_type, "linear") && c.rope_factor == 4.0 && c.rope_theta == 10000.0);
    el_config_free(&c);
    memset(&c, 0, sizeof c);
    EL_CHECK_OK(parse("{\"rope_parameters\": {\"rope_type\": \"llama3\", \"rope_theta\": 5e5, "
                      "\"factor\": 32.0, \"low_freq_factor\": 1.0, \"high_freq_factor\": 4.0, "
                      "\"original_max_position_embeddings\": 8192}}", &c));
    EL_CHECK(!strcmp(c.rope_type, "llama3") && c.rope_factor == 32.0 &&
             c.rope_high_freq_factor == 4.0 && c.rope_original_max_pos == 8192.0 &&
             c.rope_theta == 5e5);
    el_config_free(&c);
    static const char *const refused[] = {"dynamic", "yarn", "longrope", "su"};
    for (size_t i = 0; i < 4; i++) {
        char json[160];
        snprintf(json, sizeof json, "{\"rope_scaling\": {\"rope_type\": \"%s\", \"factor\": "
                 "2.0}}", refused[i]);
        memset(&c, 0, sizeof c);
        EL_CHECK_STATUS(parse(json, &c), EL_E_UNSUPPORTED);
        EL_CHECK(err_has(refused[i]) && err_has("not supported"));
    }
    expect_fail("{\"rope_scaling\": {\"type\": \"linear\"}}", "rope_scaling.factor");
    expect_fail("{\"rope_scaling\": {\"rope_type\": \"llama3\", \"factor\": 8, "
                "\"low_freq_factor\": 1, \"high_freq_factor\": 4}}",
                "original_max_position_embeddings");
    expect_fail("{\"rope_parameters\": {\"rope_type\": \"llama3\", \"factor\": 8, "
                "\"low_freq_factor\": 4, \"high_freq_factor\": 1, "
                "\"original_max_position_embeddings\": 64}}", "low_freq_factor");
    expect_fail("{\"rope_scaling\": [1]}", "rope_scaling");
    expect_fail("{\"rope_scaling\": {\"type\": 3}}", "rope_type");
}

int main(void) {
    test_rope();
    test_minilm();
    test_gpt2();
    test_llama();
    test_fields();
    test_id2label();
    return el_test_finish("test_loader_config");
}
