/* gpu.c - gpu.h for the core: the CUDA module (platform/gpu_module.h) opened at the first
 * call that asks for the GPU (count, info, probe, a reservation, a stream, an event, ...),
 * every call then through its table. Without it (a CPU-only build; the module missing or
 * not loadable) those calls say why (EL_E_NODEV), and the calls that can only follow them
 * (sync, copies of host memory, destroy) act as on the CPU. */
#include "platform/gpu_module.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if defined(EL_HAVE_CUDA) && !defined(EL_CUDA_SIM)
#include <dlfcn.h>
#include <unistd.h>
#endif

static const el_cuda_module *g_mod; /* set once by mod_load, then read-only */
static char g_why[1024];            /* why there is none, once mod_load ran */
static pthread_once_t g_once = PTHREAD_ONCE_INIT;

bool el_gpu_built(void) {
#ifdef EL_HAVE_CUDA
    return true;
#else
    return false;
#endif
}

#if defined(EL_HAVE_CUDA) && !defined(EL_CUDA_SIM)
/* Defined where the module's objects are linked in (tests and benchmarks that call kernels
 * and the runtime): that copy then, never a second one by dlopen. */
extern const el_cuda_module *el_cuda_module_entry(void) __attribute__((weak));

static const el_cuda_host k_host = {el_verrorf, el_page_size, el_mem_report_get, el_dtype_name};

/* Paths tried so far, for the message: "path (why); ...". */
typedef struct tried {
    char text[900];
    size_t len;
} tried;

static void tried_add(tried *t, const char *path, const char *why) {
    snprintf(t->text + t->len, sizeof t->text - t->len, "%s%s (%s)", t->len ? "; " : "", path,
             why);
    t->len = strlen(t->text);
}

/* h's table if it is a module of this ABI, else NULL with why added to t. */
static const el_cuda_module *entry_of(void *h, const char *path, tried *t) {
    el_cuda_module_fn entry = (el_cuda_module_fn)(uintptr_t)dlsym(h, EL_CUDA_MODULE_ENTRY);
    const el_cuda_module *m = entry ? entry() : NULL;
    char why[200];
    if (!m) {
        tried_add(t, path, "no " EL_CUDA_MODULE_ENTRY " symbol: not an edgeload CUDA module");
        return NULL;
    }
    if (m->abi != EL_CUDA_MODULE_ABI || m->size != sizeof *m || m->ops_size != sizeof(el_ops) ||
        m->info_size != sizeof(el_gpu_info)) {
        snprintf(why, sizeof why, "module ABI %u (table %u bytes), this library needs ABI %u "
                 "(%zu bytes): install the module built with this library",
                 m->abi, m->size, EL_CUDA_MODULE_ABI, sizeof *m);
        tried_add(t, path, why);
        return NULL;
    }
    return m;
}

/* The module at path, or NULL with why added to t (left loaded: its runtime's exit
 * handlers stay valid). */
static const el_cuda_module *open_at(const char *path, tried *t) {
    if (strstr(t->text, path)) return NULL; /* the same directory twice */
    if (access(path, F_OK)) {
        tried_add(t, path, "absent");
        return NULL;
    }
    void *h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        tried_add(t, path, dlerror());
        return NULL;
    }
    return entry_of(h, path, t);
}

/* The path of name in file's folder into buf. */
static const char *beside(char *buf, size_t cap, const char *file, const char *name) {
    const char *slash = strrchr(file, '/');
    snprintf(buf, cap, "%.*s/%s", slash ? (int)(slash - file) : 1, slash ? file : ".", name);
    return buf;
}

/* The module linked in; else EL_CUDA_MODULE if set (only that); else the module already in
 * the process; beside the file holding the core (libedgeload.so, or the executable), or in
 * its edgeload/ folder; beside the executable, or in <bindir>/../<libdir>/edgeload/. */
static void mod_load(void) {
    tried t = {.text = "", .len = 0};
    const char *env = getenv("EL_CUDA_MODULE");
    const el_cuda_module *m = NULL;
    char p[4200];
    if (el_cuda_module_entry) {
        m = el_cuda_module_entry();
        env = NULL;
    } else if (env && *env) {
        m = open_at(env, &t);
    } else {
        void *h = dlopen(EL_CUDA_MODULE_FILE, RTLD_NOW | RTLD_NOLOAD);
        if (h) m = entry_of(h, EL_CUDA_MODULE_FILE " (loaded)", &t);
        Dl_info di;
        if (!m && dladdr((void *)(uintptr_t)el_gpu_count, &di) && di.dli_fname &&
            di.dli_fname[0] == '/') { /* (the executable's may be argv[0]: /proc/self/exe) */
            m = open_at(beside(p, sizeof p, di.dli_fname, EL_CUDA_MODULE_FILE), &t);
            if (!m) m = open_at(beside(p, sizeof p, di.dli_fname, "edgeload/" EL_CUDA_MODULE_FILE), &t);
        }
        char exe[4096];
        ssize_t n = m ? -1 : readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n > 0) {
            exe[n] = '\0';
            m = open_at(beside(p, sizeof p, exe, EL_CUDA_MODULE_FILE), &t);
            if (!m)
                m = open_at(beside(p, sizeof p, exe, EL_BIN_TO_LIBDIR "/edgeload/"
                                   EL_CUDA_MODULE_FILE), &t);
        }
    }
    if (!m) {
        snprintf(g_why, sizeof g_why, "%s%s: %s; %s", env && *env ? "EL_CUDA_MODULE=" : "",
                 env && *env ? env : "the CUDA module " EL_CUDA_MODULE_FILE " was not found",
                 t.text, env && *env ? "point EL_CUDA_MODULE at the module or unset it"
                                     : "install it beside libedgeload, or set EL_CUDA_MODULE");
        return;
    }
    m->init(&k_host);
    __atomic_store_n(&g_mod, m, __ATOMIC_RELEASE);
}
#elif defined(EL_CUDA_SIM)
static void mod_load(void) { /* the emulator's module is linked in */
    el_cuda_module_entry()->init(NULL);
    __atomic_store_n(&g_mod, el_cuda_module_entry(), __ATOMIC_RELEASE);
}
#else
static void mod_load(void) {
    snprintf(g_why, sizeof g_why, "this build has no CUDA backend (configure with -DEL_CUDA=ON "
             "on a machine with the CUDA toolkit)");
}
#endif

/* The module, loading it on the first call; NULL with the reason in el_last_error. */
static const el_cuda_module *mod(void) {
    pthread_once(&g_once, mod_load);
    if (!g_mod) el_error_set(EL_E_NODEV, g_why);
    return g_mod;
}

/* The module if a call before loaded it (what these calls act on came from it), else NULL. */
static const el_cuda_module *loaded(void) { return __atomic_load_n(&g_mod, __ATOMIC_ACQUIRE); }

const el_ops *el_gpu_ops(void) {
    const el_cuda_module *m = loaded();
    return m ? m->ops : NULL;
}

el_status el_gpu_probe(void) {
    const el_cuda_module *m = mod();
    return m ? m->probe() : EL_E_NODEV;
}

el_status el_gpu_count(int *n) {
    *n = 0;
    const el_cuda_module *m = mod();
    return m ? m->count(n) : EL_E_NODEV;
}

el_status el_gpu_info_get(int i, el_gpu_info *out) {
    memset(out, 0, sizeof *out);
    const el_cuda_module *m = mod();
    return m ? m->info_get(i, out) : EL_E_NODEV;
}

const char *el_gpu_versions(char *buf, size_t cap) {
    const el_cuda_module *m = mod();
    if (m) return m->versions(buf, cap);
    snprintf(buf, cap, "%s", el_gpu_built() ? "the CUDA module is not loaded"
                                            : "no CUDA backend in this build");
    return buf;
}

el_status el_gpu_reserve(int gpu, el_gpu_mem k, uint64_t bytes, void **out) {
    *out = NULL;
    const el_cuda_module *m = mod();
    return m ? m->reserve(gpu, k, bytes, out) : EL_E_NODEV;
}

void el_gpu_release(el_gpu_mem k, void *p) {
    const el_cuda_module *m = loaded();
    if (m) m->release(k, p);
}

uint64_t el_gpu_reserve_count(void) {
    const el_cuda_module *m = loaded();
    return m ? m->reserve_count() : 0;
}

el_status el_gpu_stream_create(el_gpu_stream **out) {
    *out = NULL;
    const el_cuda_module *m = mod();
    return m ? m->stream_create(out) : EL_E_NODEV;
}

void el_gpu_stream_destroy(el_gpu_stream *st) {
    const el_cuda_module *m = loaded();
    if (m) m->stream_destroy(st);
}

el_status el_gpu_sync(el_gpu_stream *st) {
    const el_cuda_module *m = loaded();
    return m ? m->sync(st) : EL_OK;
}

el_status el_gpu_copy_async(void *dst, const void *src, uint64_t bytes, el_gpu_stream *st) {
    const el_cuda_module *m = loaded();
    if (m) return m->copy_async(dst, src, bytes, st);
    memcpy(dst, src, (size_t)bytes);
    return EL_OK;
}

el_status el_gpu_copy2d_async(void *dst, uint64_t dpitch, const void *src, uint64_t spitch,
                              uint64_t width, uint64_t height, el_gpu_stream *st) {
    const el_cuda_module *m = loaded();
    if (m) return m->copy2d_async(dst, dpitch, src, spitch, width, height, st);
    for (uint64_t r = 0; r < height; r++)
        memcpy((char *)dst + r * dpitch, (const char *)src + r * spitch, (size_t)width);
    return EL_OK;
}

el_status el_gpu_event_create(el_gpu_event **out) {
    *out = NULL;
    const el_cuda_module *m = mod();
    return m ? m->event_create(out) : EL_E_NODEV;
}

void el_gpu_event_destroy(el_gpu_event *e) {
    const el_cuda_module *m = loaded();
    if (m) m->event_destroy(e);
}

el_status el_gpu_event_record(el_gpu_event *e, el_gpu_stream *st) {
    const el_cuda_module *m = loaded();
    return m ? m->event_record(e, st) : EL_OK;
}

el_status el_gpu_event_wait(el_gpu_event *e) {
    const el_cuda_module *m = loaded();
    return m ? m->event_wait(e) : EL_OK;
}

el_status el_gpu_stream_wait(el_gpu_stream *st, el_gpu_event *e) {
    const el_cuda_module *m = loaded();
    return m ? m->stream_wait(st, e) : EL_OK;
}

el_status el_gpu_host_register(void *p, uint64_t bytes, void **base) {
    *base = NULL;
    const el_cuda_module *m = mod();
    return m ? m->host_register(p, bytes, base) : EL_E_NODEV;
}

void el_gpu_host_unregister(void *base) {
    const el_cuda_module *m = loaded();
    if (m) m->host_unregister(base);
}

el_status el_gpu_capture_begin(el_gpu_stream *st) {
    const el_cuda_module *m = mod();
    return m ? m->capture_begin(st) : EL_E_NODEV;
}

el_status el_gpu_capture_end(el_gpu_stream *st, el_gpu_graph **out) {
    if (out) *out = NULL;
    const el_cuda_module *m = mod();
    return m ? m->capture_end(st, out) : EL_E_NODEV;
}

el_status el_gpu_graph_launch(el_gpu_graph *g, el_gpu_stream *st) {
    const el_cuda_module *m = mod();
    return m ? m->graph_launch(g, st) : EL_E_NODEV;
}

void el_gpu_graph_destroy(el_gpu_graph *g) {
    const el_cuda_module *m = loaded();
    if (m) m->graph_destroy(g);
}

el_status el_gpu_attach(void *p, el_gpu_attach_to to, el_gpu_stream *st) {
    const el_cuda_module *m = loaded();
    return m ? m->attach(p, to, st) : EL_OK;
}

el_status el_gpu_prefetch(int gpu, const void *p, uint64_t bytes, el_gpu_stream *st, bool *done) {
    *done = false;
    const el_cuda_module *m = loaded();
    return m ? m->prefetch(gpu, p, bytes, st, done) : EL_OK;
}
