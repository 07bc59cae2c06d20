/* quant.h - the GGUF block types on the CPU (internal): reference quantize/dequantize of
 * rows (kernels/cpu/quant.c) and the matmul with block-type weights (kernels/cpu/matmul_q.c,
 * reached through el_cpu_matmul). Layouts are ggml's, described in docs/QUANT.md. */
#ifndef EL_KERNELS_QUANT_H
#define EL_KERNELS_QUANT_H

#include "kernels/cpu/cpu.h"

/* True for the types el_quantize_row writes: Q8_0, Q4_0, Q4_1, Q5_0, Q5_1. */
bool el_quant_can_quantize(el_dtype dt);

/* Quantizes n floats (a multiple of 32) into n / 32 blocks of dt at out, with the rounding
 * of gguf-py's gguf.quants.quantize (ggml's reference quantizers): byte-identical output.
 * dt must satisfy el_quant_can_quantize. */
void el_quantize_row(el_dtype dt, const float *x, void *out, size_t n);

/* Dequantizes n elements (a multiple of dt's block) of a row of dt (any block type, or
 * F32/F16/BF16) into out, bit-identical to gguf.quants.dequantize. */
void el_dequantize_row(el_dtype dt, const void *q, float *out, size_t n);

/* One block's integers and scales, for dot products and dequantizing:
 *   32-blocks: x[i] = d * (q[i] - off) (+ m for Q4_1/Q5_1);
 *   K types:   x[i] = d * sc[j] * q[i] - m * mn[j] for sub-block j of i (Q6_K: m = d and
 *              mn[j] = 32 * sc[j], so that x = d * sc[j] * (q - 32)). */
typedef struct el_qblock {
    int8_t q[256];      /* values in element order: 0..63, or -128..127 for Q8_0 */
    int32_t sc[16];     /* K types: scale per sub-block */
    int32_t mn[16];     /* K types: min per sub-block (in units of m) */
    float d;            /* scale */
    float m;            /* Q4_1/Q5_1: min; K types: dmin (Q6_K: d) */
    int32_t off;        /* 32-blocks: 8 (Q4_0), 16 (Q5_0), else 0 */
    uint32_t nsub;      /* K types: 8 sub-blocks of 32 or 16 of 16; 32-blocks: 1 */
    bool has_min;       /* Q4_1, Q5_1 */
} el_qblock;

/* Unpacks one block of dt (a block type) at b. */
void el_quant_unpack(el_dtype dt, const uint8_t *b, el_qblock *u);

/* Q4_K/Q5_K: the 6-bit scale and min of sub-block j (0..7) from the 12 packed bytes s. */
static inline void el_quant_k_scale_min(const uint8_t *s, int j, int32_t *sc, int32_t *m) {
    if (j < 4) {
        *sc = s[j] & 63;
        *m = s[j + 4] & 63;
    } else {
        *sc = (s[j + 4] & 0x0f) | ((s[j - 4] >> 2) & 0x30);
        *m = (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30);
    }
}

/* el_cpu_matmul for block-type weights wt (el_dtype_is_block; in a multiple of its block):
 * each x row is quantized to 8 bits per block once per call (on the caller's stack, in
 * bounded chunks), then integer dot products per block; rows of W split across the pool. */
void el_cpu_matmul_q(el_pool *p, float *y, size_t ldy, const float *x, const void *w,
                     el_dtype wt, size_t n, size_t in, size_t out);

#endif /* EL_KERNELS_QUANT_H */
