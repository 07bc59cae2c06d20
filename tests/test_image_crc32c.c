/* test_image_crc32c.c - CRC32C: the RFC 3720 (iSCSI) appendix B.4 test vectors, the
 * standard check value, incremental use, and agreement of every available implementation
 * (hardware and table) on random buffers of odd lengths at every alignment. */
// ctest-labels: image;quick
#include "tests/support/el_test.h"

#include "platform/crc32c.h"

#include <stdlib.h>
#include <string.h>

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static uint32_t next_u32(void) { return (uint32_t)(el_test_xorshift64(&rng) >> 16); }

static void vectors(el_crc32c_impl impl) {
    uint8_t buf[48];
    /* RFC 3720 B.4: 32 bytes of zeros, of ones, incrementing, decrementing; an iSCSI read PDU. */
    memset(buf, 0, 32);
    EL_CHECK(el_crc32c_with(impl, 0, buf, 32) == 0x8A9136AAu);
    memset(buf, 0xFF, 32);
    EL_CHECK(el_crc32c_with(impl, 0, buf, 32) == 0x62A8AB43u);
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)i;
    EL_CHECK(el_crc32c_with(impl, 0, buf, 32) == 0x46DD794Eu);
    for (int i = 0; i < 32; i++) buf[i] = (uint8_t)(31 - i);
    EL_CHECK(el_crc32c_with(impl, 0, buf, 32) == 0x113FDB5Cu);
    static const uint8_t pdu[48] = {
        0x01, 0xc0, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
        0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x04, 0x00, 0x00, 0x00, 0x00, 0x14, 0x00, 0x00, 0x00, 0x18,
        0x28, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    EL_CHECK(el_crc32c_with(impl, 0, pdu, 48) == 0xD9963A56u);
    /* The catalogue check value: CRC of "123456789". */
    EL_CHECK(el_crc32c_with(impl, 0, "123456789", 9) == 0xE3069283u);
    EL_CHECK(el_crc32c_with(impl, 0, NULL, 0) == 0);
}

int main(void) {
    printf("crc32c path: %s (hardware %s)\n", el_crc32c_impl_name(),
           el_crc32c_hw_available() ? "available" : "not available");
    vectors(EL_CRC32C_TABLE);
    vectors(EL_CRC32C_HW); /* the table again where there is no hardware path */

    /* Incremental: any split gives the whole. */
    uint8_t *big = malloc(70000);
    for (size_t i = 0; i < 70000; i++) big[i] = (uint8_t)next_u32();
    uint32_t whole = el_crc32c(0, big, 70000);
    for (size_t cut = 0; cut < 70000; cut += 6997)
        EL_CHECK(el_crc32c(el_crc32c(0, big, cut), big + cut, 70000 - cut) == whole);

    /* Paths agree on odd lengths at every alignment. */
    int disagree = 0;
    for (int k = 0; k < 2000; k++) {
        size_t off = next_u32() % 16, len = next_u32() % (k < 1000 ? 67 : 69000);
        if (off + len > 70000) len = 70000 - off;
        uint32_t a = el_crc32c_with(EL_CRC32C_TABLE, 0, big + off, len);
        uint32_t b = el_crc32c_with(EL_CRC32C_HW, 0, big + off, len);
        uint32_t seed = next_u32();
        uint32_t c = el_crc32c_with(EL_CRC32C_TABLE, seed, big + off, len);
        uint32_t d = el_crc32c_with(EL_CRC32C_HW, seed, big + off, len);
        if (a != b || c != d) disagree++;
    }
    EL_CHECK(disagree == 0);
    /* Around the hardware path's three-lane rounds (3 x 4096 bytes each): one round exactly,
     * a byte either side, several rounds with a tail, and a flipped bit in each lane. */
    static const size_t round_lens[] = {12287, 12288, 12289, 24576, 36863, 69999};
    disagree = 0;
    for (size_t k = 0; k < sizeof round_lens / sizeof round_lens[0]; k++)
        for (size_t off = 0; off < 2; off++) {
            size_t len = round_lens[k] - off;
            if (el_crc32c_with(EL_CRC32C_TABLE, 0x1234u, big + off, len) !=
                el_crc32c_with(EL_CRC32C_HW, 0x1234u, big + off, len))
                disagree++;
        }
    for (size_t lane = 0; lane < 3; lane++) {
        size_t at = lane * 4096 + 1000;
        uint32_t before = el_crc32c(0, big, 12288);
        big[at] ^= 0x10;
        if (el_crc32c(0, big, 12288) == before ||
            el_crc32c_with(EL_CRC32C_TABLE, 0, big, 12288) != el_crc32c(0, big, 12288))
            disagree++;
        big[at] ^= 0x10;
    }
    EL_CHECK(disagree == 0);
    /* A single flipped bit always changes the CRC. */
    int missed = 0;
    for (int k = 0; k < 500; k++) {
        size_t bit = next_u32() % (4096 * 8);
        big[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        uint32_t flipped = el_crc32c(0, big, 4096);
        big[bit / 8] ^= (uint8_t)(1u << (bit % 8));
        if (flipped == el_crc32c(0, big, 4096)) missed++;
    }
    EL_CHECK(missed == 0);
    free(big);
    return el_test_finish("test_image_crc32c");
}
