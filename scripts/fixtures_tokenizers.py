#!/usr/bin/env python3
"""fixtures_tokenizers.py - records Hugging Face's ids for the GPT-2 byte-level BPE and the
BERT WordPiece tokenizers into tests/fixtures/tokenizer_cases/ (developer-run, outputs
committed; CI never runs it).

  /work/main/.venv-fixtures/bin/python scripts/fixtures_tokenizers.py

Reads ../shared/models/gpt2-tokenizer (encoder.json = vocab.json, vocab.bpe = merges.txt)
through GPT2TokenizerFast and ../shared/models/all-MiniLM-L6-v2 through BertTokenizerFast
(its tokenizer.json), with no hub access. Writes:
  gpt2.json  texts -> ids (add_special_tokens=False), decode(ids); the tokenizer.json
             pieces other than the model (so tests can build one around the shared files)
  bert.json  texts -> ids with [CLS]/[SEP], decode(ids, skip_special_tokens=True); pairs ->
             ids and token_type_ids; truncation cases (max_length, longest_first)
Every text is stored twice: "text" (readable) and "hex" (its UTF-8 bytes), which the tests
use, since a JSON "\u0000" does not survive cJSON.
"""
import json
import os
import shutil
import sys
import tempfile

import tokenizers
import transformers
from transformers import BertTokenizerFast, GPT2TokenizerFast

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
SHARED = os.path.join(ROOT, "..", "shared", "models")
OUT = os.path.join(ROOT, "tests", "fixtures", "tokenizer_cases")

COMMON = [
    "", "hello world", "Hello world", "Hello, world!", "The future of AI is",
    "I'm", "they'll", "don't", "It's", "I'M", "we've", "you're", "she'd", "''s", "' s",
    "3.14159", "1,000,000", "2026", "abc123def", "x²³ ½ Ⅻ",
    "a  b", "a\n\n\nb", "   ", "\t\tx", "trailing   ", "a \n b", " leading", "\n", "a\r\nb",
    "x \u3000y\u00a0z", "end\n",
    "café", "Straße", "Ёлка", "Καλημέρα κόσμε", "مرحبا بالعالم", "नमस्ते दुनिया",
    "日本語のテキスト", "中文字符测试", "カタカナ ひらがな", "한국어 텍스트",
    "emoji 😀 ok", "👨‍👩‍👧‍👦 family", "flags 🇫🇷🇯🇵", "👍🏽",
    "!!!???...", "(a) [b] {c} <d>", "a--b__c", "$5 & 10% #tag @user ~x ^y `z` |p|",
    "«quotes» “curly” ‘single’ — dash … ellipsis",
    "supercalifragilisticexpialidocious", "pneumonoultramicroscopicsilicovolcanoconiosis",
    "ctrl\x01\x02chars\x7f", "zero\u200bwidth", "soft\u00adhyphen", "nul\x00byte",
    "replacement\ufffdchar", "e\u0301 combining", "ΣΑΣ ǅ İstanbul Kelvin\u212a",
    "<|endoftext|>", "a<|endoftext|>b", "x <|endoftext|> y",
    "The quick brown fox jumps over the lazy dog. " * 3,
]

BERT_EXTRA = [
    "Héllo Wörld", "naïve café", "HELLO", "Ünïcödé ÀÉÎÕÜ", "résumé façade jalapeño",
    "[CLS] inside [SEP] text [MASK].", "[mask] lower", "[UNK]",
    "x" * 101, "a" * 100, "word " + "y" * 150 + " end",
    "\U0002b820\U0002b920 cjk ext", "\uf900 compat", "𠀀 ext-b",
    "don't stop", "it's the dog's bone", "i'm sure they're", "hello .", "a ' b",
    "tab\tsep\u2028line", "€100 ©2024 ™", "x\u0085y", "\ue000private",
]

PAIRS = [
    ("How old are you?", "I am six."),
    ("Hello, world!", ""),
    ("", "only b"),
    ("The first sentence is rather long indeed.", "Short."),
    ("Short.", "The second sentence is rather long indeed."),
    ("one two three four five", "six seven eight nine ten"),
    ("a", "b c d e f g h i j k"),
]
TRUNC = [
    # (a, b or None, max_length)
    ("one two three four five six seven", None, 8),
    ("The first sentence is rather long indeed.", "Short.", 8),
    ("Short.", "The second sentence is rather long indeed.", 8),
    ("one two three four five", "six seven eight nine ten", 8),
    ("one two three four five", "six seven eight nine ten", 9),
    ("a b c d e f g h", "i", 8),
    ("a b", "c d", 8),
    ("Héllo Wörld, this is long", "and so is this one, really", 12),
    ("x", "y", 3),
    ("x y z", None, 2),
]


def hx(s):
    return s.encode("utf-8").hex()


def gpt2():
    tmp = tempfile.mkdtemp()
    try:
        d = os.path.join(SHARED, "gpt2-tokenizer")
        shutil.copy(os.path.join(d, "encoder.json"), os.path.join(tmp, "vocab.json"))
        shutil.copy(os.path.join(d, "vocab.bpe"), os.path.join(tmp, "merges.txt"))
        tok = GPT2TokenizerFast.from_pretrained(tmp)
    finally:
        shutil.rmtree(tmp)
    j = json.loads(tok.backend_tokenizer.to_str())
    cases = []
    for s in COMMON:
        ids = tok(s, add_special_tokens=False)["input_ids"]
        cases.append({"text": s, "hex": hx(s), "ids": ids, "decoded": tok.decode(ids)})
    assert tok("hello world")["input_ids"] == [31373, 995]
    return {
        "source": "GPT2TokenizerFast from ../shared/models/gpt2-tokenizer (encoder.json as "
                  "vocab.json, vocab.bpe as merges.txt)",
        "vocab_size": len(tok),
        "eos_id": tok.eos_token_id,
        "tokenizer_json_parts": {k: j[k] for k in
                                 ("added_tokens", "normalizer", "pre_tokenizer",
                                  "post_processor", "decoder")},
        "cases": cases,
    }


def bert():
    tok = BertTokenizerFast.from_pretrained(os.path.join(SHARED, "all-MiniLM-L6-v2"))
    cases = []
    for s in COMMON + BERT_EXTRA:
        ids = tok(s)["input_ids"]
        cases.append({"text": s, "hex": hx(s), "ids": ids,
                      "decoded": tok.decode(ids, skip_special_tokens=True)})
    assert tok("Hello, world!")["input_ids"] == [101, 7592, 1010, 2088, 999, 102]
    pairs = []
    for a, b in PAIRS:
        # the tokenizers library itself: transformers' tok(a, "") drops an empty b (Python
        # falsiness), tokenizers encodes the pair [CLS] a [SEP] [SEP]
        e = tok.backend_tokenizer.encode(a, b)
        if b:
            assert e.ids == tok(a, b)["input_ids"]
        pairs.append({"a": a, "b": b, "a_hex": hx(a), "b_hex": hx(b), "ids": e.ids,
                      "type_ids": e.type_ids})
    trunc = []
    for a, b, m in TRUNC:
        e = tok(a, b, truncation="longest_first", max_length=m)
        full = tok(a, b)
        trunc.append({"a": a, "b": b, "a_hex": hx(a),
                      "b_hex": None if b is None else hx(b), "max_len": m, "ids": e["input_ids"],
                      "type_ids": e["token_type_ids"],
                      "truncated": len(full["input_ids"]) > len(e["input_ids"])})
    return {
        "source": "BertTokenizerFast from ../shared/models/all-MiniLM-L6-v2 (tokenizer.json)",
        "vocab_size": len(tok),
        "special": {k: tok.convert_tokens_to_ids(k)
                    for k in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")},
        "cases": cases, "pairs": pairs, "truncation": trunc,
    }


def main():
    os.makedirs(OUT, exist_ok=True)
    versions = {"transformers": transformers.__version__, "tokenizers": tokenizers.__version__,
                "python": sys.version.split()[0]}
    for name, fn in (("gpt2", gpt2), ("bert", bert)):
        data = {"generated_by": "scripts/fixtures_tokenizers.py", "versions": versions}
        data.update(fn())
        path = os.path.join(OUT, name + ".json")
        with open(path, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=True, indent=1)
            f.write("\n")
        print("wrote", path, os.path.getsize(path), "bytes")


if __name__ == "__main__":
    main()
