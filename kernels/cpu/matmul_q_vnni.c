/* matmul_q_vnni.c - the block-type kernels with AVX-512 VNNI on 256-bit vectors
 * (matmul_q_x86.inc): one vpdpbusd where AVX2 needs maddubs + madd. */
#define QX_TARGET "avx2,fma,f16c,avx512f,avx512bw,avx512vl,avx512vnni"
#define QX_DOT1(u, s) _mm256_dpbusd_epi32(_mm256_setzero_si256(), u, s)
#define QX_DOTACC(a, u, s) _mm256_dpbusd_epi32(a, u, s)
#define QX_VPDPBUSD 1
#define QX_GEMM_T 8
#define QX_PICK el_qdot_pick_vnni
#define QX_GEMM_PICK el_qgemm_pick_vnni
#define QX_X8_PICK el_qx8_pick_vnni
#include "kernels/cpu/matmul_q_x86.inc"

#if defined(__x86_64__)
bool el_cpu_has_avx512vnni(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
#endif
