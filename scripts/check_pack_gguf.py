#!/usr/bin/env python3
"""check_pack_gguf.py - `edgeload pack MODEL -o X.gguf` against references nobody here wrote
(developer-run; CI runs tests/test_pack_gguf.c).

    /work/venv-fixtures/bin/python scripts/check_pack_gguf.py [BUILD_DIR] [LLAMA_BIN_DIR]

BUILD_DIR: edgeload's build (default build/); LLAMA_BIN_DIR: llama.cpp binaries built from the
llama-cpp-python sdist (default /work/llamacpp/bin; llama-simple is used).

For the transformers fixtures llama (hf_llama_gqa), qwen2, phi3, gemma3 (a copy whose layer
layout and query scale GGUF gemma3 can express: every sixth layer global, scale = head size)
gpt2 (a copy with a 512-token byte-level BPE tokenizer.json trained by
scripts/fixtures_gguf.gpt2_tokenizer, since the fixture has none), and the phi3 fixture again
as p3json and p3spm (in folders whose names do not contain "phi3", which makes llama.cpp look
up "<|endoftext|>"; p3spm with the SentencePiece tokenizer.model of tests/fixtures/pack_gguf),
packed with every --dtype:

1. gguf-py's GGUFReader reads the file; every tensor has the name gguf-py's own TensorNameMap
   gives the HF name, and its bytes equal gguf.quants.quantize() of the source weights in
   llama.cpp's layout (llama q/k rows permuted as LlamaModel.permute, Gemma norms + 1, GPT-2
   Conv1D transposed) at the type edgeload's rule picks (1-D: F32; matrices: the --dtype when
   their rows are whole blocks, else as stored); dequantize() of it is within the type's
   error of the source. A few metadata values are checked against config.json.
2. The "<arch>.*" hyperparameters of the phi3 and gpt2 files equal those of the GGUF files
   llama.cpp's own convert_hf_to_gguf.py wrote from the same fixtures (tests/fixtures/gguf).
3. llama.cpp's llama-simple (greedy) loads the f32 and q8_0 files and its text equals
   `edgeload generate --temp 0` on the same file (same prompt, same token count).
Prints one line per file and check; exit 1 if any check failed.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FIX = os.path.join(ROOT, "tests", "fixtures")
sys.path.insert(0, os.path.join(ROOT, "scripts"))

import gguf  # noqa: E402
from safetensors.numpy import load_file  # noqa: E402

DTYPES = ["f32", "f16", "bf16", "q8_0", "q4_0", "q4_1", "q5_0", "q5_1"]
QT = gguf.GGMLQuantizationType
GGML = {"f32": QT.F32, "f16": QT.F16, "bf16": QT.BF16, "q8_0": QT.Q8_0, "q4_0": QT.Q4_0,
        "q4_1": QT.Q4_1, "q5_0": QT.Q5_0, "q5_1": QT.Q5_1}
ARCH = {"llama": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2,
        "phi3": gguf.MODEL_ARCH.PHI3, "gemma3": gguf.MODEL_ARCH.GEMMA3, "gpt2": gguf.MODEL_ARCH.GPT2}
PROMPT = "hello world, the quick"
N_GEN = 16
failures = []


def check(ok, what):
    print(("  ok    " if ok else "  FAIL  ") + what)
    if not ok:
        failures.append(what)


def models(tmp):
    """(arch, folder) of each source."""
    out = [("llama", os.path.join(FIX, "hf_llama_gqa")), ("qwen2", os.path.join(FIX, "hf_llama_qwen2")),
           ("phi3", os.path.join(FIX, "hf_llama_phi3"))]
    g = os.path.join(tmp, "gemma3")
    os.makedirs(g)
    with open(os.path.join(FIX, "hf_llama_gemma3", "config.json")) as f:
        cfg = json.load(f)
    cfg["layer_types"] = ["sliding_attention"] * cfg["num_hidden_layers"]
    cfg["query_pre_attn_scalar"] = cfg["head_dim"]
    with open(os.path.join(g, "config.json"), "w") as f:
        json.dump(cfg, f)
    for name in ("model.safetensors", "tokenizer.json"):
        shutil.copy(os.path.join(FIX, "hf_llama_gemma3", name), g)
    out.append(("gemma3", g))
    import fixtures_gguf
    d = os.path.join(tmp, "gpt2")
    os.makedirs(d)
    for name in ("model.safetensors", "config.json"):
        shutil.copy(os.path.join(FIX, "hf_gpt2_small", name), d)
    fixtures_gguf.gpt2_tokenizer(512).save(os.path.join(d, "tokenizer.json"))
    out.append(("gpt2", d))
    # llama.cpp gives a vocabulary special attributes by general.name (the folder's name here):
    # a name containing "phi3" makes it look up "<|endoftext|>", which these tiny vocabularies
    # lack (std::unordered_map::at throws). The same phi3 fixture in folders named otherwise:
    # with its tokenizer.json, and with the SentencePiece tokenizer.model of
    # tests/fixtures/pack_gguf.
    for name, tok in (("p3json", "tokenizer.json"), ("p3spm", "tokenizer.model")):
        d = os.path.join(tmp, name)
        os.makedirs(d)
        for f in ("model.safetensors", "config.json"):
            shutil.copy(os.path.join(FIX, "hf_llama_phi3", f), d)
        shutil.copy(os.path.join(FIX, "pack_gguf" if tok == "tokenizer.model" else "hf_llama_phi3", tok), d)
        out.append(("phi3", d))
    return out


def permute(w, n_head):
    """HF rotate-half rows to llama.cpp's pairs (what LlamaModel.permute does)."""
    return (w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:])
            .swapaxes(1, 2).reshape(w.shape))


def expected(arch, cfg, name, w):
    """The source tensor w in llama.cpp's layout, as f32."""
    w = w.astype(np.float32)
    if arch == "llama" and name.endswith(("q_proj.weight", "q_proj.bias")):
        w = permute(w, cfg["num_attention_heads"])
    if arch == "llama" and name.endswith(("k_proj.weight", "k_proj.bias")):
        w = permute(w, cfg.get("num_key_value_heads") or cfg["num_attention_heads"])
    if arch == "gemma3" and name.endswith("norm.weight"):
        w = w + 1
    if arch == "gpt2" and name.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight")):
        w = w.T.copy()
    return w


def gguf_py_check(arch, src, out, dtype):
    cfg = json.load(open(os.path.join(src, "config.json")))
    r = gguf.GGUFReader(out)
    n_blocks = cfg.get("num_hidden_layers") or cfg.get("n_layer")
    tmap = gguf.get_tensor_name_map(ARCH[arch], n_blocks)
    by_name = {t.name: t for t in r.tensors}
    weights = load_file(os.path.join(src, "model.safetensors"))
    bad, worst = [], 0.0
    for hf, w in weights.items():
        gname = tmap.get_name(hf, try_suffixes=(".weight", ".bias"))
        if gname is None or gname not in by_name:
            bad.append(f"{hf}: no tensor {gname}")
            continue
        t = by_name[gname]
        e = expected(arch, cfg, hf, w)
        conv1d = arch == "gpt2" and hf.endswith((".c_attn.weight", ".c_proj.weight", ".c_fc.weight"))
        want_t = QT.F32
        if e.ndim == 2:
            want_t = GGML[dtype]
            if gguf.GGML_QUANT_SIZES[want_t][0] > 1 and (e.shape[1] % 32 or conv1d):
                want_t = QT.F32  # the fixtures are f32: kept as stored
        if t.tensor_type != want_t:
            bad.append(f"{gname}: type {t.tensor_type.name}, expected {want_t.name}")
            continue
        want_bytes = gguf.quants.quantize(e, want_t)
        if want_bytes.tobytes() != np.asarray(t.data).tobytes():
            bad.append(f"{gname}: bytes differ from gguf.quants.quantize")
        deq = gguf.quants.dequantize(np.asarray(t.data), t.tensor_type).reshape(e.shape)
        scale = float(np.abs(e).max()) or 1.0
        worst = max(worst, float(np.abs(deq - e).max()) / scale)
    check(not bad and len(by_name) == len(weights),
          f"gguf-py: {os.path.basename(out)}: {len(by_name)} tensors, names by TensorNameMap, "
          f"bytes == gguf.quants.quantize, dequantize max rel err {worst:.2e}"
          + ("" if not bad else " :: " + "; ".join(bad[:4])))
    f = r.fields
    val = lambda k: f[k].contents() if k in f else None  # noqa: E731
    meta_ok = (val("general.architecture") == arch and
               val(f"{arch}.block_count") == n_blocks and
               val(f"{arch}.embedding_length") == (cfg.get("hidden_size") or cfg.get("n_embd")) and
               val("tokenizer.ggml.model") in ("gpt2", "llama") and
               len(val("tokenizer.ggml.tokens")) == (cfg.get("vocab_size")))
    check(meta_ok, f"gguf-py: {os.path.basename(out)}: architecture, block_count, embedding_length, "
          f"tokenizer ({val('tokenizer.ggml.model')}, pre {val('tokenizer.ggml.pre')}, "
          f"{len(val('tokenizer.ggml.tokens') or [])} tokens)")


# GGUF files llama.cpp's own convert_hf_to_gguf.py wrote from the same fixtures
# (scripts/fixtures_gguf_arch.py): their "<arch>.*" hyperparameters are the reference.
CONVERTED = {"phi3": os.path.join(FIX, "gguf", "phi3_f32.gguf"),
             "gpt2": os.path.join(FIX, "gguf", "gpt2_small_f32.gguf")}


def converter_keys_check(arch, out):
    ref, mine = gguf.GGUFReader(CONVERTED[arch]), gguf.GGUFReader(out)
    diff, same = [], 0
    for k, f in ref.fields.items():
        if not k.startswith(arch + "."):
            continue
        g = mine.fields.get(k)
        if g is None:
            diff.append(f"{k} missing (converter: {f.contents()})")
        elif g.contents() != f.contents():
            diff.append(f"{k} {g.contents()} (converter: {f.contents()})")
        else:
            same += 1
    # Known and accepted: phi3.rope.scaling.original_context_length (LongRoPE's, which
    # edgeload refuses) and phi3.attention.sliding_window 0 for a null window.
    known = [d for d in diff if d.startswith(("phi3.rope.scaling.original_context_length",
                                                "phi3.attention.sliding_window"))]
    rest = [d for d in diff if d not in known]
    check(not rest, f"converter keys: {os.path.basename(out)}: {same} '{arch}.*' values equal to "
          f"{os.path.basename(CONVERTED[arch])}'s" + (f"; not written: {'; '.join(known)}" if known else "")
          + (f" :: {'; '.join(rest)}" if rest else ""))


def strip_bos(raw):
    """The output bytes without a leading BOS text (llama-simple prints the prompt's tokens)."""
    raw = raw.strip()
    for b in (b"<s>", b"<bos>", b"<|endoftext|>"):
        if raw.startswith(b):
            return raw[len(b):].strip()
    return raw


def llama_simple_check(cli, bindir, out):
    """Raw bytes compared (tiny random models emit bytes that are no UTF-8)."""
    ls = subprocess.run([os.path.join(bindir, "llama-simple"), "-m", out, "-n", str(N_GEN), PROMPT],
                        capture_output=True)
    el = subprocess.run([cli, "generate", out, "--temp", "0", "-n", str(N_GEN), "--prompt", PROMPT],
                        capture_output=True)
    cmd = f"llama-simple -m {os.path.basename(out)} -n {N_GEN} '{PROMPT}'"
    if ls.returncode != 0:
        err = ls.stderr.decode(errors="replace")
        why = [l for l in err.splitlines() if "error" in l.lower()][:1]
        check(False, f"llama.cpp: {cmd}: exit {ls.returncode}: {why[0] if why else ''}")
        return
    a, b = strip_bos(ls.stdout), strip_bos(el.stdout)
    check(el.returncode == 0 and a == b,
          f"llama.cpp: {cmd} == edgeload generate --temp 0 (bytes): {a!r}" + ("" if a == b else f" vs {b!r}"))


def main():
    build = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "build")
    bindir = sys.argv[2] if len(sys.argv) > 2 else "/work/llamacpp/bin"
    cli = os.path.join(build, "edgeload")
    with tempfile.TemporaryDirectory() as tmp:
        for arch, src in models(tmp):
            print(f"{arch}: {src}")
            label = os.path.basename(src) if src.startswith(tmp) else arch
            for dtype in DTYPES:
                out = os.path.join(tmp, f"{label}_{dtype}.gguf")
                p = subprocess.run([cli, "pack", src, "-o", out, "--dtype", dtype],
                                   capture_output=True, text=True)
                check(p.returncode == 0, f"edgeload pack {label} -o {label}_{dtype}.gguf --dtype {dtype}"
                      + ("" if p.returncode == 0 else ": " + p.stderr.strip()))
                if p.returncode:
                    continue
                gguf_py_check(arch, src, out, dtype)
                if dtype == "f32" and label in CONVERTED:
                    converter_keys_check(arch, out)
                if dtype in ("f32", "q8_0"):
                    llama_simple_check(cli, bindir, out)
    print(f"{len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
