/* test_loader_hostile.c - a hostile safetensors header within the 100 MB cap cannot make
 * the JSON parser balloon: "[0,0,0,...]" with more values than EL_JSON_VALUES_MAX is
 * refused by the pre-scan (exit 2) before cJSON builds a tree, and peak RSS stays small. */
#include "tests/support/el_test.h"

#include "loader/safetensors.h"

#include <stdlib.h>
#include <string.h>

int main(void) {
    /* {"a":[0,0,...]} with EL_JSON_VALUES_MAX + 10 zeros: ~8 MB of JSON. */
    size_t n = EL_JSON_VALUES_MAX + 10, len = 0;
    char *json = malloc(2 * n + 16);
    EL_CHECK(json != NULL);
    if (!json) return el_test_finish("test_loader_hostile");
    len += (size_t)sprintf(json, "{\"a\":[");
    for (size_t i = 0; i < n; i++) {
        json[len++] = '0';
        json[len++] = i + 1 < n ? ',' : ']';
    }
    json[len++] = '}';
    json[len] = 0;

    uint64_t before = el_test_vmhwm();
    el_tensor_table t = {0};
    EL_CHECK_STATUS(el_st_parse_header(json, len, 8 + len, 0, 0, "hostile", &t), EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "JSON values") != NULL);
    EL_CHECK(t.count == 0);
    uint64_t after = el_test_vmhwm();
    printf("VmHWM before %.1f MiB, after %.1f MiB\n", before / 1048576.0, after / 1048576.0);
    EL_CHECK(after < before + 32u * 1024 * 1024);

    /* The same through the CLI: exit 2 naming the file. */
    const char *file = el_test_path("hostile.safetensors");
    EL_CHECK(el_test_write_safetensors_raw(file, json, NULL, 0));
    char args[1024], *err = NULL;
    snprintf(args, sizeof args, "inspect '%s'", file);
    EL_CHECK(el_test_run_cli(args, NULL, &err) == 2);
    EL_CHECK(err && strstr(err, "hostile.safetensors") && strstr(err, "JSON values"));
    free(err);

    /* Just under the limit still parses as JSON (then fails as a safetensors header for
     * its own reason: "a" is not a tensor object). */
    json[2 * (EL_JSON_VALUES_MAX - 10) + 5] = ']';
    json[2 * (EL_JSON_VALUES_MAX - 10) + 6] = '}';
    size_t short_len = 2 * (EL_JSON_VALUES_MAX - 10) + 7;
    EL_CHECK_STATUS(el_st_parse_header(json, short_len, 8 + short_len, 0, 0, "big", &t),
                    EL_E_INVALID);
    EL_CHECK(strstr(el_last_error(), "JSON values") == NULL);
    free(json);
    return el_test_finish("test_loader_hostile");
}
