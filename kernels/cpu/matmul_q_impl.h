/* matmul_q_impl.h - what the block-type matmul (matmul_q.c) shares with its x86 kernel
 * variants (matmul_q_avx2.c, matmul_q_vnni.c: one source, matmul_q_x86.inc, compiled for
 * each instruction set so one binary picks at run time) (internal). */
#ifndef EL_MATMUL_Q_IMPL_H
#define EL_MATMUL_Q_IMPL_H

#include "kernels/cpu/quant.h"

#include <stddef.h>
#include <stdint.h>

typedef struct q8a {
    float d;        /* scale: x ~ d * qs */
    float s;        /* d * sum(qs): the offset term of a Q4_0/Q5_0 weight block */
    float s16;      /* the same rounded to f16: the min term of Q4_1/Q5_1, as ggml's q8_1 */
    int32_t sum;    /* sum(qs): the offset term, exact, of the GEMM kernels */
    int8_t qs[32];
} q8a;

typedef struct q8k {
    float d;
    int16_t bsums[16]; /* sum of each 16 qs */
    int8_t qs[256];
} q8k;

/* out[0 .. NT) = one weight row (nb blocks) dotted with NT activation rows arow bytes apart;
 * NT is fixed by the function (1, or 4 for the x4 variants). */
typedef void (*qdot_fn)(el_dtype wt, const uint8_t *w, const uint8_t *act, size_t arow,
                        size_t nb, float *out);
/* out[0 .. 4) = four weight rows (wrow bytes apart, nb blocks) dotted with one activation
 * row: the decode matvec, each activation block loaded once for four rows. Bit-identical to
 * four calls of the x1 kernel. */
typedef void (*qdot_r4_fn)(const uint8_t *w, size_t wrow, const uint8_t *act, size_t nb,
                           float *out);

/* out[t * 8 + r] = eight weight rows (wrow bytes apart) dotted with four activation rows (arow
 * bytes apart): prompt batches (the aarch64 variants). */
typedef void (*qdot_r8t4_fn)(const uint8_t *w, size_t wrow, const uint8_t *act, size_t arow,
                             size_t nb, float *out);

/* The kernels of one x86 variant for wt: the x1 kernel (NULL if the variant has none for wt),
 * *dot4 (four activation rows) and *r4 (four weight rows; NULL for the K types). */
qdot_fn el_qdot_pick_avx2(el_dtype wt, qdot_fn *dot4, qdot_r4_fn *r4);
/* The same with AVX-512 VNNI (vpdpbusd on 256-bit vectors: AVX512F/BW/VL/VNNI), for CPUs
 * where el_cpu_has_avx512vnni(). */
qdot_fn el_qdot_pick_vnni(el_dtype wt, qdot_fn *dot4, qdot_r4_fn *r4);
/* y[t * ldy + r] (= or +=, add) = weight row r (r < rows <= 8, wrow bytes apart, nb blocks)
 * . activation row t (t < nt, arow bytes apart): a register-blocked GEMM (matmul_q_x86.inc)
 * whose result for a token does not depend on nt. */
typedef void (*qgemm_fn)(const uint8_t *w, size_t wrow, size_t rows, const uint8_t *act,
                         size_t arow, size_t nb, size_t nt, float *y, size_t ldy, bool add);
/* The GEMM of each x86 variant for wt, or NULL where it has none. */
qgemm_fn el_qgemm_pick_avx2(el_dtype wt);
qgemm_fn el_qgemm_pick_vnni(el_dtype wt);
/* Bytes per block of the tiled types (el_dtype_block_bytes, inline: the kernels' offsets fold
 * to constants). */
static inline size_t el_q_x8_block(el_dtype wt) {
    switch (wt) {
    case EL_DT_Q4_0: return 18;
    case EL_DT_Q4_1: return 20;
    case EL_DT_Q5_0: return 22;
    case EL_DT_Q5_1: return 24;
    case EL_DT_Q8_0: return 34;
    case EL_DT_Q4_K: return 144;
    case EL_DT_Q5_K: return 176;
    default: return 210; /* Q6_K */
    }
}
/* el_q_x8_repack's layout: a tile's block is the 8 rows' heads (el_q_x8_head bytes each: Q4_0
 * / Q8_0 their f16 d, Q4_1 d and m, Q5_0 d and qh, Q5_1 d, m and qh, Q4_K / Q5_K d, dmin and
 * the 12 bytes of scales), then their quants (the rest of each block), row r % 8 in slot
 * el_q_x8_slot. The 4-bit 32-blocks pair rows r and r + 4 in slots 2r, 2r + 1 (one 32-byte
 * load is both). Q6_K keeps each row's block whole (no head: its scales and d are at its
 * end), rows 0..7. Row r's head is at el_q_x8_head * r, its quants at el_q_x8_quants(wt, r),
 * from the block's start. */
static inline size_t el_q_x8_head(el_dtype wt) {
    switch (wt) {
    case EL_DT_Q4_K:
    case EL_DT_Q5_K: return 16;
    case EL_DT_Q5_1: return 8;
    case EL_DT_Q5_0: return 6;
    case EL_DT_Q4_1: return 4;
    case EL_DT_Q6_K: return 0;
    default: return 2;
    }
}
static inline bool el_q_x8_paired(el_dtype wt) {
    return wt == EL_DT_Q4_0 || wt == EL_DT_Q5_0 || wt == EL_DT_Q4_1 || wt == EL_DT_Q5_1;
}
static inline size_t el_q_x8_slot(el_dtype wt, size_t r) {
    const size_t k = r % 8;
    return el_q_x8_paired(wt) ? (k < 4 ? 2 * k : 2 * (k - 4) + 1) : k;
}
static inline size_t el_q_x8_quants(el_dtype wt, size_t r) {
    const size_t q = el_q_x8_block(wt) - el_q_x8_head(wt); /* bytes per row */
    return 8 * el_q_x8_head(wt) + q * el_q_x8_slot(wt, r);
}

/* out[0 .. 8) = the 8 rows of one tile in el_q_x8_repack's layout (w: the tile's first
 * block) dotted with one activation row of nb blocks: decode on repacked weights. */
typedef void (*qx8_fn)(const uint8_t *w, const uint8_t *act, size_t nb, float *out);
/* The tile kernel of each x86 variant for wt (the types el_q_x8_can names), or NULL; *gemm its GEMM on tiles
 * (prompt batches: the bits of the untiled GEMM). */
qx8_fn el_qx8_pick_avx2(el_dtype wt, qgemm_fn *gemm);
qx8_fn el_qx8_pick_vnni(el_dtype wt, qgemm_fn *gemm);
/* --numerics ggml's K-type kernels for a batch of n tokens and a matrix of rows weight rows
 * (matmul_qk_ggml.c; integer sums in AVX2 for isa EL_ISA_AVX2, else plain C; the same float
 * order on every CPU): for Q4_K with rows % 8 == 0 the one-token kernel (ggml's repacked gemv
 * order) and in *dot4 the four-token one (its gemm order); for Q5_K, Q6_K and the other Q4_K
 * the one-token kernel (vec_dot order below 8 tokens, the tiled matmul's from 8; *dot4 NULL);
 * NULL for the other types. */
qdot_fn el_qdot_pick_ggml_k(el_isa isa, el_dtype wt, size_t n, size_t rows, qdot_fn *dot4);
/* CPUID (and the OS's register state): AVX512F, BW, VL and VNNI. */
bool el_cpu_has_avx512vnni(void);
/* nb blocks of activations x quantized for isa's kernels into o: q8a blocks of 32, or q8k
 * blocks of 256 where k. The AVX2 quantizers write the portable ones' bytes (tested). */
void el_quantize_act(el_isa isa, bool k, const float *x, void *o, size_t nb);
/* Tests: 0 = let the CPU decide (default), 1 = never use the VNNI variant. */
extern int el_qdot_no_vnni;

#endif /* EL_MATMUL_Q_IMPL_H */
