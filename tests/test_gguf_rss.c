/* test_gguf_rss.c - the memory promise on the real SmolLM2-135M Q4_1 GGUF through the CLI
 * (issues 17, 21): `edgeload generate` resident (arena = the plan) and streamed with O_DIRECT
 * (--stream on --slots 3 --pin-layers auto --arena 64M --direct: the arena every page of
 * which is used) peak (VmHWM) within the arena + 4 MiB, the real tokenizer included, and
 * give the same greedy ids. The 4 MiB is the process itself (code pages of the binary and
 * libc, stacks, the small heap), in CUDA builds too: the CUDA runtime is in a module
 * opened only when a GPU is asked for (docs/MEMORY.md, "The CUDA runtime in a CPU run").
 * Builds under the CUDA emulator (test-only) link it and the C++ runtime into the CLI: 1 MiB
 * more there, printed.
 * Skips, loudly, when the model is absent (scripts/fetch_gguf.sh; CI fetches it). Not
 * checked under sanitizers or an emulator (their runtimes' memory). */
// ctest-labels: model;real
// ctest-timeout: 120
#include "tests/cli_rss.h"
#include "tests/support/el_test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifdef EL_CUDA_SIM
#define SIM_RT (1ull << 20) /* the emulator linked into the CLI (not a GPU arena) */
#else
#define SIM_RT 0ull
#endif

#define ARGS "-p 'The capital of France is' -n 4 --temp 0 --ctx 512 --threads 2 --device cpu --json"

int main(void) {
    const char *env = getenv("EL_GGUF_DIR");
    const char *dir = env && *env ? env : EL_SOURCE_DIR "/.cache/gguf";
    char model[1200];
    snprintf(model, sizeof model, "%s/SmolLM2-135M-Instruct.Q4_1.gguf", dir);
    struct stat st;
    if (stat(model, &st)) {
        fprintf(stderr, "!! %s is absent: run scripts/fetch_gguf.sh (CI does)\n", model);
        el_test_skip("no SmolLM2-135M-Instruct.Q4_1.gguf in %s", dir);
    }
    static const struct {
        const char *name, *opts;
    } runs[] = {
        {"resident", ""},
        {"streamed, O_DIRECT", "--stream on --slots 3 --pin-layers auto --arena 64M --direct"},
    };
    const bool emulated = getenv("EL_EMULATOR") && *getenv("EL_EMULATOR");
    char *ids[2] = {NULL, NULL};
    for (int k = 0; k < 2; k++) {
        char args[1600];
        snprintf(args, sizeof args, "generate '%s' %s %s", model, runs[k].opts, ARGS);
        cJSON *j = cli_json(args);
        EL_CHECK(j != NULL);
        if (!j) continue;
        const double hwm = num(j, "memory.vm_hwm"), reserved = num(j, "memory.arena.reserved");
        const double used = num(j, "memory.arena.peak");
        const double bound = reserved + (double)(SLACK + SIM_RT);
        printf("%s: arena %.2f MiB (peak use %.2f MiB), VmHWM %.2f MiB = arena + %.2f MiB "
               "(bound arena + 4 MiB%s = %.2f MiB)%s\n", runs[k].name, reserved / MIB,
               used / MIB, hwm / MIB, (hwm - reserved) / MIB,
               SIM_RT ? " + 1 MiB for the CUDA emulator linked in" : "", bound / MIB,
               RSS_CHECK && !emulated ? "" : " (not checked: sanitizer or emulator)");
        EL_CHECK(hwm > 0 && reserved > 0);
        EL_CHECK(!RSS_CHECK || emulated || hwm <= bound);
        if (k == 1) EL_CHECK(reserved == 64.0 * MIB && used > 60.0 * MIB); /* the arena is used */
        ids[k] = cJSON_PrintUnformatted(cJSON_GetObjectItemCaseSensitive(j, "ids"));
        cJSON_Delete(j);
    }
    EL_CHECK(ids[0] && ids[1] && !strcmp(ids[0], ids[1]));
    if (ids[0]) printf("ids %s\n", ids[0]);
    free(ids[0]);
    free(ids[1]);
    return el_test_finish("test_gguf_rss");
}
