/* matmul_q_neon.c - the block-type kernels for plain ARMv8-A NEON (matmul_q_neon.inc), and
 * the choice of level at run time. */
#define QN_ATTR
#define QN_DOT16 0
#define QN_I8MM 0
#define QN_PICK el_qdot_pick_neon
#include "kernels/cpu/matmul_q_neon.inc"

#if defined(__aarch64__)
#include "platform/platform.h"

el_qneon_level el_qdot_neon_max;

el_qneon_level el_qdot_neon_level(void) {
    el_qneon_level l = EL_QNEON_BASE;
    if (el_cpu_has_dotprod()) l = el_cpu_has_i8mm() ? EL_QNEON_I8MM : EL_QNEON_DOTPROD;
    const el_qneon_level cap = el_qdot_neon_max;
    return cap != EL_QNEON_AUTO && cap < l ? cap : l;
}

const char *el_qneon_level_name(el_qneon_level l) {
    switch (l) {
    case EL_QNEON_AUTO: return "auto";
    case EL_QNEON_BASE: return "neon";
    case EL_QNEON_DOTPROD: return "dotprod";
    case EL_QNEON_I8MM: return "i8mm";
    }
    return "unknown";
}
#endif /* __aarch64__ */
