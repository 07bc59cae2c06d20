/* test_platform_gpu.c - GPU discovery and device choice on whatever machine runs it: with
 * no GPU (or no CUDA backend) every path answers with a reason instead of failing; with a
 * GPU the attributes are sane. `devices` lists exactly what the library counts, `--device
 * auto` says which device it chose and why, and `--device cuda` that cannot run exits 5.
 * Under the CUDA emulator (-DEL_CUDA_SIM=ON) also: the emulated device is named as such, and
 * `devices` answers right for no device (ELSIM_DEVICES=0), no driver (ELSIM_NO_DRIVER=1) and
 * an integrated, Jetson-like device (ELSIM_INTEGRATED=1). */
// ctest-labels: platform;cli
// ctest-timeout: 60
#include "platform/gpu.h"
#include "tests/llama_fixture.h"

#include <cjson/cJSON.h>
#include <string.h>

static void test_library(int *count) {
#ifdef EL_HAVE_CUDA
    EL_CHECK(el_gpu_built());
#else
    EL_CHECK(!el_gpu_built());
#endif
    int n = -1;
    el_status s = el_gpu_count(&n);
    if (s != EL_OK) {
        /* No backend or no driver: a reason, and no devices. */
        EL_CHECK_STATUS(s, EL_E_NODEV);
        EL_CHECK(n == 0 && strlen(el_last_error()) > 10);
    } else {
        EL_CHECK(n >= 0);
    }
    *count = n < 0 ? 0 : n;
    for (int i = 0; i < *count; i++) {
        el_gpu_info g;
        EL_CHECK_OK(el_gpu_info_get(i, &g));
        EL_CHECK(g.index == i && g.name[0] && g.cc_major >= 5 && g.sm_count > 0);
        EL_CHECK(g.total_bytes > 0 && g.free_bytes > 0);
        fprintf(stderr, "GPU %d: %s sm_%d%d integrated=%d managed=%d concurrent=%d\n", i,
                g.name, g.cc_major, g.cc_minor, g.integrated, g.managed, g.concurrent_managed);
    }
    el_gpu_info g;
    EL_CHECK_STATUS(el_gpu_info_get(*count, &g), EL_E_NODEV); /* one past the last */
    char buf[96];
    EL_CHECK(strlen(el_gpu_versions(buf, sizeof buf)) > 0);

    /* With a GPU auto picks it and cuda resolves; without, auto picks the CPU and says why
     * and cuda refuses. */
    el_device d = EL_DEVICE_CUDA;
    char why[700];
    EL_CHECK_OK(el_device_resolve(EL_DEVICE_AUTO, &d, why, sizeof why));
    if (*count > 0) {
        EL_CHECK(d == EL_DEVICE_CUDA && !strncmp(why, "cuda (auto: GPU 0: ", 19));
        EL_CHECK_OK(el_device_resolve(EL_DEVICE_CUDA, &d, why, sizeof why));
        EL_CHECK(d == EL_DEVICE_CUDA && el_device_available(EL_DEVICE_CUDA));
    } else {
        EL_CHECK(d == EL_DEVICE_CPU && !strncmp(why, "cpu (auto: ", 11));
        EL_CHECK_STATUS(el_device_resolve(EL_DEVICE_CUDA, &d, why, sizeof why), EL_E_NODEV);
        EL_CHECK(strstr(el_last_error(), "--device cuda") != NULL);
        EL_CHECK(!el_device_available(EL_DEVICE_CUDA));
    }
    EL_CHECK_OK(el_device_resolve(EL_DEVICE_CPU, &d, why, sizeof why));
    EL_CHECK(d == EL_DEVICE_CPU);
}

static void test_cli(int count) {
    char *out = NULL, *err = NULL;
    int rc = el_test_run_cli("devices --json", &out, &err);
    EL_CHECK(rc == 0 && out);
    cJSON *j = out ? cJSON_Parse(out) : NULL;
    EL_CHECK(j != NULL);
    if (j) {
        const cJSON *devs = cJSON_GetObjectItemCaseSensitive(j, "devices");
        EL_CHECK(cJSON_IsArray(devs) && cJSON_GetArraySize(devs) == count);
        EL_CHECK(count > 0 || cJSON_IsString(cJSON_GetObjectItemCaseSensitive(j, "why_none")));
        cJSON_Delete(j);
    }
    free(out);
    free(err);
    out = err = NULL;
    EL_CHECK(el_test_run_cli("devices", &out, &err) == 0);
    EL_CHECK(out && (count ? strstr(out, "GPU 0:") : strstr(out, "no GPUs: ")) != NULL);
    free(out);
    free(err);
    out = err = NULL;

    rc = el_test_run_cli("generate " STORIES_BIN " -p Once -n 3 --temp 0 --device cuda", &out,
                         &err);
    if (count > 0)
        EL_CHECK(rc == 0 && err && strstr(err, "edgeload: device: cuda (GPU 0: ") && out && *out);
    else
        EL_CHECK(rc == 5 && err && strstr(err, "--device cuda:") && out && !*out);
    free(out);
    free(err);
    out = err = NULL;
    rc = el_test_run_cli("generate " STORIES_BIN " -p Once -n 3 --temp 0", &out, &err);
    const char *picked = count > 0 ? "edgeload: device: cuda (auto: " : "edgeload: device: cpu (auto: ";
    EL_CHECK(rc == 0 && err && strstr(err, picked));
    free(out);
    free(err);
    out = err = NULL;
    rc = el_test_run_cli("generate " STORIES_BIN " -p Once -n 3 --temp 0 --device cpu", &out,
                         &err);
    EL_CHECK(rc == 0 && err && !strstr(err, "edgeload: device:"));
    free(out);
    free(err);
    out = err = NULL;
    rc = el_test_run_cli("serve " STORIES_BIN " --device cuda < /dev/null", &out, &err);
    if (count > 0)
        EL_CHECK(rc == 0 && err && strstr(err, "edgeload: device: cuda"));
    else
        EL_CHECK(rc == 5 && err && strstr(err, "--device cuda:"));
    free(out);
    free(err);
    out = err = NULL;
    EL_CHECK(el_test_run_cli("generate " STORIES_BIN " --device tpu", NULL, &err) == 1);
    EL_CHECK(err && strstr(err, "unknown device"));
    free(err);
}

#ifdef EL_CUDA_SIM
#include "cudasim.h"

/* `devices` with one ELSIM_* variable set: stdout into *out (malloc'd), exit code returned. */
static int devices_with(const char *var, const char *args, char **out) {
    setenv(var, "1", 1);
    if (!strcmp(var, "ELSIM_DEVICES")) setenv(var, "0", 1);
    char *err = NULL;
    int rc = el_test_run_cli(args, out, &err);
    unsetenv(var);
    free(err);
    return rc;
}

static void test_emulated(int count) {
    EL_CHECK(count >= 1);
    el_gpu_info g;
    EL_CHECK_OK(el_gpu_info_get(0, &g));
    EL_CHECK(!strcmp(g.name, ELSIM_DEVICE_NAME) && g.cc_major == 9 && g.cc_minor == 0);
    char *out = NULL;
    EL_CHECK(devices_with("ELSIM_DEVICES", "devices", &out) == 0);
    EL_CHECK(out && strstr(out, "no GPUs: no CUDA device found"));
    free(out);
    out = NULL;
    EL_CHECK(devices_with("ELSIM_NO_DRIVER", "devices", &out) == 0);
    EL_CHECK(out && strstr(out, "no GPUs: no NVIDIA driver is installed"));
    free(out);
    out = NULL;
    EL_CHECK(devices_with("ELSIM_NO_DRIVER", "devices --json", &out) == 0);
    EL_CHECK(out && strstr(out, "\"runtime 13.0, no driver\"") && strstr(out, "\"devices\":[]"));
    free(out);
    out = NULL;
    EL_CHECK(devices_with("ELSIM_INTEGRATED", "devices", &out) == 0);
    EL_CHECK(out && strstr(out, "GPU 0: " ELSIM_DEVICE_NAME ", sm_90") &&
             strstr(out, "integrated (shares DRAM with the CPU)") &&
             strstr(out, "concurrent managed access no") &&
             strstr(out, "arena backing: managed (cudaMallocManaged)"));
    free(out);
}
#endif

int main(void) {
    int count = 0;
    test_library(&count);
    test_cli(count);
#ifdef EL_CUDA_SIM
    test_emulated(count);
#endif
    return el_test_finish("test_platform_gpu");
}
