#!/usr/bin/env python3
"""fixtures_quant.py - reference quantize/dequantize fixtures for tests/test_kernels_quant.c,
made by the `gguf` PyPI package (gguf.quants, numpy): nobody here wrote it.

For Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: random f32 rows plus edge cases, quantized with
gguf.quants.quantize and dequantized back with gguf.quants.dequantize. For Q4_K, Q5_K, Q6_K
(gguf-py has no quantizer for them): random block bytes with finite f16 scales, dequantized
with gguf.quants.dequantize.

Each tests/fixtures/quant/<type>.bin: "ELQF", u32 rows, u32 cols, u32 has_input (little
endian), then rows*cols f32 inputs (if has_input), the quantized rows, rows*cols f32
dequantized values.

Also tests/fixtures/quant/hf_llama_gqa_load.txt: for the llama fixture
tests/fixtures/hf_llama_gqa and each of Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, one line per tensor:
"TYPE NAME DTYPE CRC32C" with the dtype edgeload must load it as (the type for 2-D float
tensors whose rows are whole blocks of 32, else as stored) and the CRC32C of its bytes
(gguf-py's quantization of the stored values, or the stored bytes).

And tests/fixtures/quant/hf_llama_gqa_logits_<type>.bin: transformers' float32 logits
(prompt positions x vocab, f32) of that model with every tensor above replaced by gguf-py's
dequantize(quantize(...)), i.e. the quantized model computed exactly: what edgeload's kernels
differ from only by their 8-bit activations.

Usage: /work/venv-fixtures/bin/python scripts/fixtures_quant.py [OUT_DIR]
"""
import os
import struct
import sys

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import quants

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def edge_rows(rng, cols):
    rows = []
    rows.append(np.zeros(cols, np.float32))                        # all zeros
    r = rng.standard_normal(cols).astype(np.float32)
    r[5] = 3.0e4                                                   # one huge value
    rows.append(r)
    r = rng.standard_normal(cols).astype(np.float32)
    r[37] = 1.0e7                                                  # scale overflows f16
    rows.append(r)
    r = rng.uniform(-1, 1, cols).astype(np.float32)
    r[3::32] = -5.0                                                # negative max per block
    rows.append(r)
    rows.append((rng.standard_normal(cols) * 1e-6).astype(np.float32))   # f16 scale underflows
    rows.append((rng.standard_normal(cols) * 1e-40).astype(np.float32))  # f32 denormals
    rows.append(np.full(cols, 0.3125, np.float32))                 # constant (max == min)
    r = (np.arange(cols) % 32 - 15.5).astype(np.float32)           # ties at .5
    r[::32] = 127.0
    rows.append(r)
    r = rng.integers(-16, 16, cols).astype(np.float32)             # exact grid values
    rows.append(r)
    r = rng.standard_normal(cols).astype(np.float32)
    r[1::2] = -r[1::2] * 0  # signed zeros mixed in
    rows.append(r)
    # Exact halves on each type's grid (scale 1): the +0.5 / +8.5 / +16.5 before trunc
    # decides them. Q4_0 (max -8), Q5_0 (max -16), Q4_1 (0..15), Q5_1 (0..31).
    i = np.arange(cols)
    for lo, hi, first in ((-8, 7, -8.0), (-16, 15, -16.0), (0, 15, None), (0, 31, None)):
        r = (lo + (i % (hi - lo)) + 0.5).astype(np.float32)
        if first is not None:
            r[::32] = first
        else:
            r[::32], r[1::32] = lo, hi
        rows.append(r)
    return rows


def write(path, rows, cols, x, q, deq):
    with open(path, "wb") as f:
        f.write(b"ELQF" + struct.pack("<III", rows, cols, 1 if x is not None else 0))
        if x is not None:
            f.write(np.ascontiguousarray(x, "<f4").tobytes())
        f.write(np.ascontiguousarray(q, np.uint8).tobytes())
        f.write(np.ascontiguousarray(deq, "<f4").tobytes())


def random_f16(rng, n, lo, hi):
    return rng.uniform(lo, hi, n).astype(np.float16).view(np.uint8).reshape(n, 2)


def kquant_blocks(rng, qt, nblocks):
    """Random super-blocks of a K type with finite f16 scales (ggml's field order)."""
    if qt == T.Q4_K:   # d, dmin, scales[12], qs[128]
        return np.concatenate([random_f16(rng, nblocks, -0.05, 0.05),
                               random_f16(rng, nblocks, -0.05, 0.05),
                               rng.integers(0, 256, (nblocks, 140), dtype=np.uint8)], axis=1)
    if qt == T.Q5_K:   # d, dmin, scales[12], qh[32], qs[128]
        return np.concatenate([random_f16(rng, nblocks, -0.05, 0.05),
                               random_f16(rng, nblocks, -0.05, 0.05),
                               rng.integers(0, 256, (nblocks, 172), dtype=np.uint8)], axis=1)
    # Q6_K: ql[128], qh[64], scales[16] (i8), d
    return np.concatenate([rng.integers(0, 256, (nblocks, 208), dtype=np.uint8),
                           random_f16(rng, nblocks, -0.01, 0.01)], axis=1)


def crc32c(data):
    """CRC32C (Castagnoli, reflected 0x82F63B78), as platform/crc32c.h."""
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ 0x82F63B78 if c & 1 else c >> 1
        table.append(c)
    crc = 0xFFFFFFFF
    for b in bytes(data):
        crc = table[(crc ^ b) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


def load_reference(out):
    from safetensors.numpy import load_file
    model = os.path.join(ROOT, "tests", "fixtures", "hf_llama_gqa", "model.safetensors")
    tensors = load_file(model)
    lines = []
    for qt in (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
        for name in sorted(tensors):
            t = tensors[name]
            if t.ndim == 2 and t.shape[1] % 32 == 0 and t.dtype in (np.float32, np.float16):
                with np.errstate(all="ignore"):
                    data, dt = quants.quantize(t.astype(np.float32), qt), qt.name
            else:
                data, dt = t, {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}[t.dtype]
            lines.append("%s %s %s %08x" % (qt.name, name, dt, crc32c(np.ascontiguousarray(data).tobytes())))
    with open(os.path.join(out, "hf_llama_gqa_load.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("hf_llama_gqa_load.txt:", len(lines), "lines")


def logits_reference(out):
    import json

    import torch
    from transformers import AutoModelForCausalLM
    folder = os.path.join(ROOT, "tests", "fixtures", "hf_llama_gqa")
    ref = json.load(open(os.path.join(folder, "reference.json")))
    ids = torch.tensor([ref["prompt_ids"]])
    for qt in (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
        with torch.no_grad():
            for _, p in model.named_parameters():
                a = p.detach().numpy()
                if a.ndim == 2 and a.shape[1] % 32 == 0:
                    dq = quants.dequantize(quants.quantize(a, qt), qt).reshape(a.shape)
                    p.copy_(torch.from_numpy(dq))
            logits = model(ids).logits[0].numpy().astype("<f4")
        name = "hf_llama_gqa_logits_%s.bin" % qt.name.lower()
        logits.tofile(os.path.join(out, name))
        print(name, logits.shape)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "tests", "fixtures", "quant")
    os.makedirs(out, exist_ok=True)
    rng = np.random.default_rng(20261206)
    cols = 256
    for qt in (T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1):
        rows = edge_rows(rng, cols)
        for scale in (1.0, 0.02, 40.0):
            for _ in range(4):
                rows.append((rng.standard_normal(cols) * scale).astype(np.float32))
        x = np.stack(rows)
        with np.errstate(all="ignore"):
            q = quants.quantize(x, qt)
            deq = quants.dequantize(q, qt)
        write(os.path.join(out, qt.name.lower() + ".bin"), x.shape[0], cols, x, q, deq)
        print(qt.name, x.shape, q.shape)
    kcols, krows = 512, 8
    for qt in (T.Q4_K, T.Q5_K, T.Q6_K):
        q = kquant_blocks(rng, qt, krows * kcols // 256).reshape(krows, -1)
        deq = quants.dequantize(q, qt)
        assert deq.shape == (krows, kcols)
        write(os.path.join(out, qt.name.lower() + ".bin"), krows, kcols, None, q, deq)
        print(qt.name, deq.shape, q.shape)
    load_reference(out)
    logits_reference(out)


if __name__ == "__main__":
    main()
