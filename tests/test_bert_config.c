/* test_bert_config.c - config fields that change what a BERT classifier computes: a
 * relative position_embedding_type is refused (running it with absolute embeddings would be
 * a silent wrong answer), an unknown problem_type is refused, and probabilities follow
 * transformers' text-classification pipeline: softmax for single-label heads, an independent
 * sigmoid per label for multi_label_classification, the raw logit for regression. */
// ctest-labels: bert;model;cli
// ctest-timeout: 60
#include "tests/support/el_test.h"

#include <cjson/cJSON.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIX EL_SOURCE_DIR "/tests/fixtures/hf_bert_cls"

/* A copy of the fixture with one config field set (value: JSON text). */
static void make_variant(const char *dir, const char *key, const char *value) {
    char path[900];
    EL_CHECK(mkdir(dir, 0755) == 0);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    EL_CHECK(symlink(FIX "/model.safetensors", path) == 0);
    char *text = el_test_read_file(FIX "/config.json", NULL);
    cJSON *c = text ? cJSON_Parse(text) : NULL;
    free(text);
    EL_CHECK(c != NULL);
    if (!c) return;
    cJSON_DeleteItemFromObject(c, key);
    cJSON_AddItemToObject(c, key, cJSON_Parse(value));
    char *out = cJSON_Print(c);
    snprintf(path, sizeof path, "%s/config.json", dir);
    EL_CHECK(el_test_write_file(path, out, strlen(out)));
    free(out);
    cJSON_Delete(c);
}

/* classify --json on one id sequence: logits and probabilities of the first result. */
static int classify(const char *dir, double logit[3], double prob[3], char **err) {
    char args[1200], *out = NULL;
    snprintf(args, sizeof args, "classify '%s' --json --ids '1 2 3 4'", dir);
    int rc = el_test_run_cli(args, &out, err);
    cJSON *j = rc == 0 && out ? cJSON_Parse(out) : NULL;
    const cJSON *r0 = j ? cJSON_GetArrayItem(cJSON_GetObjectItem(j, "results"), 0) : NULL;
    const cJSON *labels = r0 ? cJSON_GetObjectItem(r0, "labels") : NULL;
    for (int i = 0; i < 3; i++) {
        const cJSON *l = labels ? cJSON_GetArrayItem(labels, i) : NULL;
        logit[i] = l ? cJSON_GetObjectItem(l, "logit")->valuedouble : NAN;
        prob[i] = l ? cJSON_GetObjectItem(l, "probability")->valuedouble : NAN;
    }
    cJSON_Delete(j);
    free(out);
    return rc;
}

int main(void) {
    const char *tmp = el_test_tmpdir();
    char dir[800], *err = NULL;
    double lg[3], pr[3];

    /* The fixture as recorded: softmax. */
    EL_CHECK(classify(FIX, lg, pr, NULL) == 0);
    double sum = 0;
    for (int i = 0; i < 3; i++) sum += exp(lg[i]);
    for (int i = 0; i < 3; i++) EL_CHECK(fabs(pr[i] - exp(lg[i]) / sum) < 1e-6);
    double want[3] = {lg[0], lg[1], lg[2]};

    snprintf(dir, sizeof dir, "%s/multi", tmp);
    make_variant(dir, "problem_type", "\"multi_label_classification\"");
    EL_CHECK(classify(dir, lg, pr, NULL) == 0);
    for (int i = 0; i < 3; i++) {
        EL_CHECK(fabs(lg[i] - want[i]) < 1e-6);
        EL_CHECK(fabs(pr[i] - 1.0 / (1.0 + exp(-lg[i]))) < 1e-6);
    }

    snprintf(dir, sizeof dir, "%s/regression", tmp);
    make_variant(dir, "problem_type", "\"regression\"");
    EL_CHECK(classify(dir, lg, pr, NULL) == 0);
    for (int i = 0; i < 3; i++) EL_CHECK(fabs(pr[i] - lg[i]) < 1e-6 && fabs(lg[i] - want[i]) < 1e-6);

    snprintf(dir, sizeof dir, "%s/absolute", tmp);
    make_variant(dir, "position_embedding_type", "\"absolute\"");
    EL_CHECK(classify(dir, lg, pr, NULL) == 0);

    snprintf(dir, sizeof dir, "%s/relative", tmp);
    make_variant(dir, "position_embedding_type", "\"relative_key\"");
    int rc = classify(dir, lg, pr, &err);
    EL_CHECK(rc != 0 && err && strstr(err, "position_embedding_type 'relative_key'"));
    if (rc == 0) fprintf(stderr, "relative_key ran: %s\n", err ? err : "");
    free(err);
    err = NULL;

    snprintf(dir, sizeof dir, "%s/badproblem", tmp);
    make_variant(dir, "problem_type", "\"ordinal\"");
    rc = classify(dir, lg, pr, &err);
    EL_CHECK(rc != 0 && err && strstr(err, "problem_type 'ordinal'"));
    free(err);
    err = NULL;

    snprintf(dir, sizeof dir, "%s/badtype", tmp);
    make_variant(dir, "problem_type", "7");
    rc = classify(dir, lg, pr, &err);
    EL_CHECK(rc == 2 && err && strstr(err, "problem_type: expected a string"));
    free(err);

    el_test_tmpdir_cleanup();
    return el_test_finish("test_bert_config");
}
