/* llama_fixture.h - reading the fixtures of tests/fixtures (test code only): paths of the
 * bundled model, the JSON scripts/ref_llama2c.py and the Hugging Face fixture scripts
 * (scripts/fixtures_*.py: reference.json) write, small cJSON accessors for id and float
 * arrays, and their raw float files. */
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

/* dir/reference.json parsed (the Hugging Face fixtures' recordings); aborts as fixture_load. */
static inline cJSON *fixture_reference(const char *dir) {
    char path[700];
    snprintf(path, sizeof path, "%s/reference.json", dir);
    return fixture_load(path);
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

/* Copies up to cap integers of a JSON array (NULL: none) into out; returns how many. */
static inline size_t fixture_ids_to(const cJSON *arr, int32_t *out, size_t cap) {
    size_t n = 0;
    for (const cJSON *e = arr ? arr->child : NULL; e && n < cap; e = e->next)
        out[n++] = (int32_t)e->valuedouble;
    return n;
}

/* dir/name: count little-endian f32 (malloc'd; the hosts we build for are little-endian, like
 * the file), or NULL with a failed check when the file is missing or of another size. */
static inline float *fixture_read_floats(const char *dir, const char *name, size_t count) {
    char path[700];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    size_t n = 0;
    char *bytes = el_test_read_file(path, &n);
    EL_CHECK(bytes != NULL && n == count * sizeof(float));
    if (!bytes || n != count * sizeof(float)) {
        fprintf(stderr, "  %s: %zu bytes, want %zu\n", path, n, count * sizeof(float));
        free(bytes);
        return NULL;
    }
    return (float *)bytes;
}

#endif /* EL_TEST_LLAMA_FIXTURE_H */
