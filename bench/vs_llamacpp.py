#!/usr/bin/env python3
"""vs_llamacpp.py - edgeload and llama.cpp side by side on the same GGUF files, in one run
(developer-run, never CI; plain python3, no packages).

    python3 bench/vs_llamacpp.py [--runs 5] [--threads 1,2] [--types q4_1,q8_0,...] [--quick]

- llama.cpp: built from the llama-cpp-python sdist on PyPI by bench/llamacpp_build.sh (AVX-512
  build where the CPU has it; LLAMA_CPP_BIN=DIR to use another build).
- Models: the real SmolLM2-135M-Instruct Q4_1 and Gemma-3-270M Q4_K_M (scripts/fetch_gguf.sh),
  and the SmolLM2 file re-quantized by llama.cpp's own llama-quantize (--allow-requantize) to
  Q8_0, Q4_0, Q4_K, F16 and F32: the same SmolLM2-135M shape in each type, for speed only (the
  weights of a re-quantized file are not a better model). gpt2_f32/gpt2_f16: the GPT-2 124M
  shape (bench_gpt2's seeded weights, a synthetic byte-level vocabulary of GPT-2's size)
  written as GGUF by `edgeload pack -o X.gguf`, run by llama.cpp as its gpt2 architecture.
- Decode: llama-bench tg64 after 128 cached tokens (`-d 128`: median of its per-repetition
  samples) vs `edgeload generate -n 64 --temp 0 --ctx 256` gen tok/s after its 128-token prompt
  (median of runs): the same positions on both sides (tg64 from an empty cache attends to 64
  fewer keys per token and ran 5-9% faster here). Prefill: llama-bench pp128 from an empty cache
  vs edgeload on a prompt of exactly 128 tokens (prompt tok/s). Peak RSS: edgeload's VmHWM (its
  --json report) vs /usr/bin/time's max RSS of llama-simple generating 64 tokens after the same prompt. Load:
  edgeload's weight load seconds (warm page cache after the first run) vs llama-simple's
  "load time" (its model load, mmap'ed).
- The bandwidth bound, measured in the same run: read bandwidth (build/bench_membw, same thread
  count) / weight bytes one decoded token reads (every tensor, except that an untied model
  reads one row of token_embd). "of bound" = edgeload decode tok/s / that bound, with the read
  bandwidth taken right before and right after that row's edgeload runs (their mean; both
  printed): on the machine this was written on the probe reads 30-36 GB/s at some moments
  and 47-54 at others, seconds apart, even inside one process (build/bench_bound pairs each
  decode run with a probe of the very arena it reads; docs/CPU.md).
- The 1-minute load average is printed before and after: above 0.3 the numbers are noise.
"""
import argparse
import json
import os
import re
import statistics
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GGUF = os.path.join(ROOT, ".cache", "gguf")
SMOL = os.path.join(GGUF, "SmolLM2-135M-Instruct.Q4_1.gguf")
GEMMA = os.path.join(GGUF, "gemma-3-270m-q4_k_m.gguf")
WORDS = ("the small model loads like firmware into a fixed arena and streams its weights from "
         "flash while the board keeps running its control loop").split()


def sh(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, text=True, errors="replace",
                          **kw).stdout


def load():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def tensors(el, model):
    """(name, bytes) of every tensor, from `edgeload inspect`."""
    out = []
    for line in sh([el, "inspect", model]).splitlines():
        m = re.match(r"^(\S+\.(?:weight|bias))\s+\S+\s+\[[^]]*\]\s+(\d+)$", line)
        if m:
            out.append((m.group(1), int(m.group(2))))
    return out


def bytes_per_token(el, model):
    ts = dict(tensors(el, model))
    total = sum(ts.values())
    if "output.weight" in ts and "token_embd.weight" in ts:
        total -= ts["token_embd.weight"]  # one row of it is read (negligible)
    return total


def prompt_of(el, model, n):
    """A text that the model's tokenizer turns into n tokens (BOS included) where it can: words
    until n is reached, then the last word swapped for one-token " a"s (the count is printed)."""
    def count(words):
        return len(json.loads(sh([el, "tokenize", model, "--json", " ".join(words)]))["ids"])
    words = [WORDS[i % len(WORDS)] for i in range(max(0, n - 16))]  # common words: ~1 token each
    while count(words) > n:
        words.pop()
    while count(words + [WORDS[len(words) % len(WORDS)]]) <= n:
        words.append(WORDS[len(words) % len(WORDS)])
    while count(words) < n and count(words + ["a"]) <= n:
        words.append("a")
    return " ".join(words), count(words)


def edgeload_run(el, model, prompt, threads, runs):
    pre, gen, hwm, load = [], [], [], []
    for _ in range(runs):
        r = json.loads(sh([el, "generate", model, "-p", prompt, "-n", "64", "--temp", "0",
                           "--ctx", "256", "--threads", str(threads), "--json"]).splitlines()[-1])
        pre.append(r["stats"]["prompt_tok_per_s"])
        gen.append(r["stats"]["gen_tok_per_s"])
        hwm.append(r["memory"]["vm_hwm"])
        load.append(r["memory"]["seconds"])
    return statistics.median(pre), statistics.median(gen), max(hwm), statistics.median(load)


def llama_run(bindir, model, prompt, depth, threads, runs):
    """llama-bench pp128 from an empty cache and tg64 after depth cached tokens (-d 0,depth:
    each test at both depths), so that its decode does the work edgeload's does after its
    depth-token prompt."""
    rows = json.loads(sh([os.path.join(bindir, "llama-bench"), "-m", model, "-t", str(threads),
                          "-p", "128", "-n", "64", "-d", f"0,{depth}", "-r", str(runs),
                          "-o", "json"]))
    pp = tg = None
    for r in rows:
        v = statistics.median(r.get("samples_ts") or [r["avg_ts"]])
        d = r.get("n_depth", 0)
        if r["n_prompt"] and not r["n_gen"] and d == 0:
            pp = v
        if r["n_gen"] and not r["n_prompt"] and d == depth:
            tg = v
    t = subprocess.run(["/usr/bin/time", "-f", "%M", os.path.join(bindir, "llama-simple"),
                        "-m", model, "-n", "64", prompt], capture_output=True, text=True,
                       errors="replace")
    rss = int(t.stderr.strip().splitlines()[-1]) * 1024
    m = re.search(r"load time =\s*([0-9.]+) ms", t.stderr)
    return pp, tg, rss, float(m.group(1)) / 1000 if m else float("nan")


def byte_chars():
    """GPT-2's byte-level alphabet: byte b as the character ByteLevel maps it to."""
    keep = list(range(33, 127)) + list(range(161, 173)) + list(range(174, 256))
    out, extra = {}, 0
    for b in range(256):
        if b in keep:
            out[b] = chr(b)
        else:
            out[b] = chr(256 + extra)
            extra += 1
    return [out[b] for b in range(256)]


def gpt2_tokenizer(path, vocab=50257):
    """A byte-level BPE tokenizer.json with GPT-2's size (256 bytes, vocab - 257 two-character
    merges in a fixed order, <|endoftext|> last): speed runs need GPT-2's vocabulary size and
    llama.cpp needs a vocabulary, not GPT-2's own (not on PyPI)."""
    chars = byte_chars()
    tokens = {c: i for i, c in enumerate(chars)}
    merges = []
    for k in range(vocab - 257):
        a, b = chars[k // 256], chars[k % 256]
        tokens[a + b] = len(tokens)
        merges.append(f"{a} {b}")
    eot = "<|endoftext|>"
    tokens[eot] = len(tokens)
    bl = {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": True, "use_regex": True}
    doc = {"version": "1.0", "truncation": None, "padding": None,
           "added_tokens": [{"id": tokens[eot], "content": eot, "single_word": False,
                             "lstrip": False, "rstrip": False, "normalized": True,
                             "special": True}],
           "normalizer": None, "pre_tokenizer": bl, "post_processor": bl, "decoder": bl,
           "model": {"type": "BPE", "dropout": None, "unk_token": None,
                     "continuing_subword_prefix": "", "end_of_word_suffix": "",
                     "fuse_unk": False, "byte_fallback": False, "vocab": tokens,
                     "merges": merges}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(doc, f, ensure_ascii=False)


def gpt2_gguf(el, build, dtype):
    """GPT-2 124M shape (bench_gpt2's seeded random weights) as a GGUF of dtype, written by
    edgeload's pack (llama.cpp's gpt2 architecture), for both runtimes."""
    d = os.path.join(GGUF, "derived", "gpt2-124m")
    out = os.path.join(GGUF, "derived", f"GPT-2-124M.{dtype.upper()}.gguf")
    if not os.path.exists(out):
        if not os.path.exists(os.path.join(d, "model.safetensors")):
            os.makedirs(d, exist_ok=True)
            sh([os.path.join(build, "bench_gpt2"), "--keep", d, "--write-only"])
        if not os.path.exists(os.path.join(d, "tokenizer.json")):
            gpt2_tokenizer(os.path.join(d, "tokenizer.json"))
        sh([el, "pack", d, "-o", out, "--dtype", dtype])
    return out


def membw(build, threads):
    out = sh([os.path.join(build, "bench_membw"), "--bytes", str(1 << 30), "--threads",
              str(threads)])
    return float(out.split()[0]) * 1e9


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--types", default="q4_1,gemma,q8_0,q4_0,q4_k,f16,f32,gpt2_f32,gpt2_f16")
    ap.add_argument("--build", default=os.path.join(ROOT, "build"))
    args = ap.parse_args()
    el = os.path.join(args.build, "edgeload")
    bindir = os.environ.get("LLAMA_CPP_BIN") or sh(
        [os.path.join(ROOT, "bench", "llamacpp_build.sh")]).strip().splitlines()[-1]
    subprocess.run([os.path.join(ROOT, "scripts", "fetch_gguf.sh")], check=True,
                   stdout=subprocess.DEVNULL)
    models = []
    for t in args.types.split(","):
        if t == "q4_1":
            models.append(("SmolLM2-135M Q4_1 (real)", SMOL))
        elif t == "gemma":
            models.append(("Gemma-3-270M Q4_K_M (real)", GEMMA))
        elif t.startswith("gpt2_"):
            dt = t[len("gpt2_"):]
            models.append((f"GPT-2 124M shape {dt.upper()}", gpt2_gguf(el, args.build, dt)))
        else:
            out = os.path.join(GGUF, "derived", f"SmolLM2-135M.{t.upper()}.gguf")
            if not os.path.exists(out):
                os.makedirs(os.path.dirname(out), exist_ok=True)
                sh([os.path.join(bindir, "llama-quantize"), "--allow-requantize", SMOL, out,
                    t.upper()])
            models.append((f"SmolLM2-135M shape {t.upper()}", out))
    threads = [int(x) for x in args.threads.split(",")]
    print(f"load average before: {load():.2f}  (llama.cpp: {bindir})")
    bw = {t: membw(args.build, t) for t in threads}
    print("read bandwidth: " + ", ".join(f"{t} thread(s) {bw[t] / 1e9:.1f} GB/s" for t in threads))
    print()
    print("| model | threads | decode tok/s edgeload | llama.cpp | ratio | edgeload of bound "
          "| prefill-128 tok/s edgeload | llama.cpp | ratio | peak RSS edgeload | llama.cpp "
          "| load s edgeload | llama.cpp |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name, path in models:
        bpt = bytes_per_token(el, path)
        prompt, n = prompt_of(el, path, 128)
        for t in threads:
            b0 = membw(args.build, t)
            epp, etg, ehwm, eload = edgeload_run(el, path, prompt, t, args.runs)
            b1 = membw(args.build, t)
            lpp, ltg, lrss, lload = llama_run(bindir, path, prompt, n, t, args.runs)
            bound = (b0 + b1) / 2 / bpt
            print(f"| {name} | {t} | {etg:.1f} | {ltg:.1f} | {etg / ltg:.2f} | {etg / bound:.0%} "
                  f"({b0 / 1e9:.0f}, {b1 / 1e9:.0f} GB/s) "
                  f"| {epp:.1f} | {lpp:.1f} | {epp / lpp:.2f} | {ehwm / 2**20:.0f} MiB "
                  f"| {lrss / 2**20:.0f} MiB | {eload:.3f} | {lload:.3f} |", flush=True)
    print(f"\nload average after: {load():.2f}; prompt {n} tokens; decode 64 tokens; "
          f"medians of {args.runs}")


if __name__ == "__main__":
    sys.exit(main())
