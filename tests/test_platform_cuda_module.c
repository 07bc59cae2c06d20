/* test_platform_cuda_module.c - finding the CUDA module (platform/gpu.c) through the CLI.
 * Left to search, `edgeload devices` finds build/libedgeload_cuda.so (it then answers from
 * the runtime: GPUs, or no driver). With EL_CUDA_MODULE naming a missing file, a file that
 * is no shared object, or a shared object without the module's entry (libedgeload.so): `devices` exits 0
 * saying which and why, --device cuda exits 5 (EL_E_NODEV) with it, --device auto runs
 * stories260K on the CPU with --device cpu's text and says why. Only builds with the module
 * (EL_CUDA=ON); CPU-only builds check that `devices` says there is no CUDA backend, the
 * emulator's builds (module linked in) skip. */
// ctest-labels: cli
// ctest-timeout: 120
#include "tests/llama_fixture.h"
#include "tests/support/el_test_proc.h"

#include <stdlib.h>
#include <string.h>

#define GEN "generate '" STORIES_BIN "' -p 'Once upon a time' -n 16 --temp 0 --no-progress"

/* Runs args; the exit code, stdout into *out and stdout + stderr into *all (malloc'd). */
static int cli(const char *args, char **out, char **all) {
    char *err = NULL;
    *out = NULL;
    int rc = el_test_run_cli(args, out, &err);
    size_t no = *out ? strlen(*out) : 0, ne = err ? strlen(err) : 0;
    *all = malloc(no + ne + 1);
    if (*all) snprintf(*all, no + ne + 1, "%s%s", *out ? *out : "", err ? err : "");
    free(err);
    return rc;
}

static bool has(const char *s, const char *needle) {
    bool ok = s && strstr(s, needle);
    if (!ok) fprintf(stderr, "  expected '%s' in:\n%s\n", needle, s ? s : "(null)");
    return ok;
}

/* EL_CUDA_MODULE = path: every GPU question says why (what), the CPU runs (its text: cpu). */
static void bad_module(const char *path, const char *what, const char *cpu) {
    char *out, *all;
    setenv("EL_CUDA_MODULE", path, 1);
    printf("EL_CUDA_MODULE=%s (%s)\n", path, what);
    EL_CHECK(cli("devices", &out, &all) == 0);
    EL_CHECK(has(all, "EL_CUDA_MODULE=") && has(all, path) && has(all, what));
    free(out), free(all);
    EL_CHECK(cli(GEN " --device cuda", &out, &all) == el_status_exit_code(EL_E_NODEV));
    EL_CHECK(has(all, "--device cuda") && has(all, what));
    free(out), free(all);
    EL_CHECK(cli(GEN " --device auto", &out, &all) == 0);
    EL_CHECK(out && cpu && !strcmp(out, cpu));
    EL_CHECK(has(all, "cpu (auto: EL_CUDA_MODULE=") && has(all, what));
    free(out), free(all);
    unsetenv("EL_CUDA_MODULE");
}

int main(void) {
    char *out = NULL, *all = NULL;
#if !defined(EL_HAVE_CUDA)
    (void)bad_module;
    setenv("EL_CUDA_MODULE", "/nonexistent/libedgeload_cuda.so", 1);
    EL_CHECK(cli("devices", &out, &all) == 0);
    EL_CHECK(has(all, "no CUDA backend"));
    free(out), free(all);
    return el_test_finish("test_platform_cuda_module");
#elif defined(EL_CUDA_SIM)
    (void)out, (void)all, (void)cli, (void)bad_module;
    el_test_skip("the emulator's CUDA module is linked into the library (no dlopen)");
#else
    fixture_require_stories();
    unsetenv("EL_CUDA_MODULE");
    EL_CHECK(cli("devices", &out, &all) == 0);
    printf("devices (module searched for):\n%s", all ? all : "");
    EL_CHECK(all && !strstr(all, "was not found") && !strstr(all, "EL_CUDA_MODULE"));
    free(out), free(all);
    char *cpu = NULL;
    EL_CHECK(cli(GEN " --device cpu", &cpu, &all) == 0);
    EL_CHECK(cpu && strlen(cpu) > 20);
    free(all);
    bad_module("/nonexistent/libedgeload_cuda.so", "absent", cpu);
    const char *bogus = el_test_path("libbogus_cuda.so");
    char junk[256];
    memset(junk, 'x', sizeof junk);
    EL_CHECK(el_test_write_file(bogus, junk, sizeof junk));
    bad_module(bogus, "invalid ELF header", cpu);
    bad_module(EL_BINARY_DIR "/libedgeload.so", "not an edgeload CUDA module", cpu);
    free(cpu);
    el_test_tmpdir_cleanup();
    return el_test_finish("test_platform_cuda_module");
#endif
}
