#!/usr/bin/env python3
"""ref_ggml_kquant.py - llama.cpp's own K-type matrix products for tests/test_ggml_ops.c
(developer-run; CI uses the committed tests/fixtures/ggml_ops/gemma3_kquant*).

    python3 scripts/ref_ggml_kquant.py LLAMA_CPP_SRC LLAMA_CPP_BIN GGUF_DIR [LABEL]

Arguments as scripts/ref_ggml_ops.py (whose dump tool this builds). Decodes the first n ids
(n = 1, 4, 5, 7, 8, 13: one token, one group of four, four plus one, four plus three, and
batches of 8 or more, where ggml runs Q6_K through its tiled matmul) of the second recorded
Gemma 3 270M prompt (tests/fixtures/gguf_real/gemma3_270m_q4_k_m.json) and keeps layer 0's
attention output projection (Q4_K: llama.cpp repacks it on x86 and runs its gemv / gemm
kernels) and FFN down projection (Q6_K: ggml_vec_dot_q6_K_q8_K, or the tiled matmul), input
and output: gemma3_kquant_<type>_in.bin ([max n, in] f32: each smaller batch's input is its
first n rows, checked) and gemma3_kquant_<type>_out<n>.bin ([n, ROWS] f32: the first ROWS
outputs of each token), and the first ROWS weight rows as stored in the file
(gemma3_kquant_<type>_w.bin, raw blocks), read with gguf-py; shapes in gemma3_kquant.json.

Then the K-type matrices llama.cpp does not repack on x86 (scripts/ref_ggml_kquant_op.cpp,
ggml's MUL_MAT on a plain CPU tensor: ggml_vec_dot_<type>_q8_K under 8 tokens, its tiled matmul
from 8): for each key of REQUANT, rows of a layer-0 weight dequantized with gguf-py and
quantized again with ggml's own quantizer (ggml_quantize_chunk), times the recorded inputs of
that weight's product above: gemma3_kquant_<key>_w.bin and gemma3_kquant_<key>_out<n>.bin
([n, rows] f32, every output), "input" in the json naming the input file.

Last, end to end: the small K-quant Llama fixtures (tests/fixtures/gguf/llama_kq_<ftype>.gguf,
scripts/fixtures_gguf_kquant.py: Q4_K (rows multiples of 8, repacked) or Q5_K matrices and
Q6_K ones), copied with tokenizer.ggml.model = "none" (they carry no vocabulary, which
llama.cpp requires), decoding the first n of E2E_IDS in one batch: llama.cpp's last-token
logits, llama_kq_<ftype>_logits<n>.bin ([vocab] f32), ids and sizes in llama_kq_logits.json.
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
sys.path.insert(0, HERE)
from ref_ggml_ops import OUT, ROOT, build_dump  # noqa: E402

FILE = "gemma-3-270m-q4_k_m.gguf"
ROWS = 64
NS = [1, 4, 5, 7, 8, 13]
# fixture key: weight tensor of layer 0
WEIGHTS = {"q4_k": "blk.0.attn_output.weight", "q6_k": "blk.0.ffn_down.weight"}
# fixture key: (ggml type, rows, the WEIGHTS key whose tensor and inputs it takes): Q5_K (never
# repacked on x86) and Q4_K with a row count that is not a multiple of 8 (not repacked)
REQUANT = {"q5_k": ("q5_k", 64, "q6_k"), "q4_k61": ("q4_k", 61, "q4_k")}
E2E_MODELS = ["q5_k_m", "q4_k_m"]
E2E_IDS = [1, 17, 200, 45, 99, 3, 250, 128, 64, 7, 33, 180, 222]


def e2e(exe, label, tmp):
    """The end-to-end fixtures (see the module's doc) with the dump tool exe."""
    import gguf
    meta = {"llama_cpp": label, "ids": E2E_IDS, "ns": NS, "models": E2E_MODELS}
    for ft in E2E_MODELS:
        r = GGUFReader(os.path.join(ROOT, "tests", "fixtures", "gguf", "llama_kq_%s.gguf" % ft))
        path = os.path.join(tmp, "llama_kq_%s.gguf" % ft)
        w = gguf.GGUFWriter(path, "llama")
        for k, f in r.fields.items():
            if k.startswith("GGUF.") or k == "general.architecture":
                continue
            if f.types[0] == gguf.GGUFValueType.ARRAY:
                w.add_key_value(k, f.contents(), f.types[0], sub_type=f.types[-1])
            else:
                w.add_key_value(k, f.contents(), f.types[0])
        w.add_string("tokenizer.ggml.model", "none")
        for t in r.tensors:
            w.add_tensor(t.name, np.asarray(t.data), raw_dtype=t.tensor_type)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        for n in NS:
            run = os.path.join(tmp, "e2e_%s_%d" % (ft, n))
            os.makedirs(run)
            subprocess.run([exe, path] + [str(i) for i in E2E_IDS[:n]], check=True,
                           capture_output=True,
                           env=dict(os.environ, DUMP="mm_token_embd.weight", OUT=run))
            y = np.fromfile(os.path.join(run, "mm_token_embd.weight_0.bin"), dtype="<f4")
            meta["vocab"] = int(y.size)
            y.tofile(os.path.join(OUT, "llama_kq_%s_logits%d.bin" % (ft, n)))
    with open(os.path.join(OUT, "llama_kq_logits.json"), "w", encoding="utf-8") as fo:
        json.dump(meta, fo, indent=1)
        fo.write("\n")


def requant(src, bindir, r, meta, inputs, tmp):
    """The REQUANT fixtures (see the module's doc) with the op harness built in tmp."""
    exe = os.path.join(tmp, "kop")
    subprocess.run(["g++", "-O2", "-std=c++17", os.path.join(HERE, "ref_ggml_kquant_op.cpp"),
                    "-I" + os.path.join(src, "ggml", "include"), "-L" + bindir, "-lggml",
                    "-lggml-base", "-lggml-cpu", "-Wl,-rpath," + bindir, "-o", exe], check=True)
    for key, (gtype, rows, base) in REQUANT.items():
        wname = WEIGHTS[base]
        t = [t for t in r.tensors if t.name == wname][0]
        w = dequantize(np.asarray(t.data)[:rows], t.tensor_type).astype("<f4")
        n_in = int(t.shape[0])
        assert w.shape == (rows, n_in), (key, w.shape)
        run = os.path.join(tmp, key)
        os.makedirs(run)
        w.tofile(os.path.join(run, "w.f32"))
        x = inputs[base]
        x.astype("<f4").tofile(os.path.join(run, "x.f32"))
        subprocess.run([exe, gtype, os.path.join(run, "w.f32"), str(rows), str(n_in),
                        os.path.join(run, "x.f32"), run] + [str(n) for n in NS], check=True)
        q = np.fromfile(os.path.join(run, "w.bin"), dtype=np.uint8)
        assert q.size % rows == 0, key
        q.tofile(os.path.join(OUT, "gemma3_kquant_%s_w.bin" % key))
        for n in NS:
            y = np.fromfile(os.path.join(run, "out%d.bin" % n), dtype="<f4")
            assert y.size == n * rows, (key, n)
            y.tofile(os.path.join(OUT, "gemma3_kquant_%s_out%d.bin" % (key, n)))
        meta["types"][key] = {"tensor": wname, "type": gtype, "input": base, "in": n_in,
                              "rows": rows, "row_bytes": int(q.size // rows),
                              "quantized_by": "ggml_quantize_chunk"}


def main():
    src, bindir, gguf_dir = sys.argv[1:4]
    label = sys.argv[4] if len(sys.argv) > 4 else bindir
    path = os.path.join(gguf_dir, FILE)
    ref = json.load(open(os.path.join(ROOT, "tests", "fixtures", "gguf_real",
                                      "gemma3_270m_q4_k_m.json"), encoding="utf-8"))
    ids = ref["cases"][1]["ids"]
    r = GGUFReader(path)
    meta = {"model": FILE, "llama_cpp": label, "ids": ids[:max(NS)], "ns": NS, "rows": ROWS,
            "types": {}}
    os.makedirs(OUT, exist_ok=True)
    for key, wname in WEIGHTS.items():
        t = [t for t in r.tensors if t.name == wname][0]
        assert t.tensor_type.name.lower() == key, (wname, t.tensor_type.name)
        raw = np.asarray(t.data)  # [rows, bytes per row], uint8
        raw[:ROWS].astype(np.uint8).tofile(os.path.join(OUT, "gemma3_kquant_%s_w.bin" % key))
        meta["types"][key] = {"tensor": wname, "in": int(t.shape[0]), "out": int(t.shape[1]),
                              "row_bytes": int(raw.shape[1])}
    with tempfile.TemporaryDirectory() as tmp:
        exe = build_dump(src, bindir, tmp)
        names = ",".join(p + "mm_" + w for w in WEIGHTS.values() for p in ("", "in_"))
        inputs = {}
        for n in NS:
            run = os.path.join(tmp, "n%d" % n)
            os.makedirs(run)
            subprocess.run([exe, path] + [str(i) for i in ids[:n]], check=True,
                           capture_output=True, env=dict(os.environ, DUMP=names, OUT=run))
            for key, wname in WEIGHTS.items():
                m = meta["types"][key]
                x = np.fromfile(os.path.join(run, "in_mm_%s_0.bin" % wname), dtype="<f4")
                y = np.fromfile(os.path.join(run, "mm_%s_0.bin" % wname), dtype="<f4")
                assert x.size == n * m["in"] and y.size == n * m["out"], (key, n)
                first = inputs.setdefault(key, x)  # the previous (smaller) batch's input
                assert np.array_equal(x[:first.size].view("<u4"), first.view("<u4")), (key, n)
                inputs[key] = x
                y.reshape(n, m["out"])[:, :ROWS].astype("<f4").tofile(
                    os.path.join(OUT, "gemma3_kquant_%s_out%d.bin" % (key, n)))
        requant(src, bindir, r, meta, inputs, tmp)
        e2e(exe, label, tmp)
    for key, x in inputs.items():
        x.tofile(os.path.join(OUT, "gemma3_kquant_%s_in.bin" % key))
    with open(os.path.join(OUT, "gemma3_kquant.json"), "w", encoding="utf-8") as fo:
        json.dump(meta, fo, indent=1)
        fo.write("\n")
    print(meta)


if __name__ == "__main__":
    main()
