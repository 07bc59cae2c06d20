/* test_tokenizer_arena.c - tokenizers live in the plan's tokenizer region (issue 18):
 *   - the real GPT-2 tokenizer (../shared/models/gpt2-tokenizer, encoder.json + vocab.bpe)
 *     on the hf_gpt2_vocab50257 fixture: `plan` shows a tokenizer region, and a `generate`
 *     run peaks (VmHWM) within the plan's total + 4 MiB, with the prompt ids the heap-built
 *     tokenizer gives;
 *   - a generated Llama-3-sized byte-level BPE tokenizer.json (128,000 tokens + 2 added,
 *     280,000 merges, both merge spellings; written here, deterministic) on a synthetic
 *     GPT-2 model of 128,256 rows: `generate` within the arena + 4 MiB, its prompt ids equal
 *     to the heap-built tokenizer's (el_tokenizer_open), the tokenizer region used.
 * Skips the first part without ../shared/models. */
// ctest-labels: tokenizer;model;cli
// ctest-timeout: 60
#include "tests/gpt2_synth.h"
#include "tests/cli_rss.h"
#include "tests/support/el_test.h"
#include "tests/tok_gen.h"
#include "tokenizer/tokenizer.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <string.h>

/* generate's prompt_ids equal want[0..n). */
static bool same_ids(const cJSON *j, const int32_t *want, size_t n) {
    const cJSON *ids = cJSON_GetObjectItemCaseSensitive(j, "prompt_ids");
    if (!cJSON_IsArray(ids) || (size_t)cJSON_GetArraySize(ids) != n) return false;
    size_t i = 0;
    for (const cJSON *it = ids->child; it; it = it->next, i++)
        if ((int32_t)it->valuedouble != want[i]) return false;
    return true;
}

/* One generate run: VmHWM within the arena it reserved + SLACK, the tokenizer region used,
 * the prompt's ids as want. */
static void check_generate(const char *what, const char *model, const char *tok,
                           const char *prompt, const int32_t *want, size_t nw,
                           double plan_total) {
    char args[2400];
    /* the CPU: an emulated GPU's memory (cudasim builds) is host memory and counts in RSS */
    snprintf(args, sizeof args,
             "generate '%s' --tokenizer '%s' -p '%s' -n 4 --temp 0 --device cpu --json",
             model, tok, prompt);
    cJSON *j = cli_json(args);
    EL_CHECK(j != NULL);
    if (!j) return;
    double hwm = num(j, "memory.vm_hwm"), reserved = num(j, "memory.arena.reserved");
    double tok_used = num(j, "memory.arena.regions.tokenizer.used");
    printf("%s: arena %.2f MiB (plan %.2f MiB, tokenizer region %.2f MiB used), VmHWM %.2f MiB "
           "(bound %.2f MiB), time to first token %.3f s\n", what, reserved / MIB,
           plan_total / MIB, tok_used / MIB, hwm / MIB, (reserved + SLACK) / MIB,
           num(j, "stats.time_to_first_token_s"));
    EL_CHECK(hwm > 0 && (!RSS_CHECK || hwm <= reserved + (double)SLACK));
    EL_CHECK(plan_total < 0 || reserved == plan_total);
    EL_CHECK(tok_used > 0);
    EL_CHECK(same_ids(j, want, nw));
    cJSON_Delete(j);
}

/* Heap-built reference ids for text (el_tokenizer_open, vocab check off). */
static size_t heap_ids(const char *tok, const char *text, int32_t *ids, size_t cap) {
    el_tokenizer *t = NULL;
    EL_CHECK_OK(el_tokenizer_open(tok, 0, &t));
    size_t n = 0;
    if (t) EL_CHECK_OK(el_tokenizer_encode(t, text, strlen(text), false, ids, cap, &n));
    el_tokenizer_close(t);
    return n;
}

static void test_gpt2_real(void) {
    const char *shared = el_test_shared_models();
    char tok[900];
    snprintf(tok, sizeof tok, "%s/gpt2-tokenizer/encoder.json", shared ? shared : "");
    FILE *f = shared ? fopen(tok, "rb") : NULL;
    if (!f) {
        printf("the real GPT-2 tokenizer is not in ../shared/models: its part is skipped\n");
        return;
    }
    fclose(f);
    const char *model = EL_SOURCE_DIR "/tests/fixtures/hf_gpt2_vocab50257";
    char args[2000];
    snprintf(args, sizeof args, "plan '%s' --tokenizer '%s' --json", model, tok);
    cJSON *p = cli_json(args);
    EL_CHECK(p != NULL);
    double total = p ? num(p, "total") : -1, region = p ? num(p, "regions.tokenizer") : -1;
    EL_CHECK(region > 1024 * 1024); /* 50,257 tokens and 50,000 merges: MiBs, in the plan */
    cJSON_Delete(p);
    static const char prompt[] = "The quick brown fox jumps over the lazy dog. Hello, world!";
    int32_t want[64];
    size_t n = heap_ids(tok, prompt, want, 64);
    EL_CHECK(n > 10);
    check_generate("GPT-2 (real tokenizer)", model, tok, prompt, want, n, total);
}

static void test_generated_128k(void) {
    char tok[700];
    snprintf(tok, sizeof tok, "%s", el_test_path("tok128k.json"));
    char prompt[1200];
    size_t pl = 0;
    EL_CHECK(tok_gen_write(tok, prompt, sizeof prompt));
    pl = strlen(prompt);

    static int32_t want[1200];
    size_t n = heap_ids(tok, prompt, want, 1200);
    EL_CHECK(n > 20 && n < pl / 2); /* merges fired */
    gpt2_synth s;
    gpt2_synth_default(&s);
    s.dim = 16;
    s.heads = 2;
    s.layers = 1;
    s.inner = 32;
    s.vocab = 128256; /* Llama 3's rows: more than the tokenizer's 128,002 tokens */
    s.n_pos = 1024;
    char dir[256];
    snprintf(dir, sizeof dir, "%.200s", el_test_path("gpt2_128k"));
    EL_CHECK(gpt2_synth_write(dir, &s));
    char args[2000];
    snprintf(args, sizeof args, "plan '%s' --tokenizer '%s' --json", dir, tok);
    cJSON *p = cli_json(args);
    double total = p ? num(p, "total") : -1, region = p ? num(p, "regions.tokenizer") : -1;
    printf("128k tokenizer: tokenizer region %.2f MiB of a %.2f MiB plan\n", region / MIB,
           total / MIB);
    EL_CHECK(region > 8 * 1024 * 1024);
    cJSON_Delete(p);
    check_generate("generated 128k tokenizer", dir, tok, prompt, want, n, total);
}

int main(void) {
    test_gpt2_real();
    test_generated_128k();
    return el_test_finish("test_tokenizer_arena");
}
