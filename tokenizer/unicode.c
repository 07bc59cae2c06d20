/* unicode.c - lookups over the generated tables (tokenizer/unicode_tables.c): classes by
 * binary search over range starts, with an ASCII fast path; the BERT fold by binary search
 * over the folded code points, Hangul syllables by arithmetic. */
#include "tokenizer/unicode.h"

static const uint8_t ascii_class[128] = {
    /* filled on first principles: 0x00-0x1f and 0x7f control, letters, digits, punct */
#define C EL_UNI_CONTROL
#define P EL_UNI_PUNCT
#define L EL_UNI_LETTER
#define N EL_UNI_NUMBER
#define O EL_UNI_OTHER
    C, C, C, C, C, C, C, C, C, C, C, C, C, C, C, C, /* 00 */
    C, C, C, C, C, C, C, C, C, C, C, C, C, C, C, C, /* 10 */
    O, P, P, P, O, P, P, P, P, P, P, O, P, P, P, P, /* 20: space ! " # $ % & ' ( ) * + , - . / */
    N, N, N, N, N, N, N, N, N, N, P, P, O, O, O, P, /* 30: 0-9 : ; < = > ? */
    P, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* 40: @ A-O */
    L, L, L, L, L, L, L, L, L, L, L, P, P, P, O, P, /* 50: P-Z [ \ ] ^ _ */
    O, L, L, L, L, L, L, L, L, L, L, L, L, L, L, L, /* 60: ` a-o */
    L, L, L, L, L, L, L, L, L, L, L, P, O, P, O, C, /* 70: p-z { | } ~ DEL */
#undef C
#undef P
#undef L
#undef N
#undef O
};

/* The range holding cp: the last of starts[0..count) (ascending, starts[0] = 0) <= cp. */
static uint32_t range_of(const uint32_t *starts, uint32_t count, uint32_t cp) {
    uint32_t lo = 0, hi = count;
    while (hi - lo > 1) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (starts[mid] <= cp) lo = mid;
        else hi = mid;
    }
    return lo;
}

int el_uni_class(uint32_t cp) {
    if (cp < 128) return ascii_class[cp];
    return el_uni_class_kind[range_of(el_uni_class_start, el_uni_class_count, cp)];
}

bool el_uni_is_space(uint32_t cp) {
    if (cp < 0x80) return cp == ' ' || (cp >= 0x09 && cp <= 0x0d);
    return cp == 0x85 || cp == 0xa0 || cp == 0x1680 || (cp >= 0x2000 && cp <= 0x200a) ||
           cp == 0x2028 || cp == 0x2029 || cp == 0x202f || cp == 0x205f || cp == 0x3000;
}

bool el_uni_is_cjk(uint32_t cp) {
    return (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) ||
           (cp >= 0x20000 && cp <= 0x2A6DF) || (cp >= 0x2A700 && cp <= 0x2B73F) ||
           (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B920 && cp <= 0x2CEAF) ||
           (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

bool el_uni_is_bert_punct(uint32_t cp) {
    if (cp < 0x80) return (cp >= 0x21 && cp <= 0x2f) || (cp >= 0x3a && cp <= 0x40) ||
                          (cp >= 0x5b && cp <= 0x60) || (cp >= 0x7b && cp <= 0x7e);
    return el_uni_class(cp) == EL_UNI_PUNCT;
}

size_t el_uni_bert_fold(uint32_t cp, uint32_t out[3]) {
    if (cp < 0x80) {
        out[0] = (cp >= 'A' && cp <= 'Z') ? cp + 32 : cp;
        return 1;
    }
    if (cp >= 0xAC00 && cp <= 0xD7A3) { /* Hangul syllable: L V (T) jamo (Unicode 3.12) */
        uint32_t s = cp - 0xAC00;
        out[0] = 0x1100 + s / (21 * 28);
        out[1] = 0x1161 + (s % (21 * 28)) / 28;
        if (s % 28 == 0) return 2;
        out[2] = 0x11A7 + s % 28;
        return 3;
    }
    if (el_uni_class(cp) == EL_UNI_MN) return 0;
    uint32_t lo = 0, hi = el_uni_fold_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (el_uni_fold_cp[mid] < cp) lo = mid + 1;
        else hi = mid;
    }
    if (lo < el_uni_fold_count && el_uni_fold_cp[lo] == cp) {
        size_t n = 0;
        while (n < 3 && el_uni_fold_to[lo][n] != 0) {
            out[n] = el_uni_fold_to[lo][n];
            n++;
        }
        return n;
    }
    out[0] = cp;
    return 1;
}

size_t el_uni_decode(const char *str, size_t n, uint32_t *cp) {
    const unsigned char *s = (const unsigned char *)str;
    (void)n;
    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] < 0xe0) {
        *cp = (uint32_t)(s[0] & 0x1f) << 6 | (s[1] & 0x3f);
        return 2;
    }
    if (s[0] < 0xf0) {
        *cp = (uint32_t)(s[0] & 0x0f) << 12 | (uint32_t)(s[1] & 0x3f) << 6 | (s[2] & 0x3f);
        return 3;
    }
    *cp = (uint32_t)(s[0] & 0x07) << 18 | (uint32_t)(s[1] & 0x3f) << 12 |
          (uint32_t)(s[2] & 0x3f) << 6 | (s[3] & 0x3f);
    return 4;
}

size_t el_uni_encode(uint32_t cp, char out[4]) {
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
    out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

bool el_uni_is_word(uint32_t cp) {
    if (cp < 0x80)
        return cp == '_' || (cp >= '0' && cp <= '9') || ((cp | 0x20) >= 'a' && (cp | 0x20) <= 'z');
    uint32_t r = range_of(el_uni_word_start, el_uni_word_count, cp);
    return el_uni_word_start[r] <= cp && (r & 1) == 0; /* ranges from [0] on: word */
}

/* NFC_Quick_Check << 8 | combining class of cp. */
static uint32_t nfc_val(uint32_t cp) {
    if (cp < 0x300) return 0;
    return el_uni_nfc_val[range_of(el_uni_nfc_start, el_uni_nfc_count, cp)];
}

/* Whether a then b is a canonical composition (binary search by (first, second)). */
static bool nfc_composes(uint32_t a, uint32_t b) {
    if (a >= 0x1100 && a <= 0x1112 && b >= 0x1161 && b <= 0x1175) return true; /* L + V */
    if (a >= 0xAC00 && a <= 0xD7A3 && (a - 0xAC00) % 28 == 0 && b >= 0x11A8 && b <= 0x11C2)
        return true; /* LV + T */
    uint64_t key = (uint64_t)a << 32 | b;
    uint32_t lo = 0, hi = el_uni_comp_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        uint64_t k = (uint64_t)el_uni_comp[mid][0] << 32 | el_uni_comp[mid][1];
        if (k == key) return true;
        if (k < key) lo = mid + 1;
        else hi = mid;
    }
    return false;
}

/* The highest combining class in the canonical decomposition of starter cp (0: none). */
static uint32_t nfc_dmax(uint32_t cp) {
    uint32_t lo = 0, hi = el_uni_dmax_count;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (el_uni_dmax_cp[mid] == cp) return el_uni_dmax_ccc[mid];
        if (el_uni_dmax_cp[mid] < cp) lo = mid + 1;
        else hi = mid;
    }
    return 0;
}

size_t el_uni_nfc_stable(const char *s, size_t n) {
    const uint32_t none = UINT32_MAX;
    uint32_t prev = none, starter = none, last_ccc = 0;
    for (size_t i = 0; i < n;) {
        uint32_t cp;
        size_t l = el_uni_decode(s + i, n - i, &cp);
        uint32_t v = nfc_val(cp), qc = v >> 8, ccc = v & 0xff;
        if (qc == 2) return i;
        if (ccc != 0 && last_ccc > ccc) return i;
        if (qc == 1 && ccc == 0 && prev != none && nfc_composes(prev, cp)) return i;
        if (qc == 1 && ccc != 0 && starter != none) {
            /* marks since the starter: classes <= ccc; one of class ccc blocks */
            bool blocked = prev != starter && last_ccc == ccc;
            if (!blocked && (nfc_dmax(starter) > ccc || nfc_composes(starter, cp))) return i;
        }
        if (ccc == 0) starter = cp;
        last_ccc = ccc;
        prev = cp;
        i += l;
    }
    return n;
}
