/* test_llama_arch.c - what the decoder refuses by name rather than runs wrong, on the
 * transformers fixtures (tests/fixtures/hf_llama_*) with their config edited: the Mistral
 * window removed (the logits past it must change: the window is applied), layer_types
 * that do not fit, biases in the file that the config says are absent, biases the config
 * asks for that are missing, RoPE types and partial RoPE not implemented, bidirectional
 * Gemma, logit soft-capping, activations and fields an architecture does not have. */
// ctest-labels: llama;model
#include "tests/support/el_test.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define FIXDIR EL_SOURCE_DIR "/tests/fixtures"

/* Copies fixture dir's config.json (with the first occurrence of `from` replaced by `to`,
 * then of from2 by to2 unless NULL), model.safetensors and tokenizer.json into a fresh
 * folder; returns its path. */
static const char *edited2(const char *fixture, const char *name, const char *from,
                           const char *to, const char *from2, const char *to2) {
    static char dir[600];
    snprintf(dir, sizeof dir, "%s/%s", el_test_tmpdir(), name);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "mkdir -p '%s' && cp '%s/%s/model.safetensors' "
             "'%s/%s/tokenizer.json' '%s/'", dir, FIXDIR, fixture, FIXDIR, fixture, dir);
    EL_CHECK(system(cmd) == 0);
    char path[700];
    snprintf(path, sizeof path, "%s/%s/config.json", FIXDIR, fixture);
    char *cfg = el_test_read_file(path, NULL);
    EL_CHECK(cfg != NULL);
    if (!cfg) return dir;
    for (int k = 0; k < 2 && cfg; k++) {
        const char *f = k ? from2 : from, *t = k ? to2 : to;
        if (!f) break;
        char *at = strstr(cfg, f);
        EL_CHECK(at != NULL);
        size_t n = strlen(cfg) + strlen(t) + 1;
        char *out = at ? malloc(n) : NULL;
        if (out) snprintf(out, n, "%.*s%s%s", (int)(at - cfg), cfg, t, at + strlen(f));
        free(cfg);
        cfg = out;
    }
    snprintf(path, sizeof path, "%s/config.json", dir);
    EL_CHECK(cfg && el_test_write_file(path, cfg, strlen(cfg)));
    free(cfg);
    return dir;
}

static const char *edited(const char *fixture, const char *name, const char *from,
                          const char *to) {
    return edited2(fixture, name, from, to, NULL, NULL);
}

/* Opens dir and plans ctx (0 = the model's); checks the status and, on failure, that the
 * message names needle. */
static void expect_plan(const char *dir, uint32_t ctx, el_status want, const char *needle) {
    el_model *m = NULL;
    el_status s = el_model_open(dir, NULL, &m);
    if (s == EL_OK) {
        el_plan_params pp = {ctx, 1, EL_DT_NONE, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
        el_plan plan;
        s = el_plan_make(m, &pp, &plan);
    }
    EL_CHECK_STATUS(s, want);
    if (s != EL_OK) {
        fprintf(stderr, "   %s\n", el_last_error());
        EL_CHECK(needle && strstr(el_last_error(), needle));
    }
    el_model_close(m);
}

/* The mistral fixture (window 5) with the window removed from its config: positions 0..4
 * still equal transformers' windowed logits, later ones must not (proof the window is
 * applied where it binds; test_llama_hf checks the windowed run itself). */
static void window_removed(const char *dir) {
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(dir, NULL, &m));
    if (!m) return;
    el_plan_params pp = {0, 1, EL_DT_NONE, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    el_plan plan;
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    el_arena *a = el_test_arena(&plan, EL_MEMORY_HOST);
    el_session *s = NULL;
    if (a) EL_CHECK_OK(el_model_load(m, &plan, a, NULL, NULL));
    if (a) EL_CHECK_OK(el_session_init(m, a, &plan, NULL, &s));
    size_t n = 0;
    float *want = (float *)el_test_read_file(FIXDIR "/hf_llama_mistral/logits_f32.bin", &n);
    static const int32_t prompt[8] = {1, 352, 483, 452, 394, 373, 286, 393};
    char *ref = el_test_read_file(FIXDIR "/hf_llama_mistral/reference.json", NULL);
    EL_CHECK(ref && strstr(ref, "\"prompt_ids\": [1, 352, 483, 452, 394, 373, 286, 393]"));
    EL_CHECK(n == 8 * 512 * sizeof(float));
    float in_window = 0, past = 0;
    const float *lg = NULL;
    for (size_t i = 0; s && want && n == 8 * 512 * sizeof(float) && i < 8; i++) {
        EL_CHECK_OK(el_session_forward(s, &prompt[i], 1, &lg));
        float d = 0;
        for (size_t v = 0; lg && v < 512; v++) d = fmaxf(d, fabsf(lg[v] - want[i * 512 + v]));
        if (i < 5)
            in_window = fmaxf(in_window, d);
        else
            past = fmaxf(past, d);
    }
    fprintf(stderr, "   no window: positions 0-4 max |diff| %.3g, 5-7 %.3g vs the windowed "
            "reference\n", in_window, past);
    EL_CHECK(lg && in_window <= 1e-4f && past > 1e-2f);
    free(ref);
    free(want);
    el_session_deinit(s);
    el_arena_deinit(a);
    el_model_close(m);
}

int main(void) {
    fprintf(stderr, "-- Mistral sliding window\n");
    const char *d = edited("hf_llama_mistral", "nowindow", "\"sliding_window\": 5",
                           "\"sliding_window\": null");
    window_removed(d);
    d = edited("hf_llama_gemma3", "gemma3types", "\"sliding_attention\"\n  ],",
               "\"sliding_attention\", \"full_attention\"\n  ],");
    expect_plan(d, 0, EL_E_INVALID, "layer_types has 4 entries for 3 layers");
    d = edited("hf_llama_gemma3", "gemma3types2", "\"full_attention\",", "\"chunked\",");
    expect_plan(d, 0, EL_E_UNSUPPORTED, "layer_types[1]");

    fprintf(stderr, "-- biases the config does not have\n");
    d = edited("hf_llama_bias", "noattnbias", "\"attention_bias\": true",
               "\"attention_bias\": false");
    expect_plan(d, 0, EL_E_UNSUPPORTED, "q_proj.bias is present but config attention_bias");
    d = edited("hf_llama_bias", "nomlpbias", "\"mlp_bias\": true", "\"mlp_bias\": false");
    expect_plan(d, 0, EL_E_UNSUPPORTED, "gate_proj.bias is present but config mlp_bias");

    fprintf(stderr, "-- biases the config asks for and the file lacks\n");
    d = edited("hf_llama_qwen2", "qwen2mlpbias", "\"hidden_act\"",
               "\"mlp_bias\": true, \"hidden_act\"");
    expect_plan(d, 0, EL_E_INVALID, "missing tensor model.layers.0.mlp.gate_proj.bias");
    d = edited("hf_llama_mistral", "mistralbias", "\"hidden_act\"",
               "\"attention_bias\": true, \"hidden_act\"");
    expect_plan(d, 0, EL_E_INVALID, "missing tensor model.layers.0.self_attn.q_proj.bias");

    fprintf(stderr, "-- features not implemented\n");

    d = edited("hf_llama_bias", "ropescaled", "\"hidden_act\"",
               "\"rope_scaling\": {\"rope_type\": \"yarn\", \"factor\": 4.0}, \"hidden_act\"");
    expect_plan(d, 0, EL_E_UNSUPPORTED, "rope_scaling");
    d = edited("hf_llama_qwen2", "qwen2gelu", "\"hidden_act\": \"silu\"",
               "\"hidden_act\": \"gelu\"");
    expect_plan(d, 0, EL_E_UNSUPPORTED, "hidden_act 'gelu'");
    d = edited("hf_llama_phi3", "phi3partial", "\"partial_rotary_factor\": 1.0",
               "\"partial_rotary_factor\": 0.5");
    expect_plan(d, 0, EL_E_UNSUPPORTED, "partial_rotary_factor");
    d = edited("hf_llama_phi3", "phi3longrope", "\"rope_type\": \"default\"",
               "\"rope_type\": \"longrope\"");
    expect_plan(d, 0, EL_E_UNSUPPORTED, "longrope");
    d = edited("hf_llama_gemma3", "gemma3bidir", "\"use_bidirectional_attention\": false",
               "\"use_bidirectional_attention\": true");
    expect_plan(d, 0, EL_E_UNSUPPORTED, "use_bidirectional_attention");
    d = edited("hf_llama_gemma3", "gemma3cap", "\"final_logit_softcapping\": null",
               "\"final_logit_softcapping\": 30.0");
    expect_plan(d, 0, EL_E_UNSUPPORTED, "final_logit_softcapping");
    d = edited("hf_llama_gemma3", "gemma3silu", "\"gelu_pytorch_tanh\"", "\"silu\"");
    expect_plan(d, 0, EL_E_UNSUPPORTED, "hidden_activation 'silu'");
    d = edited("hf_llama_qwen2", "qwen2scalar", "\"hidden_act\"",
               "\"query_pre_attn_scalar\": 24, \"hidden_act\"");
    expect_plan(d, 0, EL_E_UNSUPPORTED, "query_pre_attn_scalar");
    return el_test_finish("test_llama_arch");
}
