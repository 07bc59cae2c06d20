/* size.c - byte sizes as people write them ("1.5G", "512MiB", "4096") and as we print
 * them ("1.50 GiB"). Parsing is exact integer arithmetic, never floating point.
 *
 * Grammar (case-insensitive): DIGITS [ "." DIGITS ] [ (K|M|G|T) [ "iB" | "B" ] | "B" ].
 * K/M/G/T are powers of 1024. Rejected: empty text, signs, spaces, trailing junk, 0,
 * values above UINT64_MAX, more than 19 significant fractional digits, and fractions whose
 * value is not a whole number of bytes ("1.5" = 1.5 bytes, "0.1K" = 102.4 bytes): a size
 * that silently rounds is a size the user did not write, so the message asks for one that
 * is exact (a smaller unit). "1.0" and "2.50K" are fine. */
#include "platform/platform.h"

#include <stdio.h>
#include <string.h>

#define SIZE_MAX_FRAC_DIGITS 19 /* 10^19 still fits in uint64_t */

static bool is_digit(char c) { return c >= '0' && c <= '9'; }

static char lower(char c) { return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c; }

el_status el_size_parse(const char *text, uint64_t *out_bytes) {
    if (!out_bytes) return el_errorf(EL_E_USAGE, "el_size_parse: out_bytes is NULL");
    if (!text || !*text)
        return el_errorf(EL_E_USAGE, "size is empty; write e.g. 512M, 1.5G or 4096");
    const char *p = text;
    if (!is_digit(*p))
        return el_errorf(EL_E_USAGE, "size \"%.64s\": must start with a digit (no sign, no "
                         "spaces); write e.g. 512M, 1.5G or 4096", text);

    uint64_t whole = 0;
    bool too_big = false;
    for (; is_digit(*p); p++)
        if (!el_mul_u64(whole, 10, &whole) || !el_add_u64(whole, (uint64_t)(*p - '0'), &whole))
            too_big = true;

    /* Fraction: only its significant digits matter (1.50G == 1.5G). */
    uint64_t frac = 0;
    unsigned frac_digits = 0;
    if (*p == '.') {
        p++;
        const char *fs = p;
        while (is_digit(*p)) p++;
        if (p == fs)
            return el_errorf(EL_E_USAGE, "size \"%.64s\": a digit must follow the '.'", text);
        const char *fe = p;
        while (fe > fs && fe[-1] == '0') fe--;
        if (fe - fs > SIZE_MAX_FRAC_DIGITS)
            return el_errorf(EL_E_USAGE, "size \"%.64s\": more than %d fractional digits",
                             text, SIZE_MAX_FRAC_DIGITS);
        for (const char *q = fs; q < fe; q++) frac = frac * 10 + (uint64_t)(*q - '0');
        frac_digits = (unsigned)(fe - fs);
    }

    unsigned shift = 0; /* log2 of the unit */
    switch (lower(*p)) {
    case 'k': shift = 10; break;
    case 'm': shift = 20; break;
    case 'g': shift = 30; break;
    case 't': shift = 40; break;
    default: break;
    }
    if (shift) {
        p++;
        if (lower(p[0]) == 'i' && lower(p[1]) == 'b')
            p += 2;
        else if (lower(p[0]) == 'b')
            p++;
    } else if (lower(*p) == 'b') {
        p++;
    }
    if (*p)
        return el_errorf(EL_E_USAGE, "size \"%.64s\": unexpected \"%.16s\"; the units are K, M, "
                         "G, T (powers of 1024, optionally followed by iB or B)", text, p);

    uint64_t bytes = 0;
    if (too_big || !el_mul_u64(whole, (uint64_t)1 << shift, &bytes))
        too_big = true;
    if (frac_digits && !too_big) {
        /* frac / 10^d * 2^shift is whole iff 5^d divides frac and 2^d divides the rest
         * times 2^shift. q < 2^d <= 2^19, so q << shift < 2^59 cannot overflow. */
        uint64_t pow5 = 1;
        for (unsigned i = 0; i < frac_digits; i++) pow5 *= 5;
        uint64_t q = frac / pow5, t = q << shift;
        if (frac % pow5 != 0 || (t & (((uint64_t)1 << frac_digits) - 1)) != 0)
            return el_errorf(EL_E_USAGE, "size \"%.64s\" is not a whole number of bytes; use "
                             "a smaller unit or fewer decimals (1.5G and 1536M are exact, "
                             "1.1G is not)", text);
        if (!el_add_u64(bytes, t >> frac_digits, &bytes)) too_big = true;
    }
    if (too_big)
        return el_errorf(EL_E_USAGE, "size \"%.64s\" is too large: the maximum is "
                         "18446744073709551615 bytes (16 EiB)", text);
    if (bytes == 0) return el_errorf(EL_E_USAGE, "size \"%.64s\" is 0; give a size > 0", text);
    *out_bytes = bytes;
    return EL_OK;
}

char *el_size_format(uint64_t bytes, char *buf, size_t cap) {
    static const char *const units[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB"};
    if (!buf || cap == 0) return buf;
    if (bytes < 1024) {
        snprintf(buf, cap, "%llu B", (unsigned long long)bytes);
        return buf;
    }
    unsigned u = 1;
    while (u < 6 && bytes >> (10 * (u + 1)) != 0) u++;
    unsigned s = 10 * u;
    uint64_t whole = bytes >> s, rem = bytes & (((uint64_t)1 << s) - 1);
    /* Hundredths, rounded half up. rem * 100 would overflow for EiB, so drop the low bits
     * first; they cannot change the second decimal. */
    unsigned drop = s > 50 ? s - 50 : 0;
    uint64_t hund = (((rem >> drop) * 100) + ((uint64_t)1 << (s - drop - 1))) >> (s - drop);
    if (hund >= 100) {
        whole++;
        hund -= 100;
        if (whole == 1024 && u < 6) { /* 1023.999 KiB prints as 1.00 MiB */
            whole = 1;
            u++;
        }
    }
    snprintf(buf, cap, "%llu.%02llu %s", (unsigned long long)whole, (unsigned long long)hund,
             units[u]);
    return buf;
}
