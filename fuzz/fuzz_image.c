/* fuzz_image.c - libFuzzer target for the .elimg metadata parsers (loader/image.c): the
 * input is a whole image in memory, parsed by el_img_meta_parse_memory (header, chunk table,
 * manifest, each CRC-checked and validated). Inputs of odd length first get their three
 * CRCs recomputed wherever the regions they cover lie inside the input, so mutations reach
 * the field checks behind the CRCs instead of stopping at them. Whatever parses must hold
 * the documented invariants, and every chunk of up to 1 MiB is decoded (LZ4 safe decoder)
 * into a buffer of exactly its raw size. */
#include "loader/image.h"
#include "platform/crc32c.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define CHECK(c) \
    do {         \
        if (!(c)) __builtin_trap(); \
    } while (0)

static uint64_t rd64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}
static void wr32(uint8_t *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (uint8_t)(v >> (8 * i));
}

static void fix_crcs(uint8_t *b, size_t n) {
    if (n < EL_IMG_HEADER_SIZE) return;
    uint64_t count = (uint64_t)(b[20] | b[21] << 8 | b[22] << 16 | (uint32_t)b[23] << 24);
    uint64_t moff = rd64(b + 24), msize = rd64(b + 32), toff = rd64(b + 40);
    if (moff <= n && msize <= n - moff) wr32(b + 80, el_crc32c(0, b + moff, (size_t)msize));
    if (toff <= n && count * 32 <= n - toff) wr32(b + 84, el_crc32c(0, b + toff, (size_t)(count * 32)));
    wr32(b + 124, el_crc32c(0, b, 124));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *b = malloc(size ? size : 1);
    if (!b) return 0;
    if (size) memcpy(b, data, size);
    if (size % 2) fix_crcs(b, size);
    el_img_meta m;
    if (el_img_meta_parse_memory(b, size, "fuzz", &m) == EL_OK) {
        const el_img_header *h = &m.h;
        CHECK(h->image_size <= size && h->payload_offset <= h->image_size);
        CHECK(h->payload_offset % EL_IMG_ALIGN == 0);
        uint64_t raw = 0, prev_end = h->payload_offset;
        for (uint32_t i = 0; i < h->chunk_count; i++) {
            const el_img_chunk *c = &m.chunks[i];
            CHECK(c->offset >= prev_end && c->offset + c->stored_size <= h->image_size);
            CHECK(c->stored_size <= c->raw_size && c->raw_size <= h->chunk_size);
            prev_end = c->offset + c->stored_size;
            raw += c->raw_size;
        }
        CHECK(raw == h->payload_size);
        uint64_t end = 0;
        for (size_t i = 0; i < m.tensors.count; i++) {
            const el_tensor *t = &m.tensors.items[i];
            CHECK(t->arena_offset >= end && t->arena_offset % 64 == 0);
            end = t->arena_offset + t->nbytes;
        }
        CHECK(end == h->payload_size);
        for (uint32_t i = 0; i < m.side_count; i++)
            CHECK(m.side[i].offset + m.side[i].size <= h->payload_offset);
        char where[600];
        if (h->chunk_count) el_img_chunk_where(&m, &m.tensors, h->chunk_count - 1, where, sizeof where);
        if (h->chunk_size <= (1u << 20)) {
            uint8_t *dst = malloc((size_t)h->chunk_size), *scratch = malloc((size_t)h->chunk_size);
            for (uint32_t i = 0; dst && scratch && i < h->chunk_count; i++) {
                const el_img_chunk *c = &m.chunks[i];
                memcpy(scratch, b + c->offset, c->stored_size);
                (void)el_img_decode(c, scratch, dst, scratch);
            }
            free(dst);
            free(scratch);
        }
        el_img_meta_free(&m);
    }
    free(b);
    return 0;
}
