/* quant_fixture.h - gguf-py's quantization fixtures, tests/fixtures/quant/<type>.bin (made by
 * scripts/fixtures_quant.py; test code only): "ELQF", u32 rows, cols, has_input (little
 * endian), then [rows][cols] f32 inputs when has_input, the quantized rows, and gguf-py's
 * dequantization of them, [rows][cols] f32. Shared by test_kernels_quant (CPU) and
 * test_kernels_cuda_quant. */
#ifndef EL_TEST_QUANT_FIXTURE_H
#define EL_TEST_QUANT_FIXTURE_H

#include "tests/support/el_test.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

typedef struct quant_fixture {
    uint8_t *file;        /* the whole file (malloc'd; free it) */
    uint32_t rows, cols;
    bool has_input;
    uint64_t row_bytes;   /* one quantized row of cols */
    const uint8_t *input; /* [rows][cols] f32, or NULL */
    const uint8_t *quant; /* [rows][row_bytes] */
    const uint8_t *deq;   /* [rows][cols] f32 */
} quant_fixture;

/* Reads dt's fixture and checks its magic and size (counted checks). False, with nothing
 * held, when either is wrong. */
static inline bool quant_fixture_read(el_dtype dt, quant_fixture *fx) {
    memset(fx, 0, sizeof *fx);
    char path[512], lower[8];
    size_t i = 0;
    for (const char *s = el_dtype_name(dt); *s && i < sizeof lower - 1; s++)
        lower[i++] = (char)(*s >= 'A' && *s <= 'Z' ? *s + 32 : *s);
    lower[i] = 0;
    snprintf(path, sizeof path, EL_SOURCE_DIR "/tests/fixtures/quant/%s.bin", lower);
    size_t len = 0;
    uint8_t *f = (uint8_t *)el_test_read_file(path, &len);
    EL_CHECK(f != NULL && len >= 16 && !memcmp(f, "ELQF", 4));
    if (!f || len < 16) {
        free(f);
        return false;
    }
    uint32_t hdr[3];
    memcpy(hdr, f + 4, sizeof hdr); /* rows, cols, has_input (little-endian hosts) */
    const size_t rows = hdr[0], cols = hdr[1];
    uint64_t rb = 0;
    EL_CHECK(el_dtype_row_bytes(dt, cols, &rb));
    const size_t in_bytes = hdr[2] ? rows * cols * 4 : 0;
    EL_CHECK(len == 16 + in_bytes + rows * rb + rows * cols * 4);
    if (len != 16 + in_bytes + rows * rb + rows * cols * 4) {
        free(f);
        return false;
    }
    *fx = (quant_fixture){f, hdr[0], hdr[1], hdr[2] != 0, rb, hdr[2] ? f + 16 : NULL,
                          f + 16 + in_bytes, f + 16 + in_bytes + rows * rb};
    return true;
}

#endif /* EL_TEST_QUANT_FIXTURE_H */
