/* matmul_q_avx2.c - the block-type kernels for AVX2 + FMA + F16C (matmul_q_x86.inc). */
#define QX_TARGET "avx2,fma,f16c"
#define QX_DOT1(u, s) _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1))
#define QX_DOTACC(a, u, s) _mm256_add_epi32(a, QX_DOT1(u, s))
#define QX_VPDPBUSD 0
#define QX_GEMM_T 4
#define QX_PICK el_qdot_pick_avx2
#define QX_GEMM_PICK el_qgemm_pick_avx2
#define QX_X8_PICK el_qx8_pick_avx2
#include "kernels/cpu/matmul_q_x86.inc"
