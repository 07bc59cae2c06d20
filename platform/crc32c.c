/* crc32c.c - CRC32C three ways: the SSE4.2 crc32 instruction (runtime-detected, compiled
 * through a target attribute so the rest of the build stays baseline x86-64), the ARMv8
 * CRC32C instructions (when the compiler targets them or through a target attribute), and
 * a slice-by-8 table for everything else. The tables are computed once, thread-safely. */
#include "platform/crc32c.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#define POLY 0x82F63B78u /* CRC32C, reflected */

/* ---- slice-by-8 table ------------------------------------------------------------- */

static uint32_t g_table[8][256];
static pthread_once_t g_table_once = PTHREAD_ONCE_INIT;

static void table_init(void) {
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (POLY & (0u - (c & 1u)));
        g_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            g_table[t][i] = (g_table[t - 1][i] >> 8) ^ g_table[0][g_table[t - 1][i] & 0xFF];
}

static uint32_t crc_table(uint32_t crc, const uint8_t *p, size_t n) {
    pthread_once(&g_table_once, table_init);
    uint32_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = (c >> 8) ^ g_table[0][(c ^ *p++) & 0xFF];
        n--;
    }
    while (n >= 8) {
        uint32_t lo, hi;
        memcpy(&lo, p, 4);
        memcpy(&hi, p + 4, 4);
        lo ^= c; /* little-endian hosts only (the loader asserts it) */
        c = g_table[7][lo & 0xFF] ^ g_table[6][(lo >> 8) & 0xFF] ^
            g_table[5][(lo >> 16) & 0xFF] ^ g_table[4][lo >> 24] ^
            g_table[3][hi & 0xFF] ^ g_table[2][(hi >> 8) & 0xFF] ^
            g_table[1][(hi >> 16) & 0xFF] ^ g_table[0][hi >> 24];
        p += 8;
        n -= 8;
    }
    while (n--) c = (c >> 8) ^ g_table[0][(c ^ *p++) & 0xFF];
    return ~c;
}

/* ---- three streams at once -------------------------------------------------------------
 * The crc32 instruction takes 3 cycles to give its result and can start one per cycle, so
 * one running CRC uses a third of it. Long buffers are cut into rounds of three lanes of
 * EL_CRC_LANE bytes, each lane's CRC run from 0 at the same time; the register is linear
 * in its input, so the whole round's register is lane 0's advanced over EL_CRC_LANE zero
 * bytes, xor lane 1's, advanced again, xor lane 2's. "Advanced over the zeros" is a fixed
 * linear map of the 32-bit register: four 256-entry tables (g_shift), built once from
 * the register's 32 basis vectors. */

#if defined(__x86_64__) ||                                                                      \
    (defined(__aarch64__) && (defined(__ARM_FEATURE_CRC32) || defined(__GNUC__)))
#define EL_CRC_LANE 4096u

static uint32_t g_shift[4][256];
static pthread_once_t g_shift_once = PTHREAD_ONCE_INIT;

static void shift_init(void) {
    pthread_once(&g_table_once, table_init);
    uint32_t basis[32];
    for (int i = 0; i < 32; i++) {
        uint32_t c = 1u << i;
        for (uint32_t k = 0; k < EL_CRC_LANE; k++) c = (c >> 8) ^ g_table[0][c & 0xFF];
        basis[i] = c;
    }
    for (int t = 0; t < 4; t++)
        for (uint32_t b = 0; b < 256; b++) {
            uint32_t v = 0;
            for (int bit = 0; bit < 8; bit++)
                if (b >> bit & 1u) v ^= basis[8 * t + bit];
            g_shift[t][b] = v;
        }
}

/* The register c (not inverted) advanced over EL_CRC_LANE zero bytes. */
static inline uint32_t crc_shift(uint32_t c) {
    return g_shift[0][c & 0xFF] ^ g_shift[1][(c >> 8) & 0xFF] ^ g_shift[2][(c >> 16) & 0xFF] ^
           g_shift[3][c >> 24];
}

/* Rounds of three lanes while n allows, on the register C (uint64_t), STEP8(c, v) being
 * the 8-byte instruction; advances p and n past the rounds. */
#define CRC_ROUNDS(C, STEP8)                                                                    \
    if (n >= 3 * EL_CRC_LANE) pthread_once(&g_shift_once, shift_init);                          \
    while (n >= 3 * EL_CRC_LANE) {                                                              \
        uint64_t c1 = 0, c2 = 0;                                                                \
        for (size_t i = 0; i < EL_CRC_LANE; i += 8) {                                           \
            uint64_t v0, v1, v2;                                                                \
            memcpy(&v0, p + i, 8);                                                              \
            memcpy(&v1, p + EL_CRC_LANE + i, 8);                                                \
            memcpy(&v2, p + 2 * EL_CRC_LANE + i, 8);                                            \
            C = STEP8(C, v0);                                                                   \
            c1 = STEP8(c1, v1);                                                                 \
            c2 = STEP8(c2, v2);                                                                 \
        }                                                                                       \
        C = crc_shift((uint32_t)C) ^ (uint32_t)c1;                                              \
        C = crc_shift((uint32_t)C) ^ (uint32_t)c2;                                              \
        p += 3 * EL_CRC_LANE;                                                                   \
        n -= 3 * EL_CRC_LANE;                                                                   \
    }
#endif

/* ---- hardware ------------------------------------------------------------------------ */

#if defined(__x86_64__)
#define EL_CRC_HW_NAME "sse4.2"
__attribute__((target("sse4.2"))) static uint32_t crc_hw(uint32_t crc, const uint8_t *p,
                                                           size_t n) {
    uint64_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
        n--;
    }
    CRC_ROUNDS(c, __builtin_ia32_crc32di)
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __builtin_ia32_crc32di(c, v);
        p += 8;
        n -= 8;
    }
    while (n--) c = __builtin_ia32_crc32qi((uint32_t)c, *p++);
    return ~(uint32_t)c;
}
static int hw_detect(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("sse4.2") ? 1 : 0;
}
#elif defined(__aarch64__) && (defined(__ARM_FEATURE_CRC32) || defined(__GNUC__))
#define EL_CRC_HW_NAME "armv8-crc"
#if defined(__ARM_FEATURE_CRC32)
#define EL_CRC_TARGET
#else
#define EL_CRC_TARGET __attribute__((target("+crc")))
#endif
#include <arm_acle.h>
#if defined(__linux__)
#include <sys/auxv.h>
#ifndef HWCAP_CRC32
#define HWCAP_CRC32 (1 << 7)
#endif
#endif
#define EL_CRC_ARM_STEP8(c, v) ((uint64_t)__crc32cd((uint32_t)(c), (v)))
EL_CRC_TARGET static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n) {
    uint32_t c = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        c = __crc32cb(c, *p++);
        n--;
    }
    uint64_t c64 = c;
    CRC_ROUNDS(c64, EL_CRC_ARM_STEP8)
    c = (uint32_t)c64;
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        c = __crc32cd(c, v);
        p += 8;
        n -= 8;
    }
    while (n--) c = __crc32cb(c, *p++);
    return ~c;
}
static int hw_detect(void) {
#if defined(__ARM_FEATURE_CRC32)
    return 1;
#elif defined(__linux__)
    return (getauxval(AT_HWCAP) & HWCAP_CRC32) ? 1 : 0;
#else
    return 0;
#endif
}
#else
#define EL_CRC_HW_NAME "table"
static uint32_t crc_hw(uint32_t crc, const uint8_t *p, size_t n) { return crc_table(crc, p, n); }
static int hw_detect(void) { return 0; }
#endif

static _Atomic int g_hw = -1; /* -1 unknown, 0 no, 1 yes */

int el_crc32c_hw_available(void) {
    int v = atomic_load_explicit(&g_hw, memory_order_relaxed);
    if (v < 0) {
        v = hw_detect();
        atomic_store_explicit(&g_hw, v, memory_order_relaxed);
    }
    return v;
}

const char *el_crc32c_impl_name(void) { return el_crc32c_hw_available() ? EL_CRC_HW_NAME : "table"; }

uint32_t el_crc32c_with(el_crc32c_impl impl, uint32_t crc, const void *buf, size_t n) {
    if (n == 0) return crc;
    if (impl == EL_CRC32C_HW && el_crc32c_hw_available()) return crc_hw(crc, buf, n);
    return crc_table(crc, buf, n);
}

uint32_t el_crc32c(uint32_t crc, const void *buf, size_t n) {
    return el_crc32c_with(EL_CRC32C_HW, crc, buf, n);
}
