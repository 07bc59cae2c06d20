/* stream.c - layer streaming: the streamed plan's weights layout and the ring of layer
 * slots an I/O thread reads into (converting, transposing, decoding .elimg chunks through
 * the stage) while the forward pass computes from another slot. */
#include "arena/arena.h"
#include "loader/image.h"
#include "loader/load_impl.h"
#include "loader/stream.h"

#include <stdio.h>
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

static uint32_t group_of(const el_tensor *t, uint32_t pinned) {
    return t->stream_layer <= pinned ? 0 : t->stream_layer;
}

/* An image: the stored bytes of the chunks group g's tensors touch, a chunk counted again
 * only when another chunk came between (as the ring decodes them: read_image_group). */
static uint64_t image_group_stored(const el_model *m, uint32_t g, uint32_t pinned) {
    const el_img_meta *meta = &m->image->meta;
    const uint64_t cs = meta->h.chunk_size;
    int64_t last = -1;
    uint64_t sum = 0;
    for (size_t i = 0; i < m->tensors.count; i++) {
        const el_tensor *t = &m->tensors.items[i];
        if (group_of(t, pinned) != g || t->nbytes == 0) continue;
        for (uint64_t ci = t->offset / cs; ci <= (t->offset + t->nbytes - 1) / cs; ci++)
            if ((int64_t)ci != last && ci < meta->h.chunk_count) {
                sum += meta->chunks[ci].stored_size;
                last = (int64_t)ci;
            }
    }
    return sum;
}

el_status el_stream_layout(const el_model *m, el_dtype target, uint32_t pinned, el_tensor *place,
                           el_stream_shape *out) {
    memset(out, 0, sizeof *out);
    const el_tensor *items = m->tensors.items;
    for (size_t i = 0; i < m->tensors.count; i++)
        if (items[i].stream_layer > out->layers) out->layers = items[i].stream_layer;
    /* Group 0 of this walk: the resident tensors; then each streamed layer from its slot's
     * start. */
    for (uint32_t l = 0; l <= out->layers; l++) {
        if (l && l <= pinned) continue;
        uint64_t end = 0, off = 0;
        for (size_t i = 0; i < m->tensors.count; i++) {
            const el_tensor *t = &items[i];
            if (group_of(t, pinned) != l) continue;
            uint64_t bytes = 0;
            el_status s = el_plan_tensor_bytes(t, target, &bytes);
            if (s == EL_OK) s = place_at(m, &end, bytes, &off);
            if (s != EL_OK) return s;
            uint64_t *read = l ? &out->pass_bytes : &out->resident_read;
            if (!m->image && !el_add_u64(*read, t->nbytes, read))
                return el_errorf(EL_E_INVALID, "%s: weights add up past 2^64 bytes", m->path);
            if (l && t->nbytes > out->tensor_max) out->tensor_max = t->nbytes;
            if (l && el_plan_staged(t, target) && t->nbytes > out->staged_max)
                out->staged_max = t->nbytes;
            if (place) {
                place[i].arena_offset = off;
                place[i].loaded_dtype = el_plan_tensor_dtype(t, target);
            }
        }
        if (m->image) { /* chunk stored sizes: each fits 32 bits, at most 2^24 of them */
            const uint64_t n = image_group_stored(m, l, pinned);
            if (l) out->pass_bytes += n;
            else out->resident_read = n;
        }
        if (l == 0) out->resident_bytes = end;
        else if (end > out->slot_bytes) out->slot_bytes = end;
    }
    return EL_OK;
}

uint64_t el_stream_block_bytes(void) {
    return (sizeof(el_stream) + EL_ALIGN_IO - 1) / EL_ALIGN_IO * EL_ALIGN_IO;
}

/* p (a resident plan) re-planned as streamed with the first `pinned` layers resident and
 * at most `slots` slots. */
static el_status stream_apply(const el_model *m, const el_stream_params *sp, uint32_t slots,
                              uint32_t pinned, el_plan *p) {
    el_stream_shape sh;
    el_status s = el_stream_layout(m, p->params.dtype, pinned, NULL, &sh);
    if (s != EL_OK) return s;
    /* A ring of as many slots as layers would keep them all: at most one fewer (a ring of
     * 2 over 1 or 2 layers keeps them, as it must). */
    const uint32_t streamed = sh.layers - pinned;
    if (slots >= streamed) slots = streamed <= 3 ? 2 : streamed - 1;
    /* The stage: an image's stored and decoded chunk (stored <= raw, the table parser
     * checks); else one piece of the largest tensor that goes through it, at most a chunk,
     * plus a page for an O_DIRECT window. */
    uint64_t stage = 0, piece = sp->direct ? sh.tensor_max : sh.staged_max, w = 0, ring = 0;
    bool ok = true;
    if (m->image) {
        ok = el_align_up_u64(m->image->meta.h.chunk_size, EL_ALIGN_IO, &stage) &&
             el_mul_u64(stage, 2, &stage);
    } else if (piece) {
        ok = el_align_up_u64(piece, EL_ALIGN_IO, &piece);
        if (piece < 64u * 1024u) piece = 64u * 1024u;
        if (piece > p->params.chunk_bytes) piece = p->params.chunk_bytes;
        stage = piece + EL_DIRECT_ALIGN;
    }
    /* The load carves resident tensors, the control block, the slots and the stage, each
     * on a page. A GPU plan: the resident tensors and the slots in the (GPU) weights region;
     * the block, the host slots and the stage in staging (host), kept after the load. */
    const bool gpu = p->params.memory != EL_MEMORY_HOST;
    uint64_t host = 0, slot = 0;
    ok = ok && el_align_up_u64(sh.resident_bytes, EL_ALIGN_IO, &w) &&
         el_align_up_u64(sh.slot_bytes, EL_ALIGN_IO, &slot) && el_mul_u64(slot, slots, &ring) &&
         el_add_u64(w, ring, &w) &&
         (!gpu || (el_mul_u64(slot, EL_STREAM_HOST_SLOTS, &host) && el_add_u64(host, stage, &host)));
    if (ok && !gpu) ok = el_add_u64(w, el_stream_block_bytes() + stage, &w);
    if (!ok) return el_errorf(EL_E_NOFIT, "%s: the streamed weights region overflows", m->path);
    /* Staging loads only the resident tensors now (an image's go through the stage): its
     * chunk follows the largest of them (as el_plan_make sizes it: at least 64 KiB, at most
     * the chunk asked for). */
    uint64_t largest = 0, chunk = p->params.chunk_bytes, staging = 0;
    for (size_t i = 0; i < m->tensors.count; i++)
        if (!group_of(&m->tensors.items[i], pinned) && m->tensors.items[i].nbytes > largest)
            largest = m->tensors.items[i].nbytes;
    if (el_align_up_u64(largest, EL_ALIGN_IO, &largest) && largest < chunk)
        chunk = largest < 64u * 1024u ? 64u * 1024u : largest;
    /* Device memory: the load's pinned upload buffers too (as el_plan_make: 2 per slot). */
    const uint64_t up = p->params.memory == EL_MEMORY_CUDA_DEVICE ? 2 * EL_STAGING_SLOTS : 0;
    if (m->image) {
        p->total_bytes -= p->region_bytes[EL_REGION_STAGING];
        p->region_bytes[EL_REGION_STAGING] = 0;
    } else if (chunk < p->params.chunk_bytes &&
               el_mul_u64(chunk + EL_ALIGN_IO, EL_STAGING_SLOTS, &staging) &&
               staging + up * chunk < p->region_bytes[EL_REGION_STAGING]) {
        staging += up * chunk; /* chunk < the chunk asked for: no overflow */
        p->total_bytes -= p->region_bytes[EL_REGION_STAGING] - staging;
        p->region_bytes[EL_REGION_STAGING] = staging;
        p->params.chunk_bytes = chunk;
    }
    if (gpu) { /* staging: the block, then the load's buffers or (after) the host side */
        const uint64_t was = p->region_bytes[EL_REGION_STAGING];
        uint64_t now = was > host ? was : host;
        if (!el_add_u64(now, el_stream_block_bytes(), &now) ||
            !el_add_u64(p->total_bytes - was, now, &p->total_bytes))
            return el_errorf(EL_E_NOFIT, "plan: total overflows");
        p->region_bytes[EL_REGION_STAGING] = now;
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
    p->stream_slots = slots;
    p->stream_pinned = pinned;
    p->stream_stage_bytes = stage;
    p->stream_direct = sp->direct;
    return EL_OK;
}

el_status el_plan_stream_ex(const el_model *m, const el_stream_params *sp, uint64_t arena_bytes,
                            el_plan *p) {
    if (!m || !p || !sp) return el_errorf(EL_E_USAGE, "el_plan_stream: NULL argument");
    if ((unsigned)sp->mode > EL_STREAM_ON)
        return el_errorf(EL_E_USAGE, "el_plan_stream: unknown mode %d", (int)sp->mode);
    const uint32_t slots = sp->slots ? sp->slots : EL_STREAM_SLOTS;
    if (slots < 2 || slots > EL_STREAM_SLOTS_MAX)
        return el_errorf(EL_E_USAGE, "--slots %u: the ring has 2 to %u slots (one computed, "
                         "the others read ahead)", slots, EL_STREAM_SLOTS_MAX);
    if (sp->mode == EL_STREAM_OFF || p->streamed) return EL_OK;
    if (sp->mode == EL_STREAM_AUTO && p->total_bytes <= arena_bytes) return EL_OK;
    el_stream_shape sh;
    el_status s = el_stream_layout(m, p->params.dtype, 0, NULL, &sh);
    if (s != EL_OK) return s;
    if (sh.layers == 0)
        return el_errorf(EL_E_UNSUPPORTED, "%s: model family '%s' has no layers to stream "
                         "(streaming runs decoders and BERT encoders); use --stream off",
                         m->path, m->family ? m->family->name : "generic");
    if (sp->pin_layers != EL_STREAM_PIN_AUTO) {
        if (sp->pin_layers >= sh.layers)
            return el_errorf(EL_E_USAGE, "--pin-layers %u: the model has %u layers; pinning "
                             "every layer is the resident plan (--stream off)",
                             sp->pin_layers, sh.layers);
        return stream_apply(m, sp, slots, sp->pin_layers, p);
    }
    /* Auto: the most layers that still fit arena_bytes (pinning grows the plan), at least
     * one layer streamed; none without a budget. */
    el_plan best = *p;
    if ((s = stream_apply(m, sp, slots, 0, &best)) != EL_OK) return s;
    for (uint32_t k = 1; arena_bytes != UINT64_MAX && k < sh.layers; k++) {
        el_plan q = *p;
        if (stream_apply(m, sp, slots, k, &q) != EL_OK || q.total_bytes > arena_bytes) break;
        best = q;
    }
    *p = best;
    return EL_OK;
}

el_status el_plan_stream(const el_model *m, el_stream_mode mode, uint64_t arena_bytes,
                         el_plan *p) {
    const el_stream_params sp = {mode, EL_STREAM_SLOTS, 0, false};
    return el_plan_stream_ex(m, &sp, arena_bytes, p);
}

/* ---- the ring --------------------------------------------------------------------------- */

/* Reads group g (0: the resident tensors) of an image into base: each chunk its tensors
 * touch is read into the stage's lower half, checked and decoded into the upper half (as
 * the resident image load does: el_img_decode) and the tensors' parts copied into place. */
static el_status read_image_group(el_stream *S, uint32_t g, uint8_t *base, uint64_t *n) {
    el_model *m = S->m;
    const el_img_meta *meta = &m->image->meta;
    const uint64_t cs = meta->h.chunk_size, half = S->stage_bytes / 2;
    uint8_t *stored = S->stage, *raw = S->stage + half;
    el_file *f = &m->files[0];
    el_file df;
    if (S->direct_fd[0] >= 0) {
        df = *f;
        df.fd = S->direct_fd[0];
        df.direct = true;
        f = &df;
    }
    S->staged_chunk = -1;
    for (size_t i = 0; i < m->tensors.count; i++) {
        const el_tensor *t = &m->tensors.items[i];
        if (group_of(t, S->first) != g) continue;
        uint8_t *dst = base + t->arena_offset;
        for (uint64_t pos = t->offset, end = t->offset + t->nbytes; pos < end;) {
            const uint64_t ci = pos / cs;
            const el_img_chunk *c = &meta->chunks[ci];
            if ((int64_t)ci != S->staged_chunk) {
                size_t len = c->stored_size;
                if (f->direct) len = (len + EL_DIRECT_ALIGN - 1) & ~(size_t)(EL_DIRECT_ALIGN - 1);
                char where[512];
                el_status s = el_file_read_at(f, stored, len, m->image->base + c->offset);
                if (s != EL_OK) {
                    char why[700];
                    snprintf(why, sizeof why, "%s", el_last_error());
                    return el_errorf(s, "%s; reading %s", why,
                                     el_img_chunk_where(meta, &m->tensors, (uint32_t)ci, where,
                                                        sizeof where));
                }
                const int r = el_img_decode(c, stored, raw, stored);
                if (r)
                    return el_errorf(EL_E_INVALID, "%s: %s: %s; the image is corrupt: re-flash "
                                     "or re-pack it", f->path,
                                     el_img_chunk_where(meta, &m->tensors, (uint32_t)ci, where,
                                                        sizeof where),
                                     r == 1 ? "CRC32C of the stored bytes does not match"
                                     : r == 2 ? "LZ4 data is corrupt"
                                              : "CRC32C of the decoded bytes does not match");
                S->staged_chunk = (int64_t)ci;
                *n += c->stored_size;
            }
            const uint64_t stop = (ci + 1) * cs < end ? (ci + 1) * cs : end;
            memcpy(dst + (pos - t->offset), raw + (pos - ci * cs), (size_t)(stop - pos));
            pos = stop;
        }
    }
    return EL_OK;
}

el_status el_stream_read_resident(el_stream *S, uint8_t *base, uint64_t *bytes) {
    *bytes = 0;
    for (uint32_t i = 0; i < S->m->file_count; i++) S->direct_fd[i] = -1;
    return read_image_group(S, 0, base, bytes);
}

/* ---- a layer's pieces: read by the I/O thread and the helpers, each into its buffer ---- */

/* t's bytes go straight from the file into the slot (buffered, as stored). */
static bool straight(const el_stream *S, const el_tensor *t) {
    return S->direct_fd[t->file] < 0 && !el_plan_staged(t, S->target);
}

/* The bytes of a buffer a piece of t may fill: an O_DIRECT window needs a page either side. */
static uint64_t piece_room(const el_stream *S, const el_tensor *t) {
    const uint64_t slack = S->direct_fd[t->file] >= 0 ? 2 * EL_DIRECT_ALIGN : EL_DIRECT_ALIGN;
    return S->buf_bytes > slack ? S->buf_bytes - slack : 0;
}

/* The job's next piece: tensor *ti, elements [*e, *e + *cnt) (a straight tensor: all of
 * it); false when none is left (job_t is then the tensor count). Called with job_mu held. */
static bool next_piece(el_stream *S, size_t *ti, uint64_t *e, uint64_t *cnt) {
    const el_model *m = S->m;
    for (; S->job_t < m->tensors.count; S->job_t++, S->job_e = 0) {
        const el_tensor *t = &m->tensors.items[S->job_t];
        if (t->stream_layer != S->job_layer || t->nbytes == 0) continue;
        *ti = S->job_t;
        if (straight(S, t)) {
            *e = 0;
            *cnt = t->nbytes;
            S->job_t++;
            return true;
        }
        const uint64_t total = t->nbytes / el_dtype_block_bytes(t->dtype);
        const uint64_t per = el_load_piece_elems(t, piece_room(S, t)); /* > 0: read_layer */
        if (S->job_e >= total) continue;
        *e = S->job_e;
        *cnt = total - *e < per ? total - *e : per;
        S->job_e += *cnt;
        return true;
    }
    return false;
}

/* Reads one piece (as next_piece gave it) into buf and places it in the slot dst (as the
 * resident load does: el_load_place); a straight tensor is read into place. */
static el_status read_piece(el_stream *S, size_t ti, uint64_t e, uint64_t cnt, uint8_t *buf,
                            uint8_t *dst) {
    const el_tensor *t = &S->m->tensors.items[ti];
    el_file *f = &S->m->files[t->file];
    if (straight(S, t)) return el_file_read_at(f, dst + t->arena_offset, (size_t)cnt, t->offset);
    const uint64_t es = el_dtype_block_bytes(t->dtype), off = t->offset + e * es;
    uint64_t skew = 0;
    el_status s;
    if (S->direct_fd[t->file] >= 0) {
        el_file df = *f;
        df.fd = S->direct_fd[t->file];
        df.direct = true;
        s = el_load_read_direct(&df, f, buf, off, cnt * es, &skew);
    } else {
        s = el_file_read_at(f, buf, (size_t)(cnt * es), off);
    }
    if (s == EL_OK) el_load_place(t, buf + skew, dst + t->arena_offset, e, cnt);
    return s;
}

/* Reads and places the job's pieces through buffer r until none is left or one failed.
 * Called and returns with job_mu held. */
static void work(el_stream *S, unsigned r) {
    uint8_t *buf = S->stage ? S->stage + r * S->buf_bytes : NULL;
    size_t ti;
    uint64_t e, cnt;
    while (S->job_err == EL_OK && next_piece(S, &ti, &e, &cnt)) {
        uint8_t *dst = S->job_dst;
        S->job_active++;
        pthread_mutex_unlock(&S->job_mu);
        const el_status s = read_piece(S, ti, e, cnt, buf, dst);
        pthread_mutex_lock(&S->job_mu);
        S->job_active--;
        if (s != EL_OK && S->job_err == EL_OK) {
            S->job_err = s;
            snprintf(S->job_msg, sizeof S->job_msg, "%s", el_last_error());
        }
    }
    if (S->job_active == 0) pthread_cond_broadcast(&S->job_cv);
}

static bool job_open(const el_stream *S) {
    return S->job_err == EL_OK && S->job_t < S->m->tensors.count;
}

static void *helper_main(void *arg) {
    struct el_stream_helper *h = arg;
    el_stream *S = h->S;
    pthread_mutex_lock(&S->job_mu);
    for (;;) {
        while (!S->job_stop && !job_open(S)) pthread_cond_wait(&S->job_cv, &S->job_mu);
        if (S->job_stop) break;
        work(S, h->r);
    }
    pthread_mutex_unlock(&S->job_mu);
    return NULL;
}

/* Reads streamed layer l's tensors into slot buf: as stored straight into place, or
 * through the stage in pieces copied, converted or transposed into place, every piece of
 * a file opened with O_DIRECT too; those pieces are shared by the I/O thread and the
 * helpers. *n: bytes read. */
static el_status read_layer(el_stream *S, uint32_t l, uint8_t *buf, uint64_t *n) {
    el_model *m = S->m;
    *n = 0;
    if (m->image) return read_image_group(S, l + 1, buf, n);
    for (size_t i = 0; i < m->tensors.count; i++) {
        const el_tensor *t = &m->tensors.items[i];
        if (t->stream_layer != l + 1) continue;
        if (t->nbytes && !straight(S, t) && el_load_piece_elems(t, piece_room(S, t)) == 0)
            return el_errorf(EL_E_NOFIT, "%s: tensor '%s': the stream stage (%llu bytes per "
                             "reader) holds no piece of it", m->path, t->name,
                             (unsigned long long)S->buf_bytes);
        *n += t->nbytes;
    }
    pthread_mutex_lock(&S->job_mu);
    S->job_layer = l + 1;
    S->job_dst = buf;
    S->job_t = 0;
    S->job_e = 0;
    S->job_err = EL_OK;
    pthread_cond_broadcast(&S->job_cv);
    work(S, 0);
    while (S->job_active) pthread_cond_wait(&S->job_cv, &S->job_mu);
    S->job_t = m->tensors.count; /* closed, also after a failure */
    const el_status s = S->job_err == EL_OK ? EL_OK : el_error_set(S->job_err, S->job_msg);
    pthread_mutex_unlock(&S->job_mu);
    return s;
}

/* A GPU plan: layer l into the next host slot (once the copy out of it has run), then its
 * copy into GPU slot k queued on the copy stream, after the kernels that read k before
 * (slot_free[k], recorded before k was asked for) and before those that will
 * (slot_ready[k]). */
static el_status read_layer_gpu(el_stream *S, uint32_t l, unsigned k, uint64_t *n) {
    const unsigned h = S->host_next;
    el_status s = EL_OK;
    if (S->host_busy[h] && (s = el_gpu_event_wait(S->host_free[h])) != EL_OK) return s;
    S->host_busy[h] = false;
    if ((s = read_layer(S, l, S->host[h], n)) != EL_OK) return s;
    if (S->own_copy) s = el_gpu_stream_wait(S->copy, S->slot_free[k]);
    if (s == EL_OK) s = el_gpu_copy_async(S->slot[k], S->host[h], S->slot_bytes, S->copy);
    if (s == EL_OK) s = el_gpu_event_record(S->slot_ready[k], S->copy);
    if (s == EL_OK) s = el_gpu_event_record(S->host_free[h], S->copy);
    if (s != EL_OK) return s;
    S->host_busy[h] = true;
    S->host_next = (h + 1) % EL_STREAM_HOST_SLOTS;
    return EL_OK;
}

/* The slot the I/O thread reads next: the first in ring order from cur whose request is
 * not read, or -1. Called with mu held. */
static int pending(const el_stream *S) {
    for (unsigned j = 0; j < S->n_slots; j++) {
        const unsigned k = (S->cur + j) % S->n_slots;
        if (S->want[k] >= 0 && S->want[k] != S->have[k]) return (int)k;
    }
    return -1;
}

static void *io_main(void *arg) {
    el_stream *S = arg;
    pthread_mutex_lock(&S->mu);
    for (;;) {
        int k = -1; /* set whenever the loop leaves with !S->stop */
        while (!S->stop && (k = pending(S)) < 0) pthread_cond_wait(&S->cv, &S->mu);
        if (S->stop) break;
        const int32_t l = S->want[k];
        S->have[k] = -1; /* being overwritten */
        S->busy = true;
        pthread_mutex_unlock(&S->mu);
        const double t0 = el_now();
        uint64_t n = 0;
        el_status s = S->gpu ? read_layer_gpu(S, (uint32_t)l, (unsigned)k, &n)
                             : read_layer(S, (uint32_t)l, S->slot[k], &n);
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

/* Layer d places after streamed layer l, wrapping to the first streamed one. */
static int32_t ahead(const el_stream *S, uint32_t l, uint32_t d) {
    const uint32_t ring = S->n_layers - S->first;
    return (int32_t)(S->first + (l - S->first + d) % ring);
}

/* O_DIRECT descriptors for the plain files the plan asked for (an image only when it
 * starts on a page); a file system that refuses O_DIRECT keeps buffered reads. */
static void open_direct(el_stream *S) {
    el_model *m = S->m;
    S->direct = false;
    for (uint32_t i = 0; i < m->file_count; i++) {
        S->direct_fd[i] = -1;
        const el_file *f = &m->files[i];
        if (!S->want_direct || f->fd < 0 || f->window || f->handle ||
            (m->image && m->image->base % EL_DIRECT_ALIGN))
            continue;
        el_file d;
        if (el_file_open(&d, f->path, EL_FILE_DIRECT) == EL_OK) {
            S->direct_fd[i] = d.fd;
            S->direct = true;
        }
    }
}

static void close_direct(el_stream *S) {
    for (uint32_t i = 0; i < S->m->file_count; i++) {
        if (S->direct_fd[i] < 0) continue;
        el_file d = S->m->files[i];
        d.fd = S->direct_fd[i];
        d.direct = true;
        el_file_close(&d);
        S->direct_fd[i] = -1;
    }
    S->direct = false;
}

/* The stage split among the readers (O_DIRECT files, not an image): as many buffers as
 * EL_STREAM_DEPTH allows, each at least 64 KiB of piece beside its two pages. */
static unsigned split_stage(el_stream *S) {
    unsigned n = S->direct && !S->m->image ? EL_STREAM_DEPTH : 1;
    while (n > 1 && S->stage_bytes / n < 64u * 1024u + 2 * EL_DIRECT_ALIGN) n--;
    S->buf_bytes = S->stage_bytes / n & ~(uint64_t)(EL_DIRECT_ALIGN - 1);
    return n;
}

/* Stops and joins the helpers (the I/O thread has stopped: no job is open). */
static void helpers_stop(el_stream *S) {
    pthread_mutex_lock(&S->job_mu);
    S->job_stop = true;
    pthread_cond_broadcast(&S->job_cv);
    pthread_mutex_unlock(&S->job_mu);
    for (unsigned r = 1; r < S->n_bufs; r++) el_thread_join(&S->helper[r].thread);
    pthread_cond_destroy(&S->job_cv);
    pthread_mutex_destroy(&S->job_mu);
    S->n_bufs = 0;
}

/* Starts the helpers for split_stage's buffers; a helper that cannot start leaves its
 * buffer unused (fewer reads in flight). */
static void helpers_start(el_stream *S) {
    pthread_mutex_init(&S->job_mu, NULL);
    pthread_cond_init(&S->job_cv, NULL);
    S->job_stop = false;
    S->job_t = S->m->tensors.count;
    S->job_active = 0;
    S->job_err = EL_OK;
    const unsigned n = split_stage(S);
    for (S->n_bufs = 1; S->n_bufs < n; S->n_bufs++) {
        struct el_stream_helper *h = &S->helper[S->n_bufs];
        h->S = S;
        h->r = S->n_bufs;
        if (el_thread_start(&h->thread, helper_main, h) != EL_OK) break;
    }
}

/* Destroys a GPU ring's copy stream and events (after the I/O thread has stopped): its
 * copies land first. */
static void gpu_end(el_stream *S) {
    if (S->own_copy && S->copy) (void)el_gpu_sync(S->copy);
    if (S->compute) (void)el_gpu_sync(S->compute);
    if (S->own_copy) el_gpu_stream_destroy(S->copy);
    for (unsigned k = 0; k < EL_STREAM_SLOTS_MAX; k++) {
        el_gpu_event_destroy(S->slot_free[k]);
        el_gpu_event_destroy(S->slot_ready[k]);
        S->slot_free[k] = S->slot_ready[k] = NULL;
    }
    for (unsigned h = 0; h < EL_STREAM_HOST_SLOTS; h++) {
        el_gpu_event_destroy(S->host_free[h]);
        S->host_free[h] = NULL;
        S->host_busy[h] = false;
    }
    S->copy = S->compute = NULL;
    S->own_copy = false;
}

/* A GPU ring's copy stream (device memory) and events. */
static el_status gpu_begin(el_stream *S, el_gpu_stream *compute) {
    S->compute = S->copy = compute;
    S->host_next = 0;
    S->own_copy = S->device;
    el_status s = S->own_copy ? el_gpu_stream_create(&S->copy) : EL_OK;
    if (s != EL_OK) S->copy = NULL;
    for (unsigned k = 0; s == EL_OK && k < S->n_slots; k++)
        if ((s = el_gpu_event_create(&S->slot_free[k])) == EL_OK)
            s = el_gpu_event_create(&S->slot_ready[k]);
    for (unsigned h = 0; s == EL_OK && h < EL_STREAM_HOST_SLOTS; h++)
        s = el_gpu_event_create(&S->host_free[h]);
    if (s != EL_OK) gpu_end(S);
    return s;
}

el_status el_stream_start(el_stream *S, el_gpu_stream *compute) {
    if (S->running)
        return el_errorf(EL_E_USAGE, "%s: a session is already running over this streamed "
                         "model (one at a time: its layer ring is shared)", S->m->path);
    if (S->gpu != (compute != NULL))
        return el_errorf(EL_E_USAGE, "%s: the streamed plan was loaded for the %s; the session "
                         "runs on the %s (plan and session on the same device)", S->m->path,
                         S->gpu ? "GPU" : "CPU", compute ? "GPU" : "CPU");
    el_status s = compute ? gpu_begin(S, compute) : EL_OK;
    if (s != EL_OK) return s;
    pthread_mutex_init(&S->mu, NULL);
    pthread_cond_init(&S->cv, NULL);
    S->stop = S->busy = false;
    S->err = EL_OK;
    /* The first pass's first layers, at once: all slots but the one the first acquire
     * frees. */
    for (unsigned k = 0; k < S->n_slots; k++) {
        S->want[k] = k + 1 < S->n_slots ? ahead(S, S->first, k) : -1;
        S->have[k] = -1;
    }
    S->cur = 0;
    S->bytes_read = S->layers_read = 0;
    S->io_seconds = S->wait_seconds = 0;
    open_direct(S);
    helpers_start(S);
    s = el_thread_start(&S->io, io_main, S);
    if (s != EL_OK) {
        helpers_stop(S);
        close_direct(S);
        if (S->gpu) gpu_end(S);
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
    helpers_stop(S);
    if (S->gpu) gpu_end(S);
    close_direct(S);
    pthread_cond_destroy(&S->cv);
    pthread_mutex_destroy(&S->mu);
    S->running = false;
}

el_status el_stream_acquire(el_stream *S, uint32_t l, unsigned *slot) {
    pthread_mutex_lock(&S->mu);
    const unsigned k = S->cur;
    if (S->want[k] != (int32_t)l) {
        S->want[k] = (int32_t)l; /* not read ahead (after a failure) */
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
    /* The slot before this one held layer l - 1, computed by now (on a GPU: its kernels
     * queued, slot_free marks their end): read the layer n_slots - 1 further on into it
     * (past the last layer, the next pass's first ones). */
    const unsigned prev = (k + S->n_slots - 1) % S->n_slots;
    el_status s = S->gpu ? el_gpu_event_record(S->slot_free[prev], S->compute) : EL_OK;
    S->cur = (k + 1) % S->n_slots;
    if (s == EL_OK) S->want[prev] = ahead(S, l, S->n_slots - 1);
    pthread_cond_broadcast(&S->cv);
    pthread_mutex_unlock(&S->mu);
    /* The layer's kernels, queued after this, wait for its copy. */
    if (s == EL_OK && S->own_copy) s = el_gpu_stream_wait(S->compute, S->slot_ready[k]);
    *slot = k;
    return s;
}

const void *el_stream_in_slot(const el_stream *S, unsigned k, const void *p) {
    const uintptr_t lo = (uintptr_t)S->slot[0], hi = lo + S->slot_bytes, q = (uintptr_t)p;
    return q >= lo && q < hi ? S->slot[k] + (q - lo) : p;
}

void el_stream_stats_get(el_stream *S, el_stream_stats *out) {
    memset(out, 0, sizeof *out);
    if (!S) return;
    out->streamed = true;
    out->slot_bytes = S->slot_bytes;
    out->slots = S->n_slots;
    out->pinned = S->first;
    if (!S->running) return;
    pthread_mutex_lock(&S->mu);
    while ((S->busy || pending(S) >= 0) && S->err == EL_OK) pthread_cond_wait(&S->cv, &S->mu);
    out->bytes_read = S->bytes_read;
    out->layers_read = S->layers_read;
    out->io_seconds = S->io_seconds;
    out->wait_seconds = S->wait_seconds;
    out->direct = S->direct;
    pthread_mutex_unlock(&S->mu);
}
