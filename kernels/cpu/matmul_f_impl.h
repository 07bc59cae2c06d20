/* matmul_f_impl.h - what the float-weight matmul (matmul.c) shares with its x86 kernel
 * variants (matmul_f_avx2.c, matmul_f_avx512.c: one source, matmul_f_x86.inc, compiled for
 * each instruction set so one binary picks at run time by CPUID) (internal). */
#ifndef EL_MATMUL_F_IMPL_H
#define EL_MATMUL_F_IMPL_H

#include "kernels/cpu/cpu.h"
#include "kernels/cpu/quant.h"

#include <stdbool.h>
#include <stddef.h>

/* y = W x for rows [r0, r1) of one call of el_cpu_matmul. */
typedef struct el_mm_job {
    float *y;       /* [n, ldy] */
    size_t ldy;     /* floats between rows of y */
    const float *x; /* [n, in] */
    const void *w;  /* [out, in] of wt */
    el_dtype wt;    /* EL_DT_F32, EL_DT_F16 or EL_DT_BF16 */
    size_t n, in, out;
} el_mm_job;

typedef void (*el_mm_rows_fn)(const el_mm_job *j, size_t r0, size_t r1);

/* The rows kernel of one x86 variant for wt (F32, F16 or BF16): AVX2 + FMA + F16C, and
 * AVX-512 F/BW/VL (+ the same) for CPUs where el_cpu_has_avx512(). */
el_mm_rows_fn el_mm_pick_avx2(el_dtype wt);
el_mm_rows_fn el_mm_pick_avx512(el_dtype wt);
/* CPUID (and the OS's register state): AVX512F, BW, VL. */
bool el_cpu_has_avx512(void);
/* Tests and benchmarks: 0 = let the CPU decide (default), 1 = never use the AVX-512 variant. */
extern int el_mm_no_avx512;

/* Decode (one activation row x) through up to EL_QMV_MAX_PARTS float-weight matrices (F32,
 * F16, BF16) in one pool run, as el_cpu_matvec_q for block types: each row with the bits
 * el_cpu_matmul gives it, then + bias and the epilogue. act (may be NULL): with
 * EL_QMV_GATED over each thread's gate and up rows, with EL_QMV_STORE over each part's
 * stored rows (up NULL); ranges start at multiples of 64. False (nothing done) where it
 * does not take the parts: a block-type weight or bias, more than EL_QMV_MAX_PARTS parts,
 * gated parts that are not two of equal out, act with EL_QMV_ADD. */
bool el_cpu_matvec_f(el_pool *p, const float *x, size_t in, const el_qmv_part *parts,
                     size_t n_parts, el_qmv_epi e, el_qmv_act_fn act, void *act_ctx);

#endif /* EL_MATMUL_F_IMPL_H */
