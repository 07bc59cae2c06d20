#!/usr/bin/env bash
# fuzz.sh - builds one libFuzzer target with clang under ASan+UBSan and runs it for a while
# on a scratch copy of its committed corpus (the committed corpus stays small and fixed).
# Usage: scripts/fuzz.sh NAME SECONDS     e.g. scripts/fuzz.sh safetensors 60
#   builds build-fuzz/fuzz_NAME from fuzz/fuzz_NAME.c, seeds from fuzz/corpus/NAME/, uses
#   fuzz/NAME.dict when present. Exits non-zero on a crash, leak or timeout; the input that
#   caused it is left in fuzz/artifacts/ (replay: build-fuzz/fuzz_NAME fuzz/artifacts/FILE).
#   Extra libFuzzer flags may follow, e.g. scripts/fuzz.sh safetensors 60 -max_len=65536
set -euo pipefail
cd "$(dirname "$0")/.."

usage() { echo "usage: scripts/fuzz.sh NAME SECONDS [libFuzzer flags...]" >&2; exit 1; }
[[ $# -ge 2 ]] || usage
name=$1
secs=$2
shift 2
[[ $name =~ ^[a-z0-9_]+$ ]] || usage
[[ $secs =~ ^[0-9]+$ && $secs -gt 0 ]] || usage
[[ -f fuzz/fuzz_$name.c ]] || { echo "fuzz.sh: no fuzz/fuzz_$name.c" >&2; exit 1; }
command -v clang >/dev/null || { echo "fuzz.sh: clang is required (libFuzzer)" >&2; exit 1; }


scratch=$(mktemp -d "${TMPDIR:-/tmp}/elfuzz.$name.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
if [[ -d fuzz/corpus/$name ]]; then cp -R "fuzz/corpus/$name/." "$scratch/"; fi
mkdir -p fuzz/artifacts
dict=()
if [[ -f fuzz/$name.dict ]]; then dict=("-dict=fuzz/$name.dict"); fi

echo "fuzz.sh: fuzz_$name for $secs s, corpus $(ls "$scratch" | wc -l) files"
set +e
ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1} \
UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1} \
  "build-fuzz/fuzz_$name" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 \
  -artifact_prefix=fuzz/artifacts/ -print_final_stats=1 "${dict[@]}" "$@" "$scratch"
rc=$?
set -e
if [[ $rc -ne 0 ]]; then
  echo "fuzz.sh: fuzz_$name FAILED (exit $rc); inputs in fuzz/artifacts/:" >&2
  ls -l fuzz/artifacts/ >&2 || true
  exit "$rc"
fi
echo "fuzz.sh: fuzz_$name ran $secs s without a crash"
