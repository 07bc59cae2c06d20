/* load.c - the streaming loader: an I/O thread reads every tensor, in file order, straight
 * into its final place in the weights region; tensors that need a dtype conversion or a
 * transpose (transpose2d), or any tensor under O_DIRECT, go through two chunk-sized staging
 * slots in the arena, which the calling thread drains into place while the next chunk is
 * read. Never a whole-file buffer,
 * never a second copy of a tensor, no heap allocation. */
#include "arena/arena.h"
#include "kernels/cpu/quant.h"
#include "kernels/fp16.h"
#include "loader/image.h"
#include "loader/load_impl.h"
#include "loader/stream.h"
#include "tokenizer/tok_mem.h"
#include "platform/gpu.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "edgeload reads little-endian files in place: a big-endian host needs swaps");

void el_convert(el_dtype from, const void *src, el_dtype to, void *dst, uint64_t n) {
    const uint8_t *s = src;
    uint8_t *d = dst;
    if (from == to) {
        memcpy(dst, src, n * el_dtype_block_bytes(from)); /* n blocks of a block type */
        return;
    }
    if (el_dtype_is_block(to)) { /* quantize, a block at a time through f32 */
        const size_t ses = el_dtype_size(from), bb = el_dtype_block_bytes(to);
        float tmp[32];
        for (uint64_t b = 0; b < n / 32; b++) {
            el_convert(from, s + 32 * b * ses, EL_DT_F32, tmp, 32);
            el_quantize_row(to, tmp, d + b * bb, 32);
        }
        return;
    }
    if (el_convert_fast(from, src, to, dst, n)) return;
    for (uint64_t i = 0; i < n; i++) {
        float v;
        uint16_t h;
        switch (from) {
        case EL_DT_F32: memcpy(&v, s + 4 * i, 4); break;
        case EL_DT_F16: memcpy(&h, s + 2 * i, 2); v = el_fp16_to_fp32(h); break;
        default: memcpy(&h, s + 2 * i, 2); v = el_bf16_to_fp32(h); break; /* BF16 */
        }
        switch (to) {
        case EL_DT_F32: memcpy(d + 4 * i, &v, 4); break;
        case EL_DT_F16: h = el_fp32_to_fp16(v); memcpy(d + 2 * i, &h, 2); break;
        default: h = el_fp32_to_bf16(v); memcpy(d + 2 * i, &h, 2); break; /* BF16 */
        }
    }
}

/* Bytes in `to` of n staged units of `from`: elements, or blocks when from is a block type
 * (kept as stored); a quantized `to` takes whole blocks of elements. */
static uint64_t staged_bytes(el_dtype from, el_dtype to, uint64_t n) {
    if (el_dtype_is_block(from)) return n * el_dtype_block_bytes(to);
    return n / el_dtype_block(to) * el_dtype_block_bytes(to);
}

/* ---- transposing conversion (transpose2d tensors) ---------------------------------------- */

#define EL_TP_BLOCK 32u /* rows x cols per cache block: 32 source rows of 32 elements */

typedef enum tp_kind { TP_COPY1, TP_COPY2, TP_COPY4, TP_COPY8, TP_F32_F16, TP_CONVERT } tp_kind;

static tp_kind tp_kind_of(el_dtype from, el_dtype to) {
    if (from == to) {
        switch (el_dtype_size(from)) {
        case 1: return TP_COPY1;
        case 2: return TP_COPY2;
        case 4: return TP_COPY4;
        default: return TP_COPY8;
        }
    }
    return from == EL_DT_F32 && to == EL_DT_F16 ? TP_F32_F16 : TP_CONVERT;
}

/* Writes the transpose of an nr x nc block: source element (i, j) at src + (i * ld + j) * ses
 * goes to dst + (j * rows + i) * des. One loop per kind so the inner loop has no switch. */
#define TP_LOOP(STMT)                                                                             for (uint64_t j = 0; j < nc; j++) {                                                               const uint8_t *sp = src + j * ses;                                                            uint8_t *dp = dst + j * rows * des;                                                           for (uint64_t i = 0; i < nr; i++, sp += ld * ses, dp += des) { STMT; }                    }
static void tp_block(tp_kind k, el_dtype from, el_dtype to, const uint8_t *src, uint64_t ld,
                     size_t ses, uint8_t *dst, uint64_t rows, size_t des, uint64_t nr,
                     uint64_t nc) {
    switch (k) {
    case TP_COPY1: TP_LOOP(*dp = *sp) break;
    case TP_COPY2: TP_LOOP(memcpy(dp, sp, 2)) break;
    case TP_COPY4: TP_LOOP(memcpy(dp, sp, 4)) break;
    case TP_COPY8: TP_LOOP(memcpy(dp, sp, 8)) break;
    case TP_F32_F16:
        TP_LOOP(float v; memcpy(&v, sp, 4); uint16_t h = el_fp32_to_fp16(v); memcpy(dp, &h, 2))
        break;
    case TP_CONVERT: TP_LOOP(el_convert(from, sp, to, dp, 1)) break;
    }
}
#undef TP_LOOP

/* The transpose of source rows [r0, r0 + nr) restricted to columns [c0, c0 + nc), where src
 * points at element (r0, c0) and rows are cols elements apart, walked in cache blocks. */
static void tp_rect(tp_kind k, el_dtype from, el_dtype to, const uint8_t *src, uint8_t *dst,
                    uint64_t rows, uint64_t cols, uint64_t r0, uint64_t nr, uint64_t c0,
                    uint64_t nc) {
    const size_t ses = el_dtype_size(from), des = el_dtype_size(to);
    /* Row blocks outside: 32 source rows (a few hundred KiB) stay in cache while every
     * column block of them is written out; column blocks outside would stream the whole
     * piece through the cache once per 32 columns. */
    for (uint64_t rb = 0; rb < nr; rb += EL_TP_BLOCK) {
        uint64_t br = nr - rb < EL_TP_BLOCK ? nr - rb : EL_TP_BLOCK;
        for (uint64_t cb = 0; cb < nc; cb += EL_TP_BLOCK) {
            uint64_t bc = nc - cb < EL_TP_BLOCK ? nc - cb : EL_TP_BLOCK;
            if (br == EL_TP_BLOCK && bc == EL_TP_BLOCK && (k == TP_COPY4 || k == TP_F32_F16) &&
                el_transpose32_fast(src + (rb * cols + cb) * ses, cols,
                                    dst + ((c0 + cb) * rows + r0 + rb) * des, rows,
                                    k == TP_F32_F16))
                continue;
            tp_block(k, from, to, src + (rb * cols + cb) * ses, cols, ses,
                     dst + ((c0 + cb) * rows + r0 + rb) * des, rows, des, br, bc);
        }
    }
}

void el_convert_transposed(el_dtype from, const void *src, el_dtype to, void *dst,
                           uint64_t rows, uint64_t cols, uint64_t elem0, uint64_t count) {
    if (count == 0 || cols == 0) return;
    const tp_kind k = tp_kind_of(from, to);
    const size_t ses = el_dtype_size(from);
    const uint8_t *s = src;
    uint8_t *d = dst;
    uint64_t r = elem0 / cols, c = elem0 % cols, left = count;
    if (c) { /* the tail of a stored row the previous piece began */
        uint64_t nc = cols - c < left ? cols - c : left;
        tp_rect(k, from, to, s, d, rows, cols, r, 1, c, nc);
        s += nc * ses;
        left -= nc;
        r++;
    }
    uint64_t full = left / cols;
    if (full) {
        tp_rect(k, from, to, s, d, rows, cols, r, full, 0, cols);
        s += full * cols * ses;
        left -= full * cols;
        r += full;
    }
    if (left) tp_rect(k, from, to, s, d, rows, cols, r, 1, 0, left); /* a row's head */
}

/* One staging slot: bytes [src_off, src_off + len) of a tensor's file range, found at
 * buf + skew (skew > 0 only under O_DIRECT, whose reads start on a page). */
typedef struct el_slot {
    uint8_t *buf;
    bool full;
    uint32_t tensor;
    uint64_t elem;   /* first element of the piece in the tensor */
    uint64_t count;  /* elements in the piece */
    uint64_t skew;
} el_slot;

typedef struct el_loader {
    el_model *m;
    el_dtype target;
    uint64_t chunk;           /* bytes per read */
    bool direct;
    bool streamed;            /* layer tensors are left to the ring (loader/stream.c) */
    uint32_t pinned;          /* a streamed plan's first layers, loaded here */
    /* O_DIRECT opens of files[0..file_count) (direct mode only; fd -1: not open): what
     * differs from files[i], not whole el_files (256 of them are 270 KiB of stack, touched:
     * RSS outside the arena). direct_file rebuilds one. */
    struct {
        int fd;
        void *handle; /* el_storage callbacks' handle */
    } dfile[EL_MAX_FILES];
    uint8_t *weights;         /* weights region base */
    el_slot slots[EL_STAGING_SLOTS];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool io_done;             /* the I/O thread has finished (ok or not) */
    bool stop;                /* the caller asks the I/O thread to stop */
    el_status io_status;
    char io_msg[1024];
    atomic_uint_fast64_t bytes_done;
    atomic_uint_fast64_t io_pos;   /* weights offset below which the two threads may still be
                                      writing: the end of what the I/O thread reads now (a
                                      transposed tensor's pieces land all over it: its end) */
    uint64_t pop_pos;              /* weights offset the caller has populated up to */
    uint64_t wbytes;               /* weights bytes laid out */
    bool pop_ok;                   /* the kernel populates (MADV_POPULATE_WRITE) */
    /* Weights in GPU device memory: every piece goes through staging, is converted into
     * an upload buffer (pinned) and copied to its place on the stream; a buffer is reused
     * once its copy's event has completed. */
    bool gpu;
    el_gpu_stream *stream;
    uint8_t *up[EL_STAGING_SLOTS];
    el_gpu_event *up_done[EL_STAGING_SLOTS];
    bool up_pending[EL_STAGING_SLOTS];
    unsigned up_next;
} el_loader;

#define EL_POPULATE_STEP (8u * 1024u * 1024u)

/* Either thread's spare work (the caller waiting for a piece, the I/O thread waiting for a
 * free slot): fault in the next stretch of the weights region ahead of the reader, so page
 * faults (and huge-page zeroing) overlap with reading and converting instead of following
 * them. Content-preserving, so racing the writers is harmless; a stretch is claimed under
 * the lock, so the two threads never fault the same one. False when nothing is left. */
static bool populate_ahead(el_loader *L) {
    pthread_mutex_lock(&L->mu);
    uint64_t io = atomic_load(&L->io_pos), at = 0, n = 0;
    if (L->pop_ok) {
        if (L->pop_pos < io) /* never behind the writers, nor on their huge page */
            L->pop_pos = (io + EL_POPULATE_GAP - 1) & ~(uint64_t)(EL_POPULATE_GAP - 1);
        if (L->pop_pos < L->wbytes) {
            at = L->pop_pos;
            n = L->wbytes - at < EL_POPULATE_STEP ? L->wbytes - at : EL_POPULATE_STEP;
            L->pop_pos += n;
        }
    }
    pthread_mutex_unlock(&L->mu);
    if (n == 0) return false;
    if (!el_mem_populate(L->weights + at, n)) {
        pthread_mutex_lock(&L->mu);
        L->pop_ok = false;
        pthread_mutex_unlock(&L->mu);
        return false;
    }
    return true;
}

/* files[i] as its O_DIRECT open (fd -1 when it is not open). */
static void direct_file(const el_loader *L, uint32_t i, el_file *out) {
    *out = L->m->files[i];
    out->fd = L->dfile[i].fd;
    out->handle = L->dfile[i].handle;
    out->direct = true;
}

static bool should_stop(el_loader *L) {
    pthread_mutex_lock(&L->mu);
    bool s = L->stop;
    pthread_mutex_unlock(&L->mu);
    return s;
}

el_status el_load_read_direct(el_file *df, el_file *bf, uint8_t *buf, uint64_t off, uint64_t n,
                              uint64_t *skew) {
    uint64_t wa = off & ~(uint64_t)(EL_DIRECT_ALIGN - 1);
    uint64_t end = off + n;
    uint64_t body_end = df->size & ~(uint64_t)(EL_DIRECT_ALIGN - 1);
    uint64_t wb = end;
    if (!el_align_up_u64(end, EL_DIRECT_ALIGN, &wb)) wb = body_end;
    if (wb > body_end) wb = body_end > wa ? body_end : wa;
    el_status s = EL_OK;
    if (wb > wa) s = el_file_read_at(df, buf, (size_t)(wb - wa), wa);
    if (s == EL_OK && end > wb) s = el_file_read_at(bf, buf + (wb - wa), (size_t)(end - wb), wb);
    *skew = off - wa;
    return s;
}

uint64_t el_load_piece_elems(const el_tensor *t, uint64_t room) {
    uint64_t per = room / el_dtype_block_bytes(t->dtype);
    /* Transposed tensors: whole stored rows per piece when one fits, so the drain
     * transposes full cache blocks. */
    if (t->transpose2d && t->shape[1] > 0 && per >= t->shape[1]) {
        /* A multiple of the cache block's rows when one fits: every piece starts on a
         * block, so the placed rows' writes stay on whole cache lines. */
        const uint64_t band = EL_TP_BLOCK * t->shape[1];
        per -= per % (per >= band && band / EL_TP_BLOCK == t->shape[1] ? band : t->shape[1]);
    }
    /* Quantized on the way: whole blocks per piece (rows are whole blocks). */
    if (el_dtype_is_block(t->loaded_dtype) && t->loaded_dtype != t->dtype)
        per -= per % el_dtype_block(t->loaded_dtype);
    return per;
}

void el_load_place(const el_tensor *t, const void *src, uint8_t *dst, uint64_t elem,
                   uint64_t count) {
    if (t->transpose2d)
        el_convert_transposed(t->dtype, src, t->loaded_dtype, dst, t->shape[0], t->shape[1],
                              elem, count);
    else
        el_convert(t->dtype, src, t->loaded_dtype,
                   dst + staged_bytes(t->dtype, t->loaded_dtype, elem), count);
}

/* The I/O thread: every tensor in file order. */
static void *io_main(void *arg) {
    el_loader *L = arg;
    el_model *m = L->m;
    el_status s = EL_OK;
    unsigned next_slot = 0;
    for (size_t ti = 0; s == EL_OK && ti < m->tensors.count; ti++) {
        el_tensor *t = &m->tensors.items[ti];
        uint8_t *dst = L->weights + t->arena_offset;
        el_file *f = &m->files[t->file];
        /* A streamed plan: the ring reads the streamed layers, and an image's chunks. */
        if (L->streamed && (m->image || t->stream_layer > L->pinned)) continue;
        atomic_store(&L->io_pos, t->arena_offset);
        if (!L->direct && !L->gpu && !el_plan_staged(t, L->target)) {
            /* Same bytes in the arena as in the file: read them straight into place. */
            for (uint64_t o = 0; s == EL_OK && o < t->nbytes; o += L->chunk) {
                uint64_t n = t->nbytes - o < L->chunk ? t->nbytes - o : L->chunk;
                atomic_store(&L->io_pos, t->arena_offset + o + n);
                s = el_file_read_at(f, dst + o, (size_t)n, t->offset + o);
                if (s == EL_OK) atomic_fetch_add(&L->bytes_done, n);
                if (should_stop(L)) s = EL_E_IO;
            }
            continue;
        }
        /* Through staging, whole elements per piece (whole blocks of a block type, which is
         * never converted: its "elements" below are blocks). */
        uint64_t es = el_dtype_block_bytes(t->dtype);
        /* A slot holds chunk + one page (plan.c); an O_DIRECT window adds up to two
         * partial pages around the piece. */
        uint64_t room = L->direct ? L->chunk - EL_DIRECT_ALIGN : L->chunk;
        uint64_t per = el_load_piece_elems(t, room), total = t->nbytes / es;
        for (uint64_t e = 0; s == EL_OK && e < total; e += per) {
            uint64_t cnt = total - e < per ? total - e : per;
            el_slot *sl = &L->slots[next_slot];
            atomic_store(&L->io_pos, t->arena_offset +
                                         (t->transpose2d ? el_tensor_loaded_bytes(t)
                                                         : staged_bytes(t->dtype, t->loaded_dtype,
                                                                        e + cnt)));
            pthread_mutex_lock(&L->mu);
            while (sl->full && !L->stop) {
                pthread_mutex_unlock(&L->mu);
                bool worked = populate_ahead(L); /* the caller converts: fault for it */
                pthread_mutex_lock(&L->mu);
                if (!worked && sl->full && !L->stop) pthread_cond_wait(&L->cv, &L->mu);
            }
            bool stop = L->stop;
            pthread_mutex_unlock(&L->mu);
            if (stop) {
                s = EL_E_IO;
                break;
            }
            uint64_t off = t->offset + e * es, skew = 0;
            if (L->direct) {
                el_file d;
                direct_file(L, t->file, &d);
                s = el_load_read_direct(&d, f, sl->buf, off, cnt * es, &skew);
            }
            else
                s = el_file_read_at(f, sl->buf, (size_t)(cnt * es), off);
            if (s != EL_OK) break;
            atomic_fetch_add(&L->bytes_done, cnt * es);
            pthread_mutex_lock(&L->mu);
            sl->tensor = (uint32_t)ti;
            sl->elem = e;
            sl->count = cnt;
            sl->skew = skew;
            sl->full = true;
            pthread_cond_broadcast(&L->cv);
            pthread_mutex_unlock(&L->mu);
            next_slot = (next_slot + 1) % EL_STAGING_SLOTS;
        }
    }
    pthread_mutex_lock(&L->mu);
    L->io_status = s;
    if (s != EL_OK) snprintf(L->io_msg, sizeof L->io_msg, "%s", el_last_error());
    L->io_done = true;
    pthread_cond_broadcast(&L->cv);
    pthread_mutex_unlock(&L->mu);
    return NULL;
}

/* Device memory: converts a staged piece into the next upload buffer and queues its copies
 * into place. A transposed piece is transposed here, then placed with one strided copy per
 * run of whole rows (a run of columns of the placed [cols, rows] matrix) or per part row. */
static el_status drain_to_gpu(el_loader *L, const el_tensor *t, const uint8_t *src,
                              uint64_t elem, uint64_t count) {
    unsigned k = L->up_next;
    L->up_next = (k + 1) % EL_STAGING_SLOTS;
    el_status s = EL_OK;
    if (L->up_pending[k] && (s = el_gpu_event_wait(L->up_done[k])) != EL_OK) return s;
    L->up_pending[k] = false;
    uint8_t *out = L->up[k], *w = L->weights + t->arena_offset;
    const el_dtype from = t->dtype, to = t->loaded_dtype;
    const uint64_t ses = el_dtype_block_bytes(from), des = el_dtype_block_bytes(to);
    if (!t->transpose2d) {
        el_convert(from, src, to, out, count);
        s = el_gpu_copy_async(w + staged_bytes(from, to, elem), out,
                              staged_bytes(from, to, count), L->stream);
    } else {
        const uint64_t rows = t->shape[0], cols = t->shape[1];
        uint64_t r = elem / cols, c = elem % cols, left = count;
        while (s == EL_OK && left) {
            uint64_t nr = c == 0 ? left / cols : 0;
            if (nr) { /* whole rows r .. r + nr: out becomes their [cols, nr] transpose */
                el_convert_transposed(from, src, to, out, nr, cols, 0, nr * cols);
                s = el_gpu_copy2d_async(w + r * des, rows * des, out, nr * des, nr * des, cols,
                                        L->stream);
                src += nr * cols * ses;
                out += nr * cols * des;
                left -= nr * cols;
                r += nr;
                continue;
            }
            /* Part of row r, columns c .. c + nc: one element per placed row. */
            uint64_t nc = cols - c < left ? cols - c : left;
            el_convert(from, src, to, out, nc);
            s = el_gpu_copy2d_async(w + (c * rows + r) * des, rows * des, out, des, des, nc,
                                    L->stream);
            src += nc * ses;
            out += nc * des;
            left -= nc;
            c += nc;
            if (c == cols) c = 0, r++;
        }
    }
    if (s == EL_OK) s = el_gpu_event_record(L->up_done[k], L->stream);
    if (s == EL_OK) L->up_pending[k] = true;
    return s;
}

static void report(el_loader *L, const el_load_params *p, uint64_t total, double t0) {
    if (!p || !p->progress) return;
    el_load_progress pr = {atomic_load(&L->bytes_done), total, el_now() - t0};
    p->progress(&pr, p->progress_user);
}

/* Lays the tensors out in the weights region (64-byte aligned, file order) exactly as
 * el_plan_make counted them. */
static el_status layout(el_model *m, const el_plan *plan, uint64_t *end) {
    uint64_t w = 0;
    for (size_t i = 0; i < m->tensors.count; i++) {
        el_tensor *t = &m->tensors.items[i];
        uint64_t bytes = 0;
        el_status s = el_plan_tensor_bytes(t, plan->params.dtype, &bytes);
        if (s != EL_OK) return s;
        if (!el_align_up_u64(w, EL_TENSOR_ALIGN, &w))
            return el_errorf(EL_E_INVALID, "%s: weights add up past 2^64 bytes", m->path);
        t->arena_offset = w;
        t->loaded_dtype = el_plan_tensor_dtype(t, plan->params.dtype);
        w += bytes;
    }
    *end = w;
    return EL_OK;
}

/* The tokenizer's tables into the arena's tokenizer region (the bytes el_model_open
 * measured), before the weights: its parse transient is freed before staging is used. */
static el_status load_tokenizer(el_model *m, el_arena *a) {
    if (m->tokenizer_bytes == 0 || !m->family || !m->family->tokenizer_load) return EL_OK;
    uint64_t mark = el_arena_mark(a, EL_REGION_TOKENIZER);
    void *block = NULL;
    el_status s = el_arena_alloc(a, EL_REGION_TOKENIZER, m->tokenizer_bytes, EL_ALIGN_IO,
                                 &block);
    if (s != EL_OK) return s;
    /* The build's read windows in the staging region, which the weights use only later. */
    const uint64_t smark = el_arena_mark(a, EL_REGION_STAGING);
    const uint64_t avail = el_arena_region_available(a, EL_REGION_STAGING) & ~(uint64_t)63;
    void *temp = NULL;
    if (avail && el_arena_alloc(a, EL_REGION_STAGING, avail, 64, &temp) == EL_OK)
        el_tok_temp_set(temp, (size_t)avail);
    s = m->family->tokenizer_load(m, block, m->tokenizer_bytes);
    el_tok_temp_set(NULL, 0);
    el_arena_release(a, EL_REGION_STAGING, smark);
    if (s != EL_OK) el_arena_release(a, EL_REGION_TOKENIZER, mark);
    return s;
}

static el_status model_load(el_model *m, const el_plan *plan, el_arena *a,
                            const el_load_params *params, el_load_stats *stats);

/* A GPU ring's host slots and stage, from staging after the load has given its buffers
 * back (the plan sizes staging for the larger of the two). */
static el_status carve_gpu_host(el_arena *a, el_stream *ring, uint64_t stage_bytes) {
    void *p = NULL;
    el_status s = EL_OK;
    for (unsigned h = 0; s == EL_OK && h <= EL_STREAM_HOST_SLOTS; h++) {
        const bool stage = h == EL_STREAM_HOST_SLOTS;
        if (stage && !stage_bytes) break;
        s = el_arena_alloc(a, EL_REGION_STAGING, stage ? stage_bytes : ring->slot_bytes ? ring->slot_bytes : 1,
                           EL_ALIGN_IO, &p);
        if (s == EL_OK && stage) ring->stage = p;
        else if (s == EL_OK) ring->host[h] = p;
    }
    return s;
}

el_status el_model_load(el_model *m, const el_plan *plan, el_arena *a,
                        const el_load_params *params, el_load_stats *stats) {
    if (!m || !plan || !a) return el_errorf(EL_E_USAGE, "el_model_load: NULL argument");
    if (m->loaded) return el_errorf(EL_E_USAGE, "%s: already loaded", m->path);
    if (plan->tensor_count != m->tensors.count)
        return el_errorf(EL_E_USAGE, "%s: the plan was made for another model (%llu tensors, "
                         "model has %zu)", m->path, (unsigned long long)plan->tensor_count,
                         m->tensors.count);
    /* The CPU writes a managed arena only while it is attached to the host (Jetson: a
     * kernel of the session holding it may be running). */
    if (el_arena_gpu_held(a))
        return el_errorf(EL_E_USAGE, "%s: a session or encoder is running on this arena; end "
                         "it before loading into the arena", m->path);
    uint64_t tok_mark = el_arena_mark(a, EL_REGION_TOKENIZER);
    el_status s = load_tokenizer(m, a);
    if (s != EL_OK) return s;
    s = m->image && !plan->streamed ? el_image_load(m, plan, a, params, stats)
                                    : model_load(m, plan, a, params, stats);
    if (s != EL_OK) el_arena_release(a, EL_REGION_TOKENIZER, tok_mark);
    return s;
}

/* el_model_load for safetensors, GGUF and llama2.c files, and streamed plans of images. */
static el_status model_load(el_model *m, const el_plan *plan, el_arena *a,
                            const el_load_params *params, el_load_stats *stats) {
    double t0 = el_now();
    el_status s;
    uint64_t wbytes = 0;
    el_stream_shape sh;
    if (plan->streamed && el_arena_memory(a) != plan->params.memory)
        return el_errorf(EL_E_USAGE, "%s: the streamed plan was made for %s memory, the arena "
                         "is %s", m->path, el_memory_name(plan->params.memory),
                         el_memory_name(el_arena_memory(a)));
    if (plan->streamed) {
        if ((s = el_stream_layout(m, plan->params.dtype, plan->stream_pinned, m->tensors.items,
                                  &sh)) != EL_OK)
            return s;
        if (sh.slot_bytes != plan->stream_slot_bytes || sh.layers != plan->stream_layers ||
            plan->stream_slots < 2 || plan->stream_slots > EL_STREAM_SLOTS_MAX)
            return el_errorf(EL_E_USAGE, "%s: the streamed plan was made for another model",
                             m->path);
        wbytes = sh.resident_bytes;
    } else if ((s = layout(m, plan, &wbytes)) != EL_OK) {
        return s;
    }

    el_loader L;
    memset(&L, 0, sizeof L);
    L.m = m;
    L.target = plan->params.dtype;
    L.chunk = plan->params.chunk_bytes;
    L.direct = params && params->direct_io;
    L.streamed = plan->streamed;
    L.pinned = plan->stream_pinned;
    atomic_init(&L.bytes_done, 0);

    /* All arena memory first: weights, then the staging slots. */
    void *w = NULL;
    uint64_t staging_mark = el_arena_mark(a, EL_REGION_STAGING);
    const uint64_t staging0 = staging_mark; /* a failed load gives a GPU ring's back too */
    uint64_t weights_mark = el_arena_mark(a, EL_REGION_WEIGHTS);
    for (uint32_t i = 0; i < m->file_count; i++) L.dfile[i].fd = -1;
    if (wbytes > 0 && (s = el_arena_alloc(a, EL_REGION_WEIGHTS, wbytes, EL_ALIGN_IO, &w)) != EL_OK)
        return s;
    L.weights = w;
    L.wbytes = wbytes;
    /* A streamed plan: the ring's control block, its slots and its stage after the
     * resident tensors. A GPU arena: the slots there; the block in staging (host memory,
     * pinned with device memory), and after the load, in the staging the load used, the
     * host slots and the stage (carve_gpu_host). */
    el_stream *ring = NULL;
    const bool gpu_ring = plan->streamed && el_arena_memory(a) != EL_MEMORY_HOST;
    const unsigned n_slots = plan->streamed ? plan->stream_slots : 0;
    for (unsigned i = 0; plan->streamed && s == EL_OK && i <= n_slots + 1; i++) {
        void *p = NULL;
        if (i == n_slots + 1 && (gpu_ring || !plan->stream_stage_bytes)) break;
        s = i == 0 ? el_arena_calloc(a, gpu_ring ? EL_REGION_STAGING : EL_REGION_WEIGHTS,
                                     el_stream_block_bytes(), EL_ALIGN_IO, &p)
            : i <= n_slots ? el_arena_alloc(a, EL_REGION_WEIGHTS, sh.slot_bytes ? sh.slot_bytes : 1,
                                            EL_ALIGN_IO, &p)
                           : el_arena_alloc(a, EL_REGION_WEIGHTS, plan->stream_stage_bytes,
                                            EL_ALIGN_IO, &p);
        if (s != EL_OK) break;
        if (i == 0) ring = p;
        else if (i <= n_slots) ring->slot[i - 1] = p;
        else ring->stage = p;
    }
    if (s != EL_OK) {
        el_arena_release(a, EL_REGION_STAGING, staging_mark);
        el_arena_release(a, EL_REGION_WEIGHTS, weights_mark);
        return s;
    }
    if (gpu_ring) staging_mark = el_arena_mark(a, EL_REGION_STAGING); /* the block stays */
    if (ring) {
        ring->m = m;
        ring->slot_bytes = sh.slot_bytes;
        ring->n_slots = n_slots;
        ring->n_layers = sh.layers;
        ring->first = plan->stream_pinned;
        ring->target = plan->params.dtype;
        ring->stage_bytes = plan->stream_stage_bytes;
        ring->want_direct = plan->stream_direct;
        ring->gpu = gpu_ring;
        ring->device = el_arena_memory(a) == EL_MEMORY_CUDA_DEVICE;
    }
    L.gpu = el_arena_memory(a) == EL_MEMORY_CUDA_DEVICE;
    /* Small models are not worth a syscall; GPU memory is the driver's to fault in. */
    L.pop_ok = wbytes >= 2ull * EL_POPULATE_STEP && el_arena_memory(a) == EL_MEMORY_HOST;
    atomic_init(&L.io_pos, 0);
    /* (A streamed image reads its resident chunks through the ring's stage instead.) */
    for (unsigned i = 0; !(ring && m->image) && i < EL_STAGING_SLOTS; i++) {
        void *buf;
        s = el_arena_alloc(a, EL_REGION_STAGING, L.chunk + EL_DIRECT_ALIGN, EL_ALIGN_IO, &buf);
        if (s != EL_OK) {
            el_arena_release(a, EL_REGION_STAGING, staging0);
            el_arena_release(a, EL_REGION_WEIGHTS, weights_mark);
            return s;
        }
        L.slots[i].buf = buf;
    }
    for (unsigned i = 0; L.gpu && s == EL_OK && i < EL_STAGING_SLOTS; i++) {
        void *buf = NULL;
        s = el_arena_alloc(a, EL_REGION_STAGING, 2 * L.chunk, EL_ALIGN_IO, &buf);
        if (s == EL_OK) s = el_gpu_event_create(&L.up_done[i]);
        L.up[i] = buf;
    }
    if (L.gpu && s == EL_OK) s = el_gpu_stream_create(&L.stream);
    for (uint32_t i = 0; L.direct && s == EL_OK && i < m->file_count; i++) {
        el_file d;
        if ((s = el_file_open(&d, m->files[i].path, EL_FILE_DIRECT)) == EL_OK) {
            L.dfile[i].fd = d.fd;
            L.dfile[i].handle = d.handle;
        }
    }

    el_thread io = {0};
    bool locks = false;
    if (s == EL_OK) {
        pthread_mutex_init(&L.mu, NULL);
        pthread_cond_init(&L.cv, NULL);
        locks = true;
        s = el_thread_start(&io, io_main, &L);
    }
    unsigned next_slot = 0;
    while (s == EL_OK) {
        el_slot *sl = &L.slots[next_slot];
        pthread_mutex_lock(&L.mu);
        while (!sl->full && !L.io_done) {
            pthread_mutex_unlock(&L.mu);
            bool worked = populate_ahead(&L);
            pthread_mutex_lock(&L.mu);
            if (worked) continue;
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            ts.tv_nsec += 100 * 1000 * 1000;
            if (ts.tv_nsec >= 1000000000L) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000L;
            }
            pthread_cond_timedwait(&L.cv, &L.mu, &ts);
            if (!sl->full && !L.io_done) {
                pthread_mutex_unlock(&L.mu);
                report(&L, params, plan->read_bytes, t0);
                pthread_mutex_lock(&L.mu);
            }
        }
        bool have = sl->full;
        pthread_mutex_unlock(&L.mu);
        if (!have) break; /* the I/O thread is done and nothing is left */
        el_tensor *t = &m->tensors.items[sl->tensor];
        if (L.gpu)
            s = drain_to_gpu(&L, t, sl->buf + sl->skew, sl->elem, sl->count);
        else
            el_load_place(t, sl->buf + sl->skew, L.weights + t->arena_offset, sl->elem,
                          sl->count);
        pthread_mutex_lock(&L.mu);
        sl->full = false;
        pthread_cond_broadcast(&L.cv);
        pthread_mutex_unlock(&L.mu);
        next_slot = (next_slot + 1) % EL_STAGING_SLOTS;
        report(&L, params, plan->read_bytes, t0);
    }
    if (io.started) {
        if (s != EL_OK) {
            pthread_mutex_lock(&L.mu);
            L.stop = true;
            pthread_cond_broadcast(&L.cv);
            pthread_mutex_unlock(&L.mu);
        }
        el_thread_join(&io);
        if (s == EL_OK && L.io_status != EL_OK) s = el_error_set(L.io_status, L.io_msg);
    }
    if (locks) {
        pthread_cond_destroy(&L.cv);
        pthread_mutex_destroy(&L.mu);
    }
    for (uint32_t i = 0; L.direct && i < m->file_count; i++) {
        el_file d;
        direct_file(&L, i, &d);
        el_file_close(&d);
    }
    if (L.stream) { /* every copy out of staging lands before staging is given back */
        el_status ss = el_gpu_sync(L.stream);
        if (s == EL_OK) s = ss;
        el_gpu_stream_destroy(L.stream);
    }
    for (unsigned i = 0; i < EL_STAGING_SLOTS; i++) el_gpu_event_destroy(L.up_done[i]);
    /* Staging is only for loading: give it back to the region (a GPU ring's host side
     * follows its block there). */
    el_arena_release(a, EL_REGION_STAGING, staging_mark);
    if (s == EL_OK && gpu_ring) s = carve_gpu_host(a, ring, plan->stream_stage_bytes);
    if (s == EL_OK && ring && m->image) {
        uint64_t n = 0;
        s = el_stream_read_resident(ring, L.weights, &n);
        atomic_fetch_add(&L.bytes_done, n);
    }
    if (s != EL_OK) {
        el_arena_release(a, EL_REGION_STAGING, staging0);
        el_arena_release(a, EL_REGION_WEIGHTS, weights_mark);
        return s;
    }
    /* Streamed layers' tensors point into slot 0; a session binds them there once and
     * shifts the binding to the slot a layer is read into (models/decoder.c). */
    for (size_t i = 0; i < m->tensors.count; i++) {
        el_tensor *t = &m->tensors.items[i];
        t->data = (ring && t->stream_layer > ring->first ? ring->slot[0] : L.weights) +
                  t->arena_offset;
        t->x8 = false;
    }
    m->stream = ring;
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
