/* image_load.c - el_model_load for an .elimg image. An I/O thread reads the stored chunks
 * in batches of n (n = decode threads) into staging slots in the arena, double-buffered (it
 * fills one half while the other half is decoded); chunks stored without a codec are read
 * straight into their final place. The caller then decodes a batch on an el_pool of n
 * threads: CRC32C of the stored bytes, LZ4 safe decode (bounded by the raw size) straight
 * into weights_base + chunk_index * chunk_size, unshuffle, CRC32C of the raw bytes. Nothing
 * is allocated on the heap; a bad chunk fails the load naming the chunk and its tensors. */
#include "arena/arena.h"
#include "kernels/cpu/cpu.h"
#include "loader/image.h"
#include "loader/load_impl.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#define SLOTS_MAX (2 * EL_IMG_DECODE_THREADS_MAX)

typedef struct img_loader {
    el_model *m;
    const el_img_meta *meta;
    el_file *f;                 /* the image file (O_DIRECT copy under --direct) */
    uint64_t base;              /* image start in f */
    uint8_t *weights;
    uint8_t *slot[SLOTS_MAX];   /* staging: half h holds slots h*n .. h*n + n - 1 */
    uint64_t slot_bytes;
    unsigned n;                 /* chunks per batch = decode threads */
    uint32_t batches;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    uint32_t batch_read;        /* batches completely read (I/O thread) */
    uint32_t batch_done;        /* batches decoded (caller) */
    bool stop, io_done;
    el_status io_status;
    char io_msg[1024];
    atomic_uint_fast64_t bytes_done;
    uint32_t cur_batch;         /* the batch being decoded */
    uint64_t pop_pos;           /* weights offset the caller has populated up to */
    uint64_t wbytes;            /* weights bytes */
    bool pop_ok;                /* the kernel populates (MADV_POPULATE_WRITE) */
    int result[SLOTS_MAX / 2];  /* el_img_decode result per chunk of the batch */
} img_loader;

static uint8_t *chunk_dst(const img_loader *L, uint32_t ci) {
    return L->weights + (uint64_t)ci * L->meta->h.chunk_size;
}

/* Where the I/O thread puts chunk ci's stored bytes. */
static uint8_t *chunk_src(const img_loader *L, uint32_t ci) {
    const el_img_chunk *c = &L->meta->chunks[ci];
    if (c->codec == EL_IMG_CODEC_NONE) return chunk_dst(L, ci);
    uint32_t b = ci / L->n;
    return L->slot[(b % 2) * L->n + ci % L->n];
}

static void *io_main(void *arg) {
    img_loader *L = arg;
    el_status s = EL_OK;
    for (uint32_t b = 0; b < L->batches && s == EL_OK; b++) {
        pthread_mutex_lock(&L->mu);
        while (!L->stop && b >= L->batch_done + 2) pthread_cond_wait(&L->cv, &L->mu);
        bool stop = L->stop;
        pthread_mutex_unlock(&L->mu);
        if (stop) break;
        uint32_t first = b * L->n, end = first + L->n;
        if (end > L->meta->h.chunk_count) end = L->meta->h.chunk_count;
        for (uint32_t ci = first; ci < end && s == EL_OK; ci++) {
            const el_img_chunk *c = &L->meta->chunks[ci];
            size_t len = c->stored_size;
            if (L->f->direct) len = (len + EL_DIRECT_ALIGN - 1) & ~(size_t)(EL_DIRECT_ALIGN - 1);
            s = el_file_read_at(L->f, chunk_src(L, ci), len, L->base + c->offset);
            if (s != EL_OK) {
                char why[700];
                snprintf(why, sizeof why, "%s", el_last_error());
                char where[512];
                s = el_errorf(s, "%s; reading %s", why,
                              el_img_chunk_where(L->meta, &L->m->tensors, ci, where, sizeof where));
            }
            atomic_fetch_add(&L->bytes_done, c->stored_size);
        }
        pthread_mutex_lock(&L->mu);
        if (s == EL_OK) L->batch_read = b + 1;
        pthread_cond_broadcast(&L->cv);
        pthread_mutex_unlock(&L->mu);
    }
    pthread_mutex_lock(&L->mu);
    L->io_status = s;
    if (s != EL_OK) snprintf(L->io_msg, sizeof L->io_msg, "%s", el_last_error());
    L->io_done = true;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

/* Pool job: thread ith decodes the ith chunk of the current batch. */
static void decode_job(void *ctx, unsigned ith, unsigned nth) {
    img_loader *L = ctx;
    for (unsigned j = ith; j < L->n; j += nth) {
        uint32_t ci = L->cur_batch * L->n + j;
        if (ci >= L->meta->h.chunk_count) break;
        uint8_t *src = chunk_src(L, ci);
        /* The slot is reused as the unshuffle scratch once LZ4 has consumed it. */
        L->result[j] = el_img_decode(&L->meta->chunks[ci], src, chunk_dst(L, ci), src);
    }
}

#define POPULATE_STEP (8u * 1024u * 1024u)

/* The caller's spare work while it waits for the I/O thread: fault in the weights pages
 * ahead of batch b, so page faults (and huge-page zeroing) overlap with reading instead of
 * landing in the reads and decodes. Content-preserving, so racing the writers is harmless
 * (as in load.c). False when there is nothing left to do. */
static bool populate_ahead(img_loader *L, uint32_t b) {
    if (!L->pop_ok) return false;
    /* Past the two batches the I/O thread may be reading into (b and b + 1), on the next
     * huge page: faulting the pages it is copying into would make both threads zero the
     * same huge page (one copy then thrown away). */
    uint64_t from = ((uint64_t)b + 2) * L->n * L->meta->h.chunk_size;
    from = (from + EL_POPULATE_GAP - 1) & ~(uint64_t)(EL_POPULATE_GAP - 1);
    if (L->pop_pos < from) L->pop_pos = from;
    if (L->pop_pos >= L->wbytes) return false;
    uint64_t left = L->wbytes - L->pop_pos, n = left < POPULATE_STEP ? left : POPULATE_STEP;
    if (!el_mem_populate(L->weights + L->pop_pos, n)) return L->pop_ok = false;
    L->pop_pos += n;
    return true;
}

static el_status chunk_error(const img_loader *L, uint32_t ci, int why) {
    const el_img_chunk *c = &L->meta->chunks[ci];
    char where[600];
    el_img_chunk_where(L->meta, &L->m->tensors, ci, where, sizeof where);
    const char *what = why == 1 ? "CRC32C of the stored bytes does not match"
                     : why == 2 ? "LZ4 data is corrupt (decoding failed or gave the wrong size)"
                                : "CRC32C of the decoded bytes does not match";
    return el_errorf(EL_E_INVALID, "%s: %s: %s (expected stored 0x%08x, raw 0x%08x); the image "
                     "is corrupt: re-flash or re-pack it", L->f->path, where, what, c->crc_stored,
                     c->crc_raw);
}

static void report(img_loader *L, const el_load_params *p, uint64_t total, double t0) {
    if (!p || !p->progress) return;
    el_load_progress pr = {atomic_load(&L->bytes_done), total, el_now() - t0};
    p->progress(&pr, p->progress_user);
}

el_status el_image_load(el_model *m, const el_plan *plan, el_arena *a,
                        const el_load_params *params, el_load_stats *stats) {
    el_image *img = m->image;
    const el_img_meta *meta = &img->meta;
    double t0 = el_now();
    if (plan->params.chunk_bytes != meta->h.chunk_size)
        return el_errorf(EL_E_USAGE, "%s: the plan was not made for this image", m->path);
    if (el_arena_memory(a) == EL_MEMORY_CUDA_DEVICE)
        return el_errorf(EL_E_UNSUPPORTED, "%s: images decode in place, which GPU device memory "
                         "does not allow: use --cuda-memory managed (the default for images)",
                         m->path);
    img_loader L;
    memset(&L, 0, sizeof L);
    L.m = m;
    L.meta = meta;
    L.f = &m->files[0];
    L.base = img->base;
    atomic_init(&L.bytes_done, 0);
    el_file direct;
    direct.fd = -1;
    direct.path[0] = 0;
    bool use_direct = params && params->direct_io;
    if (use_direct && img->base % EL_DIRECT_ALIGN)
        return el_errorf(EL_E_USAGE, "%s: --direct needs an image offset that is a multiple of "
                         "4096 (got %llu)", m->path, (unsigned long long)img->base);

    /* Arena: the weights (page-rounded so O_DIRECT reads of the last chunk stay inside),
     * then the staging slots, as many decode threads as staging holds. */
    uint64_t wbytes = 0, sbytes = 0;
    unsigned n = 1;
    if (!el_align_up_u64(meta->h.payload_size, EL_IMG_ALIGN, &wbytes))
        return el_errorf(EL_E_INVALID, "%s: sizes overflow", m->path);
    el_image_staging(meta, &n, &sbytes);
    L.slot_bytes = sbytes;
    el_arena_stats st;
    el_arena_stats_get(a, &st);
    uint64_t cap = st.region[EL_REGION_STAGING].capacity - st.region[EL_REGION_STAGING].used;
    while (n > 1 && sbytes && cap / (2 * sbytes) < n) n--; /* an arena from a smaller plan */
    L.n = n;
    L.batches = (meta->h.chunk_count + n - 1) / n;
    uint64_t staging_mark = el_arena_mark(a, EL_REGION_STAGING);
    uint64_t weights_mark = el_arena_mark(a, EL_REGION_WEIGHTS);
    void *w = NULL;
    el_status s = EL_OK;
    if (wbytes > 0) s = el_arena_alloc(a, EL_REGION_WEIGHTS, wbytes, EL_ALIGN_IO, &w);
    L.weights = w;
    L.wbytes = wbytes;
    L.pop_ok = true;
    for (unsigned i = 0; s == EL_OK && sbytes && i < 2 * n; i++) {
        void *buf = NULL;
        s = el_arena_alloc(a, EL_REGION_STAGING, sbytes, EL_ALIGN_IO, &buf);
        L.slot[i] = buf;
    }
    if (s == EL_OK && use_direct) {
        s = el_file_open(&direct, L.f->path, EL_FILE_DIRECT);
        if (s == EL_OK) L.f = &direct;
    }
    el_pool pool;
    bool pool_ok = false, locks = false;
    el_thread io = {0};
    if (s == EL_OK && meta->h.chunk_count) {
        s = el_pool_init(&pool, n, EL_ISA_AUTO);
        pool_ok = s == EL_OK;
        if (s == EL_OK) {
            pthread_mutex_init(&L.mu, NULL);
            pthread_cond_init(&L.cv, NULL);
            locks = true;
            s = el_thread_start(&io, io_main, &L);
        }
    }
    for (uint32_t b = 0; s == EL_OK && b < L.batches; b++) {
        pthread_mutex_lock(&L.mu);
        while (L.batch_read <= b && !L.io_done) {
            pthread_mutex_unlock(&L.mu);
            bool worked = populate_ahead(&L, b);
            pthread_mutex_lock(&L.mu);
            if (!worked && L.batch_read <= b && !L.io_done) pthread_cond_wait(&L.cv, &L.mu);
        }
        bool have = L.batch_read > b;
        pthread_mutex_unlock(&L.mu);
        if (!have) break; /* the I/O thread failed: its status is taken below */
        L.cur_batch = b;
        for (unsigned j = 0; j < n; j++) L.result[j] = 0;
        el_pool_run(&pool, decode_job, &L);
        for (unsigned j = 0; j < n && s == EL_OK; j++)
            if (L.result[j]) s = chunk_error(&L, b * n + j, L.result[j]);
        pthread_mutex_lock(&L.mu);
        L.batch_done = b + 1;
        pthread_cond_broadcast(&L.cv);
        pthread_mutex_unlock(&L.mu);
        report(&L, params, plan->read_bytes, t0);
    }
    if (io.started) {
        pthread_mutex_lock(&L.mu);
        if (s != EL_OK) L.stop = true;
        pthread_cond_broadcast(&L.cv);
        pthread_mutex_unlock(&L.mu);
        el_thread_join(&io);
        if (s == EL_OK && L.io_status != EL_OK) s = el_error_set(L.io_status, L.io_msg);
    }
    if (pool_ok) el_pool_deinit(&pool);
    if (locks) {
        pthread_cond_destroy(&L.cv);
        pthread_mutex_destroy(&L.mu);
    }
    if (direct.fd >= 0) el_file_close(&direct);
    el_arena_release(a, EL_REGION_STAGING, staging_mark);
    if (s != EL_OK) {
        el_arena_release(a, EL_REGION_WEIGHTS, weights_mark);
        return s;
    }
    for (size_t i = 0; i < m->tensors.count; i++) {
        el_tensor *t = &m->tensors.items[i];
        t->loaded_dtype = t->dtype;
        t->data = L.weights + t->arena_offset;
        t->x8 = false;
    }
    m->loaded = true;
    m->tiled = false;
    report(&L, params, plan->read_bytes, t0);
    if (stats) {
        stats->bytes_read = atomic_load(&L.bytes_done);
        stats->tensors = m->tensors.count;
        stats->seconds = el_now() - t0;
    }
    return EL_OK;
}
