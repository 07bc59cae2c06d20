#!/bin/bash
# decode_ab.sh - decode tok/s of two edgeload binaries, run alternately (developer-run, never
# CI): per round, for each SmolLM2-shaped file of .cache/gguf/derived (bench/vs_llamacpp.py
# makes them) and 1 and 2 threads, BEFORE then AFTER, `generate -n 128 --temp 0 --ctx 256`.
# A type with a dot names the file's stem instead (GPT-2-124M.F16: the GPT-2 shape).
# Prints one line per run (variant type threads tok/s load-average), then the medians.
#   bench/decode_ab.sh BEFORE_BIN AFTER_BIN [ROUNDS=5] [TYPES="Q8_0 Q4_0 Q4_K"]
set -euo pipefail
cd "$(dirname "$0")/.."
before=$1 after=$2 rounds=${3:-5} types=${4:-"Q8_0 Q4_0 Q4_K"}
log=$(mktemp)
for _ in $(seq "$rounds"); do
  for t in $types; do for th in 1 2; do for v in before after; do
    bin=$before; [[ $v == after ]] && bin=$after
    f=SmolLM2-135M.$t; [[ $t == *.* ]] && f=$t
    tok=$("$bin" generate ".cache/gguf/derived/$f.gguf" \
            -p "the small model loads like firmware" -n 128 --temp 0 --ctx 256 \
            --threads "$th" --json 2>/dev/null | tail -1 |
          python3 -c "import json,sys; print(json.load(sys.stdin)['stats']['gen_tok_per_s'])")
    echo "$v $t $th $tok $(cut -d' ' -f1 /proc/loadavg)" | tee -a "$log"
  done; done; done
done
python3 - "$log" <<'PY'
import collections, statistics as st, sys
d = collections.defaultdict(list); loads = []
for line in open(sys.argv[1]):
    v, t, th, tok, ld = line.split()
    d[(t, th, v)].append(float(tok)); loads.append(float(ld))
print(f"load average {min(loads):.2f}-{max(loads):.2f} (median {st.median(loads):.2f})")
print("| weights | threads | before | after | ratio |\n|---|---|---|---|---|")
for (t, th, v) in sorted(d):
    if v == "after":
        b, a = st.median(d[(t, th, "before")]), st.median(d[(t, th, "after")])
        print(f"| {t} | {th} | {b:.1f} | {a:.1f} | {a / b:.2f} |")
PY
rm -f "$log"
