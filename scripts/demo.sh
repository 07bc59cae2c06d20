#!/usr/bin/env bash
# demo.sh - the main job on a fresh clone: builds edgeload, then generates text with the
# bundled stories260K model (assets/, MIT) inside a fixed 4 MiB arena and prints the
# memory report.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc 2>/dev/null || echo 2)" >/dev/null
echo "edgeload generate assets/stories260K/stories260K.bin --arena 4M -p \"Once upon a time\" -n 200 --temp 0"
echo
exec build/edgeload generate assets/stories260K/stories260K.bin --arena 4M \
  -p "Once upon a time" -n 200 --temp 0
