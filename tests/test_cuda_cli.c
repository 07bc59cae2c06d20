/* test_cuda_cli.c - device selection through `edgeload generate`: --device cuda prints the
 * same greedy text as --device cpu for stories260K (with --cuda-memory managed and
 * device, f32 and f16) and says which device it picked; `auto` picks the GPU. Under the
 * cudasim emulator also the failure paths, which a real GPU cannot be made to show: no
 * device, no driver (exit 5 for cuda, a CPU fallback saying why for auto), and an arena
 * larger than the GPU's memory (exit 5 naming requested and free bytes; auto falls back),
 * a refused launch and a faulted kernel (exit 5 with the reason; serve answers the request
 * with an error line and stops with exit 5).
 * serve --device cuda answers a request with the CPU's tokens.
 * Needs a CUDA build and a GPU or the emulator; skips saying which is missing. */
// ctest-labels: cuda;cli
// ctest-timeout: 300
#include "tests/llama_fixture.h"
#include "tests/support/el_test_cuda.h"
#include "tests/support/el_test_proc.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define GEN "generate '" STORIES_BIN "' -p 'Once upon a time' -n 32 --temp 0 --no-progress"

/* Runs args; returns the exit code, stdout and stderr into *out / *err (malloc'd). */
static int cli(const char *args, char **out, char **err) {
    *out = *err = NULL;
    return el_test_run_cli(args, out, err);
}

static bool has(const char *s, const char *needle) { return s && strstr(s, needle); }

static void same_text(const char *extra, const char *want, const char *why_has) {
    char args[1200], *out, *err;
    snprintf(args, sizeof args, GEN " %s", extra);
    int rc = cli(args, &out, &err);
    bool ok = rc == 0 && out && want && !strcmp(out, want) && has(err, why_has);
    if (!ok)
        fprintf(stderr, "[%s] rc %d\n  got  %s  want %s  stderr %s\n", extra, rc, out, want, err);
    EL_CHECK(ok);
    free(out);
    free(err);
}

int main(void) {
    el_test_cuda_require("test_cuda_cli", "CLI's CUDA runs", NULL);
    fixture_require_stories();
    char *cpu = NULL, *err = NULL;
    EL_CHECK(cli(GEN " --device cpu", &cpu, &err) == 0);
    EL_CHECK(cpu && strlen(cpu) > 20);
    free(err);
    same_text("--device cuda --cuda-memory managed", cpu, "edgeload: device: cuda (GPU 0:");
    same_text("--device cuda --cuda-memory device", cpu, "device memory (--cuda-memory device)");
    same_text("--device auto", cpu, "edgeload: device: cuda (auto: GPU 0:");
    /* f16 weights on both sides: the same text again. */
    char *cpu16 = NULL;
    EL_CHECK(cli(GEN " --device cpu --dtype f16", &cpu16, &err) == 0);
    free(err);
    same_text("--device cuda --dtype f16 --cuda-memory device", cpu16, "cuda");
    free(cpu16);
    /* serve on the GPU answers with the CPU's tokens (the token lines: the last carries
     * timings). */
    static char tok[2][16384];
    for (int d = 0; d < 2; d++) {
        const char *args[] = {"serve", STORIES_BIN, "--device", d ? "cuda" : "cpu", NULL};
        el_test_proc p;
        size_t len = 0;
        EL_CHECK(el_test_proc_start(&p, args, NULL));
        const char line[] = "{\"id\":1,\"prompt\":\"Once upon a time\",\"max_tokens\":32}\n";
        EL_CHECK(el_test_proc_write(&p, line, sizeof line - 1));
        el_test_proc_close_stdin(&p);
        char l[1024];
        long n;
        while ((n = el_test_proc_readline(&p, l, sizeof l, 120000)) >= 0 && !strstr(l, "\"done\""))
            len += (size_t)snprintf(tok[d] + len, sizeof tok[d] - len, "%s\n", l);
        EL_CHECK(n >= 0 && len > 0 && len < sizeof tok[d]);
        EL_CHECK(el_test_proc_wait(&p, 60000) == 0);
    }
    EL_CHECK(strstr(tok[0], "token_id") && !strcmp(tok[0], tok[1]));
    char *out = NULL;
    EL_CHECK(cli(GEN " --device cuda --cuda-memory sideways", &out, &err) == 1);
    EL_CHECK(has(err, "--cuda-memory"));
    free(out), free(err);
#ifdef EL_CUDA_SIM
    /* No device: cuda exits 5 saying so; auto runs on the CPU and says why. */
    setenv("ELSIM_DEVICES", "0", 1);
    EL_CHECK(cli(GEN " --device cuda", &out, &err) == 5);
    EL_CHECK(has(err, "no CUDA device"));
    free(out), free(err);
    same_text("--device auto", cpu, "cpu (auto: no CUDA device found)");
    unsetenv("ELSIM_DEVICES");
    setenv("ELSIM_NO_DRIVER", "1", 1);
    EL_CHECK(cli(GEN " --device cuda", &out, &err) == 5);
    EL_CHECK(has(err, "driver"));
    free(out), free(err);
    same_text("--device auto", cpu, "cpu (auto:");
    unsetenv("ELSIM_NO_DRIVER");
    /* A GPU this build has no kernels for (an sm_80 card, a binary with SASS for 87 and 90
     * only): cuda exits 5 naming it, auto runs on the CPU and says why, and the first
     * launch is never reached. */
    setenv("ELSIM_CC", "8.0", 1);
    setenv("ELSIM_KERNEL_ARCHS", "87,90", 1);
    EL_CHECK(cli(GEN " --device cuda", &out, &err) == 5);
    EL_CHECK(has(err, "no kernel image") && has(err, "sm_80"));
    fprintf(stderr, "no kernel image: %s", err ? err : "");
    free(out), free(err);
    same_text("--device auto", cpu, "cpu (auto: GPU 0 (sm_80): this build has no kernel image");
    EL_CHECK(cli("devices --json", &out, &err) == 0);
    EL_CHECK(has(out, "\"kernels_usable\":false") && has(out, "no kernel image"));
    free(out), free(err);
    unsetenv("ELSIM_CC");
    unsetenv("ELSIM_KERNEL_ARCHS");
    /* A GPU with 1 MiB: the arena does not fit there. */
    setenv("ELSIM_MEM_MB", "1", 1);
    EL_CHECK(cli(GEN " --device cuda --cuda-memory device", &out, &err) == 5);
    EL_CHECK(has(err, "reserving") && has(err, "free"));
    fprintf(stderr, "too small GPU: %s", err ? err : "");
    free(out), free(err);
    same_text("--device auto --cuda-memory device", cpu, "cpu (auto: GPU 0: reserving");
    unsetenv("ELSIM_MEM_MB");
    /* A refused launch and a faulted kernel: exit 5 with the runtime's reason, no hang. (The
     * 10th launch is in the prompt's pass; one refused inside a decode step's CUDA graph
     * capture only turns graphs off: test_cuda_launches.) */
    setenv("ELSIM_FAIL_LAUNCH", "10", 1);
    EL_CHECK(cli(GEN " --device cuda", &out, &err) == 5);
    EL_CHECK(has(err, "too many resources requested for launch"));
    free(out), free(err);
    unsetenv("ELSIM_FAIL_LAUNCH");
    setenv("ELSIM_FAULT_KERNEL", "100", 1);
    EL_CHECK(cli(GEN " --device cuda", &out, &err) == 5);
    EL_CHECK(has(err, "the GPU failed while running a kernel") &&
             has(err, "illegal memory access"));
    free(out), free(err);
    /* serve answers the failed request with an error line, then stops with exit 5. */
    {
        const char *args[] = {"serve", STORIES_BIN, "--device", "cuda", NULL};
        el_test_proc p;
        EL_CHECK(el_test_proc_start(&p, args, NULL));
        const char two[] = "{\"id\":1,\"prompt\":\"Once\",\"max_tokens\":32}\n"
                           "{\"id\":2,\"prompt\":\"Once\",\"max_tokens\":32}\n";
        EL_CHECK(el_test_proc_write(&p, two, sizeof two - 1));
        el_test_proc_close_stdin(&p);
        char l[1024];
        bool error_line = false, second = false;
        while (el_test_proc_readline(&p, l, sizeof l, 120000) >= 0) {
            if (strstr(l, "\"error\"") && strstr(l, "the GPU failed")) error_line = true;
            if (strstr(l, "\"id\":2")) second = true;
        }
        EL_CHECK(error_line && !second);
        EL_CHECK(el_test_proc_wait(&p, 60000) == 5);
    }
    unsetenv("ELSIM_FAULT_KERNEL");
#endif
    free(cpu);
    return el_test_finish("test_cuda_cli");
}
