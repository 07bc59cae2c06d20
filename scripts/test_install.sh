#!/usr/bin/env bash
# test_install.sh - the installed package, as a consumer sees it (CI: scripts/test.sh,
# install_step). From an already built BUILD folder (default build):
#   1. cmake --install into BUILD/stage; the layout is there (CUDA builds: the CUDA module,
#      which the installed CLI finds);
#   2. libedgeload.so has SONAME libedgeload.so.0 and exports exactly the functions the
#      public headers declare (preprocessed include/edgeload.h), nothing else;
#   3. examples/ builds against the staged prefix with find_package (shared and static) and
#      with pkg-config, with none of the project's internal flags, and each build's
#      greedy text on assets/stories260K equals the installed CLI's;
#   4. the installed CLI finds a board by name from share/edgeload/boards.
# Usage: scripts/test_install.sh [BUILD]
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
build=$(cd "${1:-build}" && pwd)
stage=$build/stage
model=$root/assets/stories260K/stories260K.bin
fail() { echo "test_install: FAIL: $*" >&2; exit 1; }

rm -rf "$stage" "$build"/example-*
cmake --install "$build" --prefix "$stage" >/dev/null
# shellcheck disable=SC2016 # a literal ${prefix}
libdir=$(sed -n 's/^libdir=\${prefix}\///p' "$build/edgeload.pc")
for f in bin/edgeload include/edgeload.h include/edgeload_session.h "$libdir/libedgeload.a" \
         "$libdir/libedgeload.so" "$libdir/libedgeload.so.0" "$libdir/pkgconfig/edgeload.pc" \
         "$libdir/cmake/edgeload/edgeloadConfig.cmake" \
         "$libdir/cmake/edgeload/edgeloadConfigVersion.cmake" \
         share/edgeload/boards/jetson-orin-nano-8gb.json \
         share/edgeload/systemd/edgeload-serve.service share/doc/edgeload/README.md; do
  [[ -e "$stage/$f" ]] || fail "cmake --install did not install $f"
done
# CUDA builds: the CUDA module, which the installed CLI finds from bin/ (no GPU needed: it
# then says which driver is missing, never that the module is).
if [[ -f "$build/libedgeload_cuda.so" ]]; then
  [[ -f "$stage/$libdir/edgeload/libedgeload_cuda.so" ]] || fail "no $libdir/edgeload/libedgeload_cuda.so"
  dev=$(env -u EL_CUDA_MODULE "$stage/bin/edgeload" devices 2>&1) || fail "edgeload devices failed: $dev"
  [[ "$dev" != *"was not found"* ]] || fail "the installed CLI does not find its CUDA module: $dev"
  echo "test_install: the installed CLI finds $libdir/edgeload/libedgeload_cuda.so"
fi
grep -q "^ExecStart=$stage/bin/edgeload serve" "$stage/share/edgeload/systemd/edgeload-serve.service" ||
  fail "the installed unit does not start the installed edgeload"

# 2. The shared library's interface.
so=$stage/$libdir/libedgeload.so.0
readelf -d "$so" | grep -c 'SONAME.*\[libedgeload\.so\.0\]' >/dev/null || fail "SONAME is not libedgeload.so.0"
declared=$(cc -E -P -I include include/edgeload.h | grep -o '\bel_[a-z0-9_]*[[:space:]]*(' |
           tr -d ' (' | sort -u)
exported=$(nm -D --defined-only "$so" | awk '$2 ~ /^[TWDBR]$/ {print $3}' | sort -u)
if [[ "$declared" != "$exported" ]]; then
  diff <(echo "$declared") <(echo "$exported") | sed 's/^</declared, not exported:/; s/^>/exported, not declared:/' >&2
  fail "libedgeload.so exports other symbols than the public headers declare"
fi
echo "test_install: libedgeload.so.0 exports the $(echo "$exported" | wc -l) public functions, nothing else"

# 3. The example, three ways, against the installed CLI's text.
want=$("$stage/bin/edgeload" generate "$model" -p "Once upon a time" -n 24 --temp 0 --device cpu 2>/dev/null)
[[ -n "$want" ]] || fail "the installed edgeload generated nothing"
check_text() { # name, binary
  local got
  got=$("$2" "$model" "Once upon a time" 24 2>"$build/$1.err") || fail "$1 failed: $(cat "$build/$1.err")"
  [[ "$got" == "$want" ]] || fail "$1 printed '$got', the installed CLI '$want'"
  echo "test_install: $1: same text as the CLI ($(tail -1 "$build/$1.err"))"
}
for kind in shared static; do
  static=OFF; [[ $kind == static ]] && static=ON
  cmake -S examples -B "$build/example-$kind" -DCMAKE_PREFIX_PATH="$stage" \
        -DEDGELOAD_STATIC=$static -DCMAKE_EXPORT_COMPILE_COMMANDS=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
  cmake --build "$build/example-$kind" >/dev/null
  if grep -Eq -- '-Wall|-Wextra|_GNU_SOURCE|EL_FAULT_INJECTION|-I'"$root"'( |")' \
       "$build/example-$kind/compile_commands.json"; then
    fail "find_package(edgeload) leaks internal flags: $(grep '"command"' "$build/example-$kind/compile_commands.json")"
  fi
  check_text "example-$kind (find_package)" "$build/example-$kind/edgeload_example"
done
readelf -d "$build/example-shared/edgeload_example" | grep -c 'NEEDED.*libedgeload\.so\.0' >/dev/null ||
  fail "the example linked with edgeload::edgeload does not load libedgeload.so.0"
if readelf -d "$build/example-static/edgeload_example" | grep -c libedgeload >/dev/null; then
  fail "the example linked with edgeload::edgeload_static needs libedgeload.so"
fi
export PKG_CONFIG_PATH=$stage/$libdir/pkgconfig
cflags=$(pkg-config --cflags edgeload)
for f in $cflags; do # the headers' folder (and the dependencies' own), no flags of ours
  case "$f" in
    -I*) [[ "$(realpath "${f#-I}")" == "$stage/include" || "${f#-I}" != "$root"* ]] ||
           fail "pkg-config --cflags edgeload names $f" ;;
    *) fail "pkg-config --cflags edgeload gives '$f'" ;;
  esac
done
[[ " $cflags " == *" -I$stage/"*include* ]] || fail "pkg-config --cflags edgeload: '$cflags'"
mkdir -p "$build/example-pkgconfig"
# shellcheck disable=SC2046
cc -std=c11 -O2 -o "$build/example-pkgconfig/edgeload_example" examples/generate.c \
   $(pkg-config --cflags --libs edgeload) -Wl,-rpath,"$stage/$libdir"
check_text "example-pkgconfig" "$build/example-pkgconfig/edgeload_example"

# 4. A board by name from the installed share/edgeload/boards.
out=$(cd / && env -u EDGELOAD_BOARDS "$stage/bin/edgeload" plan "$model" --board jetson-orin-nano-8gb) ||
  fail "installed edgeload plan --board jetson-orin-nano-8gb failed"
grep -q "board jetson-orin-nano-8gb" <<<"$out" || fail "plan --board printed: $out"
echo "test_install: installed edgeload finds --board jetson-orin-nano-8gb; all checks passed"
