#!/usr/bin/env python3
"""make_fixtures.py - builds the Hugging Face reference fixtures under tests/fixtures/ (developer-run).

Run scripts/fixtures_venv.sh once, then:
    .venv-fixtures/bin/python scripts/make_fixtures.py
CI never runs this: its outputs are committed. Everything is seeded, so a rerun with the same
library versions rewrites the same bytes (the versions used are recorded in each JSON file).

Outputs
  tests/fixtures/hf_tokenizer/            a small Llama-shaped tokenizer.json trained here
                                          (no hub access) in three pipeline styles, and
                                          cases.json: HF's ids and decodes for edge-case strings
  tests/fixtures/hf_llama_<variant>/      tiny random LlamaForCausalLM models (float32
                                          safetensors + config.json + tokenizer.json) with
                                          reference.json and logits*.bin (layout in README.md)
"""
import json
import os
import struct
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
TOKDIR = os.path.join(FIX, "hf_tokenizer")

SPIECE = "\u2581"  # "▁", SentencePiece's visible space

# Training text for the tokenizer: plain English written for this repository, with digits
# and punctuation; "é" occurs (so it is in the vocabulary) while "ü", CJK and emoji do not
# (so they exercise byte fallback).
CORPUS = """\
The future of AI is bright, but the future is never certain. Once upon a time there was a
little girl named Lily. She loved to play outside in the park with her friends. One day she
found a small red ball under a big green tree. "Can I keep it?" she asked her mother. Her
mother smiled and said, "Yes, you can keep it, but share it with your friends."
Lily ran back to the park. The sun was warm and the sky was blue. Her friend Tom was there
with his dog, Max. They played with the ball until the sun went down. Then they walked home,
tired and happy. At home, Lily had a cup of milk and a piece of bread. It was a good day.
Small computers run models at the edge: on boards with 4 GB or 8 GB of memory, in cars, in
cameras, in a cafe near the station. A model has 2 or 12 or 32 layers; each layer reads its
weights from flash memory, and the loader streams them into one fixed arena. The arena is
reserved once, at startup, and nothing else is allocated after that. In 2024 a board cost
about 199 dollars; in 2025, 249 dollars. Is that cheap? It depends on what you compare it with.
The cat sat on the mat. The dog ran in the yard. The bird sang in the tree. We read books,
we write code, we test it, and then we test it again. Numbers: 0 1 2 3 4 5 6 7 8 9 10 100 1000.
Punctuation matters: commas, periods. Questions? Answers! Quotes "like this" and (parentheses)
and [brackets] and {braces}; colons: semicolons; dashes - and under_scores and slashes / too.
A café serves coffee; the résumé was long. Tabs	and new lines
are text too.
"""


def versions():
    import tokenizers
    import transformers
    out = {"tokenizers": tokenizers.__version__, "transformers": transformers.__version__}
    try:
        import torch
        out["torch"] = torch.__version__
    except ImportError:
        pass
    return out


def write_json(path, obj):
    """JSON with one list element (case, id list) per line: readable diffs, small files."""
    def dump(o, indent):
        pad = " " * indent
        if isinstance(o, dict) and any(isinstance(v, (dict, list)) and v and
                                       isinstance(v, dict) or
                                       (isinstance(v, list) and v and isinstance(v[0], dict))
                                       for v in o.values()):
            items = [pad + "  " + json.dumps(k, ensure_ascii=False) + ": " +
                     dump(v, indent + 2).lstrip() for k, v in o.items()]
            return pad + "{\n" + ",\n".join(items) + "\n" + pad + "}"
        if isinstance(o, list) and o and isinstance(o[0], dict):
            return pad + "[\n" + ",\n".join(dump(v, indent + 2) for v in o) + "\n" + pad + "]"
        return pad + json.dumps(o, ensure_ascii=False, separators=(", ", ": "))
    with open(path, "w", encoding="utf-8") as f:
        f.write(dump(obj, 0) + "\n")
    with open(path, encoding="utf-8") as f:
        assert json.load(f) == obj


# ---------------------------------------------------------------------------- tokenizer

def train_tokenizer(total_vocab=512):
    """A BPE vocabulary shaped like Llama-2's tokenizer.json: <unk>, <s>, </s> at 0, 1, 2, the
    256 byte tokens <0x00>..<0xFF> at 3..258, then characters and merges. Trained with a
    Metaspace pre-tokenizer so that, as in SentencePiece, no merge spans a word boundary."""
    from tokenizers import Tokenizer, pre_tokenizers
    from tokenizers.models import BPE
    from tokenizers.trainers import BpeTrainer

    specials = ["<unk>", "<s>", "</s>"]
    trainer_vocab = total_vocab - 256
    tok = Tokenizer(BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPIECE, prepend_scheme="always",
                                                 split=True)
    trainer = BpeTrainer(vocab_size=trainer_vocab, special_tokens=specials, show_progress=False)
    lines = [ln for ln in CORPUS.split("\n") if ln]
    tok.train_from_iterator(lines, trainer)
    model = json.loads(tok.to_str())["model"]
    trained = sorted(model["vocab"].items(), key=lambda kv: kv[1])
    assert [t for t, _ in trained[:3]] == specials, trained[:3]
    vocab = {t: i for i, t in enumerate(specials)}
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for t, _ in trained[3:]:
        assert t not in vocab, t
        vocab[t] = len(vocab)
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    assert len(vocab) == total_vocab, len(vocab)
    return vocab, merges


def build_tokenizer(vocab, merges, style):
    """style: "legacy" (Llama-2 / TinyLlama tokenizer.json: Prepend + Replace normalizer, no
    pre-tokenizer), "metaspace" (what transformers' LlamaTokenizer builds today: Metaspace
    pre-tokenizer, prepend_scheme "first", split false) or "metaspace_split" (older Metaspace
    files: prepend_scheme "always", split true, a Metaspace decoder step)."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    tok = Tokenizer(BPE(vocab=dict(vocab), merges=list(merges), unk_token="<unk>",
                        byte_fallback=True, fuse_unk=True, dropout=None))
    llama_decoder = decoders.Sequence([decoders.Replace(SPIECE, " "), decoders.ByteFallback(),
                                       decoders.Fuse(), decoders.Strip(content=" ", left=1)])
    if style == "legacy":
        tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPIECE),
                                               normalizers.Replace(" ", SPIECE)])
        tok.decoder = llama_decoder
    elif style == "metaspace":
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPIECE, prepend_scheme="first",
                                                     split=False)
        tok.decoder = llama_decoder
    elif style == "metaspace_split":
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPIECE, prepend_scheme="always",
                                                     split=True)
        tok.decoder = decoders.Sequence([
            decoders.Metaspace(replacement=SPIECE, prepend_scheme="always", split=True),
            decoders.ByteFallback(), decoders.Fuse()])
    else:
        raise ValueError(style)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in ("<unk>", "<s>", "</s>")])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return tok


# Strings whose ids HF records; the C tokenizer must reproduce them exactly.
CASES = [
    "",
    "The future of AI is",
    "Hello world",
    " leading space",
    "trailing space ",
    "  two leading spaces",
    "multiple   spaces    inside",
    "   ",
    " ",
    "line one\nline two",
    "\n",
    "ends with newline\n",
    "\n\nblank lines\n\n",
    "tab\tseparated\tvalues",
    "caf\u00e9 r\u00e9sum\u00e9",
    "\u00fcber na\u00efve",
    "\u65e5\u672c\u8a9e",
    "emoji \U0001F600 and \U0001F680!",
    "mixed \u65e5\u672c text with \u00e9 and \u00fc",
    "digits 0123456789 and 3.14159",
    "punctuation: ,.;:!?'\"()[]{}<>-_/\\|@#$%^&*+=~`",
    "zzzz qqqq xxxx",
    "Once upon a time, there was a little girl named Lily.",
    "A" * 40,
    "special <s> inside and </s> too",
    "<s>",
    "</s> at the start",
    "\u00a0non-breaking\u00a0space",
    "\U0010FFFD",
    "aaaa bbbb aaaa",
    SPIECE + " a literal \u2581 in the text " + SPIECE + SPIECE,
]

# Longer than the C tokenizer's fixed word buffer (1024 symbols) or than a small ids
# buffer: the whole corpus, and one 1500-character word.
LONG_CASES = [CORPUS, "A" * 1500]


def _small_tokenizer(tokens, merges, byte_fallback, fuse_unk, ignore_merges, metaspace):
    """A hand-made vocabulary (specials, optional byte tokens, then tokens) for behaviours the
    trained one never shows."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers import processors
    from tokenizers.models import BPE

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2}
    if byte_fallback:
        for b in range(256):
            vocab["<0x%02X>" % b] = len(vocab)
    for t in tokens:
        vocab[t] = len(vocab)
    tok = Tokenizer(BPE(vocab=vocab, merges=merges, unk_token="<unk>",
                        byte_fallback=byte_fallback, fuse_unk=fuse_unk, dropout=None,
                        ignore_merges=ignore_merges))
    if metaspace:
        tok.pre_tokenizer = pre_tokenizers.Metaspace(replacement=SPIECE, prepend_scheme="always",
                                                     split=True)
    else:
        tok.normalizer = normalizers.Sequence([normalizers.Prepend(SPIECE),
                                               normalizers.Replace(" ", SPIECE)])
    tok.decoder = decoders.Sequence([decoders.Replace(SPIECE, " "), decoders.ByteFallback(),
                                     decoders.Fuse(), decoders.Strip(content=" ", left=1)])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in ("<unk>", "<s>", "</s>")])
    tok.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", 1)])
    return tok


def build_ignore_merges_tokenizer():
    """ignore_merges: "▁abc" is a token no merge produces, so only a tokenizer that looks
    whole words up first emits it; "abcabc" shows rank order ("b c" before "a b")."""
    return _small_tokenizer([SPIECE, "a", "b", "c", SPIECE + "a", "bc", SPIECE + "abc", "ab"],
                            [(SPIECE, "a"), ("b", "c"), ("a", "b")],
                            byte_fallback=True, fuse_unk=True, ignore_merges=True,
                            metaspace=True)


def build_unk_tokenizer(fuse):
    """No byte fallback: characters outside the vocabulary become <unk>, runs of them one
    <unk> when fuse_unk is set."""
    return _small_tokenizer([SPIECE, "a", "b", SPIECE + "a"], [(SPIECE, "a")],
                            byte_fallback=False, fuse_unk=fuse, ignore_merges=False,
                            metaspace=False)


SMALL_CASES = ["abc", "abc abc", "abcabc", "xabc", "ab bc", "", "ab\u00fc", "aéé b", "ééé",
               "a日本b", "é a é", "b a"]

# name -> (file name, builder, strings); the first three share one trained vocabulary.
TOKENIZERS = [
    ("legacy", "tokenizer.json", None, None),
    ("metaspace", "tokenizer_metaspace.json", None, None),
    ("metaspace_split", "tokenizer_metaspace_split.json", None, None),
    ("ignore_merges", "tokenizer_ignore_merges.json", build_ignore_merges_tokenizer,
     SMALL_CASES),
    ("unk_fuse", "tokenizer_unk_fuse.json", lambda: build_unk_tokenizer(True), SMALL_CASES),
    ("unk_nofuse", "tokenizer_unk_nofuse.json", lambda: build_unk_tokenizer(False),
     SMALL_CASES),
]


def make_tokenizers():
    import tokenizers
    from transformers import PreTrainedTokenizerFast

    os.makedirs(TOKDIR, exist_ok=True)
    vocab, merges = train_tokenizer()
    out = {"versions": versions(), "tokenizers": {}}
    for style, fname, builder, strings in TOKENIZERS:
        if builder is None:
            tok = build_tokenizer(vocab, merges, style)
            strings = CASES + LONG_CASES
        else:
            tok = builder()
        path = os.path.join(TOKDIR, fname)
        text = tok.to_str(pretty=True)
        if style == "legacy":
            # Llama-2's own file spells merges as "a b" strings; newer files use pairs.
            j = json.loads(text)
            j["model"]["merges"] = [" ".join(m) for m in j["model"]["merges"]]
            text = json.dumps(j, ensure_ascii=False, indent=2)
        with open(path, "w", encoding="utf-8") as f:
            f.write(text + "\n")
        tok = tokenizers.Tokenizer.from_file(path)  # what was written, read back
        hf = PreTrainedTokenizerFast(tokenizer_file=path, bos_token="<s>", eos_token="</s>",
                                     unk_token="<unk>")
        cases = []
        for s in strings:
            enc = tok.encode(s, add_special_tokens=True)
            ids = list(enc.ids)
            assert hf(s, add_special_tokens=True)["input_ids"] == ids, (style, s)
            decoded = tok.decode(ids, skip_special_tokens=True)
            assert hf.decode(ids, skip_special_tokens=True) == decoded, (style, s)
            case = {
                "text": s,
                "ids": ids,  # with BOS, as Llama encodes a prompt
                "ids_no_bos": list(tok.encode(s, add_special_tokens=False).ids),
                "decoded": decoded,  # skip_special_tokens=True
            }
            if len(s) < 200:
                case["tokens"] = list(enc.tokens)  # for people reading a failure
            cases.append(case)
        out["tokenizers"][style] = {"file": fname, "vocab_size": tok.get_vocab_size(),
                                    "bos_id": 1, "eos_id": 2, "cases": cases}
    write_json(os.path.join(TOKDIR, "cases.json"), out)
    return vocab


def main():
    make_tokenizers()


if __name__ == "__main__":
    main()
