/* matmul_f_avx512.c - the float-weight kernels with AVX-512 F/BW/VL on 512-bit vectors
 * (matmul_f_x86.inc): twice the lanes per FMA and per f16/bf16 conversion. */
#define FX_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl"
#define FX_BITS 512
#define FX_TB 4
#define FX_PICK el_mm_pick_avx512
#include "kernels/cpu/matmul_f_x86.inc"

#if defined(__x86_64__)
bool el_cpu_has_avx512(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl");
}
#endif
