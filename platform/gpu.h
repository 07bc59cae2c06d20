/* gpu.h - what the machine's GPUs are, asked of the CUDA runtime (only in builds with the
 * CUDA backend; elsewhere every call says the build has none). Device kinds are decided
 * from attributes, never from board names: integrated (Jetson: CPU and GPU share DRAM)
 * or discrete, and whether managed memory may be touched by the CPU while kernels run. */
#ifndef EL_PLATFORM_GPU_H
#define EL_PLATFORM_GPU_H

#include "edgeload.h"

#include <stdbool.h>
#include <stdint.h>

typedef struct el_gpu_info {
    int index;
    char name[256];
    int cc_major, cc_minor;      /* compute capability: sm_<major><minor> */
    int sm_count;
    bool integrated;             /* cudaDevAttrIntegrated: shares DRAM with the CPU */
    bool managed;                /* cudaDevAttrManagedMemory */
    bool concurrent_managed;     /* cudaDevAttrConcurrentManagedAccess (0 on Jetson) */
    bool pageable_access;        /* cudaDevAttrPageableMemoryAccess */
    uint64_t total_bytes;        /* device memory (integrated: the shared DRAM) */
    uint64_t free_bytes;         /* discrete: cudaMemGetInfo; integrated: MemAvailable from
                                    /proc/meminfo (cudaMemGetInfo undercounts there) */
    int mem_bus_bits;            /* memory bus width (0 if unknown) */
    double mem_clock_khz;        /* memory clock (0 if unknown) */
} el_gpu_info;

/* True when this build has the CUDA backend compiled in. */
bool el_gpu_built(void);
/* Number of usable GPUs into *n. *n = 0 with EL_OK when the driver reports no device;
 * EL_E_NODEV with the reason (no CUDA backend in this build, no driver, a driver older than
 * the runtime) when the runtime cannot be asked at all. */
el_status el_gpu_count(int *n);
/* Facts about GPU i (0 <= i < count). Creates the device's context (slow: ~100 ms+). */
el_status el_gpu_info_get(int i, el_gpu_info *out);
/* The runtime and driver versions as "runtime 13.0, driver 12.8" (or why not) into buf. */
const char *el_gpu_versions(char *buf, size_t cap);

#endif /* EL_PLATFORM_GPU_H */
