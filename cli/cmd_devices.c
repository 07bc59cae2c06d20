/* cmd_devices.c - `edgeload devices`: the GPUs this build can use, with the attributes
 * that decide how the arena is backed (integrated -> managed memory, discrete -> device
 * memory), or why there are none. Exit 0 either way: "no GPU" is an answer, not an error. */
#include "cli/cli.h"
#include "platform/gpu.h"

#include <string.h>

static const char k_usage[] =
    "usage: edgeload devices [--json]\n"
    "Lists the GPUs this build can use: name, compute capability, integrated or discrete,\n"
    "memory, managed-memory attributes. Exit 0, also when there are none (it says why).\n";

static void print_gpu(const el_gpu_info *g, bool json, bool first) {
    char tot[32], fr[32];
    if (json) {
        printf("%s{\"index\":%d,\"name\":", first ? "" : ",", g->index);
        el_cli_json_string(stdout, g->name);
        printf(",\"arch\":\"sm_%d%d\",\"sms\":%d,\"integrated\":%s,\"total_bytes\":%llu,"
               "\"free_bytes\":%llu,\"managed_memory\":%s,\"concurrent_managed_access\":%s,"
               "\"pageable_memory_access\":%s,\"memory_bus_bits\":%d,\"memory_clock_khz\":%.0f}",
               g->cc_major, g->cc_minor, g->sm_count, g->integrated ? "true" : "false",
               (unsigned long long)g->total_bytes, (unsigned long long)g->free_bytes,
               g->managed ? "true" : "false", g->concurrent_managed ? "true" : "false",
               g->pageable_access ? "true" : "false", g->mem_bus_bits, g->mem_clock_khz);
        return;
    }
    el_size_format(g->total_bytes, tot, sizeof tot);
    el_size_format(g->free_bytes, fr, sizeof fr);
    printf("GPU %d: %s, sm_%d%d, %d SMs, %s\n", g->index, g->name, g->cc_major, g->cc_minor,
           g->sm_count, g->integrated ? "integrated (shares DRAM with the CPU)" : "discrete");
    printf("  memory %s, free %s%s\n", tot, fr,
           g->integrated ? " (MemAvailable from /proc/meminfo)" : "");
    printf("  managed memory %s, concurrent managed access %s, pageable access %s\n",
           g->managed ? "yes" : "no", g->concurrent_managed ? "yes" : "no (CPU must not touch "
           "managed memory while kernels run)", g->pageable_access ? "yes" : "no");
    printf("  arena backing: %s\n", g->integrated ? "managed (cudaMallocManaged)"
                                                  : "device memory + pinned staging ring");
}

int el_cmd_devices(int argc, char **argv) {
    bool json = false;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--json")) json = true;
        else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) return fputs(k_usage, stdout), 0;
        else return el_cli_usage("devices: unknown argument %s", argv[i]);
    }
    char ver[96];
    el_gpu_versions(ver, sizeof ver);
    int n = 0;
    el_status s = el_gpu_count(&n);
    const char *why = s != EL_OK ? el_last_error() : n == 0 ? "no CUDA device found" : NULL;
    if (json) {
        printf("{\"cuda_backend\":%s,\"versions\":", el_gpu_built() ? "true" : "false");
        el_cli_json_string(stdout, ver);
        printf(",\"devices\":[");
    } else if (why) {
        printf("no GPUs: %s\n", why);
    } else {
        printf("CUDA %s\n", ver);
    }
    int shown = 0;
    for (int i = 0; i < n; i++) {
        el_gpu_info g;
        if (el_gpu_info_get(i, &g) != EL_OK) {
            fprintf(stderr, "edgeload: GPU %d: %s\n", i, el_last_error());
            continue;
        }
        print_gpu(&g, json, shown++ == 0);
    }
    /* Whether this build's kernels run on GPU 0 (the one sessions use). */
    char kern[512] = "";
    if (shown && el_gpu_probe() != EL_OK) snprintf(kern, sizeof kern, "%s", el_last_error());
    if (!json && shown)
        printf("kernels for GPU 0: %s\n", kern[0] ? kern : "present (this build can run on it)");
    if (json) {
        printf("]");
        if (shown) {
            printf(",\"kernels_usable\":%s", kern[0] ? "false" : "true");
            if (kern[0]) {
                printf(",\"kernels_why_not\":");
                el_cli_json_string(stdout, kern);
            }
        }
        if (why) {
            printf(",\"why_none\":");
            el_cli_json_string(stdout, why);
        }
        printf("}\n");
    }
    return 0;
}
