/* test_llama_cli.c - `edgeload generate` and `edgeload tokenize` on the bundled model: the
 * streamed text, the report on stderr, --json against the reference fixture, and the exit
 * codes for bad input (prompt too long, -n past the context, a tokenizer of the wrong size,
 * a truncated checkpoint, invalid UTF-8, an unavailable device). */
// ctest-labels: llama;cli
// ctest-timeout: 120
#include "tests/llama_fixture.h"

#include <string.h>

static int cli(const char *args, char **out, char **err) {
    int rc = el_test_run_cli(args, out, err);
    if (rc < 0) fprintf(stderr, "could not run the CLI: %s\n", args);
    return rc;
}

static void test_generate(void) {
    char *out = NULL, *err = NULL;
    int rc = cli("generate " STORIES_BIN " -p 'Once upon a time' -n 20 --temp 0 --arena 16M",
                 &out, &err);
    EL_CHECK(rc == 0);
    EL_CHECK(out && !strncmp(out, "Once upon a time, there was a little girl named Lily", 52));
    EL_CHECK(err && strstr(err, "tok/s") && strstr(err, "time to first token") &&
             strstr(err, "VmHWM"));
    if (rc != 0 && err) fprintf(stderr, "stderr: %s\n", err);
    free(out);
    free(err);

    /* --json: one object whose ids equal the reference's first 20. */
    cJSON *fx = fixture_load(STORIES_FIXTURE);
    int32_t *want;
    size_t nw = fixture_ids(cJSON_GetObjectItem(fx, "generated_ids"), &want);
    rc = cli("generate " STORIES_BIN " -p 'Once upon a time' -n 20 --temp 0 --json --threads 2",
             &out, &err);
    EL_CHECK(rc == 0);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    EL_CHECK(j != NULL);
    if (j) {
        int32_t *ids = NULL;
        size_t n = fixture_ids(cJSON_GetObjectItem(j, "ids"), &ids);
        EL_CHECK(n == 20 && nw >= 20 && !memcmp(ids, want, 20 * sizeof *ids));
        free(ids);
        int32_t *pids = NULL;
        n = fixture_ids(cJSON_GetObjectItem(j, "prompt_ids"), &pids);
        EL_CHECK(n == 5 && pids[0] == 1);
        free(pids);
        const cJSON *text = cJSON_GetObjectItem(j, "text");
        EL_CHECK(cJSON_IsString(text) && !strncmp(text->valuestring, ", there was", 11));
        const cJSON *stats = cJSON_GetObjectItem(j, "stats");
        EL_CHECK(cJSON_GetObjectItem(stats, "generated_tokens")->valuedouble == 20);
        EL_CHECK(cJSON_GetObjectItem(stats, "gen_tok_per_s")->valuedouble > 0);
        const cJSON *mem = cJSON_GetObjectItem(j, "memory");
        EL_CHECK(cJSON_GetObjectItem(mem, "vm_hwm") != NULL);
        cJSON_Delete(j);
    }
    free(want);
    cJSON_Delete(fx);
    free(out);
    free(err);

    /* Sampling with a seed is reproducible. */
    char *a = NULL, *b = NULL;
    cli("generate " STORIES_BIN " -p Lily -n 30 --temp 1 --top-p 0.9 --seed 11", &a, NULL);
    cli("generate " STORIES_BIN " -p Lily -n 30 --temp 1 --top-p 0.9 --seed 11", &b, NULL);
    EL_CHECK(a && b && !strcmp(a, b) && !strncmp(a, "Lily", 4));
    free(a);
    free(b);
}

static void test_tokenize(void) {
    char *out = NULL;
    EL_CHECK(cli("tokenize " STORIES_BIN " 'Once upon a time'", &out, NULL) == 0);
    EL_CHECK(out && !strcmp(out, "1 403 407 261 378\n"));
    free(out);
    EL_CHECK(cli("tokenize " STORIES_BIN " --no-bos ''", &out, NULL) == 0);
    EL_CHECK(out && !strcmp(out, "\n"));
    free(out);
    EL_CHECK(cli("tokenize " STORIES_BIN " \"$(printf 'a\\377')\"", NULL, NULL) == 2);
    EL_CHECK(cli("tokenize", NULL, NULL) == 1);
}

static void test_exit_codes(void) {
    char *out = NULL, *err = NULL;
    /* Prompt longer than the context: 6 (3 means the arena does not fit), nothing on stdout. */
    int rc = cli("generate " STORIES_BIN " --ctx 8 -n 1 -p 'Once upon a time there was a big "
                 "dog and a cat'", &out, &err);
    EL_CHECK(rc == 6);
    EL_CHECK(out && out[0] == 0);
    EL_CHECK(err && strstr(err, "context of 8"));
    free(out);
    free(err);
    /* -n past the context: 6, with the --ctx that would do. */
    rc = cli("generate " STORIES_BIN " --ctx 16 -n 20 -p 'Once upon a time'", NULL, &err);
    EL_CHECK(rc == 6 && err && strstr(err, "--ctx 25"));
    free(err);
    /* A tokenizer of the wrong size (one token short, and cut mid-record): 2. */
    size_t len = 0;
    char *tok = el_test_read_file(STORIES_TOK, &len);
    if (tok) {
        /* The last record of tok512.bin: score, length 3, 3 bytes = 11 bytes. */
        const char *short_tok = el_test_path("tok511.bin");
        EL_CHECK(el_test_write_file(short_tok, tok, len - 11));
        char args[1024];
        snprintf(args, sizeof args, "generate " STORIES_BIN " --tokenizer %s -n 2", short_tok);
        rc = cli(args, NULL, &err);
        EL_CHECK(rc == 2 && err && strstr(err, "511") && strstr(err, "512"));
        free(err);
        const char *cut_tok = el_test_path("tok_cut.bin");
        EL_CHECK(el_test_write_file(cut_tok, tok, len - 5));
        snprintf(args, sizeof args, "generate " STORIES_BIN " --tokenizer %s -n 2", cut_tok);
        EL_CHECK(cli(args, NULL, NULL) == 2);
        free(tok);
    }
    /* A truncated checkpoint: 2, naming both sizes. */
    size_t blen = 0;
    char *bin = el_test_read_file(STORIES_BIN, &blen);
    if (bin) {
        const char *cut = el_test_path("stories_cut.bin");
        EL_CHECK(el_test_write_file(cut, bin, blen - 4096));
        char args[1024];
        snprintf(args, sizeof args, "generate %s -n 2", cut);
        rc = cli(args, NULL, &err);
        EL_CHECK(rc == 2 && err && strstr(err, "header implies 1056540"));
        free(err);
        free(bin);
    }
    /* Invalid UTF-8 in the prompt: 2. An unavailable device: 5. Bad options: 1. */
    EL_CHECK(cli("generate " STORIES_BIN " -n 2 -p \"$(printf 'x\\300\\200')\"", NULL, NULL) == 2);
    EL_CHECK(cli("generate " STORIES_BIN " -n 2 --device cuda", NULL, &err) ==
             (el_device_available(EL_DEVICE_CUDA) ? 0 : 5));
    EL_CHECK(err && strstr(err, "cuda"));
    free(err);
    EL_CHECK(cli("generate " STORIES_BIN " -n 2 --device tpu", NULL, NULL) == 1);
    EL_CHECK(cli("generate " STORIES_BIN " --temp -1", NULL, NULL) == 1);
    EL_CHECK(cli("generate " STORIES_BIN " -n 2.5", NULL, NULL) == 1);
    /* An arena too small for the plan: 3. */
    EL_CHECK(cli("generate " STORIES_BIN " -n 2 --arena 1M", NULL, NULL) == 3);
}

int main(void) {
    fixture_require_stories();
    test_generate();
    test_tokenize();
    test_exit_codes();
    el_test_tmpdir_cleanup();
    return el_test_finish("test_llama_cli");
}
