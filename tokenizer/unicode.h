/* unicode.h - the Unicode character classes the tokenizers need (internal), from the tables
 * scripts/gen_unicode.py generates into tokenizer/unicode_tables.c (the Unicode version is
 * in el_uni_version and in that file's header).
 *
 * Classes (one per code point): letter (L*, GPT-2's \p{L}), number (N*, \p{N}),
 * punctuation (P*), nonspacing mark (Mn), control (Cc, Cf, Co, Cs: what HF's BertNormalizer
 * removes; unassigned Cn code points are kept, as HF keeps them), other.
 *
 * What is approximated against HF tokenizers (Rust):
 *   - the Unicode version: Rust's and the unicode_categories crate's tables may be older or
 *     newer than Python's; characters assigned in between may be classed differently;
 *   - el_uni_bert_fold works one character at a time: NFD's canonical reordering of
 *     combining marks is not done. Reordering only moves marks with a nonzero combining
 *     class; the uncased fold drops the Mn ones, so only sequences of several Mc/Me marks
 *     with nonzero classes could come out in another order (none in practice). */
#ifndef EL_UNICODE_H
#define EL_UNICODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum {
    EL_UNI_OTHER = 0,
    EL_UNI_LETTER = 1,
    EL_UNI_NUMBER = 2,
    EL_UNI_PUNCT = 3,
    EL_UNI_MN = 4,
    EL_UNI_CONTROL = 5,
};

extern const char el_uni_version[];
extern const uint32_t el_uni_class_count;
extern const uint32_t el_uni_class_start[];
extern const uint8_t el_uni_class_kind[];
extern const uint32_t el_uni_fold_count;
extern const uint32_t el_uni_fold_cp[];
extern const uint32_t el_uni_fold_to[][3];
extern const uint32_t el_uni_nfc_count;
extern const uint32_t el_uni_nfc_start[];
extern const uint16_t el_uni_nfc_val[];
extern const uint32_t el_uni_comp_count;
extern const uint32_t el_uni_comp[][3];
extern const uint32_t el_uni_word_count;
extern const uint32_t el_uni_word_start[];
extern const uint32_t el_uni_dmax_count;
extern const uint32_t el_uni_dmax_cp[];
extern const uint8_t el_uni_dmax_ccc[];

/* The class (EL_UNI_*) of code point cp (<= U+10FFFF). */
int el_uni_class(uint32_t cp);

/* Unicode White_Space (what Rust's char::is_whitespace and Oniguruma's \s test). */
bool el_uni_is_space(uint32_t cp);

/* HF's CJK ideograph ranges (BertNormalizer handle_chinese_chars). */
bool el_uni_is_cjk(uint32_t cp);

/* BERT punctuation: ASCII punctuation (Rust's is_ascii_punctuation: !"#$%&'()*+,-./:;<=>?@
 * [\]^_`{|}~) or a P* character. */
bool el_uni_is_bert_punct(uint32_t cp);

/* The BERT uncased fold of cp (NFD, Mn dropped, lower-cased) into out (room for 3 code
 * points); returns how many (0: the character vanishes). */
size_t el_uni_bert_fold(uint32_t cp, uint32_t out[3]);

/* The regex crate's \w (what HF's single_word added tokens test on either side): letters,
 * Nd/Nl numbers, marks, connector punctuation ('_'), U+200C/U+200D. */
bool el_uni_is_word(uint32_t cp);

/* Whether NFC leaves the valid UTF-8 text s[0..n) unchanged, decided without normalizing:
 * returns n when it does, else the byte offset of a character NFC may change. Every
 * character must be NFC_Quick_Check Yes, nonzero combining classes must be in canonical
 * order, and a Maybe character (the second of a canonical composition) must not compose:
 * of class 0, with the character before it (Hangul by arithmetic); of class k > 0, with
 * the last starter unless a mark of class k stands between them. Conservative where the
 * last starter is precomposed with a mark of a class above k (e + U+0301 then U+0323: NFD
 * would reorder the marks): reported as a change. So n means exactly "the text is NFC";
 * a few rare NFC texts are reported too. */
size_t el_uni_nfc_stable(const char *s, size_t n);

/* Decodes the valid UTF-8 character at s[0..n) (n >= its length): sets *cp, returns its
 * length. The text must have been validated (el_utf8_check). */
size_t el_uni_decode(const char *s, size_t n, uint32_t *cp);
/* Encodes cp as UTF-8 into out (room for 4); returns the length. */
size_t el_uni_encode(uint32_t cp, char out[4]);

#endif /* EL_UNICODE_H */
