/* matmul_f_avx2.c - the float-weight kernels for AVX2 + FMA + F16C (matmul_f_x86.inc). */
#define FX_TARGET "avx2,fma,f16c"
#define FX_BITS 256
#define FX_TB 3
#define FX_PICK el_mm_pick_avx2
#include "kernels/cpu/matmul_f_x86.inc"
