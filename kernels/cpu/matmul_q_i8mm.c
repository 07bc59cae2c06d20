/* matmul_q_i8mm.c - the block-type kernels with SDOT and, for prompt batches, the ARMv8.6
 * int8 matrix multiply (SMMLA: vmmlaq_s32, a 2x2 tile of 8-value dot products;
 * matmul_q_neon.inc). */
#define QN_ATTR __attribute__((target("arch=armv8.2-a+dotprod+i8mm")))
#define QN_DOT16 1
#define QN_I8MM 1
#define QN_PICK el_qdot_pick_i8mm
#include "kernels/cpu/matmul_q_neon.inc"
