#!/usr/bin/env bash
# test_subproject.sh - edgeload as a subproject: a consumer pulls this tree in with
# FetchContent (SOURCE_DIR) and with add_subdirectory, links edgeload::edgeload (the shared
# library) and edgeload::edgeload_static, builds examples/generate.c, and gets none of the
# project's internal flags; each consumer runs on assets/stories260K. CPU-only (EL_CUDA=OFF)
# to keep it short (~1 minute on 2 cores). Not part of scripts/test.sh.
# Usage: scripts/test_subproject.sh [WORKDIR]   (default build/subproject)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
work=${1:-build/subproject}
rm -rf "$work" && mkdir -p "$work/src"
work=$(cd "$work" && pwd)
fail() { echo "test_subproject: FAIL: $*" >&2; exit 1; }
cat >"$work/src/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.20)
project(consumer C)
# Our own strict flags must not reach edgeload's sources, nor its flags ours.
set(EL_CUDA OFF CACHE STRING "")
if(USE_FETCHCONTENT)
  include(FetchContent)
  FetchContent_Declare(edgeload SOURCE_DIR "$root")
  FetchContent_MakeAvailable(edgeload)
else()
  add_subdirectory("$root" edgeload EXCLUDE_FROM_ALL)
endif()
add_executable(app_shared "$root/examples/generate.c")
target_link_libraries(app_shared PRIVATE edgeload::edgeload)
add_executable(app_static "$root/examples/generate.c")
target_link_libraries(app_static PRIVATE edgeload::edgeload_static)
CMAKE
model=$root/assets/stories260K/stories260K.bin
for mode in fetchcontent add_subdirectory; do
  fc=OFF; [[ $mode == fetchcontent ]] && fc=ON
  b=$work/build-$mode
  cmake -S "$work/src" -B "$b" -DUSE_FETCHCONTENT=$fc -DCMAKE_BUILD_TYPE=Release \
        -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
  cmake --build "$b" -j2 --target app_shared app_static >/dev/null
  [[ ! -e "$b/edgeload/CTestTestfile.cmake" && ! -e "$b/_deps/edgeload-build/CTestTestfile.cmake" ]] ||
    fail "$mode: edgeload's tests are configured in a subproject"
  python3 - "$b/compile_commands.json" "$root" <<'PY' || fail "$mode: internal flags reach the consumer"
import json, sys
cmds, root = json.load(open(sys.argv[1])), sys.argv[2]
if not any(c["file"].endswith("examples/generate.c") for c in cmds):
    sys.exit("no compile command for examples/generate.c")
for c in cmds:
    if c["file"].endswith("examples/generate.c"):
        bad = [f for f in c["command"].split() if f.startswith(("-W", "-D_GNU", "-DEL_"))
               or f in ("-I" + root, "-I" + root + "/")]
        if bad:
            print("consumer compile flags include", bad, file=sys.stderr)
            sys.exit(1)
PY
  for app in app_shared app_static; do
    "$b/$app" "$model" "Once upon a time" 8 >/dev/null 2>&1 || fail "$mode: $app failed"
  done
  readelf -d "$b/app_shared" | grep -c 'NEEDED.*libedgeload\.so\.0' >/dev/null || fail "$mode: app_shared is not linked to libedgeload.so.0"
  echo "test_subproject: $mode: edgeload::edgeload and edgeload::edgeload_static build and run, no internal flags"
done
