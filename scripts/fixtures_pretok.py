#!/usr/bin/env python3
"""fixtures_pretok.py - small tokenizer.json files shaped like the byte-level BPE tokenizers
of Llama 3.x, Qwen2/2.5 and SmolLM2, and the SentencePiece-style BPE of Gemma 3, trained
here with Hugging Face `tokenizers` on a corpus written below (no hub access), with each
family's own normalizer, pre-tokenizer, post-processor and decoder configuration; then the
ids `tokenizers` gives for a few hundred test strings (developer-run, outputs committed):

  /work/venv-fixtures/bin/python scripts/fixtures_pretok.py

Writes tests/fixtures/tokenizer_pretok/<family>.json (the tokenizer) and <family>_cases.json:
  {"tokenizers": version, "bos_id": id or -1, "cases": [{"hex": UTF-8 bytes of the text,
   "ids": encode(add_special_tokens=False), "ids_bos": encode(add_special_tokens=True),
   "decoded_hex": decode(ids, skip_special_tokens=True), "nfc": text is NFC,
   "special": the text holds a special token, "lossy": (byte-level) a byte of the text
   has no token, so HF drops it}],
   "big": [{"unit_hex": bytes, "repeat": times, "count": ids, "hash": FNV-1a 32 of the ids
   as little-endian uint32}]} (long texts of one repeated unit: no quadratic blow-up),
   "unk": (smollm2) [{"fuse_unk": bool, "cases": [{"hex", "ids"}]}] with model.unk_token set,
   "nfc_probe": (qwen2) [[hex, is NFC]] short strings heavy in combining marks, half of them
   NFC-normalized (the NFC check must never pass a string that is not NFC)
Texts are stored as hex since a JSON "\\u0000" does not survive cJSON.
"""
import json
import os
import random
import unicodedata

import tokenizers
from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from tokenizers import pre_tokenizers, processors, trainers

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer_pretok")

# The split patterns, as they appear in the models' tokenizer.json files (public facts).
LLAMA3_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}|"
              r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")
QWEN2_PAT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
             r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+")

CORPUS_LINES = [
    "The quick brown fox jumps over the lazy dog. The dog didn't care.",
    "I'm sure we'll be fine; don't worry, they've said it's OK. You're right, she'd know.",
    "IT'S LOUD, WE'LL SHOUT. I'D SAY YOU'RE THERE. THEY'VE GONE. DON'T!",
    "Numbers: 0 1 2 3 12 123 1234 12345 3.14159 2,718,281 1e10 0x1F 2026-12-06 10:45:30",
    "Prices $5.99, €10, £3, ¥500; 50% off! #hashtag @user ~tilde ^caret `code` |pipe|",
    "café naïve résumé façade jalapeño Straße Ærøskøbing Ünïcödé ÀÉÎÕÜ",
    "Ёлка и медведь пошли в лес. Καλημέρα κόσμε. مرحبا بالعالم. नमस्ते दुनिया",
    "日本語のテキストです。中文字符测试。カタカナ ひらがな 한국어 텍스트",
    "emoji 😀 ok 👍🏽 👨‍👩‍👧‍👦 family 🇫🇷🇯🇵 ✨🔥💯",
    "def main():\n    x = [1, 2, 3]\n\treturn {'a': x}  # comment\n\n\nclass Foo:\n    pass\n",
    "if (a && b) { c += 1; } else if (!d) { e--; }\r\nwhile (true) {}\r\n",
    "Line one\nLine two\n\nParagraph three.\n   indented\n\t\ttabbed\n",
    "Quotes: «bonjour» “curly” ‘single’ — dash … ellipsis · middle dot",
    "Hello, world! Hello world? hello WORLD... (parenthetical) [bracket] {brace} <angle>",
    "supercalifragilisticexpialidocious pneumonoultramicroscopicsilicovolcanoconiosis",
    "Arabic-Indic ٣٤٥ Devanagari १२३ fullwidth １２３ fractions ½ ¾ roman Ⅻ superscripts x²³",
    "Vietnamese: Tiếng Việt có dấu. Polish: Zażółć gęślą jaźń. Czech: Příliš žluťoučký kůň.",
    "Bengali: আমি বাংলায় কথা বলি। Tamil: நான் தமிழ் பேசுவேன். Thai: ภาษาไทย",
    "   leading spaces and trailing   \n  \n\n  mixed   whitespace\t \t end",
]


def corpus():
    rng = random.Random(7)
    words = " ".join(CORPUS_LINES).split()
    out = list(CORPUS_LINES) * 20
    for _ in range(3000):
        k = rng.randint(3, 14)
        sep = rng.choice([" ", " ", " ", "  ", "\n", " \n", "\t"])
        out.append(sep.join(rng.choice(words) for _ in range(k)))
    return out


TEXTS = [
    "", "hello world", "Hello world", "Hello, world!", "The future of AI is",
    "I'm", "they'll", "don't", "It's", "I'M", "WE'LL", "You'RE", "she'D", "They'Ve", "''s",
    "' s", "'s'S'", "x'ſ", "'ſt", "abc'", "'", "''", "it'sx", "'ll've're",
    "3.14159", "1,000,000", "2026", "abc123def", "1234567", "12345678901", "x²³ ½ Ⅻ",
    "٣٤٥٦ ١٢", "１２３４", "a1b22c333d4444", " 123 ", "$100.00",
    "a  b", "a\n\n\nb", "   ", "\t\tx", "trailing   ", "a \n b", " leading", "\n", "a\r\nb",
    "x \u3000y\u00a0z", "end\n", "\n\n", " \n", "\n ", "  \n  x", "!!!\n\n", "x!\r\n\r\ny",
    "a\t\n\tb", " \t ", "\u2028", "x\u0085y", "  !", " !", "!a", "(hello", " (hello",
    "\thello", "\nhello", "\r\nhello", "...hello", "a.b.c", " .x", "..  ..",
    "café", "Straße", "Ёлка", "Καλημέρα κόσμε", "مرحبا بالعالم", "नमस्ते दुनिया",
    "日本語のテキスト", "中文字符测试", "カタカナ ひらがな", "한국어 텍스트",
    "emoji 😀 ok", "👨‍👩‍👧‍👦 family", "flags 🇫🇷🇯🇵", "👍🏽", "😀😀😀",
    "!!!???...", "(a) [b] {c} <d>", "a--b__c", "$5 & 10% #tag @user ~x ^y `z` |p|",
    "«quotes» “curly” ‘single’ — dash … ellipsis",
    "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
    "ctrl\x01\x02chars\x7f", "zero\u200bwidth", "soft\u00adhyphen", "nul\x00byte",
    "replacement\ufffdchar", "a\x04b", "x\x13\x14 \x16y\x1d", "\U00040000 plane 4",
    "\U0004ffff\U00090000z", "ΣΑΣ ǅ İstanbul", "Tiếng Việt", "Zażółć gęślą jaźń",
    "আমি বাংলায়", "তো", "நான் தமிழ்", "ภาษาไทย", "각", "ज़िंदगी फ़िल्म ड़", "1\u0301 x\u0654",
    "\u1e0d\u0307 q\u0323\u0301",
    # not NFC: Qwen2 refuses these (NFC would change them)
    "e\u0301 combining", "Kelvin\u212a", "\u212b ångström", "\u1100\u1161", "\u09c7\u09be",
    "a\u0323\u0307", "q\u0307\u0323",
    # added tokens in the text
    "<|endoftext|>", "a<|endoftext|>b", "x <|endoftext|> y", "<|im_start|>user\nhi<|im_end|>\n",
    "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>",
    "<|eot_id|><|eot_id|>", "<|eot_id", "<|im_start|>", " <|im_start|> ", "<tool_call>x",
    "<start_of_turn>user\nHello<end_of_turn>\n<start_of_turn>model\n", "<bos>x<eos>",
    "<unused3> <unused12>", "x<table>y", "<0x41>",
    "The quick brown fox jumps over the lazy dog. " * 3,
    "def f(x):\n    return x ** 2  # square\n\n\n",
]


def random_texts(n, seed):
    rng = random.Random(seed)
    pieces = [w for line in CORPUS_LINES for w in line.replace("\n", " \n ").split(" ")]
    pieces += ["'s", "'LL", "'d", "  ", "\t", "\n", "\r\n", "123", "4567", "!", "?!", "...",
               "😀", "中", " ", "\u00a0", "\u3000", "½", "x", "'", "\"", "<|im_end|>",
               "<|eot_id|>", "<end_of_turn>"]
    out = []
    for _ in range(n):
        k = rng.randint(1, 16)
        s = ""
        for _ in range(k):
            s += rng.choice(pieces) + rng.choice(["", "", " ", " ", "\n", "  "])
        out.append(s)
    return out


# Long inputs: runs that make one long pre-token (or many tiny ones).
BIG = [("a", 100000), (" ", 100000), ("\n", 50000), ("7", 100000), ("!", 100000),
       ("ab ", 40000), (" \n", 50000), ("中", 50000), ("x'S ", 30000), ("é", 50000)]


def fnv_ids(ids):
    h = 2166136261
    for i in ids:
        for b in int(i).to_bytes(4, "little"):
            h = ((h ^ b) * 16777619) & 0xFFFFFFFF
    return h


def bytes_to_unicode():
    bs = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}


def drop_byte_tokens(tok, drop):
    """The tokenizer without the tokens of bytes `drop` (ids renumbered), as SmolLM2's real
    vocabulary lacks 21 byte tokens: HF drops those bytes (there is no unk)."""
    j = json.loads(tok.to_str())
    gone = {bytes_to_unicode()[b] for b in drop}
    merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
    assert not any(p in gone for m in merges for p in m.split(" "))
    order = sorted(j["model"]["vocab"].items(), key=lambda kv: kv[1])
    j["model"]["vocab"] = {t: i for i, (t, _) in enumerate(x for x in order if x[0] not in gone)}
    base = len(j["model"]["vocab"])
    for k, a in enumerate(j["added_tokens"]):
        a["id"] = base + k
    return Tokenizer.from_str(json.dumps(j))


def byte_level_family(name, pre, norm, post, specials, extra_added, bos, ignore_merges):
    tok = Tokenizer(models.BPE(ignore_merges=ignore_merges))
    tok.normalizer = norm
    tok.pre_tokenizer = pre
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=3000, min_frequency=2, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(corpus(), trainer)
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in specials])
    tok.add_tokens([AddedToken(s, normalized=False, special=False) for s in extra_added])
    if post == "llama3":
        bos_id = tok.token_to_id(bos)
        tok.post_processor = processors.Sequence([
            processors.ByteLevel(trim_offsets=False),
            processors.TemplateProcessing(single=bos + " $A", pair=bos + " $A " + bos + " $B",
                                          special_tokens=[(bos, bos_id)])])
    else:
        tok.post_processor = processors.ByteLevel(trim_offsets=False)
    return tok


def gemma3():
    # SentencePiece-shaped BPE: " " -> "▁", a no-op Split, byte fallback, many added tokens.
    base = Tokenizer(models.BPE(unk_token="<unk>"))
    base.normalizer = normalizers.Replace(" ", "▁")
    # SentencePiece trains on whitespace-split pieces (split_by_whitespace): no learned token
    # holds "▁" after another character. The file itself has no pre-tokenizer, as Gemma's.
    base.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="never",
                                                  split=True)
    trainer = trainers.BpeTrainer(vocab_size=2500, min_frequency=2, show_progress=False,
                                  special_tokens=["<pad>", "<eos>", "<bos>", "<unk>"],
                                  max_token_length=16)
    lines = [ln for text in corpus() for ln in text.split("\n")]
    base.train_from_iterator(lines, trainer)
    m = json.loads(base.to_str())["model"]
    learned = sorted(m["vocab"].items(), key=lambda kv: kv[1])
    vocab = {}
    for t in ["<pad>", "<eos>", "<bos>", "<unk>"] + ["<0x%02X>" % b for b in range(256)]:
        vocab[t] = len(vocab)
    for t, _ in learned:
        if t not in vocab:
            vocab[t] = len(vocab)
    merges = [tuple(x.split(" ")) if isinstance(x, str) else tuple(x) for x in m["merges"]]
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    tok.normalizer = normalizers.Replace(" ", "▁")
    # Gemma 3's file splits on " " after the normalizer has replaced them all (a no-op).
    tok.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    tok.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(),
                                     decoders.Fuse()])
    specials = ["<start_of_turn>", "<end_of_turn>", "<start_of_image>", "<end_of_image>"]
    specials += ["<unused%d>" % i for i in range(64)]
    tok.add_special_tokens([AddedToken(s, normalized=False, special=True) for s in specials])
    html = ["<table>", "<tr>", "<td>", "</table>", "<h1>", "</h1>", "<div>", "</div>"]
    tok.add_tokens([AddedToken(s, normalized=False, special=False) for s in html])
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])])
    return tok


UNK_TEXTS = ["a\x04b", "\x04\x06", "x\x13\x14 \x16y\x1d", "\U00040000 plane 4",
             "\U0004ffff\U00090000z", "ok \x04\x04\x04!", "\x1d"]


def unk_cases(tok):
    """The byte-level file with model.unk_token set (fuse_unk false, true): bytes without a
    token become "?" (the unk here; fused or not) instead of vanishing."""
    out = []
    for fuse in (False, True):
        j = json.loads(tok.to_str())
        j["model"]["unk_token"] = "?"
        j["model"]["fuse_unk"] = fuse
        t = Tokenizer.from_str(json.dumps(j))
        out.append({"fuse_unk": fuse, "cases": [
            {"hex": x.encode("utf-8").hex(), "ids": t.encode(x, add_special_tokens=False).ids}
            for x in UNK_TEXTS]})
    return out


def nfc_probe():
    marks = [0x300, 0x301, 0x302, 0x303, 0x308, 0x30a, 0x323, 0x327, 0x328, 0x316, 0x31b,
             0x345, 0x344, 0x340, 0x93c, 0x94d, 0x9be, 0x9d7, 0x9bc, 0xbbe, 0xbd7, 0x654,
             0x655, 0x653, 0x64e, 0x5b4, 0x1161, 0x1175, 0x11a8, 0x11c2, 0x3099, 0x309a,
             0x302a, 0x1b35, 0x20d0, 0xe38]
    bases = [ord(c) for c in "aeiouAEOUnNcCsSzZwyq1 .!"] + [
        0xe9, 0xea, 0x1ec7, 0x1eb9, 0xe5, 0x212b, 0x212a, 0x928, 0x91c, 0x915, 0x9c7, 0x995,
        0xbc6, 0xb95, 0x627, 0x648, 0x64a, 0x5d0, 0x1100, 0x1112, 0xac00, 0xac01, 0xd7a3,
        0x304b, 0x30cf, 0x1b05, 0x1e0d, 0x1e63, 0x1e69, 0x3b1, 0x1f00, 0x4e00, 0xf900, 0x2126,
        0x1e9b]
    rng = random.Random(3)
    out = []
    for _ in range(3000):
        t = "".join(chr(rng.choice(marks) if rng.random() < 0.45 else rng.choice(bases))
                    for _ in range(rng.randint(1, 8)))
        if rng.random() < 0.5:
            t = unicodedata.normalize("NFC", t)
        out.append([t.encode("utf-8").hex(), unicodedata.is_normalized("NFC", t)])
    return out


FLAG_TEXTS = [
    "a <L> b", "a   <L>b", "<L>", " <L>", "x\t\n<L>\ny", "a <R> b", "a<R>   b", "<R>   ",
    "a  <LR>  b", "<LR>", "a<LR>b", "x <L> <R> y", "x <R><L> y", "<L><L>  <R><R>",
    "cat", "a cat b", "concatenate", "cat_x", "x_cat", "(cat)", "cat5", "½cat", "é cat",
    "cats and cat", " cat\n", "<L>cat<R>", "cat cat cat", "tomcat cat", "\u3000<L>\u3000",
    "a <eot> b", "a <eot>b <eot>", "<|eot_id|>   <eot>",
]


def with_flag_tokens(tok):
    """The Llama 3 shape with added tokens using HF's lstrip / rstrip / single_word."""
    tok = Tokenizer.from_str(tok.to_str())
    tok.add_special_tokens([
        AddedToken("<L>", lstrip=True, normalized=False, special=True),
        AddedToken("<R>", rstrip=True, normalized=False, special=True),
        AddedToken("<LR>", lstrip=True, rstrip=True, normalized=False, special=True),
        AddedToken("<eot>", lstrip=True, rstrip=True, single_word=True, normalized=False,
                   special=True)])
    tok.add_tokens([AddedToken("cat", single_word=True, normalized=False, special=False)])
    return tok


def write(name, tok, texts, bos):
    os.makedirs(OUT, exist_ok=True)
    tok.save(os.path.join(OUT, name + ".json"))
    tok = Tokenizer.from_file(os.path.join(OUT, name + ".json"))  # as a reader sees it
    cases = []
    for t in texts:
        ids = tok.encode(t, add_special_tokens=False).ids
        ids_bos = tok.encode(t, add_special_tokens=True).ids
        dec = tok.decode(ids, skip_special_tokens=True)
        cases.append({"hex": t.encode("utf-8").hex(), "ids": ids, "ids_bos": ids_bos,
                      "decoded_hex": dec.encode("utf-8").hex(),
                      "nfc": unicodedata.is_normalized("NFC", t)})
    specials = [a.content for a in tok.get_added_tokens_decoder().values() if a.special]
    vocab = tok.get_vocab()
    b2u = bytes_to_unicode()
    for c, t in zip(cases, texts):
        c["special"] = any(sp in t for sp in specials)
        if isinstance(tok.model, models.BPE) and not tok.model.byte_fallback:
            c["lossy"] = any(b2u[b] not in vocab for b in t.encode("utf-8"))
    big = []
    for unit, rep in BIG:
        ids = tok.encode(unit * rep, add_special_tokens=False).ids
        big.append({"unit_hex": unit.encode("utf-8").hex(), "repeat": rep, "count": len(ids),
                    "hash": fnv_ids(ids)})
    bos_id = tok.token_to_id(bos) if bos else -1
    unk = unk_cases(tok) if name == "smollm2" else []
    probe = nfc_probe() if name == "qwen2" else []
    with open(os.path.join(OUT, name + "_cases.json"), "w") as fh:
        json.dump({"tokenizers": tokenizers.__version__, "bos_id": bos_id,
                   "vocab": tok.get_vocab_size(with_added_tokens=True), "cases": cases,
                   "big": big, "unk": unk, "nfc_probe": probe},
                  fh, ensure_ascii=True, separators=(",", ":"))
    print("%s: %d tokens, %d cases" % (name, tok.get_vocab_size(), len(cases)))


def main():
    texts = TEXTS + random_texts(300, 11)
    l3_specials = ["<|begin_of_text|>", "<|end_of_text|>", "<|start_header_id|>",
                   "<|end_header_id|>", "<|eot_id|>"] + \
        ["<|reserved_special_token_%d|>" % i for i in range(8)]
    llama3 = byte_level_family(
        "llama3",
        pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(LLAMA3_PAT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True,
                                     use_regex=False)]),
        None, "llama3", l3_specials, [], "<|begin_of_text|>", True)
    write("llama3", llama3, texts, "<|begin_of_text|>")
    write("flags", with_flag_tokens(llama3), texts + FLAG_TEXTS, "<|begin_of_text|>")

    qwen2 = byte_level_family(
        "qwen2",
        pre_tokenizers.Sequence([
            pre_tokenizers.Split(Regex(QWEN2_PAT), behavior="isolated", invert=False),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False,
                                     use_regex=False)]),
        normalizers.NFC(), "bytelevel", ["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        ["<tool_call>", "</tool_call>"], None, False)
    write("qwen2", qwen2, texts, None)

    smollm2 = byte_level_family(
        "smollm2",
        pre_tokenizers.Sequence([
            pre_tokenizers.Digits(individual_digits=True),
            pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=True,
                                     use_regex=True)]),
        None, "bytelevel", ["<|endoftext|>", "<|im_start|>", "<|im_end|>"], [], None, False)
    smollm2 = drop_byte_tokens(smollm2, [0x04, 0x06, 0x13, 0x14, 0x16, 0x1d, 0xc0, 0xc1, 0xf1,
                                         0xf2] + list(range(0xf5, 0x100)))
    write("smollm2", smollm2, texts, None)

    write("gemma3", gemma3(), texts, "<bos>")
    fuzz_seeds(llama3, qwen2, smollm2)


def fuzz_seeds(*toks):
    """Tiny versions (the first 300 tokens, the merges among them) as libFuzzer seeds for
    fuzz/fuzz_tokenizer_json.c: fuzz/corpus/tokenizer_json/pretok_*.json."""
    for name, tok in zip(("llama3", "qwen2", "smollm2"), toks):
        j = json.loads(tok.to_str())
        keep = {t: i for t, i in j["model"]["vocab"].items() if i < 300}
        merges = [m if isinstance(m, str) else " ".join(m) for m in j["model"]["merges"]]
        j["model"]["merges"] = [m for m in merges
                                if all(p in keep for p in m.split(" ")) and
                                m.replace(" ", "") in keep]
        j["model"]["vocab"] = keep
        for k, a in enumerate(j["added_tokens"][:3]):
            a["id"] = 300 + k
        j["added_tokens"] = j["added_tokens"][:3]
        if j["post_processor"]["type"] == "Sequence":
            tp = j["post_processor"]["processors"][1]
            for v in tp["special_tokens"].values():
                v["ids"] = [300]
        Tokenizer.from_str(json.dumps(j))  # still a valid file
        path = os.path.join(ROOT, "fuzz", "corpus", "tokenizer_json", "pretok_%s.json" % name)
        with open(path, "w") as fh:
            json.dump(j, fh, ensure_ascii=False, separators=(",", ":"))


if __name__ == "__main__":
    main()
