/* matmul_q_dotprod.c - the block-type kernels with the ARMv8.2 dot product instructions
 * (SDOT: one vdotq_s32 where plain NEON needs vmull + vmlal + vpadal; matmul_q_neon.inc). */
#define QN_ATTR __attribute__((target("arch=armv8.2-a+dotprod")))
#define QN_DOT16 1
#define QN_I8MM 0
#define QN_PICK el_qdot_pick_dotprod
#include "kernels/cpu/matmul_q_neon.inc"
