/* gpu_module.h - the table between the core and the CUDA module libedgeload_cuda.so
 * (kernels/cuda, platform/gpu_cuda.c and the static CUDA runtime). platform/gpu.c opens the
 * module at the first GPU question, so a CPU run never maps the CUDA runtime. The module
 * exports one function, EL_CUDA_MODULE_ENTRY, returning its table; the core reads abi and
 * the sizes before anything else, then calls init with its own services (errors then land
 * in the caller's el_last_error). Builds under the emulator link the module in. */
#ifndef EL_PLATFORM_GPU_MODULE_H
#define EL_PLATFORM_GPU_MODULE_H

#include "kernels/ops.h"
#include "platform/gpu.h"
#include "platform/platform.h"

#include <stdarg.h>

#define EL_CUDA_MODULE_ABI 1 /* bump on any change to the two structs below or el_ops */
#define EL_CUDA_MODULE_ENTRY "el_cuda_module_entry"
#define EL_CUDA_MODULE_FILE "libedgeload_cuda.so"

/* What the core lends the module. */
typedef struct el_cuda_host {
    el_status (*verrorf)(el_status s, const char *fmt, va_list ap); /* into el_last_error */
    uint64_t (*page_size)(void);
    el_status (*mem_report_get)(el_mem_report *out);
    const char *(*dtype_name)(el_dtype dt);
} el_cuda_host;

/* The module: its op table and gpu.h's functions, same contracts. */
typedef struct el_cuda_module {
    uint32_t abi;                        /* EL_CUDA_MODULE_ABI */
    uint32_t size, ops_size, info_size;  /* sizeof el_cuda_module, el_ops, el_gpu_info */
    void (*init)(const el_cuda_host *h); /* before any other call; h outlives the module */
    const el_ops *ops;                   /* el_ops_cuda */
    el_status (*probe)(void);            /* el_cuda_probe */
    el_status (*count)(int *n);
    el_status (*info_get)(int i, el_gpu_info *out);
    const char *(*versions)(char *buf, size_t cap);
    el_status (*reserve)(int gpu, el_gpu_mem k, uint64_t bytes, void **out);
    void (*release)(el_gpu_mem k, void *p);
    uint64_t (*reserve_count)(void);
    el_status (*stream_create)(el_gpu_stream **out);
    void (*stream_destroy)(el_gpu_stream *st);
    el_status (*sync)(el_gpu_stream *st);
    el_status (*copy_async)(void *dst, const void *src, uint64_t bytes, el_gpu_stream *st);
    el_status (*copy2d_async)(void *dst, uint64_t dpitch, const void *src, uint64_t spitch,
                              uint64_t width, uint64_t height, el_gpu_stream *st);
    el_status (*event_create)(el_gpu_event **out);
    void (*event_destroy)(el_gpu_event *e);
    el_status (*event_record)(el_gpu_event *e, el_gpu_stream *st);
    el_status (*event_wait)(el_gpu_event *e);
    el_status (*stream_wait)(el_gpu_stream *st, el_gpu_event *e);
    el_status (*host_register)(void *p, uint64_t bytes, void **base);
    void (*host_unregister)(void *base);
    el_status (*capture_begin)(el_gpu_stream *st);
    el_status (*capture_end)(el_gpu_stream *st, el_gpu_graph **out);
    el_status (*graph_launch)(el_gpu_graph *g, el_gpu_stream *st);
    void (*graph_destroy)(el_gpu_graph *g);
    el_status (*attach)(void *p, el_gpu_attach_to to, el_gpu_stream *st);
    el_status (*prefetch)(int gpu, const void *p, uint64_t bytes, el_gpu_stream *st, bool *done);
} el_cuda_module;

typedef const el_cuda_module *(*el_cuda_module_fn)(void);

const el_cuda_module *el_cuda_module_entry(void); /* platform/gpu_cuda.c */

#endif /* EL_PLATFORM_GPU_MODULE_H */
