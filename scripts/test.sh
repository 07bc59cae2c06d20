#!/usr/bin/env bash
# test.sh - builds edgeload and runs every check CI runs:
#   1. Release build, warnings as errors, full ctest suite;
#   2. Debug build under ASan+UBSan (no recovery, leak detection), full ctest suite;
#   3. the extra gates in scripts/ci_gates.sh when present (valgrind, static analysis, fuzz).
# Usage: scripts/test.sh [--quick]   (--quick: step 1 only)
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc 2>/dev/null || echo 2)
t0=$(date +%s)

step() { printf '\n== %s ==\n' "$*"; }

scripts/fetch_minilm.sh || echo "test.sh: WARNING: scripts/fetch_minilm.sh failed: test_bert_minilm will SKIP (no real all-MiniLM-L6-v2 check)" >&2
step "release build (-Werror)"
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DEL_WERROR=ON >/dev/null
cmake --build build -j"$jobs"
(cd build && ctest --output-on-failure -j"$jobs")

if [[ "${1:-}" == "--quick" ]]; then exit 0; fi

step "debug build under address,undefined sanitizers"
cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=Debug -DEL_WERROR=ON \
      -DEL_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j"$jobs"
(cd build-asan && ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
   UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
   ctest --output-on-failure -j"$jobs")

if [[ -x scripts/ci_gates.sh ]]; then
  step "quality gates"
  scripts/ci_gates.sh
fi
echo "test.sh: all steps passed in $(( $(date +%s) - t0 )) s"
