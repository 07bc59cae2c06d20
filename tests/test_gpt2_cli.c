/* test_gpt2_cli.c - `edgeload generate` end to end on the real GPT-2 vocabulary: the
 * hf_gpt2_vocab50257 fixture with the real tokenizer files from ../shared/models (linked in as
 * vocab.json + merges.txt, and as encoder.json + vocab.bpe) prints exactly transformers' text
 * for "The future of AI is" with 16 greedy tokens, and its ids; a prompt longer than
 * n_positions exits 3; the same text from .elimg images packed from it. Skips without
 * ../shared/models. */
// ctest-labels: gpt2;model;cli
// ctest-timeout: 300
#include "tests/support/el_test.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX EL_SOURCE_DIR "/tests/fixtures/hf_gpt2_vocab50257"

/* Appended to every generate after the first: under the CUDA emulator --device auto takes
 * the emulated GPU, ~20 s a run with this vocabulary; the first run keeps that path, the
 * rest (tokenizer, packing, errors: device-independent) run on the CPU. */
static const char *g_dev = "";

static bool link_into(const char *dir, const char *target, const char *name) {
    char path[900];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return symlink(target, path) == 0;
}

static void check_folder(const char *dir, const char *text, const cJSON *want_ids) {
    char args[1200], *out = NULL, *err = NULL;
    snprintf(args, sizeof args, "generate '%s' -p 'The future of AI is' -n 16 --temp 0%s", dir,
             g_dev);
    int rc = el_test_run_cli(args, &out, &err);
    EL_CHECK(rc == 0);
    size_t tl = strlen(text);
    bool same = out && strlen(out) == tl + 1 && !strncmp(out, text, tl) && out[tl] == '\n';
    if (!same) fprintf(stderr, "  got  %s\n  want %s\n  (%s)\n", out, text, err);
    EL_CHECK(same);
    free(out);
    free(err);
    out = NULL;
    snprintf(args, sizeof args, "generate '%s' -p 'The future of AI is' -n 16 --temp 0 --json%s",
             dir, g_dev);
    EL_CHECK(el_test_run_cli(args, &out, NULL) == 0);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    const cJSON *ids = j ? cJSON_GetObjectItem(j, "ids") : NULL;
    bool ids_same = ids && cJSON_GetArraySize(ids) == cJSON_GetArraySize(want_ids);
    for (int i = 0; ids_same && i < cJSON_GetArraySize(ids); i++)
        ids_same = cJSON_GetArrayItem(ids, i)->valueint == cJSON_GetArrayItem(want_ids, i)->valueint;
    EL_CHECK(ids_same);
    cJSON_Delete(j);
    free(out);
}

int main(void) {
    const char *shared = el_test_shared_models();
    char vocab[700], merges[700];
    if (shared) {
        snprintf(vocab, sizeof vocab, "%s/gpt2-tokenizer/encoder.json", shared);
        snprintf(merges, sizeof merges, "%s/gpt2-tokenizer/vocab.bpe", shared);
    }
    struct stat st;
    if (!shared || stat(vocab, &st) || stat(merges, &st))
        el_test_skip("the real GPT-2 tokenizer is not in ../shared/models/gpt2-tokenizer");
    char *ref_text = el_test_read_file(FIX "/reference.json", NULL);
    cJSON *ref = ref_text ? cJSON_Parse(ref_text) : NULL;
    free(ref_text);
    EL_CHECK(ref != NULL);
    if (!ref) return el_test_finish("test_gpt2_cli");
    const char *text = cJSON_GetObjectItem(ref, "text")->valuestring;
    const cJSON *want_ids = cJSON_GetObjectItem(ref, "greedy_ids");

    char a[700], b[700];
    snprintf(a, sizeof a, "%s/hf_names", el_test_tmpdir());
    snprintf(b, sizeof b, "%s/openai_names", el_test_tmpdir());
    mkdir(a, 0755);
    mkdir(b, 0755);
    for (int k = 0; k < 2; k++) {
        const char *d = k ? b : a;
        EL_CHECK(link_into(d, FIX "/model.safetensors", "model.safetensors"));
        EL_CHECK(link_into(d, FIX "/config.json", "config.json"));
        EL_CHECK(link_into(d, vocab, k ? "encoder.json" : "vocab.json"));
        EL_CHECK(link_into(d, merges, k ? "vocab.bpe" : "merges.txt"));
        check_folder(d, text, want_ids);
#ifdef EL_CUDA_SIM
        g_dev = " --device cpu";
#endif
    }

    /* Packed into an .elimg image (every codec; --dtype f32 widens the f16 weights): the
     * Conv1D weights travel already transposed, the tokenizer files inside the image, and
     * the text is still transformers' text. */
    const char *packs[] = {"--codec none", "--codec lz4", "--codec shuffle-lz4 --dtype f32"};
    for (int k = 0; k < 3; k++) {
        char img[800], pargs[1800];
        snprintf(img, sizeof img, "%s/gpt2_%d.elimg", el_test_tmpdir(), k);
        snprintf(pargs, sizeof pargs, "pack '%s' -o '%s' %s --chunk 64K", a, img, packs[k]);
        EL_CHECK(el_test_run_cli(pargs, NULL, NULL) == 0);
        check_folder(img, text, want_ids);
        snprintf(pargs, sizeof pargs, "verify '%s'", img);
        EL_CHECK(el_test_run_cli(pargs, NULL, NULL) == 0);
    }

    /* Longer than n_positions (32 here): exit 3 with the reason. */
    char args[4000], *err = NULL;
    int n = snprintf(args, sizeof args, "generate '%s'%s --temp 0 -n 1 -p '", a, g_dev);
    for (int i = 0; i < 40; i++) n += snprintf(args + n, sizeof args - (size_t)n, " hello");
    snprintf(args + n, sizeof args - (size_t)n, "'");
    int rc = el_test_run_cli(args, NULL, &err);
    EL_CHECK(rc == 6); /* request longer than the context (3 is "arena does not fit") */
    EL_CHECK(err && strstr(err, "longer than the context"));
    if (rc != 3) fprintf(stderr, "  long prompt: rc %d: %s\n", rc, err);
    free(err);

    /* An empty prompt, and no prompt at all, start from <|endoftext|> as transformers'
     * generate() does without input ids (empty_prompt.json, scripts/fixtures_gpt2_empty.py). */
    char *ep = el_test_read_file(FIX "/empty_prompt.json", NULL);
    cJSON *ej = ep ? cJSON_Parse(ep) : NULL;
    free(ep);
    const cJSON *eids = ej ? cJSON_GetObjectItem(ej, "greedy_ids") : NULL;
    EL_CHECK(cJSON_GetArraySize(eids) == 8);
    for (int k = 0; k < 2 && eids; k++) {
        snprintf(args, sizeof args, "generate '%s' %s-n 8 --temp 0 --json%s", a, k ? "-p '' " : "",
                 g_dev);
        char *out = NULL;
        EL_CHECK(el_test_run_cli(args, &out, NULL) == 0);
        cJSON *j = out ? cJSON_Parse(out) : NULL;
        const cJSON *ids = j ? cJSON_GetObjectItem(j, "ids") : NULL;
        bool same = cJSON_GetArraySize(ids) == 8;
        for (int i = 0; same && i < 8; i++)
            same = cJSON_GetArrayItem(ids, i)->valueint == cJSON_GetArrayItem(eids, i)->valueint;
        if (!same) fprintf(stderr, "  empty prompt: %s\n", out);
        EL_CHECK(same);
        cJSON_Delete(j);
        free(out);
    }
    cJSON_Delete(ej);

    /* vocab.json without merges.txt: generate says which file is missing (exit 2). */
    char c[700];
    snprintf(c, sizeof c, "%s/no_merges", el_test_tmpdir());
    mkdir(c, 0755);
    link_into(c, FIX "/model.safetensors", "model.safetensors");
    link_into(c, FIX "/config.json", "config.json");
    link_into(c, vocab, "vocab.json");
    snprintf(args, sizeof args, "generate '%s' -p hi -n 1 --temp 0%s", c, g_dev);
    err = NULL;
    rc = el_test_run_cli(args, NULL, &err);
    EL_CHECK(rc == 2 && err && strstr(err, "merges.txt is missing"));
    free(err);

    cJSON_Delete(ref);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_gpt2_cli");
}
