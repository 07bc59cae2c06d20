/* llama_fixture.h - reading the JSON fixtures scripts/ref_llama2c.py writes (test code only):
 * paths of the bundled model and small cJSON accessors for id and float arrays. */
#ifndef EL_TEST_LLAMA_FIXTURE_H
#define EL_TEST_LLAMA_FIXTURE_H

#include "tests/support/el_test.h"

#include <cjson/cJSON.h>
#include <stdlib.h>
#include <sys/stat.h>

#define STORIES_DIR EL_SOURCE_DIR "/assets/stories260K"
#define STORIES_BIN STORIES_DIR "/stories260K.bin"
#define STORIES_TOK STORIES_DIR "/tok512.bin"
#define STORIES_FIXTURE EL_SOURCE_DIR "/tests/fixtures/stories260K_greedy.json"

static inline void fixture_require_stories(void) {
    struct stat st;
    if (stat(STORIES_BIN, &st) != 0 || stat(STORIES_TOK, &st) != 0)
        el_test_skip("the bundled model is missing (%s); restore assets/stories260K from the "
                     "repository", STORIES_DIR);
}

/* Parses a whole JSON file; aborts the test (it is part of the repository) if it cannot. */
static inline cJSON *fixture_load(const char *path) {
    char *text = el_test_read_file(path, NULL);
    if (!text) {
        fprintf(stderr, "cannot read fixture %s (run scripts/ref_llama2c.py)\n", path);
        exit(1);
    }
    cJSON *j = cJSON_Parse(text);
    free(text);
    if (!j) {
        fprintf(stderr, "fixture %s is not valid JSON\n", path);
        exit(1);
    }
    return j;
}

/* Copies a JSON array of integers into ids (malloc'd); returns the count. */
static inline size_t fixture_ids(const cJSON *arr, int32_t **ids) {
    size_t n = (size_t)cJSON_GetArraySize(arr);
    *ids = malloc((n ? n : 1) * sizeof **ids);
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) (*ids)[i++] = (int32_t)e->valuedouble;
    return n;
}

static inline size_t fixture_floats(const cJSON *arr, float **out) {
    size_t n = (size_t)cJSON_GetArraySize(arr);
    *out = malloc((n ? n : 1) * sizeof **out);
    size_t i = 0;
    const cJSON *e;
    cJSON_ArrayForEach(e, arr) (*out)[i++] = (float)e->valuedouble;
    return n;
}

#endif /* EL_TEST_LLAMA_FIXTURE_H */
