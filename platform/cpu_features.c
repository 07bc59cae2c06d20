/* cpu_features.c - the aarch64 CPU feature probe: the Linux kernel's AT_HWCAP / AT_HWCAP2
 * words, read once (getauxval reads the auxiliary vector: no system call, no allocation) and
 * cached. Elsewhere the answers are all false (the x86 probes use CPUID, in the kernels). */
#include "platform/platform.h"

#include <stdatomic.h>

#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
/* The bits, for C libraries whose headers predate them (values from the kernel's uapi). */
#ifndef HWCAP_FPHP
#define HWCAP_FPHP (1ul << 9)
#endif
#ifndef HWCAP_ASIMDHP
#define HWCAP_ASIMDHP (1ul << 10)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1ul << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1ul << 13)
#endif
#endif

enum { EL_CPUF_DOTPROD = 1, EL_CPUF_I8MM = 2, EL_CPUF_FP16 = 4, EL_CPUF_PROBED = 8 };

static unsigned cpu_features(void) {
    static _Atomic unsigned cached;
    unsigned v = atomic_load_explicit(&cached, memory_order_relaxed);
    if (v) return v;
    v = EL_CPUF_PROBED;
#if defined(__aarch64__) && defined(__linux__)
    const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    if (hw & HWCAP_ASIMDDP) v |= EL_CPUF_DOTPROD;
    if (hw2 & HWCAP2_I8MM) v |= EL_CPUF_I8MM;
    if ((hw & HWCAP_FPHP) && (hw & HWCAP_ASIMDHP)) v |= EL_CPUF_FP16;
#endif
    atomic_store_explicit(&cached, v, memory_order_relaxed);
    return v;
}

bool el_cpu_has_dotprod(void) { return cpu_features() & EL_CPUF_DOTPROD; }
bool el_cpu_has_i8mm(void) { return cpu_features() & EL_CPUF_I8MM; }
bool el_cpu_has_fp16(void) { return cpu_features() & EL_CPUF_FP16; }
