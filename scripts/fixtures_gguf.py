#!/usr/bin/env python3
"""fixtures_gguf.py - builds the GGUF fixtures in tests/fixtures/gguf/ (developer-run).

    .venv-fixtures/bin/python scripts/fixtures_gguf.py
(any venv with the `gguf` package (the GGUFWriter/GGUFReader of llama.cpp's gguf-py), numpy and
safetensors). CI never runs this: its outputs are committed.

  llama_gqa_f32.gguf  tests/fixtures/hf_llama_gqa (a tiny HF LlamaForCausalLM, GQA 4/2 heads,
                      head_dim 16, tied embeddings) written as llama.cpp's convert_hf_to_gguf.py
                      writes a llama model: llama.* metadata, GGUF tensor names, and the q/k
                      projection rows permuted from HF's rotate-half order into llama.cpp's
                      adjacent-pair order (permute() below: for each head, rows
                      [r0 .. r(d/2-1), r(d/2) .. r(d-1)] become [r0, r(d/2), r1, r(d/2+1), ...];
                      k uses the kv head count). All tensors F32.
  llama_gqa_f16.gguf  the same with every tensor F16 (numpy's round-to-nearest-even).
  llama_gqa_gpt2tok_f16.gguf  llama_gqa_f16.gguf plus a tokenizer in tokenizer.ggml.* as llama.cpp
                      writes one for tokenizer.ggml.model "gpt2": a 512-token byte-level BPE trained
                      here with the `tokenizers` library (GPT-2 pre-tokenizer, ChatML-style control
                      tokens <|endoftext|> <|im_start|> <|im_end|> at ids 0..2).
  gpt2tok_cases.json  texts (hex) -> the ids `tokenizers` gives with that tokenizer, and its
                      decode of them (skip_special_tokens, as edgeload shows generated text).
  tok_smollm.gguf     only a tokenizer (no tensors) with tokenizer.ggml.pre "smollm": trained
                      as above but with SmolLM2's pre-tokenizer (Digits(individual_digits), then
                      ByteLevel) and without a token for byte 0x04 (SmolLM2's vocabulary lacks
                      a few bytes too); tok_smollm_cases.json as gpt2tok_cases.json.
  meta_all.gguf       architecture "mamba" (not runnable: tests the refusal), one metadata entry of
                      each of the 13 value types, empty / unicode strings, arrays of every element
                      type (the writer refuses empty arrays), nested arrays (2 and 3 deep), general.alignment 64, and tiny tensors of
                      F32, F16, BF16, I32, Q8_0, Q4_1 and Q4_K (raw blocks) with 1..4 dimensions.
  fuzz/corpus/gguf/   seeds for fuzz/fuzz_gguf.c: copies of meta_all.gguf and tok_smollm.gguf,
                      llama_tiny_f16.gguf
                      (a 1-layer llama, hidden 8, vocab 16, F16, with a token list) and
                      llama_tiny_gpt2tok.gguf (the same with a 264-token gpt2 tokenizer).
  meta_all.json       meta_all.gguf as gguf.GGUFReader (the reference reader) reads it back:
                      every key in file order with its type and value (arrays fully; the value
                      handed to the writer, nested as lists, since the reader flattens nested
                      arrays: checked equal to the reader's flattened contents) and every
                      tensor's name, GGML type name, ne (innermost first), byte size and offset
                      from the start of the file. tests/test_loader_gguf.c compares our reader
                      with it.
"""
import importlib.metadata
import json
import os
import sys

import numpy as np
from safetensors.numpy import load_file

import gguf
from gguf import GGMLQuantizationType as Q
from gguf import GGUFValueType as VT

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SRC = os.path.join(ROOT, "tests", "fixtures", "hf_llama_gqa")
OUT = os.path.join(ROOT, "tests", "fixtures", "gguf")


def permute(w, n_head):
    """llama.cpp's q/k row order: within each head, the two rotate-half halves interleaved."""
    rows = w.shape[0]
    d = rows // n_head
    return w.reshape(n_head, 2, d // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama_gguf(path, dtype, tok=None):
    cfg = json.load(open(os.path.join(SRC, "config.json")))
    st = load_file(os.path.join(SRC, "model.safetensors"))
    n_head, n_kv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    head_dim = cfg.get("head_dim") or cfg["hidden_size"] // n_head
    theta = cfg.get("rope_theta") or cfg["rope_parameters"]["rope_theta"]
    w = gguf.GGUFWriter(path, "llama")
    w.add_name("hf_llama_gqa")
    w.add_context_length(cfg["max_position_embeddings"])
    w.add_embedding_length(cfg["hidden_size"])
    w.add_block_count(cfg["num_hidden_layers"])
    w.add_feed_forward_length(cfg["intermediate_size"])
    w.add_rope_dimension_count(head_dim)
    w.add_head_count(n_head)
    w.add_head_count_kv(n_kv)
    w.add_key_length(head_dim)
    w.add_value_length(head_dim)
    w.add_layer_norm_rms_eps(cfg["rms_norm_eps"])
    w.add_rope_freq_base(theta)
    w.add_vocab_size(cfg["vocab_size"])
    w.add_file_type(0 if dtype == np.float32 else 1)
    w.add_bos_token_id(cfg["bos_token_id"])
    w.add_eos_token_id(cfg["eos_token_id"])
    if tok is not None:
        spec = json.loads(tok.to_str())
        vocab = spec["model"]["vocab"]
        tokens = [None] * len(vocab)
        for s, i in vocab.items():
            tokens[i] = s
        merges = [m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]]
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("gpt2")
        w.add_token_list(tokens)
        w.add_token_types([3 if t in SPECIALS else 1 for t in tokens])
        w.add_token_merges(merges)
        w.add_add_bos_token(False)

    def put(name, a):
        w.add_tensor(name, np.ascontiguousarray(a.astype(dtype)))

    put("token_embd.weight", st["model.embed_tokens.weight"])
    for i in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{i}."
        put(f"blk.{i}.attn_norm.weight", st[p + "input_layernorm.weight"])
        put(f"blk.{i}.attn_q.weight", permute(st[p + "self_attn.q_proj.weight"], n_head))
        put(f"blk.{i}.attn_k.weight", permute(st[p + "self_attn.k_proj.weight"], n_kv))
        put(f"blk.{i}.attn_v.weight", st[p + "self_attn.v_proj.weight"])
        put(f"blk.{i}.attn_output.weight", st[p + "self_attn.o_proj.weight"])
        put(f"blk.{i}.ffn_norm.weight", st[p + "post_attention_layernorm.weight"])
        put(f"blk.{i}.ffn_gate.weight", st[p + "mlp.gate_proj.weight"])
        put(f"blk.{i}.ffn_up.weight", st[p + "mlp.up_proj.weight"])
        put(f"blk.{i}.ffn_down.weight", st[p + "mlp.down_proj.weight"])
    put("output_norm.weight", st["model.norm.weight"])
    assert cfg["tie_word_embeddings"] and "lm_head.weight" not in st
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


WRITTEN = {}  # key -> the value handed to the writer (nested arrays as nested lists)


def meta_all(path):
    w = gguf.GGUFWriter(path, "mamba")
    w.add_custom_alignment(64)  # general.alignment (u32)

    def put(key, value, vt, sub=None):
        w.add_key_value(key, value, vt, sub_type=sub)
        WRITTEN[key] = value

    put("t.u8", 200, VT.UINT8)
    put("t.i8", -100, VT.INT8)
    put("t.u16", 60000, VT.UINT16)
    put("t.i16", -30000, VT.INT16)
    put("t.u32", 4000000000, VT.UINT32)
    put("t.i32", -2000000000, VT.INT32)
    put("t.f32", 0.15625, VT.FLOAT32)
    put("t.bool", True, VT.BOOL)
    put("t.string", "héllo, wörld ✓", VT.STRING)
    put("t.empty", "", VT.STRING)
    put("t.u64", 18000000000000000000, VT.UINT64)
    put("t.i64", -9000000000000000000, VT.INT64)
    put("t.f64", -2.5e-300, VT.FLOAT64)
    put("t.arr_i32", [1, -2, 3, 2147483647], VT.ARRAY, VT.INT32)
    put("t.arr_f32", [0.5, -1.25], VT.ARRAY, VT.FLOAT32)
    put("t.arr_str", ["a", "", "<|im_start|>", "Ġthe"], VT.ARRAY, VT.STRING)
    put("t.arr_bool", [True, False, True], VT.ARRAY, VT.BOOL)
    put("t.arr_u8", [0, 255, 7], VT.ARRAY, VT.UINT8)
    put("t.arr_i8", [-128, 127], VT.ARRAY, VT.INT8)
    put("t.arr_u16", [65535, 1], VT.ARRAY, VT.UINT16)
    put("t.arr_i16", [-32768, 5], VT.ARRAY, VT.INT16)
    put("t.arr_u32", [4294967295], VT.ARRAY, VT.UINT32)
    put("t.arr_u64", [2**64 - 1, 0], VT.ARRAY, VT.UINT64)
    put("t.arr_i64", [-2**63, 2**63 - 1], VT.ARRAY, VT.INT64)
    put("t.arr_f64", [1e300, -0.0], VT.ARRAY, VT.FLOAT64)
    put("t.nested", [[1, 2, 3], [4]], VT.ARRAY)
    put("t.nested_str", [["x", "yz"], ["w"]], VT.ARRAY)
    put("t.nested3", [[[1], [2, 3]], [[-4]]], VT.ARRAY)
    rng = np.random.default_rng(7)
    w.add_tensor("a.f32", rng.standard_normal((3, 5)).astype(np.float32))
    w.add_tensor("b.f16", rng.standard_normal((2, 2, 4)).astype(np.float16))
    bf = rng.integers(0, 65535, size=(8,), dtype=np.uint16)
    w.add_tensor("c.bf16", bf, raw_shape=(8,), raw_dtype=Q.BF16)
    w.add_tensor("d.i32", np.arange(6, dtype=np.int32).reshape(1, 1, 2, 3))
    w.add_tensor("e.q8_0", rng.integers(0, 255, size=(2, 2 * 34), dtype=np.uint8), raw_dtype=Q.Q8_0)
    w.add_tensor("f.q4_1", rng.integers(0, 255, size=(1, 20), dtype=np.uint8), raw_dtype=Q.Q4_1)
    w.add_tensor("g.q4_k", rng.integers(0, 255, size=(1, 144), dtype=np.uint8), raw_dtype=Q.Q4_K)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


CORPUS = [
    "Once upon a time, there was a little girl named Lily. She liked to play outside.",
    "The future of AI is small models on small devices, loaded like firmware.",
    "def add(a, b):\n    return a + b  # 42 + 7 = 49\n",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9 \u2014 \u00fcber stra\u00dfe, \u65e5\u672c\u8a9e, emoji \U0001F600!",
    "<|im_start|>user\nHello there!<|im_end|>\n<|im_start|>assistant\nHi, how can I help?<|im_end|>",
] * 20 + [" ".join(f"tok{i * 7919 % 997}en{chr(97 + i % 26)}" for i in range(k, k + 40))
          for k in range(0, 4000, 40)]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
TOK_TEXTS = [
    "Hello world", "Once upon a time, there was a little girl", "  two  spaces and\ttabs\n\n",
    "numbers 3.14159 and 1,000,000", "I'm sure they'll say it's fine",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "caf\u00e9 \u65e5\u672c\u8a9e \U0001F600 <|endoftext|> end", "",
    "x = 12345 + 678; call(\u0004) \u0004\u0004 ok tok123en tok 997", "\u0663\u0664 \u2167 \u00bd 2\u00b2",
]


def gpt2_tokenizer(vocab_size=512, digits=False):
    """A 512-token byte-level BPE (GPT-2's pre-tokenizer and decoder) trained with `tokenizers`
    on a fixed text; ids 0..2 are ChatML-style control tokens, as in SmolLM2."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    tok = Tokenizer(models.BPE())
    bl = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    if digits:  # a vocabulary without byte 0x04 (SmolLM2's lacks a few bytes too)
        alphabet = [c for c in alphabet if c != "\u0104"]
    tok.pre_tokenizer = bl
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIALS,
                                  initial_alphabet=alphabet, show_progress=False)
    tok.train_from_iterator(CORPUS, trainer)
    if digits:
        # SmolLM2's pre-tokenizer, set after training so the vocabulary holds merges of digits
        # (and of a space and a digit) that splitting digits apart must keep from applying.
        tok.pre_tokenizer = pre_tokenizers.Sequence(
            [pre_tokenizers.Digits(individual_digits=True), bl])
    assert tok.get_vocab_size() == vocab_size, tok.get_vocab_size()
    return tok


def llama_gpt2tok(path, tok, dtype):
    """llama_gqa weights (vocab 512) with tok in tokenizer.ggml.* as llama.cpp's converter
    writes a gpt2-model vocabulary: tokens by id, token_type (3 control, 1 normal), merges
    "a b", bos/eos ids, add_bos_token false."""
    llama_gguf(path, dtype, tok)


def tok_only(path, tok, pre):
    """Just a tokenizer in GGUF metadata (no tensors), as llama.cpp's converter writes it."""
    spec = json.loads(tok.to_str())
    tokens = [None] * tok.get_vocab_size()
    for s, i in spec["model"]["vocab"].items():
        tokens[i] = s
    w = gguf.GGUFWriter(path, "none")
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(pre)
    w.add_token_list(tokens)
    w.add_token_types([3 if t in SPECIALS else 1 for t in tokens])
    w.add_token_merges([m if isinstance(m, str) else " ".join(m) for m in spec["model"]["merges"]])
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def tok_cases(path, tok, made_from):
    cases = [{"hex": t.encode().hex(), "ids": tok.encode(t).ids,
              "decoded_hex": tok.decode(tok.encode(t).ids, skip_special_tokens=True).encode().hex()}
             for t in TOK_TEXTS]
    with open(path, "w") as fh:
        json.dump({"made_by": "scripts/fixtures_gguf.py: the tokenizers library "
                   f"{importlib.metadata.version('tokenizers')} encoding each text "
                   "(add_special_tokens has no effect: no post-processor) with the tokenizer "
                   f"stored in {made_from}", "cases": cases}, fh, indent=1)
        fh.write("\n")


def tiny_llama(path, tok=None):
    """A fuzz seed: a llama model small enough to open, plan and run in a fuzz iteration;
    with tok, its vocabulary and a gpt2 tokenizer in the metadata."""
    rng = np.random.default_rng(3)
    vocab = tok.get_vocab_size() if tok else 16
    w = gguf.GGUFWriter(path, "llama")
    w.add_context_length(16)
    w.add_embedding_length(8)
    w.add_block_count(1)
    w.add_feed_forward_length(8)
    w.add_head_count(2)
    w.add_head_count_kv(1)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    if tok:
        spec = json.loads(tok.to_str())
        tokens = [None] * vocab
        for s, i in spec["model"]["vocab"].items():
            tokens[i] = s
        w.add_tokenizer_model("gpt2")
        w.add_token_list(tokens)
        w.add_token_types([3 if t in SPECIALS else 1 for t in tokens])
        w.add_token_merges([m if isinstance(m, str) else " ".join(m)
                            for m in spec["model"]["merges"]])
        w.add_eos_token_id(2)
    else:
        w.add_array("tokenizer.ggml.tokens", [f"t{i}" for i in range(16)])
    names = [("token_embd.weight", (vocab, 8)), ("blk.0.attn_norm.weight", (8,)),
             ("blk.0.attn_q.weight", (8, 8)), ("blk.0.attn_k.weight", (4, 8)),
             ("blk.0.attn_v.weight", (4, 8)), ("blk.0.attn_output.weight", (8, 8)),
             ("blk.0.ffn_norm.weight", (8,)), ("blk.0.ffn_gate.weight", (8, 8)),
             ("blk.0.ffn_up.weight", (8, 8)), ("blk.0.ffn_down.weight", (8, 8)),
             ("output_norm.weight", (8,))]
    for n, shape in names:
        w.add_tensor(n, rng.standard_normal(shape).astype(np.float16))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def flatten(v):
    if isinstance(v, list):
        return [x for e in v for x in flatten(e)]
    return [v]


def reference(path, out):
    r = gguf.GGUFReader(path)
    names = {VT.UINT8: "u8", VT.INT8: "i8", VT.UINT16: "u16", VT.INT16: "i16",
             VT.UINT32: "u32", VT.INT32: "i32", VT.FLOAT32: "f32", VT.BOOL: "bool",
             VT.STRING: "string", VT.ARRAY: "array", VT.UINT64: "u64", VT.INT64: "i64",
             VT.FLOAT64: "f64"}
    kv = []
    for f in r.fields.values():
        if f.name.startswith("GGUF."):
            continue  # the reader's own pseudo-fields (version, counts)
        # The reader flattens nested arrays: the value is the one written, checked against
        # the reader's flattened view.
        got = f.contents()
        value = WRITTEN.get(f.name, got)
        assert flatten(value) == flatten(got), (f.name, value, got)
        e = {"key": f.name, "type": names[f.types[0]], "value": value}
        if f.types[0] == VT.ARRAY:
            e["elem_type"] = names[f.types[1]]
        kv.append(e)
    tensors = [{"name": t.name, "type": t.tensor_type.name, "ne": [int(x) for x in t.shape],
                "nbytes": int(t.n_bytes), "offset": int(t.data_offset)} for t in r.tensors]
    doc = {"made_by": f"scripts/fixtures_gguf.py with gguf {importlib.metadata.version('gguf')}"
           " GGUFReader", "alignment": int(r.alignment), "data_offset": int(r.data_offset),
           "metadata": kv, "tensors": tensors}
    # floats: repr round-trips; json keeps them exact
    with open(out, "w") as fh:
        json.dump(doc, fh, indent=1, ensure_ascii=True)
        fh.write("\n")


def main():
    os.makedirs(OUT, exist_ok=True)
    llama_gguf(os.path.join(OUT, "llama_gqa_f32.gguf"), np.float32)
    llama_gguf(os.path.join(OUT, "llama_gqa_f16.gguf"), np.float16)
    tok = gpt2_tokenizer()
    llama_gpt2tok(os.path.join(OUT, "llama_gqa_gpt2tok_f16.gguf"), tok, np.float16)
    tok_cases(os.path.join(OUT, "gpt2tok_cases.json"), tok, "llama_gqa_gpt2tok_f16.gguf")
    smol = gpt2_tokenizer(512, digits=True)
    tok_only(os.path.join(OUT, "tok_smollm.gguf"), smol, "smollm")
    tok_cases(os.path.join(OUT, "tok_smollm_cases.json"), smol, "tok_smollm.gguf")
    meta_all(os.path.join(OUT, "meta_all.gguf"))
    reference(os.path.join(OUT, "meta_all.gguf"), os.path.join(OUT, "meta_all.json"))
    corpus = os.path.join(ROOT, "fuzz", "corpus", "gguf")
    os.makedirs(corpus, exist_ok=True)
    tiny_llama(os.path.join(corpus, "llama_tiny_f16.gguf"))
    tiny_llama(os.path.join(corpus, "llama_tiny_gpt2tok.gguf"), gpt2_tokenizer(264))
    for name in ("meta_all.gguf", "tok_smollm.gguf"):
        with open(os.path.join(OUT, name), "rb") as src:
            with open(os.path.join(corpus, name), "wb") as dst:
                dst.write(src.read())
    # Self-check of the permutation against its definition (row j of head h moves to 2j or
    # 2(j - d/2) + 1).
    q = np.arange(2 * 8 * 3).reshape(16, 3)
    p = permute(q, 2)
    for h in range(2):
        for j in range(8):
            dst = 2 * j if j < 4 else 2 * (j - 4) + 1
            assert (p[h * 8 + dst] == q[h * 8 + j]).all()
    for f in sorted(os.listdir(OUT)):
        print(f, os.path.getsize(os.path.join(OUT, f)))


if __name__ == "__main__":
    sys.exit(main())
