/* test_loader_convert.c - el_convert's vector paths (loader/convert.c: F16C, NEON, SSE2) give
 * the scalar conversions' bits (kernels/fp16.h) for every f16 and bf16 value and for f32
 * values across the whole bit space (every 251st pattern, each rounding boundary of f16:
 * ties, the subnormal range, overflow to infinity, NaNs with payloads), in arrays of odd
 * lengths at odd offsets so the vector steps, the tails and the NaN fallback all run. Where
 * the compiler has _Float16 (libgcc's or the hardware's conversion, not ours), finite values
 * are also checked against it. The transposing converter's vector blocks likewise, and an
 * image chunk's unshuffle against the shuffle's definition. */
// ctest-labels: loader;quick
// ctest-timeout: 60
#include "tests/support/el_test.h"

#include "kernels/fp16.h"
#include "loader/image.h"
#include "loader/load_impl.h"

#include <stdlib.h>
#include <string.h>

#define N_BUF (1u << 16)

static uint64_t rng = 0x2545F4914F6CDD1Dull;
static uint32_t next_u32(void) { return (uint32_t)(el_test_xorshift64(&rng) >> 16); }

/* Converts src[0..n) in odd-sized pieces at odd offsets, as the loader's pieces come. */
static void convert_pieces(el_dtype from, const void *src, el_dtype to, void *dst, size_t n) {
    const size_t ses = el_dtype_size(from), des = el_dtype_size(to);
    for (size_t at = 0; at < n;) {
        size_t k = 1 + next_u32() % 77;
        if (k > n - at) k = n - at;
        el_convert(from, (const uint8_t *)src + at * ses, to, (uint8_t *)dst + at * des, k);
        at += k;
    }
}

static void check_half_to_f32(el_dtype from) {
    uint16_t *h = malloc(N_BUF * 2);
    uint32_t *got = malloc(N_BUF * 4);
    for (uint32_t i = 0; i < N_BUF; i++) h[i] = (uint16_t)i;
    convert_pieces(from, h, EL_DT_F32, got, N_BUF);
    int bad = 0, bad_ref = 0;
    for (uint32_t i = 0; i < N_BUF; i++) {
        float want = from == EL_DT_F16 ? el_fp16_to_fp32(h[i]) : el_bf16_to_fp32(h[i]);
        if (got[i] != el_f32_bits(want)) bad++;
#if defined(__FLT16_MANT_DIG__)
        if (from == EL_DT_F16 && (h[i] & 0x7c00u) != 0x7c00u) {
            _Float16 f;
            memcpy(&f, &h[i], 2);
            if (got[i] != el_f32_bits((float)f)) bad_ref++;
        }
#endif
    }
    if (bad || bad_ref) printf("%s -> f32: %d differ from the scalar path, %d from _Float16\n",
                               el_dtype_name(from), bad, bad_ref);
    EL_CHECK(bad == 0 && bad_ref == 0);
    free(h);
    free(got);
}

/* f32 patterns near every f16 rounding boundary: the half values, the midpoints between
 * neighbours (ties) and one ulp either side, for every half (finite ones; the overflow
 * edge at 65504 / 65520 is among them). */
static size_t boundary_patterns(uint32_t *out, size_t cap) {
    size_t n = 0;
    for (uint32_t hb = 0; hb < 0x7c00u && n + 8 <= cap; hb++) {
        float a = el_fp16_to_fp32((uint16_t)hb), b = el_fp16_to_fp32((uint16_t)(hb + 1));
        uint32_t mid = el_f32_bits(0.5f * a + 0.5f * b); /* exact: one more bit than f16 */
        uint32_t ua = el_f32_bits(a);
        const uint32_t c[4] = {ua, mid - 1, mid, mid + 1};
        for (int k = 0; k < 4; k++) {
            out[n++] = c[k];
            out[n++] = c[k] | 0x80000000u;
        }
    }
    return n;
}

static void check_f32_to_f16(void) {
    uint32_t *in = malloc(N_BUF * 4 * 8);
    uint16_t *got = malloc(N_BUF * 2 * 8);
    const size_t cap = N_BUF * 8;
    int bad = 0, bad_ref = 0;
    size_t total = 0;
    for (int pass = 0; pass < 3; pass++) {
        size_t n = 0;
        if (pass == 0) {
            n = boundary_patterns(in, cap);
        } else if (pass == 1) { /* specials, NaN payloads, among ordinary values */
            static const uint32_t sp[] = {0x7f800000u, 0xff800000u, 0x7fc00000u, 0x7f800001u,
                                          0xffbfffffu, 0x7fa5a5a5u, 0x00000001u, 0x80000000u,
                                          0x477ff000u, 0x477fefffu, 0x33000000u, 0x33000001u};
            for (; n < cap; n++)
                in[n] = n % 13 == 5 ? sp[next_u32() % 12]
                                    : el_f32_bits((float)(next_u32() % 2000) * 0.01f - 10.0f);
        } else { /* the whole bit space, every 251st pattern, a buffer at a time */
            for (uint64_t u = 0; u <= 0xffffffffull; u += 251) {
                in[n++] = (uint32_t)u;
                if (n == cap || u + 251 > 0xffffffffull) {
                    convert_pieces(EL_DT_F32, in, EL_DT_F16, got, n);
                    for (size_t i = 0; i < n; i++)
                        if (got[i] != el_fp32_to_fp16(el_bits_f32(in[i]))) bad++;
                    total += n;
                    n = 0;
                }
            }
            break;
        }
        convert_pieces(EL_DT_F32, in, EL_DT_F16, got, n);
        for (size_t i = 0; i < n; i++) {
            float f = el_bits_f32(in[i]);
            if (got[i] != el_fp32_to_fp16(f)) bad++;
#if defined(__FLT16_MANT_DIG__)
            if (f == f) {
                _Float16 r = (_Float16)f;
                uint16_t rb;
                memcpy(&rb, &r, 2);
                if (got[i] != rb) bad_ref++;
            }
#endif
        }
        total += n;
    }
    printf("f32 -> f16: %zu values, %d differ from the scalar path, %d from _Float16\n", total,
           bad, bad_ref);
    EL_CHECK(total > 10000000);
    EL_CHECK(bad == 0 && bad_ref == 0);
    free(in);
    free(got);
}

/* The transposing converter's 32 x 32 vector blocks (and its edges): a [rows, cols] f32
 * matrix holding ties, subnormals, NaNs with payloads, placed [cols, rows] as f32 (bits
 * kept) and as f16 (the scalar rounding), against an element loop. */
static void check_transposed(uint64_t rows, uint64_t cols) {
    const uint64_t n = rows * cols;
    uint32_t *in = malloc(n * 4), *t32 = malloc(n * 4);
    uint16_t *t16 = malloc(n * 2);
    static const uint32_t sp[] = {0x7fa5a5a5u, 0xffc00001u, 0x7f800000u, 0x00000001u,
                                  0x33000000u, 0x477ff000u, 0x3f800800u, 0x3f801800u};
    for (uint64_t i = 0; i < n; i++)
        in[i] = next_u32() % 97 == 0 ? sp[next_u32() % 8]
                                     : el_f32_bits((float)(int)(next_u32() % 4001 - 2000) * 1e-3f);
    el_convert_transposed(EL_DT_F32, in, EL_DT_F32, t32, rows, cols, 0, n);
    el_convert_transposed(EL_DT_F32, in, EL_DT_F16, t16, rows, cols, 0, n);
    int bad = 0;
    for (uint64_t r = 0; r < rows; r++)
        for (uint64_t c = 0; c < cols; c++) {
            if (t32[c * rows + r] != in[r * cols + c]) bad++;
            if (t16[c * rows + r] != el_fp32_to_fp16(el_bits_f32(in[r * cols + c]))) bad++;
        }
    if (bad) printf("transposed [%llu, %llu]: %d elements differ\n", (unsigned long long)rows,
                    (unsigned long long)cols, bad);
    EL_CHECK(bad == 0);
    free(in);
    free(t32);
    free(t16);
}

/* An image chunk's unshuffle (SSE2 / NEON for 2- and 4-byte elements, 16 at a time) is the
 * inverse of the shuffle's definition: byte b of element i sits at b * (n / elem) + i, the
 * n % elem tail bytes as they are. Lengths around the 16-element steps. */
static void check_unshuffle(void) {
    static uint8_t src[4 * 1000 + 3], dst[sizeof src], shuf[sizeof src];
    int bad = 0;
    for (unsigned elem = 1; elem <= 8; elem++)
        for (size_t n = 0; n < sizeof src; n = n < 300 ? n + 1 : n * 3 / 2 + 7) {
            const size_t k = n / elem;
            for (size_t i = 0; i < n; i++) src[i] = (uint8_t)next_u32();
            for (size_t i = 0; i < k; i++)
                for (unsigned b = 0; b < elem; b++) shuf[b * k + i] = src[i * elem + b];
            memcpy(shuf + k * elem, src + k * elem, n - k * elem);
            el_img_unshuffle(shuf, dst, n, elem);
            if (memcmp(dst, src, n)) bad++;
        }
    EL_CHECK(bad == 0);
}

int main(void) {
    check_unshuffle();
    check_transposed(96, 64);
    check_transposed(100, 77);
    check_transposed(33, 1030);
    check_half_to_f32(EL_DT_F16);
    check_half_to_f32(EL_DT_BF16);
    check_f32_to_f16();
    return el_test_finish("test_loader_convert");
}
