/* image_ab.c - the A/B layout: two image slots on one target (device, partition or file)
 * and a small header, kept in two copies, naming the slot that holds the good image.
 * `flash --ab` writes the other slot, verifies it from what the target gives back, and only
 * then switches the header (the older copy first, then the other): a flash interrupted at
 * any point leaves a header that names a whole, verified image. Bytes in docs/FORMAT.md. */
#include "loader/image.h"
#include "platform/crc32c.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void put32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static void put64(uint8_t *p, uint64_t v) {
    for (int i = 0; i < 8; i++) p[i] = (uint8_t)(v >> (8 * i));
}
static uint32_t get32(const uint8_t *p) {
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--) v = v << 8 | p[i];
    return v;
}
static uint64_t get64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

/* Decodes one header copy; false if its magic, version, CRC or slot geometry is wrong. */
static bool ab_decode(const uint8_t *b, uint64_t target_size, el_image_ab *ab) {
    if (memcmp(b, EL_IMG_AB_MAGIC, 8) || get32(b + 8) != 1) return false;
    if (get32(b + EL_IMG_AB_HEADER_SIZE - 4) != el_crc32c(0, b, EL_IMG_AB_HEADER_SIZE - 4)) return false;
    ab->active = get32(b + 12);
    ab->generation = get64(b + 16);
    ab->slot_offset[0] = get64(b + 24);
    ab->slot_offset[1] = get64(b + 32);
    ab->slot_size = get64(b + 40);
    ab->image_size = get64(b + 48);
    uint64_t end;
    return ab->active <= 1 && ab->slot_size >= EL_IMG_ALIGN && ab->slot_size % EL_IMG_ALIGN == 0 &&
           ab->slot_offset[0] == 2 * EL_IMG_AB_COPY_STRIDE &&
           ab->slot_offset[1] == ab->slot_offset[0] + ab->slot_size && ab->image_size <= ab->slot_size &&
           el_add_u64(ab->slot_offset[1], ab->slot_size, &end) && end <= target_size;
}

static void ab_encode(const el_image_ab *ab, uint8_t *b) {
    memset(b, 0, EL_IMG_AB_HEADER_SIZE);
    memcpy(b, EL_IMG_AB_MAGIC, 8);
    put32(b + 8, 1);
    put32(b + 12, ab->active);
    put64(b + 16, ab->generation);
    put64(b + 24, ab->slot_offset[0]);
    put64(b + 32, ab->slot_offset[1]);
    put64(b + 40, ab->slot_size);
    put64(b + 48, ab->image_size);
    put32(b + EL_IMG_AB_HEADER_SIZE - 4, el_crc32c(0, b, EL_IMG_AB_HEADER_SIZE - 4));
}

/* Reads both copies: *found = whether either carries the magic; ab = the valid copy with
 * the higher generation (EL_E_INVALID when the magic is there but no copy is valid);
 * valid[i] says which copies are, gen[i] their generations. */
static el_status ab_read(el_file *f, bool *found, el_image_ab *ab, bool valid[2], uint64_t gen[2]) {
    uint8_t b[2][EL_IMG_AB_HEADER_SIZE];
    el_image_ab c[2];
    *found = false;
    valid[0] = valid[1] = false;
    for (int i = 0; i < 2; i++) {
        if (f->size < (uint64_t)i * EL_IMG_AB_COPY_STRIDE + EL_IMG_AB_HEADER_SIZE) continue;
        el_status s = el_file_read_at(f, b[i], EL_IMG_AB_HEADER_SIZE, (uint64_t)i * EL_IMG_AB_COPY_STRIDE);
        if (s != EL_OK) return s;
        *found |= !memcmp(b[i], EL_IMG_AB_MAGIC, 8);
        valid[i] = ab_decode(b[i], f->size, &c[i]);
        gen[i] = valid[i] ? c[i].generation : 0;
    }
    if (!valid[0] && !valid[1])
        return *found ? el_errorf(EL_E_INVALID, "%s: an A/B header is there but neither copy "
                                  "(at 0 and %u) is valid: CRC, version or slot geometry", f->path,
                                  EL_IMG_AB_COPY_STRIDE)
                      : EL_OK;
    int pick = !valid[0] ? 1 : !valid[1] ? 0 : c[1].generation > c[0].generation;
    *ab = c[pick];
    return EL_OK;
}

el_status el_image_ab_resolve(const char *path, uint64_t *offset, el_image_ab *out) {
    el_file f;
    if (out) memset(out, 0, sizeof *out);
    /* What cannot be opened as a file (a model folder, a missing path) has no A/B header;
     * the model open that follows says why it cannot be read. */
    if (el_file_open(&f, path, 0) != EL_OK) return EL_OK;
    el_status s;
    bool found, valid[2];
    uint64_t gen[2];
    el_image_ab ab;
    memset(&ab, 0, sizeof ab);
    s = ab_read(&f, &found, &ab, valid, gen);
    el_file_close(&f);
    if (s != EL_OK || !(valid[0] || valid[1])) return s;
    *offset = ab.slot_offset[ab.active];
    if (out) *out = ab;
    return EL_OK;
}

/* Writes header copy i of ab to fd and fsyncs it. */
static el_status ab_write_copy(int fd, const char *target, const el_image_ab *ab, int i) {
    uint8_t b[EL_IMG_AB_HEADER_SIZE];
    ab_encode(ab, b);
    el_status s = el_fd_write_at(fd, b, sizeof b, (uint64_t)i * EL_IMG_AB_COPY_STRIDE, target);
    return s == EL_OK ? el_fd_sync(fd, target) : s;
}

el_status el_image_flash_ab(const char *img, const char *target, el_image_ab *out,
                            el_image_verify_report *r) {
    el_file f;
    el_status s = el_image_target_check_mounted(target);
    if (s == EL_OK) s = el_file_open(&f, target, 0);
    if (s != EL_OK) return s;
    bool found, valid[2];
    uint64_t gen[2];
    el_image_ab cur, next;
    memset(&cur, 0, sizeof cur);
    s = ab_read(&f, &found, &cur, valid, gen);
    uint64_t tsize = f.size;
    el_file_close(&f);
    if (s != EL_OK) return s;
    el_file in;
    if ((s = el_file_open(&in, img, 0)) != EL_OK) return s;
    el_img_meta meta;
    s = el_img_meta_read(&in, 0, &meta);
    el_file_close(&in);
    if (s != EL_OK) return s;
    uint64_t isize = meta.h.image_size;
    el_img_meta_free(&meta);
    bool fresh = !valid[0] && !valid[1];
    if (fresh) { /* a new layout: the headers, then two equal slots filling the target */
        memset(&cur, 0, sizeof cur);
        uint64_t room = tsize > 2 * EL_IMG_AB_COPY_STRIDE ? tsize - 2 * EL_IMG_AB_COPY_STRIDE : 0;
        cur.slot_size = room / 2 / EL_IMG_ALIGN * EL_IMG_ALIGN;
        cur.slot_offset[0] = 2 * EL_IMG_AB_COPY_STRIDE;
        cur.slot_offset[1] = cur.slot_offset[0] + cur.slot_size;
        cur.active = 1; /* so that slot A is written first */
    }
    if (isize > cur.slot_size)
        return el_errorf(EL_E_USAGE, "%s: the image is %llu bytes; an A/B slot of this target holds "
                         "%llu (two slots in %llu bytes, less %u for the headers)", target,
                         (unsigned long long)isize, (unsigned long long)cur.slot_size,
                         (unsigned long long)tsize, 2 * EL_IMG_AB_COPY_STRIDE);
    next = cur;
    next.active = 1 - cur.active;
    next.generation = fresh ? 1 : cur.generation + 1;
    next.image_size = isize;
    /* The slot not in use: written, fsynced, read back and verified (el_image_flash also
     * verifies the source first). The header still names the other slot meanwhile. */
    if ((s = el_image_flash(img, target, next.slot_offset[next.active], r)) != EL_OK) return s;
    int fd = open(target, O_WRONLY | O_CLOEXEC);
    if (fd < 0) return el_errorf(EL_E_IO, "%s: cannot open for writing: %s", target, strerror(errno));
    /* The switch: the older (or invalid) copy first; once it is durable the other one. */
    int first = !valid[0] ? 0 : !valid[1] ? 1 : gen[0] <= gen[1] ? 0 : 1;
    s = ab_write_copy(fd, target, &next, first);
    if (s == EL_OK) s = ab_write_copy(fd, target, &next, 1 - first);
    if (close(fd) != 0 && s == EL_OK) s = el_errorf(EL_E_IO, "%s: close failed: %s", target, strerror(errno));
    if (s == EL_OK && out) *out = next;
    return s;
}
