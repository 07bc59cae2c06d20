/* stream.c - layer streaming: the streamed plan's weights layout and the ring of layer
 * slots an I/O thread reads into while the forward pass computes from the other slot. */
#include "arena/arena.h"
#include "loader/load_impl.h"
#include "loader/stream.h"

#include <string.h>

static const char *const mode_names[] = {"off", "auto", "on"};

const char *el_stream_mode_name(el_stream_mode mode) {
    return (unsigned)mode < 3 ? mode_names[mode] : "unknown";
}

el_status el_stream_parse(const char *text, el_stream_mode *out) {
    for (int i = 0; text && i < 3; i++)
        if (!strcmp(text, mode_names[i])) {
            *out = (el_stream_mode)i;
            return EL_OK;
        }
    return el_errorf(EL_E_USAGE, "--stream %s: expected auto, on or off", text ? text : "");
}

/* Places a tensor of bytes (in the arena) at the next 64-byte boundary of *end. */
static el_status place_at(const el_model *m, uint64_t *end, uint64_t bytes, uint64_t *off) {
    if (!el_align_up_u64(*end, EL_TENSOR_ALIGN, off) || !el_add_u64(*off, bytes, end))
        return el_errorf(EL_E_INVALID, "%s: weights add up past 2^64 bytes", m->path);
    return EL_OK;
}

el_status el_stream_layout(const el_model *m, el_dtype target, el_tensor *place,
                           el_stream_shape *out) {
    memset(out, 0, sizeof *out);
    const el_tensor *items = m->tensors.items;
    for (size_t i = 0; i < m->tensors.count; i++)
        if (items[i].stream_layer > out->layers) out->layers = items[i].stream_layer;
    /* Layer 0 of this walk: the resident tensors; then each layer from its slot's start. */
    for (uint32_t l = 0; l <= out->layers; l++) {
        uint64_t end = 0, off = 0;
        for (size_t i = 0; i < m->tensors.count; i++) {
            const el_tensor *t = &items[i];
            if (t->stream_layer != l) continue;
            if (l && el_plan_staged(t, target))
                return el_errorf(EL_E_UNSUPPORTED, "%s: tensor '%s' would be %s at load "
                                 "(%s): streamed layers are read as stored in this version; "
                                 "load the layers as stored (no --dtype) or use --stream off",
                                 m->path, t->name, t->transpose2d ? "transposed" : "converted",
                                 t->transpose2d ? "GPT-2's Conv1D layout"
                                                : el_dtype_name(el_plan_tensor_dtype(t, target)));
            uint64_t bytes = 0;
            el_status s = el_plan_tensor_bytes(t, target, &bytes);
            if (s == EL_OK) s = place_at(m, &end, bytes, &off);
            if (s != EL_OK) return s;
            uint64_t *read = l ? &out->pass_bytes : &out->resident_read;
            if (!el_add_u64(*read, t->nbytes, read))
                return el_errorf(EL_E_INVALID, "%s: weights add up past 2^64 bytes", m->path);
            if (place) {
                place[i].arena_offset = off;
                place[i].loaded_dtype = el_plan_tensor_dtype(t, target);
            }
        }
        if (l == 0) out->resident_bytes = end;
        else if (end > out->slot_bytes) out->slot_bytes = end;
    }
    return EL_OK;
}

uint64_t el_stream_block_bytes(void) {
    return (sizeof(el_stream) + EL_ALIGN_IO - 1) / EL_ALIGN_IO * EL_ALIGN_IO;
}

el_status el_plan_stream(const el_model *m, el_stream_mode mode, uint64_t arena_bytes,
                         el_plan *p) {
    if (!m || !p) return el_errorf(EL_E_USAGE, "el_plan_stream: NULL argument");
    if ((unsigned)mode > EL_STREAM_ON)
        return el_errorf(EL_E_USAGE, "el_plan_stream: unknown mode %d", (int)mode);
    if (mode == EL_STREAM_OFF || p->streamed) return EL_OK;
    if (mode == EL_STREAM_AUTO && p->total_bytes <= arena_bytes) return EL_OK;
    if (m->image)
        return el_errorf(EL_E_UNSUPPORTED, "%s: an .elimg image's LZ4 chunks are not streamed "
                         "by layer in this version; stream the safetensors or GGUF model, or "
                         "use --stream off", m->path);
    if (p->params.memory != EL_MEMORY_HOST)
        return el_errorf(EL_E_UNSUPPORTED, "%s: streamed layers run on the CPU only in this "
                         "version (the plan is for CUDA %s memory); use --device cpu or "
                         "--stream off", m->path, el_memory_name(p->params.memory));
    el_stream_shape sh;
    el_status s = el_stream_layout(m, p->params.dtype, NULL, &sh);
    if (s != EL_OK) return s;
    if (sh.layers == 0)
        return el_errorf(EL_E_UNSUPPORTED, "%s: model family '%s' has no decoder layers to "
                         "stream (streaming runs decoders); use --stream off", m->path,
                         m->family ? m->family->name : "generic");
    /* The load carves resident tensors, the control block and the slots, each on a page. */
    uint64_t w = 0, piece = 0;
    bool ok = el_align_up_u64(sh.resident_bytes, EL_ALIGN_IO, &w) &&
              el_add_u64(w, el_stream_block_bytes(), &w) &&
              el_align_up_u64(sh.slot_bytes, EL_ALIGN_IO, &piece) &&
              el_mul_u64(piece, EL_STREAM_SLOTS, &piece) && el_add_u64(w, piece, &w);
    if (!ok) return el_errorf(EL_E_NOFIT, "%s: the streamed weights region overflows", m->path);
    /* Staging loads only the resident tensors now: its chunk follows the largest of them
     * (as el_plan_make sizes it: at least 64 KiB, at most the chunk asked for). */
    uint64_t largest = 0, chunk = p->params.chunk_bytes, staging = 0;
    for (size_t i = 0; i < m->tensors.count; i++)
        if (!m->tensors.items[i].stream_layer && m->tensors.items[i].nbytes > largest)
            largest = m->tensors.items[i].nbytes;
    if (el_align_up_u64(largest, EL_ALIGN_IO, &largest) && largest < chunk)
        chunk = largest < 64u * 1024u ? 64u * 1024u : largest;
    if (chunk < p->params.chunk_bytes &&
        el_mul_u64(chunk + EL_ALIGN_IO, EL_STAGING_SLOTS, &staging) &&
        staging < p->region_bytes[EL_REGION_STAGING]) {
        p->total_bytes -= p->region_bytes[EL_REGION_STAGING] - staging;
        p->region_bytes[EL_REGION_STAGING] = staging;
        p->params.chunk_bytes = chunk;
    }
    p->total_bytes -= p->region_bytes[EL_REGION_WEIGHTS];
    p->region_bytes[EL_REGION_WEIGHTS] = w;
    if (!el_add_u64(p->total_bytes, w, &p->total_bytes))
        return el_errorf(EL_E_NOFIT, "plan: total overflows");
    p->read_bytes = sh.resident_read;
    p->streamed = true;
    p->stream_slot_bytes = sh.slot_bytes;
    p->stream_pass_bytes = sh.pass_bytes;
    p->stream_layers = sh.layers;
    return EL_OK;
}

/* ---- the ring --------------------------------------------------------------------------- */

/* Reads layer l's tensors into slot buf; *n: bytes read. */
static el_status read_layer(el_stream *S, uint32_t l, uint8_t *buf, uint64_t *n) {
    el_model *m = S->m;
    *n = 0;
    for (size_t i = 0; i < m->tensors.count; i++) {
        el_tensor *t = &m->tensors.items[i];
        if (t->stream_layer != l + 1) continue;
        el_status s = el_file_read_at(&m->files[t->file], buf + t->arena_offset,
                                      (size_t)t->nbytes, t->offset);
        if (s != EL_OK) return s;
        *n += t->nbytes;
    }
    return EL_OK;
}

/* A slot with a request not yet read, or -1. Called with mu held. */
static int pending(const el_stream *S) {
    for (unsigned k = 0; k < EL_STREAM_SLOTS; k++)
        if (S->want[k] >= 0 && S->want[k] != S->have[k]) return (int)k;
    return -1;
}

static void *io_main(void *arg) {
    el_stream *S = arg;
    pthread_mutex_lock(&S->mu);
    for (;;) {
        int k;
        while (!S->stop && (k = pending(S)) < 0) pthread_cond_wait(&S->cv, &S->mu);
        if (S->stop) break;
        const int32_t l = S->want[k];
        S->have[k] = -1; /* being overwritten */
        S->busy = true;
        pthread_mutex_unlock(&S->mu);
        const double t0 = el_now();
        uint64_t n = 0;
        el_status s = read_layer(S, (uint32_t)l, S->slot[k], &n);
        pthread_mutex_lock(&S->mu);
        S->io_seconds += el_now() - t0;
        S->busy = false;
        if (s == EL_OK) {
            S->have[k] = l;
            S->bytes_read += n;
            S->layers_read++;
        } else {
            S->want[k] = -1;
            S->err = s;
            strncpy(S->msg, el_last_error(), sizeof S->msg - 1);
            S->msg[sizeof S->msg - 1] = '\0';
        }
        pthread_cond_broadcast(&S->cv);
    }
    pthread_mutex_unlock(&S->mu);
    return NULL;
}

el_status el_stream_start(el_stream *S) {
    if (S->running)
        return el_errorf(EL_E_USAGE, "%s: a session is already running over this streamed "
                         "model (one at a time: its layer ring is shared)", S->m->path);
    pthread_mutex_init(&S->mu, NULL);
    pthread_cond_init(&S->cv, NULL);
    S->stop = S->busy = false;
    S->err = EL_OK;
    S->want[0] = 0; /* the first pass's first layer, at once */
    S->want[1] = S->have[0] = S->have[1] = -1;
    S->cur = 0;
    S->bytes_read = S->layers_read = 0;
    S->io_seconds = S->wait_seconds = 0;
    el_status s = el_thread_start(&S->io, io_main, S);
    if (s != EL_OK) {
        pthread_cond_destroy(&S->cv);
        pthread_mutex_destroy(&S->mu);
        return s;
    }
    S->running = true;
    return EL_OK;
}

void el_stream_stop(el_stream *S) {
    if (!S || !S->running) return;
    pthread_mutex_lock(&S->mu);
    S->stop = true;
    pthread_cond_broadcast(&S->cv);
    pthread_mutex_unlock(&S->mu);
    el_thread_join(&S->io);
    pthread_cond_destroy(&S->cv);
    pthread_mutex_destroy(&S->mu);
    S->running = false;
}

el_status el_stream_acquire(el_stream *S, uint32_t l, unsigned *slot) {
    pthread_mutex_lock(&S->mu);
    const unsigned k = S->cur;
    if (S->want[k] != (int32_t)l) {
        S->want[k] = (int32_t)l; /* not read ahead (the first pass, or after a failure) */
        pthread_cond_broadcast(&S->cv);
    }
    const double t0 = el_now();
    while (S->have[k] != (int32_t)l && S->err == EL_OK) pthread_cond_wait(&S->cv, &S->mu);
    S->wait_seconds += el_now() - t0;
    if (S->err != EL_OK) {
        el_status s = el_error_set(S->err, S->msg);
        S->err = EL_OK;
        pthread_mutex_unlock(&S->mu);
        return s;
    }
    /* The other slot held layer l - 1, computed by now: read the next layer into it (the
     * last layer reads the next pass's first). */
    S->cur = (k + 1) % EL_STREAM_SLOTS;
    S->want[S->cur] = (int32_t)((l + 1) % S->n_layers);
    pthread_cond_broadcast(&S->cv);
    pthread_mutex_unlock(&S->mu);
    *slot = k;
    return EL_OK;
}

void el_stream_stats_get(el_stream *S, el_stream_stats *out) {
    memset(out, 0, sizeof *out);
    if (!S) return;
    out->streamed = true;
    out->slot_bytes = S->slot_bytes;
    if (!S->running) return;
    pthread_mutex_lock(&S->mu);
    while ((S->busy || pending(S) >= 0) && S->err == EL_OK) pthread_cond_wait(&S->cv, &S->mu);
    out->bytes_read = S->bytes_read;
    out->layers_read = S->layers_read;
    out->io_seconds = S->io_seconds;
    out->wait_seconds = S->wait_seconds;
    pthread_mutex_unlock(&S->mu);
}
