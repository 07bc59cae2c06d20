#!/usr/bin/env python3
"""seed_bert.py - the bert-large scenario, both ways (developer-run; needs torch and
transformers, e.g. /work/main/.venv-fixtures/bin/python; stdlib otherwise).

    /work/main/.venv-fixtures/bin/python bench/seed_bert.py [--dir DIR] [--batch 8]
        [--seq 128] [--threads N] [--cli build/edgeload] [--skip-hf-f16]

1. Creates (once) a random bert-large-uncased-shaped BertForSequenceClassification folder in
   DIR (default .cache/bert-large-random: 24 layers, hidden 1024, 16 heads, intermediate
   4096, vocab 30522, 512 positions, 2 labels, float32 safetensors, ~1.34 GB).
2. Runs, each in its own fresh process so that peak RSS (the child's ru_maxrss) belongs to
   one path only:
     transformers  AutoModelForSequenceClassification.from_pretrained(DIR) (float32, and
                   torch_dtype=float16 unless --skip-hf-f16), then classify one batch;
     edgeload      `edgeload classify DIR --ids --batch B --ctx S --json` (weights as
                   stored = f32, then --dtype f16), the same token ids on stdin.
   and prints peak RSS, load seconds, sequences/s and the largest logit difference against
   transformers f32, as a Markdown table (docs/BERT.md holds the last run).
"""
import argparse
import json
import os
import platform
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HF_CHILD = r"""
import json, resource, sys, time
t0 = time.time()
import torch
from transformers import AutoModelForSequenceClassification
torch.set_num_threads(int(sys.argv[3]))
dtype = torch.float16 if sys.argv[2] == "f16" else torch.float32
t1 = time.time()
model = AutoModelForSequenceClassification.from_pretrained(sys.argv[1], dtype=dtype).eval()
t2 = time.time()
ids = torch.tensor(json.loads(sys.stdin.read()))
with torch.no_grad():
    model(input_ids=ids[:1])                       # warm-up, as edgeload's first batch is
    t3 = time.time()
    logits = model(input_ids=ids).logits.float()
t4 = time.time()
print(json.dumps({"import_s": t1 - t0, "load_s": t2 - t1, "run_s": t4 - t3,
                  "seq_per_s": ids.shape[0] / (t4 - t3), "logits": logits.tolist(),
                  "maxrss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def make_model(d):
    if os.path.exists(os.path.join(d, "model.safetensors")):
        return
    import torch
    from transformers import BertConfig, BertForSequenceClassification
    cfg = BertConfig(vocab_size=30522, hidden_size=1024, num_hidden_layers=24,
                     num_attention_heads=16, intermediate_size=4096,
                     max_position_embeddings=512, type_vocab_size=2, num_labels=2,
                     id2label={0: "NEGATIVE", 1: "POSITIVE"},
                     label2id={"NEGATIVE": 0, "POSITIVE": 1})
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg).eval()
    n = sum(p.numel() for p in model.parameters())
    print("random bert-large-shaped classifier: %d parameters -> %s" % (n, d), file=sys.stderr)
    model.save_pretrained(d, safe_serialization=True)


def run_child(cmd, stdin_text):
    """Runs cmd in a fresh process; returns its stdout (each child reports its own peak RSS:
    ru_maxrss for Python, VmHWM in edgeload's JSON)."""
    p = subprocess.run(cmd, input=stdin_text, capture_output=True, text=True)
    if p.returncode != 0:
        sys.exit("%s failed (%d):\n%s" % (cmd[0], p.returncode, p.stderr[-2000:]))
    return p.stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default=os.path.join(ROOT, ".cache", "bert-large-random"))
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--cli", default=os.path.join(ROOT, "build", "edgeload"))
    ap.add_argument("--skip-hf-f16", action="store_true")
    a = ap.parse_args()
    make_model(a.dir)

    # The same ids for both: [CLS] w ... w [SEP].
    ids = [[101] + [1000 + (b * 7919 + t * 104729) % 29000 for t in range(a.seq - 2)] + [102]
           for b in range(a.batch)]
    rows = []

    def hf(dtype):
        out = run_child([sys.executable, "-c", HF_CHILD, a.dir, dtype, str(a.threads)],
                        json.dumps(ids))
        r = json.loads(out)
        rows.append(("transformers " + dtype, r["maxrss_kib"] * 1024, r["load_s"],
                     r["seq_per_s"], r["logits"]))

    def el(dtype):
        cmd = [a.cli, "classify", a.dir, "--ids", "--json", "--batch", str(a.batch), "--ctx",
               str(a.seq), "--threads", str(a.threads)]
        if dtype == "f16":
            cmd += ["--dtype", "f16"]
        text = "\n".join(" ".join(str(i) for i in s) for s in ids) + "\n"
        out = run_child(cmd, text)
        r = json.loads(out)
        logits = [[l["logit"] for l in x["labels"]] for x in r["results"]]
        rows.append(("edgeload " + dtype, r["memory"]["vm_hwm"], r["load_seconds"],
                     r["texts_per_s"], logits))

    el("f32")
    el("f16")
    hf("f32")
    if not a.skip_hf_f16:
        hf("f16")
    ref = next(r[4] for r in rows if r[0] == "transformers f32")
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(l.split(":", 1)[1].strip() for l in f if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    print("machine: %s, %d CPUs, %.1f GiB RAM; batch %d x %d tokens, %d threads; load "
          "average at start %.2f" % (cpu, os.cpu_count(), mem, a.batch, a.seq, a.threads,
                                     os.getloadavg()[0]))
    print()
    print("| run | peak RSS | load s | sequences/s | max abs logit diff vs transformers f32 |")
    print("|---|---:|---:|---:|---:|")
    for name, rss, load_s, sps, logits in rows:
        diff = max(abs(x - y) for r1, r2 in zip(logits, ref) for x, y in zip(r1, r2))
        print("| %s | %.0f MiB | %.2f | %.2f | %.2g |" % (name, rss / 2**20, load_s, sps, diff))


if __name__ == "__main__":
    main()
