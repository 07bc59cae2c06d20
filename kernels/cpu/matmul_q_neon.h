/* matmul_q_neon.h - the aarch64 variants of the block-type matmul (internal): one source,
 * matmul_q_neon.inc, compiled three times, so one binary runs on every ARMv8-A CPU and uses
 * what it has:
 *   EL_QNEON_BASE     plain ARMv8-A NEON: vmull_s8 + vmlal_s8 (Cortex-A53/A57/A72: Pi 3/4,
 *                     Jetson Nano / TX2; Jetson Xavier, whose Carmel reports no asimddp);
 *   EL_QNEON_DOTPROD  + SDOT (vdotq_s32): ARMv8.2 dotprod (A76: Pi 5; A78AE: Jetson Orin);
 *   EL_QNEON_I8MM     + SMMLA (vmmlaq_s32) for prompt batches, eight weight rows x four
 *                     tokens: ARMv8.6 i8mm (Neoverse V1/V2/V3: Graviton 3/4, Jetson Thor).
 * Prompt batches (n > 1) take eight weight rows x four tokens per pass on every level.
 * Every level gives the same bits (matmul_q_neon.inc). */
#ifndef EL_MATMUL_Q_NEON_H
#define EL_MATMUL_Q_NEON_H

#include "kernels/cpu/matmul_q_impl.h"

typedef enum el_qneon_level {
    EL_QNEON_AUTO = 0, /* only as the override: let the CPU decide */
    EL_QNEON_BASE = 1,
    EL_QNEON_DOTPROD = 2,
    EL_QNEON_I8MM = 3,
} el_qneon_level;

/* The x1 kernel of one level for wt (NULL for a type it has none for); *r8 and *r8t4 the
 * prompt kernels (eight weight rows x one / four tokens; SMMLA tiles at EL_QNEON_I8MM, the
 * level's dot product below it). */
qdot_fn el_qdot_pick_neon(el_dtype wt, qdot_r4_fn *r8, qdot_r8t4_fn *r8t4);
qdot_fn el_qdot_pick_dotprod(el_dtype wt, qdot_r4_fn *r8, qdot_r8t4_fn *r8t4);
qdot_fn el_qdot_pick_i8mm(el_dtype wt, qdot_r4_fn *r8, qdot_r8t4_fn *r8t4);

/* The level this CPU runs (el_cpu_has_dotprod / el_cpu_has_i8mm, platform.h), at most
 * el_qdot_neon_max when that is set. */
el_qneon_level el_qdot_neon_level(void);
/* Tests: EL_QNEON_AUTO (default) = the CPU decides; a level = use at most that one (a level
 * the CPU lacks is never used). */
extern el_qneon_level el_qdot_neon_max;
const char *el_qneon_level_name(el_qneon_level l); /* "neon", "dotprod", "i8mm" */

#endif /* EL_MATMUL_Q_NEON_H */
