#!/usr/bin/env python3
"""gen_unicode.py - writes tokenizer/unicode_tables.c: the Unicode character classes and the
BERT uncased fold the tokenizers need (tokenizer/unicode.h), from Python's unicodedata.

Developer-run; the output is committed:  python3 scripts/gen_unicode.py
The Unicode version is Python's unicodedata.unidata_version and is written into the header
of the generated file (HF tokenizers' Rust crates carry their own Unicode versions; the
classes differ only for characters assigned between the two versions).

Tables
  el_uni_class_start / el_uni_class_kind: the code space cut into ranges, each with one
  class (letter L*, number N*, punctuation P*, nonspacing mark Mn, control Cc/Cf/Co/Cs,
  other); a range ends where the next begins.
  el_uni_fold_*: for every code point whose BERT uncased fold is not itself, the fold:
  NFD, drop the Mn characters, then lower-case each character (Rust's char::to_lowercase,
  the full unconditional mapping; Python's str.lower on one character is the same). Hangul
  syllables are left to code (their NFD is arithmetic); Mn characters fold to nothing
  through their class, not through this table.
  el_uni_nfc_start / el_uni_nfc_val: ranges with one (NFC_Quick_Check << 8 | canonical
  combining class) each; quick check 0 Yes, 1 Maybe (the second character of a canonical
  composition: it may compose with the character before), 2 No (NFC changes it alone).
  el_uni_comp: (first, second, composite) for every canonical composition (primary
  composites), by first then second (Hangul jamo left to code).
  el_uni_word_start: where word characters start and stop, alternately (the first entry
  starts a word range; before it, none): the regex crate's \w, read as
  letters, Nl and Nd numbers, marks, connector punctuation and U+200C/U+200D (HF's
  single_word boundary).
  el_uni_dmax_cp / el_uni_dmax_ccc: the starters whose canonical decomposition holds marks,
  with the highest combining class among them, ascending.
"""
import os
import sys
import unicodedata

OTHER, LETTER, NUMBER, PUNCT, MN, CONTROL = range(6)
NAMES = ["EL_UNI_OTHER", "EL_UNI_LETTER", "EL_UNI_NUMBER", "EL_UNI_PUNCT", "EL_UNI_MN",
         "EL_UNI_CONTROL"]


def klass(cp):
    c = unicodedata.category(chr(cp))
    if c[0] == "L":
        return LETTER
    if c[0] == "N":
        return NUMBER
    if c[0] == "P":
        return PUNCT
    if c == "Mn":
        return MN
    if c in ("Cc", "Cf", "Co", "Cs"):
        return CONTROL
    return OTHER


def fold(cp):
    s = unicodedata.normalize("NFD", chr(cp))
    s = "".join(ch for ch in s if unicodedata.category(ch) != "Mn")
    return "".join(ch.lower() for ch in s)


def nfc_tables():
    """Runs of (quick check << 8 | ccc) and the class-0 compositions."""
    maybe = set(range(0x1161, 0x1176)) | set(range(0x11A8, 0x11C3))  # Hangul V and T jamo
    comp = []
    dmax = []
    for cp in range(0x110000):
        d = unicodedata.decomposition(chr(cp))
        if not d or d.startswith("<"):
            continue
        parts = [int(x, 16) for x in d.split()]
        if len(parts) == 2 and unicodedata.normalize("NFC", chr(cp)) == chr(cp):
            maybe.add(parts[1])
            comp.append((parts[0], parts[1], cp))
        nfd = unicodedata.normalize("NFD", chr(cp))
        top = max(unicodedata.combining(x) for x in nfd)
        if unicodedata.combining(chr(cp)) == 0 and top > 0:
            dmax.append((cp, top))
    starts, vals = [], []
    prev = None
    for cp in range(0x110000):
        if 0xD800 <= cp <= 0xDFFF:
            qc = 0
        elif unicodedata.normalize("NFC", chr(cp)) != chr(cp):
            qc = 2
        else:
            qc = 1 if cp in maybe else 0
        v = qc << 8 | unicodedata.combining(chr(cp))
        if v != prev:
            starts.append(cp)
            vals.append(v)
            prev = v
    return starts, vals, sorted(comp), dmax


def word_starts():
    out, prev = [], False
    for cp in range(0x110000):
        c = unicodedata.category(chr(cp))
        word = (c[0] in "LM" or c in ("Nd", "Nl", "Pc")) or cp in (0x200C, 0x200D)
        if word != prev:
            out.append(cp)
            prev = word
    return out


def array(w, decl, items, per_line):
    """Writes `decl = {` then the items (strings), per_line to a line, then `};`."""
    w(decl)
    for i in range(0, len(items), per_line):
        w("    " + ", ".join(items[i:i + per_line]) + ",")
    w("};")


def main():
    root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
    starts, kinds = [], []
    prev = None
    for cp in range(0x110000):
        k = klass(cp)
        if k != prev:
            starts.append(cp)
            kinds.append(k)
            prev = k
    folds = []
    for cp in range(0x110000):
        if 0xAC00 <= cp <= 0xD7A3 or klass(cp) == MN:
            continue
        if 0xD800 <= cp <= 0xDFFF:
            continue
        f = fold(cp)
        if f != chr(cp):
            folds.append((cp, [ord(x) for x in f]))
    maxlen = max(len(f) for _, f in folds)
    assert maxlen <= 3, maxlen
    pool = []
    out = []
    w = out.append
    w("/* unicode_tables.c - GENERATED by scripts/gen_unicode.py from Python %s's unicodedata, "
      "Unicode %s. Do not edit. */" % (sys.version.split()[0], unicodedata.unidata_version))
    w('#include "tokenizer/unicode.h"')
    w("")
    w('const char el_uni_version[] = "%s";' % unicodedata.unidata_version)
    w("const uint32_t el_uni_class_count = %d;" % len(starts))
    w("/* first code point of each range */")
    array(w, "const uint32_t el_uni_class_start[%d] = {" % len(starts),
          ["0x%x" % s for s in starts], 8)
    w("/* class of each range (EL_UNI_*) */")
    array(w, "const uint8_t el_uni_class_kind[%d] = {" % len(kinds), [str(k) for k in kinds], 24)
    w("const uint32_t el_uni_fold_count = %d;" % len(folds))
    w("/* code points with a fold other than themselves, ascending */")
    array(w, "const uint32_t el_uni_fold_cp[%d] = {" % len(folds),
          ["0x%x" % c for c, _ in folds], 8)
    w("/* their folds: %d code points each, unused slots 0 (a fold is never U+0000) */" % maxlen)
    w("const uint32_t el_uni_fold_to[%d][%d] = {" % (len(folds), maxlen))
    for i in range(0, len(folds), 4):
        w("    " + " ".join("{" + ", ".join("0x%x" % x for x in (f + [0] * maxlen)[:maxlen]) + "},"
                            for _, f in folds[i:i + 4]))
    w("};")
    nstarts, nvals, comp, dmax = nfc_tables()
    w("const uint32_t el_uni_nfc_count = %d;" % len(nstarts))
    w("/* first code point of each range */")
    array(w, "const uint32_t el_uni_nfc_start[%d] = {" % len(nstarts),
          ["0x%x" % x for x in nstarts], 8)
    w("/* NFC_Quick_Check (0 Yes, 1 Maybe, 2 No) << 8 | canonical combining class */")
    array(w, "const uint16_t el_uni_nfc_val[%d] = {" % len(nvals), ["0x%x" % x for x in nvals], 12)
    w("const uint32_t el_uni_comp_count = %d;" % len(comp))
    w("/* canonical compositions first + second -> composite, by first then second */")
    w("const uint32_t el_uni_comp[%d][3] = {" % len(comp))
    for i in range(0, len(comp), 4):
        w("    " + " ".join("{0x%x, 0x%x, 0x%x}," % c for c in comp[i:i + 4]))
    w("};")
    w("const uint32_t el_uni_dmax_count = %d;" % len(dmax))
    w("/* starters whose decomposition holds marks, ascending */")
    array(w, "const uint32_t el_uni_dmax_cp[%d] = {" % len(dmax), ["0x%x" % c for c, _ in dmax], 8)
    w("/* the highest combining class in each one's decomposition */")
    array(w, "const uint8_t el_uni_dmax_ccc[%d] = {" % len(dmax), [str(m) for _, m in dmax], 16)
    ws = word_starts()
    w("const uint32_t el_uni_word_count = %d;" % len(ws))
    w("/* where \\w starts and stops being true, alternately (true from the first start) */")
    array(w, "const uint32_t el_uni_word_start[%d] = {" % len(ws), ["0x%x" % x for x in ws], 8)
    path = os.path.join(root, "tokenizer", "unicode_tables.c")
    with open(path, "w") as fh:
        fh.write("\n".join(out) + "\n")
    print("wrote %s: %d class ranges, %d folds (max %d), Unicode %s" %
          (path, len(starts), len(folds), maxlen, unicodedata.unidata_version))


if __name__ == "__main__":
    main()
