/* crc32c.h - CRC32C (Castagnoli, reflected polynomial 0x82F63B78, init and final xor
 * 0xFFFFFFFF), the checksum of every region of an .elimg image (docs/FORMAT.md).
 * Hardware instructions where the CPU has them (x86 SSE4.2 crc32, ARMv8 CRC32C), a
 * slice-by-8 table otherwise; all paths give the same value. */
#ifndef EL_CRC32C_H
#define EL_CRC32C_H

#include <stddef.h>
#include <stdint.h>

/* CRC32C of n bytes; crc is the value of the bytes before (0 to start), so
 * el_crc32c(el_crc32c(0, a, na), b, nb) == CRC of a followed by b. buf may be NULL if n is 0. */
uint32_t el_crc32c(uint32_t crc, const void *buf, size_t n);

/* The implementations, for tests: each returns the same value as el_crc32c. */
typedef enum el_crc32c_impl {
    EL_CRC32C_TABLE,  /* slice-by-8, any CPU */
    EL_CRC32C_HW,     /* SSE4.2 or ARMv8 CRC; only if el_crc32c_hw_available() */
} el_crc32c_impl;

/* True if this CPU has the hardware CRC32C instructions (and this build uses them). */
int el_crc32c_hw_available(void);
/* The name of the path el_crc32c uses: "sse4.2", "armv8-crc" or "table". */
const char *el_crc32c_impl_name(void);
uint32_t el_crc32c_with(el_crc32c_impl impl, uint32_t crc, const void *buf, size_t n);

#endif /* EL_CRC32C_H */
