#!/usr/bin/env bash
# ci_gates.sh - the quality gates scripts/test.sh runs after the two ctest passes:
#   1. valgrind memcheck of the CLI's main paths on small inputs (errors or leaks fail);
#   2. cppcheck on the sources with the committed configuration (any finding fails);
#   3. every fuzz target for $EL_FUZZ_SECONDS (default 20) seconds with its seed corpus (a
#      smoke run that keeps the suite under CI's limit on a slow 2-core machine; the long
#      runs are developer-run: scripts/fuzz.sh NAME SECONDS);
#   4. scripts/cuda_gate.sh: the CUDA kernels' PTX/SASS as build/'s objects carry them
#      (no byte loads, vector weight loads, stack frames within budget: no spills), no GPU.
# Expects build/ (the Release build made by test.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
cli=build/edgeload
[[ -x $cli ]] || { echo "ci_gates: $cli missing: run scripts/test.sh" >&2; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "-- valgrind memcheck on the CLI paths"
vg() {
  local want=$1; shift
  local rc=0
  valgrind -q --error-exitcode=99 --leak-check=full --show-leak-kinds=definite,indirect \
    --errors-for-leak-kinds=definite,indirect "$cli" "$@" <"${valgrind_stdin:-/dev/null}" \
    >"$work/out" 2>"$work/err" || rc=$?
  if [[ $rc -ne $want ]]; then
    echo "ci_gates: valgrind $cli $* exited $rc, expected $want" >&2
    cat "$work/err" >&2
    exit 1
  fi
  echo "   ok (exit $rc): edgeload $*"
}
python3 - "$work/m.safetensors" <<'PY'
import json, struct, sys
tensors = {"w": ("F32", [64, 33]), "h": ("F16", [17, 9]), "b": ("BF16", [5])}
size = {"F32": 4, "F16": 2, "BF16": 2}
hdr, off = {}, 0
for name, (dt, shape) in tensors.items():
    n = size[dt]
    for d in shape: n *= d
    hdr[name] = {"dtype": dt, "shape": shape, "data_offsets": [off, off + n]}
    off += n
js = json.dumps(hdr).encode()
with open(sys.argv[1], "wb") as f:
    f.write(struct.pack("<Q", len(js)) + js + bytes((i * 7) % 251 for i in range(off)))
PY
printf '\x10\x00\x00\x00\x00\x00\x00\x00{"w":' >"$work/bad.safetensors"
vg 0 inspect "$work/m.safetensors"
vg 0 plan "$work/m.safetensors" --json
vg 0 load "$work/m.safetensors" --dtype f16 --chunk 64K --no-progress
vg 3 load "$work/m.safetensors" --arena 4K
vg 2 inspect "$work/bad.safetensors"
if [[ -f assets/stories260K/stories260K.bin ]] && "$cli" --help | grep -q generate; then
  vg 0 inspect assets/stories260K/stories260K.bin
  vg 0 generate assets/stories260K/stories260K.bin -p "Once upon a time" -n 8 --temp 0 --no-progress
  vg 0 plan assets/stories260K/stories260K.bin --board generic-x86_64 --json
  vg 0 pack assets/stories260K/stories260K.bin -o "$work/s.elimg" --codec shuffle-lz4 --chunk 64K
  vg 0 verify "$work/s.elimg"
  vg 0 generate "$work/s.elimg" -p "Once" -n 4 --temp 0 --no-progress
  printf '{"id":1,"prompt":"Once","max_tokens":4}\nnot json\n' >"$work/req"
  valgrind_stdin="$work/req" vg 0 serve assets/stories260K/stories260K.bin
  vg 0 devices
fi
if [[ -d tests/fixtures/hf_bert_cls ]]; then
  vg 0 classify tests/fixtures/hf_bert_cls --ids "1 2 3 4" "5 6 7"
  vg 0 embed tests/fixtures/hf_bert_base --ids --normalize "1 2 3"
fi
if [[ -d tests/fixtures/gguf ]]; then
  vg 0 inspect tests/fixtures/gguf/meta_all.gguf
  vg 0 generate tests/fixtures/gguf/llama_gqa_gpt2tok_f16.gguf -p "Hello" -n 4 --temp 0 --no-progress
  head -c 1000 tests/fixtures/gguf/llama_gqa_f32.gguf >"$work/cut.gguf"
  vg 2 inspect "$work/cut.gguf"
fi

echo "-- cppcheck"
cppcheck --quiet --error-exitcode=1 --std=c11 --enable=warning,portability,performance \
  --inline-suppr --suppressions-list=scripts/cppcheck.supp -I include -I . \
  -D__GNUC__ -U__cplusplus platform arena loader kernels models tokenizer cli

echo "-- fuzz targets (${EL_FUZZ_SECONDS:-20} s each)"
for src in fuzz/fuzz_*.c; do
  [[ -e $src ]] || continue
  name=$(basename "$src" .c)
  scripts/fuzz.sh "${name#fuzz_}" "${EL_FUZZ_SECONDS:-20}"
done

echo "-- CUDA PTX/SASS gate"
scripts/cuda_gate.sh build
echo "ci_gates: all gates passed"
