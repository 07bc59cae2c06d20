/* quant.h - the GGUF block types on the CPU (internal): reference quantize/dequantize of
 * rows (kernels/cpu/quant.c) and the matmul with block-type weights (kernels/cpu/matmul_q.c,
 * reached through el_cpu_matmul). Layouts are ggml's, described in docs/QUANT.md. */
#ifndef EL_KERNELS_QUANT_H
#define EL_KERNELS_QUANT_H

#include "kernels/cpu/cpu.h"

#include <string.h>

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

/* Q4_K/Q5_K: the 6-bit scales (out[0..7]) and mins (out[8..15]) of the 8 sub-blocks from
 * the 12 packed bytes s: bytes 0-3 hold sc 0-3 and the top bits of sc 4-7, bytes 4-7 the
 * same for the mins, bytes 8-11 the low nibbles of sc 4-7 and (high) of mn 4-7. */
static inline void el_quant_k_scales(const uint8_t *s, uint8_t out[16]) {
    uint32_t u[3], v[4];
    memcpy(u, s, 12);
    v[0] = u[0] & 0x3f3f3f3fu;
    v[1] = (u[2] & 0x0f0f0f0fu) | ((u[0] >> 2) & 0x30303030u);
    v[2] = u[1] & 0x3f3f3f3fu;
    v[3] = ((u[2] >> 4) & 0x0f0f0f0fu) | ((u[1] >> 2) & 0x30303030u);
    memcpy(out, v, 16);
}

/* el_cpu_matmul for block-type weights wt (el_dtype_is_block; in a multiple of its block):
 * each x row is quantized to 8 bits per block once per call (on the caller's stack, in
 * bounded chunks), then integer dot products per block; rows of W split across the pool.
 * rowwise: one weight row at a time with the one-row kernels instead of the GEMM tiles:
 * their float sums run in ggml's x86 vec_dot order for the 32-blocks (--numerics ggml);
 * Q4_K and Q6_K then run ggml's x86 kernels' order (matmul_qk_ggml.c: Q4_K's repacked gemv
 * for one token and gemm for the first n - n % 4 of a batch). */
void el_cpu_matmul_q(el_pool *p, float *y, size_t ldy, const float *x, const void *w,
                     el_dtype wt, size_t n, size_t in, size_t out, bool rowwise);

/* Decode (one activation row x) through up to EL_QMV_MAX_PARTS block-type matrices in one
 * pool run: x quantized once per activation kind, the parts' rows (tiles of 8) split evenly
 * across the threads, each row with the bits el_cpu_matmul_q gives it (then + bias, then
 * the epilogue, the f32 operations of el_cpu_add_bias and el_cpu_add). */
#define EL_QMV_MAX_PARTS 4
typedef struct el_qmv_part {
    float *y;        /* [out] */
    const void *w;   /* [out, in] of wt */
    el_dtype wt;
    size_t out;
    const void *b;   /* [out] bias of bt (not a block type), or NULL */
    el_dtype bt;
    bool x8;         /* w tiled by el_q_x8_repack (out a multiple of 8) */
} el_qmv_part;
typedef enum {
    EL_QMV_STORE, /* y = W x + b */
    EL_QMV_ADD,   /* y += W x + b (the residual add) */
    EL_QMV_GATED, /* parts gate, up of equal out, stored; then act over each thread's rows */
} el_qmv_epi;
/* gate = act(gate, up) over n entries (an element-wise activation: any row range gives the
 * entries the whole call would, for ranges starting at multiples of 64). */
typedef void (*el_qmv_act_fn)(void *ctx, float *gate, const float *up, size_t n);
/* False (nothing done) where it does not take the parts: a float-type weight or a block-type
 * bias, in not a whole number of blocks or over the stack scratch, more than
 * EL_QMV_MAX_PARTS parts, gated parts that are not two of equal out. act may be NULL. */
bool el_cpu_matvec_q(el_pool *p, const float *x, size_t in, const el_qmv_part *parts,
                     size_t n_parts, el_qmv_epi e, el_qmv_act_fn act, void *act_ctx,
                     bool rowwise);

/* Thread ith of nth's share of a one-row decode over parts (el_cpu_matvec_q and _f): a
 * contiguous range of the parts' concatenated tiles of tile rows (tiles in all); gated: of
 * the gate rows, both parts' rows, then act over them. rows(ctx, i, r0, r1) computes rows
 * r0 .. r1 of part i. */
typedef void (*el_qmv_rows_fn)(const void *ctx, size_t part, size_t r0, size_t r1);
void el_qmv_share(const el_qmv_part *parts, size_t n_parts, el_qmv_epi e, size_t tiles,
                  size_t tile, el_qmv_act_fn act, void *act_ctx, el_qmv_rows_fn rows,
                  const void *ctx, unsigned ith, unsigned nth);

/* Weights repacked in tiles of 8 rows (matmul_q_x86.inc, "decode on 8-row tiles"): block b
 * of rows 8t..8t+7 side by side, their scales first, so that decode streams one contiguous
 * run per tile and loads 8 scales at once. True where isa has the tile kernels for wt (x86
 * AVX2: every block type) and rows is a multiple of 8. */
bool el_q_x8_can(el_isa isa, el_dtype wt, size_t rows);
/* rows x nb blocks of wt at w, in place, to the tiled layout (tiled) or back; tmp holds one
 * tile, 8 * nb * (bytes per block). rows a multiple of 8. The bytes are the same set. */
void el_q_x8_repack(el_dtype wt, void *w, size_t rows, size_t nb, void *tmp, bool tiled);
/* Blocks b0 .. b0 + n of row `row` of tiled weights w (rows nb blocks of wt) back in GGUF's
 * layout into out (n blocks): embedding lookups, and the one-row kernels on tiles. */
void el_q_x8_row(el_dtype wt, const void *w, size_t nb, size_t row, size_t b0, size_t n,
                 void *out);
/* el_cpu_matmul_q on weights tiled by el_q_x8_repack where x8 (out a multiple of 8): the
 * same bits as on the untiled weights, on every path (the tile kernels where el_q_x8_can, else
 * each row copied back for the one-row kernels). */
void el_cpu_matmul_qx(el_pool *p, float *y, size_t ldy, const float *x, const void *w,
                      el_dtype wt, size_t n, size_t in, size_t out, bool rowwise, bool x8);

#endif /* EL_KERNELS_QUANT_H */
