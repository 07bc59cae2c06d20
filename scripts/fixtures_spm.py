#!/usr/bin/env python3
"""fixtures_spm.py - builds the SentencePiece ("llama") GGUF tokenizer fixtures (developer-run).

    /work/venv-fixtures/bin/python scripts/fixtures_spm.py LLAMA_CPP_SRC LLAMA_CPP_BUILD [GEMMA_GGUF]

LLAMA_CPP_SRC is a llama.cpp checkout (we used the one vendored in the llama-cpp-python 0.3.36
sdist), LLAMA_CPP_BUILD its CMake build folder with bin/llama-tokenize and bin/libllama.so; the
script compiles scripts/llama_detok.c (a driver for llama.cpp's llama_detokenize) against it
with cc. The venv needs the `gguf` and `sentencepiece` packages. CI never runs this: its outputs are committed, in tests/fixtures/gguf/:

  tok_spm.gguf        only a tokenizer (no tensors, general.architecture "llama" so llama.cpp
                      loads it with vocab_only): a 1,000-piece BPE SentencePiece model trained
                      here with the `sentencepiece` package on the corpus below (byte_fallback,
                      character_coverage 0.995 so rare characters fall back to <0xXX> bytes,
                      user-defined <start_of_turn> <end_of_turn> <tab> and "  " (two spaces),
                      control <ctl>), written as llama.cpp's convert_hf_to_gguf.py writes a
                      SentencePiece vocabulary: pieces, scores, token types (1 normal,
                      2 unknown, 3 control, 4 user-defined, 6 byte), BOS/EOS/UNK ids,
                      add_bos_token true, add_eos_token false, add_space_prefix true.
  tok_spm_noprefix.gguf  the same vocabulary with add_space_prefix false and add_eos_token
                      true (Gemma's space rule, and EOS appended).
  tok_spm_cases.json  texts (hex) -> the ids llama-tokenize gives for each file, with BOS
                      (the files ask for it: ids_bos; for tok_spm_noprefix.gguf also the EOS)
                      and with --no-bos (ids), parse_special on (llama-tokenize's default), and
                      the text llama.cpp's llama_detokenize gives for each id list
                      (remove_special and unparse_special false): dec, dec_bos.
  gemma3_cases.json   with GEMMA_GGUF (the real Gemma 3 270M file, scripts/fetch_gguf.sh):
                      ~50 texts -> llama-tokenize's ids (with BOS) on the real vocabulary.
"""
import json
import os
import random
import subprocess
import sys
import tempfile

import numpy as np
import sentencepiece as spm

import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "gguf")


def corpus():
    rnd = random.Random(7)
    words = ("the quick brown fox jumps over lazy dog tokenizer model weights stream arena "
             "edge device memory kernel float quantized layer attention token merge score "
             "hello world this is a test of sentence piece byte fallback running on small "
             "boards with fixed budgets and careful loaders").split()
    accents = "café naïve résumé über straße façade crème brûlée jalapeño São Paulo Zürich".split()
    cjk = "我们 中文 分词 测试 日本語 テキスト 한국어 텍스트".split()
    lines = []
    for _ in range(3000):
        n = rnd.randint(3, 14)
        ws = [rnd.choice(words) for _ in range(n)]
        if rnd.random() < 0.3:
            ws.insert(rnd.randrange(len(ws)), rnd.choice(accents))
        if rnd.random() < 0.15:
            ws.insert(rnd.randrange(len(ws)), rnd.choice(cjk))
        if rnd.random() < 0.3:
            ws.append(str(rnd.randint(0, 99999)))
        s = " ".join(ws)
        if rnd.random() < 0.5:
            s = s.capitalize() + rnd.choice([".", "!", "?", ",", ";", ":"])
        if rnd.random() < 0.1:
            s = "    " + s  # indentation
        lines.append(s)
    lines.append("😀 emoji rarely 🚀")
    return "\n".join(lines) + "\n"


def train(tmp):
    path = os.path.join(tmp, "corpus.txt")
    with open(path, "w", encoding="utf-8") as f:
        f.write(corpus())
    prefix = os.path.join(tmp, "spm")
    spm.SentencePieceTrainer.train(
        input=path, model_prefix=prefix, model_type="bpe", vocab_size=1000,
        byte_fallback=True, character_coverage=0.995, split_digits=True,
        user_defined_symbols=["<start_of_turn>", "<end_of_turn>", "<tab>", "  "],
        control_symbols=["<ctl>"], unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        remove_extra_whitespaces=False, allow_whitespace_only_pieces=True,
        num_threads=1, minloglevel=2)
    return spm.SentencePieceProcessor(model_file=prefix + ".model")


def token_type(sp, i):
    if sp.is_unknown(i):
        return 2
    if sp.is_control(i):
        return 3
    if sp.is_byte(i):
        return 6
    if sp.is_unused(i):
        return 5
    # user-defined: sentencepiece's proto type 4 (the Python API has no is_user_defined)
    return 4 if sp.id_to_piece(i) in ("<start_of_turn>", "<end_of_turn>", "<tab>", "  ") else 1


def write_gguf(sp, path, space_prefix, add_eos):
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(64)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(16)
    w.add_head_count(2)
    w.add_head_count_kv(2)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_vocab_size(sp.get_piece_size())
    w.add_tokenizer_model("llama")
    n = sp.get_piece_size()
    w.add_token_list([sp.id_to_piece(i).encode("utf-8") for i in range(n)])
    w.add_token_scores([float(sp.get_score(i)) for i in range(n)])
    w.add_token_types([token_type(sp, i) for i in range(n)])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_unk_token_id(0)
    w.add_add_bos_token(True)
    w.add_add_eos_token(add_eos)
    w.add_add_space_prefix(space_prefix)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_ids(tool, model, text, bos):
    args = [tool, "-m", model, "-p", text, "--ids", "--log-disable"]
    if not bos:
        args.append("--no-bos")
    out = subprocess.run(args, capture_output=True, check=True).stdout.decode()
    line = [l for l in out.splitlines() if l.startswith("[")][-1]
    return json.loads(line)


def texts():
    base = [
        " ", "  ", "   ", "\n", "\t", "\n\n", " \n ", "a", "A", "hello", "Hello world",
        "hello world", " hello world", "hello world ", "  hello  world  ", "hello\nworld",
        "hello\tworld", "hello\t\tworld", "line one\nline two\n", "\n\nleading newlines",
        "trailing newlines\n\n", "The quick brown fox jumps over the lazy dog.",
        "the tokenizer model streams weights into the arena",
        "café naïve résumé", "Straße über Zürich", "crème brûlée façade", "jalapeño São Paulo",
        "我们 中文 分词", "日本語のテキスト", "한국어 텍스트", "混合 mixed 文字 text",
        "emoji 😀 and 🚀 rocket", "👍🏽 skin tone", "🇫🇷 flag", "∑ ∫ √ ∞ math",
        "12345", "3.14159", "2026-12-06", "0", "007", "1,000,000", "phone 555-0123",
        "x = y + 1;", "if (a < b) { return c; }", "<p>html?</p>", "a<b>c", "<", "<start",
        "<start_of_turn>", "<end_of_turn>", "<start_of_turn>user\nhello<end_of_turn>\n",
        "<start_of_turn>model\n", "text<start_of_turn>more", "text <start_of_turn> more",
        "<start_of_turn><end_of_turn>", "<ctl>", "a<ctl>b", " <ctl> ", "<ctl><ctl>",
        "<s>", "</s>", "<unk>", "a<unk>b", "<s>hello</s>", "<tab>", "x<tab>y", "<tab><tab>",
        "two  spaces", "three   spaces", "four    spaces", "     five", "end     ",
        "\u00a0nbsp\u00a0", "zero\u200bwidth", "ctrl\x01char\x7f", "bell\x07", "nul-free \x1b[0m",
        "▁ literal lower one eighth block", "▁▁", "Ω≈ç√∫", "ÀÉÎÕÜ", "ﬁ ligature", "Ｆｕｌｌ",
        "a\r\nb", "\r", "tab\tthen  two\n\nnew", "   \t\n  mixed whitespace  \n\t ",
    ]
    rnd = random.Random(11)
    words = ("the model token weights arena hello world café 中文 😀 42 <start_of_turn> "
             "<end_of_turn> <ctl> <tab> \n \t   ü ß ø 한").split(" ")
    for _ in range(220):
        n = rnd.randint(1, 12)
        parts = [rnd.choice(words) for _ in range(n)]
        sep = [rnd.choice(["", " ", "  ", "\n", "\t", " "]) for _ in range(n)]
        base.append("".join(p + s for p, s in zip(parts, sep)))
    # stretches longer than the encoder's stack work space (1,024 characters), and one
    # longer than its scratch (16,384 characters: merged in the caller's buffer)
    long_words = [w for w in words if w.strip() and "<" not in w] + [
        "fox", "jumps", "over", "the", "lazy", "dog", "ﬁ", "🚀"]
    base.append(" ".join(rnd.choice(long_words) for _ in range(400)))
    base.append(" ".join(rnd.choice(long_words) for _ in range(4000)))
    base.append("<start_of_turn>" + "".join(rnd.choice(long_words) + rnd.choice([" ", "  ", ""])
                                            for _ in range(400)) + "<end_of_turn>")
    seen, out = {""}, []  # llama-tokenize refuses an empty prompt
    for t in base:
        if t not in seen:
            seen.add(t)
            out.append(t)
    return out


GEMMA_TEXTS = [
    "Hello world", "Hello, how are you today?", " leading space", "trailing space ",
    "  two leading", "multiple   inner    spaces", "tabs\tand\t\ttabs", "new\nline", "\n\n\n",
    "                                        forty spaces", "café naïve résumé",
    "Straße über Zürich", "我们正在测试中文分词。", "日本語のテキストを分割します",
    "한국어 텍스트 토큰화", "emoji 😀🚀👍🏽🇫🇷", "∑ ∫ √ ∞", "12345 67890", "3.14159265358979",
    "def f(x):\n    return x * 2\n", "<start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    "<bos>text", "<eos>", "<pad><mask><unk>", "<table><tr><td>cell</td></tr></table>",
    "<h1>Title</h1>", "a</s>b", "[multimodal]", "<start_of_image>", "<unused0><unused6241>",
    "The quick brown fox jumps over the lazy dog.", "ALL CAPS TEXT", "MixedCase CamelCase",
    "snake_case_identifier", "https://example.com/path?q=1&r=2", "user@example.com",
    "\u00a0nbsp", "zero\u200bwidth", "ctrl\x01\x02", "▁literal", "Ω≈ç√∫˜µ≤≥÷",
    "ﬁ ﬂ ligatures", "Ｆｕｌｌｗｉｄｔｈ", "a\r\nb", "\t\t\t\t\t", "  \n  \n",
    "Привет мир", "مرحبا بالعالم", "שלום עולם", "नमस्ते दुनिया", "ไทย ภาษา",
]


def detok(drv, model, id_lists):
    """llama.cpp's llama_detokenize of each id list, as bytes."""
    inp = "".join(" ".join(map(str, ids)) + "\n" for ids in id_lists)
    out = subprocess.run([drv, model], input=inp.encode(), capture_output=True, check=True)
    return [bytes.fromhex(l) for l in out.stdout.decode().split("\n")[:len(id_lists)]]


def dump(doc, f):
    """doc as compact JSON, one case a line."""
    c = (",", ":")
    f.write('{"generator":%s,"cases":[\n' % json.dumps(doc["generator"]))
    f.write(",\n".join(json.dumps(x, separators=c, ensure_ascii=True) for x in doc["cases"]))
    f.write("\n]}\n")


def main():
    if len(sys.argv) < 3:
        sys.exit("usage: fixtures_spm.py LLAMA_CPP_SRC LLAMA_CPP_BUILD [GEMMA_GGUF]")
    src, build = sys.argv[1], sys.argv[2]
    tool = os.path.join(build, "bin", "llama-tokenize")
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        sp = train(tmp)
        drv = os.path.join(tmp, "llama_detok")
        lib = os.path.join(build, "bin")
        subprocess.run(["cc", "-O1", "-o", drv, os.path.join(ROOT, "scripts", "llama_detok.c"),
                        "-I" + os.path.join(src, "include"),
                        "-I" + os.path.join(src, "ggml", "include"), "-L" + lib, "-lllama",
                        "-Wl,-rpath," + lib], check=True)
        run(sp, tool, drv)


def run(sp, tool, drv):
    files = {"tok_spm.gguf": (True, False), "tok_spm_noprefix.gguf": (False, True)}
    for name, (prefix, eos) in files.items():
        write_gguf(sp, os.path.join(OUT, name), prefix, eos)
    cases = []
    for t in texts():
        c = {"hex": t.encode("utf-8").hex(), "files": {}}
        for name in files:
            p = os.path.join(OUT, name)
            ids = llama_ids(tool, p, t, False)
            c["files"][name] = {"ids": ids, "ids_bos": llama_ids(tool, p, t, True)}
        cases.append(c)
    for name in files:
        p = os.path.join(OUT, name)
        for key in ("ids", "ids_bos"):
            dec = detok(drv, p, [c["files"][name][key] for c in cases])
            for c, d in zip(cases, dec):
                c["files"][name]["dec" + key[3:]] = d.hex()
    doc = {"generator": "scripts/fixtures_spm.py (llama.cpp llama-tokenize, sentencepiece "
                        + spm.__version__ + ", llama_detokenize)", "cases": cases}
    with open(os.path.join(OUT, "tok_spm_cases.json"), "w") as f:
        dump(doc, f)
    print("tok_spm_cases.json: %d texts" % len(cases))
    if len(sys.argv) > 3:
        gem = [{"hex": t.encode("utf-8").hex(), "ids_bos": llama_ids(tool, sys.argv[3], t, True)}
               for t in GEMMA_TEXTS]
        for c, d in zip(gem, detok(drv, sys.argv[3], [c["ids_bos"] for c in gem])):
            c["dec_bos"] = d.hex()
        with open(os.path.join(OUT, "gemma3_cases.json"), "w") as f:
            dump({"generator": "scripts/fixtures_spm.py (llama.cpp llama-tokenize on "
                               "gemma-3-270m-q4_k_m.gguf, sha256 a5fd3b62...6818)",
                  "cases": gem}, f)
        print("gemma3_cases.json: %d texts" % len(gem))


if __name__ == "__main__":
    main()
