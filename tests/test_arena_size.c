/* test_arena_size.c - el_size_parse accepts exactly the documented grammar (exact integer
 * results, overflow caught) and el_size_format prints the human form. */
// ctest-labels: arena;unit
#include "tests/support/el_test.h"

#include <string.h>

#define KI 1024ull
#define MI (1024ull * 1024ull)
#define GI (1024ull * 1024ull * 1024ull)
#define TI (1024ull * 1024ull * 1024ull * 1024ull)

static void check_good(const char *text, uint64_t want) {
    uint64_t got = 0;
    el_status s = el_size_parse(text, &got);
    if (s != EL_OK || got != want)
        fprintf(stderr, "  \"%s\": status %s (%s), got %llu, want %llu\n", text,
                el_status_str(s), el_last_error(), (unsigned long long)got,
                (unsigned long long)want);
    EL_CHECK(s == EL_OK && got == want);
}

static void check_bad(const char *text, const char *msg_part) {
    uint64_t got = 12345;
    el_status s = el_size_parse(text, &got);
    if (s != EL_E_USAGE) fprintf(stderr, "  \"%s\" accepted as %llu\n", text, (unsigned long long)got);
    EL_CHECK(s == EL_E_USAGE);
    EL_CHECK(got == 12345); /* untouched on failure */
    if (msg_part) {
        bool has = strstr(el_last_error(), msg_part) != NULL;
        if (!has) fprintf(stderr, "  \"%s\": message \"%s\" lacks \"%s\"\n", text, el_last_error(), msg_part);
        EL_CHECK(has);
    }
}

static void check_format(uint64_t bytes, const char *want) {
    char buf[64];
    memset(buf, 'x', sizeof buf);
    char *r = el_size_format(bytes, buf, sizeof buf);
    EL_CHECK(r == buf);
    if (strcmp(buf, want) != 0) fprintf(stderr, "  format(%llu) = \"%s\", want \"%s\"\n",
                                        (unsigned long long)bytes, buf, want);
    EL_CHECK(strcmp(buf, want) == 0);
}

int main(void) {
    /* plain bytes */
    check_good("1", 1);
    check_good("123", 123);
    check_good("4096", 4096);
    check_good("007", 7);
    check_good("123B", 123);
    check_good("123b", 123);
    check_good("18446744073709551615", UINT64_MAX);
    /* units, every spelling */
    check_good("4K", 4 * KI);
    check_good("4k", 4 * KI);
    check_good("4KB", 4 * KI);
    check_good("4KiB", 4 * KI);
    check_good("4kib", 4 * KI);
    check_good("4KIB", 4 * KI);
    check_good("512M", 512 * MI);
    check_good("512MiB", 512 * MI);
    check_good("2G", 2 * GI);
    check_good("2gb", 2 * GI);
    check_good("3T", 3 * TI);
    check_good("3TiB", 3 * TI);
    check_good("16777215T", 16777215ull * TI); /* just below 2^64 */
    /* fractions that are whole numbers of bytes */
    check_good("1.5G", GI + GI / 2);
    check_good("1.5GiB", GI + GI / 2);
    check_good("0.5K", 512);
    check_good("1.25M", MI + MI / 4);
    check_good("2.50K", 2560);
    check_good("1.0", 1);
    check_good("1.000G", GI);
    check_good("0.0009765625M", KI);             /* 2^-10 M, ten fractional digits */

    /* rejected */
    check_bad("", "empty");
    check_bad(NULL, "empty");
    check_bad("0", "is 0");
    check_bad("0.0000000000009094947017729282379150390625T", "fractional digits"); /* 2^-40 T */
    check_bad("0K", NULL);
    check_bad("0.0G", NULL);
    check_bad("-1", "digit");
    check_bad("+1", "digit");
    check_bad(" 1G", "digit");
    check_bad("1 G", "unexpected");
    check_bad("1G ", "unexpected");
    check_bad("1G\n", "unexpected");
    check_bad(".5G", "digit");
    check_bad("1.", "digit must follow");
    check_bad("1.G", "digit must follow");
    check_bad("1.5.2G", "unexpected");
    check_bad("1e3", "unexpected");
    check_bad("1GG", "unexpected");
    check_bad("1Gi", "unexpected");
    check_bad("1GiBB", "unexpected");
    check_bad("1iB", "unexpected");
    check_bad("1BB", "unexpected");
    check_bad("1P", "unexpected");
    check_bad("16E", "unexpected");
    check_bad("0x10", "unexpected");
    check_bad("1,5G", "unexpected");
    check_bad("G", "digit");
    check_bad("1.5", "whole number");   /* 1.5 bytes */
    check_bad("0.1K", "whole number");  /* 102.4 bytes */
    check_bad("1.1G", "whole number");  /* 1181116006.4 bytes */
    check_bad("1.00000000000000000001K", "fractional digits");
    /* overflow, caught exactly */
    check_bad("18446744073709551616", "too large");        /* 2^64 */
    check_bad("99999999999999999999999", "too large");
    check_bad("17179869184G", "too large");                 /* 2^34 G = 2^64 */
    check_bad("16777216T", "too large");                    /* 2^24 T = 2^64 */
    check_bad("16777215.9999999T", NULL);                   /* not whole, and near the top */
    check_bad("16777215.99999999999999999T", NULL);
    check_bad("18446744073709551615.5", NULL);
    /* The largest values: a whole T count plus a fraction still fits below 2^64. */
    check_good("16777215.5T", UINT64_MAX - TI / 2 + 1);
    check_good("16777215.25T", 16777215ull * TI + TI / 4);

    /* format */
    check_format(0, "0 B");
    check_format(1, "1 B");
    check_format(512, "512 B");
    check_format(1023, "1023 B");
    check_format(1024, "1.00 KiB");
    check_format(1536, "1.50 KiB");
    check_format(4096, "4.00 KiB");
    check_format(1048575, "1.00 MiB");       /* 1023.999 KiB rounds up into the next unit */
    check_format(MI + MI / 4, "1.25 MiB");
    check_format(GI + GI / 2, "1.50 GiB");
    check_format(GI + 5 * GI / 1000, "1.00 GiB"); /* 1.005 GiB minus a hair: 1.00 */
    check_format(3 * TI, "3.00 TiB");
    check_format(1ull << 60, "1.00 EiB");
    check_format(UINT64_MAX, "16.00 EiB");
    {
        char small[6];
        el_size_format(GI + GI / 2, small, sizeof small);
        EL_CHECK(strlen(small) == 5 && strncmp(small, "1.50 ", 5) == 0); /* truncated, NUL-terminated */
        EL_CHECK(el_size_format(1, small, 0) == small);
    }
    return el_test_finish("test_arena_size");
}
