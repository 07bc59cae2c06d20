#!/usr/bin/env python3
"""ref_ggml_ops.py - llama.cpp's own layer-0 tensors for tests/test_ggml_ops.c (developer-run;
CI uses the committed tests/fixtures/ggml_ops/).

    python3 scripts/ref_ggml_ops.py LLAMA_CPP_SRC LLAMA_CPP_BIN GGUF_DIR [LABEL]

LLAMA_CPP_SRC: the llama.cpp source (vendor/llama.cpp of the llama-cpp-python 0.3.36 sdist);
LLAMA_CPP_BIN: its build's bin folder with libllama/libggml (bench/llamacpp_build.sh); GGUF_DIR:
what scripts/fetch_gguf.sh fetched. Builds scripts/ref_ggml_ops_dump.cpp against them, decodes
the first recorded prompt of each real model (tests/fixtures/gguf_real/<model>.json) in one batch
and keeps, for layer 0: the RMSNorm's input and output (and its weight, read with gguf-py), the
queries before and after RoPE, the keys and values after RoPE, the attention output (llama.cpp's
flash attention over its f16 cache), and the FFN's gate, up and their SwiGLU / GEGLU. Each is
<model>_<what>.bin (f32, little-endian) with its shape in <model>.json. The sums inside these
ops depend on the build (AVX2 or AVX-512: LABEL says which; the test passes the lane width).
"""
import json
import os
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
OUT = os.path.join(ROOT, "tests", "fixtures", "ggml_ops")

# model: file, then (fixture name, dumped tensor, occurrence: -1 = the last; None: the
# token embeddings' rows, dequantized here as ggml's get_rows does: the callback does not see
# llama.cpp's inp_embd)
MODELS = {
    "smollm2_q4_1": ("SmolLM2-135M-Instruct.Q4_1.gguf", "silu", [
        ("norm_in", None, 0), ("norm_out", "attn_norm-0", 0),
        ("q_pre", "Qcur-0", 0), ("q_post", "Qcur-0", -1), ("k", "Kcur-0", -1),
        ("v", "Vcur-0", -1), ("att_out", "kqv_out-0", 0),
        ("gate", "mm_blk.0.ffn_gate.weight", 0), ("up", "mm_blk.0.ffn_up.weight", 0),
        ("act", "ffn_swiglu-0", 0)]),
    "gemma3_270m_q4_k_m": ("gemma-3-270m-q4_k_m.gguf", "gelu", [
        ("norm_in", "inp_scaled", 0), ("norm_out", "attn_norm-0", 0),
        ("q_pre", "Qcur_normed-0", 0), ("q_post", "Qcur-0", -1), ("k", "Kcur-0", -1),
        ("v", "Vcur-0", -1), ("att_out", "kqv_out-0", 0),
        ("gate", "mm_blk.0.ffn_gate.weight", 0), ("up", "mm_blk.0.ffn_up.weight", 0),
        ("act", "ffn_geglu-0", 0)]),
}


def build_dump(src, bindir, tmp):
    """Builds scripts/ref_ggml_ops_dump.cpp against llama.cpp's headers and libraries in tmp;
    returns the executable's path."""
    exe = os.path.join(tmp, "dump")
    subprocess.run(["g++", "-O2", "-std=c++17", os.path.join(HERE, "ref_ggml_ops_dump.cpp"),
                    "-I" + os.path.join(src, "include"),
                    "-I" + os.path.join(src, "ggml", "include"), "-L" + bindir, "-lllama",
                    "-lggml", "-lggml-base", "-Wl,-rpath," + bindir, "-o", exe], check=True)
    return exe


def main():
    src, bindir, gguf_dir = sys.argv[1:4]
    label = sys.argv[4] if len(sys.argv) > 4 else bindir
    os.makedirs(OUT, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_dump(src, bindir, tmp)
        for name, (file, act, want) in MODELS.items():
            path = os.path.join(gguf_dir, file)
            ref = json.load(open(os.path.join(ROOT, "tests", "fixtures", "gguf_real",
                                              name + ".json"), encoding="utf-8"))
            ids = ref["cases"][0]["ids"]
            names = ",".join(sorted({t for _, t, _ in want if t}))
            out = subprocess.run([exe, path] + [str(i) for i in ids], check=True,
                                 capture_output=True, text=True,
                                 env=dict(os.environ, DUMP=names, OUT=tmp)).stdout
            shapes, count = {}, {}
            for line in out.splitlines():
                t, k, *ne = line.split()
                shapes[(t, int(k))] = [int(x) for x in ne]
                count[t] = max(count.get(t, 0), int(k) + 1)
            r = GGUFReader(path)
            f = lambda key: r.fields[key].contents()
            arch = f("general.architecture")
            meta = {"model": file, "llama_cpp": label, "ids": ids, "arch": arch,
                    "eps": f(arch + ".attention.layer_norm_rms_epsilon"), "act": act,
                    "heads": f(arch + ".attention.head_count"),
                    "kv_heads": f(arch + ".attention.head_count_kv"), "files": {}}
            for key, t, k in want:
                if t is None:
                    e = [t for t in r.tensors if t.name == "token_embd.weight"][0]
                    rows = dequantize(e.data, e.tensor_type).reshape(-1, int(e.shape[0]))
                    rows[ids].astype("<f4").tofile(os.path.join(OUT, "%s_%s.bin" % (name, key)))
                    meta["files"][key] = {"tensor": "token_embd.weight rows",
                                          "ne": [int(e.shape[0]), len(ids), 1]}
                    continue
                k = count[t] - 1 if k < 0 else k
                data = np.fromfile(os.path.join(tmp, "%s_%d.bin" % (t, k)), dtype="<f4")
                data.tofile(os.path.join(OUT, "%s_%s.bin" % (name, key)))
                meta["files"][key] = {"tensor": t, "occurrence": k, "ne": shapes[(t, k)]}
            w = [t for t in r.tensors if t.name == "blk.0.attn_norm.weight"][0]
            dequantize(w.data, w.tensor_type).astype("<f4").tofile(
                os.path.join(OUT, name + "_norm_w.bin"))
            meta["files"]["norm_w"] = {"tensor": "blk.0.attn_norm.weight", "ne": [int(w.shape[0])]}
            with open(os.path.join(OUT, name + ".json"), "w", encoding="utf-8") as fo:
                json.dump(meta, fo, indent=1)
                fo.write("\n")
            print(name, {k: v["ne"] for k, v in meta["files"].items()})


if __name__ == "__main__":
    main()
