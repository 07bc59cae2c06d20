/* arena.c - the one reservation: regions weights|kv|scratch|staging carved from a single
 * mapping, aligned bump allocation with marks, and used/peak statistics per region.
 * The only heap allocation is the small el_arena struct, made once in el_arena_init;
 * el_arena_init_buffer allocates nothing: descriptor and regions are carved from the
 * caller's buffer. */
#include "arena/arena.h"

#include "platform/gpu.h"
#include "platform/platform.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024.0 * 1024.0)

typedef struct el_arena_region {
    uint8_t *base;     /* 4 KiB aligned start inside the mapping */
    uint64_t capacity; /* bytes, a multiple of 4 KiB */
    uint64_t offset;   /* bytes handed out so far (padding included) */
    uint64_t peak;     /* highest offset seen */
} el_arena_region;

struct el_arena {
    void *mapping;                          /* from x_reserve */
    uint64_t reserved;                      /* bytes given to x_reserve (page multiple) */
    unsigned flags_got;                     /* EL_ARENA_* actually obtained */
    void (*release)(void *p, uint64_t bytes); /* the x_release matching x_reserve */
    el_memory memory;                       /* where the GPU regions live */
    void *gpu_block;                        /* CUDA memory: weights|kv|act */
    uint64_t gpu_bytes;
    void *pinned_block;                     /* device memory: staging, page-locked */
    int gpu;                                /* the device gpu_block is on */
    unsigned gpu_users;                     /* managed: sessions/encoders holding gpu_block:
                                               0: attached to the host, 1: to that one's
                                               stream, more: globally */
    el_arena_region region[EL_REGION_COUNT];
    bool in_buffer;                         /* el_arena_init_buffer: this descriptor and
                                               the regions live in the caller's buffer */
};

static void arena_release_gpu(el_arena *a) {
    if (a->gpu_block)
        el_gpu_release(a->memory == EL_MEMORY_CUDA_MANAGED ? EL_GPU_MEM_MANAGED : EL_GPU_MEM_DEVICE,
                       a->gpu_block);
    if (a->pinned_block) el_gpu_release(EL_GPU_MEM_PINNED, a->pinned_block);
    a->gpu_block = a->pinned_block = NULL;
}

static const char *const k_region_names[EL_REGION_COUNT] = {"weights", "kv", "scratch",
                                                            "staging", "act", "tokenizer"};

const char *el_memory_name(el_memory m) {
    switch (m) {
    case EL_MEMORY_HOST: return "host";
    case EL_MEMORY_CUDA_MANAGED: return "managed";
    case EL_MEMORY_CUDA_DEVICE: return "device";
    }
    return "unknown";
}

bool el_region_on_gpu(el_region r) {
    return r == EL_REGION_WEIGHTS || r == EL_REGION_KV || r == EL_REGION_ACT;
}

const char *el_region_name(el_region r) {
    if ((int)r < 0 || r >= EL_REGION_COUNT) return "unknown";
    return k_region_names[r];
}

/* Checks params and gives each region's capacity (4 KiB multiples; the remainder of the
 * arena goes to scratch) and the arena's size rounded up to 4 KiB. */
static el_status arena_capacities(const el_arena_params *params, uint64_t cap[EL_REGION_COUNT],
                                  uint64_t *size_out) {
    if (params->size == 0)
        return el_errorf(EL_E_USAGE, "arena: size is 0; give a size such as --arena 512M");
    unsigned known = EL_ARENA_LOCK | EL_ARENA_HUGEPAGES | EL_ARENA_PREFAULT;
    if (params->flags & ~known)
        return el_errorf(EL_E_USAGE, "arena: unknown flags 0x%x", params->flags & ~known);

    /* Region capacities and the arena are counted in whole 4 KiB blocks: a region start
     * must be 4 KiB aligned for O_DIRECT staging, and the mapping is made of pages anyway,
     * so rounding size up costs no memory. */
    uint64_t size, sum = 0;
    if (!el_align_up_u64(params->size, EL_ALIGN_IO, &size))
        return el_errorf(EL_E_USAGE, "arena: size %llu bytes is too large",
                         (unsigned long long)params->size);
    for (int r = 0; r < EL_REGION_COUNT; r++) {
        if (!el_align_up_u64(params->region_bytes[r], EL_ALIGN_IO, &cap[r]) ||
            !el_add_u64(sum, cap[r], &sum))
            return el_errorf(EL_E_USAGE, "arena: region %s of %llu bytes overflows the sum of "
                             "regions", k_region_names[r],
                             (unsigned long long)params->region_bytes[r]);
    }
    if (sum > size)
        return el_errorf(EL_E_USAGE,
                         "arena: regions need %llu bytes (%.2f MiB; weights %llu, kv %llu, "
                         "scratch %llu, staging %llu, each rounded up to 4 KiB) but the arena "
                         "size is %llu bytes (%.2f MiB); give a larger --arena or smaller regions",
                         (unsigned long long)sum, (double)sum / MIB,
                         (unsigned long long)cap[EL_REGION_WEIGHTS],
                         (unsigned long long)cap[EL_REGION_KV],
                         (unsigned long long)cap[EL_REGION_SCRATCH],
                         (unsigned long long)cap[EL_REGION_STAGING],
                         (unsigned long long)params->size, (double)params->size / MIB);
    cap[EL_REGION_SCRATCH] += size - sum;
    *size_out = size;
    return EL_OK;
}

el_status el_arena_init(el_arena **out, const el_arena_params *params) {
    if (!out) return el_errorf(EL_E_USAGE, "el_arena_init: out is NULL");
    *out = NULL;
    if (!params) return el_errorf(EL_E_USAGE, "el_arena_init: params is NULL");
    uint64_t size = 0, cap[EL_REGION_COUNT];
    el_status cs = arena_capacities(params, cap, &size);
    if (cs != EL_OK) return cs;

    /* Which regions go where: everything in one host mapping, or the GPU regions in one
     * CUDA block (and, for device memory, staging in pinned host memory). */
    const el_memory mem = params->memory;
    if (mem != EL_MEMORY_HOST && mem != EL_MEMORY_CUDA_MANAGED && mem != EL_MEMORY_CUDA_DEVICE)
        return el_errorf(EL_E_USAGE, "arena: unknown memory kind %d", (int)mem);
    uint64_t host_bytes = 0, gpu_bytes = 0, pinned_bytes = 0;
    for (int r = 0; r < EL_REGION_COUNT; r++) {
        uint64_t *to = &host_bytes;
        if (mem != EL_MEMORY_HOST && el_region_on_gpu((el_region)r)) to = &gpu_bytes;
        else if (mem == EL_MEMORY_CUDA_DEVICE && r == EL_REGION_STAGING) to = &pinned_bytes;
        *to += cap[r]; /* no overflow: the sum was checked above */
    }
    uint64_t reserve;
    if (!el_align_up_u64(host_bytes, el_page_size(), &reserve))
        return el_errorf(EL_E_USAGE, "arena: size %llu bytes is too large",
                         (unsigned long long)params->size);

    el_arena *a = calloc(1, sizeof *a);
    if (!a)
        return el_errorf(EL_E_NOMEM, "arena: cannot allocate its %zu-byte descriptor",
                         sizeof *a);
    a->memory = mem;
    a->gpu = params->gpu;
    if (mem != EL_MEMORY_HOST) {
        el_status gs = EL_OK;
        if (gpu_bytes)
            gs = el_gpu_reserve(params->gpu, mem == EL_MEMORY_CUDA_MANAGED ? EL_GPU_MEM_MANAGED
                                                                            : EL_GPU_MEM_DEVICE,
                                gpu_bytes, &a->gpu_block);
        if (gs == EL_OK && pinned_bytes)
            gs = el_gpu_reserve(params->gpu, EL_GPU_MEM_PINNED, pinned_bytes, &a->pinned_block);
        if (gs != EL_OK) {
            arena_release_gpu(a);
            free(a);
            return gs;
        }
        a->gpu_bytes = gpu_bytes;
    }
    const el_platform_methods *m = el_platform_get();
    void *p = NULL;
    unsigned got = 0;
    /* Every region may be on the GPU (a model without sessions in device memory): then
     * there is no host mapping at all. */
    el_status s = reserve ? m->x_reserve(reserve, params->flags, &p, &got) : EL_OK;
    if (reserve && (s != EL_OK || !p)) {
        char why[512];
        snprintf(why, sizeof why, "%s", s != EL_OK ? el_last_error() : "no memory returned");
        arena_release_gpu(a);
        free(a);
        el_mem_report mr;
        uint64_t avail = el_mem_report_get(&mr) == EL_OK ? mr.mem_available : 0;
        char avail_text[96];
        if (avail)
            snprintf(avail_text, sizeof avail_text, "%llu bytes (%.2f MiB)",
                     (unsigned long long)avail, (double)avail / MIB);
        else
            snprintf(avail_text, sizeof avail_text, "unknown");
        return el_errorf(EL_E_NOMEM,
                         "arena: reserving %llu bytes (%.2f MiB) failed (%s); MemAvailable is "
                         "%s; try a smaller --arena", (unsigned long long)reserve,
                         (double)reserve / MIB, why, avail_text);
    }
    if ((uintptr_t)p & (EL_ALIGN_IO - 1)) {
        m->x_release(p, reserve);
        arena_release_gpu(a);
        free(a);
        return el_errorf(EL_E_USAGE, "arena: platform '%s' returned memory %p that is not "
                         "4 KiB aligned", m->name, p);
    }
    a->mapping = p;
    a->reserved = reserve;
    a->flags_got = got;
    a->release = m->x_release;
    uint8_t *host_at = p, *gpu_at = a->gpu_block, *pinned_at = a->pinned_block;
    for (int r = 0; r < EL_REGION_COUNT; r++) {
        uint8_t **at = &host_at;
        if (mem != EL_MEMORY_HOST && el_region_on_gpu((el_region)r)) at = &gpu_at;
        else if (mem == EL_MEMORY_CUDA_DEVICE && r == EL_REGION_STAGING) at = &pinned_at;
        a->region[r].base = *at;
        a->region[r].capacity = cap[r];
        if (cap[r]) *at += cap[r];
    }
    *out = a;
    return EL_OK;
}

el_status el_arena_buffer_bytes(const el_arena_params *params, uint64_t *out) {
    if (!params || !out) return el_errorf(EL_E_USAGE, "el_arena_buffer_bytes: NULL argument");
    uint64_t size = 0, cap[EL_REGION_COUNT];
    el_status s = arena_capacities(params, cap, &size);
    if (s != EL_OK) return s;
    if (!el_add_u64(size, EL_ARENA_BUFFER_OVERHEAD, out))
        return el_errorf(EL_E_USAGE, "arena: size %llu bytes is too large",
                         (unsigned long long)params->size);
    return EL_OK;
}

el_status el_arena_init_buffer(el_arena **out, const el_arena_params *params, void *buf,
                               size_t cap_bytes) {
    if (!out) return el_errorf(EL_E_USAGE, "el_arena_init_buffer: out is NULL");
    *out = NULL;
    if (!params || !buf) return el_errorf(EL_E_USAGE, "el_arena_init_buffer: NULL argument");
    if (params->memory != EL_MEMORY_HOST)
        return el_errorf(EL_E_USAGE, "arena: a caller's buffer is host memory; memory '%s' "
                         "needs el_arena_init", el_memory_name(params->memory));
    if (params->flags & (EL_ARENA_LOCK | EL_ARENA_HUGEPAGES))
        return el_errorf(EL_E_USAGE, "arena: EL_ARENA_LOCK and EL_ARENA_HUGEPAGES apply to the "
                         "library's own mapping; lock or map the buffer before passing it");
    uint64_t size = 0, need = 0, cap[EL_REGION_COUNT];
    el_status s = arena_capacities(params, cap, &size);
    if (s != EL_OK) return s;
    if ((s = el_arena_buffer_bytes(params, &need)) != EL_OK) return s;
    if ((uint64_t)cap_bytes < need)
        return el_errorf(EL_E_NOFIT, "arena: the buffer holds %llu bytes (%.2f MiB) but an arena "
                         "of %llu bytes needs %llu (the arena plus %u for alignment and its "
                         "descriptor; el_arena_buffer_bytes); missing %llu bytes",
                         (unsigned long long)cap_bytes, (double)cap_bytes / MIB,
                         (unsigned long long)size, (unsigned long long)need,
                         EL_ARENA_BUFFER_OVERHEAD, (unsigned long long)(need - cap_bytes));
    /* Descriptor at the first 64-byte boundary, regions from the next 4 KiB boundary after
     * it: at most 63 + sizeof(el_arena) + 4095 bytes before them, within the overhead. */
    _Static_assert(sizeof(el_arena) + 64 + EL_ALIGN_IO <= EL_ARENA_BUFFER_OVERHEAD,
                   "EL_ARENA_BUFFER_OVERHEAD too small for the descriptor");
    uintptr_t at = ((uintptr_t)buf + 63) & ~(uintptr_t)63;
    el_arena *a = (el_arena *)at;
    memset(a, 0, sizeof *a);
    uint8_t *p = (uint8_t *)(((at + sizeof *a) + EL_ALIGN_IO - 1) & ~(uintptr_t)(EL_ALIGN_IO - 1));
    a->in_buffer = true;
    a->memory = EL_MEMORY_HOST;
    a->reserved = size;
    for (int r = 0; r < EL_REGION_COUNT; r++) {
        a->region[r].base = p;
        a->region[r].capacity = cap[r];
        p += cap[r];
    }
    if (params->flags & EL_ARENA_PREFAULT) { /* one write per page: no fault later */
        const uint64_t page = el_page_size();
        volatile uint8_t *q = a->region[0].base;
        for (uint64_t o = 0; o < size; o += page) q[o] = 0;
        a->flags_got = EL_ARENA_PREFAULT;
    }
    *out = a;
    return EL_OK;
}

void el_arena_deinit(el_arena *a) {
    if (!a) return;
    if (a->in_buffer) return; /* the caller's memory, descriptor included */
    if (a->mapping) a->release(a->mapping, a->reserved);
    arena_release_gpu(a);
    free(a);
}

el_memory el_arena_memory(const el_arena *a) { return a ? a->memory : EL_MEMORY_HOST; }

void el_arena_stats_get(const el_arena *a, el_arena_stats *out) {
    if (!out) return;
    memset(out, 0, sizeof *out);
    if (!a) return;
    out->reserved = a->reserved;
    for (int r = 0; r < EL_REGION_COUNT; r++) {
        const el_arena_region *g = &a->region[r];
        out->region[r].capacity = g->capacity;
        out->region[r].used = g->offset;
        out->region[r].peak = g->peak;
        out->used += g->offset;
        out->peak += g->peak;
    }
    out->reserved += a->gpu_bytes;
    for (int r = 0; a->pinned_block && r < EL_REGION_COUNT; r++)
        if (r == EL_REGION_STAGING) out->reserved += a->region[r].capacity;
    out->memory = a->memory;
    out->gpu_reserved = a->gpu_bytes;
    out->locked = (a->flags_got & EL_ARENA_LOCK) != 0;
    out->hugepages = (a->flags_got & EL_ARENA_HUGEPAGES) != 0;
}

el_status el_arena_alloc(el_arena *a, el_region r, uint64_t bytes, size_t align, void **out) {
    assert(a && out && (int)r >= 0 && r < EL_REGION_COUNT);
    if (bytes == 0)
        return el_errorf(EL_E_USAGE, "arena region %s: allocation of 0 bytes", el_region_name(r));
    if (align == 0 || (align & (align - 1)) || align > EL_ALIGN_IO)
        return el_errorf(EL_E_USAGE, "arena region %s: alignment %zu is not a power of two "
                         "<= %u", el_region_name(r), align, EL_ALIGN_IO);
    el_arena_region *g = &a->region[r];
    uint64_t start, end;
    /* The base is 4 KiB aligned, so an aligned offset is an aligned address. */
    if (!el_align_up_u64(g->offset, align, &start) || !el_add_u64(start, bytes, &end) ||
        end > g->capacity) {
        uint64_t avail = g->capacity - g->offset;
        return el_errorf(EL_E_NOFIT,
                         "arena region %s: requested %llu bytes (%.2f MiB), available %llu "
                         "bytes (%.2f MiB of %.2f MiB); plan a larger %s region or a larger "
                         "--arena", el_region_name(r), (unsigned long long)bytes,
                         (double)bytes / MIB, (unsigned long long)avail, (double)avail / MIB,
                         (double)g->capacity / MIB, el_region_name(r));
    }
    g->offset = end;
    if (end > g->peak) g->peak = end;
    *out = g->base + start;
    return EL_OK;
}

el_status el_arena_calloc(el_arena *a, el_region r, uint64_t bytes, size_t align, void **out) {
    void *p = NULL;
    el_status s = el_arena_alloc(a, r, bytes, align, &p);
    if (s != EL_OK) return s;
    memset(p, 0, (size_t)bytes);
    *out = p;
    return EL_OK;
}

uint64_t el_arena_mark(const el_arena *a, el_region r) {
    assert(a && (int)r >= 0 && r < EL_REGION_COUNT);
    return a->region[r].offset;
}

void el_arena_release(el_arena *a, el_region r, uint64_t mark) {
    assert(a && (int)r >= 0 && r < EL_REGION_COUNT);
    el_arena_region *g = &a->region[r];
    assert(mark <= g->offset && "el_arena_release: mark is newer than the region's offset");
    if (mark <= g->offset) g->offset = mark; /* release builds ignore a stale mark */
}

void el_arena_reset(el_arena *a, el_region r) {
    assert(a && (int)r >= 0 && r < EL_REGION_COUNT);
    a->region[r].offset = 0;
}

void *el_arena_region_base(const el_arena *a, el_region r) {
    assert(a && (int)r >= 0 && r < EL_REGION_COUNT);
    return a->region[r].base;
}

uint64_t el_arena_region_capacity(const el_arena *a, el_region r) {
    assert(a && (int)r >= 0 && r < EL_REGION_COUNT);
    return a->region[r].capacity;
}

uint64_t el_arena_region_available(const el_arena *a, el_region r) {
    assert(a && (int)r >= 0 && r < EL_REGION_COUNT);
    return a->region[r].capacity - a->region[r].offset;
}

/* ---- managed memory: who may touch the CUDA block ------------------------------------- */

static bool arena_managed(const el_arena *a) {
    return a && a->memory == EL_MEMORY_CUDA_MANAGED && a->gpu_block;
}

el_status el_arena_gpu_attach(el_arena *a, void *stream) {
    if (!arena_managed(a)) return EL_OK;
    /* One holder: only its stream's kernels, so the CPU may write other arenas (another
     * model loading) and this one between its passes. Two at once on one arena: global. */
    el_status s = el_gpu_attach(a->gpu_block, a->gpu_users ? EL_GPU_ATTACH_GLOBAL
                                                           : EL_GPU_ATTACH_STREAM, stream);
    if (s == EL_OK) a->gpu_users++;
    return s;
}

el_status el_arena_gpu_detach(el_arena *a, void *stream) {
    if (!arena_managed(a) || a->gpu_users == 0) return EL_OK;
    if (--a->gpu_users > 0) return EL_OK; /* still held: stays global */
    return el_gpu_attach(a->gpu_block, EL_GPU_ATTACH_HOST, stream);
}

bool el_arena_gpu_held(const el_arena *a) { return arena_managed(a) && a->gpu_users > 0; }

el_status el_arena_gpu_prefetch_weights(el_arena *a, void *stream, bool *done) {
    *done = false;
    const el_arena_region *w = a ? &a->region[EL_REGION_WEIGHTS] : NULL;
    if (!arena_managed(a) || w->offset == 0) return EL_OK;
    return el_gpu_prefetch(a->gpu, w->base, w->offset, stream, done);
}
