/* generate.c - the smallest program embedding edgeload through its public API only:
 * open a model, plan it, reserve one arena of exactly the plan's size, stream the weights
 * in, and generate text greedily, printing each token as it comes.
 *   usage: edgeload_example MODEL [PROMPT] [N_TOKENS]
 * Build against an installed edgeload: examples/CMakeLists.txt (find_package) or
 *   cc generate.c $(pkg-config --cflags --libs edgeload)
 * Exit status: 0, or the CLI's code for the failing status (el_status_exit_code). */
#include <edgeload.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Streams each piece to stdout; counts the tokens (user: unsigned *). */
static bool on_token(void *user, int32_t id, const char *piece, size_t len) {
    (void)id;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    ++*(unsigned *)user;
    return true;
}

static int fail(const char *what, el_status st) {
    fprintf(stderr, "edgeload_example: %s: %s: %s\n", what, el_status_str(st), el_last_error());
    return el_status_exit_code(st);
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 4) {
        fprintf(stderr, "usage: %s MODEL [PROMPT] [N_TOKENS]  (edgeload %s)\n", argv[0],
                EL_VERSION_STRING);
        return 1;
    }
    const char *prompt = argc > 2 ? argv[2] : "Once upon a time";
    uint32_t n_new = argc > 3 ? (uint32_t)strtoul(argv[3], NULL, 10) : 32;

    el_model *model = NULL;
    el_arena *arena = NULL;
    el_session *session = NULL;
    el_plan plan;
    el_arena_params ap;
    el_status st;
    int rc = 0;
    unsigned tokens = 0;
    el_gen_stats gs;
    /* kv_dtype: EL_DT_NONE = the default f16 KV cache (left out, 0, it would be f32). */
    el_plan_params pp = {.ctx = 0, .batch = 1, .dtype = EL_DT_NONE, .kv_dtype = EL_DT_NONE};

    if ((st = el_model_open(argv[1], NULL, &model)) != EL_OK) return fail("open", st);
    if ((st = el_plan_make(model, &pp, &plan)) != EL_OK) { rc = fail("plan", st); goto out; }
    el_plan_arena_params(&plan, plan.total_bytes, 0, &ap);
    if ((st = el_arena_init(&arena, &ap)) != EL_OK) { rc = fail("arena", st); goto out; }
    if ((st = el_model_load(model, &plan, arena, NULL, NULL)) != EL_OK) {
        rc = fail("load", st);
        goto out;
    }
    if ((st = el_session_init(model, arena, &plan, NULL, &session)) != EL_OK) {
        rc = fail("session", st);
        goto out;
    }
    fputs(prompt, stdout);
    if ((st = el_generate(session, prompt, n_new, NULL, on_token, &tokens, &gs)) != EL_OK) {
        rc = fail("generate", st);
        goto out;
    }
    char sz[32];
    fprintf(stderr, "\nedgeload_example: %s model, %u tokens, arena %s, %.1f tok/s\n",
            el_model_family(model), tokens, el_size_format(plan.total_bytes, sz, sizeof sz),
            gs.gen_tok_per_s);
out:
    el_session_deinit(session);
    el_arena_deinit(arena);
    el_model_close(model);
    return rc;
}
