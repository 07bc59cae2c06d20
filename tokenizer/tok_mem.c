/* tok_mem.c - see tok_mem.h. */
#include "tokenizer/tok_mem.h"
#include "tokenizer/tokenizer.h"
#include "platform/platform.h"

#include <stdlib.h>
#include <string.h>
#ifdef __GLIBC__
#include <malloc.h> /* malloc_trim */
#endif

typedef struct piece {
    struct piece *next;
    uint64_t mapped; /* bytes of a platform mapping (large pieces), 0 for heap ones */
} piece;

/* Measure-mode pieces this large are mapped from the platform, not malloc'd: they go back
 * to the system when released, so the measure at model open leaves no resident heap
 * behind (glibc keeps freed brk memory). */
#define TOK_MAP_MIN (256u * 1024u)

void el_tok_mem_measure(el_tok_mem *m) { memset(m, 0, sizeof *m); }

void el_tok_mem_block(el_tok_mem *m, void *base, size_t cap) {
    memset(m, 0, sizeof *m);
    m->base = base;
    m->cap = cap;
}

void *el_tok_alloc(el_tok_mem *m, size_t bytes, size_t align) {
    size_t at = (m->used + align - 1) & ~(align - 1);
    if (at < m->used || bytes > SIZE_MAX - at) return NULL;
    if (m->base) {
        if (at + bytes > m->cap) return NULL;
        m->used = at + bytes;
        memset(m->base + at, 0, bytes);
        return m->base + at;
    }
    /* Measure: a heap piece with the link in front, aligned as asked. */
    size_t head = align > sizeof(piece) ? align : sizeof(piece);
    if (bytes > SIZE_MAX - head - 4096) return NULL;
    void *raw = NULL;
    uint64_t mapped = 0;
    if (bytes >= TOK_MAP_MIN) {
        const el_platform_methods *pm = el_platform_get();
        unsigned got = 0;
        mapped = ((uint64_t)head + bytes + 4095) & ~(uint64_t)4095;
        if (pm->x_reserve(mapped, 0, &raw, &got) != EL_OK || !raw) return NULL;
        memset(raw, 0, head); /* fresh mappings are zero */
    } else {
        if (posix_memalign(&raw, align > sizeof(void *) ? align : sizeof(void *), head + bytes))
            return NULL;
        memset(raw, 0, head + bytes);
    }
    piece *p = raw;
    p->mapped = mapped;
    p->next = m->pieces;
    m->pieces = p;
    m->used = at + bytes;
    return (uint8_t *)raw + head;
}

void *el_tok_alloc_array(el_tok_mem *m, size_t n, size_t size, size_t align) {
    if (size && n > SIZE_MAX / size) return NULL;
    return el_tok_alloc(m, n * size, align);
}

char *el_tok_strdup(el_tok_mem *m, const char *s, size_t len) {
    if (len == SIZE_MAX) return NULL;
    char *d = el_tok_alloc(m, len + 1, 1);
    if (d && len) memcpy(d, s, len);
    return d;
}

void el_tok_mem_release(el_tok_mem *m) {
    bool heap = false;
    for (piece *p = m->pieces, *next; p; p = next) {
        next = p->next;
        if (p->mapped) {
            el_platform_get()->x_release(p, p->mapped);
        } else {
            free(p);
            heap = true;
        }
    }
    m->pieces = NULL;
#ifdef __GLIBC__
    /* The small pieces (token strings, one per token) were glibc heap: give the freed pages
     * back now, or those below a live chunk stay resident under the arena filled next. */
    if (heap) malloc_trim(0);
#else
    (void)heap;
#endif
}

el_status el_tok_measure(el_tok_build_fn build, const void *args, size_t *bytes) {
    el_tok_mem m;
    el_tok_mem_measure(&m);
    el_tokenizer *t = NULL;
    el_status s = build(args, &m, &t);
    *bytes = m.used;
    el_tok_mem_release(&m);
    return s;
}

el_status el_tok_build_heap(el_tok_build_fn build, const void *args, el_tokenizer **out) {
    *out = NULL;
    size_t bytes = 0;
    el_status s = el_tok_measure(build, args, &bytes);
    if (s != EL_OK) return s;
    void *block = NULL;
    if (posix_memalign(&block, 4096, bytes ? bytes : 1))
        return el_errorf(EL_E_NOMEM, "tokenizer: out of memory for its %zu-byte tables", bytes);
    el_tok_mem m;
    el_tok_mem_block(&m, block, bytes);
    el_tokenizer *t = NULL;
    s = build(args, &m, &t);
    if (s == EL_OK && m.used != bytes)
        s = el_errorf(EL_E_INVALID, "tokenizer: tables took %zu bytes, measured %zu (a build "
                      "that does not allocate deterministically)", m.used, bytes);
    if (s != EL_OK) {
        free(block);
        return s;
    }
    t->block = block;
    *out = t;
    return EL_OK;
}

static _Thread_local struct {
    uint8_t *base;
    size_t cap, used;
} g_temp;

void el_tok_temp_set(void *base, size_t cap) {
    g_temp.base = base;
    g_temp.cap = base ? cap : 0;
    g_temp.used = 0;
}

void *el_tok_temp_alloc(size_t bytes) {
    size_t at = (g_temp.used + 63) & ~(size_t)63;
    if (g_temp.base && at >= g_temp.used && bytes <= g_temp.cap && at <= g_temp.cap - bytes) {
        g_temp.used = at + bytes;
        return g_temp.base + at;
    }
    return malloc(bytes);
}

void el_tok_temp_free(void *p) {
    if (g_temp.base && (uint8_t *)p >= g_temp.base && (uint8_t *)p < g_temp.base + g_temp.cap)
        return; /* lent space: given back with the loan */
    free(p);
}
