/* test_loader_plan.c - the memory plan: region sizes, refusal before any weight byte is
 * read (asserted through the platform's read counters), the "what would fit" advice, and
 * the CLI's plan/load/inspect exit codes and outputs. */
#include "tests/support/el_test.h"

#include "platform/platform.h"

#include <stdlib.h>
#include <string.h>

int main(void) {
    static const el_test_tensor t[] = {
        {"w1", EL_DT_F32, 2, {256, 1000}}, /* 1,024,000 bytes */
        {"b1", EL_DT_F32, 1, {3}},         /* 12 bytes: next tensor aligned up to 64 */
        {"w2", EL_DT_F16, 2, {100, 100}},  /* 20,000 bytes */
    };
    const char *file = el_test_path("model.safetensors");
    EL_CHECK(el_test_write_safetensors(file, t, 3, 1));
    size_t flen = 0;
    char *whole = el_test_read_file(file, &flen);
    uint64_t header_bytes = 0;
    if (whole) {
        memcpy(&header_bytes, whole, 8);
        header_bytes += 8;
        free(whole);
    }

    el_io_stats_reset();
    el_model *m = NULL;
    EL_CHECK_OK(el_model_open(file, NULL, &m));
    if (!m) return el_test_finish("test_loader_plan");
    EL_CHECK(!strcmp(el_model_family(m), "generic"));

    el_plan p;
    EL_CHECK_OK(el_plan_make(m, NULL, &p));
    uint64_t w = 1024000;           /* w1 at 0 */
    w = (w + 63) / 64 * 64 + 12;    /* b1 */
    w = (w + 63) / 64 * 64 + 20000; /* w2 */
    EL_CHECK(p.region_bytes[EL_REGION_WEIGHTS] == (w + 4095) / 4096 * 4096);
    /* Staging: two slots of the effective chunk (the largest tensor, 1,024,000 bytes, is
     * under the 4 MiB default) plus a page each. */
    EL_CHECK(p.params.chunk_bytes == 1024000);
    EL_CHECK(p.region_bytes[EL_REGION_STAGING] == 2 * (1024000 + 4096));
    EL_CHECK(p.region_bytes[EL_REGION_KV] == 0 && p.region_bytes[EL_REGION_SCRATCH] == 0);
    EL_CHECK(p.read_bytes == 1024000 + 12 + 20000);
    EL_CHECK(p.total_bytes == p.region_bytes[0] + p.region_bytes[1] + p.region_bytes[2] +
                                  p.region_bytes[3]);

    /* f16: the f32 tensors halve. */
    el_plan_params half = {0, 0, EL_DT_F16, 0, EL_MEMORY_HOST, EL_DT_F32};
    el_plan p16;
    EL_CHECK_OK(el_plan_make(m, &half, &p16));
    EL_CHECK(p16.region_bytes[EL_REGION_WEIGHTS] < p.region_bytes[EL_REGION_WEIGHTS]);
    EL_CHECK(p16.region_bytes[EL_REGION_WEIGHTS] == (((512000 + 63) / 64 * 64 + 6 + 63) / 64 * 64 + 20000 + 4095) / 4096 * 4096);

    /* Bad plan parameters. */
    el_plan_params badchunk = {0, 0, EL_DT_NONE, 1000, EL_MEMORY_HOST, EL_DT_F32};
    EL_CHECK_STATUS(el_plan_make(m, &badchunk, &p16), EL_E_USAGE);
    el_plan_params badtype = {0, 0, EL_DT_I8, 0, EL_MEMORY_HOST, EL_DT_F32};
    EL_CHECK_STATUS(el_plan_make(m, &badtype, &p16), EL_E_USAGE);

    /* Too small: refused with needed, available, missing and advice. */
    EL_CHECK_STATUS(el_plan_check(m, &p, p.total_bytes - 1), EL_E_NOFIT);
    const char *msg = el_last_error();
    EL_CHECK(strstr(msg, "needs") && strstr(msg, "missing") && strstr(msg, "--dtype f16"));
    char num[32];
    snprintf(num, sizeof num, "%llu bytes", (unsigned long long)p.total_bytes);
    EL_CHECK(strstr(msg, num) != NULL);
    EL_CHECK_OK(el_plan_check(m, &p, p.total_bytes));

    /* Nothing but the header was read by open + plan + the refusal: the 8-byte length and
     * the JSON, plus the 28-byte format probe (safetensors or llama2.c) at offset 0. */
    el_io_stats io;
    el_io_stats_get(&io);
    EL_CHECK(io.bytes == header_bytes + 28);
    el_model_close(m);

    /* The CLI: plan refuses with exit 3, load refuses with exit 3 before reading. */
    char *out = NULL, *err = NULL, args[2048];
    snprintf(args, sizeof args, "plan '%s' --arena 1M", file);
    EL_CHECK(el_test_run_cli(args, &out, &err) == 3);
    EL_CHECK(err && strstr(err, "missing") && strstr(err, "--dtype f16"));
    EL_CHECK(out && strstr(out, "DOES NOT FIT"));
    free(out); free(err);
    snprintf(args, sizeof args, "load '%s' --arena 1M", file);
    EL_CHECK(el_test_run_cli(args, &out, &err) == 3);
    free(out); free(err);
    snprintf(args, sizeof args, "plan '%s' --json", file);
    EL_CHECK(el_test_run_cli(args, &out, NULL) == 0);
    snprintf(num, sizeof num, "\"total\":%llu", (unsigned long long)p.total_bytes);
    EL_CHECK(out && strstr(out, num) && strstr(out, "\"fits\":true"));
    free(out);
    snprintf(args, sizeof args, "load '%s' --json --dtype f16", file);
    EL_CHECK(el_test_run_cli(args, &out, &err) == 0);
    EL_CHECK(out && strstr(out, "\"bytes_read\":1044012") && strstr(out, "\"vm_hwm\""));
    free(out); free(err);
    snprintf(args, sizeof args, "inspect '%s' --json", file);
    EL_CHECK(el_test_run_cli(args, &out, NULL) == 0);
    EL_CHECK(out && strstr(out, "\"name\":\"w2\"") && strstr(out, "\"dtype\":\"F16\""));
    free(out);

    /* Exit codes: usage 1, corrupt 2, I/O 4. */
    EL_CHECK(el_test_run_cli("plan", NULL, NULL) == 1);
    EL_CHECK(el_test_run_cli("frobnicate", NULL, NULL) == 1);
    snprintf(args, sizeof args, "plan '%s' --arena 12Q", file);
    EL_CHECK(el_test_run_cli(args, NULL, NULL) == 1);
    snprintf(args, sizeof args, "plan '%s' --bogus", file);
    EL_CHECK(el_test_run_cli(args, NULL, NULL) == 1);
    EL_CHECK(el_test_run_cli("inspect /nonexistent/model.safetensors", NULL, &err) == 4);
    free(err);
    const char *junk = el_test_path("junk.safetensors");
    EL_CHECK(el_test_write_file(junk, "\x10\x00\x00\x00\x00\x00\x00\x00{\"a\":", 14));
    snprintf(args, sizeof args, "inspect '%s'", junk);
    EL_CHECK(el_test_run_cli(args, NULL, &err) == 2);
    EL_CHECK(err && strstr(err, "junk.safetensors"));
    free(err);
    EL_CHECK(el_test_run_cli("--help", &out, NULL) == 0);
    EL_CHECK(out && strstr(out, "exit codes"));
    free(out);
    EL_CHECK(el_test_run_cli("load --help", &out, NULL) == 0);
    EL_CHECK(out && strstr(out, "--arena"));
    free(out);
    return el_test_finish("test_loader_plan");
}
