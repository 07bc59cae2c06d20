#!/usr/bin/env python3
"""ref_gguf_pretok.py - GGUF files with byte-level BPE tokenizers under several
tokenizer.ggml.pre names, and llama.cpp's ids for them (developer-run; CI uses the committed
tests/fixtures/gguf_pretok/).

    python3 scripts/ref_gguf_pretok.py EDGELOAD LLAMA_TOKENIZE

EDGELOAD: edgeload's CLI (build/edgeload); LLAMA_TOKENIZE: llama.cpp's llama-tokenize
(bench/llamacpp_build.sh, from the llama-cpp-python 0.3.36 sdist). For each trained
vocabulary of tests/fixtures/tokenizer_pretok (Llama 3's, Qwen2's and SmolLM2's pre-tokenizers
over 1448 tokens) a one-layer Llama of hidden size 8 with that tokenizer.json is packed by
`edgeload pack --dtype f16` (which names the pre-tokenizer llama-bpe, qwen2 and smollm), and
copies of those files get the other names llama.cpp maps to the same or to other
pre-tokenizers (rewritten with gguf-py: llama3, gpt-2, default; default_digits adds tokens). Every file's ids for the first
texts of <vocab>_cases.json come from llama-tokenize (special tokens parsed, BOS as the file
says) into tests/fixtures/gguf_pretok/<name>.json; tests/test_tokenizer_gguf_pretok.c checks
edgeload gives the same ids, or refuses the file by name.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGUFReader, GGUFValueType, GGUFWriter
from safetensors.numpy import save_file

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
SRC = os.path.join(ROOT, "tests", "fixtures", "tokenizer_pretok")
OUT = os.path.join(ROOT, "tests", "fixtures", "gguf_pretok")
N_TEXTS = 120

# (fixture name, tokenizer.json of tokenizer_pretok, the name pack writes, the name to give)
FILES = [
    ("llama_bpe", "llama3", "llama-bpe", None),
    ("llama3", "llama3", "llama-bpe", "llama3"),
    ("qwen2", "qwen2", "qwen2", None),
    ("smollm", "smollm2", "smollm", None),
    ("gpt_2", "smollm2", "smollm", "gpt-2"),
    ("default", "smollm2", "smollm", "default"),
    ("default_digits", "smollm2", "smollm", "default+digits"),
]
# default_digits: "default" with the 100 two-digit tokens "00".."99" and their merges added,
# so that llama.cpp's fourth default regex ([0-9]{3} apart) changes ids ("1234" -> 123 | 4:
# "12" "3" "4", not "12" "34"). Its texts: the default file's and some digit runs.
DIGIT_TEXTS = [b"1234", b"12345678901", b"x 98765 y", b"3.14159265", b"2026-12-06 10:03",
               b"a1b22c333d4444e55555", b"\xd9\xa3\xd9\xa4\xd9\xa5 1234", b"v1.2345.67890"]


def tiny_llama(dirname, vocab):
    """A Llama of hidden size 8, one layer, vocab rows, random weights (ids do not read them)."""
    os.makedirs(dirname)
    h, ff, rng = 8, 16, np.random.default_rng(0)
    cfg = {"model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": h,
           "intermediate_size": ff, "num_hidden_layers": 1, "num_attention_heads": 2,
           "num_key_value_heads": 1, "vocab_size": vocab, "max_position_embeddings": 64,
           "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": True,
           "hidden_act": "silu"}
    with open(os.path.join(dirname, "config.json"), "w") as f:
        json.dump(cfg, f)
    shapes = {"model.embed_tokens.weight": (vocab, h), "model.norm.weight": (h,)}
    p = "model.layers.0."
    for n, s in [("self_attn.q_proj", (h, h)), ("self_attn.k_proj", (4, h)),
                 ("self_attn.v_proj", (4, h)), ("self_attn.o_proj", (h, h)),
                 ("mlp.gate_proj", (ff, h)), ("mlp.up_proj", (ff, h)), ("mlp.down_proj", (h, ff)),
                 ("input_layernorm", (h,)), ("post_attention_layernorm", (h,))]:
        shapes[p + n + ".weight"] = s
    save_file({k: rng.standard_normal(s).astype(np.float32) for k, s in shapes.items()},
              os.path.join(dirname, "model.safetensors"))


def rename_pre(src, dst, pre):
    """A copy of GGUF src whose tokenizer.ggml.pre is pre (everything else as it was)."""
    r = GGUFReader(src)
    w = GGUFWriter(dst, r.fields["general.architecture"].contents())
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        val = pre if key == "tokenizer.ggml.pre" else f.contents()
        sub = f.types[-1] if f.types[0] == GGUFValueType.ARRAY else None
        w.add_key_value(key, val, f.types[0], sub_type=sub)
    for t in r.tensors:
        w.add_tensor(t.name, t.data, raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def add_digit_pairs(src, dst, pre):
    """A copy of GGUF src with tokenizer.ggml.pre = pre and the tokens "00".."99" (merges
    "d d", normal type) appended, token_embd grown to match."""
    r = GGUFReader(src)
    w = GGUFWriter(dst, r.fields["general.architecture"].contents())
    pairs = [f"{a}{b}" for a in range(10) for b in range(10)]
    for key, f in r.fields.items():
        if key.startswith("GGUF.") or key == "general.architecture":
            continue
        val = f.contents()
        if key == "tokenizer.ggml.pre":
            val = pre
        elif key == "tokenizer.ggml.tokens":
            val = val + pairs
        elif key == "tokenizer.ggml.token_type":
            val = val + [1] * len(pairs)
        elif key == "tokenizer.ggml.merges":
            val = val + [f"{p[0]} {p[1]}" for p in pairs]
        sub = f.types[-1] if f.types[0] == GGUFValueType.ARRAY else None
        w.add_key_value(key, val, f.types[0], sub_type=sub)
    for t in r.tensors:
        data = np.array(t.data)
        if t.name == "token_embd.weight":
            data = np.concatenate([data, np.zeros((len(pairs), data.shape[1]), data.dtype)])
        w.add_tensor(t.name, data, raw_dtype=t.tensor_type)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def llama_ids(tokenize, model, text, tmp):
    path = os.path.join(tmp, "text.txt")
    with open(path, "wb") as f:
        f.write(text)
    out = subprocess.run([tokenize, "-m", model, "-f", path, "--ids", "--log-disable"],
                         check=True, capture_output=True).stdout.decode().strip().splitlines()
    return json.loads(out[-1])


def main():
    edgeload, tokenize = sys.argv[1:3]
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        packed = {}
        for name, vocab, packed_pre, pre in FILES:
            if vocab not in packed:
                cases = json.load(open(os.path.join(SRC, vocab + "_cases.json")))
                model = os.path.join(tmp, vocab)
                tiny_llama(model, cases["vocab"])
                shutil.copy(os.path.join(SRC, vocab + ".json"), os.path.join(model, "tokenizer.json"))
                gguf = os.path.join(tmp, vocab + ".gguf")
                subprocess.run([edgeload, "pack", model, "-o", gguf, "--dtype", "f16"], check=True,
                               capture_output=True)
                got = GGUFReader(gguf).fields["tokenizer.ggml.pre"].contents()
                assert got == packed_pre, (vocab, got)
                packed[vocab] = (gguf, cases)
            gguf, cases = packed[vocab]
            out_gguf = os.path.join(OUT, name + ".gguf")
            if pre == "default+digits":
                pre = "default"
                add_digit_pairs(gguf, out_gguf, pre)
            elif pre:
                rename_pre(gguf, out_gguf, pre)
            else:
                shutil.copy(gguf, out_gguf)
            texts = list(DIGIT_TEXTS) if name == "default_digits" else []
            for c in cases["cases"]:
                b = bytes.fromhex(c["hex"])
                if b and b"\0" not in b and len(texts) < N_TEXTS:
                    try:
                        b.decode("utf-8")
                    except UnicodeDecodeError:
                        continue
                    texts.append(b)
            ref = {"gguf": name + ".gguf", "tokenizer_json": "tokenizer_pretok/" + vocab + ".json",
                   "pre": pre or packed_pre, "llama_cpp": "llama-tokenize, llama-cpp-python 0.3.36",
                   "cases": [{"hex": t.hex(), "ids": llama_ids(tokenize, out_gguf, t, tmp)}
                             for t in texts]}
            with open(os.path.join(OUT, name + ".json"), "w") as f:
                json.dump(ref, f, separators=(",", ":"))
                f.write("\n")
            print(name, ref["pre"], len(ref["cases"]), os.path.getsize(out_gguf))


if __name__ == "__main__":
    main()
