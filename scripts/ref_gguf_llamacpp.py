#!/usr/bin/env python3
"""ref_gguf_llamacpp.py - llama.cpp's prompt ids and greedy text for the real GGUF models
(developer-run; CI uses the committed tests/fixtures/gguf_real/<model>.json).

    python3 scripts/ref_gguf_llamacpp.py LLAMA_CPP_BIN MODEL.gguf NAME [LLAMA_CPP_BIN2]

LLAMA_CPP_BIN holds llama-tokenize and llama-simple built from the llama-cpp-python sdist on
PyPI (pip download --no-deps --no-binary :all: llama-cpp-python; cmake vendor/llama.cpp, CPU
only: -DGGML_NATIVE=OFF -DGGML_AVX2=ON on hosts whose AMX tiles are not enabled). For every
prompt below: the ids llama-tokenize gives (special tokens parsed, BOS as the file says) and
the text llama-simple generates greedily for 32 tokens (it stops early at an end-of-generation
token). tests/test_gguf_real.c checks edgeload gives the same ids and the same text.

llama.cpp's greedy text depends on how it was built: its AVX2 and AVX-512 builds (the same
source, bench/llamacpp_build.sh avx2|avx512) round differently and part ways on some prompts
(SmolLM2 "The capital of France is": "... approximately 321 million" vs "... 311 million").
With LLAMA_CPP_BIN2 (another build's bin folder) each case also records that build's text
as "text_alt" (same ids required; LLAMA_CPP_LABEL / LLAMA_CPP_LABEL_ALT describe the two
builds in the file); the test counts a prompt as agreeing with llama.cpp when
edgeload's text equals either build's.
"""
import json
import os
import subprocess
import sys

PROMPTS = [
    "The capital of France is",
    "def fibonacci(n):\n    \"\"\"Return the n-th Fibonacci number.\"\"\"\n",
    "Once upon a time, in a small village by the sea,",
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    "What is 12 + 30?<|im_end|>\n<|im_start|>assistant\n",
    "<start_of_turn>user\nName three colors.<end_of_turn>\n<start_of_turn>model\n",
    "Ünïcödé 日本語 🙂 — 123456 + 7.89",
]
N_PREDICT = 32


def run(cmd):
    return subprocess.run(cmd, check=True, capture_output=True).stdout


def simple(bindir, model, p):
    """llama-simple's greedy continuation of prompt p."""
    text = run([os.path.join(bindir, "llama-simple"), "-m", model, "-n", str(N_PREDICT), p])
    # llama-simple prints the prompt's pieces first (a BOS piece such as "<bos>" first when
    # the file adds one), then the generated text.
    pb = p.encode("utf-8")
    at = text.find(pb)
    assert 0 <= at <= 16, (p, text[:200])
    assert text.endswith(b"\n")  # llama-simple ends its output with one newline
    return text[at + len(pb):-1].decode("utf-8", "surrogateescape")


def main():
    bindir, model, name = sys.argv[1:4]
    alt = sys.argv[4] if len(sys.argv) > 4 else None
    out = {"model": os.path.basename(model), "n_predict": N_PREDICT,
           "llama_cpp": "llama-cpp-python 0.3.36 sdist (vendor/llama.cpp); text: " +
           os.environ.get("LLAMA_CPP_LABEL", bindir) +
           ("; text_alt: " + os.environ.get("LLAMA_CPP_LABEL_ALT", alt) if alt else ""),
           "cases": []}
    for p in PROMPTS:
        ids = json.loads(run([os.path.join(bindir, "llama-tokenize"), "-m", model, "-p", p,
                              "--ids", "--log-disable"]).decode().strip().splitlines()[-1])
        case = {"prompt": p, "ids": ids, "text": simple(bindir, model, p)}
        if alt:
            alt_ids = json.loads(run([os.path.join(alt, "llama-tokenize"), "-m", model, "-p", p,
                                      "--ids", "--log-disable"]).decode().strip().splitlines()[-1])
            assert alt_ids == ids, (p, ids, alt_ids)
            case["text_alt"] = simple(alt, model, p)
        out["cases"].append(case)
        print(name, len(ids), repr(out["cases"][-1]["text"][:60]))
    path = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "gguf_real",
                        name + ".json")
    with open(path, "w", encoding="utf-8") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


if __name__ == "__main__":
    main()
