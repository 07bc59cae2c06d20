/* test_gpt2_bad.c - GPT-2 folders that are wrong in one way each give a clear error and the
 * documented exit code, before any weight is read: a missing tensor, a wrong shape, a vocab
 * size that disagrees with wte, more layers in the file than in the config, heads that do
 * not divide n_embd, an unsupported activation, --ctx past n_positions; at run time a prompt
 * longer than n_positions and token ids outside the vocabulary; and no tokenizer. Also a
 * synthetic model in each naming (with and without "transformer.") runs. */
// ctest-labels: gpt2;model
// ctest-timeout: 120
#include "tests/gpt2_synth.h"

#include <stdlib.h>
#include <string.h>

static int g_case;

/* A fresh folder with one defect; returns its path (static rotating storage). */
static const char *make(const gpt2_synth *g) {
    static char dirs[4][600];
    char *d = dirs[g_case % 4];
    snprintf(d, sizeof dirs[0], "%s/case%d", el_test_tmpdir(), g_case++);
    EL_CHECK(gpt2_synth_write(d, g));
    return d;
}

/* el_model_open succeeds (headers are fine), el_plan_make fails with want and a message
 * containing `needle`; `edgeload plan` exits with want's code and prints the message. */
static void expect_plan_error(const gpt2_synth *g, el_plan_params *pp, el_status want,
                              const char *needle, const char *cli_extra) {
    const char *dir = make(g);
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(dir, NULL, &m));
    if (!m) return;
    EL_CHECK(!strcmp(el_model_family(m), "gpt2"));
    el_plan plan;
    EL_CHECK_STATUS(el_plan_make(m, pp, &plan), want);
    bool has = strstr(el_last_error(), needle) != NULL;
    fprintf(stderr, "   %s\n", el_last_error());
    EL_CHECK(has);
    el_model_close(m);
    char args[900], *err = NULL;
    snprintf(args, sizeof args, "plan '%s' %s", dir, cli_extra ? cli_extra : "");
    int rc = el_test_run_cli(args, NULL, &err);
    EL_CHECK(rc == el_status_exit_code(want));
    EL_CHECK(err && strstr(err, needle));
    if (rc != el_status_exit_code(want)) fprintf(stderr, "   cli rc %d: %s\n", rc, err);
    free(err);
}

/* A good synthetic model runs: plan, load, a prompt of ids, logits finite. */
static void runs(const gpt2_synth *g, el_dtype dt) {
    const char *dir = make(g);
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(dir, NULL, &m));
    if (!m) return;
    EL_CHECK(!strcmp(el_model_family(m), "gpt2"));
    el_plan_params pp = {0, 1, dt, 64 * 1024, EL_MEMORY_HOST, EL_DT_F32};
    el_plan plan;
    EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    el_arena *a = el_test_arena(&plan, EL_MEMORY_HOST);
    el_status ls = a ? el_model_load(m, &plan, a, NULL, NULL) : EL_E_NOMEM;
    EL_CHECK_OK(ls);
    el_session *s = NULL;
    if (ls == EL_OK) EL_CHECK_OK(el_session_init(m, a, &plan, NULL, &s));
    if (s) {
        int32_t ids[70];
        for (int i = 0; i < 70; i++) ids[i] = (i * 7 + 3) % (int32_t)g->vocab;
        const float *lg = NULL;
        EL_CHECK_OK(el_session_forward(s, ids, 10, &lg));
        bool finite = lg != NULL;
        for (uint32_t i = 0; lg && i < g->vocab; i++) finite = finite && lg[i] == lg[i];
        EL_CHECK(finite);
        /* Past n_positions: refused with EL_E_TOOLONG (exit 6), nothing run. */
        el_session_reset(s);
        EL_CHECK_STATUS(el_session_forward(s, ids, g->n_pos + 1 <= 70 ? g->n_pos + 1 : 70, &lg),
                        g->n_pos + 1 <= 70 ? EL_E_TOOLONG : EL_OK);
        EL_CHECK(strstr(el_last_error(), "context") != NULL);
        EL_CHECK(el_session_pos(s) == 0);
        /* An id outside the vocabulary: EL_E_INVALID naming it. */
        int32_t bad = (int32_t)g->vocab;
        EL_CHECK_STATUS(el_session_forward(s, &bad, 1, &lg), EL_E_INVALID);
        EL_CHECK(strstr(el_last_error(), "vocabulary") != NULL);
        /* No tokenizer next to the model: a clear status, not a crash. */
        int32_t out[8];
        size_t n = 0;
        el_status ts = el_tokenize(m, "hi", 2, false, out, 8, &n);
        EL_CHECK(ts != EL_OK && strstr(el_last_error(), "tokenizer") != NULL);
        el_session_deinit(s);
    }
    el_arena_deinit(a);
    el_model_close(m);
}

int main(void) {
    gpt2_synth g;

    fprintf(stderr, "-- good models run (bare and transformer.-prefixed names, f32 and f16)\n");
    gpt2_synth_default(&g);
    g.n_pos = 40;
    runs(&g, EL_DT_NONE);
    g.prefix = true;
    runs(&g, EL_DT_F16);
    g.dtype = EL_DT_BF16;
    runs(&g, EL_DT_NONE);

    fprintf(stderr, "-- missing tensors\n");
    gpt2_synth_default(&g);
    g.omit = "h.1.mlp.c_fc.bias";
    expect_plan_error(&g, NULL, EL_E_INVALID, "missing tensor h.1.mlp.c_fc.bias", NULL);
    g.prefix = true;
    g.omit = "ln_f.weight";
    expect_plan_error(&g, NULL, EL_E_INVALID, "missing tensor transformer.ln_f.weight", NULL);
    g.omit = "wpe.weight";
    expect_plan_error(&g, NULL, EL_E_INVALID, "missing tensor transformer.wpe.weight", NULL);

    fprintf(stderr, "-- wrong shapes\n");
    gpt2_synth_default(&g);
    g.reshape = "h.0.attn.c_attn.weight";
    expect_plan_error(&g, NULL, EL_E_INVALID, "h.0.attn.c_attn.weight has shape [32, 97], the "
                      "config implies [32, 96]", NULL);
    g.reshape = "h.1.ln_2.bias";
    expect_plan_error(&g, NULL, EL_E_INVALID, "h.1.ln_2.bias has shape [33]", NULL);
    g.reshape = "h.0.mlp.c_proj.weight";
    expect_plan_error(&g, NULL, EL_E_INVALID, "[128, 33], the config implies [128, 32]", NULL);

    fprintf(stderr, "-- config vs weights\n");
    gpt2_synth_default(&g);
    g.cfg_vocab = 50257; /* wte has 300 rows */
    expect_plan_error(&g, NULL, EL_E_INVALID, "wte.weight has shape [300, 32], the config "
                      "implies [50257, 32]", NULL);
    g.cfg_vocab = 0;
    g.cfg_layers = 1; /* the file has 2 */
    expect_plan_error(&g, NULL, EL_E_INVALID, "h.1.ln_1.weight exists but config n_layer is 1",
                      NULL);
    g.cfg_layers = 3;
    expect_plan_error(&g, NULL, EL_E_INVALID, "missing tensor h.2.ln_1.weight", NULL);
    g.cfg_layers = 0;
    g.cfg_heads = 5;
    expect_plan_error(&g, NULL, EL_E_INVALID, "n_embd 32 is not a multiple of n_head 5", NULL);
    g.cfg_heads = 0;
    g.activation = "relu";
    expect_plan_error(&g, NULL, EL_E_UNSUPPORTED, "activation_function 'relu'", NULL);
    g.activation = NULL;
    g.cfg_n_pos = 80; /* wpe has 64 rows */
    expect_plan_error(&g, NULL, EL_E_INVALID, "wpe.weight has shape [64, 32], the config "
                      "implies [80, 32]", NULL);

    fprintf(stderr, "-- --ctx past n_positions\n");
    gpt2_synth_default(&g);
    el_plan_params pp = {65, 1, EL_DT_NONE, 0, EL_MEMORY_HOST, EL_DT_F32};
    expect_plan_error(&g, &pp, EL_E_USAGE, "at most 64 tokens (n_positions)", "--ctx 65");
    pp.ctx = 64;
    const char *dir = make(&g);
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(dir, NULL, &m));
    el_plan plan;
    if (m) EL_CHECK_OK(el_plan_make(m, &pp, &plan));
    el_model_close(m);

    el_test_tmpdir_cleanup();
    return el_test_finish("test_gpt2_bad");
}
