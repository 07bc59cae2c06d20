#!/usr/bin/env python3
"""seed_gpt2.py - the seed scenario side by side (developer-run, never CI).

Creates a randomly initialised gpt2-medium-shaped model folder (24 layers, 1024 wide, 16 heads,
n_positions 1024, vocab 50257, ~355M parameters, fp32 safetensors, the real GPT-2 tokenizer files
from ../shared/models/gpt2-tokenizer as vocab.json + merges.txt) in a temp dir, then, each in its
own process, loads it and greedy-generates 20 tokens after "The future of AI is":
  (a) transformers from_pretrained (default)
  (b) transformers from_pretrained(low_cpu_mem_usage=True)
  (c) edgeload generate --arena <planned> --temp 0 -n 20 (weights as stored, f32)
  (d) the same with --dtype f16
and prints a table: peak RSS (the child's ru_maxrss from os.wait4) and peak RSS / weight bytes,
load seconds, time to first token (from the start of loading), generation tok/s, and whether the
ids equal (a)'s. The file is read once before the runs, so every run finds it in the page cache.

    bench/seed_venv.sh && .venv-seed/bin/python bench/seed_gpt2.py [--edgeload build/edgeload]
        [--keep DIR] [--ctx N] [--markdown]
(or with the fixtures venv: /work/main/.venv-fixtures/bin/python bench/seed_gpt2.py)
"""
import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_TOK = os.path.join(ROOT, "..", "shared", "models", "gpt2-tokenizer")
PROMPT = "The future of AI is"
N_NEW = 20


# ---------------------------------------------------------------- children (python -c ...)

MAKE = r"""
import os, sys, shutil, torch
from transformers import GPT2Config, GPT2LMHeadModel
out, tok = sys.argv[1], sys.argv[2]
torch.manual_seed(1234)
cfg = GPT2Config(vocab_size=50257, n_positions=1024, n_embd=1024, n_layer=24, n_head=16,
                 bos_token_id=50256, eos_token_id=50256)
m = GPT2LMHeadModel(cfg).float().eval()
# GPT-2's init (std 0.02) gives near-flat logits and a greedy run that repeats one token; the
# fixtures' scaling spreads them so the id comparison means something.
g = torch.Generator().manual_seed(1234)
with torch.no_grad():
    for name, p in m.named_parameters():
        if ".ln_" in name or "ln_f" in name:
            p.copy_(0.5 + torch.rand(p.shape, generator=g) if name.endswith("weight")
                   else 0.1 * torch.randn(p.shape, generator=g))
        elif "wte" in name or "wpe" in name:
            p.copy_(0.25 * torch.randn(p.shape, generator=g))
        elif name.endswith(".bias"):
            p.copy_(0.1 * torch.randn(p.shape, generator=g))
        else:
            p.copy_(torch.randn(p.shape, generator=g) / (p.shape[0] ** 0.5))
m.save_pretrained(out, safe_serialization=True)
shutil.copy(os.path.join(tok, "encoder.json"), os.path.join(out, "vocab.json"))
shutil.copy(os.path.join(tok, "vocab.bpe"), os.path.join(out, "merges.txt"))
print(sum(p.numel() for p in m.parameters()))
"""

HF = r"""
import json, os, sys, time, warnings
t_import = time.perf_counter()
import torch
import transformers
from transformers import AutoTokenizer, GPT2LMHeadModel
from transformers.generation.streamers import BaseStreamer
torch.set_num_threads(int(sys.argv[4]))
path, prompt, low = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
base = rss()
class Clock(BaseStreamer):
    def __init__(self): self.times = []
    def put(self, value): self.times.append(time.perf_counter())
    def end(self): pass
note = ""
t0 = time.perf_counter()
with warnings.catch_warnings(record=True) as w:
    warnings.simplefilter("always")
    try:
        model = GPT2LMHeadModel.from_pretrained(path, low_cpu_mem_usage=True) if low else \
                GPT2LMHeadModel.from_pretrained(path)
    except TypeError as e:
        note = "low_cpu_mem_usage rejected: %s; loaded without it" % e
        model = GPT2LMHeadModel.from_pretrained(path)
    note += " ".join(str(x.message)[:200] for x in w if "low_cpu" in str(x.message))
model.eval()
t_load = time.perf_counter()
tok = AutoTokenizer.from_pretrained(path)
ids = tok(prompt, return_tensors="pt")["input_ids"]
clock = Clock()
with torch.no_grad():
    out = model.generate(ids, do_sample=False, max_new_tokens=N_NEW, min_new_tokens=N_NEW,
                         pad_token_id=50256, streamer=clock)
t_end = time.perf_counter()
gen = [int(x) for x in out[0, ids.shape[1]:]]
first = clock.times[1] if len(clock.times) > 1 else t_end
print(json.dumps({"ids": gen, "prompt_ids": [int(x) for x in ids[0]],
                  "text": tok.decode(out[0]), "load_s": t_load - t0, "ttft_s": first - t0,
                  "gen_tok_s": (len(gen) - 1) / (t_end - first) if len(gen) > 1 else 0,
                  "rss_after_import": base, "note": note,
                  "transformers": transformers.__version__,
                  "dtype": str(next(model.parameters()).dtype)}))
""".replace("N_NEW", str(N_NEW))


def run_child(argv):
    """Runs argv (not measured: making the model); returns (status, stdout, stderr)."""
    p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    return p.returncode, p.stdout.decode(), p.stderr.decode()


def run_measured(argv, env=None):
    """fork/exec with os.wait4: the child's own ru_maxrss (KiB on Linux). env: extra
    environment variables for the child."""
    t0 = time.perf_counter()
    r_out, w_out = os.pipe()
    r_err, w_err = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.dup2(w_out, 1)
        os.dup2(w_err, 2)
        os.close(r_out)
        os.close(r_err)
        try:
            if env:
                os.execvpe(argv[0], argv, dict(os.environ, **env))
            os.execvp(argv[0], argv)
        finally:
            os._exit(127)
    os.close(w_out)
    os.close(w_err)
    chunks_out, chunks_err = [], []
    import selectors
    sel = selectors.DefaultSelector()
    sel.register(r_out, selectors.EVENT_READ, chunks_out)
    sel.register(r_err, selectors.EVENT_READ, chunks_err)
    open_fds = 2
    while open_fds:
        for key, _ in sel.select():
            data = os.read(key.fd, 65536)
            if data:
                key.data.append(data)
            else:
                sel.unregister(key.fd)
                os.close(key.fd)
                open_fds -= 1
    _, status, ru = os.wait4(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return (code, b"".join(chunks_out).decode(errors="replace"),
            b"".join(chunks_err).decode(errors="replace"), ru.ru_maxrss * 1024,
            time.perf_counter() - t0)


def machine():
    mem = 0
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    cpu = platform.processor()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return "%s, %d CPUs, %.1f GiB RAM, %s %s" % (cpu, os.cpu_count(), mem / 2**30,
                                                platform.system(), platform.release())


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--edgeload", default=os.path.join(ROOT, "build", "edgeload"))
    ap.add_argument("--keep", help="make (or reuse) the model folder here and keep it")
    ap.add_argument("--ctx", type=int, default=0, help="edgeload --ctx (default: n_positions)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--markdown", action="store_true")
    ap.add_argument("--hf4", metavar="DIR",
                    help="also run (a) and (b) with the transformers 4.x installed in DIR "
                         "(pip install --target DIR 'transformers<5' and its dependencies; "
                         "put first on PYTHONPATH), where from_pretrained still builds the "
                         "model and then copies the weights in")
    args = ap.parse_args()

    tmp = None
    if args.keep:
        mdir = args.keep
        os.makedirs(mdir, exist_ok=True)
    else:
        tmp = tempfile.mkdtemp(prefix="seed_gpt2.")
        mdir = tmp
    weights = os.path.join(mdir, "model.safetensors")
    try:
        if not os.path.exists(weights):
            t0 = time.perf_counter()
            code, out, err = run_child([sys.executable, "-c", MAKE, mdir, SHARED_TOK])
            if code:
                sys.exit("making the model failed:\n" + err[-3000:])
            print("made %s (%s parameters) in %.0f s" % (mdir, out.strip(),
                                                         time.perf_counter() - t0), flush=True)
        wbytes = os.path.getsize(weights)
        with open(weights, "rb") as f:  # into the page cache: every run starts warm
            while f.read(64 << 20):
                pass

        rows = []
        hf_runs = [("(a) transformers from_pretrained", "0", None),
                   ("(b) from_pretrained(low_cpu_mem_usage=True)", "1", None)]
        if args.hf4:
            hf_runs += [("(a4) transformers 4.x from_pretrained", "0", {"PYTHONPATH": args.hf4}),
                        ("(b4) 4.x from_pretrained(low_cpu_mem_usage=True)", "1",
                         {"PYTHONPATH": args.hf4})]
        for name, low, env in hf_runs:
            code, out, err, peak, wall = run_measured(
                [sys.executable, "-c", HF, mdir, PROMPT, low, str(args.threads)], env)
            if code:
                print("%s failed (exit %d):\n%s" % (name, code, err[-2000:]))
                continue
            r = json.loads(out.strip().splitlines()[-1])
            r.update(name=name, peak=peak, wall=wall)
            rows.append(r)
            print("%s: transformers %s, peak %.0f MiB (after import %.0f MiB), load %.2f s, "
                  "first token %.2f s, %.1f tok/s, dtype %s %s" % (
                      name, r["transformers"], peak / 2**20, r["rss_after_import"] / 2**20,
                      r["load_s"], r["ttft_s"], r["gen_tok_s"], r["dtype"], r["note"]),
                  flush=True)
        ref_ids = rows[0]["ids"] if rows else None

        for name, extra in (("(c) edgeload generate (f32)", []),
                            ("(d) edgeload generate --dtype f16", ["--dtype", "f16"])):
            ctx = ["--ctx", str(args.ctx)] if args.ctx else []
            code, out, err, _, _ = run_measured([args.edgeload, "plan", mdir, "--json"] + extra + ctx)
            if code:
                print("%s: plan failed (exit %d): %s" % (name, code, err.strip()))
                continue
            plan = json.loads(out)
            total = plan["total"]
            argv = [args.edgeload, "generate", mdir, "--arena", str(total), "--temp", "0",
                    "-n", str(N_NEW), "-p", PROMPT, "--json", "--no-progress",
                    "--threads", str(args.threads)] + extra + ctx
            code, out, err, peak, wall = run_measured(argv)
            if code and "tokenizer" in err and rows:
                # No GPT-2 tokenizer in this build yet: the same load + greedy run through the
                # public API from (a)'s prompt ids (bench_gpt2 --model).
                print("%s: %s -> running bench_gpt2 --model with (a)'s prompt ids" %
                      (name, err.strip()[-300:]))
                name = name.replace("edgeload generate", "bench_gpt2 --model (ids)")
                bench = os.path.join(os.path.dirname(args.edgeload), "bench_gpt2")
                ids = ",".join(str(x) for x in rows[0]["prompt_ids"])
                code, out, err, peak, wall = run_measured(
                    [bench, "--model", mdir, "--ids", ids, "-n", str(N_NEW)] + extra + ctx)
                if code:
                    print("%s failed (exit %d): %s" % (name, code, err.strip()[-1500:]))
                    continue
                j = json.loads(out)
                r = {"name": name, "ids": j["ids"], "load_s": j["load_s"], "ttft_s": j["ttft_s"],
                     "gen_tok_s": j["gen_tok_s"], "peak": peak, "wall": wall,
                     "arena": j["arena"], "vm_hwm": j["vm_hwm"], "note": "no tokenizer: ids in"}
                rows.append(r)
                print("%s: arena %.0f MiB, peak %.0f MiB, load %.2f s, first token %.2f s, "
                      "%.1f tok/s" % (name, r["arena"] / 2**20, peak / 2**20, r["load_s"],
                                      r["ttft_s"], r["gen_tok_s"]), flush=True)
                continue
            if code:
                print("%s failed (exit %d): %s" % (name, code, err.strip()[-1500:]))
                continue
            j = json.loads(out)
            st, mem = j["stats"], j["memory"]
            r = {"name": name, "ids": j["ids"], "prompt_ids": j["prompt_ids"], "text": j["text"],
                 "load_s": mem["seconds"], "ttft_s": st["time_to_first_token_s"],
                 "gen_tok_s": st["gen_tok_per_s"], "peak": peak, "wall": wall,
                 "arena": mem["arena"]["reserved"], "vm_hwm": mem["vm_hwm"], "note": ""}
            rows.append(r)
            print("%s: arena %.0f MiB, peak %.0f MiB (VmHWM %.0f MiB), load %.2f s, first token "
                  "%.2f s, %.1f tok/s" % (name, r["arena"] / 2**20, peak / 2**20,
                                          r["vm_hwm"] / 2**20, r["load_s"], r["ttft_s"],
                                          r["gen_tok_s"]), flush=True)

        print()
        print("machine: " + machine())
        print("model: gpt2-medium shape, random weights, fp32 safetensors %.0f MB (%d bytes); "
              "prompt %r, %d greedy tokens; %d threads; file in the page cache" %
              (wbytes / 1e6, wbytes, PROMPT, N_NEW, args.threads))
        hdr = ["run", "peak RSS MiB", "peak / weights", "arena MiB", "load s",
               "first token s", "gen tok/s", "ids = (a)"]
        print("| " + " | ".join(hdr) + " |")
        print("|" + "---|" * len(hdr))
        for r in rows:
            same = "yes" if ref_ids is not None and r["ids"] == ref_ids else "no"
            if r is rows[0]:
                same = "(reference)"
            print("| %s | %.0f | %.2f | %s | %.2f | %.2f | %.1f | %s |" % (
                r["name"], r["peak"] / 2**20, r["peak"] / wbytes,
                "%.0f" % (r["arena"] / 2**20) if "arena" in r else "-", r["load_s"], r["ttft_s"],
                r["gen_tok_s"], same))
        for r in rows:
            if r.get("note"):
                print("note %s: %s" % (r["name"], r["note"]))
        if rows:
            print("text (a): %r" % rows[0]["text"])
    finally:
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
