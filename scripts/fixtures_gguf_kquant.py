#!/usr/bin/env python3
"""fixtures_gguf_kquant.py - K-quant GGUF fixtures (developer-run; outputs committed).

    /work/venv-fixtures/bin/python scripts/fixtures_gguf_kquant.py [LLAMA_QUANTIZE]

A Llama-shaped model whose rows are whole K super-blocks (hidden 256, 4 heads of 64, 2 KV
heads, FFN 512, 2 layers, vocab 256, tied embeddings; random weights from a fixed seed) is
written in F32 with gguf-py's GGUFWriter (llama.* keys, llama.cpp's tensor names), then
quantized by llama.cpp's `llama-quantize` (nobody here wrote it) into

  tests/fixtures/gguf/llama_kq_q4_k_m.gguf   Q4_K_M: Q4_K and Q6_K matrices (F32 norms)
  tests/fixtures/gguf/llama_kq_q5_k_m.gguf   Q5_K_M: Q5_K and Q6_K matrices

LLAMA_QUANTIZE defaults to $LLAMA_QUANTIZE or .cache/llamacpp/build-avx512/bin/llama-quantize
(scripts/ref_gguf_llamacpp.py builds it from the llama-cpp-python sdist). The tensor types
each file ended up with are printed (gguf.GGUFReader). CI only reads the committed files.
"""
import os
import subprocess
import sys
import tempfile

import numpy as np

import gguf

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "gguf")
HIDDEN, HEADS, KV_HEADS, HEAD_DIM, FFN, LAYERS, VOCAB, CTX = 256, 4, 2, 64, 512, 2, 256, 128


def write_f32(path):
    rng = np.random.default_rng(20261206)

    def mat(rows, cols, gain=1.0):  # [out, in] as GGUF stores rows
        return (rng.standard_normal((rows, cols)) * gain / np.sqrt(cols)).astype(np.float32)

    w = gguf.GGUFWriter(path, "llama")
    w.add_name("llama_kq")
    w.add_context_length(CTX)
    w.add_embedding_length(HIDDEN)
    w.add_block_count(LAYERS)
    w.add_feed_forward_length(FFN)
    w.add_rope_dimension_count(HEAD_DIM)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-5)
    w.add_rope_freq_base(10000.0)
    w.add_vocab_size(VOCAB)
    w.add_file_type(0)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    # The embeddings double as the classifier (tied): rows of norm ~4 give distinct logits.
    w.add_tensor("token_embd.weight", (rng.standard_normal((VOCAB, HIDDEN)) * 0.25).astype(np.float32))
    for i in range(LAYERS):
        w.add_tensor(f"blk.{i}.attn_norm.weight", (1 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32))
        w.add_tensor(f"blk.{i}.attn_q.weight", mat(HEADS * HEAD_DIM, HIDDEN))
        w.add_tensor(f"blk.{i}.attn_k.weight", mat(KV_HEADS * HEAD_DIM, HIDDEN))
        w.add_tensor(f"blk.{i}.attn_v.weight", mat(KV_HEADS * HEAD_DIM, HIDDEN))
        w.add_tensor(f"blk.{i}.attn_output.weight", mat(HIDDEN, HEADS * HEAD_DIM))
        w.add_tensor(f"blk.{i}.ffn_norm.weight", (1 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32))
        w.add_tensor(f"blk.{i}.ffn_gate.weight", mat(FFN, HIDDEN))
        w.add_tensor(f"blk.{i}.ffn_up.weight", mat(FFN, HIDDEN))
        w.add_tensor(f"blk.{i}.ffn_down.weight", mat(HIDDEN, FFN))
    w.add_tensor("output_norm.weight", (1 + 0.1 * rng.standard_normal(HIDDEN)).astype(np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    q = sys.argv[1] if len(sys.argv) > 1 else os.environ.get(
        "LLAMA_QUANTIZE", os.path.join(ROOT, ".cache", "llamacpp", "build-avx512", "bin", "llama-quantize"))
    env = dict(os.environ, LD_LIBRARY_PATH=os.path.dirname(os.path.abspath(q)))
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "llama_kq_f32.gguf")
        write_f32(src)
        for kind in ("Q4_K_M", "Q5_K_M"):
            dst = os.path.join(OUT, f"llama_kq_{kind.lower()}.gguf")
            subprocess.run([q, src, dst, kind, "1"], check=True, env=env, stdout=subprocess.DEVNULL)
            r = gguf.GGUFReader(dst)
            types = sorted({t.tensor_type.name for t in r.tensors})
            print(f"{os.path.relpath(dst, ROOT)}: {os.path.getsize(dst)} bytes, tensor types {types}")


if __name__ == "__main__":
    main()
