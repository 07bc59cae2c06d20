/* cli_rss.h - what tests bounding a CLI run's peak RSS share (test code only): whether the
 * bound is checked (not under sanitizers, whose runtimes hold their own memory), the slack
 * allowed outside the arena, and running the CLI for its --json output. */
#ifndef EL_TEST_CLI_RSS_H
#define EL_TEST_CLI_RSS_H

#include "tests/support/el_test.h"

#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define RSS_CHECK 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define RSS_CHECK 0
#endif
#endif
#ifndef RSS_CHECK
#define RSS_CHECK 1
#endif

#define MIB (1024.0 * 1024.0)
#define SLACK (4ull << 20) /* what may sit outside the arena: binary, libc, stacks */

/* Runs the CLI; its --json output parsed (NULL on failure, with the output printed). */
static inline cJSON *cli_json(const char *args) {
    char *out = NULL, *err = NULL;
    int rc = el_test_run_cli(args, &out, &err);
    cJSON *j = rc == 0 && out ? cJSON_Parse(out) : NULL;
    if (!j) fprintf(stderr, "edgeload %s: exit %d\nstdout: %s\nstderr: %s\n", args, rc,
                    out ? out : "", err ? err : "");
    free(out);
    free(err);
    return j;
}

/* The number at a dotted path ("memory.vm_hwm"), -1 if absent. */
static inline double num(const cJSON *o, const char *path) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s", path);
    const cJSON *it = o;
    for (char *tok = strtok(buf, "."); tok && it; tok = strtok(NULL, "."))
        it = cJSON_GetObjectItemCaseSensitive(it, tok);
    return cJSON_IsNumber(it) ? it->valuedouble : -1;
}

#endif /* EL_TEST_CLI_RSS_H */
