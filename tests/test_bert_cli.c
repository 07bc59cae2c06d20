/* test_bert_cli.c - `edgeload embed` and `edgeload classify` end to end (build/edgeload through
 * /bin/sh): vectors and labels in text and JSON form, batching of stdin lines, label names
 * from id2label and the LABEL_i fallback with its notice, the documented exit codes (usage,
 * invalid input, no head, does not fit, bad ids, --no-truncate) and an empty input. With the
 * real all-MiniLM-L6-v2 present (scripts/fetch_minilm.sh) the CLI's normalised vectors are
 * also checked against transformers' recordings. */
// ctest-labels: bert;cli
// ctest-timeout: 120
#include "tests/llama_fixture.h"

#include <math.h>
#include <string.h>
#include <sys/stat.h>

#define FIX EL_SOURCE_DIR "/tests/fixtures"

static int cli(const char *args, char **out, char **err) {
    free(*out);
    free(*err);
    *out = *err = NULL;
    int rc = el_test_run_cli(args, out, err);
    if (!*out) *out = calloc(1, 1);
    if (!*err) *err = calloc(1, 1);
    return rc;
}

static size_t count_lines(const char *s) {
    size_t n = 0;
    for (; *s; s++) n += *s == '\n';
    return n;
}

/* Parses whitespace-separated floats of one line; returns the count. */
static size_t parse_line(const char *s, float *v, size_t cap) {
    size_t n = 0;
    char *end;
    while (n < cap) {
        float x = strtof(s, &end);
        if (end == s) break;
        v[n++] = x;
        s = end;
        if (*s == '\n') break;
    }
    return n;
}

static void minilm(char **out, char **err) {
    const char *dir = EL_SOURCE_DIR "/.cache/all-MiniLM-L6-v2";
    struct stat st;
    char p[600];
    snprintf(p, sizeof p, "%s/model.safetensors", dir);
    if (stat(p, &st) != 0) {
        fprintf(stderr, "   (all-MiniLM-L6-v2 not fetched: the real-model CLI check is left out; "
                "run scripts/fetch_minilm.sh)\n");
        return;
    }
    cJSON *j = fixture_load(FIX "/minilm_embeddings.json");
    const cJSON *c0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "cases"), 1);
    int32_t *ids = NULL;
    float *want = NULL;
    size_t n = fixture_ids(cJSON_GetObjectItem(c0, "ids"), &ids);
    size_t d = fixture_floats(cJSON_GetObjectItem(c0, "embedding"), &want);
    char args[2048];
    size_t len = (size_t)snprintf(args, sizeof args, "embed %s --normalize --ids \"", dir);
    for (size_t i = 0; i < n; i++) len += (size_t)snprintf(args + len, sizeof args - len, "%s%d", i ? " " : "", ids[i]);
    snprintf(args + len, sizeof args - len, "\"");
    int rc = cli(args, out, err);
    EL_CHECK(rc == 0);
    static float got[512];
    size_t k = parse_line(*out, got, 512);
    EL_CHECK(k == 384 && d == 384);
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < 384 && k == 384; i++) {
        ab += (double)got[i] * want[i];
        aa += (double)got[i] * got[i];
        bb += (double)want[i] * want[i];
    }
    double cs = ab / sqrt(aa * bb);
    fprintf(stderr, "   all-MiniLM-L6-v2 via the CLI (--ids): cosine %.8f with transformers\n", cs);
    EL_CHECK(cs > 0.9999);

    /* `tokenize` gives transformers' ids, post-processor included ([CLS] ... [SEP]). */
    snprintf(args, sizeof args, "tokenize %s --json \"%s\"", dir,
             cJSON_GetObjectItem(c0, "text")->valuestring);
    EL_CHECK(cli(args, out, err) == 0);
    cJSON *tj = cJSON_Parse(*out);
    const cJSON *tids = tj ? cJSON_GetObjectItem(tj, "ids") : NULL;
    bool tsame = cJSON_GetArraySize(tids) == (int)n;
    for (size_t i = 0; tsame && i < n; i++)
        tsame = cJSON_GetArrayItem(tids, (int)i)->valueint == ids[i];
    if (!tsame) fprintf(stderr, "   tokenize: %s\n", *out);
    EL_CHECK(tsame && n > 2 && ids[n - 1] == 102);
    cJSON_Delete(tj);

    /* The same sentence as text, through the model's tokenizer. */
    snprintf(args, sizeof args, "embed %s --normalize \"%s\"", dir,
             cJSON_GetObjectItem(c0, "text")->valuestring);
    EL_CHECK(cli(args, out, err) == 0);
    static float got2[512];
    EL_CHECK(parse_line(*out, got2, 512) == 384 && !memcmp(got, got2, sizeof got));
    /* Empty text: [CLS] [SEP], one vector. */
    snprintf(args, sizeof args, "embed %s --json \"\"", dir);
    EL_CHECK(cli(args, out, err) == 0);
    cJSON *r = cJSON_Parse(*out);
    const cJSON *e0 = r ? cJSON_GetArrayItem(cJSON_GetObjectItem(r, "embeddings"), 0) : NULL;
    EL_CHECK(e0 && cJSON_GetObjectItem(e0, "tokens")->valuedouble == 2 &&
             cJSON_GetArraySize(cJSON_GetObjectItem(e0, "embedding")) == 384);
    cJSON_Delete(r);
    /* Longer than --ctx: cut with a notice, or exit 6 (longer than the context) with
     * --no-truncate. */
    snprintf(args, sizeof args, "embed %s --ctx 16 --json \"one two three four five six seven "
             "eight nine ten eleven twelve thirteen fourteen fifteen sixteen\"", dir);
    EL_CHECK(cli(args, out, err) == 0);
    EL_CHECK(strstr(*err, "notice") && strstr(*err, "longer than 16 tokens"));
    r = cJSON_Parse(*out);
    e0 = r ? cJSON_GetArrayItem(cJSON_GetObjectItem(r, "embeddings"), 0) : NULL;
    EL_CHECK(e0 && cJSON_GetObjectItem(e0, "tokens")->valuedouble == 16 &&
             cJSON_IsTrue(cJSON_GetObjectItem(e0, "truncated")));
    cJSON_Delete(r);
    snprintf(args, sizeof args, "embed %s --ctx 16 --no-truncate \"one two three four five six "
             "seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen\"", dir);
    EL_CHECK(cli(args, out, err) == 6 && strstr(*err, "--no-truncate"));
    /* Invalid UTF-8 on stdin: exit 2 naming the byte. */
    snprintf(args, sizeof args, "--version >/dev/null; { printf 'ok\\ncaf\\351\\n' | "
             "${EL_CLI:-%s/edgeload} embed %s; }", EL_BINARY_DIR, dir);
    EL_CHECK(cli(args, out, err) == 2);
    EL_CHECK(strstr(*err, "text 1") && strstr(*err, "UTF-8"));
    /* No classification head. */
    snprintf(args, sizeof args, "classify %s hello", dir);
    EL_CHECK(cli(args, out, err) == 2);
    free(ids);
    free(want);
    cJSON_Delete(j);
}

int main(void) {
    char *out = NULL, *err = NULL;
    int rc;

    /* embed: one line of dim floats per text, in order. */
    rc = cli("embed " FIX "/hf_bert_base --ids \"1 2 3\" \"4 5\" \"6\"", &out, &err);
    EL_CHECK(rc == 0);
    EL_CHECK(count_lines(out) == 3);
    float v[64];
    EL_CHECK(parse_line(out, v, 64) == 24);
    EL_CHECK(strstr(err, "3 texts") != NULL);

    /* --normalize: unit vectors; --pooling cls differs from mean. */
    rc = cli("embed " FIX "/hf_bert_base --normalize --ids \"1 2 3\"", &out, &err);
    EL_CHECK(rc == 0 && parse_line(out, v, 64) == 24);
    double ss = 0;
    for (int i = 0; i < 24; i++) ss += (double)v[i] * v[i];
    EL_CHECK(fabs(ss - 1) < 1e-5);
    char *mean = strdup(out);
    rc = cli("embed " FIX "/hf_bert_base --normalize --pooling cls --ids \"1 2 3\"", &out, &err);
    EL_CHECK(rc == 0 && strcmp(out, mean) != 0);
    free(mean);

    /* stdin: 5 lines in batches of 2 = 5 vectors; JSON form. */
    const char *in = el_test_path("lines.txt");
    static const char lines[] = "1 2\n3 4 5\n6\r\n7 8\n9"; /* CRLF and no final newline */
    EL_CHECK(el_test_write_file(in, lines, strlen(lines)));
    char args[1024];
    /* el_test_run_cli gives the command /dev/null as stdin: run a group that reads the file. */
    snprintf(args, sizeof args, "--version >/dev/null; { ${EL_CLI:-%s/edgeload} embed %s/hf_bert_base "
             "--ids --batch 2 --json < '%s'; }", EL_BINARY_DIR, FIX, in);
    rc = cli(args, &out, &err);
    EL_CHECK(rc == 0);
    cJSON *j = cJSON_Parse(out);
    EL_CHECK(j != NULL);
    if (j) {
        EL_CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(j, "embeddings")) == 5);
        EL_CHECK(cJSON_GetObjectItem(j, "texts")->valuedouble == 5);
        EL_CHECK(cJSON_GetObjectItem(j, "batch")->valuedouble == 2);
        EL_CHECK(cJSON_GetArraySize(cJSON_GetObjectItem(cJSON_GetArrayItem(
                     cJSON_GetObjectItem(j, "embeddings"), 4), "embedding")) == 24);
        cJSON_Delete(j);
    }

    /* Empty input: nothing printed, exit 0; JSON: an empty list. */
    rc = cli("embed " FIX "/hf_bert_base --ids < /dev/null", &out, &err);
    EL_CHECK(rc == 0 && out[0] == 0);
    rc = cli("embed " FIX "/hf_bert_base --ids --json < /dev/null", &out, &err);
    j = cJSON_Parse(out);
    EL_CHECK(rc == 0 && j && cJSON_GetArraySize(cJSON_GetObjectItem(j, "embeddings")) == 0);
    cJSON_Delete(j);

    /* classify: the label with the highest probability, named from id2label. */
    rc = cli("classify " FIX "/hf_bert_cls --json --ids \"1 2 3 4\" \"5 6 7\"", &out, &err);
    EL_CHECK(rc == 0);
    j = cJSON_Parse(out);
    EL_CHECK(j != NULL);
    if (j) {
        const cJSON *r0 = cJSON_GetArrayItem(cJSON_GetObjectItem(j, "results"), 0);
        const cJSON *labels = cJSON_GetObjectItem(r0, "labels");
        EL_CHECK(cJSON_GetArraySize(labels) == 3);
        double sum = 0, best = -1;
        const char *best_name = "";
        const cJSON *l;
        cJSON_ArrayForEach(l, labels) {
            double pr = cJSON_GetObjectItem(l, "probability")->valuedouble;
            sum += pr;
            if (pr > best) {
                best = pr;
                best_name = cJSON_GetObjectItem(l, "label")->valuestring;
            }
        }
        EL_CHECK(fabs(sum - 1) < 1e-5);
        EL_CHECK(!strcmp(cJSON_GetObjectItem(r0, "label")->valuestring, best_name));
        EL_CHECK(!strcmp(cJSON_GetObjectItem(cJSON_GetArrayItem(labels, 2), "label")->valuestring,
                         "POSITIVE"));
        EL_CHECK(cJSON_IsTrue(cJSON_GetObjectItem(j, "labels_named")));
        cJSON_Delete(j);
    }
    rc = cli("classify " FIX "/hf_bert_cls --ids \"1 2 3 4\"", &out, &err);
    EL_CHECK(rc == 0 && count_lines(out) == 1 &&
             (!strncmp(out, "NEGATIVE\t", 9) || !strncmp(out, "NEUTRAL\t", 8) ||
              !strncmp(out, "POSITIVE\t", 9)));
    /* No id2label: LABEL_i with a notice. */
    rc = cli("classify " FIX "/hf_bert_nolabel --ids \"1 2 3 4\"", &out, &err);
    EL_CHECK(rc == 0 && !strncmp(out, "LABEL_", 6));
    EL_CHECK(strstr(err, "notice") && strstr(err, "id2label"));

    /* Exit codes. */
    EL_CHECK(cli("classify " FIX "/hf_bert_base --ids \"1 2\"", &out, &err) == 2); /* no head */
    EL_CHECK(strstr(err, "classification head") != NULL);
    EL_CHECK(cli("embed " FIX "/hf_bert_base --ids \"1 2 99\"", &out, &err) == 2); /* vocab */
    EL_CHECK(strstr(err, "outside the vocabulary") != NULL);
    EL_CHECK(cli("embed " FIX "/hf_bert_base --ids \"1 x\"", &out, &err) == 2);
    EL_CHECK(cli("embed " FIX "/hf_bert_base --ids --ctx 2 \"1 2 3\"", &out, &err) == 6); /* longer than --ctx */
    EL_CHECK(cli("embed " FIX "/hf_bert_base --ids --ctx 33 \"1\"", &out, &err) == 1); /* > 32 positions */
    EL_CHECK(cli("embed " FIX "/hf_bert_base --pooling max --ids \"1\"", &out, &err) == 1);
    EL_CHECK(cli("embed " FIX "/hf_bert_base --bogus", &out, &err) == 1);
    EL_CHECK(cli("embed", &out, &err) == 1);
    EL_CHECK(cli("embed " FIX "/hf_bert_base --arena 64K --ids \"1\"", &out, &err) == 3);
    EL_CHECK(strstr(err, "needs") && strstr(err, "Would fit"));
    EL_CHECK(cli("embed " FIX "/no_such_model --ids \"1\"", &out, &err) == 4);
    EL_CHECK(cli("embed --help", &out, &err) == 0 && strstr(out, "Exit codes") &&
             strstr(out, "--no-truncate") && strstr(out, "--pooling"));
    EL_CHECK(cli("classify --help", &out, &err) == 0 && strstr(out, "LABEL_0") &&
             strstr(out, "Exit codes"));
    /* Text for a model without tokenizer files: exit 2, pointing at --ids / --tokenizer. */
    EL_CHECK(cli("embed " FIX "/hf_bert_base hello", &out, &err) == 2);
    EL_CHECK(strstr(err, "--tokenizer") && strstr(err, "--ids"));
    /* classify refuses embed-only options */
    EL_CHECK(cli("classify " FIX "/hf_bert_cls --normalize --ids \"1\"", &out, &err) == 1);

    minilm(&out, &err);
    free(out);
    free(err);
    return el_test_finish("test_bert_cli");
}
